package main_test

// End-to-end tests of the seatsync binary: TestMain builds it once, and
// every test runs it with exec.Command on a configuration and an HR export
// (CSV) the test writes into its own temporary directory, the way an admin
// runs it by hand or from a timer. They assert what a user sees: exit
// codes, reports, and the profiles the store holds afterwards.

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seatsync/seatsync/internal/pgtest"
)

// testVersion is stamped into the binary, as `make build` does.
const testVersion = "v0.0.0-e2e"

// binary is the seatsync binary TestMain builds.
var binary string

func TestMain(m *testing.M) {
	if os.Getenv(peakRSSWrapper) != "" {
		os.Exit(peakRSSMain(os.Args[1:]))
	}
	os.Exit(buildAndRun(m))
}

// peakRSSWrapper makes the test binary run the command in its arguments
// and print the command's peak RSS. On Linux a child inherits the peak of
// the process it was forked from, so a child of the big test process
// would report the test's own memory; a child of this small wrapper
// reports its own.
const peakRSSWrapper = "SEATSYNC_E2E_PEAK_RSS"

func peakRSSMain(args []string) int {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, "peak rss wrapper:", err)
		return 125
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		fmt.Fprintf(os.Stderr, "\npeak-rss-kib %d\n", ru.Maxrss)
	}
	return cmd.ProcessState.ExitCode()
}

// peakRSS runs the binary with args in dir through the wrapper and returns
// the result and the binary's own peak RSS in KiB (0 where unknown).
func peakRSS(t *testing.T, dir string, args ...string) (result, int64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{binary}, args...)...)
	cmd.Env = append(os.Environ(), peakRSSWrapper+"=1")
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	_ = cmd.Run()
	r := result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errOut.String()}
	var kib int64
	if i := strings.LastIndex(r.stderr, "\npeak-rss-kib "); i >= 0 {
		fmt.Sscanf(r.stderr[i+1:], "peak-rss-kib %d", &kib)
		r.stderr = r.stderr[:i]
	}
	return r, kib
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "seatsync-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "seatsync")
	if runtime.GOOS == "windows" {
		binary += ".exe"
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	build := exec.Command(goBin, "build", "-ldflags", "-X main.version="+testVersion, "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go build:", err)
		return 1
	}
	code := m.Run()
	pgtest.StopShared() // the PostgreSQL server of the ha tests, if one started
	return code
}

// Exit codes, SPEC section 6.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitGuard   = 3
	exitChanges = 4
)

// site is one installation: a directory with a configuration, an HR export
// and (after the first sync) the store.
type site struct {
	t      *testing.T
	dir    string
	config string // path of the configuration file
}

type siteOptions struct {
	primaryLimit   string // default "3"
	primaryReserve int
	extranetLimit  string // default "10"
	maxDeprov      string // default "10%"
}

// csvHeader is the export's header; rows are written in this order.
const csvHeader = "employee_id;login;first_name;last_name;mail;department;title;teams;active"

// newSite writes a configuration laid out like examples/demo.yaml, with
// relative paths (resolved against the configuration's directory), and an
// export with the given people.
func newSite(t *testing.T, opt siteOptions, people ...string) *site {
	t.Helper()
	if opt.primaryLimit == "" {
		opt.primaryLimit = "3"
	}
	if opt.extranetLimit == "" {
		opt.extranetLimit = "10"
	}
	if opt.maxDeprov == "" {
		opt.maxDeprov = "10%"
	}
	s := &site{t: t, dir: t.TempDir()}
	s.config = filepath.Join(s.dir, "seatsync.yaml")
	cfg := fmt.Sprintf(`# seatsync e2e test site
version: 1
store:
  driver: sqlite
  path: seatsync.db
licensing:
  pools:
    - name: primary
      limit: %s
      reserve: %d
      areas: [primary]
    - name: extranet
      limit: %s
      areas: [partners]
  exempt: [admin]
  priority:
    - group: Executives
      weight: 100
  on_overage: keep
safety:
  max_deprovision: %q
sources:
  - name: hr
    type: csv
    path: people.csv
    delimiter: ";"
    mapping:
      external_id: employee_id
      username: login
      email: mail
      given_name: first_name
      family_name: last_name
      department: department
      title: title
      groups: teams
      enabled: active
    area: primary
    area_rules:
      - group: Partners
        area: partners
    on_leave: block
log:
  level: warn
  format: console
`, opt.primaryLimit, opt.primaryReserve, opt.extranetLimit, opt.maxDeprov)
	s.write("seatsync.yaml", cfg)
	s.people(people...)
	return s
}

func (s *site) write(name, content string) {
	s.t.Helper()
	if err := os.WriteFile(filepath.Join(s.dir, name), []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// read returns a file of the site.
func (s *site) read(name string) string {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		s.t.Fatal(err)
	}
	return string(b)
}

// people writes the export: one row per person, made by row.
func (s *site) people(rows ...string) {
	s.t.Helper()
	s.write("people.csv", csvHeader+"\n"+strings.Join(rows, "\n")+"\n")
}

// row is one person of the export, enabled, in the Staff team.
func row(id, login string, extra ...string) string {
	teams, active := "Staff", "yes"
	for _, e := range extra {
		switch {
		case strings.HasPrefix(e, "teams="):
			teams = strings.TrimPrefix(e, "teams=")
		case strings.HasPrefix(e, "active="):
			active = strings.TrimPrefix(e, "active=")
		}
	}
	first := strings.ToUpper(login[:1]) + login[1:]
	return strings.Join([]string{id, login, first, "Test", login + "@example.com", "Sales", "Employee", teams, active}, ";")
}

// result is one run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs the binary in the site's directory.
func (s *site) run(args ...string) result {
	s.t.Helper()
	return runIn(s.t, s.dir, args...)
}

func runIn(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run seatsync %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// must runs the binary and fails the test unless it exits with code.
func (s *site) must(code int, args ...string) result {
	s.t.Helper()
	r := s.run(args...)
	if r.code != code {
		s.t.Fatalf("seatsync %s: want exit %d, got %s", strings.Join(args, " "), code, r)
	}
	return r
}

// The report's JSON form, SPEC section 9.
type report struct {
	RunID      string `json:"run_id"`
	Mode       string `json:"mode"`
	StartedAt  string `json:"started_at"`
	FinishedAt string `json:"finished_at"`
	Sources    []struct {
		Name       string `json:"name"`
		Type       string `json:"type"`
		Identities int    `json:"identities"`
		Skipped    int    `json:"skipped"`
		Full       bool   `json:"full"`
		// Incremental reads (sources that read only what changed).
		Incremental         bool   `json:"incremental"`
		IncrementalFallback string `json:"incremental_fallback"`
		Deletes             int    `json:"deletes"`
		NoDeletes           bool   `json:"no_deletes"`
	} `json:"sources"`
	Summary map[string]int `json:"summary"`
	Pools   []poolReport   `json:"pools"`
	Changes []struct {
		Action        string                     `json:"action"`
		Username      string                     `json:"username"`
		Source        string                     `json:"source"`
		ExternalID    string                     `json:"external_id"`
		Area          string                     `json:"area"`
		State         string                     `json:"state"`
		Reason        string                     `json:"reason"`
		QueuePosition int                        `json:"queue_position"`
		Fields        map[string]json.RawMessage `json:"fields"`
	} `json:"changes"`
	Skipped []struct {
		Source     string `json:"source"`
		ExternalID string `json:"external_id"`
		Where      string `json:"where"`
		Reason     string `json:"reason"`
	} `json:"skipped"`
	Guard struct {
		Tripped      bool `json:"tripped"`
		Deprovisions int  `json:"deprovisions"`
		Limit        int  `json:"limit"`
	} `json:"guard"`
}

type poolReport struct {
	Name           string `json:"name"`
	Limit          int    `json:"limit"`
	Unlimited      bool   `json:"unlimited"`
	Reserve        int    `json:"reserve"`
	UsedBefore     int    `json:"used_before"`
	UsedAfter      int    `json:"used_after"`
	RemainingAfter int    `json:"remaining_after"`
	QueuedAfter    int    `json:"queued_after"`
}

func decodeReport(t *testing.T, r result) report {
	t.Helper()
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("the json report does not decode: %v\n%s", err, r)
	}
	return rep
}

// change returns the report's change for username, or fails.
func (rep report) change(t *testing.T, username string) (action, state, reason string, queue int) {
	t.Helper()
	for _, c := range rep.Changes {
		if c.Username == username {
			return c.Action, c.State, c.Reason, c.QueuePosition
		}
	}
	t.Fatalf("the report has no change for %s: %+v", username, rep.Changes)
	return
}

func (rep report) pool(t *testing.T, name string) poolReport {
	t.Helper()
	for _, p := range rep.Pools {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("the report has no pool %s", name)
	return poolReport{}
}

// profile is one row of `profiles list --format json`.
type profile map[string]any

func (s *site) profiles() map[string]profile {
	s.t.Helper()
	r := s.must(exitOK, "profiles", "list", "-c", s.config, "--format", "json",
		"--fields", "username,area,state,block_reason,source,external_id,queued_at,activated_at,blocked_at,updated_at,exempt")
	var rows []profile
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		s.t.Fatalf("profiles list --format json does not decode: %v\n%s", err, r)
	}
	out := make(map[string]profile, len(rows))
	for _, p := range rows {
		out[p["username"].(string)] = p
	}
	return out
}

// state is "active" or "blocked REASON".
func (p profile) state() string {
	if p == nil {
		return "(no profile)"
	}
	if p["state"] == "active" {
		return "active"
	}
	return fmt.Sprintf("%v %v", p["state"], p["block_reason"])
}

func fivePeople() []string {
	return []string{
		row("E1", "alice"), row("E2", "bob"), row("E3", "carol"),
		row("E4", "dave", "teams=Staff|Partners"), row("E5", "erin"),
	}
}

// TestConvergence is ldap2pg's check: plan --check shows changes, sync
// applies them, plan --check then shows none, and a second sync changes
// nothing.
func TestConvergence(t *testing.T) {
	s := newSite(t, siteOptions{}, fivePeople()...)
	r := s.must(exitChanges, "plan", "--check", "-c", s.config)
	if !strings.Contains(r.stdout, "alice") {
		t.Errorf("plan --check prints no report:\n%s", r)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "seatsync.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("plan on a new machine created the store file (stat: %v)", err)
	}
	if got := s.profiles(); len(got) != 0 {
		t.Fatalf("plan wrote to the store: %v", got)
	}

	s.must(exitOK, "sync", "-c", s.config)
	s.must(exitOK, "plan", "--check", "-c", s.config)
	rep := decodeReport(t, s.must(exitOK, "sync", "-c", s.config, "--format", "json"))
	for _, k := range []string{"create", "update", "move", "activate", "block", "delete"} {
		if rep.Summary[k] != 0 {
			t.Errorf("second sync: summary %s = %d, want 0 (summary %v)", k, rep.Summary[k], rep.Summary)
		}
	}
	if len(rep.Changes) != 0 {
		t.Errorf("second sync has changes: %+v", rep.Changes)
	}
	// The file has not changed: the run plans nobody again.
	if rep.Summary["unchanged"] != 0 || rep.Sources[0].Full || !rep.Sources[0].Incremental {
		t.Errorf("second sync of an unchanged file: unchanged = %d, source %+v; want 0, read as changes", rep.Summary["unchanged"], rep.Sources[0])
	}
	rep = decodeReport(t, s.must(exitOK, "sync", "--full", "-c", s.config, "--format", "json"))
	if len(rep.Changes) != 0 || rep.Summary["unchanged"] != 5 || !rep.Sources[0].Full {
		t.Errorf("sync --full: %d changes, unchanged = %d, source %+v; want none, 5, read in full", len(rep.Changes), rep.Summary["unchanged"], rep.Sources[0])
	}
}

// TestReportFormats checks the report's json contract (SPEC section 9) and
// that the other formats say the same thing.
func TestReportFormats(t *testing.T) {
	s := newSite(t, siteOptions{primaryLimit: "2"}, fivePeople()...)
	r := s.must(exitOK, "plan", "-c", s.config, "--format", "json")

	// Every key of the contract is there.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatalf("plan --format json: stdout is not one json object: %v\n%s", err, r)
	}
	for _, k := range []string{"run_id", "mode", "started_at", "finished_at", "sources", "summary", "pools", "changes", "skipped", "guard"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("the json report has no %q", k)
		}
	}
	keysOf := func(name string, msg json.RawMessage, want ...string) {
		t.Helper()
		var m map[string]json.RawMessage
		if err := json.Unmarshal(msg, &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, k := range want {
			if _, ok := m[k]; !ok {
				t.Errorf("the json report's %s has no %q: %s", name, k, msg)
			}
		}
	}
	var lists struct{ Sources, Pools, Changes []json.RawMessage }
	if err := json.Unmarshal([]byte(r.stdout), &lists); err != nil || len(lists.Sources) == 0 || len(lists.Pools) == 0 {
		t.Fatalf("the json report's sources and pools: %v\n%s", err, r)
	}
	keysOf("summary", raw["summary"], "create", "update", "move", "activate", "block", "delete", "unchanged", "skipped")
	keysOf("guard", raw["guard"], "tripped", "deprovisions", "limit")
	keysOf("sources[0]", lists.Sources[0], "name", "type", "identities", "skipped", "full")
	keysOf("pools[0]", lists.Pools[0], "name", "limit", "unlimited", "reserve", "used_before", "used_after", "remaining_after", "queued_after")
	for i, c := range lists.Changes {
		keysOf(fmt.Sprintf("changes[%d]", i), c, "action", "username", "source", "external_id", "area", "state", "fields")
	}

	rep := decodeReport(t, r)
	if rep.RunID == "" || rep.Mode != "plan" {
		t.Errorf("run_id %q mode %q, want an id and plan", rep.RunID, rep.Mode)
	}
	started, err1 := time.Parse(time.RFC3339, rep.StartedAt)
	finished, err2 := time.Parse(time.RFC3339, rep.FinishedAt)
	if err1 != nil || err2 != nil || finished.Before(started) {
		t.Errorf("started_at %q, finished_at %q: want RFC 3339 times, in order", rep.StartedAt, rep.FinishedAt)
	}
	if len(rep.Sources) != 1 || rep.Sources[0].Name != "hr" || rep.Sources[0].Type != "csv" || rep.Sources[0].Identities != 5 ||
		rep.Sources[0].Skipped != 0 || !rep.Sources[0].Full {
		t.Errorf("sources: %+v, want hr csv 5 identities, full", rep.Sources)
	}
	if rep.Summary["create"] != 5 || len(rep.Changes) != 5 {
		t.Errorf("summary %v, %d changes; want 5 creates", rep.Summary, len(rep.Changes))
	}
	primary := rep.pool(t, "primary")
	if primary.Limit != 2 || primary.Unlimited || primary.UsedBefore != 0 || primary.UsedAfter != 2 || primary.RemainingAfter != 0 || primary.QueuedAfter != 2 {
		t.Errorf("pool primary: %+v, want limit 2, used 0 -> 2, remaining 0, 2 queued", primary)
	}
	if ex := rep.pool(t, "extranet"); ex.Limit != 10 || ex.UsedAfter != 1 || ex.RemainingAfter != 9 {
		t.Errorf("pool extranet: %+v, want limit 10, 1 used (dave), 9 remaining", ex)
	}
	if rep.Guard.Tripped {
		t.Errorf("guard tripped on a first run: %+v", rep.Guard)
	}
	for _, c := range rep.Changes {
		if c.Action != "create" || c.Source != "hr" || c.ExternalID == "" || c.Area == "" {
			t.Errorf("change %+v", c)
		}
		var email map[string]any
		if err := json.Unmarshal(c.Fields["email"], &email); err != nil || email["old"] != nil ||
			email["new"] != c.Username+"@example.com" || len(email) != 2 {
			t.Errorf("change %s: fields.email = %s, want {\"old\": null, \"new\": the address}", c.Username, c.Fields["email"])
		}
		if c.State == "blocked" && (c.Reason != "license" || c.QueuePosition == 0) {
			t.Errorf("change %s is blocked with reason %q queue position %d, want license with a position", c.Username, c.Reason, c.QueuePosition)
		}
	}
	if a, st, _, _ := rep.change(t, "dave"); a != "create" || st != "active" {
		t.Errorf("dave (a partner) is %s %s, want created active in the extranet pool", a, st)
	}

	people := []string{"alice", "bob", "carol", "dave", "erin"}
	for _, format := range []string{"text", "csv", "markdown"} {
		r := s.must(exitOK, "plan", "-c", s.config, "--format", format)
		for _, u := range people {
			if !strings.Contains(r.stdout, u) {
				t.Errorf("plan --format %s does not name %s:\n%s", format, u, r.stdout)
			}
		}
		if format == "csv" {
			recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
			if err != nil {
				t.Fatalf("plan --format csv is not csv: %v\n%s", err, r.stdout)
			}
			if len(recs) != 6 || !slices.Contains(recs[0], "action") || !slices.Contains(recs[0], "username") {
				t.Errorf("plan --format csv: want a header with action and username and 5 rows, got %q", recs)
			}
		}
	}
	if r := s.must(exitOK, "plan", "-c", s.config); !strings.Contains(r.stdout, "dry run") && !strings.Contains(r.stdout, "Plan") {
		t.Errorf("text report does not say it is a plan:\n%s", r.stdout)
	}

	// -o writes the report to a file, and nothing to stdout.
	out := filepath.Join(s.dir, "report.json")
	r = s.must(exitOK, "plan", "-c", s.config, "--format", "json", "-o", out)
	if strings.Contains(r.stdout, "run_id") {
		t.Errorf("plan -o FILE also printed the report:\n%s", r.stdout)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("plan -o %s: %v", out, err)
	}
	if fileRep := decodeReport(t, result{stdout: string(data)}); fileRep.Summary["create"] != 5 {
		t.Errorf("the report file says %v", fileRep.Summary)
	}
}

// TestLicenceQueue: a pool of 2 seats and 4 people; the last two wait in
// queue order, and take the seats that free up in that order.
func TestLicenceQueue(t *testing.T) {
	s := newSite(t, siteOptions{primaryLimit: "2"},
		row("E1", "alice"), row("E2", "bob"), row("E3", "carol"), row("E4", "dave"))
	rep := decodeReport(t, s.must(exitOK, "sync", "-c", s.config, "--format", "json"))
	want := map[string]string{"alice": "active", "bob": "active", "carol": "blocked license #1", "dave": "blocked license #2"}
	for u, w := range want {
		a, st, reason, q := rep.change(t, u)
		got := st
		if st == "blocked" {
			got = fmt.Sprintf("%s %s #%d", st, reason, q)
		}
		if a != "create" || got != w {
			t.Errorf("first sync: %s %s, want create %s", a, got, w)
		}
	}
	if p := rep.pool(t, "primary"); p.UsedAfter != 2 || p.QueuedAfter != 2 || p.RemainingAfter != 0 {
		t.Errorf("first sync: pool primary %+v, want 2 used, 2 queued", p)
	}

	// alice leaves: she is blocked, and carol (first in the queue) gets her seat.
	s.people(row("E2", "bob"), row("E3", "carol"), row("E4", "dave"))
	rep = decodeReport(t, s.must(exitOK, "sync", "-c", s.config, "--format", "json"))
	if a, st, reason, _ := rep.change(t, "alice"); a != "block" || st != "blocked" || reason != "left_source" {
		t.Errorf("alice left: %s %s %s, want block blocked left_source", a, st, reason)
	}
	if a, st, reason, _ := rep.change(t, "carol"); a != "activate" || st != "active" || reason != "seat_freed" {
		t.Errorf("carol, first in the queue: %s %s %s, want activate active seat_freed", a, st, reason)
	}
	if len(rep.Changes) != 2 {
		t.Errorf("second sync: %d changes, want 2: %+v", len(rep.Changes), rep.Changes)
	}
	got := s.profiles()
	for u, w := range map[string]string{"alice": "blocked left_source", "bob": "active", "carol": "active", "dave": "blocked license"} {
		if got[u].state() != w {
			t.Errorf("after the second sync %s is %s, want %s", u, got[u].state(), w)
		}
	}

	// bob leaves and zed, an executive, joins: priority goes before queue
	// time, so zed takes bob's seat and dave keeps waiting.
	s.people(row("E3", "carol"), row("E4", "dave"), row("E9", "zed", "teams=Staff|Executives"))
	rep = decodeReport(t, s.must(exitOK, "sync", "-c", s.config, "--format", "json"))
	if a, st, _, _ := rep.change(t, "zed"); a != "create" || st != "active" {
		t.Errorf("zed (priority 100): %s %s, want created active", a, st)
	}
	got = s.profiles()
	if got["dave"].state() != "blocked license" || got["bob"].state() != "blocked left_source" {
		t.Errorf("after the third sync dave is %s, bob %s; want dave still queued, bob left", got["dave"].state(), got["bob"].state())
	}
	s.must(exitOK, "plan", "--check", "-c", s.config)
}

// TestBadRowSkipped: a row the connector cannot read is reported with its
// line and skipped; the rest of the export is synced.
func TestBadRowSkipped(t *testing.T) {
	s := newSite(t, siteOptions{}, row("E1", "alice"), row("E2", "bob", "active=maybe"), row("E3", "carol"))
	r := s.must(exitOK, "sync", "-c", s.config, "--format", "json")
	rep := decodeReport(t, r)
	if len(rep.Skipped) != 1 {
		t.Fatalf("skipped: %+v, want bob's row", rep.Skipped)
	}
	sk := rep.Skipped[0]
	if sk.Source != "hr" || sk.ExternalID != "E2" || sk.Where != "line 3" || !strings.Contains(sk.Reason, "maybe") {
		t.Errorf("skipped %+v, want hr E2 at line 3 with a reason naming the value", sk)
	}
	if rep.Summary["skipped"] != 1 || rep.Sources[0].Skipped != 1 {
		t.Errorf("summary skipped %d, source skipped %d, want 1 and 1", rep.Summary["skipped"], rep.Sources[0].Skipped)
	}
	got := s.profiles()
	if got["alice"].state() != "active" || got["carol"].state() != "active" || got["bob"] != nil {
		t.Errorf("profiles after the sync: %v; want alice and carol active, no bob", got)
	}
	// The text report shows the line too (the file is unchanged: only a
	// full read plans it again).
	if r := s.must(exitOK, "plan", "--full", "-c", s.config); !strings.Contains(r.stdout, "line 3") {
		t.Errorf("the text report does not show the skipped row's line:\n%s", r.stdout)
	}
}

// TestMissingExport: a pull that fails stops the run before anything is
// written; it must never look like everybody left.
func TestMissingExport(t *testing.T) {
	s := newSite(t, siteOptions{}, fivePeople()...)
	s.must(exitOK, "sync", "-c", s.config)
	before := s.profiles()
	if err := os.Remove(filepath.Join(s.dir, "people.csv")); err != nil {
		t.Fatal(err)
	}
	r := s.must(exitFailed, "sync", "-c", s.config, "--allow-deprovision")
	if !strings.Contains(r.stderr, "people.csv") {
		t.Errorf("the error does not name the missing file:\n%s", r)
	}
	after := s.profiles()
	if d := diffProfiles(before, after); d != "" {
		t.Errorf("a failed pull changed profiles:\n%s", d)
	}
	s.must(exitFailed, "plan", "-c", s.config)
}

func diffProfiles(before, after map[string]profile) string {
	var b strings.Builder
	for u, p := range before {
		if fmt.Sprint(after[u]) != fmt.Sprint(p) {
			fmt.Fprintf(&b, "%s: %v -> %v\n", u, p, after[u])
		}
	}
	for u, p := range after {
		if before[u] == nil {
			fmt.Fprintf(&b, "%s: new %v\n", u, p)
		}
	}
	return b.String()
}

// TestGuard: most people vanishing from the export is refused (exit 3,
// nothing written) until an admin says --allow-deprovision.
func TestGuard(t *testing.T) {
	var rows []string
	for i := 1; i <= 10; i++ {
		rows = append(rows, row(fmt.Sprintf("E%02d", i), fmt.Sprintf("user%02d", i)))
	}
	s := newSite(t, siteOptions{primaryLimit: "20"}, rows...)
	s.must(exitOK, "sync", "-c", s.config)
	before := s.profiles()

	s.people(rows[:2]...)
	r := s.must(exitGuard, "sync", "-c", s.config)
	if !strings.Contains(r.stdout+r.stderr, "--allow-deprovision") {
		t.Errorf("the refusal does not say how to go on:\n%s", r)
	}
	if d := diffProfiles(before, s.profiles()); d != "" {
		t.Fatalf("a refused sync changed profiles:\n%s", d)
	}
	rep := decodeReport(t, s.must(exitGuard, "sync", "-c", s.config, "--format", "json"))
	if !rep.Guard.Tripped || rep.Guard.Deprovisions != 8 || rep.Guard.Limit != 1 {
		t.Errorf("guard: %+v, want tripped, 8 deprovisions, limit 1 (10%% of 10)", rep.Guard)
	}

	rep = decodeReport(t, s.must(exitOK, "sync", "-c", s.config, "--allow-deprovision", "--format", "json"))
	if rep.Summary["block"] != 8 {
		t.Errorf("sync --allow-deprovision: summary %v, want 8 blocks", rep.Summary)
	}
	got := s.profiles()
	for i := 3; i <= 10; i++ {
		if u := fmt.Sprintf("user%02d", i); got[u].state() != "blocked left_source" {
			t.Errorf("%s is %s, want blocked left_source", u, got[u].state())
		}
	}
	// The override is for one run; the next one needs nothing.
	s.must(exitOK, "plan", "--check", "-c", s.config)

	// An empty export while the source owns active profiles is refused
	// whatever the threshold.
	s.people()
	s.must(exitGuard, "sync", "-c", s.config)
	if got := s.profiles(); got["user01"].state() != "active" {
		t.Errorf("an empty export blocked user01: %s", got["user01"].state())
	}
}

// TestConcurrentSyncs: syncs started at the same time on one store (two
// timers, two replicas) do not interleave: each finishes or is turned away
// by the run lock, and the store ends up as one sync would leave it.
func TestConcurrentSyncs(t *testing.T) {
	var rows []string
	for i := 1; i <= 40; i++ {
		rows = append(rows, row(fmt.Sprintf("E%02d", i), fmt.Sprintf("user%02d", i)))
	}
	s := newSite(t, siteOptions{primaryLimit: "5"}, rows...)
	results := make([]result, 4)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.run("sync", "-c", s.config, "--format", "json")
		}()
	}
	wg.Wait()
	created := 0
	for _, r := range results {
		switch r.code {
		case exitOK:
			created += decodeReport(t, r).Summary["create"]
		case exitFailed:
			if !strings.Contains(r.stderr, "lock") {
				t.Errorf("a concurrent sync failed for another reason than the run lock:\n%s", r)
			}
		default:
			t.Errorf("a concurrent sync: %s", r)
		}
	}
	if created != 40 {
		t.Errorf("the concurrent syncs created %d profiles between them, want 40", created)
	}
	got := s.profiles()
	active := 0
	for _, p := range got {
		if p.state() == "active" {
			active++
		}
	}
	if len(got) != 40 || active != 5 {
		t.Errorf("after concurrent syncs: %d profiles, %d active; want 40 and 5", len(got), active)
	}
	s.must(exitOK, "plan", "--check", "-c", s.config)
}

// TestValidate: every problem at once, each with its line.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("people.csv", csvHeader+"\n"+row("E1", "alice")+"\n")
	bad := write("bad.yaml", `version: 1
store:
  path: seatsync.db
licensing:
  pools:
    - name: primary
      limit: lots
      areas: [primary]
  on_overage: sometimes
bogus_key: 1
sources:
  - name: hr
    type: csv
    path: people.csv
    delimiter: ";;"
`)
	r := runIn(t, dir, "validate", "-c", bad)
	if r.code != exitUsage {
		t.Fatalf("validate of a bad file: want exit 2, got %s", r)
	}
	for _, want := range []string{
		"line 7: licensing.pools[0].limit",
		"line 9: licensing.on_overage",
		"line 10: bogus_key",
		"line 15: sources[0].delimiter",
	} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Errorf("validate does not report %q:\n%s", want, r)
		}
	}
	if strings.Contains(r.stdout, "ok\n") {
		t.Errorf("validate of a bad file says ok:\n%s", r)
	}

	// A postgres store validates without a connection; --connect to a
	// server that is not there fails with exit 1, and the DSN's password
	// is printed by neither.
	pgConfig := func(dsn string) string {
		return `version: 1
store:
  driver: postgres
  dsn: ` + dsn + `
licensing:
  pools:
    - name: primary
      limit: 5
      areas: [primary]
sources:
  - name: hr
    type: csv
    path: people.csv
`
	}
	pg := write("pg.yaml", pgConfig("postgres://seatsync:not-a-real-password@db.example/seatsync?sslmode=verify-full"))
	r = runIn(t, dir, "validate", "-c", pg)
	if r.code != 0 || !strings.Contains(r.stdout, "ok") {
		t.Errorf("validate of a postgres store: want exit 0 and ok, got %s", r)
	}
	if strings.Contains(r.stdout+r.stderr, "not-a-real-password") {
		t.Errorf("validate printed a secret:\n%s", r)
	}
	pgDown := write("pg-down.yaml", pgConfig("postgres://seatsync:not-a-real-password@127.0.0.1:1/seatsync?sslmode=disable&connect_timeout=5"))
	r = runIn(t, dir, "validate", "--connect", "-c", pgDown)
	if r.code != 1 || !strings.Contains(r.stderr, "store") {
		t.Errorf("validate --connect of an unreachable postgres store: want exit 1 and a store error, got %s", r)
	}
	if strings.Contains(r.stdout+r.stderr, "not-a-real-password") {
		t.Errorf("validate --connect printed a secret:\n%s", r)
	}

	// An ldap source validates; --connect to a server that is not there
	// fails with exit 1 and a clear error, without the password.
	ldap := write("ldap.yaml", `version: 1
store:
  path: seatsync.db
licensing:
  pools:
    - name: primary
      limit: 5
      areas: [primary]
sources:
  - name: corp
    type: ldap
    url: ldaps://127.0.0.1:1
    bind_dn: "CN=svc-seatsync,OU=Service,DC=corp,DC=example"
    bind_password: not-a-real-password
    base_dn: "OU=Staff,DC=corp,DC=example"
`)
	if r = runIn(t, dir, "validate", "-c", ldap); r.code != exitOK {
		t.Errorf("validate of an ldap source: want exit 0, got %s", r)
	}
	r = runIn(t, dir, "validate", "--connect", "-c", ldap)
	if r.code != exitFailed || !strings.Contains(r.stderr, "source corp") {
		t.Errorf("validate --connect to no server: want exit 1 naming the source, got %s", r)
	}
	if strings.Contains(r.stdout+r.stderr, "not-a-real-password") {
		t.Errorf("validate --connect printed a secret:\n%s", r)
	}

	s := newSite(t, siteOptions{}, row("E1", "alice"))
	r = s.must(exitOK, "validate", "-c", s.config)
	if strings.TrimSpace(r.stdout) != "ok" {
		t.Errorf("validate of a good file: want \"ok\", got %s", r)
	}
}

// TestSeats: the seats command shows what the sync did.
func TestSeats(t *testing.T) {
	s := newSite(t, siteOptions{primaryLimit: "3", primaryReserve: 1},
		row("E0", "admin"), row("E1", "alice"), row("E2", "bob"), row("E3", "carol"), row("E4", "dave"),
		row("E5", "erin", "active=no"), row("E6", "pat", "teams=Partners"))
	rep := decodeReport(t, s.must(exitOK, "sync", "-c", s.config, "--format", "json"))
	r := s.must(exitOK, "seats", "-c", s.config, "--format", "json")
	var seats struct {
		Pools []struct {
			Name      string `json:"name"`
			Limit     int    `json:"limit"`
			Reserve   int    `json:"reserve"`
			Active    int    `json:"active"`
			Remaining int    `json:"remaining"`
			Queued    int    `json:"queued"`
			Blocked   int    `json:"blocked"`
			Exempt    int    `json:"exempt"`
		} `json:"pools"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &seats); err != nil {
		t.Fatalf("seats --format json: %v\n%s", err, r)
	}
	type seatRow struct{ limit, reserve, active, remaining, queued, blocked, exempt int }
	want := map[string]seatRow{
		// 3 seats, 1 reserved: alice and bob get the 2; carol and dave
		// wait; erin is disabled; admin is exempt.
		"primary":  {3, 1, 2, 0, 2, 3, 1},
		"extranet": {10, 0, 1, 9, 0, 0, 0},
	}
	if len(seats.Pools) != 2 {
		t.Fatalf("seats: %+v", seats)
	}
	for _, p := range seats.Pools {
		got := seatRow{p.Limit, p.Reserve, p.Active, p.Remaining, p.Queued, p.Blocked, p.Exempt}
		if got != want[p.Name] {
			t.Errorf("seats of %s: %+v, want %+v", p.Name, got, want[p.Name])
		}
		rp := rep.pool(t, p.Name)
		if rp.UsedAfter != p.Active || rp.RemainingAfter != p.Remaining || rp.QueuedAfter != p.Queued || rp.Limit != p.Limit {
			t.Errorf("seats of %s %+v do not match the sync's report %+v", p.Name, p, rp)
		}
	}
	r = s.must(exitOK, "seats", "-c", s.config)
	if !strings.Contains(r.stdout, "primary") || !strings.Contains(r.stdout, "extranet") {
		t.Errorf("seats text output:\n%s", r.stdout)
	}
	s.must(exitUsage, "seats", "-c", s.config, "--format", "csv")
}

// TestProfiles: list as csv for a spreadsheet, and an admin's block,
// unblock (which takes a seat) and delete.
func TestProfiles(t *testing.T) {
	s := newSite(t, siteOptions{primaryLimit: "2"}, row("E1", "alice"), row("E2", "bob"), row("E3", "carol"))
	s.must(exitOK, "sync", "-c", s.config)

	r := s.must(exitOK, "profiles", "list", "-c", s.config, "--format", "csv", "--fields", "username,given_name,family_name,state", "--delimiter", ";")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	wantLines := []string{"username;given_name;family_name;state", "alice;Alice;Test;active", "bob;Bob;Test;active", "carol;Carol;Test;blocked"}
	if !slices.Equal(lines, wantLines) {
		t.Errorf("profiles list --format csv --delimiter ';':\n%s\nwant:\n%s", r.stdout, strings.Join(wantLines, "\n"))
	}
	r = s.must(exitOK, "profiles", "list", "-c", s.config)
	for _, u := range []string{"alice", "bob", "carol"} {
		if !strings.Contains(r.stdout, u) {
			t.Errorf("profiles list (text) does not show %s:\n%s", u, r.stdout)
		}
	}
	r = s.must(exitOK, "profiles", "list", "-c", s.config, "--state", "blocked", "--format", "json", "--fields", "username,block_reason")
	if !strings.Contains(r.stdout, `"carol"`) || strings.Contains(r.stdout, "alice") {
		t.Errorf("profiles list --state blocked:\n%s", r.stdout)
	}
	// json keys come in the order of --fields, not sorted.
	r = s.must(exitOK, "profiles", "list", "-c", s.config, "--format", "json", "--fields", "email,username")
	if e, u := strings.Index(r.stdout, `"email"`), strings.Index(r.stdout, `"username"`); e < 0 || u < 0 || e > u {
		t.Errorf("profiles list --format json --fields email,username: keys not in field order:\n%s", r.stdout)
	}
	var rows []map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 3 || rows[0]["email"] != "alice@example.com" || rows[0]["username"] != "alice" {
		t.Errorf("profiles list --format json: %v\n%s", err, r.stdout)
	}
	// The documentation spells it licence; the reason is license, and
	// either finds the people waiting for a seat.
	for _, reason := range []string{"license", "licence"} {
		r = s.must(exitOK, "profiles", "list", "-c", s.config, "--reason", reason, "--format", "csv", "--fields", "username,block_reason")
		if want := "username,block_reason\ncarol,license\n"; r.stdout != want {
			t.Errorf("profiles list --reason %s: %q, want %q", reason, r.stdout, want)
		}
	}
	if r = s.must(exitUsage, "profiles", "list", "-c", s.config, "--reason", "bored"); !strings.Contains(r.stderr, "license (or licence)") {
		t.Errorf("profiles list --reason bored does not name the reasons:\n%s", r)
	}

	// Block alice: her seat is free, and the next sync gives it to carol.
	s.must(exitOK, "profiles", "block", "-c", s.config, "alice")
	if got := s.profiles()["alice"]; got.state() != "blocked admin" {
		t.Fatalf("alice after block: %s, want blocked admin", got.state())
	}
	rep := decodeReport(t, s.must(exitOK, "sync", "-c", s.config, "--format", "json"))
	if a, st, reason, _ := rep.change(t, "carol"); a != "activate" || st != "active" || reason != "seat_freed" {
		t.Errorf("carol after alice was blocked: %s %s %s, want activate active seat_freed", a, st, reason)
	}
	if got := s.profiles()["alice"]; got.state() != "blocked admin" {
		t.Errorf("a sync cleared alice's admin block: %s", got.state())
	}

	// The pool is full now: unblock fails and says how to queue.
	r = s.must(exitFailed, "profiles", "unblock", "-c", s.config, "alice")
	if !strings.Contains(r.stderr, "--queue") {
		t.Errorf("unblock into a full pool does not mention --queue:\n%s", r)
	}
	if got := s.profiles()["alice"]; got.state() != "blocked admin" {
		t.Errorf("a failed unblock changed alice: %s", got.state())
	}
	s.must(exitOK, "profiles", "unblock", "-c", s.config, "--queue", "alice")
	got := s.profiles()["alice"]
	if got.state() != "blocked license" || got["queued_at"] == "" {
		t.Errorf("alice after unblock --queue: %s queued at %v, want blocked license with a queue time", got.state(), got["queued_at"])
	}
	s.must(exitOK, "plan", "--check", "-c", s.config)

	// bob leaves: alice, first in the queue, gets his seat.
	s.people(row("E1", "alice"), row("E3", "carol"))
	s.must(exitOK, "sync", "-c", s.config)
	if got := s.profiles()["alice"]; got.state() != "active" {
		t.Errorf("alice, queued by an admin, after a seat freed: %s, want active", got.state())
	}

	s.must(exitOK, "profiles", "delete", "-c", s.config, "bob")
	if got := s.profiles(); got["bob"] != nil || len(got) != 2 {
		t.Errorf("after delete bob: %v", got)
	}
	s.must(exitFailed, "profiles", "delete", "-c", s.config, "nobody")

	s.must(exitUsage, "profiles", "list", "-c", s.config, "--fields", "username,shoe_size")
	s.must(exitUsage, "profiles", "list", "-c", s.config, "--format", "xml")
	s.must(exitUsage, "profiles", "block", "-c", s.config)
}

// TestBadUsage: a bad command line exits 2 and says what is wrong.
func TestBadUsage(t *testing.T) {
	s := newSite(t, siteOptions{}, row("E1", "alice"))
	for _, args := range [][]string{
		{"plan", "-c", s.config, "--no-such-flag"},
		{"no-such-command"},
		{"plan", "-c", s.config, "--format", "nonsense"},
		{"sync", "-c", s.config, "--format", "nonsense"},
		{"sync"}, // no -c
		{"version", "extra"},
	} {
		r := s.run(args...)
		if r.code != exitUsage {
			t.Errorf("seatsync %s: want exit 2, got %s", strings.Join(args, " "), r)
		}
		if r.stderr == "" {
			t.Errorf("seatsync %s: no message on stderr", strings.Join(args, " "))
		}
	}
	if got := s.profiles(); len(got) != 0 {
		t.Errorf("a bad command line wrote profiles: %v", got)
	}
}

func TestVersion(t *testing.T) {
	r := runIn(t, t.TempDir(), "version")
	if r.code != exitOK || !strings.Contains(r.stdout, testVersion) {
		t.Errorf("seatsync version: want exit 0 and %q, got %s", testVersion, r)
	}
}
