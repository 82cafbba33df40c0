package scim

import (
	"fmt"
	"regexp"
	"strings"
)

// path is one SCIM attribute path of a target's attributes mapping
// (RFC 7644 section 3.10), in the forms a provisioning client needs:
//
//	userName                                     attr
//	name.givenName                               attr.sub
//	emails[type eq "work"].value                 attr[type eq "work"].sub
//	urn:...:enterprise:2.0:User:department       schema URN, then attr
type path struct {
	schema string // an extension's URN; "" for the core User schema
	attr   string
	sub    string
	// filterAttr and filterValue select one element of a multi-valued
	// attribute: [type eq "work"].
	filterAttr, filterValue string
}

var (
	plainPath    = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_$-]*)(?:\.([A-Za-z][A-Za-z0-9_$-]*))?$`)
	filteredPath = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_$-]*)\[([A-Za-z][A-Za-z0-9_$-]*) eq "([^"\\]*)"\]\.([A-Za-z][A-Za-z0-9_$-]*)$`)
)

func parsePath(s string) (path, error) {
	var p path
	rest := s
	if strings.HasPrefix(strings.ToLower(s), "urn:") {
		i := strings.LastIndexByte(s, ':')
		if i <= 4 || i == len(s)-1 {
			return p, fmt.Errorf("%q: an extension attribute is written URN:attribute, such as %s:department", s, EnterpriseUser)
		}
		p.schema, rest = s[:i], s[i+1:]
	}
	if m := filteredPath.FindStringSubmatch(rest); m != nil {
		if p.schema != "" {
			return p, fmt.Errorf("%q: a filter inside an extension attribute is not supported", s)
		}
		p.attr, p.filterAttr, p.filterValue, p.sub = m[1], m[2], m[3], m[4]
		return p, nil
	}
	m := plainPath.FindStringSubmatch(rest)
	if m == nil {
		return p, fmt.Errorf("%q is not a SCIM attribute path (attribute, attribute.sub, attribute[type eq \"work\"].value or URN:attribute)", s)
	}
	p.attr, p.sub = m[1], m[2]
	return p, nil
}

// element is the path of the whole element a filtered path selects,
// emails[type eq "work"], for a PATCH remove.
func (p path) element() string {
	return p.attr + "[" + p.filterAttr + " eq " + filterValue(p.filterValue) + "]"
}

// sameElement reports whether q selects the same element of the same
// multi-valued attribute as p.
func (p path) sameElement(q path) bool {
	return p.filterAttr != "" && strings.EqualFold(p.attr, q.attr) &&
		strings.EqualFold(p.filterAttr, q.filterAttr) && strings.EqualFold(p.filterValue, q.filterValue)
}

// matches reports whether el is an element p selects.
func (p path) matches(el any) (map[string]any, bool) {
	m, ok := el.(map[string]any)
	return m, ok && strings.EqualFold(str(lookup(m, p.filterAttr)), p.filterValue)
}

// has reports whether res holds the element p selects (filtered paths
// only).
func (p path) has(res map[string]any) bool {
	list, _ := lookup(res, p.attr).([]any)
	for _, el := range list {
		if _, ok := p.matches(el); ok {
			return true
		}
	}
	return false
}

// set puts value at p in the resource res (a decoded SCIM User),
// under the attribute names res already uses, whatever their case.
func (p path) set(res map[string]any, value string) {
	obj := res
	if p.schema != "" {
		obj = child(res, p.schema)
	}
	switch {
	case p.filterAttr != "":
		key := keyOf(obj, p.attr)
		list, _ := obj[key].([]any)
		for _, el := range list {
			if m, ok := p.matches(el); ok {
				m[keyOf(m, p.sub)] = value
				return
			}
		}
		el := map[string]any{p.filterAttr: p.filterValue, p.sub: value}
		if len(list) == 0 {
			el["primary"] = true
		}
		obj[key] = append(list, el)
	case p.sub != "":
		sub := child(obj, p.attr)
		sub[keyOf(sub, p.sub)] = value
	default:
		obj[keyOf(obj, p.attr)] = value
	}
}

// clear removes the value at p from res: the sub-attribute, and an
// element of a multi-valued attribute left with nothing but its filter
// attribute (and primary), and a complex attribute left empty.
func (p path) clear(res map[string]any) {
	obj := res
	if p.schema != "" {
		var ok bool
		if obj, ok = lookup(res, p.schema).(map[string]any); !ok {
			return
		}
	}
	key := keyOf(obj, p.attr)
	switch {
	case p.filterAttr != "":
		list, _ := obj[key].([]any)
		kept := list[:0:0]
		for _, el := range list {
			if m, ok := p.matches(el); ok {
				delete(m, keyOf(m, p.sub))
				if len(m) == 1 || len(m) == 2 && lookup(m, "primary") != nil {
					continue
				}
			}
			kept = append(kept, el)
		}
		if len(kept) == 0 {
			delete(obj, key)
		} else {
			obj[key] = kept
		}
	case p.sub != "":
		sub, ok := obj[key].(map[string]any)
		if !ok {
			return
		}
		delete(sub, keyOf(sub, p.sub))
		if len(sub) == 0 {
			delete(obj, key)
		}
	default:
		delete(obj, key)
	}
	if p.schema != "" && len(obj) == 0 {
		delete(res, keyOf(res, p.schema))
	}
}

// child is the complex attribute name of m, created when missing.
func child(m map[string]any, name string) map[string]any {
	key := keyOf(m, name)
	c, _ := m[key].(map[string]any)
	if c == nil {
		c = map[string]any{}
		m[key] = c
	}
	return c
}

// keyOf is the key m holds name under, compared case-insensitively as
// RFC 7643 says attribute names are; name itself when m has none.
func keyOf(m map[string]any, name string) string {
	if _, ok := m[name]; ok {
		return name
	}
	for k := range m {
		if strings.EqualFold(k, name) {
			return k
		}
	}
	return name
}

// get reads p from a decoded resource; "" when it is not there.
// Attribute names are compared case-insensitively, as RFC 7643 says.
func (p path) get(res map[string]any) string {
	obj := res
	if p.schema != "" {
		ext, _ := lookup(res, p.schema).(map[string]any)
		if ext == nil {
			return ""
		}
		obj = ext
	}
	v := lookup(obj, p.attr)
	switch {
	case p.filterAttr != "":
		list, _ := v.([]any)
		for _, el := range list {
			if m, ok := p.matches(el); ok {
				return str(lookup(m, p.sub))
			}
		}
		return ""
	case p.sub != "":
		m, _ := v.(map[string]any)
		return str(lookup(m, p.sub))
	}
	return str(v)
}

func lookup(m map[string]any, key string) any {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	}
	return fmt.Sprint(v)
}
