// Package ldaptest starts real directory servers for integration tests: an
// OpenLDAP slapd and a Samba Active Directory domain controller, each on
// 127.0.0.1 with a private configuration in a temporary directory, with a
// test CA made here for ldaps and StartTLS. Servers are stopped by PID.
//
// When a server binary is missing the tests that need it skip, loudly;
// with SEATSYNC_INTEGRATION=required they fail instead.
package ldaptest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	// ErrMissing marks a server binary that is not installed.
	ErrMissing = errors.New("not installed")
	// ErrCannotRun marks a server this machine cannot run for the tests,
	// such as Samba without root (its LDAP ports are 389 and 636).
	ErrCannotRun = errors.New("cannot run here")
)

// Required reports whether integration servers must be present
// (SEATSYNC_INTEGRATION=required).
func Required() bool { return os.Getenv("SEATSYNC_INTEGRATION") == "required" }

// Unavailable fails tb when integration is required and skips it with a
// clear message otherwise. Call it when a server could not be started.
func Unavailable(tb testing.TB, what string, err error) {
	tb.Helper()
	if (errors.Is(err, ErrMissing) || errors.Is(err, ErrCannotRun)) && !Required() {
		tb.Skipf("SKIPPING: %s integration test: %v (install with: apt-get install -y slapd ldap-utils samba samba-ad-dc winbind; set SEATSYNC_INTEGRATION=required to make this a failure)", what, err)
	}
	tb.Fatalf("%s: %v", what, err)
}

// lookPath finds a program in PATH or in the sbin directories, where
// Debian installs slapd.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, ErrMissing)
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// run runs a command and returns its combined output in the error.
func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return nil
}

// process is a started server.
type process struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
	err  error
}

func start(name string, args ...string) (*process, error) {
	p := &process{cmd: exec.Command(name, args...), out: &bytes.Buffer{}, done: make(chan struct{})}
	w := &lockedWriter{b: p.out}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// waitPorts waits until every port accepts connections, or the process
// exits, or timeout passes.
func (p *process) waitPorts(timeout time.Duration, ports ...int) error {
	deadline := time.Now().Add(timeout)
	for _, port := range ports {
		for {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-p.done:
				return fmt.Errorf("%s exited: %v\n%s", p.cmd.Path, p.err, p.output())
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: port %d not open after %s\n%s", p.cmd.Path, port, timeout, p.output())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

func (p *process) output() string {
	lw := p.cmd.Stdout.(*lockedWriter)
	return lw.String()
}

// stop ends the process by PID: SIGTERM to its process group, then SIGKILL
// after a grace period.
func (p *process) stop() {
	if p == nil {
		return
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(10 * time.Second):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-p.done
}

// kill ends the process at once (SIGKILL), as a crash or a pulled cable
// would.
func (p *process) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}
