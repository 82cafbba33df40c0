package main_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
