// Package lockholder names the holder of a store's run lock so that a
// later process can tell whether that holder still exists.
//
// A holder reads "RUN@HOST/PID/START": the run's ID, the host name, the
// process ID and the process's start time in clock ticks since boot (from
// /proc/PID/stat; empty where there is no /proc). The start time tells a
// dead process from a new one that was given its PID, such as a
// container's PID 1 after a restart.
package lockholder

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

type answer int

const (
	unknown answer = iota
	yes
	no
)

// Holder is one process's claim on the run lock.
type Holder struct {
	RunID string
	Host  string
	PID   int
	Start string // process start time, "" when unknown
}

// Self is the holder for a run of this process.
func Self(runID string) Holder {
	pid := os.Getpid()
	return Holder{RunID: runID, Host: hostname(), PID: pid, Start: startTime(pid)}
}

func (h Holder) String() string {
	return fmt.Sprintf("%s@%s/%d/%s", h.RunID, h.Host, h.PID, h.Start)
}

// Parse reads a holder written by String. Holders written otherwise (by
// older versions, by tests, or by another kind of process) do not parse,
// and are never taken for gone.
func Parse(s string) (Holder, bool) {
	run, rest, ok := strings.Cut(s, "@")
	if !ok || run == "" {
		return Holder{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
		return Holder{}, false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return Holder{}, false
	}
	h := Holder{RunID: run, Host: parts[0], PID: pid}
	if len(parts) == 3 {
		h.Start = parts[2]
	}
	return h, true
}

// Gone reports whether h is a process on this host that no longer exists,
// and says why. Anything it cannot be sure of (another host, a process it
// may not signal but that exists) is not gone: the lock's TTL stands then.
func (h Holder) Gone() (bool, string) {
	if h.Host != hostname() {
		return false, ""
	}
	if h.PID == os.Getpid() {
		if h.Start != "" && h.Start != startTime(h.PID) {
			return true, fmt.Sprintf("process %d on %s was restarted since it took the lock", h.PID, h.Host)
		}
		return false, ""
	}
	switch exists(h.PID) {
	case no:
		return true, fmt.Sprintf("process %d on %s no longer exists", h.PID, h.Host)
	case unknown:
		return false, ""
	}
	if now := startTime(h.PID); h.Start != "" && now != "" && now != h.Start {
		return true, fmt.Sprintf("process %d on %s no longer exists (its PID now belongs to another process)", h.PID, h.Host)
	}
	return false, ""
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown-host"
	}
	return h
}

// startTime reads field 22 of /proc/PID/stat, the process's start time.
// The second field, the command name in parentheses, may itself hold
// spaces and parentheses, so fields are counted after its last ")".
func startTime(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(s[i+1:])
	const startField = 22 - 3 // fields[0] is field 3, the state
	if len(fields) <= startField {
		return ""
	}
	return fields[startField]
}
