package main_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestQueueOrderCLI: with two seats taken, people wait in the order seats
// are given: an executive (priority weight 100) first though they asked
// last, then the earlier sync's people, then the later sync's, each sync's
// by username. profiles list and seats show that order.
func TestQueueOrderCLI(t *testing.T) {
	first := []string{row("E1", "alice"), row("E2", "bob"), row("E3", "wsilva"), row("E4", "xberg"), row("E5", "yoko")}
	s := newSite(t, siteOptions{primaryLimit: "2"}, first...)
	s.must(exitOK, "sync", "-c", s.config)

	later := []string{"aaron", "abby", "adam", "beth", "carl", "dora", "emil", "finn"}
	people := slices.Clone(first)
	for i, u := range later {
		people = append(people, row(fmt.Sprintf("L%d", i), u))
	}
	people = append(people, row("X1", "zed", "teams=Staff|Executives"), row("P1", "pat", "teams=Partners"))
	s.people(people...)
	s.must(exitOK, "sync", "-c", s.config)

	want := append([]string{"zed", "wsilva", "xberg", "yoko"}, later...)

	for _, reason := range []string{"license", "licence"} {
		r := s.must(exitOK, "profiles", "list", "-c", s.config, "--state", "blocked", "--reason", reason,
			"--fields", "username,queue_position,pool", "--format", "csv")
		rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
		if err != nil {
			t.Fatalf("csv: %v\n%s", err, r)
		}
		wantRows := [][]string{{"username", "queue_position", "pool"}}
		for i, u := range want {
			wantRows = append(wantRows, []string{u, fmt.Sprint(i + 1), "primary"})
		}
		if diff := cmp.Diff(wantRows, rows); diff != "" {
			t.Errorf("profiles list --reason %s (-want +got):\n%s", reason, diff)
		}
	}

	// Other listings keep username order; queue_position is empty for
	// the seated.
	r := s.must(exitOK, "profiles", "list", "-c", s.config, "--fields", "username,queue_position", "--format", "csv")
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v\n%s", err, r)
	}
	var names []string
	for _, rec := range rows[1:] {
		names = append(names, rec[0])
		if (rec[0] == "alice" || rec[0] == "pat") && rec[1] != "" {
			t.Errorf("%s holds a seat but has queue_position %q", rec[0], rec[1])
		}
	}
	if !slices.IsSorted(names) || len(names) != 2+len(want)+1 {
		t.Errorf("profiles list without --reason: %v, want every profile by username", names)
	}

	r = s.must(exitOK, "seats", "-c", s.config, "--format", "json")
	var seats struct {
		Pools []struct {
			Name   string `json:"name"`
			Active int    `json:"active"`
			Queued int    `json:"queued"`
			Queue  []struct {
				Position int       `json:"position"`
				Username string    `json:"username"`
				QueuedAt time.Time `json:"queued_at"`
			} `json:"queue"`
		} `json:"pools"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &seats); err != nil {
		t.Fatalf("seats --format json: %v\n%s", err, r)
	}
	if len(seats.Pools) != 2 || seats.Pools[0].Name != "primary" {
		t.Fatalf("seats: %s", r.stdout)
	}
	p := seats.Pools[0]
	if p.Active != 2 || p.Queued != len(want) || len(p.Queue) != 10 {
		t.Fatalf("seats of primary: active %d, queued %d, %d in queue; want 2, %d, 10\n%s", p.Active, p.Queued, len(p.Queue), len(want), r.stdout)
	}
	for i, q := range p.Queue {
		if q.Position != i+1 || q.Username != want[i] || q.QueuedAt.IsZero() {
			t.Errorf("seats queue[%d] = %+v, want position %d %s with a queue time", i, q, i+1, want[i])
		}
	}
	if !p.Queue[1].QueuedAt.Before(p.Queue[0].QueuedAt) {
		t.Errorf("zed (priority) asked later than wsilva yet goes first: %v vs %v", p.Queue[0].QueuedAt, p.Queue[1].QueuedAt)
	}
	if ext := seats.Pools[1]; ext.Queue == nil || len(ext.Queue) != 0 {
		t.Errorf("extranet has nobody waiting, want queue []: %s", r.stdout)
	}

	r = s.must(exitOK, "seats", "-c", s.config)
	if !strings.Contains(r.stdout, "primary queue: 1 zed (since ") || !strings.Contains(r.stdout, ", 2 wsilva (since ") ||
		!strings.Contains(r.stdout, ", and 2 more\n") || strings.Contains(r.stdout, "extranet queue") {
		t.Errorf("seats text output:\n%s", r.stdout)
	}
}
