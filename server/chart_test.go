package server

import (
	"strings"
	"testing"
	"time"

	"github.com/seatsync/seatsync/store"
)

func seatRows(name string, start time.Time, limits, used []int) []store.SeatRow {
	var out []store.SeatRow
	for i := range used {
		r := store.SeatRow{At: start.Add(time.Duration(i) * 24 * time.Hour), Kind: store.SeatKindPool, Name: name, Used: used[i]}
		if limits[i] < 0 {
			r.Unlimited = true
		} else {
			r.Limit = limits[i]
		}
		out = append(out, r)
	}
	return out
}

func TestChartSeries(t *testing.T) {
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		rows        []store.SeatRow
		used, limit string
	}{
		// A growing pool under a limit of 10: x by day (0, 150, 300), y from
		// 59 (0 used) to 1 (the limit, the top of the scale).
		{"grows", seatRows("primary", start, []int{10, 10, 10}, []int{0, 5, 10}), "0.0,59.0 150.0,30.0 300.0,1.0", "0.0,1.0 150.0,1.0 300.0,1.0"},
		{"flat", seatRows("primary", start, []int{4, 4}, []int{2, 2}), "0.0,30.0 300.0,30.0", "0.0,1.0 300.0,1.0"},
		{"shrinks", seatRows("primary", start, []int{4, 4}, []int{4, 0}), "0.0,1.0 300.0,59.0", "0.0,1.0 300.0,1.0"},
		// The limit steps at the run that saw it change.
		{"limit raised", seatRows("primary", start, []int{5, 10}, []int{5, 10}), "0.0,30.0 300.0,1.0", "0.0,30.0 300.0,30.0 300.0,1.0"},
		{"one reading", seatRows("primary", start, []int{4}, []int{1}), "0.0,44.5 300.0,44.5", "0.0,1.0 300.0,1.0"},
		{"unlimited", seatRows("primary", start, []int{-1, -1}, []int{1, 2}), "0.0,30.0 300.0,1.0", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			other := seatRows("extranet", start, []int{1, 1, 1}, []int{0, 0, 1})
			c := newChart(append(other, tc.rows...), "primary")
			if c == nil {
				t.Fatal("no chart")
			}
			if c.Used != tc.used || c.Limit != tc.limit {
				t.Errorf("used %q limit %q\nwant %q limit %q", c.Used, c.Limit, tc.used, tc.limit)
			}
			if c.Points != len(tc.rows) || !strings.HasPrefix(c.Label, "Seats of primary") {
				t.Errorf("chart %+v", c)
			}
		})
	}
	if c := newChart(nil, "primary"); c != nil {
		t.Errorf("chart of no history: %+v", c)
	}
}
