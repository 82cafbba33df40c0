package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReportFileCheckedFirst: `sync -o PATH` with a PATH it cannot write
// refuses before it applies anything.
func TestReportFileCheckedFirst(t *testing.T) {
	s := newSite(t, siteOptions{}, fivePeople()...)
	for _, bad := range []string{
		filepath.Join(s.dir, "no-such-dir", "report.json"),
		s.dir, // a directory
	} {
		r := s.must(exitUsage, "sync", "-c", s.config, "--format", "json", "-o", bad)
		if !strings.Contains(r.stderr, "nothing was done") {
			t.Errorf("-o %s: the error does not say nothing was done:\n%s", bad, r)
		}
		if _, err := os.Stat(filepath.Join(s.dir, "seatsync.db")); err == nil {
			if n := len(s.profiles()); n != 0 {
				t.Fatalf("-o %s: the sync was refused but %d profiles were written", bad, n)
			}
		}
	}
	if os.Geteuid() != 0 { // root writes anywhere
		ro := filepath.Join(s.dir, "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		s.must(exitUsage, "sync", "-c", s.config, "-o", filepath.Join(ro, "report.txt"))
	}
}

// TestFilesOfPeopleArePrivate: the store and the reports name people, so
// they are created for their owner only, whatever the umask.
func TestFilesOfPeopleArePrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	s := newSite(t, siteOptions{}, fivePeople()...)
	s.must(exitOK, "sync", "-c", s.config, "--format", "json", "-o", "report.json")
	s.must(exitOK, "plan", "-c", s.config, "-o", "plan.txt")
	for _, name := range []string{"seatsync.db", "seatsync.db-wal", "seatsync.db-shm", "report.json", "plan.txt"} {
		fi, err := os.Stat(filepath.Join(s.dir, name))
		if err != nil {
			if strings.HasPrefix(name, "seatsync.db-") {
				continue // removed when the store closed; the store's own tests check them open
			}
			t.Errorf("%s: %v", name, err)
			continue
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is created %v, want -rw-------", name, fi.Mode().Perm())
		}
	}
	if rep := s.read("report.json"); !strings.Contains(rep, `"mode": "sync"`) {
		t.Errorf("report.json does not hold the sync's report:\n%s", rep)
	}
	left, _ := filepath.Glob(filepath.Join(s.dir, ".*.tmp-*"))
	if len(left) > 0 {
		t.Errorf("temporary report files left behind: %v", left)
	}
}
