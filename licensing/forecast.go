package licensing

import (
	"fmt"
	"math"
	"time"
)

// ForecastWindow is how far back Forecast looks: the growth of the last
// 30 days.
const ForecastWindow = 30 * 24 * time.Hour

// Point is a pool's used seats at one time (one run of the seat
// history).
type Point struct {
	At   time.Time
	Used int
}

// Forecast says in how many days a pool fills at the current rate: when
// its used seats reach limit (the seats it can hand out; pass a negative
// limit for an unlimited pool).
//
// The rate is the least-squares slope of used over time, in seats a day,
// fitted to the points of history within ForecastWindow before now (later
// points are ignored); a least-squares fit rather than the first and last
// points, so one odd run at either end does not swing it. The days are
// counted from the newest of those points: (limit − its used) / slope.
//
// There is no forecast (ok false) for an unlimited pool, one already
// full, fewer than 2 points, points spanning less than a day, or a pool
// that is not growing (a slope of zero or less).
func Forecast(history []Point, limit int, now time.Time) (days float64, ok bool) {
	if limit < 0 {
		return 0, false
	}
	from := now.Add(-ForecastWindow)
	var pts []Point
	for _, p := range history {
		if !p.At.Before(from) && !p.At.After(now) {
			pts = append(pts, p)
		}
	}
	if len(pts) < 2 {
		return 0, false
	}
	first, last := pts[0], pts[0]
	for _, p := range pts[1:] {
		if p.At.Before(first.At) {
			first = p
		}
		if !p.At.Before(last.At) {
			last = p
		}
	}
	if last.At.Sub(first.At) < 24*time.Hour || last.Used >= limit {
		return 0, false
	}
	// x is days since the first point: small numbers, no loss of
	// precision.
	var sx, sy, sxx, sxy float64
	n := float64(len(pts))
	for _, p := range pts {
		x := p.At.Sub(first.At).Hours() / 24
		y := float64(p.Used)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0, false
	}
	slope := (n*sxy - sx*sy) / den
	if slope <= 1e-9 {
		return 0, false
	}
	return float64(limit-last.Used) / slope, true
}

// FillForecast is a Forecast as reports show it.
type FillForecast struct {
	FullInDays float64 `json:"full_in_days"` // to a tenth of a day
	Text       string  `json:"text"`         // "at the current rate, primary is full in about 12 days"
}

// Fill is Forecast for pool name (limit: the seats it can hand out), as
// a FillForecast; nil without a forecast.
func Fill(name string, history []Point, limit int, now time.Time) *FillForecast {
	days, ok := Forecast(history, limit, now)
	if !ok {
		return nil
	}
	return &FillForecast{FullInDays: math.Round(days*10) / 10, Text: ForecastText(name, days)}
}

// ForecastText says a forecast in words: "at the current rate, primary is
// full in about 12 days".
func ForecastText(pool string, days float64) string {
	if days < 1 {
		return fmt.Sprintf("at the current rate, %s is full within a day", pool)
	}
	n := int(math.Round(days))
	unit := "days"
	if n == 1 {
		unit = "day"
	}
	return fmt.Sprintf("at the current rate, %s is full in about %d %s", pool, n, unit)
}
