package postgres_test

// Tests of the postgres store with the packages that use it, against a
// real PostgreSQL: seats taken at once by several replicas, and a server
// that dies in the middle of a large sync.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
)

// source is a directory of n people, user00000 and on, all enabled.
type source struct {
	first, n int
	// before runs before each identity is given (a server to kill).
	before func(i int)
}

func (s *source) Pull(ctx context.Context, emit func(model.Identity) error, _ func(connector.Skip)) error {
	for i := s.first; i < s.first+s.n; i++ {
		u := fmt.Sprintf("user%05d", i)
		if err := emit(model.Identity{ExternalID: fmt.Sprintf("E%05d", i), Username: u, Email: u + "@example.com",
			GivenName: "Given", FamilyName: fmt.Sprint(i), Groups: []string{"Staff"}, Enabled: true}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func syncConfig(limit int) *config.Config {
	return &config.Config{
		Version: 1,
		Licensing: config.Licensing{
			Pools:     []config.Pool{{Name: "primary", Limit: config.Limit{N: limit}, Areas: []string{"primary"}}},
			OnOverage: licensing.OverageKeep,
		},
		Safety:  config.Safety{MaxDeprovision: config.Threshold{Value: 1, Set: true}},
		Sources: []config.Source{{Name: "hr", Type: "test", UsernameCase: "lower", Area: "primary", OnLeave: "block"}},
	}
}

func runner(cfg *config.Config, st store.Store, src *source, now time.Time) *reconcile.Runner {
	return &reconcile.Runner{
		Config: cfg,
		Store:  st,
		Connectors: connector.Registry{"test": {Open: func(config.Source, *zap.Logger) (connector.Source, error) {
			return src, nil
		}}},
		Log: zap.NewNop(),
		Now: func() time.Time { return now },
	}
}

func open(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func countActive(ctx context.Context, s store.Store) (n int, err error) {
	err = s.WithTx(ctx, func(tx store.Tx) (err error) {
		n, err = tx.CountActive(ctx, []string{"primary"}, nil)
		return err
	})
	return n, err
}

// Twenty admins unblock twenty people at once, each through the API of
// its own replica (its own store handle), while a sync on another replica
// creates a newcomer, and the pool has one free seat: exactly one of them
// gets it, and no observer ever sees the pool over its limit.
func TestSeatRaceAcrossReplicas(t *testing.T) {
	const limit, admins, observers = 10, 20, 3
	srv := pgtest.Shared(t)
	dsn := srv.NewDatabase(t)
	ctx := t.Context()
	now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	setup := open(t, dsn)
	err := setup.WithTx(ctx, func(tx store.Tx) error {
		for i := range limit - 1 {
			p := model.Profile{Username: fmt.Sprintf("seated%02d", i), Area: "primary", State: model.Active, ActivatedAt: now, CreatedAt: now}
			if err := tx.Insert(ctx, &p); err != nil {
				return err
			}
		}
		for i := range admins {
			p := model.Profile{Username: fmt.Sprintf("waiting%02d", i), Area: "primary", State: model.Blocked,
				BlockReason: model.ReasonAdmin, BlockedAt: now, CreatedAt: now}
			if err := tx.Insert(ctx, &p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := syncConfig(limit)
	pol := licensing.FromConfig(cfg.Licensing)

	start := make(chan struct{})
	var stop atomic.Bool
	var wg sync.WaitGroup
	var maxSeen atomic.Int64
	obsErr := make(chan error, observers)
	for range observers {
		s := open(t, dsn)
		wg.Go(func() {
			<-start
			for !stop.Load() {
				n, err := countActive(ctx, s)
				if err != nil {
					obsErr <- err
					return
				}
				for m := maxSeen.Load(); int64(n) > m && !maxSeen.CompareAndSwap(m, int64(n)); m = maxSeen.Load() {
				}
			}
		})
	}
	results := make([]error, admins)
	for i := range admins {
		a := &admin.Admin{Store: open(t, dsn), Policy: pol, Actor: fmt.Sprintf("api:192.0.2.%d", i)}
		wg.Go(func() {
			<-start
			_, results[i] = a.Unblock(ctx, fmt.Sprintf("waiting%02d", i), false)
		})
	}
	var rep *reconcile.Report
	var syncErr error
	syncDone := make(chan struct{})
	r := runner(cfg, open(t, dsn), &source{first: 0, n: 1}, now)
	go func() {
		defer close(syncDone)
		<-start
		rep, syncErr = r.Run(ctx, reconcile.Options{Mode: reconcile.ModeSync})
	}()
	close(start)
	<-syncDone
	stop.Store(true)
	wg.Wait()
	close(obsErr)
	for err := range obsErr {
		t.Errorf("observer: %v", err)
	}
	if syncErr != nil {
		t.Fatalf("sync: %v", syncErr)
	}

	winners := 0
	for i, err := range results {
		switch {
		case err == nil:
			winners++
		case !errors.Is(err, admin.ErrNoSeat):
			t.Errorf("unblock waiting%02d: %v, want success or ErrNoSeat", i, err)
		}
	}
	newcomer, err := setup.Profile(ctx, "user00000")
	if err != nil {
		t.Fatalf("the sync's newcomer: %v (report %+v)", err, rep.Summary)
	}
	if newcomer.State == model.Active {
		winners++
	}
	if winners != 1 {
		t.Errorf("%d took the one free seat (newcomer %s %s), want exactly one", winners, newcomer.State, newcomer.BlockReason)
	}
	if n, err := countActive(ctx, setup); err != nil || n != limit {
		t.Errorf("active after the race = %d, %v; want the limit %d", n, err, limit)
	}
	if m := maxSeen.Load(); m > limit {
		t.Errorf("an observer saw %d active, over the limit %d", m, limit)
	}
	t.Logf("unblocks won %d, newcomer %s; observers saw at most %d active", winners-btoi(newcomer.State == model.Active), newcomer.State, maxSeen.Load())
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// killer wraps a store and kills its server in the middle of a
// transaction: at the given Insert of the given transaction.
type killer struct {
	store.Store
	kill       func()
	tx, insert int
	txs        int
}

func (k *killer) WithTx(ctx context.Context, fn func(store.Tx) error) error {
	k.txs++
	n := k.txs
	return k.Store.WithTx(ctx, func(tx store.Tx) error {
		if n != k.tx {
			return fn(tx)
		}
		return fn(&killTx{Tx: tx, k: k})
	})
}

type killTx struct {
	store.Tx
	k       *killer
	inserts int
}

func (t *killTx) Insert(ctx context.Context, p *model.Profile) error {
	t.inserts++
	if t.inserts == t.k.insert {
		t.k.kill()
	}
	return t.Tx.Insert(ctx, p)
}

// PostgreSQL dies in the middle of a large first sync: the run fails with
// an error, what it committed is whole batches (every profile with its
// audit entry, the pool within its limit), and once the server is back
// the next run ends where an uninterrupted run does.
func TestServerKilledMidSync(t *testing.T) {
	const people, limit, batch = 20_000, 15_000, 2_000
	srv, err := pgtest.Start()
	if err != nil {
		pgtest.Unavailable(t, err)
	}
	defer srv.Close()
	ctx := t.Context()
	now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	cfg := syncConfig(limit)

	// The reference: the same sync, uninterrupted.
	ref := open(t, srv.NewDatabase(t))
	r := runner(cfg, ref, &source{n: people}, now)
	r.BatchSize = batch
	if _, err := r.Run(ctx, reconcile.Options{Mode: reconcile.ModeSync}); err != nil {
		t.Fatalf("reference sync: %v", err)
	}

	st := open(t, srv.NewDatabase(t))
	k := &killer{Store: st, kill: srv.Kill, tx: 5, insert: batch / 2}
	r = runner(cfg, k, &source{n: people}, now)
	r.BatchSize, r.LockTTL = batch, time.Second
	rep, err := r.Run(ctx, reconcile.Options{Mode: reconcile.ModeSync})
	if err == nil {
		t.Fatalf("a sync whose server died succeeded: %+v", rep.Summary)
	}
	t.Logf("the interrupted run: %v", err)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}

	var profiles []model.Profile
	for range 50 { // the pool finds its connections dead, then reconnects
		if profiles, err = st.Profiles(ctx); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Profiles after the restart: %v", err)
	}
	if len(profiles) == 0 || len(profiles) >= people || len(profiles)%batch != 0 {
		t.Errorf("%d profiles committed, want whole batches of %d, fewer than %d", len(profiles), batch, people)
	}
	audit, err := st.Audit(ctx, rep.RunID, 0)
	if err != nil {
		t.Fatal(err)
	}
	audited := map[string]bool{}
	for _, e := range audit {
		audited[e.Username] = true
	}
	active := 0
	for _, p := range profiles {
		if !audited[p.Username] {
			t.Errorf("profile %s committed without its audit entry", p.Username)
			break
		}
		if p.State == model.Active {
			active++
		}
	}
	if len(audit) != len(profiles) || active > limit {
		t.Errorf("%d audit entries for %d profiles, %d active of %d seats", len(audit), len(profiles), active, limit)
	}

	time.Sleep(r.LockTTL + 200*time.Millisecond) // the dead run's lock ends
	r = runner(cfg, st, &source{n: people}, now)
	r.BatchSize = batch
	if _, err := r.Run(ctx, reconcile.Options{Mode: reconcile.ModeSync}); err != nil {
		t.Fatalf("the run after the restart: %v", err)
	}
	got, err := st.Profiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ref.Profiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key := func(ps []model.Profile) []string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = fmt.Sprintf("%s %s %s %s %s", p.Username, p.State, p.BlockReason, p.QueuedAt.Format(time.RFC3339), p.Area)
		}
		return out
	}
	if g, w := key(got), key(want); !slices.Equal(g, w) {
		for i := range min(len(g), len(w)) {
			if g[i] != w[i] {
				t.Errorf("after the restart and a new run, profile %d is %q, an uninterrupted run gives %q", i, g[i], w[i])
				break
			}
		}
		t.Errorf("after the restart and a new run: %d profiles, an uninterrupted run gives %d", len(g), len(w))
	}
}
