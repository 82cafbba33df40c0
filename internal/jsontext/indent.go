package jsontext

import (
	"bufio"
	"io"
)

// Indenter writes the compact JSON written to it indented, as json.Indent
// with prefix "" and indent "  " does, as it comes: json.Indent needs the
// whole document, and a first sync's report is tens of megabytes, held
// twice (compact and indented) to be printed. The input must be valid
// compact JSON (as encoding/json writes it); Close writes what is left.
type Indenter struct {
	w      *bufio.Writer
	depth  int
	inStr  bool
	escape bool
	// open is the '{' or '[' just written, whose newline waits to see
	// whether the value is empty ({} and [] stay as they are).
	open byte
}

// NewIndenter returns an Indenter writing to w.
func NewIndenter(w io.Writer) *Indenter {
	return &Indenter{w: bufio.NewWriterSize(w, 64<<10)}
}

func (d *Indenter) newline() {
	d.w.WriteByte('\n')
	for range d.depth {
		d.w.WriteString("  ")
	}
}

// Write indents p.
func (d *Indenter) Write(p []byte) (int, error) {
	for _, c := range p {
		if d.inStr {
			d.w.WriteByte(c)
			switch {
			case d.escape:
				d.escape = false
			case c == '\\':
				d.escape = true
			case c == '"':
				d.inStr = false
			}
			continue
		}
		if d.open != 0 {
			d.open = 0
			if c == '}' || c == ']' {
				d.depth--
				d.w.WriteByte(c)
				continue
			}
			d.newline()
		}
		switch c {
		case '"':
			d.inStr = true
			d.w.WriteByte(c)
		case '{', '[':
			d.w.WriteByte(c)
			d.depth++
			d.open = c
		case '}', ']':
			d.depth--
			d.newline()
			d.w.WriteByte(c)
		case ',':
			d.w.WriteByte(c)
			d.newline()
		case ':':
			d.w.WriteString(": ")
		case ' ', '\t', '\n', '\r':
			// compact input has none outside strings
		default:
			d.w.WriteByte(c)
		}
	}
	return len(p), nil
}

// Close writes out what is buffered.
func (d *Indenter) Close() error { return d.w.Flush() }
