package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The scalar types below are written in YAML as one value each. Their
// parseScalar methods are used by the decoder; their String and
// MarshalJSON methods print them the way they are written in the file, so
// reports and `validate` output read like the configuration.

// scalarParser is implemented by the pointer of every custom scalar type.
// The decoder hands it the scalar's text after ${VAR} expansion; an error
// becomes a Problem at the scalar's path and line.
type scalarParser interface {
	parseScalar(s string) error
}

// parseScalar reads a number or "unlimited".
func (l *Limit) parseScalar(s string) error {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "unlimited") {
		*l = Limit{Unlimited: true}
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a number of seats (0 or more) or \"unlimited\"", s)
	}
	*l = Limit{N: n}
	return nil
}

// String returns "unlimited" or the number.
func (l Limit) String() string {
	if l.Unlimited {
		return "unlimited"
	}
	return strconv.Itoa(l.N)
}

// MarshalJSON writes the number, or the string "unlimited".
func (l Limit) MarshalJSON() ([]byte, error) {
	if l.Unlimited {
		return []byte(`"unlimited"`), nil
	}
	return []byte(strconv.Itoa(l.N)), nil
}

// parseScalar reads a count ("500") or a percentage ("10%").
func (t *Threshold) parseScalar(s string) error {
	s = strings.TrimSpace(s)
	if num, ok := strings.CutSuffix(s, "%"); ok {
		p, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || math.IsNaN(p) || p < 0 || p > 100 {
			return fmt.Errorf("%q is not a percentage from 0%% to 100%%", s)
		}
		*t = Threshold{Percent: true, Value: p, Set: true}
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a count (0 or more) or a percentage such as \"10%%\"", s)
	}
	*t = Threshold{Value: float64(n), Set: true}
	return nil
}

// Of returns how many items the threshold allows out of total.
//
// A count allows that many, whatever the total. A percentage allows
// floor(pct × total / 100), but at least 1 when total > 0 and pct > 0, so
// that "10%" of a source with 5 profiles still lets one person leave. A
// threshold that was never set (the zero value) allows 0; Load always sets
// one (the default is "10%").
func (t Threshold) Of(total int) int {
	if !t.Set || t.Value <= 0 {
		return 0
	}
	if !t.Percent {
		return int(t.Value)
	}
	if total <= 0 {
		return 0
	}
	n := int(math.Floor(t.Value * float64(total) / 100))
	if n < 1 {
		n = 1
	}
	return n
}

// String returns "10%" or "500", or "" when the threshold is not set.
func (t Threshold) String() string {
	switch {
	case !t.Set:
		return ""
	case t.Percent:
		return strconv.FormatFloat(t.Value, 'f', -1, 64) + "%"
	default:
		return strconv.FormatFloat(t.Value, 'f', -1, 64)
	}
}

// MarshalJSON writes a count as a number and a percentage as a string
// ("10%"); an unset threshold is null.
func (t Threshold) MarshalJSON() ([]byte, error) {
	switch {
	case !t.Set:
		return []byte("null"), nil
	case t.Percent:
		return json.Marshal(t.String())
	default:
		return []byte(t.String()), nil
	}
}

// ParseDays reads a period as store.retention takes it: a number of days
// ("30d") or a Go duration ("720h").
func ParseDays(s string) (Days, error) {
	var d Days
	err := d.parseScalar(s)
	return d, err
}

// parseScalar reads a number of days ("90d") or a Go duration such as
// "90s", "15m" or "720h".
func (d *Days) parseScalar(s string) error {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 1 {
			return fmt.Errorf("%q is not a number of days such as 90d", s)
		}
		d.Duration = time.Duration(days) * 24 * time.Hour
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("%q is not a period such as 90d or 720h", s)
	}
	d.Duration = v
	return nil
}

func (d *Duration) parseScalar(s string) error {
	s = strings.TrimSpace(s)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 90s, 15m or 720h (units: ns, us, ms, s, m, h)", s)
	}
	if v < 0 {
		return fmt.Errorf("%q is negative", s)
	}
	d.Duration = v
	return nil
}

// String returns the duration as Go prints it ("30s", "720h0m0s").
func (d Duration) String() string { return d.Duration.String() }

// MarshalJSON writes the duration as a string ("30s").
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// parseScalar reads "50%" or a bare number, both read as percent, in (0, 100].
func (p *Percent) parseScalar(s string) error {
	s = strings.TrimSpace(s)
	num := strings.TrimSpace(strings.TrimSuffix(s, "%"))
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || v <= 0 || v > 100 {
		return fmt.Errorf("%q is not a percentage above 0%% and up to 100%%", s)
	}
	*p = Percent{Value: v, Set: true}
	return nil
}

// Fraction returns the share as a fraction of 1 (50% is 0.5).
func (p Percent) Fraction() float64 { return p.Value / 100 }

// String returns "50%", or "" when not set.
func (p Percent) String() string {
	if !p.Set {
		return ""
	}
	return strconv.FormatFloat(p.Value, 'f', -1, 64) + "%"
}

// MarshalJSON writes the share as a string ("50%"); unset is null.
func (p Percent) MarshalJSON() ([]byte, error) {
	if !p.Set {
		return []byte("null"), nil
	}
	return json.Marshal(p.String())
}
