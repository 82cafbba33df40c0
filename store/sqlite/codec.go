package sqlite

import (
	"bytes"
	"compress/gzip"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
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
	return string(appendJSONObject(make([]byte, 0, 64), m))
}

// appendJSONObject appends m as a JSON object with sorted keys.
func appendJSONObject(b []byte, m map[string]string) []byte {
	var buf [16]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsontext.AppendString(b, k, false)
		b = append(b, ':')
		b = jsontext.AppendString(b, m[k], false)
	}
	return append(b, '}')
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

// auditProfile is the JSON form of a profile a pending push keeps as the
// last state of a profile that is gone (and the audit log kept, in the
// whole copies of its older entries: store/audit.go reads those), as
// appendProfileJSON writes it. Unlike model.Profile's own JSON it keeps ID
// and Version, and nil versus empty groups and attributes, so it reads
// back exactly as it was written.
type auditProfile struct {
	ID          int64             `json:"id"`
	Version     int64             `json:"version"`
	Username    string            `json:"username"`
	Email       string            `json:"email"`
	GivenName   string            `json:"given_name"`
	FamilyName  string            `json:"family_name"`
	DisplayName string            `json:"display_name"`
	Title       string            `json:"title"`
	Department  string            `json:"department"`
	Groups      []string          `json:"groups"`
	Attributes  map[string]string `json:"attributes"`
	Area        string            `json:"area"`
	State       model.State       `json:"state"`
	BlockReason model.Reason      `json:"block_reason"`
	Source      string            `json:"source"`
	ExternalID  string            `json:"external_id"`
	QueuedAt    time.Time         `json:"queued_at,omitzero"`
	ActivatedAt time.Time         `json:"activated_at,omitzero"`
	BlockedAt   time.Time         `json:"blocked_at,omitzero"`
	CreatedAt   time.Time         `json:"created_at,omitzero"`
	UpdatedAt   time.Time         `json:"updated_at,omitzero"`
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// appendProfileJSON appends p in the JSON form of the audit log, which
// auditProfile reads back; fields with zero values are left out, except
// that empty Groups and Attributes are kept apart from nil ones.
func appendProfileJSON(b []byte, p *model.Profile) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, p.ID, 10)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, p.Version, 10)
	for _, f := range [...]struct{ key, value string }{
		{"username", p.Username}, {"email", p.Email}, {"given_name", p.GivenName},
		{"family_name", p.FamilyName}, {"display_name", p.DisplayName}, {"title", p.Title},
		{"department", p.Department}, {"area", p.Area}, {"state", string(p.State)},
		{"block_reason", string(p.BlockReason)}, {"source", p.Source}, {"external_id", p.ExternalID},
	} {
		if f.value != "" {
			b = append(b, ',', '"')
			b = append(b, f.key...)
			b = append(b, '"', ':')
			b = jsontext.AppendString(b, f.value, false)
		}
	}
	if p.Groups != nil {
		b = append(b, `,"groups":`...)
		b = jsontext.AppendStrings(b, p.Groups, false)
	}
	if p.Attributes != nil {
		b = append(b, `,"attributes":`...)
		b = appendJSONObject(b, p.Attributes)
	}
	for _, f := range [...]struct {
		key string
		t   time.Time
	}{
		{"queued_at", p.QueuedAt}, {"activated_at", p.ActivatedAt}, {"blocked_at", p.BlockedAt},
		{"created_at", p.CreatedAt}, {"updated_at", p.UpdatedAt},
	} {
		if !f.t.IsZero() {
			b = append(b, ',', '"')
			b = append(b, f.key...)
			b = append(b, '"', ':', '"')
			b = f.t.UTC().AppendFormat(b, time.RFC3339Nano)
			b = append(b, '"')
		}
	}
	return append(b, '}')
}

func profileFromJSON(ns sql.NullString) (*model.Profile, error) {
	if !ns.Valid {
		return nil, nil
	}
	var a auditProfile
	if err := json.Unmarshal([]byte(ns.String), &a); err != nil {
		return nil, err
	}
	return &model.Profile{
		ID: a.ID, Version: a.Version, Username: a.Username, Email: a.Email,
		GivenName: a.GivenName, FamilyName: a.FamilyName, DisplayName: a.DisplayName,
		Title: a.Title, Department: a.Department, Groups: a.Groups, Attributes: a.Attributes,
		Area: a.Area, State: a.State, BlockReason: a.BlockReason, Source: a.Source,
		ExternalID: a.ExternalID, QueuedAt: utc(a.QueuedAt), ActivatedAt: utc(a.ActivatedAt),
		BlockedAt: utc(a.BlockedAt), CreatedAt: utc(a.CreatedAt), UpdatedAt: utc(a.UpdatedAt),
	}, nil
}

// Run reports are stored gzip-compressed, at gzip.BestSpeed, in
// runs.report_gzip. The report of a first sync of 100,000 people is about
// 40 MB of JSON and compresses to under 3 MB; stored as text, SQLite would
// copy all of it several times over (binding, building the row, the
// pages), outside the Go heap. Reports saved before schema version 3 are
// text in runs.report.

// gzipReport is what r.WriteReportGzip writes, or else compresses the
// report SaveRun is given: what r.WriteReport writes, which is taken as
// it is, or else r.Report, which must be JSON, as a PostgreSQL jsonb
// column would have it. It is nil when there is no report.
func gzipReport(r *store.Run) ([]byte, error) {
	if r.WriteReportGzip != nil {
		var buf bytes.Buffer
		if err := r.WriteReportGzip(&buf); err != nil {
			return nil, fmt.Errorf("write report: %w", err)
		}
		return buf.Bytes(), nil
	}
	write := r.WriteReport
	if write == nil {
		if r.Report == nil {
			return nil, nil
		}
		if !json.Valid(r.Report) {
			return nil, errors.New("report is not valid JSON")
		}
		write = func(w io.Writer) error {
			_, err := w.Write(r.Report)
			return err
		}
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if err := write(zw); err != nil {
		return nil, fmt.Errorf("write report: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress report: %w", err)
	}
	return buf.Bytes(), nil
}

// gunzipReport reads back a report gzipReport wrote.
func gunzipReport(z []byte) (json.RawMessage, error) {
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, fmt.Errorf("decompress report: %w", err)
	}
	var buf bytes.Buffer
	// A gzip stream ends with the size of its data (mod 2^32), so the
	// buffer can be made the right size at once. Reports compress about
	// 15 to 1; the hint is held to 64 to 1, so that a damaged trailer
	// cannot ask for much more (a report that compresses better still
	// reads back, the buffer grows). A report written in several members
	// (store.Run.WriteReportGzip) ends with the size of its last, small,
	// one: it is then taken as 15 to 1.
	if n := len(z); n >= 4 {
		size := uint64(binary.LittleEndian.Uint32(z[n-4:]))
		if size < uint64(n) {
			size = 15 * uint64(n)
		}
		size = min(size, 64*uint64(n))
		buf.Grow(int(size) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(zr); err != nil {
		return nil, fmt.Errorf("decompress report: %w", err)
	}
	return buf.Bytes(), nil
}

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
