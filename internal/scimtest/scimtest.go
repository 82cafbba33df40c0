// Package scimtest starts a real SCIM 2.0 server for tests: SCIMMY with
// scimmy-routers (Node.js, in the server folder beside this file), on a
// free 127.0.0.1 port, with a bearer token, a storage file in the test's
// temporary directory, fault injection, request counters and an optional
// ETag layer. server/README.md says what the server does and where SCIMMY
// departs from RFC 7643/7644.
//
// When node cannot be found or the server cannot start, the test skips,
// loudly; with SEATSYNC_INTEGRATION=required it fails instead (as
// internal/ldaptest does for slapd). The server's npm packages are
// installed by CI (npm ci in .ci/run); where they are missing, Start runs
// npm ci once, under a file lock so that parallel test binaries do not race.
//
// The server is stopped by PID (its process group) when the test ends. It
// also exits when its stdin closes, so a test binary that dies leaves no
// server behind.
package scimtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	// ErrMissing marks a program (node, npm) or file the server needs that
	// is not installed.
	ErrMissing = errors.New("not installed")
	// ErrCannotRun marks a server this machine cannot run, such as a node
	// too old, or npm ci failing without a registry.
	ErrCannotRun = errors.New("cannot run here")
)

// EnterpriseSchema is the enterprise User extension the server declares.
const EnterpriseSchema = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// The request kinds of Counters.Requests. A filtered list (a lookup by
// userName, say) is KindLookup, not KindList.
const (
	KindCreate  = "POST /Users"
	KindList    = "GET /Users"
	KindLookup  = "GET /Users?filter"
	KindGet     = "GET /Users/{id}"
	KindReplace = "PUT /Users/{id}"
	KindPatch   = "PATCH /Users/{id}"
	KindDelete  = "DELETE /Users/{id}"
	KindConfig  = "GET /ServiceProviderConfig"
)

// uncountedHeader marks the helper's own requests (Users): the server
// neither counts them nor applies faults to them.
const uncountedHeader = "X-Scimtest-Uncounted"

// Required reports whether integration servers must be present
// (SEATSYNC_INTEGRATION=required).
func Required() bool { return os.Getenv("SEATSYNC_INTEGRATION") == "required" }

// Unavailable fails tb when integration is required and skips it with a
// clear message otherwise. Start calls it when the server cannot start.
func Unavailable(tb testing.TB, err error) {
	tb.Helper()
	if (errors.Is(err, ErrMissing) || errors.Is(err, ErrCannotRun)) && !Required() {
		tb.Skipf("SKIPPING: SCIM (SCIMMY) integration test: %v (install with: apt-get install -y nodejs npm; cd internal/scimtest/server && npm ci; set SEATSYNC_INTEGRATION=required to make this a failure)", err)
	}
	tb.Fatalf("SCIM test server (SCIMMY): %v", err)
}

// Options change how Start sets up the server.
type Options struct {
	// Token is the bearer token SCIM requests must carry; a random one
	// when empty.
	Token string
	// ETag turns on the ETag layer (ours, not SCIMMY's): ETag headers,
	// If-Match on PUT, PATCH and DELETE (412 on a mismatch), If-None-Match
	// on GET (304), and etag.supported in /ServiceProviderConfig.
	ETag bool
	// Faults are set once the server is up, and again after each Restart.
	Faults Faults
	// StorePath is the storage file (JSON); a new file in the test's
	// temporary directory when empty. Give the file of an earlier server
	// to start with its users.
	StorePath string
	// BasePath is where SCIM is served; "/scim/v2" when empty.
	BasePath string
}

// Faults are what the server does wrong on purpose. The zero value is a
// well-behaved server. Faults apply to authenticated SCIM requests, in
// this order: Latency, then RateLimit, then FailEvery, then Invalid.
type Faults struct {
	// FailEvery answers every Nth SCIM request with 500 (counting from
	// SetFaults); 0 is off. FailMethods, when set, limits both the counting
	// and the failing to those HTTP methods.
	FailEvery   int      `json:"fail_every,omitempty"`
	FailMethods []string `json:"fail_methods,omitempty"`
	// FailAfterApply carries the failed request out before answering 500,
	// as when an answer is lost: the create happened, the client does not
	// know it.
	FailAfterApply bool `json:"fail_after_apply,omitempty"`
	// RateLimit answers the next RateLimit SCIM requests with 429 and
	// Retry-After: RetryAfter seconds (1 when 0).
	RateLimit  int `json:"rate_limit,omitempty"`
	RetryAfter int `json:"retry_after,omitempty"`
	// Invalid answers a POST, PUT or PATCH of one of these userNames (the
	// map's keys, ignoring case: in the body, or the userName the target
	// user has) with 400, scimType invalidValue and the map's value as
	// detail.
	Invalid map[string]string `json:"invalid,omitempty"`
	// Latency delays every SCIM request, in milliseconds on the wire.
	Latency time.Duration `json:"-"`
}

func (f Faults) wire() map[string]any {
	b, _ := json.Marshal(f)
	m := map[string]any{}
	_ = json.Unmarshal(b, &m)
	if f.Latency > 0 {
		m["latency_ms"] = f.Latency.Milliseconds()
	}
	return m
}

// Counters are what the server counted since it started or since
// ResetCounters. The helper's own requests (Users) are not counted.
type Counters struct {
	Total int `json:"total"`
	// Requests by kind: "POST /Users", "GET /Users?filter", ... (see the
	// Kind constants); "METHOD other" for paths the server has no route for.
	Requests map[string]int `json:"requests"`
	// Statuses by HTTP status answered.
	Statuses map[int]int `json:"statuses"`
	// Faults injected, by the status they answered: 500, 429, 400.
	Faults map[int]int `json:"faults"`
	// Active is how many users hold a seat now (active is not false), and
	// MaxActive the most there were after any write.
	Active    int `json:"active"`
	MaxActive int `json:"max_active"`
	// ActiveLog has one entry per write, in order.
	ActiveLog []ActiveSample `json:"active_log"`
}

// ActiveSample is the number of active users right after one write.
type ActiveSample struct {
	Seq      int    `json:"seq"`
	Op       string `json:"op"` // create, replace, patch or delete
	UserName string `json:"userName"`
	Active   int    `json:"active"`
}

// Lookups is how many single-user reads there were: filtered lists and
// GETs by id.
func (c Counters) Lookups() int { return c.Requests[KindLookup] + c.Requests[KindGet] }

// User is a user as the server answers it. Raw holds the whole JSON.
type User struct {
	ID          string      `json:"id"`
	ExternalID  string      `json:"externalId,omitempty"`
	UserName    string      `json:"userName"`
	Name        *Name       `json:"name,omitempty"`
	DisplayName string      `json:"displayName,omitempty"`
	Title       string      `json:"title,omitempty"`
	Active      *bool       `json:"active,omitempty"`
	Emails      []Email     `json:"emails,omitempty"`
	Enterprise  *Enterprise `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User,omitempty"`
	Schemas     []string    `json:"schemas"`
	Meta        Meta        `json:"meta"`

	Raw json.RawMessage `json:"-"`
}

// IsActive is what the server counts as holding a seat: active is not false.
func (u User) IsActive() bool { return u.Active == nil || *u.Active }

// Name is a user's name.
type Name struct {
	GivenName  string `json:"givenName,omitempty"`
	FamilyName string `json:"familyName,omitempty"`
	Formatted  string `json:"formatted,omitempty"`
}

// Email is one of a user's emails.
type Email struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

// Enterprise is the enterprise User extension.
type Enterprise struct {
	EmployeeNumber string `json:"employeeNumber,omitempty"`
	Department     string `json:"department,omitempty"`
	Division       string `json:"division,omitempty"`
	Organization   string `json:"organization,omitempty"`
	CostCenter     string `json:"costCenter,omitempty"`
}

// Meta is a resource's metadata.
type Meta struct {
	ResourceType string    `json:"resourceType"`
	Created      time.Time `json:"created"`
	LastModified time.Time `json:"lastModified"`
	Location     string    `json:"location"`
	Version      string    `json:"version"`
}

// Server is a running SCIM test server.
type Server struct {
	tb     testing.TB
	opts   Options
	node   string
	dir    string // the server folder
	port   int
	client *http.Client
	out    *tailBuffer // every process's output, the last of it

	mu   sync.Mutex
	proc *process
}

// Start starts a server; it stops when the test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := start(tb, opts)
	if err != nil {
		Unavailable(tb, err)
	}
	return s
}

func start(tb testing.TB, opts Options) (*Server, error) {
	if opts.Token == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		opts.Token = "scimtest-" + hex.EncodeToString(b)
	}
	if opts.BasePath == "" {
		opts.BasePath = "/scim/v2"
	}
	if opts.StorePath == "" {
		opts.StorePath = filepath.Join(tb.TempDir(), "scim-users.json")
	}
	dir, err := ServerDir()
	if err != nil {
		return nil, err
	}
	node, err := lookNode()
	if err != nil {
		return nil, err
	}
	if err := EnsureModules(dir); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{tb: tb, opts: opts, node: node, dir: dir, port: port,
		out:    &tailBuffer{max: 16 << 10},
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}}
	tb.Cleanup(func() {
		if tb.Failed() {
			if out := s.output(); out != "" {
				tb.Logf("SCIM test server output (last lines):\n%s", out)
			}
		}
		s.stop()
	})
	if err := s.launch(); err != nil {
		return nil, err
	}
	return s, nil
}

// ServerDir finds the Node.js app: beside this source file, or (in a
// binary built with -trimpath) under the module root above the working
// directory. SEATSYNC_SCIMTEST_DIR overrides both.
func ServerDir() (string, error) {
	var tried []string
	ok := func(d string) bool {
		tried = append(tried, d)
		_, err := os.Stat(filepath.Join(d, "server.js"))
		return err == nil
	}
	if d := os.Getenv("SEATSYNC_SCIMTEST_DIR"); d != "" {
		if ok(d) {
			return d, nil
		}
		return "", fmt.Errorf("SEATSYNC_SCIMTEST_DIR=%s has no server.js: %w", d, ErrMissing)
	}
	if _, file, _, found := runtime.Caller(0); found && filepath.IsAbs(file) {
		if d := filepath.Join(filepath.Dir(file), "server"); ok(d) {
			return d, nil
		}
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				if s := filepath.Join(d, "internal", "scimtest", "server"); ok(s) {
					return s, nil
				}
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", fmt.Errorf("the scimtest server folder (tried %s): %w", strings.Join(tried, ", "), ErrMissing)
}

func lookNode() (string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("node: %w", ErrMissing)
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w: %w", node, err, ErrCannotRun)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	if major < 18 {
		return "", fmt.Errorf("node %s is too old, 18 or later is needed: %w", v, ErrCannotRun)
	}
	return node, nil
}

// modulesReady reports whether dir's node_modules holds a finished
// install of the server's packages (npm writes node_modules/.package-lock.json last).
func modulesReady(dir string) bool {
	for _, f := range []string{".package-lock.json", "scimmy/package.json", "scimmy-routers/package.json", "express/package.json"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", f)); err != nil {
			return false
		}
	}
	return true
}

// EnsureModules runs npm ci in dir unless its node_modules is complete,
// under an exclusive lock on dir/.npm-ci.lock: test binaries that start
// at once wait for one install instead of running npm ci over each other.
func EnsureModules(dir string) error {
	if modulesReady(dir) {
		return nil
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".npm-ci.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("npm ci lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("npm ci lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing unlocks too
	if modulesReady(dir) {                               // another process installed them while we waited
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("npm (to install %s/node_modules): %w", dir, ErrMissing)
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm ci in %s: %w: %w\n%s", dir, err, ErrCannotRun, out)
	}
	if !modulesReady(dir) {
		return fmt.Errorf("npm ci in %s left node_modules incomplete: %w", dir, ErrCannotRun)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// launch starts the node process and waits until it answers.
func (s *Server) launch() error {
	args := []string{filepath.Join(s.dir, "server.js"),
		"--port", strconv.Itoa(s.port), "--host", "127.0.0.1",
		"--store", s.opts.StorePath, "--base-path", s.opts.BasePath,
		"--exit-on-stdin-close"}
	if s.opts.ETag {
		args = append(args, "--etag")
	}
	cmd := exec.Command(s.node, args...)
	cmd.Dir = s.dir
	// The token goes by environment, not on the command line for ps to show.
	cmd.Env = append(os.Environ(), "SCIMTEST_TOKEN="+s.opts.Token)
	p, err := startProcess(cmd, s.out)
	if err != nil {
		return fmt.Errorf("start %s: %w", s.node, err)
	}
	if err := s.waitReady(p, 30*time.Second); err != nil {
		p.stop()
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	if err := s.setFaults(s.opts.Faults); err != nil {
		return err
	}
	return nil
}

func (s *Server) waitReady(p *process, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	health := s.adminURL("/health")
	for {
		resp, err := s.client.Get(health)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("SCIM test server exited: %v\n%s", p.err, s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("SCIM test server not answering on port %d after %s: %v\n%s", s.port, timeout, err, s.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URL is the SCIM base URL, such as http://127.0.0.1:PORT/scim/v2. It
// stays the same across Restart.
func (s *Server) URL() string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.port, s.opts.BasePath)
}

// Token is the bearer token.
func (s *Server) Token() string { return s.opts.Token }

// StorePath is the storage file.
func (s *Server) StorePath() string { return s.opts.StorePath }

func (s *Server) adminURL(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d/_test%s", s.port, path)
}

// Users reads every user back through the SCIM API, 100 a page, in the
// order the server keeps them (creation order). Its requests are not
// counted and faults do not touch them.
func (s *Server) Users() []User {
	s.tb.Helper()
	users, err := s.listUsers()
	if err != nil {
		s.tb.Fatalf("scimtest: read users: %v", err)
	}
	return users
}

// UserByName is the user whose userName is name, ignoring case, or nil.
func (s *Server) UserByName(name string) *User {
	s.tb.Helper()
	for _, u := range s.Users() {
		if strings.EqualFold(u.UserName, name) {
			return &u
		}
	}
	return nil
}

func (s *Server) listUsers() ([]User, error) {
	const count = 100
	var users []User
	// SCIMMY answers a startIndex past the end with the first page again
	// (see server/README.md), so the loop stops on totalResults, never on
	// an empty page.
	for start := 1; ; start += count {
		var page struct {
			TotalResults int               `json:"totalResults"`
			Resources    []json.RawMessage `json:"Resources"`
		}
		u := fmt.Sprintf("%s/Users?startIndex=%d&count=%d", s.URL(), start, count)
		if err := s.do(http.MethodGet, u, true, nil, &page); err != nil {
			return nil, err
		}
		for _, raw := range page.Resources {
			var user User
			if err := json.Unmarshal(raw, &user); err != nil {
				return nil, fmt.Errorf("decode user: %w: %s", err, raw)
			}
			user.Raw = raw
			users = append(users, user)
		}
		if start+count > page.TotalResults || len(page.Resources) == 0 {
			break
		}
	}
	return users, nil
}

// do sends one request; scim requests carry the token and the header that
// keeps them out of the counters.
func (s *Server) do(method, u string, scim bool, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if scim {
		req.Header.Set("Authorization", "Bearer "+s.opts.Token)
		req.Header.Set(uncountedHeader, "1")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w: %s", method, u, err, b)
		}
	}
	return nil
}

// SetFaults replaces the server's faults (the zero Faults clears them)
// and restarts the FailEvery count.
func (s *Server) SetFaults(f Faults) {
	s.tb.Helper()
	if err := s.setFaults(f); err != nil {
		s.tb.Fatalf("scimtest: set faults: %v", err)
	}
}

func (s *Server) setFaults(f Faults) error {
	return s.do(http.MethodPut, s.adminURL("/faults"), false, f.wire(), nil)
}

// Counters reads the server's counters.
func (s *Server) Counters() Counters {
	s.tb.Helper()
	var c Counters
	if err := s.do(http.MethodGet, s.adminURL("/counters"), false, nil, &c); err != nil {
		s.tb.Fatalf("scimtest: counters: %v", err)
	}
	return c
}

// MaxActive is the most users that held a seat at once, after any write
// since the start or ResetCounters.
func (s *Server) MaxActive() int {
	s.tb.Helper()
	return s.Counters().MaxActive
}

// ResetCounters zeroes the counters and the active log; MaxActive starts
// again from the users active now.
func (s *Server) ResetCounters() {
	s.tb.Helper()
	if err := s.do(http.MethodDelete, s.adminURL("/counters"), false, nil, nil); err != nil {
		s.tb.Fatalf("scimtest: reset counters: %v", err)
	}
}

// Kill ends the server at once (SIGKILL to its process group), as a
// crash would. Every write it answered is already in the storage file.
func (s *Server) Kill() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.kill()
	}
	s.client.CloseIdleConnections()
}

// Restart stops the server (if it runs) and starts it again on the same
// port with the same storage file and token. Counters start from zero and
// the faults are those of Options again.
func (s *Server) Restart() {
	s.tb.Helper()
	s.stop()
	if err := s.launch(); err != nil {
		s.tb.Fatalf("scimtest: restart: %v", err)
	}
}

func (s *Server) stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.stop()
	}
	s.client.CloseIdleConnections()
}

func (s *Server) output() string { return s.out.String() }

// PID is the server process's id, 0 when it is not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}
