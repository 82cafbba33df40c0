// Package smallfile reads the small files a configuration names (the
// configuration itself, secrets, keys, CA certificates) so that a wrong
// name can neither hang seatsync nor fill its memory.
//
// A name can point at a named pipe (open(2) waits for a writer, and no
// signal-aware context can interrupt it), a device, or a file far larger
// than anything seatsync expects. Read opens with O_NONBLOCK, so opening a
// pipe or device returns at once, then checks the opened descriptor with
// fstat: there is no window between a check and the open in which the
// name could be swapped. Symbolic links are followed, so a Kubernetes
// secret mount (a chain of links to a regular file) is fine.
package smallfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

var (
	// ErrNotRegular is returned for a name that is not a regular file (a
	// named pipe, a socket, a device, a directory).
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge is returned for a file over the limit.
	ErrTooLarge = errors.New("over the size limit")
)

// Read returns the content of the regular file name, which must hold at
// most limit bytes. kind names the file in messages ("a secret file",
// "a configuration file"). A file over the limit is refused from its size,
// without being read; one that grows while it is read is refused after at
// most limit+1 bytes.
//
// Errors name the file and say what is wrong with it, such as
// "/run/secrets/token is a named pipe, not a regular file" or
// "/etc/seatsync/seatsync.yaml is 104857600 bytes, over the 1 MiB limit
// for a configuration file"; they never quote the content.
func Read(name string, limit int64, kind string) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		// Opening a socket fails (ENXIO) rather than opening it: say what
		// it is. The name is looked at again only to word the message.
		if fi, serr := os.Stat(name); serr == nil && !fi.Mode().IsRegular() {
			return nil, notRegular(name, fi.Mode())
		}
		return nil, fmt.Errorf("cannot read %s: %w", name, unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", name, unwrapPath(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, notRegular(name, fi.Mode())
	}
	if fi.Size() > limit {
		return nil, &fileError{fmt.Sprintf("%s is %d bytes, over the %s limit for %s", name, fi.Size(), Size(limit), kind), ErrTooLarge}
	}
	// The size is a hint (files under /proc report 0; a file may grow):
	// read one byte past the limit to tell.
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", name, unwrapPath(err))
	}
	if int64(len(b)) > limit {
		return nil, &fileError{fmt.Sprintf("%s is over the %s limit for %s", name, Size(limit), kind), ErrTooLarge}
	}
	return b, nil
}

func notRegular(name string, m fs.FileMode) error {
	return &fileError{fmt.Sprintf("%s is %s, not a regular file", name, describe(m)), ErrNotRegular}
}

// fileError is a message that reads well on its own, matching one of the
// sentinels for errors.Is.
type fileError struct {
	msg  string
	kind error
}

func (e *fileError) Error() string { return e.msg }
func (e *fileError) Unwrap() error { return e.kind }

// describe names a file's type for messages.
func describe(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	default:
		return "a special file"
	}
}

// Size writes a limit the way the documentation does: "64 KiB", "1 MiB",
// or a number of bytes.
func Size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// unwrapPath drops the *fs.PathError layer, whose text repeats the file
// name the message already gives.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
