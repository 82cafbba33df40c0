package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressLine shows how far the pulls have got on one line of a terminal,
// redrawn at most every interval. Reports and logs are untouched: it only
// ever writes to the terminal it was given, and clears its line when done.
type progressLine struct {
	w        io.Writer
	interval time.Duration
	now      func() time.Time

	mu     sync.Mutex
	order  []string
	counts map[string][2]int // source -> identities, pages
	last   time.Time
	shown  bool
}

func newProgressLine(w io.Writer) *progressLine {
	return &progressLine{w: w, interval: 200 * time.Millisecond, now: time.Now, counts: map[string][2]int{}}
}

// update is a reconcile.Runner Progress function.
func (p *progressLine) update(source string, identities, pages int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.counts[source]; !ok {
		p.order = append(p.order, source)
	}
	p.counts[source] = [2]int{identities, pages}
	if now := p.now(); now.Sub(p.last) >= p.interval {
		p.last = now
		p.draw()
	}
}

func (p *progressLine) draw() {
	parts := make([]string, 0, len(p.order))
	for _, s := range p.order {
		c := p.counts[s]
		part := fmt.Sprintf("%s %s identities", s, thousands(c[0]))
		if c[1] > 0 {
			part += fmt.Sprintf(", %d pages", c[1])
		}
		parts = append(parts, part)
	}
	fmt.Fprintf(p.w, "\r\x1b[Kpulling: %s", strings.Join(parts, " · "))
	p.shown = true
}

// done clears the progress line.
func (p *progressLine) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}

// thousands writes n with thousands separators: 12,345.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
