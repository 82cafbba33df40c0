package daemon

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	csvsource "github.com/seatsync/seatsync/connector/csv"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/server"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/store/sqlite"
)

func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.ParseWith([]byte(yaml), "/etc/seatsync/seatsync.yaml", func(string) (string, bool) { return "", false },
		config.Plugins{Sources: config.Kinds{"csv": csvsource.NewSettings}})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const pools = `version: 1
licensing:
  pools:
    - {name: primary, limit: 10, areas: [primary]}
`

func TestPeriod(t *testing.T) {
	from := time.Date(2026, 3, 4, 10, 7, 0, 0, time.UTC)
	for spec, want := range map[string]time.Duration{
		"@every 15m":   15 * time.Minute,
		"*/10 * * * *": 10 * time.Minute,
		"0 3 * * *":    24 * time.Hour,
		"@hourly":      time.Hour,
	} {
		sched, err := config.ParseSchedule(spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := Period(sched, from); got != want {
			t.Errorf("Period(%q) = %v, want %v", spec, got, want)
		}
	}
}

func TestGroups(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       map[string][]string
	}{
		{"default schedule", pools + `sources:
  - {name: a, type: csv, path: a.csv}
  - {name: b, type: csv, path: b.csv}
`, map[string][]string{DefaultSchedule: {"a", "b"}}},
		{"top level and an override", pools + `schedule: "*/5 * * * *"
sources:
  - {name: a, type: csv, path: a.csv}
  - {name: b, type: csv, path: b.csv, schedule: "@every 1h"}
  - {name: c, type: csv, path: c.csv}
`, map[string][]string{"*/5 * * * *": {"a", "c"}, "@every 1h": {"b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := groups(parse(t, tt.yaml))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("groups (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDue(t *testing.T) {
	cfg := parse(t, pools+`schedule: "@every 15m"
sources:
  - {name: a, type: csv, path: a.csv}
  - {name: b, type: csv, path: b.csv, schedule: "@every 24h"}
  - {name: c, type: csv, path: c.csv, schedule: "@every 24h"}
`)
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	for _, r := range []store.Run{
		// a: synced 20 minutes ago (older than 15m): due.
		{ID: "1", Mode: "sync", Result: "ok", Sources: []string{"a"}, StartedAt: now.Add(-20 * time.Minute), FinishedAt: now.Add(-20 * time.Minute)},
		// a failed since: still due.
		{ID: "2", Mode: "sync", Result: "failed", Sources: []string{"a", "b", "c"}, StartedAt: now.Add(-time.Minute), FinishedAt: now.Add(-time.Minute)},
		// b: synced 2 hours ago, once a day: not due. c: never: due.
		{ID: "3", Mode: "sync", Result: "ok", Sources: []string{"b"}, StartedAt: now.Add(-2 * time.Hour), FinishedAt: now.Add(-2 * time.Hour)},
		// a plan is not a sync.
		{ID: "4", Mode: "plan", Result: "ok", Sources: []string{"c"}, StartedAt: now, FinishedAt: now},
	} {
		if err := st.SaveRun(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	d := New(cfg, st, nil, nil, nil, zap.NewNop())
	d.runCtx = context.Background()
	d.Now = func() time.Time { return now }
	got, err := d.due(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "c"}, got); diff != "" {
		t.Errorf("due (-want +got):\n%s", diff)
	}
}

func TestRetryDelay(t *testing.T) {
	var got []time.Duration
	for a := range 7 {
		got = append(got, retryDelay(RetryFirst, a))
	}
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, RetryMax, RetryMax}
	if !slices.Equal(got, want) {
		t.Errorf("retry delays %v, want %v", got, want)
	}
}

// TestNextRuns: GET /api/v1/status shows each schedule of the
// configuration with its next run.
func TestNextRuns(t *testing.T) {
	cfg := parse(t, pools+`schedule: "*/5 * * * *"
sources:
  - {name: a, type: csv, path: a.csv}
  - {name: b, type: csv, path: b.csv, schedule: "0 3 * * *"}
  - {name: c, type: csv, path: c.csv}
`)
	now := time.Date(2026, 3, 4, 10, 7, 30, 0, time.UTC)
	d := New(cfg, nil, nil, nil, nil, zap.NewNop())
	d.Now = func() time.Time { return now }
	want := []server.ScheduledRun{
		{Kind: "sync", Schedule: "*/5 * * * *", Sources: []string{"a", "c"}, NextRun: time.Date(2026, 3, 4, 10, 10, 0, 0, time.UTC)},
		{Kind: "sync", Schedule: "0 3 * * *", Sources: []string{"b"}, NextRun: time.Date(2026, 3, 5, 3, 0, 0, 0, time.UTC)},
	}
	got := backend{d}.NextRuns()
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("NextRuns (-want +got):\n%s", diff)
	}
	d.stopping = true
	if got := d.NextRuns(); len(got) != 0 {
		t.Errorf("NextRuns while stopping: %+v, want none", got)
	}
}

// Each run's record says what started it: a schedule, the start-up sync,
// or the API.
func TestRunsRecordTheirTrigger(t *testing.T) {
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "a.csv")
	if err := os.WriteFile(csvPath, []byte("external_id,username,email\nE1,alice,alice@example.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, pools+`schedule: "@every 15m"
sources:
  - {name: a, type: csv, path: `+csvPath+`}
`)
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := New(cfg, st, connector.Registry{"csv": csvsource.Kind}, nil, nil, zap.NewNop())
	d.runCtx = context.Background()
	cfg.Server.RunOnStart = RunOnStartAlways
	d.runOnStart(cfg)
	d.runs.Wait()
	d.scheduled([]string{"a"}, "@every 15m")
	if _, err := (backend{d}).StartSync(reconcile.Options{Mode: reconcile.ModeSync}); err != nil {
		t.Fatal(err)
	}
	d.runs.Wait()
	runs, err := st.Runs(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range runs {
		sum, err := reconcile.ParseRunSummary(r.Summary)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Result+" "+sum.Trigger)
	}
	slices.Reverse(got) // oldest first
	if diff := cmp.Diff([]string{"ok start", "ok schedule", "ok api"}, got); diff != "" {
		t.Errorf("runs' results and triggers (-want +got):\n%s", diff)
	}
}
