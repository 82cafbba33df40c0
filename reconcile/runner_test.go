package reconcile_test

import (
	"context"
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
