package main_test

// Failover of `seatsync serve` replicas on one PostgreSQL store, with real
// processes: one leader runs the schedule, a leader killed with SIGKILL, one
// that is sent SIGTERM and one cut off from the database by a proxy are each
// replaced within the bound of server.leader_check, runs never overlap, and
// the seats stay within their pool.

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seatsync/seatsync/internal/pgtest"
)

// haCheck is server.leader_check of these tests (the shortest allowed).
const haCheck = time.Second

// haMargin is added to each takeover bound, for process scheduling on a
// loaded test machine: the bound is a correctness bound, not a benchmark.
const haMargin = time.Second

// haSite is a site whose store is the PostgreSQL database dsn, logging
// JSON so the test can read when each leadership change happened.
func haSite(t *testing.T, dsn string) *site {
	s := newSite(t, siteOptions{}, fivePeople()...)
	s.useDSN(dsn)
	cfg := s.read("seatsync.yaml")
	s.write("seatsync.yaml", strings.Replace(cfg, "format: console", "format: json", 1))
	return s
}

// useDSN points the site's store at dsn; the next serve reads it.
func (s *site) useDSN(dsn string) {
	s.t.Helper()
	cfg := s.read("seatsync.yaml")
	start := strings.Index(cfg, "store:\n")
	end := strings.Index(cfg, "licensing:\n")
	if start < 0 || end < start {
		s.t.Fatalf("no store section before licensing in:\n%s", cfg)
	}
	s.write("seatsync.yaml", cfg[:start]+"store:\n  driver: postgres\n  dsn: "+dsn+"\n"+cfg[end:])
}

// readiness is the body of /readyz.
type readiness struct {
	Status, ID, Leader string
	Leading, Elected   bool
}

var probe = &http.Client{Timeout: 500 * time.Millisecond}

// ready asks the replica who leads; ok is false when it does not answer
// 200 (gone, or its store unreachable).
func (p *server) ready() (readiness, bool) {
	resp, err := probe.Get(p.base + "/readyz")
	if err != nil {
		return readiness{}, false
	}
	defer resp.Body.Close()
	var r readiness
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&r) != nil {
		return readiness{}, false
	}
	return r, true
}

func (p *server) leads() bool {
	r, ok := p.ready()
	return ok && r.Leading
}

// logged returns when the replica first logged msg after since, and
// whether it did.
func (p *server) logged(msg string, since time.Time) (time.Time, bool) {
	sc := bufio.NewScanner(strings.NewReader(p.log.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct{ TS, Msg string }
		if json.Unmarshal(sc.Bytes(), &line) != nil || !strings.HasPrefix(line.Msg, msg) {
			continue
		}
		at, err := time.Parse("2006-01-02T15:04:05.000Z0700", line.TS)
		if err == nil && !at.Before(since) {
			return at, true
		}
	}
	return time.Time{}, false
}

// takeover waits until p leads, and returns how long after from.
func takeover(t *testing.T, p *server, what string, from time.Time, bound time.Duration) time.Duration {
	t.Helper()
	deadline := from.Add(bound + haMargin)
	for !p.leads() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no takeover within %s (bound %s plus %s)", what, time.Since(from).Round(time.Millisecond), bound, haMargin)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(from)
	t.Logf("%s: taken over after %s (bound %s)", what, took.Round(time.Millisecond), bound)
	return took
}

// finishedRuns are the runs that ran (not skipped at the run lock, not
// still running), for noOverlap.
func finishedRuns(runs []runRecord) []runRecord {
	var out []runRecord
	for _, r := range runs {
		if r.Mode == "sync" && r.Result != "skipped" && r.Result != "running" && !r.FinishedAt.IsZero() {
			out = append(out, r)
		}
	}
	return out
}

// okRunAfter waits for a successful sync that started after since.
func (p *server) okRunAfter(since time.Time) {
	p.t.Helper()
	p.eventually("a successful sync after "+since.Format(time.RFC3339Nano), func() (bool, string) {
		for _, r := range p.runs() {
			if r.Result == "ok" && r.StartedAt.After(since) {
				return true, ""
			}
		}
		return false, "none yet"
	})
}

// checkSeats: the primary pool (limit 3) is never over its limit, and
// the two left out wait in the queue.
func checkSeats(t *testing.T, s *site) {
	t.Helper()
	active, queued := 0, 0
	for _, p := range s.profiles() {
		switch {
		case p["area"] != "primary":
		case p["state"] == "active":
			active++
		case p["block_reason"] == "license":
			queued++
		}
	}
	if active != 3 || queued != 1 {
		t.Errorf("primary pool: %d active and %d queued, want 3 and 1 (limit 3; dave is a partner)", active, queued)
	}
}

func TestServeFailover(t *testing.T) {
	srv := pgtest.Shared(t)
	dsn := srv.NewDatabase(t)
	s := haSite(t, dsn)
	opt := serveOptions{schedule: "@every 1s", runOnStart: "auto", leaderCheck: haCheck.String()}

	// Two replicas: one leads, the other follows and names it.
	a := s.serve(opt)
	a.eventually("the first replica to lead", func() (bool, string) { r, _ := a.ready(); return r.Leading, r.Leader })
	b := s.serve(opt)
	idA, _ := a.ready()
	b.eventually("the second replica to follow the first", func() (bool, string) {
		r, ok := b.ready()
		return ok && !r.Leading && r.Elected && r.Leader == idA.ID, r.Leader
	})
	a.okRunAfter(time.Time{})
	started := time.Now()
	a.okRunAfter(started.Add(time.Second)) // a few ticks
	if _, ok := b.logged("run finished", time.Time{}); ok {
		t.Error("the follower ran a sync")
	}
	if m := b.metrics(); m["seatsync_leader"] != 0 {
		t.Errorf("seatsync_leader on the follower = %v", m["seatsync_leader"])
	}
	if m := a.metrics(); m["seatsync_leader"] != 1 {
		t.Errorf("seatsync_leader on the leader = %v", m["seatsync_leader"])
	}
	if code, body := b.request("POST", "/api/v1/sync", "token"); code != 409 || !strings.Contains(body, idA.ID) {
		t.Errorf("POST sync on the follower: %d %s; want 409 naming %s", code, body, idA.ID)
	}

	// The leader is killed: its session ends with it, and the lock with it.
	killed := time.Now()
	_ = a.cmd.Process.Kill()
	<-a.done
	takeover(t, b, "kill -9 of the leader", killed, 2*haCheck)
	b.okRunAfter(killed)
	if at, ok := b.logged("became the leader", killed); !ok || at.Before(killed) {
		t.Errorf("the new leader did not log its leadership: %v %v", at, ok)
	}

	// A replica behind a proxy joins; the leader is stopped (a rolling
	// update): it resigns, and the one behind the proxy takes over.
	proxy, err := pgtest.NewProxy(srv.Port)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	s.useDSN(proxy.URL(dsn))
	c := s.serve(opt)
	c.eventually("the proxied replica to follow", func() (bool, string) { r, ok := c.ready(); return ok && !r.Leading && r.Leader != "", r.Leader })
	stopped := time.Now()
	b.signal(syscall.SIGTERM)
	takeover(t, c, "SIGTERM of the leader", stopped, 2*haCheck)
	if code := b.wait(); code != 0 {
		t.Errorf("the stopped leader exited %d", code)
	}
	c.okRunAfter(stopped)

	// A replica on the direct path joins; the leader is cut off from the
	// database, without any socket closing: it must stop leading before
	// the other takes over, within two checks.
	s.useDSN(dsn)
	d := s.serve(opt)
	d.eventually("the direct replica to follow", func() (bool, string) { r, ok := d.ready(); return ok && !r.Leading && r.Leader != "", r.Leader })
	cut := time.Now()
	proxy.Cut()
	takeover(t, d, "partition of the leader", cut, 2*haCheck)
	lost, ok := c.logged("lost the leadership", cut)
	// The log line follows the leadership /readyz shows by a moment.
	var won time.Time
	d.eventually("the new leader to log it", func() (bool, string) {
		var logged bool
		won, logged = d.logged("became the leader", cut)
		return logged, ""
	})
	switch {
	case !ok:
		t.Error("the partitioned leader did not log that it lost the leadership")
	case !lost.Before(won):
		t.Errorf("two leaders: the partitioned one stopped at %s, the new one started at %s", lost.Format(time.RFC3339Nano), won.Format(time.RFC3339Nano))
	default:
		t.Logf("partition: the old leader stopped %s after the cut, %s before the new one started",
			lost.Sub(cut).Round(time.Millisecond), won.Sub(lost).Round(time.Millisecond))
	}
	proxy.Restore()
	restored := time.Now()
	c.eventually("the partitioned replica to follow the new leader", func() (bool, string) {
		r, ok := c.ready()
		return ok && !r.Leading && r.Leader != "" && r.Leader != c.id(), r.Leader
	})
	d.okRunAfter(restored)

	runs := d.runs()
	noOverlap(t, finishedRuns(runs))
	checkSeats(t, s)
	if r := s.run("plan", "--check", "-c", s.config); r.code != exitOK {
		t.Errorf("plan --check after the failovers: %s", r)
	}
}

// id is the replica's name among the others.
func (p *server) id() string {
	r, _ := p.ready()
	return r.ID
}
