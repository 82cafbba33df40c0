package main_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/internal/pgtest"
	"github.com/seatsync/seatsync/internal/scimtest"
)

// migrateAndCheck copies the site's store into to (a --to spec) with
// store migrate, points the site at the copy with storeYAML (the store
// section of the configuration), and checks that the copy holds the same
// profiles and that a plan on it changes nothing.
func migrateAndCheck(t *testing.T, s *site, to, storeYAML string) map[string]int {
	t.Helper()
	before := s.profiles()
	r := s.must(exitOK, "store", "migrate", "--from", "sqlite:seatsync.db", "--to", to, "--format", "json")
	var census map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &census); err != nil {
		t.Fatalf("store migrate --format json: %v\n%s", err, r)
	}
	counts := map[string]int{}
	for _, k := range []string{"profiles", "queued", "audit", "runs"} {
		var n int
		if err := json.Unmarshal(census[k], &n); err != nil {
			t.Fatalf("census %s: %v\n%s", k, err, r.stdout)
		}
		counts[k] = n
	}
	if again := s.run("store", "migrate", "--from", "sqlite:seatsync.db", "--to", to); again.code != exitUsage ||
		!strings.Contains(again.stderr, "not empty") {
		t.Errorf("a second migrate into the same store: want exit 2 naming it not empty, got %s", again)
	}

	cfg := s.read("seatsync.yaml")
	start := strings.Index(cfg, "store:\n")
	end := strings.Index(cfg, "licensing:\n")
	s.write("seatsync.yaml", cfg[:start]+storeYAML+cfg[end:])
	if diff := cmp.Diff(before, s.profiles()); diff != "" {
		t.Errorf("profiles in the copy (-source +copy):\n%s", diff)
	}
	s.must(exitOK, "plan", "--check", "-c", s.config)
	return counts
}

func TestStoreMigrateSQLite(t *testing.T) {
	var people []string
	for i := range 8 {
		people = append(people, row(fmt.Sprint(100+i), fmt.Sprintf("user%d", i)))
	}
	s := newSite(t, siteOptions{}, people...)
	s.must(exitOK, "sync", "-c", s.config)
	s.people(people[1:]...) // user0 leaves: blocked, and the first in the queue gets the seat
	s.must(exitOK, "sync", "-c", s.config)

	counts := migrateAndCheck(t, s, "sqlite:copy.db", "store:\n  driver: sqlite\n  path: copy.db\n")
	want := map[string]int{"profiles": 8, "queued": 4, "audit": 8 + 1 + 1, "runs": 2}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("census (-want +got):\n%s", diff)
	}
	if r := s.run("store", "migrate", "--from", "sqlite:"+filepath.Join(s.dir, "nope.db"), "--to", "sqlite:x.db"); r.code != exitUsage {
		t.Errorf("migrate from a missing file: want exit 2, got %s", r)
	}
	if r := s.run("store", "migrate", "--from", "mysql:x", "--to", "sqlite:x.db"); r.code != exitUsage || !strings.Contains(r.stderr, "mysql") {
		t.Errorf("migrate from an unknown driver: want exit 2 naming it, got %s", r)
	}
}

// TestStoreMigratePostgres moves a store of 10,000 profiles, a licence
// queue, a target's links and pending pushes from SQLite to a real
// PostgreSQL, and runs on from there: plan changes nothing, targets
// status shows the same pending pushes, and the next sync sends them. The
// target takes the 300 partners only, so the test's SCIM server is not
// what it waits for.
func TestStoreMigratePostgres(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	rows := employees(10_000)
	for i := range 300 {
		rows[i] = strings.Replace(rows[i], ";Staff;", ";Partners;", 1)
	}
	s := newSCIMSite(t, siteOptions{primaryLimit: "9000", extranetLimit: "1000", maxDeprov: "50%"},
		targetOptions{keys: "    areas: [partners]\n"}, rows...)
	s.must(exitOK, "sync", "-c", s.config)

	// Fifty partners change while the application is down: their pushes
	// stay pending.
	for i := range 50 {
		rows[i] = strings.Replace(rows[i], ";Employee;", ";Manager;", 1)
	}
	s.people(rows...)
	s.app.SetFaults(scimtest.Faults{FailEvery: 1})
	s.must(exitPushes, "sync", "-c", s.config)
	s.app.SetFaults(scimtest.Faults{})
	before := s.status()
	if before.Pending != 50 || before.Linked != 300 {
		t.Fatalf("before the move: %d pending, %d linked; want 50 and 300", before.Pending, before.Linked)
	}

	counts := migrateAndCheck(t, s.site, "postgres:"+dsn, fmt.Sprintf("store:\n  driver: postgres\n  dsn: %q\n", dsn))
	if counts["profiles"] != 10_000 || counts["queued"] != 700 || counts["runs"] != 2 {
		t.Errorf("census %v: want 10,000 profiles, 700 queued, 2 runs", counts)
	}
	after := s.status()
	if after.Pending != before.Pending || after.Linked != before.Linked || after.Failed != before.Failed {
		t.Errorf("targets status on PostgreSQL = %+v, want what SQLite had: %+v", after, before)
	}
	r := s.must(exitOK, "sync", "-c", s.config, "--format", "json")
	if tr := targetsOf(t, r); tr.Sent != 50 || tr.Pending != 0 {
		t.Errorf("the first sync on PostgreSQL sent %d, left %d pending; want the 50 pending pushes sent", tr.Sent, tr.Pending)
	}
	if u := s.app.UserByName("user001"); u == nil || u.Title != "Manager" {
		t.Errorf("user001 in the application after the move: %+v, want the title Manager", u)
	}
}
