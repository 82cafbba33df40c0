package main_test

import (
	"strings"
	"testing"
)

// TestValidateSchedules: a schedule that would never run, or never stop,
// is refused at its line; one that runs more than once a minute passes
// with a warning on stderr.
func TestValidateSchedules(t *testing.T) {
	s := newSite(t, siteOptions{}, row("E1", "alice"))
	cfg := func(schedule, sourceSchedule, verify string) string {
		return `version: 1
store: {path: seatsync.db}
licensing:
  pools: [{name: primary, limit: 5, areas: [primary]}]
schedule: "` + schedule + `"
sources:
  - name: hr
    type: csv
    path: people.csv
    schedule: "` + sourceSchedule + `"
targets:
  - name: intranet
    type: scim
    url: https://app.example/scim/v2
    token: not-a-real-token
    verify_schedule: "` + verify + `"
`
	}

	s.write("bad.yaml", cfg("0 0 30 2 *", "@every 0s", "@every -1m"))
	r := runIn(t, s.dir, "validate", "-c", "bad.yaml")
	if r.code != exitUsage {
		t.Fatalf("validate of schedules that never run: want exit 2, got %s", r)
	}
	for _, want := range []string{
		`line 5: schedule: "0 0 30 2 *" has no run in the next year`,
		`line 10: sources[0].schedule: "@every 0s" has an interval of 0s: it must be more than 0`,
		`line 16: targets[0].verify_schedule: "@every -1m" has an interval of -1m: it must be more than 0`,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("validate does not report %q:\n%s", want, r)
		}
	}

	s.write("fast.yaml", cfg("@every 10s", "*/15 * * * *", "0 3 * * *"))
	r = runIn(t, s.dir, "validate", "-c", "fast.yaml")
	if r.code != exitOK || strings.TrimSpace(r.stdout) != "ok" {
		t.Fatalf("validate of a schedule every 10s: want exit 0 and ok, got %s", r)
	}
	want := `warning: line 5: schedule: "@every 10s" runs more than once a minute; fine for tests, heavy for a directory`
	if strings.TrimSpace(r.stderr) != want {
		t.Errorf("validate of a schedule every 10s: want on stderr\n%s\ngot %s", want, r)
	}
}
