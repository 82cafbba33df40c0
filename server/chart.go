package server

import (
	"strconv"
	"strings"
	"time"

	"github.com/seatsync/seatsync/store"
)

// Chart size, in the SVG's own units: the page scales it to the width it
// has (preserveAspectRatio none), so it never makes the page scroll.
const (
	chartW = 300
	chartH = 60
)

// chartView is a pool's seat history as the status page draws it: an
// inline SVG of used seats and the limit over time.
type chartView struct {
	Name string // the pool's
	W, H int
	// Used and Limit are SVG polyline points ("x,y x,y ..."); Limit is ""
	// when the pool was unlimited throughout.
	Used, Limit string
	// Max is the top of the scale; From and To the times at either end.
	Max      int
	From, To time.Time
	Points   int
	Label    string // for screen readers
}

// newChart draws the rows of pool name (a seat history, oldest first);
// nil when there are none. One row is drawn as a flat line across.
func newChart(rows []store.SeatRow, name string) *chartView {
	var pts []store.SeatRow
	for _, r := range rows {
		if r.Kind == store.SeatKindPool && r.Name == name {
			pts = append(pts, r)
		}
	}
	if len(pts) == 0 {
		return nil
	}
	c := &chartView{Name: name, W: chartW, H: chartH, From: pts[0].At, To: pts[len(pts)-1].At, Points: len(pts), Max: 1}
	for _, p := range pts {
		c.Max = max(c.Max, p.Used)
		if !p.Unlimited {
			c.Max = max(c.Max, p.Limit)
		}
	}
	span := c.To.Sub(c.From)
	x := func(i int) float64 {
		if span <= 0 {
			if i == len(pts) { // the far end of a single reading
				return chartW
			}
			return 0
		}
		return float64(pts[min(i, len(pts)-1)].At.Sub(c.From)) / float64(span) * chartW
	}
	// Leave a pixel at top and bottom so a line on the edge shows whole.
	y := func(v int) float64 { return 1 + (1-float64(v)/float64(c.Max))*(chartH-2) }
	var used, limit strings.Builder
	add := func(b *strings.Builder, x, y float64) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(x, 'f', 1, 64))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(y, 'f', 1, 64))
	}
	limited := false
	for i, p := range pts {
		add(&used, x(i), y(p.Used))
		if p.Unlimited {
			continue
		}
		limited = true
		// A step: the limit holds until the run that saw a new one.
		if i > 0 && !pts[i-1].Unlimited && pts[i-1].Limit != p.Limit {
			add(&limit, x(i), y(pts[i-1].Limit))
		}
		add(&limit, x(i), y(p.Limit))
	}
	if span <= 0 {
		last := pts[len(pts)-1]
		add(&used, x(len(pts)), y(last.Used))
		if !last.Unlimited {
			add(&limit, x(len(pts)), y(last.Limit))
		}
	}
	c.Used = used.String()
	if limited {
		c.Limit = limit.String()
	}
	last := pts[len(pts)-1]
	c.Label = "Seats of " + name + " over " + strconv.Itoa(len(pts)) + " runs: " + strconv.Itoa(last.Used) + " used"
	if !last.Unlimited {
		c.Label += " of " + strconv.Itoa(last.Limit)
	}
	return c
}
