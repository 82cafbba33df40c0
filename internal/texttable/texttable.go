// Package texttable writes the aligned tables of seatsync's text output:
// columns padded by text/tabwriter, cells capped so that one huge value
// (a 5 MB first name) cannot make every line that wide, and no trailing
// spaces.
package texttable

import (
	"bytes"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// MaxCell is the widest a cell is printed, in characters; a longer one is
// cut and ends with "…".
const MaxCell = 60

// Cell caps s at MaxCell characters, and turns the tabs and line breaks
// in it (which would break the table) into spaces.
func Cell(s string) string {
	if strings.ContainsAny(s, "\t\n\r") {
		s = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, s)
	}
	if utf8.RuneCountInString(s) <= MaxCell {
		return s
	}
	n := 0
	for i := range s {
		if n == MaxCell-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// New returns a tabwriter on w as the tables use it; Flush it after the
// rows. Cells are written separated by tabs, each through Cell.
func New(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(&trimmer{w: w}, 0, 4, 2, ' ', 0)
}

// trimmer drops the spaces tabwriter leaves before a line end (the
// padding of empty last cells).
type trimmer struct {
	w       io.Writer
	pending []byte // spaces not written yet: they may end a line
}

func (t *trimmer) Write(p []byte) (int, error) {
	n := len(p)
	var out []byte
	for len(p) > 0 {
		i := bytes.IndexAny(p, " \n")
		if i < 0 {
			out = append(append(out, t.pending...), p...)
			t.pending = t.pending[:0]
			break
		}
		if i > 0 {
			out = append(append(out, t.pending...), p[:i]...)
			t.pending = t.pending[:0]
		}
		if p[i] == '\n' {
			t.pending = t.pending[:0]
			out = append(out, '\n')
		} else {
			t.pending = append(t.pending, ' ')
		}
		p = p[i+1:]
	}
	if len(out) > 0 {
		if _, err := t.w.Write(out); err != nil {
			return 0, err
		}
	}
	return n, nil
}
