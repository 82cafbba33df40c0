package postgres

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// Times are timestamptz: microseconds, and no zone (they read back in
// UTC). The zero time is NULL. PostgreSQL keeps the years 4713 BC to
// 294276 AD; checkTime refuses what Go's encoding of a time would not
// keep exactly (before year 1 it is not a time seatsync writes).

func checkTime(field string, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	if y := t.Year(); y < 1 || y > 9999 {
		return fmt.Errorf("%s %s is outside the years 1 to 9999 the store holds", field, t.Format(time.RFC3339Nano))
	}
	return nil
}

// timeArg is the argument for t: NULL for the zero time. pgx truncates
// to the microsecond.
func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// timeOf turns a scanned timestamptz back into a UTC time.
func timeOf(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// checkText refuses a NUL byte, which a PostgreSQL text value cannot
// hold: the error names the field instead of failing a whole COPY.
func checkText(p *model.Profile) error {
	if p.Username == "" {
		return errors.New("empty username")
	}
	for _, f := range [...]struct{ name, value string }{
		{"username", p.Username}, {"email", p.Email}, {"given_name", p.GivenName},
		{"family_name", p.FamilyName}, {"display_name", p.DisplayName}, {"title", p.Title},
		{"department", p.Department}, {"area", p.Area}, {"state", string(p.State)},
		{"block_reason", string(p.BlockReason)}, {"source", p.Source}, {"external_id", p.ExternalID},
	} {
		if strings.IndexByte(f.value, 0) >= 0 {
			return fmt.Errorf("%s %q contains a NUL byte", f.name, f.value)
		}
	}
	for _, g := range p.Groups {
		if strings.IndexByte(g, 0) >= 0 {
			return fmt.Errorf("group %q contains a NUL byte", g)
		}
	}
	if p.State != model.Active && p.State != model.Blocked {
		return fmt.Errorf("state %q is neither %s nor %s", p.State, model.Active, model.Blocked)
	}
	for _, t := range [...]struct {
		name string
		t    time.Time
	}{
		{"queued_at", p.QueuedAt}, {"activated_at", p.ActivatedAt}, {"blocked_at", p.BlockedAt},
		{"created_at", p.CreatedAt}, {"updated_at", p.UpdatedAt},
	} {
		if err := checkTime(t.name, t.t); err != nil {
			return err
		}
	}
	return nil
}

// attributesArg is the jsonb text of a profile's attributes, NULL for nil
// ("{}" for an empty map, so both read back as written). jsonb does not
// keep the order of keys, which a map has none of.
func attributesArg(m map[string]string) (any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// groupsArg keeps nil groups NULL and empty ones '{}'. The slice is
// copied: a Tx keeps no pointer to what it is given.
func groupsArg(g []string) any {
	if g == nil {
		return nil
	}
	return append(make([]string, 0, len(g)), g...)
}

func decodeAttributes(b []byte) (map[string]string, error) {
	if b == nil {
		return nil, nil
	}
	m := map[string]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode attributes: %w", err)
	}
	return m, nil
}

// auditProfile is the JSON form of a pending push's last state of a
// profile that is gone (and of the whole copies of the audit log's older
// entries, which store/audit.go reads). Unlike model.Profile's own JSON it keeps ID
// and Version, and nil versus empty groups and attributes, so it reads
// back exactly as it was written.
type auditProfile struct {
	ID          int64             `json:"id"`
	Version     int64             `json:"version"`
	Username    string            `json:"username"`
	Email       string            `json:"email,omitempty"`
	GivenName   string            `json:"given_name,omitempty"`
	FamilyName  string            `json:"family_name,omitempty"`
	DisplayName string            `json:"display_name,omitempty"`
	Title       string            `json:"title,omitempty"`
	Department  string            `json:"department,omitempty"`
	Groups      []string          `json:"groups,omitzero"`
	Attributes  map[string]string `json:"attributes,omitzero"`
	Area        string            `json:"area,omitempty"`
	State       model.State       `json:"state,omitempty"`
	BlockReason model.Reason      `json:"block_reason,omitempty"`
	Source      string            `json:"source,omitempty"`
	ExternalID  string            `json:"external_id,omitempty"`
	QueuedAt    time.Time         `json:"queued_at,omitzero"`
	ActivatedAt time.Time         `json:"activated_at,omitzero"`
	BlockedAt   time.Time         `json:"blocked_at,omitzero"`
	CreatedAt   time.Time         `json:"created_at,omitzero"`
	UpdatedAt   time.Time         `json:"updated_at,omitzero"`
}

// profileJSON encodes p for the audit log; nil is SQL NULL.
func profileJSON(p *model.Profile) (any, error) {
	if p == nil {
		return nil, nil
	}
	b, err := json.Marshal(auditProfile{
		ID: p.ID, Version: p.Version, Username: p.Username, Email: p.Email,
		GivenName: p.GivenName, FamilyName: p.FamilyName, DisplayName: p.DisplayName,
		Title: p.Title, Department: p.Department, Groups: p.Groups, Attributes: p.Attributes,
		Area: p.Area, State: p.State, BlockReason: p.BlockReason, Source: p.Source,
		ExternalID: p.ExternalID, QueuedAt: utc(p.QueuedAt), ActivatedAt: utc(p.ActivatedAt),
		BlockedAt: utc(p.BlockedAt), CreatedAt: utc(p.CreatedAt), UpdatedAt: utc(p.UpdatedAt),
	})
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func profileFromJSON(b []byte) (*model.Profile, error) {
	if b == nil {
		return nil, nil
	}
	var a auditProfile
	if err := json.Unmarshal(b, &a); err != nil {
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

// Run reports are stored gzip-compressed (gzip.BestSpeed) in
// runs.report_gzip, as the sqlite store does: the report of a first sync of
// 100,000 people is some 40 MB of JSON and under 3 MB compressed, and
// WriteReport's pieces are compressed as they come.

// gzipReport is what r.WriteReportGzip writes, or else compresses what
// r.WriteReport writes, or r.Report, which must be JSON. It is nil when
// there is no report.
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
	// A gzip stream ends with its data's size (mod 2^32); the hint is held
	// to 64 to 1 so a damaged trailer cannot ask for much more. A report
	// written in several members (store.Run.WriteReportGzip) ends with the
	// size of its last, small, one: it is then taken as 15 to 1.
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

// rawJSONArg stores a json.RawMessage in a jsonb column: NULL for nil.
func rawJSONArg(field string, m json.RawMessage) (any, error) {
	if m == nil {
		return nil, nil
	}
	if !json.Valid(m) {
		return nil, fmt.Errorf("%s is not valid JSON", field)
	}
	return string(m), nil
}

// jsonArg passes JSON as text, nil (NULL) for nil.
func jsonArg(j json.RawMessage) any {
	if j == nil {
		return nil
	}
	return string(j)
}
