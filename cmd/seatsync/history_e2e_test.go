package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/store/sqlite"
)

// seedSeatHistory adds backdated seat history to a site's store: primary
// used grows by one a day, from used-days days ago to used now.
func seedSeatHistory(t *testing.T, dbPath string, days, used, limit int) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	for d := days; d >= 1; d-- {
		row := store.SeatRow{Kind: store.SeatKindPool, Name: "primary", Limit: limit, Used: used - d, Remaining: limit - used + d}
		if err := st.SaveSeats(context.Background(), fmt.Sprintf("seed-%d", d), now.Add(-time.Duration(d)*24*time.Hour), []store.SeatRow{row}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSeatsHistory: every sync records each pool; seats --history prints
// them (text and json) with each pool's forecast, --since narrows them,
// and seats shows the forecast too.
func TestSeatsHistory(t *testing.T) {
	s := newSite(t, siteOptions{primaryLimit: "20"}, fivePeople()...)
	r := s.must(exitOK, "seats", "-c", s.config, "--history")
	if !strings.Contains(r.stdout, "No seat history") {
		t.Errorf("seats --history before any sync:\n%s", r.stdout)
	}
	s.must(exitOK, "sync", "-c", s.config)
	s.must(exitOK, "sync", "-c", s.config)

	r = s.must(exitOK, "seats", "-c", s.config, "--history", "--format", "json")
	var out struct {
		History []struct {
			At        time.Time `json:"at"`
			RunID     string    `json:"run_id"`
			Kind      string    `json:"kind"`
			Name      string    `json:"name"`
			Limit     int       `json:"limit"`
			Unlimited bool      `json:"unlimited"`
			Used      int       `json:"used"`
			Queued    int       `json:"queued"`
		} `json:"history"`
		Forecasts []struct {
			Pool       string  `json:"pool"`
			FullInDays float64 `json:"full_in_days"`
			Text       string  `json:"text"`
		} `json:"forecasts"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("seats --history --format json: %v\n%s", err, r)
	}
	// Two syncs, two pools each.
	if len(out.History) != 4 || out.Forecasts == nil || len(out.Forecasts) != 0 {
		t.Fatalf("history after two syncs: %+v", out)
	}
	for _, h := range out.History {
		if h.Kind != "pool" || h.RunID == "" || time.Since(h.At) > time.Minute {
			t.Errorf("history row %+v", h)
		}
		if h.Name == "primary" && (h.Limit != 20 || h.Used != 4 || h.Unlimited) {
			t.Errorf("primary row %+v, want 4 of 20 used", h)
		}
	}

	// Four days of growth, a seat a day, up to the 4 used now: 16 left
	// at one a day.
	seedSeatHistory(t, filepath.Join(s.dir, "seatsync.db"), 4, 4, 20)
	r = s.must(exitOK, "seats", "-c", s.config, "--history")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if !strings.HasPrefix(lines[0], "AT ") || !strings.Contains(lines[0], "LIMIT") || !strings.Contains(lines[0], "QUEUED") {
		t.Errorf("seats --history header: %q", lines[0])
	}
	if len(lines) != 1+8+1 {
		t.Errorf("seats --history: %d lines, want a header, 8 rows and a forecast:\n%s", len(lines), r.stdout)
	}
	const forecast = "primary forecast: at the current rate, primary is full in about 16 days"
	if !strings.Contains(r.stdout, forecast) {
		t.Errorf("seats --history has no forecast:\n%s", r.stdout)
	}
	r = s.must(exitOK, "seats", "-c", s.config, "--history", "--since", "36h", "--format", "json")
	out.History, out.Forecasts = nil, nil
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	// The two syncs' four rows and the seeded row of a day ago.
	if len(out.History) != 5 || len(out.Forecasts) != 1 || out.Forecasts[0].Pool != "primary" ||
		out.Forecasts[0].FullInDays != 16 {
		t.Errorf("seats --history --since 36h: %+v", out)
	}
	if r := s.must(exitOK, "seats", "-c", s.config, "--history", "--since", "60h"); len(strings.Split(strings.TrimSpace(r.stdout), "\n")) != 1+6+1 {
		t.Errorf("seats --history --since 60h: want the 4 sync rows and 2 seeded days:\n%s", r.stdout)
	}

	// seats shows the forecast too, in text and json.
	if r := s.must(exitOK, "seats", "-c", s.config); !strings.Contains(r.stdout, forecast) {
		t.Errorf("seats has no forecast:\n%s", r.stdout)
	}
	r = s.must(exitOK, "seats", "-c", s.config, "--format", "json")
	var seats struct {
		Pools []struct {
			Name     string `json:"name"`
			Forecast *struct {
				FullInDays float64 `json:"full_in_days"`
			} `json:"forecast"`
		} `json:"pools"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &seats); err != nil {
		t.Fatal(err)
	}
	for _, p := range seats.Pools {
		if (p.Name == "primary") != (p.Forecast != nil) {
			t.Errorf("seats json: pool %s forecast %+v; want one for primary only", p.Name, p.Forecast)
		}
	}

	s.must(exitUsage, "seats", "-c", s.config, "--history", "--since", "soon")
	s.must(exitUsage, "seats", "-c", s.config, "--since", "30d")
}
