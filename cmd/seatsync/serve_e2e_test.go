package main_test

// End-to-end tests of `seatsync serve`: the real binary (built by
// TestMain in e2e_test.go) on a free loopback port, driven over HTTP and
// with signals the way systemd or Kubernetes drive it, and its status page
// in a real headless Chromium.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/store/sqlite"
)

const serveToken = "e2e-serve-token"

// waitFor is how long a test waits for something a user would see happen
// (a run, a reload). It is a guard against hanging, not a timing assert.
const waitFor = 60 * time.Second

type serveOptions struct {
	schedule        string // default "@every 1s"
	runOnStart      string // default "always"
	shutdownTimeout string // default "30s"
	noToken         bool
	csvPath         string // the source's path, default people.csv
	leaderCheck     string // server.leader_check, default none (5s)
}

// syncBuffer is a bytes.Buffer safe for the process's stderr copier and
// the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// server is one running `seatsync serve`.
type server struct {
	t      *testing.T
	s      *site
	cmd    *exec.Cmd
	base   string
	log    *syncBuffer
	done   chan struct{}
	exit   int
	client *http.Client
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// serveConfig turns the site's configuration into a serve configuration.
func (s *site) serveConfig(opt serveOptions, port int) {
	s.t.Helper()
	if opt.schedule == "" {
		opt.schedule = "@every 1s"
	}
	if opt.runOnStart == "" {
		opt.runOnStart = "always"
	}
	if opt.shutdownTimeout == "" {
		opt.shutdownTimeout = "30s"
	}
	b, err := os.ReadFile(s.config)
	if err != nil {
		s.t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "level: warn", "level: info", 1)
	if i := strings.Index(cfg, "\nschedule: "); i >= 0 {
		cfg = cfg[:i+1] // served before: start again from the site's own configuration
	}
	if opt.csvPath != "" {
		cfg = strings.Replace(cfg, "path: people.csv", "path: "+opt.csvPath, 1)
	}
	token := "\n  token: " + serveToken
	if opt.noToken {
		token = ""
	}
	cfg += fmt.Sprintf("schedule: %q\nserver:\n  listen: 127.0.0.1:%d%s\n  run_on_start: %s\n  shutdown_timeout: %s\n",
		opt.schedule, port, token, opt.runOnStart, opt.shutdownTimeout)
	if opt.leaderCheck != "" {
		cfg += "  leader_check: " + opt.leaderCheck + "\n"
	}
	s.write("seatsync.yaml", cfg)
}

// serve starts `seatsync serve` on the site and waits until it answers.
func (s *site) serve(opt serveOptions) *server {
	t := s.t
	t.Helper()
	port := freePort(t)
	s.serveConfig(opt, port)
	p := &server{t: t, s: s, base: fmt.Sprintf("http://127.0.0.1:%d", port), log: &syncBuffer{}, done: make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second}}
	p.cmd = exec.Command(binary, "serve", "-c", s.config)
	p.cmd.Dir = s.dir
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		p.exit = 0
		if ee, ok := err.(*exec.ExitError); ok {
			p.exit = ee.ExitCode()
		} else if err != nil {
			p.exit = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill() // by its PID
			<-p.done
		}
		if t.Failed() {
			t.Logf("seatsync serve log:\n%s", p.log)
		}
	})
	p.eventually("the server answers /healthz", func() (bool, string) {
		select {
		case <-p.done:
			t.Fatalf("seatsync serve exited with %d:\n%s", p.exit, p.log)
		default:
		}
		code, body := p.request("GET", "/healthz", "")
		return code == 200, body
	})
	return p
}

// eventually polls cond until it holds, failing the test after waitFor.
func (p *server) eventually(what string, cond func() (bool, string)) {
	p.t.Helper()
	deadline := time.Now().Add(waitFor)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("waited %s for %s; last seen: %s", waitFor, what, last)
}

// request sends a request; auth is the whole Authorization header ("" for
// none, "token" for the bearer token).
func (p *server) request(method, path, auth string) (int, string) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.base+path, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	switch auth {
	case "":
	case "token":
		req.Header.Set("Authorization", "Bearer "+serveToken)
	default:
		req.Header.Set("Authorization", auth)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (p *server) getJSON(path string, v any) {
	p.t.Helper()
	code, body := p.request("GET", path, "token")
	if code != 200 {
		p.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		p.t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

func (p *server) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *server) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.exit
	case <-time.After(waitFor):
		p.t.Fatalf("seatsync serve did not exit within %s", waitFor)
		return -1
	}
}

type runRecord struct {
	ID         string    `json:"run_id"`
	Mode       string    `json:"mode"`
	Result     string    `json:"result"`
	Error      string    `json:"error"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
}

func (p *server) runs() []runRecord {
	p.t.Helper()
	var out struct{ Runs []runRecord }
	p.getJSON("/api/v1/runs?limit=1000", &out)
	return out.Runs
}

func (p *server) okRuns() int {
	n := 0
	for _, r := range p.runs() {
		if r.Result == "ok" {
			n++
		}
	}
	return n
}

// metrics returns the samples of /metrics whose name starts with seatsync_,
// keyed by the sample as written before its value.
func (p *server) metrics() map[string]float64 {
	p.t.Helper()
	code, body := p.request("GET", "/metrics", "")
	if code != 200 {
		p.t.Fatalf("GET /metrics: %d %s", code, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "seatsync_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			p.t.Fatalf("bad metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// noOverlap fails when two of the runs' [started, finished] intervals
// overlap.
func noOverlap(t *testing.T, runs []runRecord) {
	t.Helper()
	slices.SortFunc(runs, func(a, b runRecord) int { return a.StartedAt.Compare(b.StartedAt) })
	for i := 1; i < len(runs); i++ {
		if runs[i].StartedAt.Before(runs[i-1].FinishedAt) {
			t.Errorf("runs overlap: %s %s–%s and %s %s–%s", runs[i-1].ID, runs[i-1].StartedAt.Format(time.RFC3339Nano),
				runs[i-1].FinishedAt.Format(time.RFC3339Nano), runs[i].ID, runs[i].StartedAt.Format(time.RFC3339Nano),
				runs[i].FinishedAt.Format(time.RFC3339Nano))
		}
	}
}

// fifoSite is a site whose export is a named pipe: a pull waits until the
// test writes the export into it, so a run stays in flight as long as the
// test wants. feed writes the export once, waiting for a pull to open the
// pipe; feedIfWaiting writes it only if a pull is waiting, and returns
// false when none is (or the process is gone).
func fifoSite(t *testing.T) (s *site, feed func() error, feedIfWaiting func(done <-chan struct{}) bool) {
	s = newSite(t, siteOptions{}, fivePeople()...)
	fifo := filepath.Join(s.dir, "people.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	export, err := os.ReadFile(filepath.Join(s.dir, "people.csv"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(f *os.File) error {
		_, err := f.Write(export) // far smaller than a pipe's buffer
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	feed = func() error {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0) // waits for the pull to open it
		if err != nil {
			return err
		}
		return write(f)
	}
	feedIfWaiting = func(done <-chan struct{}) bool {
		for {
			f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err == nil {
				return write(f) == nil
			}
			select {
			case <-done:
				return false
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return s, feed, feedIfWaiting
}

// TestServeSchedule: scheduled runs happen, and never overlap even while a
// run is held up far longer than the schedule's period (ticks that come
// meanwhile are skipped).
func TestServeSchedule(t *testing.T) {
	s, feed, feedIfWaiting := fifoSite(t)
	p := s.serve(serveOptions{csvPath: "people.fifo", runOnStart: "never"})
	const runs = 3
	for i := range runs {
		// Hold the pull past a couple of ticks before letting it read.
		time.Sleep(2500 * time.Millisecond)
		if err := feed(); err != nil {
			t.Fatal(err)
		}
		p.eventually(fmt.Sprintf("run %d to finish", i+1), func() (bool, string) {
			n := p.okRuns()
			return n == i+1, fmt.Sprintf("%d ok runs", n)
		})
	}
	got := p.runs()
	noOverlap(t, got)
	if len(got) != runs {
		t.Errorf("%d runs recorded for %d pulls, want one each: %+v", len(got), runs, got)
	}
	if !strings.Contains(p.log.String(), "tick skipped") {
		t.Error("no tick was logged as skipped while a run was held up")
	}
	// The next tick's run waits for its export: SIGTERM lets it finish.
	p.signal(syscall.SIGTERM)
	go feedIfWaiting(p.done)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	noOverlap(t, p.runsAfterExit())
}

// TestServeScheduleBusy: with a real export and a 1s schedule, the
// scheduled runs of a large export never overlap.
func TestServeScheduleBusy(t *testing.T) {
	rows := make([]string, 0, 20000)
	for i := range 20000 {
		rows = append(rows, row(fmt.Sprintf("E%05d", i), fmt.Sprintf("user%05d", i)))
	}
	s := newSite(t, siteOptions{primaryLimit: "100"}, rows...)
	p := s.serve(serveOptions{})
	p.eventually("4 scheduled runs", func() (bool, string) {
		n := p.okRuns()
		return n >= 4, fmt.Sprintf("%d ok runs", n)
	})
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	noOverlap(t, p.runsAfterExit())
}

// runsAfterExit reads the run records from the store once serve is gone.
func (p *server) runsAfterExit() []runRecord {
	p.t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(p.s.dir, "seatsync.db"))
	if err != nil {
		p.t.Fatal(err)
	}
	defer st.Close()
	runs, err := st.Runs(context.Background(), 1000)
	if err != nil {
		p.t.Fatal(err)
	}
	out := make([]runRecord, len(runs))
	for i, r := range runs {
		out[i] = runRecord{ID: r.ID, Mode: r.Mode, Result: r.Result, Error: r.Error, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt}
	}
	return out
}

// TestServeSyncAPI: POST sync answers 202 with the run's ID; a second one
// while it runs answers 409; the run finishes in the background.
func TestServeSyncAPI(t *testing.T) {
	s, feed, _ := fifoSite(t)
	p := s.serve(serveOptions{csvPath: "people.fifo", runOnStart: "never", schedule: "@every 1h"})
	code, body := p.request("POST", "/api/v1/sync", "token")
	if code != http.StatusAccepted {
		t.Fatalf("POST sync: %d %s", code, body)
	}
	var started struct {
		RunID string `json:"run_id"`
	}
	if err := json.Unmarshal([]byte(body), &started); err != nil || started.RunID == "" {
		t.Fatalf("POST sync answered %s", body)
	}
	// The run waits for its export: a second sync is refused meanwhile.
	code, body = p.request("POST", "/api/v1/sync", "token")
	var refused struct{ Error, RunID string }
	_ = json.Unmarshal([]byte(body), &refused)
	if code != http.StatusConflict || !strings.Contains(refused.Error, "already running") {
		t.Fatalf("second POST sync: %d %s, want 409 with a JSON error", code, body)
	}
	var st struct {
		Running   string
		Schedules []struct {
			Kind, Schedule string
			Sources        []string
			NextRun        time.Time `json:"next_run"`
		}
	}
	p.getJSON("/api/v1/status", &st)
	if st.Running != started.RunID {
		t.Errorf("status running %q, want %q", st.Running, started.RunID)
	}
	if len(st.Schedules) != 1 || st.Schedules[0].Kind != "sync" || st.Schedules[0].Schedule != "@every 1h" ||
		time.Until(st.Schedules[0].NextRun) <= 0 || time.Until(st.Schedules[0].NextRun) > time.Hour {
		t.Errorf("status schedules %+v, want the hourly sync within the hour", st.Schedules)
	}
	if err := feed(); err != nil {
		t.Fatal(err)
	}
	p.eventually("the API's run to finish", func() (bool, string) {
		code, body := p.request("GET", "/api/v1/runs/"+started.RunID, "token")
		return code == 200 && strings.Contains(body, `"result":"ok"`), fmt.Sprintf("%d %.200s", code, body)
	})
	rep := decodeReport(t, result{stdout: func() string { _, b := p.request("GET", "/api/v1/runs/"+started.RunID, "token"); return b }()})
	if rep.Summary["create"] != 5 || rep.Mode != "sync" {
		t.Errorf("the run's report: %+v", rep.Summary)
	}
	// A poller pages through the profiles, keys in the order it asked for.
	var seen []string
	for path, pages := "/api/v1/profiles?limit=2&fields=email,username", 0; path != ""; pages++ {
		if pages > 3 {
			t.Fatalf("paging does not end after %v", seen)
		}
		req, _ := http.NewRequest("GET", p.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+serveToken)
		resp, err := p.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var rows []map[string]string
		if err := json.Unmarshal(b, &rows); resp.StatusCode != 200 || err != nil || len(rows) == 0 || len(rows) > 2 {
			t.Fatalf("GET %s: %d %v %s", path, resp.StatusCode, err, b)
		}
		if e, u := strings.Index(string(b), `"email"`), strings.Index(string(b), `"username"`); e > u {
			t.Errorf("GET %s: keys not in the order of fields: %s", path, b)
		}
		for _, r := range rows {
			seen = append(seen, r["username"])
		}
		path = ""
		if c := resp.Header.Get("X-Next-Cursor"); c != "" {
			path = "/api/v1/profiles?limit=2&fields=email,username&cursor=" + c
		}
	}
	if len(seen) != 5 || !slices.IsSorted(seen) {
		t.Errorf("paged profiles %v, want the 5 in username order", seen)
	}
	if code, body := p.request("GET", "/api/v1/profiles?pools=extranet", "token"); code != 400 || !strings.Contains(body, `unknown parameter \"pools\"`) {
		t.Errorf("GET profiles?pools=: %d %s, want 400 naming the parameter", code, body)
	}
	// A plan through the API pulls again: feed it while it waits.
	fed := make(chan error, 1)
	go func() { fed <- feed() }()
	code, body = p.request("POST", "/api/v1/plan", "token")
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	if code != 200 || decodeReport(t, result{stdout: body}).Mode != "plan" {
		t.Errorf("POST plan: %d %.300s", code, body)
	}
}

// TestServeAuth: the API and the status page refuse a missing or wrong
// token, and take the right one.
func TestServeAuth(t *testing.T) {
	s := newSite(t, siteOptions{}, fivePeople()...)
	p := s.serve(serveOptions{schedule: "@every 1h"})
	basic := func(pw string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+pw))
	}
	for _, tc := range []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/api/v1/status", "", 401},
		{"GET", "/api/v1/status", "Bearer wrong", 401},
		{"GET", "/api/v1/status", "token", 200},
		{"GET", "/", "", 401},
		{"GET", "/", basic("wrong"), 401},
		{"GET", "/", basic(serveToken), 200},
		{"POST", "/api/v1/sync", "", 401},
		{"POST", "/api/v1/sync", "Bearer " + serveToken + "x", 401},
		{"POST", "/api/v1/profiles/alice/block", basic(serveToken), 401},
		{"GET", "/api/v1/nothing", "token", 404},
	} {
		code, body := p.request(tc.method, tc.path, tc.auth)
		if code != tc.want {
			t.Errorf("%s %s with %q: %d, want %d: %s", tc.method, tc.path, tc.auth, code, tc.want, body)
		}
		if code >= 400 && !strings.HasPrefix(body, `{"error":`) {
			t.Errorf("%s %s: the error is not JSON: %s", tc.method, tc.path, body)
		}
	}
}

// TestServeNoTokenLoopbackOnly: without a token serve refuses to listen
// anywhere but on loopback.
func TestServeNoTokenLoopbackOnly(t *testing.T) {
	s := newSite(t, siteOptions{}, fivePeople()...)
	s.serveConfig(serveOptions{noToken: true}, freePort(t))
	b, _ := os.ReadFile(s.config)
	s.write("seatsync.yaml", strings.Replace(string(b), "listen: 127.0.0.1:", "listen: 0.0.0.0:", 1))
	r := s.run("serve", "-c", s.config)
	if r.code != exitUsage || !strings.Contains(r.stdout+r.stderr, "server.token") {
		t.Fatalf("serve on 0.0.0.0 without a token: %s", r)
	}
}

// TestServeReload: SIGHUP with a good configuration applies it (a new pool
// limit shows in /metrics); with a bad one the old stays and the process
// lives on.
func TestServeReload(t *testing.T) {
	s := newSite(t, siteOptions{}, fivePeople()...)
	p := s.serve(serveOptions{schedule: "@every 1h"})
	limit := `seatsync_pool_seats_limit{pool="primary"}`
	period := `seatsync_schedule_period_seconds{source="hr"}`
	if got := p.metrics()[limit]; got != 3 {
		t.Fatalf("%s = %v, want 3", limit, got)
	}
	if got := p.metrics()[period]; got != 3600 {
		t.Fatalf("%s = %v, want 3600 (@every 1h)", period, got)
	}
	good, _ := os.ReadFile(s.config)
	reloaded := strings.Replace(string(good), "limit: 3", "limit: 7", 1)
	reloaded = strings.Replace(reloaded, `schedule: "@every 1h"`, `schedule: "@every 2h"`, 1)
	s.write("seatsync.yaml", reloaded)
	p.signal(syscall.SIGHUP)
	p.eventually("the new limit and period in /metrics", func() (bool, string) {
		m := p.metrics()
		return m[limit] == 7 && m[period] == 7200, fmt.Sprint(m[limit], " ", m[period])
	})

	s.write("seatsync.yaml", strings.Replace(string(good), "limit: 3", "limit: lots", 1))
	p.signal(syscall.SIGHUP)
	p.eventually("the refused reload in the log", func() (bool, string) {
		return strings.Contains(p.log.String(), "reload refused"), ""
	})
	if !strings.Contains(p.log.String(), "licensing.pools[0].limit") {
		t.Error("the log does not name the problem's path")
	}
	if code, _ := p.request("GET", "/healthz", ""); code != 200 {
		t.Fatalf("after a bad reload /healthz answers %d", code)
	}
	if got := p.metrics()[limit]; got != 7 {
		t.Errorf("after a bad reload %s = %v, want 7 (the configuration in force)", limit, got)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
}

// TestServeShutdownDuringRun: SIGTERM while a large first sync runs, with a
// short shutdown_timeout, cancels it; the process exits 0, the store stays
// consistent, and the next sync finishes the job.
func TestServeShutdownDuringRun(t *testing.T) {
	rows := make([]string, 0, 30000)
	for i := range 30000 {
		rows = append(rows, row(fmt.Sprintf("E%05d", i), fmt.Sprintf("user%05d", i)))
	}
	s := newSite(t, siteOptions{primaryLimit: "1000"}, rows...)
	p := s.serve(serveOptions{schedule: "@every 1h", shutdownTimeout: "100ms"})
	p.eventually("the start-up sync to be running", func() (bool, string) {
		var st struct{ Running string }
		p.getJSON("/api/v1/status", &st)
		// On a very fast machine it may be over before we look: the
		// checks below still hold, they only test less.
		return st.Running != "" || p.okRuns() > 0, "idle"
	})
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d after SIGTERM during a run", code)
	}
	if strings.Contains(p.log.String(), "cancelling the sync in flight") {
		t.Log("the run was cancelled by the shutdown timeout")
	}
	before := s.profiles() // the store reads
	t.Logf("%d profiles after the interrupted sync", len(before))
	s.must(exitOK, "sync", "-c", s.config)
	s.must(exitOK, "plan", "--check", "-c", s.config)
	if got := s.profiles(); len(got) != 30000 {
		t.Errorf("%d profiles after the next sync, want 30000", len(got))
	}
}

// TestServeMetricsAgreeWithSeats: the pool gauges are the numbers `seatsync
// seats --format json` prints, also after an admin action through the API.
func TestServeMetricsAgreeWithSeats(t *testing.T) {
	s := newSite(t, siteOptions{primaryReserve: 1}, fivePeople()...)
	p := s.serve(serveOptions{schedule: "@every 1h"})
	p.eventually("the start-up sync to be over", func() (bool, string) {
		// The run is recorded before serve updates its gauges and clears
		// "running": wait for both.
		var st struct{ Running string }
		p.getJSON("/api/v1/status", &st)
		return p.okRuns() == 1 && st.Running == "", st.Running
	})
	compare := func(when string) {
		t.Helper()
		r := s.must(exitOK, "seats", "-c", s.config, "--format", "json")
		var seats struct {
			Pools []struct {
				Name                             string
				Limit, Active, Remaining, Queued int
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &seats); err != nil {
			t.Fatal(err)
		}
		m := p.metrics()
		for _, pool := range seats.Pools {
			for name, want := range map[string]int{"limit": pool.Limit, "used": pool.Active, "remaining": pool.Remaining, "queued": pool.Queued} {
				key := fmt.Sprintf("seatsync_pool_seats_%s{pool=%q}", name, pool.Name)
				if got, ok := m[key]; !ok || got != float64(want) {
					t.Errorf("%s: %s = %v, seats says %d", when, key, got, want)
				}
			}
		}
	}
	compare("after the first sync")
	if code, body := p.request("POST", "/api/v1/profiles/alice/block", "token"); code != 200 {
		t.Fatalf("block: %d %s", code, body)
	}
	compare("after an admin block")
	if got := p.metrics()[`seatsync_runs_total{result="ok"}`]; got != 1 {
		t.Errorf(`seatsync_runs_total{result="ok"} = %v, want 1`, got)
	}
	if got := p.metrics()[`seatsync_source_identities{source="hr"}`]; got != 5 {
		t.Errorf(`seatsync_source_identities{source="hr"} = %v, want 5`, got)
	}
}

// TestServeLockedByAnotherProcess: while another process holds the
// store's run lock, scheduled runs are skipped (not failed); once it is
// released the schedule goes on.
func TestServeLockedByAnotherProcess(t *testing.T) {
	s := newSite(t, siteOptions{}, fivePeople()...)
	st, err := sqlite.Open(context.Background(), filepath.Join(s.dir, "seatsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.AcquireLock(context.Background(), "e2e-other-process", time.Hour); err != nil {
		t.Fatal(err)
	}
	p := s.serve(serveOptions{})
	p.eventually("a skipped run", func() (bool, string) {
		return p.metrics()[`seatsync_runs_total{result="skipped"}`] >= 1, ""
	})
	if err := st.ReleaseLock(context.Background(), "e2e-other-process"); err != nil {
		t.Fatal(err)
	}
	p.eventually("a sync once the lock is free", func() (bool, string) { return p.okRuns() >= 1, "" })
	// Runs are one at a time, so every run before the ok one is final.
	skipped := 0
	for _, r := range p.runs() {
		switch r.Result {
		case "failed":
			t.Errorf("a run turned away by the lock is recorded as failed: %+v", r)
		case "skipped":
			skipped++
		}
	}
	if skipped == 0 {
		t.Error("no run is recorded as skipped")
	}
	if strings.Contains(p.log.String(), "run_failed") {
		t.Error("a run turned away by the lock sent a run_failed notification")
	}
}

// chromiumPath finds headless Chromium, or skips (fails with
// SEATSYNC_INTEGRATION=required).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SEATSYNC_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "Chromium is not installed (apt-get install chromium): the status page was NOT tested in a browser"
	if os.Getenv("SEATSYNC_INTEGRATION") == "required" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPED LOUDLY: " + msg)
	return ""
}

func artifactDir(t *testing.T) string {
	if d := os.Getenv("SEATSYNC_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// browser is a headless Chromium tab that sends the token as Basic auth
// and lives in the Asia/Tokyo time zone (UTC+9 all year), so a time the
// page shows in the browser's zone differs from UTC.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	chrome := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("lang", "en-US"), // the time zone's name is GMT+9 in English
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 2*waitFor)
	t.Cleanup(cancelT)
	b := &browser{t: t, ctx: ctx}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+serveToken))
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}}); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Tokyo"}); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return b
}

// open loads url and waits for the element sel.
func (b *browser) open(url, sel string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		b.t.Fatalf("open %s: %v", url, err)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(v)
}

// texts is the text of every element sel selects, in document order.
func (b *browser) texts(sel string) []string {
	b.t.Helper()
	js := fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).map(e => e.textContent.trim())`, sel)
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](js))
	if err != nil {
		b.t.Fatalf("read %s: %v", sel, err)
	}
	return v
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	shot, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(artifactDir(b.t), name)
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// localTimes checks that every <time> of the page shows its moment in
// the browser's zone (Asia/Tokyo, UTC+9) and keeps UTC in its title, and
// returns how many there are.
func (b *browser) localTimes(what string) int {
	b.t.Helper()
	times, err := chromedp.Run(b.ctx, chromedp.Evaluate[[][3]string](
		`Array.from(document.querySelectorAll("time")).map(e => [e.getAttribute("datetime"), e.textContent, e.title])`))
	if err != nil {
		b.t.Fatal(err)
	}
	tokyo := time.FixedZone("JST", 9*3600)
	for _, tm := range times {
		at, err := time.Parse(time.RFC3339, tm[0])
		if err != nil {
			b.t.Errorf("%s: <time datetime=%q>: %v", what, tm[0], err)
			continue
		}
		if want := at.In(tokyo).Format("2006-01-02 15:04:05") + " GMT+9"; tm[1] != want {
			b.t.Errorf("%s: %s shows %q, want %q (the browser's time zone)", what, tm[0], tm[1], want)
		}
		if want := at.UTC().Format("2006-01-02 15:04:05") + " UTC"; tm[2] != want {
			b.t.Errorf("%s: %s has the title %q, want %q", what, tm[0], tm[2], want)
		}
	}
	return len(times)
}

// narrow checks the page at a phone's 400 px: it must not scroll
// sideways. The check can fail: the runs table is wider than 400 px, and
// only its own scroll box keeps the page from growing with it.
// seedPoolHistory writes backdated seat history for pool into a site's
// store: used[i] seats len(used)-i days ago.
func seedPoolHistory(t *testing.T, dbPath, pool string, limit int, used []int) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	for i, u := range used {
		ago := time.Duration(len(used)-i) * 24 * time.Hour
		row := store.SeatRow{Kind: store.SeatKindPool, Name: pool, Limit: limit, Used: u, Remaining: limit - u}
		if err := st.SaveSeats(context.Background(), fmt.Sprintf("seed-%d", i), now.Add(-ago), []store.SeatRow{row}); err != nil {
			t.Fatal(err)
		}
	}
}

func (b *browser) narrow(what, wide string) {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: 400, Height: 900, DeviceScaleFactor: 1, Mobile: true}); err != nil {
		b.t.Fatalf("chromium: %v", err)
	}
	defer func() {
		if _, err := chromedp.Call(b.ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); err != nil {
			b.t.Fatalf("chromium: %v", err)
		}
	}()
	m, err := chromedp.Run(b.ctx, chromedp.Evaluate[map[string]int](fmt.Sprintf(`({
		screen: screen.width,
		inner: window.innerWidth,
		client: document.documentElement.clientWidth,
		scroll: document.documentElement.scrollWidth,
		wide: document.querySelector(%q).scrollWidth})`, wide)))
	if err != nil {
		b.t.Fatal(err)
	}
	if m["screen"] != 400 {
		b.t.Fatalf("%s: the screen is %d px wide, not 400: the check would mean nothing", what, m["screen"])
	}
	// A phone lays out a page that does not fit wider than its screen
	// (and shows it zoomed out), so either number tells.
	if m["inner"] > 400 || m["scroll"] > m["client"] {
		b.t.Errorf("%s does not fit a 400 px screen: laid out %d px wide, %d px of content", what, m["inner"], m["scroll"])
	}
	if m["wide"] <= 400 {
		b.t.Errorf("%s: %s is %d px wide, no wider than the 400 px screen: the check tests nothing", what, wide, m["wide"])
	}
	b.screenshot(strings.ReplaceAll(what, " ", "-") + "-400px.png")
}

// TestServeStatusPageInBrowser opens the status page in headless Chromium
// with the token as Basic auth: it reads the pools, the queue and the
// runs from the page, checks the times are in the browser's time zone
// (and in UTC with JavaScript off), that at 400 px nothing scrolls
// sideways, and follows a run's link to its report page and from there to
// the JSON.
func TestServeStatusPageInBrowser(t *testing.T) {
	// primary: limit 3 for alice, bob, carol, erin: one waits (erin).
	s := newSite(t, siteOptions{}, fivePeople()...)
	// Four days of extranet history before this installation's syncs: it
	// grew from none to the one partner, so it has a forecast; primary
	// (full) has none.
	seedPoolHistory(t, filepath.Join(s.dir, "seatsync.db"), "extranet", 10, []int{0, 0, 0, 1})
	p := s.serve(serveOptions{schedule: "@every 1h"})
	p.eventually("the start-up sync", func() (bool, string) { return p.okRuns() == 1, "" })
	// A sync from the command line, then one through the API: neither
	// changes anything.
	s.must(exitOK, "sync", "-c", s.config)
	if code, body := p.request("POST", "/api/v1/sync", "token"); code != 202 {
		t.Fatalf("POST /api/v1/sync: %d %s", code, body)
	}
	p.eventually("the API sync", func() (bool, string) { return p.okRuns() == 3, "" })

	b := newBrowser(t)
	b.open(p.base+"/", "#pool-primary")
	got := []string{b.text("#pool-primary .pool-limit"), b.text("#pool-primary .pool-used"), b.text("#pool-primary .pool-remaining"),
		b.text("#pool-primary .pool-queued"), b.text("#pool-primary .pool-blocked"), b.text("#pool-primary .pool-exempt"),
		b.text("#pool-primary .pool-overage"), b.text("#pool-primary .pool-percent"), b.text("#pool-extranet .pool-used")}
	if want := []string{"3", "3", "0", "1", "1", "0", "0", "100% used", "1"}; !slices.Equal(got, want) {
		t.Errorf("pool numbers on the page (primary limit, used, remaining, queued, blocked, exempt, overage, percent; extranet used) = %v, want %v", got, want)
	}
	seats := s.must(exitOK, "seats", "-c", s.config, "--format", "json")
	if !strings.Contains(seats.stdout, `"blocked": 1`) || !strings.Contains(seats.stdout, `"exempt": 0`) || !strings.Contains(seats.stdout, `"overage": 0`) {
		t.Errorf("seats disagrees with the page:\n%s", seats.stdout)
	}
	queue := [][]string{b.texts("#queue tr.queue-entry .queue-username"), b.texts("#queue tr.queue-entry .queue-name"), b.texts("#queue tr.queue-entry .queue-email")}
	if want := [][]string{{"erin"}, {"Erin Test"}, {"erin@example.com"}}; fmt.Sprint(queue) != fmt.Sprint(want) {
		t.Errorf("queue on the page (usernames, names, e-mails) = %v, want %v", queue, want)
	}
	banner, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.getElementById("banner-pool-full-primary") !== null`))
	if err != nil || !banner {
		t.Errorf("no banner for the full pool (%v)", err)
	}
	// Newest first: the API's sync, the command line's, the start-up one.
	runs := [][]string{b.texts("#runs tr.run .run-trigger"), b.texts("#runs tr.run .run-counts"), b.texts("#runs tr.run .run-result")}
	if want := [][]string{{"API", "CLI", "start-up"}, {"no changes", "no changes", "5 create"}, {"ok", "ok", "ok"}}; fmt.Sprint(runs) != fmt.Sprint(want) {
		t.Errorf("runs on the page (triggers, changes, results) = %v, want %v", runs, want)
	}
	for _, d := range b.texts("#runs tr.run .run-duration") {
		if _, err := time.ParseDuration(d); err != nil {
			t.Errorf("a run's duration reads %q", d)
		}
	}
	if next := b.text("#next-run"); !regexp.MustCompile(`\(in (\d+ min|1 h); schedule @every 1h, source hr\)`).MatchString(next) {
		t.Errorf("next run: %q, want the next hourly sync", next)
	}
	if last := b.text("#last-success"); !strings.Contains(last, "less than a minute ago") {
		t.Errorf("last successful sync: %q", last)
	}
	if n := b.localTimes("status page"); n < 6 {
		t.Errorf("%d times on the status page, want the generated time, the queue's, the next run, the last success and the runs'", n)
	}
	// Each pool's seat history is an inline SVG: a line for the used
	// seats and one for the limit.
	charts, err := chromedp.Run(b.ctx, chromedp.Evaluate[map[string]int](`Object.fromEntries(
		[...document.querySelectorAll("section.pool")].map(s => [s.dataset.pool,
			s.querySelectorAll("figure.chart svg polyline.chart-used, figure.chart svg polyline.chart-limit").length]))`))
	if err != nil || charts["primary"] != 2 || charts["extranet"] != 2 {
		t.Errorf("charts on the page (polylines per pool) = %v (%v), want 2 for each pool", charts, err)
	}
	if got := b.text("#chart-primary figcaption"); !strings.Contains(got, "(3 runs)") {
		t.Errorf("primary's chart caption %q, want its 3 runs", got)
	}
	if got := b.text("#chart-extranet figcaption"); !strings.Contains(got, "(7 runs)") {
		t.Errorf("extranet's chart caption %q, want 4 seeded and 3 runs", got)
	}
	if got := b.texts("#pool-extranet .pool-forecast"); len(got) != 1 || !strings.HasPrefix(got[0], "at the current rate, extranet is full in about ") {
		t.Errorf("extranet's forecast on the page: %q", got)
	}
	if got := b.texts("#pool-primary .pool-forecast"); len(got) != 0 {
		t.Errorf("primary is full, yet has a forecast: %q", got)
	}
	// Nothing is loaded but the page itself.
	if res, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`performance.getEntriesByType("resource").length`)); err != nil || res != 0 {
		t.Errorf("the page loaded %d resources (%v)", res, err)
	}
	b.screenshot("status-page.png")
	b.narrow("status page", "#runs")

	// Without JavaScript the times are in UTC.
	if _, err := chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	b.open(p.base+"/", "#pool-primary")
	for _, tm := range b.texts("time") {
		if !strings.HasSuffix(tm, " UTC") {
			t.Errorf("without JavaScript a time reads %q, want UTC", tm)
		}
	}
	if _, err := chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false}); err != nil {
		t.Fatalf("chromium: %v", err)
	}

	// The start-up run's link opens its report as a page.
	b.open(p.base+"/", "#runs")
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS("#runs tr.run:last-child a.run-report"))); err != nil {
		t.Fatalf("click the report link: %v", err)
	}
	if err := chromedp.Do(b.ctx, chromedp.WaitVisible(chromedp.CSS("#changes"))); err != nil {
		location, _ := chromedp.Run(b.ctx, chromedp.Location())
		t.Fatalf("the report link did not open the report page; the browser is at %q: %v", location, err)
	}
	location, _ := chromedp.Run(b.ctx, chromedp.Location())
	if !strings.Contains(location, "/runs/") || strings.Contains(location, "/api/") {
		t.Errorf("the report link went to %s", location)
	}
	if got := b.texts("#changes tr.change .change-username"); !slices.Equal(got, []string{"alice", "bob", "carol", "dave", "erin"}) {
		t.Errorf("changes on the report page: %v", got)
	}
	if got := b.text("#run .run-trigger"); got != "start-up" {
		t.Errorf("the report page's trigger: %q", got)
	}
	fields := b.texts("#changes tr.change .change-fields li")
	if !slices.Contains(fields, "email: erin@example.com") {
		t.Errorf("the report page does not list the new profiles' fields: %v", fields)
	}
	b.localTimes("report page")
	b.screenshot("run-page.png")
	b.narrow("report page", "#changes")

	// And from there, the JSON.
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS("a#report-json"))); err != nil {
		t.Fatalf("click the JSON link: %v", err)
	}
	var reportText string
	deadline := time.Now().Add(20 * time.Second)
	for {
		location, _ = chromedp.Run(b.ctx, chromedp.Location())
		if strings.Contains(location, "/api/v1/runs/") {
			if body, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("body"))); err == nil && strings.Contains(body, `"run_id"`) {
				reportText = body
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the JSON link did not open the report; the browser is at %q", location)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep := decodeReport(t, result{stdout: reportText})
	if rep.Mode != "sync" || rep.Summary["create"] != 5 {
		t.Errorf("the linked report: mode %s, summary %v", rep.Mode, rep.Summary)
	}
}

// TestServeRunOnStartAuto: with run_on_start auto, serve syncs at once when
// the store has never been synced, and waits for the schedule when the last
// sync is younger than one period.
func TestServeRunOnStartAuto(t *testing.T) {
	s := newSite(t, siteOptions{}, fivePeople()...)
	p := s.serve(serveOptions{schedule: "@every 1h", runOnStart: "auto"})
	p.eventually("the start-up sync of a new store", func() (bool, string) { return p.okRuns() == 1, "" })
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	p = s.serve(serveOptions{schedule: "@every 1h", runOnStart: "auto"})
	p.eventually("serve to say it waits for the schedule", func() (bool, string) {
		return strings.Contains(p.log.String(), "the last sync is recent"), ""
	})
	if n := p.okRuns(); n != 1 {
		t.Errorf("%d runs after a restart within the period, want still 1", n)
	}
}
