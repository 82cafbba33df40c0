package notify

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
)

// TestEpisodes runs a sequence of runs through one Dispatcher and checks
// what is sent after each: every event once per episode.
func TestEpisodes(t *testing.T) {
	full := pool("primary", 10, 10, 3)
	type step struct {
		run      Run
		wantSent []string // sent after this run
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"seats_exhausted once while the pool stays full, then seats_available", []step{
			{Run{RunID: "r1", Events: []Event{exhausted("r1", full, "a", "b", "c")}, Pools: []PoolState{full}}, []string{"seats_exhausted/primary r1"}},
			{Run{RunID: "r2", Events: []Event{exhausted("r2", pool("primary", 10, 10, 4), "d")}, Pools: []PoolState{pool("primary", 10, 10, 4)}}, nil},
			// No one new blocked, but the pool is still full with people queued.
			{Run{RunID: "r3", Events: nil, Pools: []PoolState{full}}, nil},
			{Run{RunID: "r4", Events: []Event{available("r4", pool("primary", 10, 9, 0), "a", "b", "c")}, Pools: []PoolState{pool("primary", 10, 9, 0)}},
				[]string{"seats_available/primary r4"}},
			// Full again, and someone blocked: a new episode.
			{Run{RunID: "r5", Events: []Event{exhausted("r5", pool("primary", 10, 10, 1), "e")}, Pools: []PoolState{pool("primary", 10, 10, 1)}},
				[]string{"seats_exhausted/primary r5"}},
		}},
		{"seats_available once while seats stay free, again after the pool filled up", []step{
			{Run{RunID: "r1", Events: []Event{available("r1", pool("primary", 10, 8, 0), "a")}, Pools: []PoolState{pool("primary", 10, 8, 0)}},
				[]string{"seats_available/primary r1"}},
			{Run{RunID: "r2", Events: []Event{available("r2", pool("primary", 10, 9, 0), "b")}, Pools: []PoolState{pool("primary", 10, 9, 0)}}, nil},
			{Run{RunID: "r3", Events: nil, Pools: []PoolState{pool("primary", 10, 10, 0)}}, nil},
			{Run{RunID: "r4", Events: []Event{available("r4", pool("primary", 10, 9, 0), "c")}, Pools: []PoolState{pool("primary", 10, 9, 0)}},
				[]string{"seats_available/primary r4"}},
		}},
		{"seats_available that fills the pool is news every time", []step{
			{Run{RunID: "r1", Events: []Event{available("r1", pool("primary", 10, 10, 2), "a")}, Pools: []PoolState{pool("primary", 10, 10, 2)}},
				[]string{"seats_available/primary r1"}},
			{Run{RunID: "r2", Events: []Event{available("r2", pool("primary", 10, 10, 1), "b")}, Pools: []PoolState{pool("primary", 10, 10, 1)}},
				[]string{"seats_available/primary r2"}},
		}},
		{"seats_low and overage while they last", []step{
			{Run{RunID: "r1", Events: []Event{low("r1", pool("primary", 10, 9, 0))}, Pools: []PoolState{pool("primary", 10, 9, 0)}}, []string{"seats_low/primary r1"}},
			{Run{RunID: "r2", Events: []Event{low("r2", pool("primary", 10, 10, 0)), overage("r2", pool("extranet", 5, 6, 0))}, Pools: []PoolState{pool("primary", 10, 10, 0), pool("extranet", 5, 6, 0)}}, []string{"overage/extranet r2"}},
			{Run{RunID: "r3", Events: []Event{low("r3", pool("primary", 10, 9, 0))}, Pools: []PoolState{pool("primary", 10, 9, 0), pool("extranet", 5, 5, 0)}}, nil},
			{Run{RunID: "r4", Events: nil, Pools: []PoolState{pool("primary", 10, 5, 0), pool("extranet", 5, 6, 0)}}, nil},
			{Run{RunID: "r5", Events: []Event{low("r5", pool("primary", 10, 9, 0)), overage("r5", pool("extranet", 5, 6, 0))}, Pools: []PoolState{pool("primary", 10, 9, 0), pool("extranet", 5, 6, 0)}}, []string{"seats_low/primary r5", "overage/extranet r5"}},
		}},
		{"run_failed once per failure episode; a failed run leaves pool episodes open", []step{
			{Run{RunID: "r1", Events: []Event{exhausted("r1", full, "a")}, Pools: []PoolState{full}}, []string{"seats_exhausted/primary r1"}},
			{Run{RunID: "r2", Events: []Event{failed("r2")}, Pools: nil}, []string{"run_failed r2"}},
			{Run{RunID: "r3", Events: []Event{failed("r3")}, Pools: nil}, nil},
			{Run{RunID: "r4", Events: nil, Pools: []PoolState{full}}, nil},
			{Run{RunID: "r5", Events: []Event{failed("r5")}, Pools: nil}, []string{"run_failed r5"}},
		}},
		{"target_failed once until a push to that target goes through", []step{
			{Run{RunID: "r1", Events: []Event{targetDown("r1", "intranet")}, Targets: []TargetState{{"intranet", false}, {"lms", true}}}, []string{"target_failed/intranet r1"}},
			{Run{RunID: "r2", Events: []Event{targetDown("r2", "intranet")}, Targets: []TargetState{{"intranet", false}}}, nil},
			{Run{RunID: "r3", Events: []Event{targetDown("r3", "lms")}, Targets: []TargetState{{"intranet", false}, {"lms", false}}}, []string{"target_failed/lms r3"}},
			{Run{RunID: "r4", Targets: []TargetState{{"intranet", true}, {"lms", false}}}, nil},
			{Run{RunID: "r5", Events: []Event{targetDown("r5", "intranet")}, Targets: []TargetState{{"intranet", false}}}, []string{"target_failed/intranet r5"}},
		}},
		{"guard_tripped once until a run goes through", []step{
			{Run{RunID: "r1", Events: []Event{refused("r1")}, Pools: []PoolState{full}}, []string{"guard_tripped r1"}},
			{Run{RunID: "r2", Events: []Event{refused("r2")}, Pools: []PoolState{full}}, nil},
			{Run{RunID: "r3", Events: []Event{failed("r3")}, Pools: nil}, []string{"run_failed r3"}},
			{Run{RunID: "r4", Events: []Event{refused("r4")}, Pools: []PoolState{full}}, nil},
			{Run{RunID: "r5", Events: nil, Pools: []PoolState{full}}, nil},
			{Run{RunID: "r6", Events: []Event{refused("r6")}, Pools: []PoolState{full}}, []string{"guard_tripped r6"}},
		}},
		{"a refused run's pool numbers do not end pool episodes", []step{
			{Run{RunID: "r1", Events: []Event{exhausted("r1", full, "a")}, Pools: []PoolState{full}}, []string{"seats_exhausted/primary r1"}},
			{Run{RunID: "r2", Events: []Event{refused("r2")}, Pools: []PoolState{pool("primary", 10, 4, 0)}}, []string{"guard_tripped r2"}},
			{Run{RunID: "r3", Events: []Event{exhausted("r3", full, "b")}, Pools: []PoolState{full}}, nil},
		}},
		{"license_expiring once per warning, license_expired once, a renewal ends them", []step{
			{Run{RunID: "r1", Events: []Event{expiring("r1", 30)}}, []string{"license_expiring/30d r1"}},
			{Run{RunID: "r2", Events: []Event{expiring("r2", 30)}}, nil},
			{Run{RunID: "r3", Events: []Event{expiring("r3", 7)}}, []string{"license_expiring/7d r3"}},
			// A failed run reports the licence too, and ends nothing.
			{Run{RunID: "r4", Events: []Event{failed("r4"), expiring("r4", 1)}}, []string{"run_failed r4", "license_expiring/1d r4"}},
			{Run{RunID: "r5", Events: []Event{expiring("r5", 1)}}, nil},
			{Run{RunID: "r6", Events: []Event{{Kind: LicenseExpired, RunID: "r6", Message: "expired"}}}, []string{"license_expired r6"}},
			{Run{RunID: "r7", Events: []Event{{Kind: LicenseExpired, RunID: "r7", Message: "expired"}}}, nil},
			// Renewed: nothing to say; the next expiry warns again.
			{Run{RunID: "r8"}, nil},
			{Run{RunID: "r9", Events: []Event{expiring("r9", 30)}}, []string{"license_expiring/30d r9"}},
		}},
		{"license_invalid once while the file stays refused", []step{
			{Run{RunID: "r1", Events: []Event{{Kind: LicenseInvalid, RunID: "r1", Message: "refused"}}}, []string{"license_invalid r1"}},
			{Run{RunID: "r2", Events: []Event{{Kind: LicenseInvalid, RunID: "r2", Message: "refused"}}}, nil},
			{Run{RunID: "r3"}, nil},
			{Run{RunID: "r4", Events: []Event{{Kind: LicenseInvalid, RunID: "r4", Message: "refused"}}}, []string{"license_invalid r4"}},
		}},
		{"a pool gone from the configuration ends its episodes", []step{
			{Run{RunID: "r1", Events: []Event{overage("r1", pool("old", 5, 6, 0))}, Pools: []PoolState{pool("old", 5, 6, 0)}}, []string{"overage/old r1"}},
			{Run{RunID: "r2", Events: nil, Pools: []PoolState{full}}, nil},
			{Run{RunID: "r3", Events: []Event{overage("r3", pool("old", 5, 6, 0))}, Pools: []PoolState{pool("old", 5, 6, 0)}}, []string{"overage/old r3"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			d := NewDispatcher(openStore(t, t.TempDir()), []Sender{rec}, zap.NewNop(), DispatcherOptions{})
			defer closeDispatcher(t, d)
			var want []string
			for _, s := range tc.steps {
				d.NotifyRun(t.Context(), s.run)
				flush(t, d)
				want = append(want, s.wantSent...)
				if diff := cmp.Diff(append([]string{}, want...), rec.kinds()); diff != "" {
					t.Fatalf("after run %s, sent (-want +got):\n%s", s.run.RunID, diff)
				}
			}
		})
	}
}

// TestRestart: a new Dispatcher over the same store (a restarted daemon)
// neither sends an open episode again nor forgets it.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	full := pool("primary", 10, 10, 3)
	rec := &recorder{}
	d := NewDispatcher(openStore(t, dir), []Sender{rec}, zap.NewNop(), DispatcherOptions{})
	d.NotifyRun(t.Context(), Run{RunID: "r1", Events: []Event{exhausted("r1", full, "a"), failed("r1")}, Pools: []PoolState{full}})
	closeDispatcher(t, d)

	rec2 := &recorder{}
	d2 := NewDispatcher(openStore(t, dir), []Sender{rec2}, zap.NewNop(), DispatcherOptions{})
	defer closeDispatcher(t, d2)
	d2.NotifyRun(t.Context(), Run{RunID: "r2", Events: []Event{exhausted("r2", full, "b"), failed("r2")}, Pools: []PoolState{full}})
	flush(t, d2)
	if diff := cmp.Diff([]string{"seats_exhausted/primary r1", "run_failed r1"}, rec.kinds()); diff != "" {
		t.Errorf("before the restart, sent (-want +got):\n%s", diff)
	}
	if got := rec2.kinds(); len(got) != 0 {
		t.Errorf("after the restart, sent again: %v", got)
	}
	// The episodes were not forgotten: their end is seen after the restart.
	d2.NotifyRun(t.Context(), Run{RunID: "r3", Events: nil, Pools: []PoolState{pool("primary", 10, 8, 0)}})
	d2.NotifyRun(t.Context(), Run{RunID: "r4", Events: []Event{failed("r4")}, Pools: nil})
	flush(t, d2)
	if diff := cmp.Diff([]string{"run_failed r4"}, rec2.kinds()); diff != "" {
		t.Errorf("after the restart, sent (-want +got):\n%s", diff)
	}
}

// TestUnsentRetriedNextRun: when every channel failed, the episode is not
// marked sent and the next run sends it (once).
func TestUnsentRetriedNextRun(t *testing.T) {
	full := pool("primary", 10, 10, 3)
	rec := &recorder{fail: true}
	log, logs := observedLogger()
	d := NewDispatcher(openStore(t, t.TempDir()), []Sender{rec}, log, DispatcherOptions{})
	defer closeDispatcher(t, d)
	d.NotifyRun(t.Context(), Run{RunID: "r1", Events: []Event{exhausted("r1", full, "a")}, Pools: []PoolState{full}})
	flush(t, d)
	if n := logs.FilterMessage("send notification").Len(); n != 1 {
		t.Errorf("%d send errors logged, want 1", n)
	}
	rec.setFail(false)
	for _, run := range []string{"r2", "r3"} {
		d.NotifyRun(t.Context(), Run{RunID: run, Events: []Event{exhausted(run, full, "b")}, Pools: []PoolState{full}})
		flush(t, d)
	}
	if diff := cmp.Diff([]string{"seats_exhausted/primary r2"}, rec.kinds()); diff != "" {
		t.Errorf("sent (-want +got):\n%s", diff)
	}
}

// TestNotifyWithoutPools: the plain Notifier method works from the events
// alone.
func TestNotifyWithoutPools(t *testing.T) {
	full := pool("primary", 10, 10, 3)
	rec := &recorder{}
	d := NewDispatcher(openStore(t, t.TempDir()), []Sender{rec}, zap.NewNop(), DispatcherOptions{})
	defer closeDispatcher(t, d)
	var n Notifier = d
	n.Notify(t.Context(), []Event{exhausted("r1", full, "a"), failed("r1")})
	n.Notify(t.Context(), []Event{exhausted("r2", full, "b")})
	n.Notify(t.Context(), []Event{failed("r3")})
	flush(t, d)
	if diff := cmp.Diff([]string{"seats_exhausted/primary r1", "run_failed r1", "run_failed r3"}, rec.kinds()); diff != "" {
		t.Errorf("sent (-want +got):\n%s", diff)
	}
}

// TestNoSenders: with nothing configured the events are still logged.
func TestNoSenders(t *testing.T) {
	log, logs := observedLogger()
	d := NewDispatcher(openStore(t, t.TempDir()), nil, log, DispatcherOptions{})
	d.NotifyRun(t.Context(), Run{RunID: "r1", Events: []Event{failed("r1")}, Pools: nil})
	closeDispatcher(t, d)
	if n := logs.FilterField(zap.String("event", "run_failed")).Len(); n != 1 {
		t.Errorf("%d log lines for run_failed, want 1", n)
	}
}
