package reconcile_test

// A model-based property test of the runner: random sequences of directory
// changes, admin actions, limit changes and injected failures, each followed
// by a real sync against a real store, with the product's invariants
// checked after every run. Every sequence runs against each store of
// propStores: SQLite, and PostgreSQL (a throwaway cluster, internal/pgtest).
//
// Every sequence is seeded from propBaseSeed, so a failure names its seed
// and replays exactly with
//
//	go test -run 'TestPropertyRandomRuns/sqlite/seqs/seed=NNN' ./reconcile/

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/admin"
	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/internal/pgtest"
	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/store/postgres"
	"github.com/seatsync/seatsync/store/sqlite"
)

const (
	propSequences = 32
	propSteps     = 25
	propBaseSeed  = 20261126

	propSource     = "hr"
	propProduct    = "crm"
	propSourceType = "model" // the test's own connector type
	groupPartners  = "Partners"
	groupExecs     = "Executives"
	execWeight     = 100
)

// propStats counts, over all sequences, how often the interesting paths
// were taken, so the test cannot pass by never reaching them.
type propStats struct {
	sequences                atomic.Int64
	syncs, plans             atomic.Int64
	injectedFailures         atomic.Int64
	partialCommits           atomic.Int64
	pullFailures             atomic.Int64
	guardTrips               atomic.Int64
	races, noSeat            atomic.Int64
	queuedActivations        atomic.Int64
	blockNewest, overages    atomic.Int64
	adminNoSeat, adminQueued atomic.Int64
	// Product licences: given by a sync, queued, recalled, and an admin's
	// grants that were refused for want of a licence.
	productGrants, productQueued, productRecalls atomic.Int64
	adminGrantRefused                            atomic.Int64
}

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// propStores are the stores the property tests run against; open returns
// a new, empty one, closed when the test ends.
var propStores = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"sqlite", func(t *testing.T) store.Store {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "seatsync.db"))
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
	{"postgres", func(t *testing.T) store.Store {
		dsn := pgtest.Shared(t).NewDatabase(t)
		st, err := postgres.Open(context.Background(), dsn, nil)
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
}

func TestPropertyRandomRuns(t *testing.T) {
	for _, ps := range propStores {
		t.Run(ps.name, func(t *testing.T) { testPropertyRandomRuns(t, ps.name, ps.open) })
	}
}

func testPropertyRandomRuns(t *testing.T, storeName string, open func(*testing.T) store.Store) {
	var stats propStats
	n := propSequences
	if v := os.Getenv("SEATSYNC_PROPERTY_SEQUENCES"); v != "" {
		// A longer search, by hand: SEATSYNC_PROPERTY_SEQUENCES=1000 go test -run TestPropertyRandomRuns ./reconcile/
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("SEATSYNC_PROPERTY_SEQUENCES=%q is not a positive number", v)
		}
	}
	t.Run("seqs", func(t *testing.T) {
		for i := range n {
			seed := uint64(propBaseSeed + i)
			t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
				t.Parallel()
				stats.sequences.Add(1)
				w := newWorld(t, seed, &stats, storeName, open(t))
				for step := range propSteps {
					if t.Failed() {
						return
					}
					w.step(step)
				}
			})
		}
	})
	if t.Failed() || stats.sequences.Load() < propSequences {
		return // failed, or -run picked a few sequences
	}
	t.Logf("syncs %d, plans %d, injected failures %d (partial commits %d), pull failures %d, guard trips %d, races %d (no_seat %d), queued people activated %d, block_newest runs %d, overage runs %d, admin unblocks refused %d / queued %d",
		stats.syncs.Load(), stats.plans.Load(), stats.injectedFailures.Load(), stats.partialCommits.Load(),
		stats.pullFailures.Load(), stats.guardTrips.Load(), stats.races.Load(), stats.noSeat.Load(),
		stats.queuedActivations.Load(), stats.blockNewest.Load(), stats.overages.Load(),
		stats.adminNoSeat.Load(), stats.adminQueued.Load())
	t.Logf("product licences: granted %d, queued %d, recalled %d, admin grants refused %d",
		stats.productGrants.Load(), stats.productQueued.Load(), stats.productRecalls.Load(), stats.adminGrantRefused.Load())
	if stats.productGrants.Load() == 0 || stats.productQueued.Load() == 0 || stats.productRecalls.Load() == 0 {
		t.Errorf("the random runs never granted, queued or recalled a product licence")
	}
	if stats.injectedFailures.Load() == 0 || stats.partialCommits.Load() == 0 || stats.guardTrips.Load() == 0 ||
		stats.pullFailures.Load() == 0 || stats.queuedActivations.Load() == 0 {
		t.Errorf("the random runs never reached some of the paths they are meant to test (see the counts above)")
	}
}

// person is one entry of the test's directory.
type person struct {
	ext      string
	username string
	enabled  bool
	partner  bool // in the Partners group: area partners (extranet pool)
	exec     bool // in the Executives group: priority weight
	title    string
}

func (p *person) area() string {
	if p.partner {
		return "partners"
	}
	return "primary"
}

func (p *person) identity() model.Identity {
	groups := []string{"Staff"}
	if p.partner {
		groups = append(groups, groupPartners)
	}
	if p.exec {
		groups = append(groups, groupExecs)
	}
	return model.Identity{
		ExternalID: p.ext, Username: p.username, Email: p.username + "@example.com",
		GivenName: "Given " + p.ext, FamilyName: "Family " + p.ext, Title: p.title,
		Groups: groups, Enabled: p.enabled,
	}
}

// fakeSource is the test's directory as a connector: it serves a copy of
// the people taken when the run opened it, and can be told to fail halfway.
type fakeSource struct {
	ids  []model.Identity
	fail bool
}

var errDropped = errors.New("connection dropped mid-page")

func (s *fakeSource) Pull(ctx context.Context, emit func(model.Identity) error, _ func(connector.Skip)) error {
	for i, id := range s.ids {
		if s.fail && i >= len(s.ids)/2 {
			return errDropped
		}
		if err := emit(id); err != nil {
			return err
		}
	}
	if s.fail {
		return errDropped
	}
	return ctx.Err()
}

var errInjected = errors.New("injected store failure")

// faultStore wraps the real store: its transactions fail at the write after
// failAfter successful writes (Insert, Update, Delete) when armed, and
// beforeTx runs once before the first transaction (an admin acting between
// plan and apply).
type faultStore struct {
	store.Store
	armed     bool
	failAfter int
	writes    int
	fired     bool
	beforeTx  func()
}

func (f *faultStore) WithTx(ctx context.Context, fn func(store.Tx) error) error {
	if hook := f.beforeTx; hook != nil {
		f.beforeTx = nil
		hook()
	}
	return f.Store.WithTx(ctx, func(tx store.Tx) error {
		return fn(&faultTx{Tx: tx, f: f})
	})
}

type faultTx struct {
	store.Tx
	f *faultStore
}

func (t *faultTx) write() error {
	if t.f.armed && t.f.writes >= t.f.failAfter {
		t.f.fired = true
		return errInjected
	}
	t.f.writes++
	return nil
}

func (t *faultTx) Insert(ctx context.Context, p *model.Profile) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Tx.Insert(ctx, p)
}

func (t *faultTx) Update(ctx context.Context, p *model.Profile) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Tx.Update(ctx, p)
}

func (t *faultTx) Delete(ctx context.Context, p model.Profile) error {
	if err := t.write(); err != nil {
		return err
	}
	return t.Tx.Delete(ctx, p)
}

// world is one sequence: the directory (the model), the pools, the store
// and the runner.
type world struct {
	t     *testing.T
	ctx   context.Context
	rng   *rand.Rand
	stats *propStats

	st     store.Store
	fs     *faultStore
	runner *reconcile.Runner
	clock  time.Time

	people   []*person // the directory, in source order
	departed []*person // people who left, who may come back
	nextExt  int
	nextUsr  int

	limits    [2]config.Limit // primary, extranet
	prodLimit config.Limit    // of product crm
	// prevHeld is how many licences each product had given at the last
	// check: a lowered limit keeps them, but nobody new gets one.
	prevHeld  map[string]int
	reserve   int // primary
	onOverage string
	pullFail  bool

	history    []string
	lastReport *reconcile.Report
	snap       []model.Profile // the profiles as last read; nil after a write
}

func newWorld(t *testing.T, seed uint64, stats *propStats, storeName string, st store.Store) *world {
	w := &world{
		t: t, ctx: context.Background(), stats: stats,
		rng:       rand.New(rand.NewPCG(seed, seed^0x5ea75)),
		clock:     time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC),
		onOverage: licensing.OverageKeep,
	}
	w.limits[0] = config.Limit{N: 3 + w.rng.IntN(6)}
	w.reserve = w.rng.IntN(2)
	w.limits[1] = config.Limit{N: 2 + w.rng.IntN(3)}
	w.prodLimit = config.Limit{N: 1 + w.rng.IntN(3)}

	w.st = st
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d; replay with -run 'TestPropertyRandomRuns/%s/seqs/seed=%d'; steps so far:\n%s",
				seed, storeName, seed, strings.Join(w.history, "\n"))
			if w.lastReport != nil {
				t.Logf("the last run's changes (result %s, error %q):\n%s", w.lastReport.Result, w.lastReport.Error,
					describeChanges(w.lastReport.Changes))
			}
			t.Logf("the store now:\n%s", describeProfiles(w.read()))
		}
	})
	w.fs = &faultStore{Store: st}
	w.runner = &reconcile.Runner{
		Store: w.fs,
		Connectors: connector.Registry{propSourceType: {Open: func(config.Source, *zap.Logger) (connector.Source, error) {
			ids := make([]model.Identity, len(w.people))
			for i, p := range w.people {
				ids[i] = p.identity()
			}
			return &fakeSource{ids: ids, fail: w.pullFail}, nil
		}}},
		Log:       zap.NewNop(),
		Now:       func() time.Time { return w.clock },
		BatchSize: 2 + w.rng.IntN(2),
	}
	w.reconfigure()

	// Profiles made by hand: the exempt admin and a non-exempt kiosk.
	kiosk := model.Profile{Username: "kiosk", Email: "kiosk@example.com", Area: "primary", State: model.Active,
		ActivatedAt: w.clock, CreatedAt: w.clock, UpdatedAt: w.clock}
	if w.rng.IntN(2) == 0 {
		kiosk.State, kiosk.BlockReason, kiosk.BlockedAt, kiosk.ActivatedAt = model.Blocked, model.ReasonAdmin, w.clock, time.Time{}
	}
	err := st.WithTx(w.ctx, func(tx store.Tx) error {
		adm := model.Profile{Username: "admin", Email: "admin@example.com", Area: "primary", State: model.Active,
			ActivatedAt: w.clock, CreatedAt: w.clock, UpdatedAt: w.clock}
		if err := tx.Insert(w.ctx, &adm); err != nil {
			return err
		}
		return tx.Insert(w.ctx, &kiosk)
	})
	if err != nil {
		t.Fatalf("insert hand-made profiles: %v", err)
	}
	for range 3 + w.rng.IntN(8) {
		w.join()
	}
	if w.rng.IntN(2) == 0 {
		// An exempt person in the directory: created once, never changed.
		w.people = append(w.people, &person{ext: w.newExt(), username: "support", enabled: true, title: "Vendor"})
	}
	w.logf("start: primary %s reserve %d, extranet %s, batch %d, kiosk %s, %d people",
		w.limits[0], w.reserve, w.limits[1], w.runner.BatchSize, kiosk.State, len(w.people))
	w.syncAndCheck(runSpec{})
	return w
}

func (w *world) logf(format string, args ...any) {
	w.history = append(w.history, fmt.Sprintf("%s: %s", w.clock.Format("15:04"), fmt.Sprintf(format, args...)))
}

func (w *world) cfg() *config.Config {
	return &config.Config{
		Version: 1,
		Licensing: config.Licensing{
			Pools: []config.Pool{
				{Name: "primary", Limit: w.limits[0], Areas: []string{"primary"}, Reserve: w.reserve},
				{Name: "extranet", Limit: w.limits[1], Areas: []string{"partners"}},
			},
			Exempt:    []string{"admin", "support"},
			Priority:  []config.PriorityRule{{Group: groupExecs, Weight: execWeight}},
			OnOverage: w.onOverage,
			Products: []config.Product{{Name: propProduct, Limit: w.prodLimit,
				Grant: []config.GrantRule{{Group: groupExecs}, {Area: "partners"}}}},
		},
		Safety: config.Safety{MaxDeprovision: config.Threshold{Value: 1, Set: true}},
		Sources: []config.Source{{
			Name: propSource, Type: propSourceType, UsernameCase: "lower", Area: "primary", OnLeave: "block",
			AreaRules: []config.AreaRule{{Group: groupPartners, Area: "partners"}},
		}},
	}
}

func (w *world) reconfigure() { w.runner.Config = w.cfg() }

func (w *world) policy() *licensing.Policy { return licensing.FromConfig(w.runner.Config.Licensing) }

func (w *world) admin() *admin.Admin {
	return &admin.Admin{Store: w.st, Policy: w.policy(), Actor: "cli:property-test", Now: func() time.Time { return w.clock }}
}

func (w *world) newExt() string {
	w.nextExt++
	return fmt.Sprintf("E%03d", w.nextExt)
}

func (w *world) newUsername() string {
	w.nextUsr++
	return fmt.Sprintf("u%03d", w.nextUsr)
}

// profiles returns the store's profiles. It reads the store only when
// something may have written to it since the last read.
func (w *world) profiles() []model.Profile {
	w.t.Helper()
	if w.snap == nil {
		return w.read()
	}
	return slices.Clone(w.snap)
}

// read reads the store's profiles.
func (w *world) read() []model.Profile {
	w.t.Helper()
	ps, err := w.st.Profiles(w.ctx)
	if err != nil {
		w.t.Fatalf("read profiles: %v", err)
	}
	w.snap = ps
	return slices.Clone(ps)
}

// Directory changes.

func (w *world) join() {
	p := &person{ext: w.newExt(), username: w.newUsername(), enabled: w.rng.IntN(10) > 0,
		partner: w.rng.IntN(4) == 0, exec: w.rng.IntN(5) == 0, title: "Employee"}
	w.people = append(w.people, p)
	w.logf("join %s %s (enabled %v, partner %v, exec %v)", p.ext, p.username, p.enabled, p.partner, p.exec)
}

func (w *world) pick() *person {
	if len(w.people) == 0 {
		return nil
	}
	return w.people[w.rng.IntN(len(w.people))]
}

func (w *world) leave(p *person) {
	w.people = slices.DeleteFunc(w.people, func(q *person) bool { return q == p })
	w.departed = append(w.departed, p)
	w.logf("leave %s %s", p.ext, p.username)
}

// comeBack puts someone who left back into the directory, as they were.
func (w *world) comeBack() {
	if len(w.departed) == 0 {
		return
	}
	i := w.rng.IntN(len(w.departed))
	p := w.departed[i]
	w.departed = slices.Delete(w.departed, i, i+1)
	w.people = append(w.people, p)
	w.logf("come back %s %s (enabled %v, partner %v)", p.ext, p.username, p.enabled, p.partner)
}

// step makes one to three random changes, then syncs and checks.
func (w *world) step(n int) {
	w.clock = w.clock.Add(time.Hour)
	w.history = append(w.history, fmt.Sprintf("-- step %d", n))
	spec := runSpec{}
	for range 1 + w.rng.IntN(3) {
		switch r := w.rng.IntN(100); {
		case r < 17:
			w.join()
		case r < 20:
			w.comeBack()
		case r < 30:
			if p := w.pick(); p != nil {
				w.leave(p)
			}
		case r < 36:
			if p := w.pick(); p != nil {
				old := p.username
				p.username = w.newUsername()
				w.logf("rename %s %s -> %s", p.ext, old, p.username)
			}
		case r < 42:
			if p := w.pick(); p != nil {
				p.enabled = false
				w.logf("disable %s %s", p.ext, p.username)
			}
		case r < 50:
			if p := w.pick(); p != nil {
				p.enabled = true
				w.logf("enable %s %s", p.ext, p.username)
			}
		case r < 56:
			if p := w.pick(); p != nil {
				p.partner = !p.partner
				w.logf("area %s %s -> %s", p.ext, p.username, p.area())
			}
		case r < 59:
			if p := w.pick(); p != nil {
				p.exec = !p.exec
				w.logf("executive %s %s -> %v", p.ext, p.username, p.exec)
			}
		case r < 62:
			if p := w.pick(); p != nil {
				p.title = fmt.Sprintf("Title %d", w.rng.IntN(100))
				w.logf("retitle %s %s", p.ext, p.username)
			}
		case r < 68:
			w.adminBlock()
		case r < 76:
			w.adminUnblock()
		case r < 79:
			w.adminDelete()
		case r < 88:
			w.changeLimit()
		case r < 89:
			for _, p := range slices.Clone(w.people) {
				w.leave(p)
			}
		case r < 91:
			w.adminProduct()
		default:
			switch w.rng.IntN(4) {
			case 0, 1:
				spec.fault = true
				for range 3 { // enough writes for a batch to commit before the failure
					w.join()
				}
			case 2:
				spec.pullFail = true
			default:
				spec.race = true
			}
		}
	}
	if w.rng.IntN(12) == 0 {
		spec.guard = true
		if w.rng.IntN(2) == 0 {
			for range 2 + w.rng.IntN(2) {
				if p := w.pick(); p != nil {
					w.leave(p)
				}
			}
		}
	}
	w.syncAndCheck(spec)
}

// Admin actions, each checked on its own.

func (w *world) randomProfile(exclude ...string) *model.Profile {
	ps := w.profiles()
	ps = slices.DeleteFunc(ps, func(p model.Profile) bool { return slices.Contains(exclude, p.Username) })
	if len(ps) == 0 {
		return nil
	}
	p := ps[w.rng.IntN(len(ps))]
	return &p
}

func (w *world) adminBlock() {
	p := w.randomProfile()
	if p == nil {
		return
	}
	before := w.profiles()
	out, err := w.admin().Block(w.ctx, p.Username)
	w.logf("admin block %s (%s %s): %s %v", p.Username, p.State, p.BlockReason, out.Action, err)
	if err != nil {
		w.t.Fatalf("admin block %s: %v", p.Username, err)
	}
	after := w.read()
	got := byUsername(after)[p.Username]
	if got == nil || got.State != model.Blocked || got.BlockReason != model.ReasonAdmin || !got.QueuedAt.IsZero() {
		w.t.Fatalf("admin block %s: profile is now %+v, want blocked for admin", p.Username, got)
	}
	w.onlyChanged(before, after, p.Username)
	w.checkProducts(nil, false)
}

func (w *world) adminUnblock() {
	before := w.profiles()
	var blocked []model.Profile
	for _, p := range before {
		if p.State == model.Blocked {
			blocked = append(blocked, p)
		}
	}
	if len(blocked) == 0 {
		return
	}
	p := blocked[w.rng.IntN(len(blocked))]
	queue := w.rng.IntN(2) == 0
	pol := w.policy()
	used := pol.Count(before)
	out, err := w.admin().Unblock(w.ctx, p.Username, queue)
	w.logf("admin unblock %s (%s, queue %v): %s %v", p.Username, p.BlockReason, queue, out.Action, err)
	after := w.read()
	pi := pol.PoolIndex(p.Area)
	pool := &pol.Pools[pi]
	full := !pol.IsExempt(p.Username) && !pool.HasRoom(used[pi].Active)
	got := byUsername(after)[p.Username]
	switch {
	case err != nil:
		if !errors.Is(err, admin.ErrNoSeat) || queue || !full {
			w.t.Fatalf("admin unblock %s (queue %v, pool full %v): %v", p.Username, queue, full, err)
		}
		if !strings.Contains(err.Error(), "--queue") {
			w.t.Errorf("admin unblock %s: the no-seat message does not mention --queue: %v", p.Username, err)
		}
		w.stats.adminNoSeat.Add(1)
		w.onlyChanged(before, after)
	case full:
		if !queue {
			w.t.Fatalf("admin unblock %s into a full pool %s (%d used) succeeded without --queue", p.Username, pool.Name, used[pi].Active)
		}
		if got.State != model.Blocked || got.BlockReason != model.ReasonLicense || got.QueuedAt.IsZero() {
			w.t.Fatalf("admin unblock --queue %s into a full pool: profile is %s %s queued %v, want queued for license",
				p.Username, got.State, got.BlockReason, got.QueuedAt)
		}
		if p.BlockReason == model.ReasonLicense && got.Version != p.Version {
			w.t.Errorf("admin unblock --queue %s: already queued, but the profile was rewritten", p.Username)
		}
		w.stats.adminQueued.Add(1)
		w.onlyChanged(before, after, p.Username)
	default:
		if got.State != model.Active || got.BlockReason != "" || !got.QueuedAt.IsZero() {
			w.t.Fatalf("admin unblock %s with a free seat: profile is %s %s, want active", p.Username, got.State, got.BlockReason)
		}
		w.onlyChanged(before, after, p.Username)
	}
	w.checkSeats(before, after, false)
	w.checkProducts(nil, false)
}

func (w *world) adminDelete() {
	p := w.randomProfile("admin")
	if p == nil {
		return
	}
	before := w.profiles()
	_, err := w.admin().Delete(w.ctx, p.Username)
	w.logf("admin delete %s (%s %s): %v", p.Username, p.State, p.BlockReason, err)
	if err != nil {
		w.t.Fatalf("admin delete %s: %v", p.Username, err)
	}
	after := w.read()
	if byUsername(after)[p.Username] != nil {
		w.t.Fatalf("admin delete %s: still there", p.Username)
	}
	if len(after) != len(before)-1 {
		w.t.Fatalf("admin delete %s: %d profiles before, %d after", p.Username, len(before), len(after))
	}
	w.onlyChanged(before, after, p.Username)
	w.checkProducts(nil, false)
}

func (w *world) changeLimit() {
	if w.rng.IntN(3) == 0 {
		w.changeProductLimit()
		return
	}
	pi := w.rng.IntN(2)
	old := w.limits[pi]
	switch {
	case w.rng.IntN(10) == 0:
		w.limits[pi] = config.Limit{Unlimited: true}
	case pi == 0:
		w.limits[pi] = config.Limit{N: 1 + w.rng.IntN(9)}
	default:
		w.limits[pi] = config.Limit{N: 1 + w.rng.IntN(5)}
	}
	w.onOverage = licensing.OverageKeep
	if w.rng.IntN(2) == 0 {
		w.onOverage = licensing.OverageBlockNewest
	}
	w.reconfigure()
	w.logf("limit of pool %d: %s -> %s, on_overage %s", pi, old, w.limits[pi], w.onOverage)
}

// onlyChanged fails unless the profiles other than the named ones are
// exactly as they were (same versions, same data).
func (w *world) onlyChanged(before, after []model.Profile, names ...string) {
	w.t.Helper()
	keep := func(ps []model.Profile) []model.Profile {
		return slices.DeleteFunc(slices.Clone(ps), func(p model.Profile) bool { return slices.Contains(names, p.Username) })
	}
	x, y := keep(before), keep(after)
	if reflect.DeepEqual(x, y) {
		return
	}
	if d := cmp.Diff(x, y); d != "" {
		w.t.Fatalf("profiles other than %v changed (-before +after):\n%s", names, d)
	}
}

// Runs.

type runSpec struct {
	fault     bool
	failAfter int
	pullFail  bool
	race      bool
	guard     bool // run without --allow-deprovision and check the guard's verdict
}

func (s runSpec) String() string {
	var parts []string
	if s.fault {
		parts = append(parts, "a store write fails")
	}
	if s.pullFail {
		parts = append(parts, "pull fails")
	}
	if s.race {
		parts = append(parts, "admin unblocks between plan and apply")
	}
	if s.guard {
		parts = append(parts, "no --allow-deprovision")
	}
	if len(parts) == 0 {
		return "clean"
	}
	return strings.Join(parts, ", ")
}

// wantTrip says whether the deprovision guard (max_deprovision 1) must
// refuse a run over the current directory and store.
func (w *world) wantTrip(ps []model.Profile) (bool, int) {
	inDir := w.directory()
	pol := w.policy()
	deprov, live := 0, 0
	for _, p := range ps {
		if !p.Owned() {
			continue
		}
		if p.State == model.Active || p.BlockReason != model.ReasonLeftSource {
			live++
		}
		if inDir[p.ExternalID] != nil || pol.IsExempt(p.Username) {
			continue
		}
		if p.State == model.Active || p.BlockReason == model.ReasonLicense || p.BlockReason == model.ReasonSourceDisabled {
			deprov++
		}
	}
	return deprov > 1 || (len(w.people) == 0 && live > 0), deprov
}

func (w *world) directory() map[string]*person {
	m := make(map[string]*person, len(w.people))
	for _, p := range w.people {
		m[p.ext] = p
	}
	return m
}

func (w *world) run(mode string, allow bool) (*reconcile.Report, error) {
	if mode != reconcile.ModePlan {
		w.snap = nil
	}
	rep, err := w.runner.Run(w.ctx, reconcile.Options{Mode: mode, AllowDeprovision: allow})
	if mode != reconcile.ModePlan {
		w.snap = nil
	}
	w.lastReport = rep
	return rep, err
}

// syncAndCheck runs one sync as spec says and checks every invariant; after
// a run that did not finish cleanly it runs a clean sync that must.
func (w *world) syncAndCheck(spec runSpec) {
	t := w.t
	w.logf("sync (%s)", spec)
	before := w.profiles()

	if spec.guard {
		trip, deprov := w.wantTrip(before)
		rep, err := w.run(reconcile.ModeSync, false)
		w.stats.syncs.Add(1)
		if trip {
			w.logf("  guard: %d deprovisions, %d people: refused: %v", deprov, len(w.people), err)
			if !errors.Is(err, reconcile.ErrGuardTripped) {
				t.Fatalf("guard: %d deprovisions over a limit of 1 (%d people in the directory): the sync was not refused: err %v, changes %d",
					deprov, len(w.people), err, len(rep.Changes))
			}
			if !rep.Guard.Tripped || rep.Result != reconcile.ResultGuardTripped {
				t.Errorf("guard refused the run but the report says tripped %v, result %s", rep.Guard.Tripped, rep.Result)
			}
			w.onlyChanged(before, w.profiles())
			w.stats.guardTrips.Add(1)
			w.syncAndCheck(runSpec{})
			return
		}
		w.logf("  guard: %d deprovisions: allowed", deprov)
		if err != nil {
			t.Fatalf("guard: %d deprovisions, a limit of 1: the sync failed: %v", deprov, err)
		}
		w.checkRun(before, rep, "")
		return
	}

	var wantActive []string // after a crash, what an uninterrupted run gives
	if spec.fault {
		// Fail at a write the apply really makes: a dry run says how many.
		plan, err := w.run(reconcile.ModePlan, true)
		if err != nil {
			t.Fatalf("plan before an injected failure: %v", err)
		}
		wantActive = activeAfter(before, plan.Changes)
		if len(plan.Changes) == 0 {
			spec.fault = false
		} else {
			spec.failAfter = w.rng.IntN(len(plan.Changes))
			if w.rng.IntN(2) == 0 {
				spec.failAfter = len(plan.Changes) - 1 // the earlier batches commit
			}
			w.logf("  inject a failure at write %d of %d", spec.failAfter+1, len(plan.Changes))
		}
	}
	w.fs.armed, w.fs.failAfter, w.fs.writes, w.fs.fired = spec.fault, spec.failAfter, 0, false
	w.pullFail = spec.pullFail
	raced := ""
	if spec.race {
		w.fs.beforeTx = func() { raced = w.raceUnblock() }
	}
	rep, err := w.run(reconcile.ModeSync, true)
	w.stats.syncs.Add(1)
	w.fs.armed, w.pullFail, w.fs.beforeTx = false, false, nil

	switch {
	case spec.pullFail:
		w.stats.pullFailures.Add(1)
		if !errors.Is(err, reconcile.ErrPull) || !errors.Is(err, errDropped) {
			t.Fatalf("a pull that failed halfway: the run returned %v, want a pull error", err)
		}
		if rep.Result != reconcile.ResultFailed {
			t.Errorf("a failed pull: report result %q, want %q", rep.Result, reconcile.ResultFailed)
		}
		w.onlyChanged(before, w.profiles())
		w.logf("  pull failed: nothing written")
		w.syncAndCheck(runSpec{})
		return
	case spec.fault && w.fs.fired:
		w.stats.injectedFailures.Add(1)
		if !errors.Is(err, errInjected) {
			t.Fatalf("a store write failed in the apply, but the run returned %v", err)
		}
		if rep.Result != reconcile.ResultFailed {
			t.Errorf("a failed apply: report result %q, want %q", rep.Result, reconcile.ResultFailed)
		}
		applied := 0
		for _, ch := range rep.Changes {
			if ch.Result == reconcile.ResultApplied {
				applied++
			}
		}
		if applied > 0 {
			w.stats.partialCommits.Add(1)
		}
		w.logf("  apply failed after %d writes: %d of %d changes committed", w.fs.writes, applied, len(rep.Changes))
		w.checkRun(before, rep, raced)
		// The next run comes later, as after a crash: the people the
		// failed run did not write get a later queue time than those it
		// did. It must still give the seats to the same people.
		w.clock = w.clock.Add(time.Second)
		w.syncAndCheck(runSpec{})
		if raced == "" {
			if got := activeAfter(w.profiles(), nil); !slices.Equal(got, wantActive) {
				t.Fatalf("after an apply failed at write %d and a second run, the active people are\n  %v\nbut an uninterrupted run gives\n  %v",
					spec.failAfter+1, got, wantActive)
			}
		}
		return
	}
	if err != nil {
		t.Fatalf("sync (%s): %v", spec, err)
	}
	w.checkRun(before, rep, raced)
	if raced != "" {
		w.syncAndCheck(runSpec{})
	}
}

// activeAfter returns the sorted usernames of the active profiles once
// changes are applied to profiles.
func activeAfter(profiles []model.Profile, changes []reconcile.Change) []string {
	active := map[int64]string{}
	for _, p := range profiles {
		if p.State == model.Active {
			active[p.ID] = p.Username
		}
	}
	var created []string
	for _, ch := range changes {
		switch {
		case ch.IsProduct():
		case ch.Before == nil:
			if ch.After.State == model.Active {
				created = append(created, ch.Username)
			}
		case ch.After == nil || ch.After.State != model.Active:
			delete(active, ch.Before.ID)
		default:
			active[ch.Before.ID] = ch.After.Username
		}
	}
	out := append(created, slices.Collect(maps.Values(active))...)
	slices.Sort(out)
	return out
}

// raceUnblock is an admin unblocking a profile after the plan and before
// the apply's first transaction. It returns the username it unblocked.
func (w *world) raceUnblock() string {
	w.stats.races.Add(1)
	var cands []model.Profile
	for _, p := range w.profiles() {
		if p.State == model.Blocked && p.BlockReason == model.ReasonAdmin && !w.policy().IsExempt(p.Username) {
			cands = append(cands, p)
		}
	}
	if len(cands) == 0 {
		w.logf("  race: nobody to unblock")
		return ""
	}
	p := cands[w.rng.IntN(len(cands))]
	_, err := w.admin().Unblock(w.ctx, p.Username, false)
	w.snap = nil
	w.logf("  race: admin unblock %s: %v", p.Username, err)
	if err != nil {
		if !errors.Is(err, admin.ErrNoSeat) {
			w.t.Errorf("race: admin unblock %s: %v", p.Username, err)
		}
		return ""
	}
	return p.Username
}

// checkRun checks a sync that ran to its end, or whose apply failed.
func (w *world) checkRun(before []model.Profile, rep *reconcile.Report, raced string) {
	t := w.t
	after := w.profiles()
	failed := rep.Result == reconcile.ResultFailed
	clean := !failed && raced == ""

	w.checkNoLoss(before, after, !failed)
	w.checkHandMade(before, after, raced)
	w.checkSeats(before, after, clean)
	w.checkProducts(rep, clean)
	w.checkApplied(before, after, rep, raced)
	w.checkTimes(before, after, rep.StartedAt, raced)
	w.checkAudit(rep)
	if !failed {
		w.checkQueueOrder(before, after, rep.StartedAt, raced)
	}
	if !clean {
		return
	}
	w.checkStates(before, after)
	w.checkBlockNewest(before, after)
	w.checkReportPools(after, rep)

	// Convergence: an immediate plan finds nothing to do and writes nothing.
	w.clock = w.clock.Add(time.Minute)
	plan, err := w.run(reconcile.ModePlan, true)
	w.stats.plans.Add(1)
	if err != nil {
		t.Fatalf("plan right after a clean sync: %v", err)
	}
	if len(plan.Changes) != 0 || plan.Summary.Total() != 0 {
		t.Fatalf("plan right after a clean sync is not empty: summary %+v, changes:\n%s", plan.Summary, describeChanges(plan.Changes))
	}
	if w.rng.IntN(4) == 0 {
		w.onlyChanged(after, w.read())
	}
}

func describeChanges(chs []reconcile.Change) string {
	var b strings.Builder
	for _, ch := range chs {
		if ch.IsProduct() {
			fmt.Fprintf(&b, "  %s %s %s -> %s, result %q, queue position %d\n", ch.Action, ch.Product, ch.Username, ch.Reason, ch.Result, ch.QueuePosition)
			continue
		}
		fmt.Fprintf(&b, "  %s %s (%s %s) -> %s %s %s, result %q, queue position %d, fields %v\n", ch.Action, ch.Username,
			ch.Source, ch.ExternalID, ch.Area, ch.State, ch.Reason, ch.Result, ch.QueuePosition, ch.FieldChanges())
		if ch.Before != nil {
			fmt.Fprintf(&b, "    before: %s %s %s queued %s blocked %s activated %s\n", ch.Before.Area, ch.Before.State,
				ch.Before.BlockReason, clock(ch.Before.QueuedAt), clock(ch.Before.BlockedAt), clock(ch.Before.ActivatedAt))
		}
		if ch.After != nil {
			fmt.Fprintf(&b, "    after:  %s %s %s queued %s blocked %s activated %s\n", ch.After.Area, ch.After.State,
				ch.After.BlockReason, clock(ch.After.QueuedAt), clock(ch.After.BlockedAt), clock(ch.After.ActivatedAt))
		}
	}
	return b.String()
}

func describeProfiles(ps []model.Profile) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  %-8s %-3s %-4s %-8s %-7s %-15s groups %v queued %s activated %s blocked %s v%d\n",
			p.Username, p.Source, p.ExternalID, p.Area, p.State, p.BlockReason, p.Groups,
			clock(p.QueuedAt), clock(p.ActivatedAt), clock(p.BlockedAt), p.Version)
	}
	return b.String()
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("15:04:05")
}

func byID(ps []model.Profile) map[int64]*model.Profile {
	m := make(map[int64]*model.Profile, len(ps))
	for i := range ps {
		m[ps[i].ID] = &ps[i]
	}
	return m
}

func byUsername(ps []model.Profile) map[string]*model.Profile {
	m := make(map[string]*model.Profile, len(ps))
	for i := range ps {
		m[ps[i].Username] = &ps[i]
	}
	return m
}

// checkNoLoss: a sync never removes a profile (on_leave is block), every
// (source, external_id) has at most one profile, and after a run that did
// not fail every person in the directory has exactly one.
func (w *world) checkNoLoss(before, after []model.Profile, complete bool) {
	t := w.t
	now := byID(after)
	for _, p := range before {
		if now[p.ID] == nil {
			t.Fatalf("the sync removed profile %s (%s %s, %s %s); only an admin delete may", p.Username, p.Source, p.ExternalID, p.State, p.BlockReason)
		}
	}
	keys := map[model.Key]int{}
	for _, p := range after {
		if p.Owned() {
			keys[p.Key()]++
		}
	}
	for k, n := range keys {
		if n != 1 {
			t.Fatalf("%d profiles for %s %s", n, k.Source, k.ExternalID)
		}
		if k.Source != propSource {
			t.Fatalf("a profile owned by unknown source %q", k.Source)
		}
	}
	if !complete {
		return
	}
	for _, p := range w.people {
		if keys[model.Key{Source: propSource, ExternalID: p.ext}] != 1 {
			t.Fatalf("person %s %s is in the directory but has no profile after a sync", p.ext, p.username)
		}
	}
}

// checkHandMade: exempt and unowned profiles are never changed by a sync,
// except that a queued unowned profile may be activated.
func (w *world) checkHandMade(before, after []model.Profile, raced string) {
	t := w.t
	pol := w.policy()
	now := byID(after)
	for _, b := range before {
		if (b.Owned() && !pol.IsExempt(b.Username)) || b.Username == raced {
			continue
		}
		a := now[b.ID]
		if b.Owned() || b.State != model.Blocked || b.BlockReason != model.ReasonLicense || a.State != model.Active {
			if reflect.DeepEqual(b, *a) {
				continue
			}
			if d := cmp.Diff(b, *a); d != "" {
				t.Fatalf("the sync changed the exempt or unowned profile %s (-before +after):\n%s", b.Username, d)
			}
			continue
		}
		// Activated from the queue: only the state fields may change.
		x, y := b, *a
		for _, p := range []*model.Profile{&x, &y} {
			p.State, p.BlockReason, p.QueuedAt, p.BlockedAt, p.ActivatedAt, p.UpdatedAt, p.Version = "", "", time.Time{}, time.Time{}, time.Time{}, time.Time{}, 0
		}
		if d := cmp.Diff(x, y); d != "" {
			t.Fatalf("the sync activated the queued unowned profile %s and changed its data (-before +after):\n%s", b.Username, d)
		}
	}
}

// checkSeats: no run pushes a pool over limit − reserve, or, when it was
// over already, above what was in use; with block_newest a clean run brings
// the pool down to its limit; a clean run leaves nobody queued while its
// pool has a free seat.
func (w *world) checkSeats(before, after []model.Profile, clean bool) {
	t := w.t
	pol := w.policy()
	b, a := pol.Count(before), pol.Count(after)
	for i := range pol.Pools {
		pool := &pol.Pools[i]
		if pool.Unlimited {
			if clean && a[i].Queued > 0 {
				t.Fatalf("pool %s is unlimited but %d people are queued after a sync", pool.Name, a[i].Queued)
			}
			continue
		}
		if bound := max(pool.Capacity(), b[i].Active); a[i].Active > bound {
			t.Fatalf("pool %s: %d active after, %d before, limit %d reserve %d: over the limit", pool.Name,
				a[i].Active, b[i].Active, pool.Limit, pool.Reserve)
		}
		if a[i].Active > pool.Limit {
			w.stats.overages.Add(1)
		}
		if !clean {
			continue
		}
		if pol.OnOverage == licensing.OverageBlockNewest {
			if a[i].Active > pool.Limit {
				t.Fatalf("pool %s: on_overage block_newest, but %d active after a sync for a limit of %d", pool.Name, a[i].Active, pool.Limit)
			}
			if b[i].Active > pool.Limit {
				w.stats.blockNewest.Add(1)
			}
		}
		if a[i].Queued > 0 && a[i].Active < pool.Capacity() {
			t.Fatalf("pool %s: %d queued but only %d of %d seats (reserve %d) used after a sync", pool.Name,
				a[i].Queued, a[i].Active, pool.Limit, pool.Reserve)
		}
	}
}

// checkApplied: the report's per-change results match the store: applied
// changes are there, changes that were rolled back or never attempted left
// their profile as it was.
func (w *world) checkApplied(before, after []model.Profile, rep *reconcile.Report, raced string) {
	t := w.t
	now := byID(after)
	keyed := map[model.Key]*model.Profile{}
	for i := range after {
		if after[i].Owned() {
			keyed[after[i].Key()] = &after[i]
		}
	}
	failed := rep.Result == reconcile.ResultFailed
	for _, ch := range rep.Changes {
		if ch.IsProduct() {
			continue // see checkProducts
		}
		var got *model.Profile
		switch {
		case ch.Before != nil:
			got = now[ch.Before.ID]
		case ch.Source != "":
			got = keyed[model.Key{Source: ch.Source, ExternalID: ch.ExternalID}]
		default:
			got = byUsername(after)[ch.Username]
		}
		what := fmt.Sprintf("change %s %s (result %q)", ch.Action, ch.Username, ch.Result)
		switch ch.Result {
		case reconcile.ResultApplied:
			switch {
			case ch.Action == reconcile.ActionDelete:
				if got != nil {
					t.Fatalf("%s: the profile is still there", what)
				}
			case got == nil:
				t.Fatalf("%s: no such profile in the store", what)
			case got.Username != ch.Username || got.Area != ch.Area || got.State != ch.State:
				t.Fatalf("%s: the store has %s %s %s, the report says %s %s %s", what, got.Username, got.Area, got.State,
					ch.Username, ch.Area, ch.State)
			case got.State == model.Blocked && string(got.BlockReason) != ch.Reason:
				t.Fatalf("%s: blocked for %s in the store, the report says %s", what, got.BlockReason, ch.Reason)
			case got.State == model.Blocked && got.BlockReason == model.ReasonLicense && got.QueuedAt.IsZero():
				t.Fatalf("%s: queued for a licence without a queue time", what)
			case got.State == model.Active && (got.BlockReason != "" || !got.QueuedAt.IsZero() || got.ActivatedAt.IsZero()):
				t.Fatalf("%s: active with reason %q, queued %v, activated %v", what, got.BlockReason, got.QueuedAt, got.ActivatedAt)
			}
		case reconcile.ResultNoSeat:
			if raced == "" {
				t.Fatalf("%s: no_seat although nothing happened between plan and apply", what)
			}
			w.stats.noSeat.Add(1)
			if got == nil || got.State != model.Blocked || got.BlockReason != model.ReasonLicense || got.QueuedAt.IsZero() {
				t.Fatalf("%s: want the profile queued for a licence, got %+v", what, got)
			}
		case reconcile.ResultConflict:
			if raced == "" || ch.Username != raced && (ch.Before == nil || ch.Before.Username != raced) {
				t.Fatalf("%s: a conflict although no admin touched the profile between plan and apply", what)
			}
		case "":
			if !failed {
				t.Fatalf("%s: a sync that succeeded left a change without a result", what)
			}
			switch {
			case ch.Before == nil && got != nil:
				t.Fatalf("%s: rolled back or not attempted, but the profile exists", what)
			case ch.Before != nil && (got == nil || got.Version != ch.Before.Version):
				t.Fatalf("%s: rolled back or not attempted, but the profile was written", what)
			}
		default:
			t.Fatalf("%s: unknown result", what)
		}
	}
	if failed {
		return
	}
	// Nothing changed that the report does not list.
	listed := map[int64]bool{}
	for _, ch := range rep.Changes {
		if ch.Before != nil {
			listed[ch.Before.ID] = true
		}
	}
	for _, b := range before {
		if a := now[b.ID]; !listed[b.ID] && b.Username != raced && a.Version != b.Version {
			t.Fatalf("profile %s was written by the sync but the report lists no change for it", b.Username)
		}
	}
}

// checkQueueOrder: nobody the sync activated was behind someone who is
// still queued in the same pool (priority weight, then queue time, then
// username).
func (w *world) checkQueueOrder(before, after []model.Profile, runAt time.Time, raced string) {
	t := w.t
	pol := w.policy()
	was := byID(before)
	var activated, queued [][]licensing.Request
	activated = make([][]licensing.Request, len(pol.Pools))
	queued = make([][]licensing.Request, len(pol.Pools))
	for _, a := range after {
		pi := pol.PoolIndex(a.Area)
		if pi < 0 || pol.IsExempt(a.Username) || a.Username == raced {
			continue
		}
		switch {
		case a.State == model.Active:
			b := was[a.ID]
			if b != nil && b.State == model.Active && pol.PoolIndex(b.Area) == pi {
				continue // kept its seat
			}
			q := runAt
			if b != nil && !b.QueuedAt.IsZero() {
				q = b.QueuedAt
				w.stats.queuedActivations.Add(1)
			}
			activated[pi] = append(activated[pi], licensing.Request{Weight: pol.Weight(a.Groups), QueuedAt: q, Username: a.Username})
		case a.BlockReason == model.ReasonLicense:
			queued[pi] = append(queued[pi], licensing.Request{Weight: pol.Weight(a.Groups), QueuedAt: a.QueuedAt, Username: a.Username})
		}
	}
	for pi := range pol.Pools {
		for _, x := range activated[pi] {
			for _, y := range queued[pi] {
				if licensing.Compare(x, y) > 0 {
					t.Fatalf("pool %s: the sync activated %s (weight %d, queued %v) while %s (weight %d, queued %v) stays queued ahead of them",
						pol.Pools[pi].Name, x.Username, x.Weight, x.QueuedAt, y.Username, y.Weight, y.QueuedAt)
				}
			}
		}
	}
}

// checkStates: after a clean sync every owned profile is what the
// directory says: its username, area and title; admin blocks kept; people
// who left blocked left_source; disabled people blocked source_disabled;
// everybody else active or queued for a licence.
func (w *world) checkStates(before, after []model.Profile) {
	t := w.t
	pol := w.policy()
	was := byID(before)
	dir := w.directory()
	for _, a := range after {
		if !a.Owned() || pol.IsExempt(a.Username) {
			continue
		}
		b := was[a.ID]
		p := dir[a.ExternalID]
		what := fmt.Sprintf("profile %s (%s %s)", a.Username, a.Source, a.ExternalID)
		state := func() string { return fmt.Sprintf("%s %s", a.State, a.BlockReason) }
		if p != nil {
			if a.Username != p.username || a.Area != p.area() || a.Title != p.title || a.Email != p.username+"@example.com" {
				t.Fatalf("%s: username %s area %s title %q, the directory says %s %s %q", what, a.Username, a.Area, a.Title,
					p.username, p.area(), p.title)
			}
			if w := pol.Weight(a.Groups); (w == execWeight) != p.exec {
				t.Fatalf("%s: groups %v do not follow the directory (executive %v)", what, a.Groups, p.exec)
			}
		}
		switch {
		case b != nil && b.State == model.Blocked && b.BlockReason == model.ReasonAdmin:
			if a.State != model.Blocked || a.BlockReason != model.ReasonAdmin {
				t.Fatalf("%s: was blocked by an admin, the sync made it %s", what, state())
			}
		case p == nil:
			if b == nil {
				t.Fatalf("%s: created for someone not in the directory", what)
			}
			if a.State != model.Blocked || a.BlockReason != model.ReasonLeftSource {
				t.Fatalf("%s: the person left, but the profile is %s, want blocked left_source", what, state())
			}
		case !p.enabled:
			if a.State != model.Blocked || a.BlockReason != model.ReasonSourceDisabled {
				t.Fatalf("%s: the person is disabled, but the profile is %s, want blocked source_disabled", what, state())
			}
		default:
			if a.State != model.Active && a.BlockReason != model.ReasonLicense {
				t.Fatalf("%s: the person is enabled, but the profile is %s, want active or queued for a licence", what, state())
			}
		}
	}
}

// checkReportPools: the report's pool numbers are the store's.
func (w *world) checkReportPools(after []model.Profile, rep *reconcile.Report) {
	t := w.t
	counts := w.policy().Count(after)
	if len(rep.Pools) != len(counts) {
		t.Fatalf("report has %d pools, want %d", len(rep.Pools), len(counts))
	}
	for i, c := range counts {
		p := rep.Pools[i]
		if p.Name != c.Name || p.UsedAfter != c.Active || p.QueuedAfter != c.Queued || p.Overage != c.Overage ||
			(!c.Unlimited && p.RemainingAfter != c.Remaining) {
			t.Fatalf("report pool %s: used %d queued %d remaining %d overage %d; the store has %d, %d, %d, %d",
				p.Name, p.UsedAfter, p.QueuedAfter, p.RemainingAfter, p.Overage, c.Active, c.Queued, c.Remaining, c.Overage)
		}
	}
}

// checkTimes: queue times survive runs, and the times a run sets are the
// run's: a profile that joins the queue gets the run's time, one that keeps
// waiting keeps its time, and one the run activates is activated at the
// run's time.
func (w *world) checkTimes(before, after []model.Profile, runAt time.Time, raced string) {
	t := w.t
	pol := w.policy()
	was := byID(before)
	for _, a := range after {
		if a.Username == raced || pol.IsExempt(a.Username) {
			continue
		}
		b := was[a.ID]
		queued := func(p *model.Profile) bool { return p.State == model.Blocked && p.BlockReason == model.ReasonLicense }
		switch {
		case queued(&a) && b != nil && queued(b):
			if !a.QueuedAt.Equal(b.QueuedAt) {
				t.Fatalf("profile %s waited for a seat since %s; the sync changed its queue time to %s", a.Username, clock(b.QueuedAt), clock(a.QueuedAt))
			}
		case queued(&a):
			if !a.QueuedAt.Equal(runAt) {
				t.Fatalf("profile %s joined the licence queue in the run at %s, but its queue time is %s", a.Username, clock(runAt), clock(a.QueuedAt))
			}
		case a.State == model.Active && (b == nil || b.State != model.Active):
			if !a.ActivatedAt.Equal(runAt) {
				t.Fatalf("profile %s was activated by the run at %s, but its activation time is %s", a.Username, clock(runAt), clock(a.ActivatedAt))
			}
		case a.State == model.Active:
			if !a.ActivatedAt.Equal(b.ActivatedAt) {
				t.Fatalf("profile %s stayed active, but the sync changed its activation time from %s to %s", a.Username, clock(b.ActivatedAt), clock(a.ActivatedAt))
			}
		}
	}
}

// checkAudit: every write of the run has its audit entry, and nothing that
// was rolled back has one.
func (w *world) checkAudit(rep *reconcile.Report) {
	t := w.t
	entries, err := w.st.Audit(w.ctx, rep.RunID, 0)
	if err != nil {
		t.Fatalf("read the audit log of run %s: %v", rep.RunID, err)
	}
	want := map[string]int{}
	for _, ch := range rep.Changes {
		stillQueued := ch.Result == reconcile.ResultNoSeat && ch.Action == reconcile.ActionActivate &&
			ch.Before.BlockReason == model.ReasonLicense && ch.Before.Area == ch.Area // nothing to write
		if ch.IsProduct() {
			stillQueued = ch.Result == reconcile.ResultNoSeat && ch.PrevGrant != nil && ch.PrevGrant.State == store.GrantQueued
		}
		if ch.Result == reconcile.ResultApplied || (ch.Result == reconcile.ResultNoSeat && !stillQueued) {
			want[ch.Username+" "+string(ch.Action)]++
		}
	}
	got := map[string]int{}
	for _, e := range entries {
		if e.Actor != "sync" || e.RunID != rep.RunID {
			t.Fatalf("audit entry of run %s: actor %q run %q", rep.RunID, e.Actor, e.RunID)
		}
		got[e.Username+" "+e.Action]++
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("the audit log of run %s does not match its applied changes (-want +got):\n%s", rep.RunID, d)
	}
	if rep.Result == reconcile.ResultFailed {
		run, err := w.st.Run(w.ctx, rep.RunID)
		if err != nil || run.Result != reconcile.ResultFailed || run.Error == "" {
			t.Fatalf("the failed run %s is recorded as %q (%q), %v", rep.RunID, run.Result, run.Error, err)
		}
	}
}

// checkBlockNewest: when on_overage block_newest took seats back, it took
// them from the most recently activated profiles.
func (w *world) checkBlockNewest(before, after []model.Profile) {
	t := w.t
	pol := w.policy()
	if pol.OnOverage != licensing.OverageBlockNewest {
		return
	}
	was := byID(before)
	for pi := range pol.Pools {
		var taken, kept []*model.Profile
		for _, a := range after {
			b := was[a.ID]
			if b == nil || !b.Owned() || !pol.HoldsSeat(b) || pol.PoolIndex(b.Area) != pi || pol.PoolIndex(a.Area) != pi {
				continue
			}
			switch {
			case a.State == model.Active:
				kept = append(kept, b)
			case a.BlockReason == model.ReasonLicense:
				taken = append(taken, b)
			}
		}
		for _, x := range taken {
			for _, y := range kept {
				if x.ActivatedAt.Before(y.ActivatedAt) || (x.ActivatedAt.Equal(y.ActivatedAt) && x.Username < y.Username) {
					t.Fatalf("pool %s over its limit: block_newest blocked %s (activated %s) but kept %s (activated %s)",
						pol.Pools[pi].Name, x.Username, clock(x.ActivatedAt), y.Username, clock(y.ActivatedAt))
				}
			}
		}
	}
}

// TestMoveOutOfPoolFreesSeatForQueue is the smallest case the random runs
// found: a person who moves to another pool's area frees their seat in the
// run, and SPEC section 4 counts seats freed in a run before it gives
// seats, so the first person in the old pool's queue gets that seat in the
// same run, and a plan right after has nothing to do.
func TestMoveOutOfPoolFreesSeatForQueue(t *testing.T) {
	for _, ps := range propStores {
		t.Run(ps.name, func(t *testing.T) { testMoveOutOfPoolFreesSeatForQueue(t, ps.open(t)) })
	}
}

func testMoveOutOfPoolFreesSeatForQueue(t *testing.T, st store.Store) {
	ctx := context.Background()
	people := []*person{
		{ext: "E1", username: "ada", enabled: true},
		{ext: "E2", username: "bob", enabled: true},
		{ext: "E3", username: "cyd", enabled: true},
	}
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	w := &world{limits: [2]config.Limit{{N: 2}, {N: 5}}, onOverage: licensing.OverageKeep}
	r := &reconcile.Runner{
		Config: w.cfg(),
		Store:  st,
		Connectors: connector.Registry{propSourceType: {Open: func(config.Source, *zap.Logger) (connector.Source, error) {
			var ids []model.Identity
			for _, p := range people {
				ids = append(ids, p.identity())
			}
			return &fakeSource{ids: ids}, nil
		}}},
		Log: zap.NewNop(),
		Now: func() time.Time { return at },
	}
	sync := func() *reconcile.Report {
		t.Helper()
		rep, err := r.Run(ctx, reconcile.Options{Mode: reconcile.ModeSync, AllowDeprovision: true})
		if err != nil {
			t.Fatalf("sync: %v", err)
		}
		return rep
	}
	sync()
	state := func(username string) string {
		p, err := st.Profile(ctx, username)
		if err != nil {
			t.Fatalf("profile %s: %v", username, err)
		}
		return fmt.Sprintf("%s %s %s", p.Area, p.State, p.BlockReason)
	}
	if got := state("cyd"); got != "primary blocked license" {
		t.Fatalf("cyd after the first sync: %s, want queued (primary has 2 seats)", got)
	}

	at = at.Add(time.Hour)
	people[0].partner = true // ada moves to the partners area: extranet pool
	rep := sync()
	if got := state("ada"); got != "partners active " {
		t.Errorf("ada after moving: %s, want partners active", got)
	}
	if got := state("cyd"); got != "primary active " {
		t.Errorf("cyd after ada moved out of primary: %s, want primary active (ada's seat was freed in this run); the run's changes:\n%s",
			got, describeChanges(rep.Changes))
	}
	at = at.Add(time.Minute)
	plan, err := r.Run(ctx, reconcile.Options{Mode: reconcile.ModePlan})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if len(plan.Changes) != 0 {
		t.Errorf("a plan right after the sync is not empty:\n%s", describeChanges(plan.Changes))
	}
}
