package reconcile_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/store/sqlite"
)

// TestIncrementalPlansAsFull is the property an incremental run rests
// on: for the same change to the directory, a plan made from the changes
// alone (the changed identities, the delete notices, the profiles the
// store's indexes give for them, and the store's counts) is the plan a
// full pull gives. Each seed starts from a store a full sync keeps in step
// with the directory, changes the directory at random (joins, leaves,
// renames, collisions, moves, disables, unreadable values), plans both
// ways, compares, and syncs on.
//
// A seed replays with -run 'TestIncrementalPlansAsFull/seed=N'.
func TestIncrementalPlansAsFull(t *testing.T) {
	compared := 0
	for seed := range 60 {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			compared += testIncrementalPlan(t, uint64(seed))
		})
	}
	if compared < 250 {
		t.Errorf("only %d change sets were compared; the test reaches too little", compared)
	}
}

// incWorld is the directory of one seed.
type incWorld struct {
	rng    *rand.Rand
	people []*incPerson
	next   int
}

type incPerson struct {
	ext, username, title string
	enabled, partner     bool
	exec, badEmail       bool
}

func (p *incPerson) identity() model.Identity {
	groups := []string{"Staff"}
	if p.partner {
		groups = append(groups, groupPartners)
	}
	if p.exec {
		groups = append(groups, groupExecs)
	}
	email := strings.ToLower(p.username) + "@example.com"
	if p.badEmail {
		email = "not an address"
	}
	return model.Identity{ExternalID: p.ext, Username: p.username, Email: email, Title: p.title,
		GivenName: "Given " + p.ext, Groups: groups, Enabled: p.enabled}
}

func (w *incWorld) identities() []model.Identity {
	out := make([]model.Identity, len(w.people))
	for i, p := range w.people {
		out[i] = p.identity()
	}
	return out
}

// username is a new name, or now and then one already taken (in another
// case), an unowned profile's, or an exempt one.
func (w *incWorld) username() string {
	switch r := w.rng.IntN(10); {
	case r == 0 && len(w.people) > 0:
		return strings.ToUpper(w.people[w.rng.IntN(len(w.people))].username)
	case r == 1:
		return []string{"Kiosk", "adoptme", "admin"}[w.rng.IntN(3)]
	}
	w.next++
	return fmt.Sprintf("user%03d", w.next)
}

func (w *incWorld) join() {
	w.next++
	w.people = append(w.people, &incPerson{ext: fmt.Sprintf("E%03d", w.next), username: w.username(),
		title: "Staff", enabled: w.rng.IntN(8) > 0, partner: w.rng.IntN(4) == 0, exec: w.rng.IntN(5) == 0})
}

// change makes one random change to the directory.
func (w *incWorld) change() {
	if len(w.people) < 2 {
		w.join()
		return
	}
	i := w.rng.IntN(len(w.people))
	p := w.people[i]
	switch w.rng.IntN(9) {
	case 0, 1:
		w.join()
	case 2:
		w.people = slices.Delete(w.people, i, i+1)
	case 3:
		p.username = w.username()
	case 4:
		p.partner = !p.partner
	case 5:
		p.enabled = !p.enabled
	case 6:
		p.exec = !p.exec
	case 7:
		p.title = fmt.Sprintf("Title %d", w.rng.IntN(100))
	case 8:
		p.badEmail = !p.badEmail
	}
}

// changes are what an incremental read gives between two directories:
// the identities that are new or changed, in directory order, and the
// external ids that are gone.
func changes(before, after []model.Identity) (upserts []model.Identity, deletes []string) {
	old := map[string]model.Identity{}
	for _, id := range before {
		old[id.ExternalID] = id
	}
	for _, id := range after {
		if prev, ok := old[id.ExternalID]; !ok || !cmp.Equal(prev, id) {
			upserts = append(upserts, id)
		}
		delete(old, id.ExternalID)
	}
	for _, id := range before {
		if _, gone := old[id.ExternalID]; gone {
			deletes = append(deletes, id.ExternalID)
		}
	}
	return upserts, deletes
}

// testIncrementalPlan runs one seed and returns how many change sets it
// compared.
func testIncrementalPlan(t *testing.T, seed uint64) int {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, seed^0x1c4e))
	w := &incWorld{rng: rng}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "seatsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	onOverage := licensing.OverageKeep
	if rng.IntN(3) == 0 {
		onOverage = licensing.OverageBlockNewest
	}
	limits := []int{2 + rng.IntN(8), 1 + rng.IntN(4)}
	src := config.Source{Name: propSource, Type: propSourceType, UsernameCase: "lower", Area: "primary",
		OnLeave: []string{"block", "block", "delete", "keep"}[rng.IntN(4)], Adopt: rng.IntN(2) == 0,
		AreaRules: []config.AreaRule{{Group: groupPartners, Area: "partners"}}}
	if rng.IntN(2) == 0 {
		src.DeleteAfter = config.Duration{Duration: 2 * time.Hour}
	}
	cfg := func() *config.Config {
		return &config.Config{
			Version: 1,
			Licensing: config.Licensing{
				Pools: []config.Pool{
					{Name: "primary", Limit: config.Limit{N: limits[0]}, Areas: []string{"primary"}},
					{Name: "extranet", Limit: config.Limit{N: limits[1]}, Areas: []string{"partners"}},
				},
				Exempt:    []string{"admin"},
				Priority:  []config.PriorityRule{{Group: groupExecs, Weight: execWeight}},
				OnOverage: onOverage,
			},
			Safety:  config.Safety{MaxDeprovision: config.Threshold{Value: 100, Percent: true, Set: true}},
			Sources: []config.Source{src},
		}
	}
	runner := &reconcile.Runner{
		Config: cfg(),
		Store:  st,
		Connectors: connector.Registry{propSourceType: {Open: func(config.Source, *zap.Logger) (connector.Source, error) {
			return &fakeSource{ids: w.identities()}, nil
		}}},
		Log: zap.NewNop(),
		Now: func() time.Time { return clock },
	}
	err = st.WithTx(ctx, func(tx store.Tx) error {
		for _, name := range []string{"admin", "kiosk", "adoptme"} {
			p := model.Profile{Username: name, Area: "primary", State: model.Active, ActivatedAt: clock, CreatedAt: clock, UpdatedAt: clock}
			if err := tx.Insert(ctx, &p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 + rng.IntN(10) {
		w.join()
	}
	// sync brings the store in step with the directory by full syncs, and
	// drops from the directory whoever stays skipped: a person a full pull
	// keeps skipping (a username another holds) is one only a full pull
	// sees again when the obstacle goes, so such a state is not one an
	// incremental run is meant to equal.
	sync := func() {
		for range 4 {
			rep, err := runner.Run(ctx, reconcile.Options{Mode: reconcile.ModeSync, AllowDeprovision: true})
			if err != nil {
				t.Fatalf("full sync: %v", err)
			}
			if len(rep.Skipped) == 0 {
				return
			}
			for _, s := range rep.Skipped {
				w.people = slices.DeleteFunc(w.people, func(p *incPerson) bool { return p.ext == s.ExternalID })
			}
		}
		t.Fatal("the directory keeps having skipped people")
	}
	sync()
	compared := 0
	for step := range 8 {
		if rng.IntN(4) == 0 {
			limits[rng.IntN(2)] = rng.IntN(8) // a licence changed: queues move, or an overage
			runner.Config = cfg()
		}
		before := w.identities()
		for range 1 + rng.IntN(5) {
			w.change()
		}
		if len(w.people) == 0 {
			w.join()
		}
		after := w.identities()
		upserts, deletes := changes(before, after)
		clock = clock.Add(time.Duration(rng.IntN(180)) * time.Minute)

		pol := licensing.FromConfig(runner.Config.Licensing)
		rules := reconcile.RulesOf(src)
		input := func(pulls []reconcile.Pull, profiles []model.Profile, tally *store.Tally) reconcile.Input {
			return reconcile.Input{Now: clock, Pulls: pulls, Profiles: profiles, Policy: pol,
				MaxDeprovision: runner.Config.Safety.MaxDeprovision.Of, Tally: tally}
		}
		all, err := st.Profiles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		full := reconcile.Calculate(input([]reconcile.Pull{{Rules: rules, Identities: after}}, all, nil))

		pulls := []reconcile.Pull{{Rules: rules, Identities: upserts, Deletes: deletes, Changes: true}}
		req := store.TallyRequest{Exempt: pol.Exempt(), Sources: []string{src.Name}}
		for _, p := range pol.Pools {
			req.Pools = append(req.Pools, p.Areas)
		}
		tally, err := st.Tally(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		overage := false
		for i := range pol.Pools {
			overage = overage || pol.Pools[i].Overage(tally.Active[i]) > 0
		}
		if onOverage == licensing.OverageBlockNewest && overage {
			// The runner reads every profile for this (touchedProfiles).
			sync()
			continue
		}
		touched, err := st.Select(ctx, reconcile.Touched(pulls, pol, clock))
		if err != nil {
			t.Fatal(err)
		}
		inc := reconcile.Calculate(input(pulls, touched, &tally))
		compared++

		what := fmt.Sprintf("step %d: %d upserts %s, deletes %q, limits %v, %d of %d profiles read", step,
			len(upserts), names(upserts), deletes, limits, len(touched), len(all))
		if d := cmp.Diff(full.Changes, inc.Changes, cmpopts.IgnoreUnexported(reconcile.Change{})); d != "" {
			t.Fatalf("%s: the changes differ (-full +incremental):\n%s", what, d)
		}
		if d := cmp.Diff(full.Pools, inc.Pools); d != "" {
			t.Fatalf("%s: the pools differ (-full +incremental):\n%s", what, d)
		}
		if d := cmp.Diff(skippedKeys(full.Skipped), skippedKeys(inc.Skipped)); d != "" {
			t.Fatalf("%s: the skipped entries differ (-full +incremental):\n%s", what, d)
		}
		fg, ig := full.Guard.Sources[0], inc.Guard.Sources[0]
		if fg.Owned != ig.Owned || fg.Deprovisions != ig.Deprovisions || fg.Limit != ig.Limit {
			t.Fatalf("%s: the guards differ: full %+v, incremental %+v", what, fg, ig)
		}
		fs, is := full.Summary, inc.Summary
		fs.Unchanged, is.Unchanged = 0, 0 // an incremental plan looks at fewer
		if fs != is {
			t.Fatalf("%s: the summaries differ: full %+v, incremental %+v", what, fs, is)
		}
		sync()
	}
	return compared
}

func names(ids []model.Identity) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.ExternalID + ":" + id.Username
	}
	return out
}

func skippedKeys(ss []reconcile.Skipped) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ExternalID + ": " + s.Reason
	}
	slices.Sort(out)
	return out
}
