package reconcile

import (
	"slices"

	"github.com/seatsync/seatsync/internal/jsontext"
)

// Fields are a change's changed fields by name. Reports of big first syncs
// carry hundreds of thousands of them, so they encode themselves to JSON
// without reflection.
type Fields map[string]FieldChange

// MarshalJSON writes {"name": {"old": ..., "new": ...}, ...} with sorted
// names, as encoding/json would.
func (f Fields) MarshalJSON() ([]byte, error) {
	if f == nil {
		return []byte("null"), nil
	}
	names := make([]string, 0, len(f))
	for k := range f {
		names = append(names, k)
	}
	slices.Sort(names)
	b := make([]byte, 0, 48*len(f)+2)
	b = append(b, '{')
	for i, k := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsontext.AppendString(b, k, true)
		b = append(b, `:{"old":`...)
		b = appendValue(b, f[k].Old)
		b = append(b, `,"new":`...)
		b = appendValue(b, f[k].New)
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// appendValue encodes the values a FieldChange holds: nil, a string or a
// list of strings.
func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return jsontext.AppendString(b, v, true)
	case []string:
		return jsontext.AppendStrings(b, v, true)
	}
	return jsontext.AppendString(b, "", true)
}
