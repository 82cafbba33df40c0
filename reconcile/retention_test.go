package reconcile_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store/sqlite"
)

// TestRetention: with store.retention, a sync prunes the runs and audit
// entries older than their periods; without it, everything is kept.
func TestRetention(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "seatsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	people := []model.Identity{{ExternalID: "E1", Username: "ann", Enabled: true}}
	cfg := &config.Config{
		Version:   1,
		Licensing: config.Licensing{Pools: []config.Pool{{Name: "primary", Limit: config.Limit{N: 10}, Areas: []string{"primary"}}}, OnOverage: "keep"},
		Safety:    config.Safety{MaxDeprovision: config.Threshold{Value: 100, Set: true}},
		Sources:   []config.Source{{Name: "hr", Type: propSourceType, UsernameCase: "lower", Area: "primary", OnLeave: "block"}},
	}
	r := &reconcile.Runner{Config: cfg, Store: st, Log: zap.NewNop(), Now: func() time.Time { return clock },
		Connectors: connector.Registry{propSourceType: {Open: func(config.Source, *zap.Logger) (connector.Source, error) {
			return &fakeSource{ids: people}, nil
		}}}}
	sync := func() {
		t.Helper()
		if _, err := r.Run(ctx, reconcile.Options{Mode: reconcile.ModeSync}); err != nil {
			t.Fatal(err)
		}
	}
	count := func() (int, int) {
		t.Helper()
		runs, err := st.Runs(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		audit, err := st.Audit(ctx, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(runs), len(audit)
	}
	sync() // creates ann: one run, one audit entry
	clock = clock.Add(48 * time.Hour)
	people[0].Title = "Chef"
	sync() // updates her
	if runs, audit := count(); runs != 2 || audit != 2 {
		t.Fatalf("without retention: %d runs, %d audit entries; want everything kept (2, 2)", runs, audit)
	}
	cfg.Store.Retention = config.Retention{Runs: config.Days{Duration: 24 * time.Hour}, Audit: config.Days{Duration: 72 * time.Hour}}
	clock = clock.Add(time.Hour)
	sync() // nothing to change; prunes the first run, which is 49 h old
	if runs, audit := count(); runs != 2 || audit != 2 {
		t.Errorf("with runs: 1d, audit: 3d: %d runs, %d audit entries; want the 49-hour-old run gone (2 left) and every audit entry kept", runs, audit)
	}
}
