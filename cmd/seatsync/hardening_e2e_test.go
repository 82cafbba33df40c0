package main_test

// End-to-end tests of seatsync's hardening, through the binary: files the
// configuration names that could hang it or fill its memory, signals,
// the API token, refused requests, and who the audit log says acted.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/store/sqlite"
)

// appendConfig adds YAML at the end of the site's configuration and
// returns the line its first line lands on.
func (s *site) appendConfig(yaml string) int {
	s.t.Helper()
	cfg := s.read("seatsync.yaml")
	if !strings.HasSuffix(cfg, "\n") {
		cfg += "\n"
	}
	s.write("seatsync.yaml", cfg+yaml)
	return strings.Count(cfg, "\n") + 1
}

// proc is one run of the binary that the test may signal.
type proc struct {
	t           *testing.T
	cmd         *exec.Cmd
	out, errOut bytes.Buffer
	done        chan struct{}
}

// start starts the binary in dir.
func start(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: exec.Command(binary, args...), done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errOut
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill() // by its PID
			<-p.done
		}
	})
	return p
}

// wait waits for the process to exit, and kills it and fails the test
// when it has not within waitFor: a guard against a hang, not a timing
// assert. It returns the result and the process state (peak memory, the
// signal that ended it).
func (p *proc) wait() (result, *os.ProcessState) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(waitFor):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("seatsync %s did not exit within %s (killed):\nstdout:\n%s\nstderr:\n%s",
			strings.Join(p.cmd.Args[1:], " "), waitFor, &p.out, &p.errOut)
	}
	return result{code: p.cmd.ProcessState.ExitCode(), stdout: p.out.String(), stderr: p.errOut.String()}, p.cmd.ProcessState
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// runBounded runs the binary like runIn, guarded against a hang.
func runBounded(t *testing.T, dir string, args ...string) (result, *os.ProcessState) {
	t.Helper()
	return start(t, dir, args...).wait()
}

// waitOpened waits until process pid has path open, reading /proc (it
// skips the test where there is none).
func waitOpened(t *testing.T, pid int, path string) {
	t.Helper()
	fds := fmt.Sprintf("/proc/%d/fd", pid)
	if _, err := os.Stat(fds); err != nil {
		t.Skipf("cannot see the process's open files: %v", err)
	}
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir(fds)
		for _, e := range entries {
			if target, err := os.Readlink(filepath.Join(fds, e.Name())); err == nil && target == path {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("process %d did not open %s within %s", pid, path, waitFor)
}

// stuckExport makes the site's export a named pipe that the test holds
// open for writing and never writes to: a pull that opens it waits
// forever in a read no context can interrupt.
func stuckExport(t *testing.T, s *site) string {
	t.Helper()
	fifo := filepath.Join(s.dir, "people.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// O_RDWR does not wait for a reader (Linux), and keeps the pipe open
	// for writing so a reader never sees its end.
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	b := s.read("seatsync.yaml")
	s.write("seatsync.yaml", strings.Replace(b, "path: people.csv", "path: people.fifo", 1))
	return fifo
}

// TestSecretFilesBounded: a *_file secret that names a named pipe, or a
// file over 64 KiB, is a problem at the key's line naming the file and
// the limit; validate reports it at once instead of waiting for a writer.
func TestSecretFilesBounded(t *testing.T) {
	s := newSite(t, siteOptions{}, row("E1", "alice"))
	fifo := filepath.Join(s.dir, "token.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	s.write("smtp-password", strings.Repeat("x", 70000))
	line := s.appendConfig(`server:
  listen: 127.0.0.1:8080
  token_file: token.fifo
notify:
  email:
    to: [it@example.com]
    from: seatsync@example.com
    smtp: {host: mx.example.com, username: seatsync, password_file: smtp-password}
`)
	for _, cmd := range [][]string{{"validate"}, {"plan"}, {"serve"}} {
		r, _ := runBounded(t, s.dir, append(cmd, "-c", s.config)...)
		if r.code != exitUsage {
			t.Errorf("seatsync %s with a secret in a named pipe: want exit 2, got %s", cmd[0], r)
		}
		for _, want := range []string{
			fmt.Sprintf("line %d: server.token_file: %s is a named pipe, not a regular file", line+2, fifo),
			fmt.Sprintf("line %d: notify.email.smtp.password_file: %s is 70000 bytes, over the 64 KiB limit for a secret file",
				line+7, filepath.Join(s.dir, "smtp-password")),
		} {
			if !strings.Contains(r.stdout+r.stderr, want) {
				t.Errorf("seatsync %s does not say %q:\n%s", cmd[0], want, r)
			}
		}
	}
}

// TestConfigFileBounded: the configuration file must be a regular file of
// at most 1 MiB. A 100 MB file is refused from its size, without being
// read (the process stays small); a named pipe is refused at once; a link
// to a regular file is fine.
func TestConfigFileBounded(t *testing.T) {
	s := newSite(t, siteOptions{}, row("E1", "alice"))
	link := filepath.Join(s.dir, "link.yaml")
	if err := os.Symlink("seatsync.yaml", link); err != nil {
		t.Fatal(err)
	}
	if r, _ := runBounded(t, s.dir, "validate", "-c", link); r.code != exitOK {
		t.Errorf("validate through a symbolic link: %s", r)
	}

	// One 100 MB line of YAML (a sparse file: it costs no disk).
	big := filepath.Join(s.dir, "big.yaml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("version: 1\nsources: "); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(100 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r, kib := peakRSS(t, s.dir, "validate", "-c", big)
	want := big + " is 104857600 bytes, over the 1 MiB limit for a configuration file"
	if r.code != exitUsage || !strings.Contains(r.stderr, want) {
		t.Errorf("validate of a 100 MB file: want exit 2 and %q, got %s", want, r)
	}
	t.Logf("validate of a 100 MB file: peak RSS %d KiB", kib)
	if kib == 0 {
		t.Error("the peak RSS of validate could not be read")
	}
	if kib > 100<<10 {
		t.Errorf("validate of a 100 MB file peaked at %d MiB of memory: the file was read", kib>>10)
	}

	fifo := filepath.Join(s.dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, cmd := range []string{"validate", "seats", "sync"} {
		r, _ := runBounded(t, s.dir, cmd, "-c", fifo)
		if want := fifo + " is a named pipe, not a regular file"; r.code != exitUsage || !strings.Contains(r.stderr, want) {
			t.Errorf("seatsync %s -c a named pipe: want exit 2 and %q, got %s", cmd, want, r)
		}
	}
}

// TestValidateConnectStopsOnSIGTERM: validate --connect waiting for an
// LDAP server that never answers (its timeout is 10 minutes) stops at
// once on SIGTERM, says it was interrupted and exits 1.
func TestValidateConnectStopsOnSIGTERM(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c // held open, never answered
		}
	}()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "seatsync.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
licensing:
  pools: [{name: primary, limit: 5, areas: [primary]}]
sources:
  - name: corp
    type: ldap
    url: ldap://%s
    tls: {mode: none}
    base_dn: "dc=corp,dc=example"
    timeout: 10m
`, ln.Addr())), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, dir, "validate", "--connect", "-c", cfg)
	select {
	case c := <-accepted:
		defer c.Close()
	case <-p.done:
		r, _ := p.wait()
		t.Fatalf("validate --connect exited before connecting: %s", r)
	case <-time.After(waitFor):
		t.Fatalf("validate --connect did not connect within %s", waitFor)
	}
	p.signal(syscall.SIGTERM)
	r, _ := p.wait()
	if r.code != exitFailed || !strings.Contains(r.stderr, "interrupted (terminated signal received)") || !strings.Contains(r.stderr, "source corp") {
		t.Errorf("validate --connect after SIGTERM: want exit 1, interrupted, naming the source; got %s", r)
	}
}

// TestOneShotStopsOnSIGTERMWhenStuck: a plan stuck reading an export that
// is a named pipe nobody writes to (a read no context reaches) still ends
// after SIGTERM, a few seconds later, and says why.
func TestOneShotStopsOnSIGTERMWhenStuck(t *testing.T) {
	s := newSite(t, siteOptions{}, fivePeople()...)
	fifo := stuckExport(t, s)
	p := start(t, s.dir, "plan", "-c", s.config)
	waitOpened(t, p.cmd.Process.Pid, fifo)
	p.signal(syscall.SIGTERM)
	r, _ := p.wait()
	if r.code != exitFailed || !strings.Contains(r.stderr, "interrupted (terminated signal received), and still busy") {
		t.Errorf("a stuck plan after SIGTERM: want exit 1 saying it was still busy, got %s", r)
	}
}

// TestServeSecondSignalEndsIt: serve waits for a run in flight when it
// shuts down; when that run is stuck for good, a second SIGTERM ends the
// process at once.
func TestServeSecondSignalEndsIt(t *testing.T) {
	s := newSite(t, siteOptions{}, fivePeople()...)
	fifo := stuckExport(t, s)
	p := s.serve(serveOptions{csvPath: "people.fifo", runOnStart: "always", schedule: "@every 1h", shutdownTimeout: "100ms"})
	waitOpened(t, p.cmd.Process.Pid, fifo)
	p.signal(syscall.SIGTERM)
	p.eventually("the shutdown to give up waiting for the run", func() (bool, string) {
		return strings.Contains(p.log.String(), "cancelling the sync in flight"), ""
	})
	p.signal(syscall.SIGTERM)
	p.wait()
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("after a second SIGTERM: %v, want the process ended by the signal", p.cmd.ProcessState)
	}
}

// TestRemoteServerNeedsLongToken: a server that other machines can reach
// needs a token of at least 32 characters; validate says how to make one
// and never prints the token. On loopback any token will do.
func TestRemoteServerNeedsLongToken(t *testing.T) {
	s := newSite(t, siteOptions{}, row("E1", "alice"))
	base := s.read("seatsync.yaml")
	const short = "SHORT-tok3n" // 11 characters
	line := s.appendConfig("server:\n  listen: 0.0.0.0:8080\n  token: " + short + "\n")
	r := s.must(exitUsage, "validate", "-c", s.config)
	want := fmt.Sprintf("line %d: server.token: shorter than 32 characters", line+2)
	if !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "openssl rand -hex 32") {
		t.Errorf("validate of a short token on 0.0.0.0: want %q and how to make one, got %s", want, r)
	}
	// serve refuses it too, before listening.
	rs := s.must(exitUsage, "serve", "-c", s.config)
	if !strings.Contains(rs.stderr, want) {
		t.Errorf("serve with a short token on 0.0.0.0: want %q, got %s", want, rs)
	}
	if strings.Contains(r.stdout+r.stderr+rs.stdout+rs.stderr, short) {
		t.Errorf("the token was printed:\n%s\n%s", r, rs)
	}

	s.write("seatsync.yaml", base)
	s.appendConfig("server:\n  listen: 0.0.0.0:8080\n  token: " + strings.Repeat("k", 32) + "\n")
	s.must(exitOK, "validate", "-c", s.config)

	s.write("seatsync.yaml", base)
	s.appendConfig("server:\n  listen: 127.0.0.1:8080\n  token: Q\n")
	s.must(exitOK, "validate", "-c", s.config)
}

// TestServeCountsRefusedRequests: requests with a wrong token are counted
// in /metrics and logged once a minute per client address, without the
// token.
func TestServeCountsRefusedRequests(t *testing.T) {
	s := newSite(t, siteOptions{}, fivePeople()...)
	p := s.serve(serveOptions{schedule: "@every 1h"})
	const metric = "seatsync_http_unauthorized_total"
	if got, ok := p.metrics()[metric]; !ok || got != 0 {
		t.Fatalf("%s before any refused request: %v (exported %v), want 0", metric, got, ok)
	}
	for range 2 {
		if code, body := p.request("GET", "/api/v1/status", "Bearer wrong-token-SECRET"); code != 401 {
			t.Fatalf("a wrong token: %d %s", code, body)
		}
	}
	if got := p.metrics()[metric]; got != 2 {
		t.Errorf("%s after two wrong tokens = %v, want 2", metric, got)
	}
	var lines []string
	for _, line := range strings.Split(p.log.String(), "\n") {
		if strings.Contains(line, "refused a request without the right token") {
			lines = append(lines, line)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "WARN") || !strings.Contains(lines[0], `"client": "127.0.0.1"`) ||
		!strings.Contains(lines[0], `"refused": 1`) {
		t.Errorf("want one warn line naming the client, got %d:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if strings.Contains(p.log.String(), "SECRET") || strings.Contains(p.log.String(), serveToken) {
		t.Errorf("the log shows a token:\n%s", p.log)
	}
}

// currentUser is who the tests run as, named the way seatsync names an
// actor on the command line.
func currentUser(t *testing.T) string {
	t.Helper()
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if name := os.Getenv("USER"); name != "" {
		return name
	}
	return fmt.Sprintf("uid=%d", os.Getuid())
}

// auditActors reads the site's audit log, oldest first, as
// "actor action username".
func (s *site) auditActors() []string {
	s.t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(s.dir, "seatsync.db"))
	if err != nil {
		s.t.Fatal(err)
	}
	defer st.Close()
	entries, err := st.Audit(context.Background(), "", 0)
	if err != nil {
		s.t.Fatal(err)
	}
	var out []string
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		out = append(out, e.Actor+" "+e.Action+" "+e.Username)
	}
	return out
}

// TestAuditSaysWhoActed: the audit log records a sync's changes as sync,
// an admin's on the command line as cli:<OS user>, and one through the API
// as api:<the client's address>.
func TestAuditSaysWhoActed(t *testing.T) {
	s := newSite(t, siteOptions{}, row("E1", "alice"), row("E2", "bob"))
	s.must(exitOK, "sync", "-c", s.config)
	s.must(exitOK, "profiles", "block", "-c", s.config, "alice")
	s.must(exitOK, "profiles", "unblock", "-c", s.config, "alice")
	cli := "cli:" + currentUser(t)
	want := []string{"sync create alice", "sync create bob", cli + " block alice", cli + " unblock alice"}
	if diff := cmp.Diff(want, s.auditActors()); diff != "" {
		t.Errorf("audit log after a sync and a block and unblock by hand (-want +got):\n%s", diff)
	}

	p := s.serve(serveOptions{schedule: "@every 1h", runOnStart: "never"})
	if code, body := p.request("POST", "/api/v1/profiles/bob/block", "token"); code != 200 {
		t.Fatalf("block through the API: %d %s", code, body)
	}
	got := s.auditActors()
	if last := got[len(got)-1]; last != "api:127.0.0.1 block bob" {
		t.Errorf("the API's block is recorded as %q, want \"api:127.0.0.1 block bob\"", last)
	}
	s.must(exitOK, "profiles", "delete", "-c", s.config, "bob")
	if got := s.auditActors(); got[len(got)-1] != cli+" delete bob" {
		t.Errorf("the delete by hand is recorded as %q, want %q", got[len(got)-1], cli+" delete bob")
	}
}
