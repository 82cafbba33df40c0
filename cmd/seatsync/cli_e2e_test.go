package main_test

import (
	"strings"
	"testing"
)

// What a new admin notices on the command line.

// TestQuietCLI: without a log section, a run prints its report and, on
// stderr, only what needs attention, as console lines; a no-op sync of a
// full pool prints nothing there.
func TestQuietCLI(t *testing.T) {
	s := newSite(t, siteOptions{}, fivePeople()...)
	cfg := s.read("seatsync.yaml")
	i := strings.Index(cfg, "log:")
	s.write("seatsync.yaml", cfg[:i]) // no log section: the defaults
	first := s.must(exitOK, "sync", "-c", s.config)
	if strings.Contains(first.stderr, `{"level"`) || strings.Contains(first.stderr, "INFO") {
		t.Errorf("a CLI sync logs info or JSON lines by default:\n%s", first.stderr)
	}
	if !strings.Contains(first.stderr, "seats_exhausted") || strings.Contains(first.stderr, "seats_low") {
		t.Errorf("the first sync, which fills the pool and queues people, should warn seats_exhausted (and not repeat it as seats_low):\n%s", first.stderr)
	}
	if noop := s.must(exitOK, "sync", "-c", s.config); noop.stderr != "" {
		t.Errorf("a no-op sync printed on stderr:\n%s", noop.stderr)
	}
}

// TestUnknownSourceOnlyTheError: --source with a name the configuration
// does not have is a usage error, and no report is printed.
func TestUnknownSourceOnlyTheError(t *testing.T) {
	s := newSite(t, siteOptions{}, fivePeople()...)
	for _, cmd := range []string{"plan", "sync"} {
		r := s.must(exitUsage, cmd, "-c", s.config, "--source", "nope")
		if r.stdout != "" || !strings.Contains(r.stderr, `no source named "nope"`) {
			t.Errorf("%s --source nope: want only the error, got %s", cmd, r)
		}
	}
}

func TestVersionFlag(t *testing.T) {
	r := runIn(t, t.TempDir(), "--version")
	if r.code != exitOK || strings.TrimSpace(r.stdout) != "seatsync "+testVersion {
		t.Errorf("--version: %s", r)
	}
}

// TestTextTablesStayNarrow: a huge value is cut in text tables, and no
// line ends in spaces.
func TestTextTablesStayNarrow(t *testing.T) {
	long := strings.Repeat("Maximiliane", 300) // 3,300 characters, under max_field_bytes
	rows := fivePeople()
	rows[0] = strings.Replace(rows[0], ";Alice;", ";"+long+";", 1)
	s := newSite(t, siteOptions{}, rows...)
	plan := s.must(exitOK, "plan", "-c", s.config)
	s.must(exitOK, "sync", "-c", s.config)
	list := s.must(exitOK, "profiles", "list", "-c", s.config, "--fields", "username,given_name,state,block_reason")
	for name, out := range map[string]string{"plan": plan.stdout, "profiles list": list.stdout} {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasSuffix(l, " ") {
				t.Errorf("%s: a line ends in spaces: %q", name, l)
			}
			if len([]rune(l)) > 200 {
				t.Errorf("%s: a line of %d characters", name, len([]rune(l)))
			}
		}
	}
	if !strings.Contains(list.stdout, "…  active") {
		t.Errorf("the long name is not shown cut:\n%s", list.stdout)
	}
	// The data itself is whole.
	if csv := s.must(exitOK, "profiles", "list", "-c", s.config, "--format", "csv", "--fields", "given_name"); !strings.Contains(csv.stdout, long) {
		t.Errorf("the csv export cut the value:\n%.300s", csv.stdout)
	}
}

// TestCompletion: the shell completion offers the values of --format,
// --state, --reason, --area and --source, and usernames for the profiles
// actions (cobra's hidden __complete command is what the shells call).
func TestCompletion(t *testing.T) {
	s := newSite(t, siteOptions{}, fivePeople()...)
	s.must(exitOK, "sync", "-c", s.config)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"plan", "-c", s.config, "--format", ""}, []string{"text", "json", "csv", "markdown"}},
		{[]string{"profiles", "list", "-c", s.config, "--state", ""}, []string{"active", "blocked"}},
		{[]string{"profiles", "list", "-c", s.config, "--reason", ""}, []string{"license", "admin", "source_disabled", "left_source"}},
		{[]string{"profiles", "list", "-c", s.config, "--area", ""}, []string{"partners", "primary"}},
		{[]string{"sync", "-c", s.config, "--source", ""}, []string{"hr"}},
		{[]string{"profiles", "block", "-c", s.config, "c"}, []string{"carol"}},
		{[]string{"profiles", "unblock", "-c", s.config, "alice", ""}, []string{"bob", "carol", "dave", "erin"}},
	} {
		r := s.must(exitOK, append([]string{"__complete"}, tc.args...)...)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if got := lines[:len(lines)-1]; strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("complete %v: %v, want %v", tc.args, got, tc.want)
		}
	}
}
