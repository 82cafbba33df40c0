package okta_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/connector/okta"
	"github.com/seatsync/seatsync/internal/oktatest"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store/sqlite"
)

// runner is a reconcile.Runner over a real SQLite store, with the okta
// connector on the org's fake clock: the code path of `seatsync sync`.
func (o *org) runner(t *testing.T, src testConfig) (*reconcile.Runner, *sqlite.Store) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "seatsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var cfg config.Config
	cfg.Version = 1
	cfg.Licensing.Pools = []config.Pool{
		{Name: "primary", Limit: config.Limit{N: 5000}, Areas: []string{"primary"}},
		{Name: "extranet", Limit: config.Limit{Unlimited: true}, Areas: []string{"suppliers", "partners"}},
	}
	cfg.Licensing.OnOverage = "keep"
	cfg.Safety.MaxDeprovision = config.Threshold{Percent: true, Value: 10, Set: true}
	cfg.Sources = []config.Source{src.source()}
	return &reconcile.Runner{
		Config:     &cfg,
		Store:      st,
		Connectors: connector.Registry{"okta": {Settings: okta.NewSettings, Open: o.opener()}},
		Log:        zaptest.NewLogger(t),
	}, st
}

func runSync(t *testing.T, r *reconcile.Runner) (*reconcile.Report, error) {
	t.Helper()
	return r.Run(context.Background(), reconcile.Options{Mode: reconcile.ModeSync})
}

func profiles(t *testing.T, st *sqlite.Store) []model.Profile {
	t.Helper()
	ps, err := st.Profiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestSyncThroughRunner(t *testing.T) {
	o := newOrg(t, 0)
	ids := o.people(1000, func(i int, u *oktatest.User) {
		switch {
		case i < 10:
			u.Profile["costCenter"] = "SUP-1" // custom attribute, used by an area rule
		case i < 15:
			u.Status = "SUSPENDED"
		}
	})
	src := o.source()
	src.AreaRules = []config.AreaRule{{Attribute: &config.AttributeRule{Name: "costCenter", Equals: "SUP-1"}, Area: "suppliers"}}
	r, st := o.runner(t, src)
	rep, err := runSync(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Summary.Create != 1000 {
		t.Fatalf("created %d, want 1000", rep.Summary.Create)
	}
	area := map[string]string{}
	blocked := map[string]model.Reason{}
	for _, p := range profiles(t, st) {
		area[p.ExternalID] = p.Area
		if p.State == model.Blocked {
			blocked[p.ExternalID] = p.BlockReason
		}
	}
	for i, id := range ids {
		wantArea := "primary"
		if i < 10 {
			wantArea = "suppliers"
		}
		if area[id] != wantArea {
			t.Errorf("user %d: area %q, want %q", i, area[id], wantArea)
		}
		if suspended := i >= 10 && i < 15; suspended != (blocked[id] == model.ReasonSourceDisabled) {
			t.Errorf("user %d: blocked %q", i, blocked[id])
		}
	}
	if len(blocked) != 5 {
		t.Errorf("%d blocked, want the 5 suspended", len(blocked))
	}
	// A second run changes nothing.
	rep, err = runSync(t, r)
	if err != nil || rep.Summary.Create+rep.Summary.Update+rep.Summary.Block != 0 {
		t.Fatalf("second run: %+v, %v", rep.Summary, err)
	}
}

func TestSyncGroupScopeThroughRunner(t *testing.T) {
	o := newOrg(t, 0)
	o.people(20, func(i int, u *oktatest.User) {
		switch {
		case i == 0:
			u.Groups = []string{"Contractors", "Partners"}
		case i < 5:
			u.Groups = []string{"Contractors"}
		case i < 8:
			u.Groups = []string{"Partners"}
		}
	})
	src := o.source()
	src.Groups = []string{"Contractors", "Partners"}
	src.AreaRules = []config.AreaRule{{Group: "Partners", Area: "partners"}}
	r, st := o.runner(t, src)
	if _, err := runSync(t, r); err != nil {
		t.Fatal(err)
	}
	ps := profiles(t, st)
	if len(ps) != 8 {
		t.Fatalf("%d profiles, want 8", len(ps))
	}
	partners := 0
	for _, p := range ps {
		if p.Area == "partners" {
			partners++
		}
	}
	if partners != 4 {
		t.Errorf("%d in partners, want 4 (the person in both groups included)", partners)
	}
}

func TestSyncRateLimitStormWritesNothing(t *testing.T) {
	o := newOrg(t, 0)
	o.people(300, nil)
	r, st := o.runner(t, o.source())
	o.Throttle(1000)
	_, err := runSync(t, r)
	if !errors.Is(err, reconcile.ErrPull) {
		t.Fatalf("err %v, want a failed pull", err)
	}
	if ps := profiles(t, st); len(ps) != 0 {
		t.Errorf("%d profiles written", len(ps))
	}
	runs, err := st.Runs(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Result != reconcile.ResultFailed {
		t.Errorf("runs %+v, want one failed run", runs)
	}
}

func TestSync429Recovers(t *testing.T) {
	o := newOrg(t, 0)
	o.people(300, nil)
	r, st := o.runner(t, o.source())
	o.Throttle(3)
	if _, err := runSync(t, r); err != nil {
		t.Fatal(err)
	}
	if ps := profiles(t, st); len(ps) != 300 {
		t.Errorf("%d profiles, want 300", len(ps))
	}
}

func TestSync500OnPage3BlocksNobody(t *testing.T) {
	for _, fault := range []oktatest.Fault{oktatest.Fault500, oktatest.FaultBadJSON, oktatest.FaultHang} {
		o := newOrg(t, 0)
		o.people(1000, nil)
		src := o.source()
		src.Timeout.Duration = 300 * time.Millisecond
		r, st := o.runner(t, src)
		if _, err := runSync(t, r); err != nil {
			t.Fatal(err)
		}
		before := profiles(t, st)
		o.Fail(3, fault)
		_, err := runSync(t, r)
		if !errors.Is(err, reconcile.ErrPull) {
			t.Fatalf("fault %d: err %v, want a failed pull", fault, err)
		}
		after := profiles(t, st)
		if len(after) != len(before) {
			t.Fatalf("fault %d: %d profiles, was %d", fault, len(after), len(before))
		}
		for i := range after {
			if after[i].State != model.Active || after[i].Version != before[i].Version {
				t.Fatalf("fault %d: profile %s changed: %s %s", fault, after[i].Username, after[i].State, after[i].BlockReason)
			}
		}
	}
}
