//go:build unix

package lockholder

import (
	"errors"
	"syscall"
)

// exists asks the kernel whether a process with pid exists: signal 0
// checks without sending anything. EPERM means it exists and is another
// user's.
func exists(pid int) answer {
	switch err := syscall.Kill(pid, 0); {
	case err == nil, errors.Is(err, syscall.EPERM):
		return yes
	case errors.Is(err, syscall.ESRCH):
		return no
	}
	return unknown
}
