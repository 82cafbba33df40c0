package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/seatsync/seatsync/connector"
	csvsource "github.com/seatsync/seatsync/connector/csv"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/server"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/store/sqlite"
)

// fakeElector is an in-memory store.Elector: one holder at a time, which
// the test can also depose (the leader's session failed) or give to
// another replica.
type fakeElector struct {
	mu     sync.Mutex
	holder string
	lost   chan struct{}
}

type fakeLeadership struct {
	f    *fakeElector
	lost chan struct{}
}

func (f *fakeElector) Campaign(_ context.Context, id string, _ time.Duration) (store.Leadership, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.holder != "" {
		return nil, nil
	}
	f.holder, f.lost = id, make(chan struct{})
	return &fakeLeadership{f: f, lost: f.lost}, nil
}

func (f *fakeElector) Leader(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.holder, nil
}

// give hands the leadership to another replica, id; "" frees it. A
// leadership held until then is lost.
func (f *fakeElector) give(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lost != nil {
		close(f.lost)
		f.lost = nil
	}
	f.holder = id
}

func (l *fakeLeadership) Lost() <-chan struct{} { return l.lost }

func (l *fakeLeadership) Resign() {
	l.f.mu.Lock()
	defer l.f.mu.Unlock()
	if l.f.lost == l.lost {
		close(l.lost)
		l.f.lost, l.f.holder = nil, ""
	}
}

// sharedStore is a store that several replicas share: SQLite, with the
// fake election beside it.
type sharedStore struct {
	store.Store
	*fakeElector
}

// replica is a daemon on a shared store whose sync runs every second.
func replica(t *testing.T) (*Daemon, *fakeElector, store.Store) {
	t.Helper()
	dir := t.TempDir()
	csv := filepath.Join(dir, "hr.csv")
	if err := os.WriteFile(csv, []byte("id,login\n1,ann\n2,ben\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, pools+`schedule: "@every 1s"
sources:
  - {name: hr, type: csv, path: `+csv+`, mapping: {external_id: id, username: login}}
server: {run_on_start: never}
`)
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.LeaderCheck.Duration = 20 * time.Millisecond // below what the loader allows, for a fast test
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "seatsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	el := &fakeElector{}
	d := New(cfg, sharedStore{st, el}, connector.Registry{"csv": csvsource.Kind}, nil, nil, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
	d.ID = "replica-a"
	return d, el, st
}

func syncs(t *testing.T, st store.Store) int {
	t.Helper()
	runs, err := st.Runs(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range runs {
		if r.Mode == reconcile.ModeSync {
			n++
		}
	}
	return n
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// idle waits for the run in flight, if any, to finish.
func idle(t *testing.T, d *Daemon) {
	t.Helper()
	eventually(t, "the run in flight to finish", func() bool { return backend{d}.Running() == "" })
}

// TestFollowerLeadsThenFollows: a replica that another leads runs no
// scheduled sync and refuses one through the API, naming the leader; once
// it wins it runs the schedule; once it loses the leadership it starts no
// new run; SIGTERM resigns.
func TestFollowerLeadsThenFollows(t *testing.T) {
	d, el, st := replica(t)
	el.give("replica-b")
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx, nil) }()
	defer func() {
		stop()
		<-served
	}()

	eventually(t, "the follower to know the leader", func() bool { return d.Leadership().Leader == "replica-b" })
	time.Sleep(2500 * time.Millisecond) // two ticks of the schedule
	if n := syncs(t, st); n != 0 {
		t.Fatalf("a follower ran %d scheduled syncs", n)
	}
	_, err := backend{d}.StartSync(reconcile.Options{Mode: reconcile.ModeSync})
	var notLeader *server.NotLeaderError
	if !errors.As(err, &notLeader) || notLeader.Leader != "replica-b" {
		t.Errorf("StartSync on a follower: %v; want a NotLeaderError naming replica-b", err)
	}
	if l := d.Leadership(); l.Leading || !l.Elected || l.ID != "replica-a" {
		t.Errorf("leadership of a follower: %+v", l)
	}

	el.give("") // replica-b is gone
	eventually(t, "the replica to lead", func() bool { return d.Leadership().Leading })
	if l := d.Leadership(); l.Leader != "replica-a" {
		t.Errorf("leadership of the leader: %+v", l)
	}
	eventually(t, "a scheduled sync by the new leader", func() bool { return syncs(t, st) > 0 })

	el.give("replica-c") // the leader's session failed; replica-c took over
	eventually(t, "the replica to follow", func() bool { l := d.Leadership(); return !l.Leading && l.Leader == "replica-c" })
	idle(t, d)
	n := syncs(t, st)
	time.Sleep(2500 * time.Millisecond)
	if m := syncs(t, st); m != n {
		t.Errorf("after losing the leadership the replica started %d more syncs", m-n)
	}

	el.give("")
	eventually(t, "the replica to lead again", func() bool { return d.Leadership().Leading })
	stop()
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	served <- nil // for the deferred wait
	if holder, _ := el.Leader(context.Background()); holder != "" {
		t.Errorf("after shutdown %q leads; want the replica to have resigned", holder)
	}
}

// TestOwnStoreAlwaysLeads: a store of one process (SQLite) has no
// election, and its process leads from the start, as before.
func TestOwnStoreAlwaysLeads(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := New(parse(t, pools+"sources: [{name: a, type: csv, path: a.csv}]\n"), st, nil, nil, nil, zap.NewNop())
	d.ID = "only"
	if !d.leading() {
		t.Fatal("a daemon on its own store does not lead")
	}
	if l := d.Leadership(); l.Elected || !l.Leading {
		t.Errorf("leadership %+v", l)
	}
}
