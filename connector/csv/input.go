package csv

import (
	"bytes"
	"hash"
	"io"
)

// bufSize is the size of the buffer between the file and the parser.
const bufSize = 64 << 10

// rowLimit is the most bytes one physical line, or one record spread over
// several lines, may take in a file whose header has columns columns:
// 4 × columns × maxField, and never less than 1 MiB. A row whose every
// cell is within maxField is always shorter: a cell takes at most twice
// its length once quoted (every " doubled, or every line break written
// \r\n), plus its quotes and delimiter. Before the header is read,
// columns is 1.
func rowLimit(columns, maxField int) int64 {
	return max(1<<20, 4*int64(columns)*int64(maxField))
}

// file is what a pull reads: the file in order, and by offset to look at
// one line again.
type file interface {
	io.Reader
	io.ReaderAt
}

// tracker sits between the file and the buffered reader the parser reads
// from, so it sees every byte of the file once and in order. It remembers
// the last byte (did the file end with a line break?), counts physical
// lines, and stops the read, with an error that stays, when a line or the
// record being parsed grows past limit, so that no absurd input is read
// into memory whole.
type tracker struct {
	r     io.Reader
	limit int64 // rowLimit; raised once the header is known
	// sum, when set, is fed every byte passed on: the content hash of a
	// file read to its end, computed in the same pass as the parse.
	sum hash.Hash

	read    int64 // bytes passed on
	lines   int   // line breaks passed on
	lineLen int64 // bytes of the current line so far
	last    byte  // the last byte passed on
	eof     bool  // the file said io.EOF

	// rowStart is the offset where the record being parsed starts; the
	// reader sets it before each record. The buffer may hold bytes of
	// the record not parsed yet, so a record only counts as too long
	// once more than limit+bufSize bytes were passed on since rowStart:
	// it has then certainly taken more than limit.
	rowStart int64

	err *overLimit
}

// overLimit is why the tracker stopped the read.
type overLimit struct {
	line int  // the physical line it stopped on, 1-based
	row  bool // false: that line is too long; true: the record is
}

func (e *overLimit) Error() string { return "over the size limit" }

func (t *tracker) Read(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	n, err := t.r.Read(p)
	if err == io.EOF {
		t.eof = true
	}
	if n == 0 {
		return 0, err
	}
	t.read += int64(n)
	t.last = p[n-1]
	if t.sum != nil {
		t.sum.Write(p[:n]) // a hash.Hash never fails
	}
	for b := p[:n]; ; {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			t.lineLen += int64(len(b))
			break
		}
		if t.lineLen+int64(i) > t.limit {
			t.err = &overLimit{line: t.lines + 1}
			return 0, t.err
		}
		t.lines++
		t.lineLen = 0
		b = b[i+1:]
	}
	switch {
	case t.lineLen > t.limit:
		t.err = &overLimit{line: t.lines + 1}
	case t.read-t.rowStart > t.limit+bufSize:
		t.err = &overLimit{line: t.lines + 1, row: true}
	}
	if t.err != nil {
		return 0, t.err
	}
	return n, err
}

// endsWithNewline reports whether the file, read to its end, ended with a
// line break.
func (t *tracker) endsWithNewline() bool { return t.last == '\n' }
