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
		p.attr, p.filterAttr, p.filterValue, p.sub = m[1], m[2], m[3], m[4]
		return p, nil
	}
	m := plainPath.FindStringSubmatch(rest)
	if m == nil {
		return p, fmt.Errorf("%q is not a SCIM attribute path (attribute, attribute.sub, attribute[type eq \"work\"].value or URN:attribute)", s)
	}
	p.attr, p.sub = m[1], m[2]
	if p.schema != "" && p.filterAttr != "" {
		return p, fmt.Errorf("%q: a filter inside an extension attribute is not supported", s)
	}
	return p, nil
}

// set puts value at p in the resource res (a decoded SCIM User).
func (p path) set(res map[string]any, value string) {
	obj := res
	if p.schema != "" {
		ext, _ := res[p.schema].(map[string]any)
		if ext == nil {
			ext = map[string]any{}
			res[p.schema] = ext
		}
		obj = ext
	}
	switch {
	case p.filterAttr != "":
		list, _ := obj[p.attr].([]any)
		for _, el := range list {
			if m, ok := el.(map[string]any); ok && fmt.Sprint(m[p.filterAttr]) == p.filterValue {
				m[p.sub] = value
				return
			}
		}
		el := map[string]any{p.filterAttr: p.filterValue, p.sub: value}
		if len(list) == 0 {
			el["primary"] = true
		}
		obj[p.attr] = append(list, el)
	case p.sub != "":
		sub, _ := obj[p.attr].(map[string]any)
		if sub == nil {
			sub = map[string]any{}
			obj[p.attr] = sub
		}
		sub[p.sub] = value
	default:
		obj[p.attr] = value
	}
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
			if m, ok := el.(map[string]any); ok && strings.EqualFold(str(lookup(m, p.filterAttr)), p.filterValue) {
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
