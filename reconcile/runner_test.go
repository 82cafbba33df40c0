package reconcile_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/connector"
	csvsource "github.com/seatsync/seatsync/connector/csv"
	"github.com/seatsync/seatsync/notify"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/store/sqlite"
)

type recorder struct{ events []notify.Event }

func (r *recorder) Notify(_ context.Context, ev []notify.Event) { r.events = append(r.events, ev...) }

// A sync that finds another process holding the run lock is skipped, not
// failed: it is recorded as skipped, under the ID the caller chose, and
// notifies nobody.
func TestRunSkippedWhileLocked(t *testing.T) {
	dir := t.TempDir()
	writePeople(t, filepath.Join(dir, "people.csv"), 3)
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.AcquireLock(context.Background(), "other-process", time.Minute); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	r := &reconcile.Runner{Config: benchConfig(dir), Store: st, Connectors: connector.Registry{"csv": csvsource.Kind},
		Notifier: rec, Log: zap.NewNop()}
	rep, err := r.Run(context.Background(), reconcile.Options{Mode: reconcile.ModeSync, RunID: "RUN-1"})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
	if rep.RunID != "RUN-1" || rep.Result != reconcile.ResultSkipped {
		t.Errorf("report %s result %s, want RUN-1 skipped", rep.RunID, rep.Result)
	}
	run, err := st.Run(context.Background(), "RUN-1")
	if err != nil || run.Result != reconcile.ResultSkipped {
		t.Errorf("recorded run: %+v, %v", run, err)
	}
	if len(rec.events) != 0 {
		t.Errorf("a skipped run notified: %+v", rec.events)
	}
	if ps, _ := st.Profiles(context.Background()); len(ps) != 0 {
		t.Errorf("a skipped run wrote %d profiles", len(ps))
	}
}

// The Runner reports each source's progress, ending with the full count.
func TestRunProgress(t *testing.T) {
	dir := t.TempDir()
	writePeople(t, filepath.Join(dir, "people.csv"), 2500)
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var calls [][2]int
	r := &reconcile.Runner{Config: benchConfig(dir), Store: st, Connectors: connector.Registry{"csv": csvsource.Kind},
		Log: zap.NewNop(), Progress: func(source string, identities, pages int) {
			if source != "hr" {
				t.Errorf("progress for source %q", source)
			}
			calls = append(calls, [2]int{identities, pages})
		}}
	if _, err := r.Run(context.Background(), reconcile.Options{Mode: reconcile.ModePlan}); err != nil {
		t.Fatal(err)
	}
	want := [][2]int{{1000, 0}, {2000, 0}, {2500, 0}}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("progress calls %v, want %v", calls, want)
	}
}

// A run's record says what started it, in its summary, as the report
// does; a run that finds an earlier one interrupted ends it with what had
// started that one.
func TestRunRecordsTrigger(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writePeople(t, filepath.Join(dir, "people.csv"), 3)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := st.SaveRun(ctx, store.Run{ID: "RUN-0", Mode: reconcile.ModeSync, Result: store.RunRunning, StartedAt: started,
		Summary: []byte(`{"create":0,"trigger":"api"}`)}); err != nil {
		t.Fatal(err)
	}
	r := &reconcile.Runner{Config: benchConfig(dir), Store: st, Connectors: connector.Registry{"csv": csvsource.Kind}, Log: zap.NewNop()}
	rep, err := r.Run(ctx, reconcile.Options{Mode: reconcile.ModeSync, RunID: "RUN-1", Trigger: reconcile.TriggerSchedule})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Trigger != reconcile.TriggerSchedule {
		t.Errorf("report trigger %q, want schedule", rep.Trigger)
	}
	runs, err := st.Runs(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, run := range runs {
		sum, err := reconcile.ParseRunSummary(run.Summary)
		if err != nil {
			t.Fatalf("run %s: %v", run.ID, err)
		}
		got[run.ID] = fmt.Sprintf("%s %s create=%d", run.Result, sum.Trigger, sum.Create)
	}
	want := map[string]string{"RUN-0": "interrupted api create=0", "RUN-1": "ok schedule create=3"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("recorded runs %v, want %v", got, want)
	}
	// Clients read the trigger beside the summary, which stays all counts.
	b, err := json.Marshal(reconcile.Records(runs))
	if err != nil {
		t.Fatal(err)
	}
	var records []struct {
		ID      string         `json:"run_id"`
		Trigger string         `json:"trigger"`
		Summary map[string]int `json:"summary"`
	}
	if err := json.Unmarshal(b, &records); err != nil {
		t.Fatalf("run records: %v\n%s", err, b)
	}
	if len(records) != 2 || records[0].ID != "RUN-1" || records[0].Trigger != "schedule" || records[0].Summary["create"] != 3 || records[1].Trigger != "api" {
		t.Errorf("run records: %s", b)
	}
	if sum, err := reconcile.ParseRunSummary(nil); err != nil || sum != (reconcile.RunSummary{}) {
		t.Errorf("an empty summary reads as %+v, %v", sum, err)
	}
}
