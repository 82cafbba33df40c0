package reconcile_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	csvsource "github.com/seatsync/seatsync/connector/csv"
	"github.com/seatsync/seatsync/notify"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/store/sqlite"
)

// countingSender keeps what it was sent.
type countingSender struct {
	mu   sync.Mutex
	sent []notify.Event
}

func (s *countingSender) Name() string { return "test" }

func (s *countingSender) Send(_ context.Context, e notify.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, e)
	return nil
}

func (s *countingSender) of(kind notify.Kind) []notify.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []notify.Event
	for _, e := range s.sent {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// seatSite is an installation with a YAML limit, a store and a dispatcher
// that sends through a countingSender.
type seatSite struct {
	t      *testing.T
	dir    string
	cfg    *config.Config
	r      *reconcile.Runner
	st     store.Store
	d      *notify.Dispatcher
	sender *countingSender
	clock  time.Time
}

func newSeatSite(t *testing.T, people, limit int) *seatSite {
	t.Helper()
	dir := t.TempDir()
	writePeople(t, filepath.Join(dir, "people.csv"), people)
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := benchConfig(dir)
	cfg.Licensing.Pools[0].Limit = config.Limit{N: limit}
	s := &seatSite{t: t, dir: dir, cfg: cfg, st: st, sender: &countingSender{}, clock: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	s.d = notify.NewDispatcher(st, []notify.Sender{s.sender}, zap.NewNop(), notify.DispatcherOptions{})
	t.Cleanup(func() { s.d.Close(context.Background()) })
	s.r = &reconcile.Runner{Config: cfg, Store: st, Connectors: connector.Registry{"csv": csvsource.Kind},
		Notifier: s.d, Log: zap.NewNop(), Now: func() time.Time { return s.clock }}
	return s
}

func (s *seatSite) sync() *reconcile.Report {
	s.t.Helper()
	s.clock = s.clock.Add(time.Hour)
	rep, err := s.r.Run(context.Background(), reconcile.Options{Mode: reconcile.ModeSync})
	if err != nil {
		s.t.Fatalf("sync: %v", err)
	}
	if err := s.d.Flush(context.Background()); err != nil {
		s.t.Fatal(err)
	}
	return rep
}

// A limit raised with people queued is announced once, with the people
// the run activated; an unchanged limit is not; a lowered one says what
// it does to the seats in use. The first run announces nothing.
func TestSeatsChanged(t *testing.T) {
	s := newSeatSite(t, 5, 3)
	if rep := s.sync(); len(rep.LimitChanges) != 0 || len(s.sender.of(notify.SeatsChanged)) != 0 {
		t.Fatalf("first run: changes %+v, sent %+v; want none: no limit was known before", rep.LimitChanges, s.sender.of(notify.SeatsChanged))
	}

	s.cfg.Licensing.Pools[0].Limit = config.Limit{N: 5}
	rep := s.sync()
	if len(rep.LimitChanges) != 1 || rep.LimitChanges[0].OldLimit != 3 || rep.LimitChanges[0].NewLimit != 5 {
		t.Errorf("limit changes in the report: %+v", rep.LimitChanges)
	}
	sent := s.sender.of(notify.SeatsChanged)
	if len(sent) != 1 {
		t.Fatalf("seats_changed sent %d times, want once: %+v", len(sent), sent)
	}
	e := sent[0]
	if e.Pool != "primary" || e.OldLimit != 3 || e.Limit != 5 || len(e.People) != 2 ||
		!strings.Contains(e.Message, "from 3 to 5") || !strings.Contains(e.Message, "2 people were activated") {
		t.Errorf("seats_changed: %+v", e)
	}
	if subj := notify.Subject(e); subj != "[seatsync] Pool primary's limit changed from 3 to 5" {
		t.Errorf("subject %q", subj)
	}
	if body := notify.Body(e); !strings.Contains(body, "Old limit: 3\n") || !strings.Contains(body, "Limit:     5\n") {
		t.Errorf("body:\n%s", body)
	}

	// Unchanged: nothing more is sent, however many runs.
	s.sync()
	s.sync()
	if n := len(s.sender.of(notify.SeatsChanged)); n != 1 {
		t.Errorf("after unchanged runs seats_changed was sent %d times, want still once", n)
	}

	// Lowered below what is in use.
	s.cfg.Licensing.Pools[0].Limit = config.Limit{N: 4}
	s.sync()
	sent = s.sender.of(notify.SeatsChanged)
	if len(sent) != 2 {
		t.Fatalf("after lowering, seats_changed sent %d times, want twice", len(sent))
	}
	if m := sent[1].Message; !strings.Contains(m, "from 5 to 4") || !strings.Contains(m, "5 seats are in use, 1 over the new limit") {
		t.Errorf("lowered: %q", m)
	}

	// And back up: a change to a limit seen before is news again.
	s.cfg.Licensing.Pools[0].Limit = config.Limit{N: 5}
	s.sync()
	if n := len(s.sender.of(notify.SeatsChanged)); n != 3 {
		t.Errorf("raised again: seats_changed sent %d times, want 3", n)
	}

	// Every sync recorded the pool.
	rows, err := s.st.SeatHistory(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 || rows[0].Limit != 3 || rows[0].Used != 3 || rows[0].Queued != 2 || rows[5].Limit != 5 || rows[5].Used != 5 {
		t.Errorf("seat history: %+v", rows)
	}
}

// The run that sees a raised limit activates whom it can; if it could not
// (the report says the seats are free but nobody was activated), the
// message says they will be at the next run. Computed from the queue and
// the free seats.
func TestSeatsChangedMessage(t *testing.T) {
	pool := reconcile.PoolResult{Name: "primary", Limit: 62, UsedAfter: 50, RemainingAfter: 12, QueuedAfter: 15}
	rep := &reconcile.Report{RunID: "r", Mode: reconcile.ModeSync, Result: reconcile.ResultOK, Pools: []reconcile.PoolResult{pool},
		LimitChanges: []reconcile.LimitChange{{Kind: store.SeatKindPool, Name: "primary", OldLimit: 50, NewLimit: 62, LimitFrom: "MAX_USERS"}}}
	var got []string
	for _, e := range reconcile.Events(rep, 0) {
		if e.Kind == notify.SeatsChanged {
			got = append(got, e.Message)
		}
	}
	want := "Pool primary's limit changed from 50 to 62 (the licence's MAX_USERS). 12 people will be activated at the next run (50 of 62 seats used, 15 queued)."
	if len(got) != 1 || got[0] != want {
		t.Errorf("messages %q, want [%q]", got, want)
	}
	rep.LimitChanges = nil
	for _, e := range reconcile.Events(rep, 0) {
		if e.Kind == notify.SeatsChanged {
			t.Errorf("no change, yet %q", e.Message)
		}
	}
}

// A pool growing a seat a day is forecast to fill; seats_low says when.
func TestSeatsForecastInReportAndSeatsLow(t *testing.T) {
	s := newSeatSite(t, 10, 20)
	s.cfg.Notify.WarnAtPercent = 60 // reached on the third day, with history to forecast from
	var rep *reconcile.Report
	for n := 10; n <= 14; n++ {
		writePeople(t, filepath.Join(s.dir, "people.csv"), n)
		s.clock = s.clock.Add(24*time.Hour - time.Hour) // sync adds the hour back
		rep = s.sync()
	}
	f := rep.Pools[0].Forecast
	if f == nil || f.FullInDays != 6 || f.Text != "at the current rate, primary is full in about 6 days" {
		t.Fatalf("forecast %+v, want 6 days: 14 of 20 used, one more a day", f)
	}
	var low []string
	for _, e := range s.sender.of(notify.SeatsLow) {
		low = append(low, e.Message)
	}
	if len(low) != 1 || !strings.Contains(low[0], "(12 of 20 seats used, 8 remaining). At the current rate, primary is full in about 8 days.") {
		t.Errorf("seats_low messages %q; want one, with the forecast", low)
	}
}
