package csv

import "io"

// bufSize is the size of the buffer between the file and the parser.
const bufSize = 64 << 10

// file is what a pull reads: the file in order, and by offset to look at
// one line again.
type file interface {
	io.Reader
	io.ReaderAt
}

// tracker sits between the file and the buffered reader the parser reads
// from, so it sees every byte of the file once and in order. It remembers
// the last byte: did the file end with a line break?
type tracker struct {
	r    io.Reader
	read int64 // bytes passed on
	last byte  // the last byte passed on
	eof  bool  // the file said io.EOF
}

func (t *tracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err == io.EOF {
		t.eof = true
	}
	if n > 0 {
		t.read += int64(n)
		t.last = p[n-1]
	}
	return n, err
}

// endsWithNewline reports whether the file, read to its end, ended with a
// line break.
func (t *tracker) endsWithNewline() bool { return t.last == '\n' }
