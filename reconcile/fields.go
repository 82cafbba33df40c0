package reconcile

import (
	"iter"
	"maps"
	"slices"

	"github.com/seatsync/seatsync/internal/jsontext"
	"github.com/seatsync/seatsync/model"
)

// Fields are a change's changed fields by name, for the text reports. A
// change's JSON is written from fieldDiffs directly, without this map.
type Fields map[string]FieldChange

// fieldChanges lists the data fields that differ. On create, Old is nil.
func fieldChanges(before, after *model.Profile) Fields {
	var out Fields
	for d := range fieldDiffs(before, after) {
		if out == nil {
			out = make(Fields)
		}
		out[d.key()] = FieldChange{Old: d.old.any(), New: d.new.any()}
	}
	return out
}

// fieldDiff is one changed field, as fieldDiffs reports it: the entry
// FieldChanges would hold, without a map or interface values, so that a
// report can encode it without allocating.
type fieldDiff struct {
	// name is the field's report name; for an attribute it is the
	// attribute's key alone, and attr is set: its report name is
	// "attributes." + name.
	name     string
	attr     bool
	old, new diffSide
}

// diffSide is one side of a changed field: nothing (a nil Old or New),
// a string, or a list of strings.
type diffSide struct {
	kind sideKind
	str  string
	list []string
}

type sideKind uint8

const (
	sideNone sideKind = iota
	sideText
	sideList
)

func textSide(s string) diffSide   { return diffSide{kind: sideText, str: s} }
func listSide(l []string) diffSide { return diffSide{kind: sideList, list: l} }

// key is the field's report name, its key in Fields.
func (d *fieldDiff) key() string {
	if d.attr {
		return "attributes." + d.name
	}
	return d.name
}

// any is the value as FieldChange holds it: nil, a string or a []string
// (which may be a nil slice, as before).
func (v diffSide) any() any {
	switch v.kind {
	case sideText:
		return v.str
	case sideList:
		return v.list
	}
	return nil
}

// appendJSON encodes the value as encoding/json encodes v.any().
func (v diffSide) appendJSON(b []byte) []byte {
	switch {
	case v.kind == sideText:
		return jsontext.AppendString(b, v.str, true)
	case v.kind == sideList && v.list != nil:
		return jsontext.AppendStrings(b, v.list, true)
	}
	return append(b, "null"...)
}

// appendName appends the field's report name as a JSON string.
func (d *fieldDiff) appendName(b []byte) []byte {
	if !d.attr {
		return jsontext.AppendString(b, d.name, true)
	}
	// "attributes." needs no escaping: write it, then the escaped key
	// without its opening quote.
	b = append(b, `"attributes.`...)
	at := len(b)
	b = jsontext.AppendString(b, d.name, true)
	return append(b[:at], b[at+1:]...)
}

// fieldDiffs yields the data fields a change from before to after sets:
// on create (before is nil) every field that has a value, with nothing as
// the old side; on a delete (after is nil) none. They come in the byte
// order of their report names, which is the order encoding/json writes a
// Fields map in, so a report can encode them as they come.
func fieldDiffs(before, after *model.Profile) iter.Seq[fieldDiff] {
	return func(yield func(fieldDiff) bool) {
		if after == nil {
			return
		}
		create := before == nil
		var none model.Profile
		b := before
		if create {
			b = &none
		}
		// text yields a string field: on create when it has a value,
		// otherwise when it differs. Fields only an update can change
		// (area, source, external_id, username) are skipped on create.
		text := func(name, old, new string, onCreate bool) bool {
			switch {
			case create && (!onCreate || new == ""):
				return true
			case create:
				return yield(fieldDiff{name: name, new: textSide(new)})
			case old == new:
				return true
			}
			return yield(fieldDiff{name: name, old: textSide(old), new: textSide(new)})
		}

		// In the byte order of the names: area, attributes.*, department,
		// display_name, email, external_id, family_name, given_name,
		// groups, source, title, username.
		if !text("area", b.Area, after.Area, false) {
			return
		}
		if !maps.Equal(b.Attributes, after.Attributes) {
			var buf [16]string
			keys := buf[:0]
			for k := range after.Attributes {
				keys = append(keys, k)
			}
			for k := range b.Attributes {
				if _, ok := after.Attributes[k]; !ok {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				d := fieldDiff{name: k, attr: true}
				nv, has := after.Attributes[k]
				ov, had := b.Attributes[k]
				switch {
				case !has:
					d.old = textSide(ov)
				case !had:
					d.new = textSide(nv)
				case ov != nv:
					d.old, d.new = textSide(ov), textSide(nv)
				default:
					continue
				}
				if !yield(d) {
					return
				}
			}
		}
		if !text("department", b.Department, after.Department, true) ||
			!text("display_name", b.DisplayName, after.DisplayName, true) ||
			!text("email", b.Email, after.Email, true) ||
			!text("external_id", b.ExternalID, after.ExternalID, false) ||
			!text("family_name", b.FamilyName, after.FamilyName, true) ||
			!text("given_name", b.GivenName, after.GivenName, true) {
			return
		}
		if !slices.Equal(b.Groups, after.Groups) {
			d := fieldDiff{name: "groups", new: listSide(after.Groups)}
			if !create {
				d.old = listSide(b.Groups)
			}
			if !yield(d) {
				return
			}
		}
		if !text("source", b.Source, after.Source, false) || !text("title", b.Title, after.Title, true) {
			return
		}
		text("username", b.Username, after.Username, false)
	}
}

// appendFieldsJSON appends a change's "fields" member, with the comma
// before it, or nothing when the change sets no field (omitempty).
func appendFieldsJSON(b []byte, before, after *model.Profile) []byte {
	first := true
	for d := range fieldDiffs(before, after) {
		if first {
			b = append(b, `,"fields":{`...)
			first = false
		} else {
			b = append(b, ',')
		}
		b = d.appendName(b)
		b = append(b, `:{"old":`...)
		b = d.old.appendJSON(b)
		b = append(b, `,"new":`...)
		b = d.new.appendJSON(b)
		b = append(b, '}')
	}
	if !first {
		b = append(b, '}')
	}
	return b
}
