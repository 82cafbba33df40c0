package smallfile

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	small := file("small", "s3cret\n")
	if b, err := Read(small, 64, "a secret file"); err != nil || string(b) != "s3cret\n" {
		t.Errorf("a small file: %q, %v", b, err)
	}
	// Exactly at the limit is fine; one byte more is not.
	if b, err := Read(file("exact", strings.Repeat("x", 64)), 64, "a secret file"); err != nil || len(b) != 64 {
		t.Errorf("a file of exactly the limit: %d bytes, %v", len(b), err)
	}
	big := file("big", strings.Repeat("x", 70000))
	_, err := Read(big, 64<<10, "a secret file")
	if want := big + " is 70000 bytes, over the 64 KiB limit for a secret file"; err == nil || err.Error() != want {
		t.Errorf("a big file: %v, want %q", err, want)
	}
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("a big file: %v is not ErrTooLarge", err)
	}

	// A symbolic link to a regular file is read, as Kubernetes mounts
	// secrets: ..data/token through a link.
	link := filepath.Join(dir, "link")
	if err := os.Symlink(small, link); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(link, 64, "a secret file"); err != nil || string(b) != "s3cret\n" {
		t.Errorf("a link to a regular file: %q, %v", b, err)
	}

	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	fifoLink := filepath.Join(dir, "fifo-link")
	if err := os.Symlink(fifo, fifoLink); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct{ name, want string }{
		// Without O_NONBLOCK, opening the pipe would wait for a writer
		// forever and this test would hang.
		{fifo, fifo + " is a named pipe, not a regular file"},
		{fifoLink, fifoLink + " is a named pipe, not a regular file"},
		{dir, dir + " is a directory, not a regular file"},
		{sock, sock + " is a socket, not a regular file"},
		{"/dev/null", "/dev/null is a character device, not a regular file"},
	} {
		_, err := Read(tc.name, 64, "a secret file")
		if err == nil || err.Error() != tc.want || !errors.Is(err, ErrNotRegular) {
			t.Errorf("Read(%s): %v, want %q (ErrNotRegular)", tc.name, err, tc.want)
		}
	}

	missing := filepath.Join(dir, "missing")
	_, err = Read(missing, 64, "a secret file")
	if want := "cannot read " + missing + ": no such file or directory"; err == nil || err.Error() != want || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v, want %q (fs.ErrNotExist)", err, want)
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{64 << 10: "64 KiB", 1 << 20: "1 MiB", 1000: "1000 bytes", 1536: "1536 bytes"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
