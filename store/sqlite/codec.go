package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/seatsync/seatsync/internal/jsontext"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// Times are stored as INTEGER unix nanoseconds in UTC; the zero time is
// stored as NULL and read back as time.Time{}. Unix nanoseconds cover the
// years 1678 to 2262, so checkTime refuses anything outside 1678..2261
// rather than let it wrap around.

func checkTime(field string, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	if y := t.Year(); y < 1678 || y > 2261 {
		return fmt.Errorf("%s %s is outside the years 1678 to 2261 the store can hold", field, t.Format(time.RFC3339Nano))
	}
	return nil
}

// timeArg is the SQL argument for t: nil (NULL) for the zero time, unix
// nanoseconds otherwise. Call checkTime first.
func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// timeOf turns a stored value back into a UTC time.
func timeOf(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// Groups and attributes are JSON text. nil is stored as NULL and an empty
// slice or map as "[]" or "{}", so both read back exactly as they were
// written.

func groupsArg(g []string) any {
	if g == nil {
		return nil
	}
	return string(jsontext.AppendStrings(make([]byte, 0, 64), g, false))
}

func attributesArg(m map[string]string) any {
	if m == nil {
		return nil
	}
	return string(jsontext.AppendObject(make([]byte, 0, 64), m, false))
}

// decodeGroups reads a JSON array of strings. A compact array without
// escapes, as jsontext.AppendStrings writes for the usual group names, is split
// by hand, its strings sharing memory with the text; anything else goes
// through encoding/json.
func decodeGroups(ns sql.NullString) ([]string, error) {
	if !ns.Valid {
		return nil, nil
	}
	s := ns.String
	if s == "[]" {
		return []string{}, nil
	}
	if g, ok := splitStringArray(s); ok {
		return g, nil
	}
	var g []string
	if err := json.Unmarshal([]byte(s), &g); err != nil {
		return nil, fmt.Errorf("decode groups %q: %w", s, err)
	}
	return g, nil
}

// decodeAttributes reads a JSON object of strings, like decodeGroups.
func decodeAttributes(ns sql.NullString) (map[string]string, error) {
	if !ns.Valid {
		return nil, nil
	}
	s := ns.String
	if s == "{}" {
		return map[string]string{}, nil
	}
	if m, ok := splitStringObject(s); ok {
		return m, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode attributes %q: %w", s, err)
	}
	return m, nil
}

// plainString reads a JSON string without escapes starting at s[i] == '"'
// and returns its contents and the index just past the closing quote. ok
// is false if the string has an escape or control character, or is not
// terminated.
func plainString(s string, i int) (v string, next int, ok bool) {
	if i >= len(s) || s[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			return s[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return "", 0, false
		}
	}
	return "", 0, false
}

// splitStringArray parses a compact JSON array of strings without escapes,
// ["a","b"]. ok is false for anything else.
func splitStringArray(s string) ([]string, bool) {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' || !utf8.ValidString(s) {
		return nil, false
	}
	out := make([]string, 0, strings.Count(s, `","`)+1)
	i := 1
	for {
		v, next, ok := plainString(s, i)
		if !ok {
			return nil, false
		}
		out = append(out, v)
		switch {
		case next == len(s)-1:
			return out, true
		case s[next] == ',':
			i = next + 1
		default:
			return nil, false
		}
	}
}

// splitStringObject parses a compact JSON object of strings without
// escapes, {"k":"v","k2":"v2"}. ok is false for anything else.
func splitStringObject(s string) (map[string]string, bool) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' || !utf8.ValidString(s) {
		return nil, false
	}
	out := make(map[string]string, strings.Count(s, `":"`))
	i := 1
	for {
		k, next, ok := plainString(s, i)
		if !ok || next >= len(s) || s[next] != ':' {
			return nil, false
		}
		v, next, ok := plainString(s, next+1)
		if !ok {
			return nil, false
		}
		out[k] = v
		switch {
		case next == len(s)-1:
			return out, true
		case s[next] == ',':
			i = next + 1
		default:
			return nil, false
		}
	}
}

func profileFromJSON(ns sql.NullString) (*model.Profile, error) {
	if !ns.Valid {
		return nil, nil
	}
	return store.ProfileFromJSON([]byte(ns.String))
}

// Run reports are stored gzip-compressed (store.GzipReport) in
// runs.report_gzip: stored as text, SQLite would copy a first sync's 40 MB
// several times over (binding, building the row, the pages), outside the
// Go heap. Reports saved before schema version 3 are text in runs.report.

// rawJSONArg stores a json.RawMessage: NULL for nil. It refuses text that
// is not JSON, as a PostgreSQL jsonb column would.
func rawJSONArg(field string, m json.RawMessage) (any, error) {
	if m == nil {
		return nil, nil
	}
	if !json.Valid(m) {
		return nil, fmt.Errorf("%s is not valid JSON", field)
	}
	return string(m), nil
}

func rawJSONOf(ns sql.NullString) json.RawMessage {
	if !ns.Valid {
		return nil
	}
	return json.RawMessage(ns.String)
}
