package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/seatsync/seatsync/internal/jsontext"
	"github.com/seatsync/seatsync/model"
)

// An audit entry records the change, not the profile: the fields the
// change set, with their values before and after (AuditEntry.Changed).
// A first sync of 100,000 people writes as many entries; recording two
// whole copies of every profile made each about 460 bytes of JSON, and
// the audit log a third of a first sync's writes.
//
// Entries recorded before this were two whole copies of the profile, as
// the stores wrote them: {"id":…,"version":…,…}. They are read back as
// they were stored; AuditFields tells the two shapes apart by "version",
// which only a whole copy holds.

// auditField is one profile field as the audit log records it.
type auditField struct {
	name   string
	same   func(a, b *model.Profile) bool
	isZero func(p *model.Profile) bool
	value  func(b []byte, p *model.Profile) []byte
}

func textField(name string, get func(p *model.Profile) string) auditField {
	return auditField{
		name:   name,
		same:   func(a, b *model.Profile) bool { return get(a) == get(b) },
		isZero: func(p *model.Profile) bool { return get(p) == "" },
		value:  func(b []byte, p *model.Profile) []byte { return jsontext.AppendString(b, get(p), false) },
	}
}

func timeField(name string, get func(p *model.Profile) time.Time) auditField {
	return auditField{
		name:   name,
		same:   func(a, b *model.Profile) bool { return get(a).Equal(get(b)) },
		isZero: func(p *model.Profile) bool { return get(p).IsZero() },
		value: func(b []byte, p *model.Profile) []byte {
			t := get(p)
			if t.IsZero() {
				return append(b, "null"...)
			}
			b = append(b, '"')
			b = t.UTC().AppendFormat(b, time.RFC3339Nano)
			return append(b, '"')
		},
	}
}

// auditFields are the fields an entry can record, in the order it lists
// them: model.Profile's JSON names, and "id". A profile's version is never
// recorded (every write bumps it; the entry's seq orders them), nor the
// updated_at of a create or an update (it is the entry's at).
var auditFields = [...]auditField{
	{
		name:   "id",
		same:   func(a, b *model.Profile) bool { return a.ID == b.ID },
		isZero: func(p *model.Profile) bool { return p.ID == 0 },
		value:  func(b []byte, p *model.Profile) []byte { return strconv.AppendInt(b, p.ID, 10) },
	},
	textField("username", func(p *model.Profile) string { return p.Username }),
	textField("email", func(p *model.Profile) string { return p.Email }),
	textField("given_name", func(p *model.Profile) string { return p.GivenName }),
	textField("family_name", func(p *model.Profile) string { return p.FamilyName }),
	textField("display_name", func(p *model.Profile) string { return p.DisplayName }),
	textField("title", func(p *model.Profile) string { return p.Title }),
	textField("department", func(p *model.Profile) string { return p.Department }),
	{
		name: "groups",
		same: func(a, b *model.Profile) bool {
			return (a.Groups == nil) == (b.Groups == nil) && slices.Equal(a.Groups, b.Groups)
		},
		isZero: func(p *model.Profile) bool { return p.Groups == nil },
		value:  func(b []byte, p *model.Profile) []byte { return jsontext.AppendStrings(b, p.Groups, false) },
	},
	{
		name: "attributes",
		same: func(a, b *model.Profile) bool {
			return (a.Attributes == nil) == (b.Attributes == nil) && maps.Equal(a.Attributes, b.Attributes)
		},
		isZero: func(p *model.Profile) bool { return p.Attributes == nil },
		value:  func(b []byte, p *model.Profile) []byte { return appendAttributes(b, p.Attributes) },
	},
	textField("area", func(p *model.Profile) string { return p.Area }),
	textField("state", func(p *model.Profile) string { return string(p.State) }),
	textField("block_reason", func(p *model.Profile) string { return string(p.BlockReason) }),
	textField("source", func(p *model.Profile) string { return p.Source }),
	textField("external_id", func(p *model.Profile) string { return p.ExternalID }),
	timeField("queued_at", func(p *model.Profile) time.Time { return p.QueuedAt }),
	timeField("activated_at", func(p *model.Profile) time.Time { return p.ActivatedAt }),
	timeField("blocked_at", func(p *model.Profile) time.Time { return p.BlockedAt }),
	timeField("created_at", func(p *model.Profile) time.Time { return p.CreatedAt }),
	timeField("updated_at", func(p *model.Profile) time.Time { return p.UpdatedAt }),
}

// appendAttributes appends m as a JSON object, its keys sorted (null for
// nil).
func appendAttributes(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	return jsontext.AppendObject(b, m, false)
}

// recorded reports whether the change from before to after records field
// f: a create every field it set, a delete every field the profile had, an
// update the fields whose value changed.
func recorded(f *auditField, before, after *model.Profile) bool {
	switch {
	case f.name == "updated_at" && after != nil:
		return false
	case before == nil:
		return !f.isZero(after)
	case after == nil:
		return !f.isZero(before)
	}
	return !f.same(before, after)
}

// Changed returns e recording the change from before to after (nil before
// for a create, nil after for a delete): Before and After are the values
// of the fields it set, as JSON objects keyed by the field names. For a
// delete, Before is everything the profile held. Fields is left nil: a
// store names them when it reads the entry back (AuditFields).
func (e AuditEntry) Changed(before, after *model.Profile) AuditEntry {
	e, _ = e.AppendChanged(nil, before, after)
	return e
}

// AppendChanged is Changed with the JSON appended to buf[:0], which it
// returns for the next entry: a caller that writes many entries needs no
// new memory for each, since a store keeps nothing of an entry's bytes
// once Tx.Audit has returned.
func (e AuditEntry) AppendChanged(buf []byte, before, after *model.Profile) (AuditEntry, []byte) {
	e.Fields, e.Before, e.After = nil, nil, nil
	if before == nil && after == nil {
		return e, buf
	}
	// Before's object, then After's, in one buffer.
	b := buf[:0]
	if before != nil {
		b = append(b, '{')
		for i := range auditFields {
			if f := &auditFields[i]; recorded(f, before, after) {
				b = appendMember(b, len(b) > 1, f, before)
			}
		}
		b = append(b, '}')
	}
	split := len(b)
	if after != nil {
		b = append(b, '{')
		for i := range auditFields {
			if f := &auditFields[i]; recorded(f, before, after) {
				b = appendMember(b, len(b) > split+1, f, after)
			}
		}
		b = append(b, '}')
	}
	if before != nil {
		e.Before = b[:split:split]
	}
	if after != nil {
		e.After = b[split:]
	}
	return e, b
}

func appendMember(b []byte, comma bool, f *auditField, p *model.Profile) []byte {
	if comma {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, f.name...)
	b = append(b, '"', ':')
	return f.value(b, p)
}

// wholeCopy is a profile as AppendProfileJSON writes it: as the audit
// log held whole copies of it (see the top of this file), and as a
// pending push keeps one that is gone.
type wholeCopy struct {
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
	QueuedAt    time.Time         `json:"queued_at"`
	ActivatedAt time.Time         `json:"activated_at"`
	BlockedAt   time.Time         `json:"blocked_at"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

func (w *wholeCopy) profile() *model.Profile {
	return &model.Profile{
		ID: w.ID, Version: w.Version, Username: w.Username, Email: w.Email, GivenName: w.GivenName, FamilyName: w.FamilyName,
		DisplayName: w.DisplayName, Title: w.Title, Department: w.Department, Groups: w.Groups,
		Attributes: w.Attributes, Area: w.Area, State: w.State, BlockReason: w.BlockReason, Source: w.Source,
		ExternalID: w.ExternalID, QueuedAt: utc(w.QueuedAt), ActivatedAt: utc(w.ActivatedAt), BlockedAt: utc(w.BlockedAt),
		CreatedAt: utc(w.CreatedAt), UpdatedAt: utc(w.UpdatedAt),
	}
}

// AuditFields names the fields an entry read back records, from its
// Before and After as stored: the keys of the two objects, or, for an
// entry that holds two whole copies of the profile, the fields whose
// values differ between them, as Changed would have recorded them.
func AuditFields(before, after json.RawMessage) ([]string, error) {
	isNull := func(raw json.RawMessage) bool { return raw == nil || bytes.Equal(raw, []byte("null")) }
	if isNull(before) && isNull(after) {
		return nil, nil
	}
	var objs [2]map[string]json.RawMessage
	var copies [2]*model.Profile
	whole := false
	for i, raw := range [2]json.RawMessage{before, after} {
		if isNull(raw) {
			continue
		}
		if err := json.Unmarshal(raw, &objs[i]); err != nil {
			return nil, fmt.Errorf("audit entry: %w", err)
		}
		if _, ok := objs[i]["version"]; !ok {
			continue
		}
		whole = true
		var w wholeCopy
		if err := json.Unmarshal(raw, &w); err != nil {
			return nil, fmt.Errorf("audit entry: %w", err)
		}
		copies[i] = w.profile()
	}
	fields := []string{}
	for i := range auditFields {
		f := &auditFields[i]
		_, inBefore := objs[0][f.name]
		_, inAfter := objs[1][f.name]
		if whole && recorded(f, copies[0], copies[1]) || !whole && (inBefore || inAfter) {
			fields = append(fields, f.name)
		}
	}
	return fields, nil
}

// utc is t in UTC, the zero time kept zero.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}
