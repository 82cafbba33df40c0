package scimtest

import (
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// process is a started server: its own process group, stopped by PID.
type process struct {
	cmd   *exec.Cmd
	stdin *os.File // closing it tells the server to exit
	done  chan struct{}
	err   error
}

// startProcess starts cmd in a new process group, with its output going
// to out and a pipe as its stdin, which the server watches: when this
// test binary dies, the pipe closes and the server exits.
func startProcess(cmd *exec.Cmd, out *tailBuffer) (*process, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdin = r
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	r.Close() // the child has its copy
	p := &process{cmd: cmd, stdin: w, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop ends the process by PID: SIGTERM to its process group, then
// SIGKILL after a grace period.
func (p *process) stop() {
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
	}
	p.stdin.Close()
}

// kill ends the process group at once (SIGKILL), as a crash would.
func (p *process) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	p.stdin.Close()
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
