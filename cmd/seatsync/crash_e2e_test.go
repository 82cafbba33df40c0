package main_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seatsync/seatsync/store/sqlite"
)

// Crash safety, with real processes: `seatsync sync` is killed with
// SIGKILL at random points of a first sync, and the next sync must start
// at once and give the same seats and the same queue as a run that was
// never interrupted.

// crowd is a first sync bigger than its pool: 40,000 people for 30,000
// seats, every seventh of them in the priority group.
func crowd() []string {
	rows := make([]string, 40_000)
	for i := range rows {
		teams := "teams=Staff"
		if i%7 == 3 {
			teams = "teams=Staff|Executives"
		}
		rows[i] = row(fmt.Sprintf("E%05d", i), fmt.Sprintf("p%05d", (i*7919)%40_000), teams)
	}
	return rows
}

// seating is who holds a seat, and the licence queue in order.
type seating struct {
	active []string
	queue  []string
}

func (s *site) seating() seating {
	s.t.Helper()
	var out seating
	type queued struct {
		username, at string
		exec         bool
	}
	var q []queued
	r := s.must(exitOK, "profiles", "list", "-c", s.config, "--format", "csv", "--fields", "username,state,block_reason,queued_at,groups")
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:] {
		f := strings.Split(line, ",")
		switch {
		case f[1] == "active":
			out.active = append(out.active, f[0])
		case f[2] == "license":
			q = append(q, queued{f[0], f[3], strings.Contains(f[4], "Executives")})
		}
	}
	slices.SortFunc(q, func(a, b queued) int {
		switch {
		case a.exec != b.exec:
			if a.exec {
				return -1
			}
			return 1
		case a.at != b.at:
			return strings.Compare(a.at, b.at)
		}
		return strings.Compare(a.username, b.username)
	})
	for _, p := range q {
		out.queue = append(out.queue, p.username)
	}
	return out
}

// startSync starts `seatsync sync` on the site.
func (s *site) startSync() *exec.Cmd {
	s.t.Helper()
	cmd := exec.Command(binary, "sync", "-c", s.config)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	return cmd
}

func TestCrashDuringFirstSync(t *testing.T) {
	if testing.Short() {
		t.Skip("kills 20 first syncs of 40,000 people")
	}
	people := crowd()
	opt := siteOptions{primaryLimit: "30000"}
	ref := newSite(t, opt, people...)
	start := time.Now()
	ref.must(exitOK, "sync", "-c", ref.config)
	whole := time.Since(start)
	want := ref.seating()
	if len(want.active) != 30_000 || len(want.queue) != 10_000 {
		t.Fatalf("an uninterrupted first sync: %d active, %d queued; want 30000 and 10000", len(want.active), len(want.queue))
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 20261201))
	const kills = 20
	interruptedRecords := 0
	for i := range kills {
		s := newSite(t, opt, people...)
		// A point anywhere in the run, from the pull to the last write
		// (the last tenth of an uninterrupted run is its report and exit).
		after := time.Duration(rng.Int64N(int64(whole) * 9 / 10))
		cmd := s.startSync()
		time.Sleep(after)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		committed := s.auditEntries()

		// The next run must not wait for the dead run's lock to expire.
		r := s.run("sync", "-c", s.config, "--format", "json")
		if r.code != exitOK {
			t.Fatalf("kill %d (after %s, %d changes committed): the next sync: %s", i+1, after, committed, r)
		}
		if rep := decodeReport(t, r); rep.Summary["create"]+committed < 40_000 && committed > 0 {
			t.Errorf("kill %d: the next sync created %d, the killed one committed %d, of 40000", i+1, rep.Summary["create"], committed)
		}
		got := s.seating()
		if !slices.Equal(got.active, want.active) {
			t.Fatalf("kill %d after %s (%d changes committed): %d active, %d of them not active in an uninterrupted run",
				i+1, after, committed, len(got.active), len(minus(got.active, want.active)))
		}
		if !slices.Equal(got.queue, want.queue) {
			t.Fatalf("kill %d after %s (%d changes committed): the licence queue differs from an uninterrupted run's", i+1, after, committed)
		}
		if i == kills-1 {
			s.must(exitOK, "plan", "--check", "-c", s.config)
		}
		if s.checkInterruptedRecord(t) {
			interruptedRecords++
		}
		t.Logf("kill %2d after %5s: %5d changes committed before the kill; converged", i+1, after.Round(time.Millisecond), committed)
	}
	t.Logf("%d of %d kills left a run record that the next sync ended as interrupted", interruptedRecords, kills)
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			out = append(out, x)
		}
	}
	return out
}

// auditEntries counts the audit entries in the site's store. It reads
// the file directly, read-only: opening it as a store would take the
// write lock for its migrations and wait for the sync it watches.
func (s *site) auditEntries() int {
	s.t.Helper()
	return s.count("SELECT count(*) FROM audit")
}

// count runs a counting query on the site's store, read-only; 0 when
// there is no store yet.
func (s *site) count(query string, args ...any) int {
	s.t.Helper()
	path := filepath.Join(s.dir, "seatsync.db")
	if _, err := os.Stat(path); err != nil {
		return 0
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		s.t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return 0 // the sync has not created its tables yet
		}
		s.t.Fatal(err)
	}
	return n
}

// checkInterruptedRecord checks the run history after a killed sync and
// the sync that followed: the killed run, if it got as far as taking the
// lock, is recorded as interrupted, and its summary counts what it
// committed. It reports whether there was such a record.
func (s *site) checkInterruptedRecord(t *testing.T) bool {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(s.dir, "seatsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	runs, err := st.Runs(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) == 0 || runs[0].Result != "ok" {
		t.Fatalf("the sync after the kill is not recorded as ok: %+v", runs)
	}
	switch len(runs) {
	case 1:
		return false // killed before it took the lock
	case 2:
		if runs[1].Result == "ok" {
			return false // killed after it had finished
		}
		if k := runs[1]; k.Result != "interrupted" || !strings.Contains(k.Error, runs[0].ID) {
			t.Fatalf("the killed run is recorded as %q (%s), want interrupted, naming the run that carried on", k.Result, k.Error)
		}
		return true
	}
	t.Fatalf("%d runs recorded, want at most 2", len(runs))
	return false
}

// TestServeAfterCrash: serve restarted after a killed sync runs at once
// (run_on_start auto, a schedule of an hour) and is not locked out.
func TestServeAfterCrash(t *testing.T) {
	var s *site
	for attempt := 0; ; attempt++ {
		s = newSite(t, siteOptions{primaryLimit: "30000"}, crowd()...)
		cmd := s.startSync()
		deadline := time.Now().Add(time.Minute)
		for s.auditEntries() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		// Killed in the middle: it wrote, and its record still says
		// running. On a loaded machine it may have finished first; then
		// try again.
		if s.auditEntries() > 0 && s.count("SELECT count(*) FROM runs WHERE result = 'running'") == 1 {
			break
		}
		if attempt == 4 {
			t.Fatal("five syncs of 40,000 people could not be killed in the middle of their apply")
		}
	}
	p := s.serve(serveOptions{schedule: "@every 1h", runOnStart: "auto"})
	p.eventually("a start-up sync that finishes the job", func() (bool, string) { return p.okRuns() == 1, "" })
	for _, r := range p.runs() {
		if r.Result == "skipped" {
			t.Errorf("a run was turned away by the dead process's lock: %+v", r)
		}
	}
	if !strings.Contains(p.log.String(), "took over the run lock") {
		t.Errorf("the log does not say the lock was taken over:\n%s", p.log)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	s.must(exitOK, "plan", "--check", "-c", s.config)
}
