package main_test

// End-to-end tests of seatsync's hardening, through the binary: files the
// configuration names that could hang it or fill its memory, signals,
// the API token, refused requests, and who the audit log says acted.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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

// runBounded runs the binary like runIn, but kills it (by its PID) and
// fails the test when it has not exited within waitFor: a guard against a
// hang, not a timing assert. It also returns the process's peak memory.
func runBounded(t *testing.T, dir string, args ...string) (result, *os.ProcessState) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(waitFor):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("seatsync %s did not exit within %s (killed):\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), waitFor, &out, &errOut)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errOut.String()}, cmd.ProcessState
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
	r, ps := runBounded(t, s.dir, "validate", "-c", big)
	want := big + " is 104857600 bytes, over the 1 MiB limit for a configuration file"
	if r.code != exitUsage || !strings.Contains(r.stderr, want) {
		t.Errorf("validate of a 100 MB file: want exit 2 and %q, got %s", want, r)
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > 100<<10 { // Linux: KiB
		t.Errorf("validate of a 100 MB file peaked at %d MiB of memory: the file was read", ru.Maxrss>>10)
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
