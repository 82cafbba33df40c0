package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/seatsync/seatsync/internal/pgtest"
	"github.com/seatsync/seatsync/store"
)

// check is the leadership check of these tests: short, so that a
// takeover takes seconds, and long enough for a ping under -race.
const check = time.Second

func newElector(t *testing.T, dsn string) *Elector {
	t.Helper()
	e, err := NewElector(dsn, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func campaign(t *testing.T, e *Elector, id string) store.Leadership {
	t.Helper()
	l, err := e.Campaign(context.Background(), id, check)
	if err != nil {
		t.Fatalf("campaign %s: %v", id, err)
	}
	if l != nil {
		t.Cleanup(l.Resign)
	}
	return l
}

func leader(t *testing.T, e *Elector) string {
	t.Helper()
	name, err := e.Leader(context.Background())
	if err != nil {
		t.Fatalf("leader: %v", err)
	}
	return name
}

func isLost(l store.Leadership) bool {
	select {
	case <-l.Lost():
		return true
	default:
		return false
	}
}

// waitLost waits for l to be lost, up to limit; it returns how long that
// took and false when it was not lost by then.
func waitLost(l store.Leadership, limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	select {
	case <-l.Lost():
		return time.Since(start), true
	case <-time.After(limit):
		return limit, false
	}
}

// takeOver campaigns as id every check, as a follower does, until it
// wins or limit has passed; before each campaign it checks that old is
// lost, so that a win while old still leads (two leaders) fails the test.
func takeOver(t *testing.T, e *Elector, id string, old store.Leadership, start time.Time, limit time.Duration) (store.Leadership, time.Duration) {
	t.Helper()
	for time.Since(start) < limit {
		oldLost := isLost(old)
		l := campaign(t, e, id)
		if l != nil {
			if !oldLost && !isLost(old) {
				t.Fatalf("%s won while the old leader still leads: two leaders", id)
			}
			return l, time.Since(start)
		}
		time.Sleep(check)
	}
	t.Fatalf("%s did not take over within %s", id, limit)
	return nil, 0
}

func TestOneOfTwoWins(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	a, b := newElector(t, dsn), newElector(t, dsn)
	if got := leader(t, a); got != "" {
		t.Fatalf("before any campaign the leader is %q, want none", got)
	}
	la := campaign(t, a, "replica-a")
	if la == nil {
		t.Fatal("the first campaign lost with nobody leading")
	}
	if lb := campaign(t, b, "replica-b"); lb != nil {
		t.Fatal("the second campaign won while replica-a leads")
	}
	// Again, as a follower does every check: still no.
	if lb := campaign(t, b, "replica-b"); lb != nil {
		t.Fatal("the third campaign won while replica-a leads")
	}
	for _, e := range []*Elector{a, b} {
		if got := leader(t, e); got != "replica-a" {
			t.Errorf("leader = %q, want replica-a", got)
		}
	}
	// The leader's own campaign is not a second leadership either.
	if again := campaign(t, a, "replica-a"); again != nil {
		t.Error("a second campaign of the leader won: the lock is not exclusive between sessions")
	}
	time.Sleep(2 * check) // a few checks of a healthy session
	if isLost(la) {
		t.Fatal("a healthy leadership was lost")
	}
}

func TestResignHandsOverAtOnce(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	a, b := newElector(t, dsn), newElector(t, dsn)
	la := campaign(t, a, "replica-a")
	if la == nil {
		t.Fatal("replica-a did not win")
	}
	la.Resign()
	if !isLost(la) {
		t.Fatal("Lost not closed after Resign")
	}
	la.Resign() // twice is fine
	lb := campaign(t, b, "replica-b")
	if lb == nil {
		t.Fatal("replica-b did not win right after replica-a resigned")
	}
	if got := leader(t, a); got != "replica-b" {
		t.Errorf("leader = %q, want replica-b", got)
	}
}

// TestEndedSessionLosesAtOnce: when the leader's session ends (the
// server restarted, an admin terminated it, the process died) the leader
// learns it at its next check, and another process can take over at once.
func TestEndedSessionLosesAtOnce(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	a, b := newElector(t, dsn), newElector(t, dsn)
	la := campaign(t, a, "replica-a")
	if la == nil {
		t.Fatal("replica-a did not win")
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var ended bool
	if err := admin.QueryRow(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'replica-a'").Scan(&ended); err != nil || !ended {
		t.Fatalf("terminate the leader's session: %v, %v", ended, err)
	}
	lb := campaign(t, b, "replica-b")
	if lb == nil {
		t.Fatal("replica-b did not win once the leader's session was gone")
	}
	if took, ok := waitLost(la, 2*check); !ok {
		t.Fatalf("replica-a still leads %s after its session ended", took)
	}
}

// TestPartitionedLeader: the network between the leader and the database
// is cut, without either side closing anything. The leader stops leading
// within a check, before the database frees its lock (idle_session_timeout),
// and another process takes over within two checks: never two leaders.
func TestPartitionedLeader(t *testing.T) {
	srv := pgtest.Shared(t)
	dsn := srv.NewDatabase(t)
	proxy, err := pgtest.NewProxy(srv.Port)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	a, b := newElector(t, proxy.URL(dsn)), newElector(t, dsn)
	la := campaign(t, a, "replica-a")
	if la == nil {
		t.Fatal("replica-a did not win")
	}
	if lb := campaign(t, b, "replica-b"); lb != nil {
		t.Fatal("replica-b won while replica-a leads")
	}
	time.Sleep(check) // a few checks through the proxy

	cut := time.Now()
	proxy.Cut()
	// The bounds of leader.go, with half a check of margin for a loaded
	// machine: the leader stops at 0.75 check, the lock is free at 1,
	// a follower campaigning every check has it at 2.
	margin := check / 2
	lost, ok := waitLost(la, 3*check/4+margin)
	if !ok {
		t.Fatalf("the partitioned leader still leads %s after the cut", lost)
	}
	lb, took := takeOver(t, b, "replica-b", la, cut, 2*check+margin)
	t.Logf("partition: the leader stopped %s after the cut; replica-b took over %s after it (check %s)", lost.Round(time.Millisecond), took.Round(time.Millisecond), check)
	if got := leader(t, b); got != "replica-b" {
		t.Errorf("leader = %q, want replica-b", got)
	}
	// The network comes back: the old leader is a follower now.
	proxy.Restore()
	if again := campaign(t, a, "replica-a"); again != nil {
		t.Error("replica-a won again while replica-b leads")
	}
	if isLost(lb) {
		t.Error("replica-b lost the leadership")
	}
}

// TestServerRestart: the database goes away and comes back; the leader
// loses the leadership, and campaigns win again once it is back.
func TestServerRestart(t *testing.T) {
	srv := pgtest.Shared(t)
	dsn := srv.NewDatabase(t)
	a := newElector(t, dsn)
	la := campaign(t, a, "replica-a")
	if la == nil {
		t.Fatal("replica-a did not win")
	}
	srv.Kill()
	if _, err := a.Campaign(context.Background(), "replica-a", check); err == nil {
		t.Error("a campaign with the database down did not fail")
	}
	if took, ok := waitLost(la, 2*check); !ok {
		t.Fatalf("still leading %s after the database went away", took)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if l := campaign(t, a, "replica-a"); l == nil {
		t.Fatal("no leader after the database came back")
	}
}

// TestApplicationName: an id becomes an application_name the server
// keeps as it is: printable ASCII, at most 63 bytes.
func TestApplicationName(t *testing.T) {
	for in, want := range map[string]string{
		"pod-7f9c/1":             "pod-7f9c/1",
		"héllo\nworld":           "h?llo?world",
		strings.Repeat("x", 100): strings.Repeat("x", maxApplicationName),
	} {
		if got := applicationName(in); got != want {
			t.Errorf("applicationName(%q) = %q, want %q", in, got, want)
		}
	}
}
