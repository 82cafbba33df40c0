package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
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

// profileJSON encodes p for a pending push's last state (store.
// AppendProfileJSON); nil is SQL NULL.
func profileJSON(p *model.Profile) (any, error) {
	if p == nil {
		return nil, nil
	}
	return string(store.AppendProfileJSON(nil, p)), nil
}

func profileFromJSON(b []byte) (*model.Profile, error) {
	if b == nil {
		return nil, nil
	}
	return store.ProfileFromJSON(b)
}

// Run reports are stored gzip-compressed (store.GzipReport) in
// runs.report_gzip, as the sqlite store does.

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
