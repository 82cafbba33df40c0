package licensing

import (
	"math"
	"testing"
	"time"
)

var forecastNow = time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)

// daily returns one point a day, the last at forecastNow, with the used
// seats given oldest first.
func daily(used ...int) []Point {
	out := make([]Point, len(used))
	for i, u := range used {
		out[i] = Point{At: forecastNow.Add(-time.Duration(len(used)-1-i) * 24 * time.Hour), Used: u}
	}
	return out
}

func TestForecast(t *testing.T) {
	tests := []struct {
		name    string
		history []Point
		limit   int
		days    float64
		ok      bool
	}{
		{"grows one a day", daily(10, 11, 12, 13, 14), 26, 12, true},
		{"grows two a day", daily(0, 2, 4, 6), 16, 5, true},
		{"grows unevenly, fitted", daily(10, 12, 11, 13, 14), 24, 10.0 / 0.9, true},
		{"flat", daily(20, 20, 20, 20), 30, 0, false},
		{"shrinks", daily(20, 18, 17, 15), 30, 0, false},
		{"unlimited", daily(1, 2, 3), -1, 0, false},
		{"already full", daily(8, 9, 10), 10, 0, false},
		{"one point", daily(5), 10, 0, false},
		{"no points", nil, 10, 0, false},
		{"less than a day", []Point{{forecastNow.Add(-time.Hour), 1}, {forecastNow, 5}}, 10, 0, false},
		{"only the last 30 days count", append([]Point{{forecastNow.Add(-90 * 24 * time.Hour), 100}}, daily(10, 11, 12)...), 20, 8, true},
		{"later points are ignored", append(daily(10, 11, 12), Point{forecastNow.Add(48 * time.Hour), 0}), 20, 8, true},
		{"unordered", []Point{{forecastNow, 14}, {forecastNow.Add(-96 * time.Hour), 10}, {forecastNow.Add(-48 * time.Hour), 12}}, 20, 6, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			days, ok := Forecast(tc.history, tc.limit, forecastNow)
			if ok != tc.ok || math.Abs(days-tc.days) > 1e-6 {
				t.Errorf("Forecast = %.4f, %v; want %.4f, %v", days, ok, tc.days, tc.ok)
			}
		})
	}
}

func TestForecastText(t *testing.T) {
	for days, want := range map[float64]string{
		12.4: "at the current rate, primary is full in about 12 days",
		1.2:  "at the current rate, primary is full in about 1 day",
		0.3:  "at the current rate, primary is full within a day",
	} {
		if got := ForecastText("primary", days); got != want {
			t.Errorf("ForecastText(%v) = %q, want %q", days, got, want)
		}
	}
}
