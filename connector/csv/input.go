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
