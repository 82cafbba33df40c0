package oktatest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Okta's filter and search expressions (developer.okta.com/docs/api/#filter):
// terms `attr op "value"` (or `attr pr`) joined by `and` and `or`, `and`
// binding tighter, with parentheses for grouping. Values are JSON strings.
// Comparisons (gt, ge, lt, le) of date attributes compare the instants,
// given in RFC 3339 ("2025-01-06T09:00:00.000Z"); of other attributes,
// the strings.

// dialect is what one parameter accepts.
type dialect struct {
	name  string   // "filter", "search", "System Log filter": for messages
	attrs []string // the attributes it accepts; nil: any
	// prefix, when set, admits any attribute starting with it too.
	prefix string
	ops    func(attr string) []string // the operators an attribute takes
	dates  []string                   // attributes compared as instants
}

// userFilter is List Users' filter: a fixed list of attributes, eq only,
// plus the comparisons of lastUpdated.
var userFilter = dialect{
	name:  "filter",
	attrs: []string{"status", "lastUpdated", "id", "profile.login", "profile.email", "profile.firstName", "profile.lastName"},
	ops: func(attr string) []string {
		if attr == "lastUpdated" {
			return []string{"eq", "gt", "ge", "lt", "le"}
		}
		return []string{"eq", "sw"}
	},
	dates: []string{"lastUpdated"},
}

// userSearch is List Users' search: any profile attribute and the user's
// own properties, with every operator.
var userSearch = dialect{
	name:   "search",
	attrs:  []string{"status", "lastUpdated", "created", "activated", "statusChanged", "id", "type.id"},
	prefix: "profile.",
	ops: func(string) []string {
		return []string{"eq", "ne", "sw", "co", "pr", "gt", "ge", "lt", "le"}
	},
	dates: []string{"lastUpdated", "created", "activated", "statusChanged"},
}

// logFilter is the System Log's filter.
var logFilter = dialect{
	name: "System Log filter",
	attrs: []string{"eventType", "uuid", "severity", "displayMessage", "published",
		"actor.id", "actor.type", "actor.alternateId", "target.id", "target.type", "target.alternateId",
		"outcome.result"},
	ops: func(string) []string {
		return []string{"eq", "ne", "sw", "co", "pr", "gt", "ge", "lt", "le"}
	},
	dates: []string{"published"},
}

// match reports whether an expression holds; get returns an attribute's
// values (several for target.id: the event matches when one does).
type match func(get func(attr string) []string) bool

// expr is a parsed expression and the attributes it names.
type expr struct {
	match match
	attrs []string
}

func (e expr) names(attr string) bool { return slices.Contains(e.attrs, attr) }

func parse(d dialect, s string) (expr, error) {
	p := &parser{d: d, toks: nil}
	if err := p.lex(s); err != nil {
		return expr{}, err
	}
	if len(p.toks) == 0 {
		return expr{}, fmt.Errorf("empty %s", d.name)
	}
	m, err := p.or()
	if err != nil {
		return expr{}, err
	}
	if p.i < len(p.toks) {
		return expr{}, fmt.Errorf("cannot parse %s at %q", d.name, p.toks[p.i].text)
	}
	return expr{match: m, attrs: p.attrs}, nil
}

type token struct {
	text   string
	quoted bool
}

type parser struct {
	d     dialect
	toks  []token
	i     int
	attrs []string
}

func (p *parser) lex(s string) error {
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '(' || c == ')':
			p.toks = append(p.toks, token{text: string(c)})
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return fmt.Errorf("a quote is not closed in %q", s)
			}
			v, err := strconv.Unquote(s[i : j+1])
			if err != nil {
				return fmt.Errorf("cannot parse the value %s", s[i:j+1])
			}
			p.toks = append(p.toks, token{text: v, quoted: true})
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t()\"", rune(s[j])) {
				j++
			}
			p.toks = append(p.toks, token{text: s[i:j]})
			i = j
		}
	}
	return nil
}

func (p *parser) peek(word string) bool {
	return p.i < len(p.toks) && !p.toks[p.i].quoted && strings.EqualFold(p.toks[p.i].text, word)
}

func (p *parser) or() (match, error) {
	var alts []match
	for {
		m, err := p.and()
		if err != nil {
			return nil, err
		}
		alts = append(alts, m)
		if !p.peek("or") {
			break
		}
		p.i++
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return func(get func(string) []string) bool {
		for _, m := range alts {
			if m(get) {
				return true
			}
		}
		return false
	}, nil
}

func (p *parser) and() (match, error) {
	var all []match
	for {
		m, err := p.unary()
		if err != nil {
			return nil, err
		}
		all = append(all, m)
		if !p.peek("and") {
			break
		}
		p.i++
	}
	if len(all) == 1 {
		return all[0], nil
	}
	return func(get func(string) []string) bool {
		for _, m := range all {
			if !m(get) {
				return false
			}
		}
		return true
	}, nil
}

func (p *parser) unary() (match, error) {
	if p.peek("(") {
		p.i++
		m, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.peek(")") {
			return nil, fmt.Errorf("a parenthesis is not closed")
		}
		p.i++
		return m, nil
	}
	return p.term()
}

func (p *parser) term() (match, error) {
	if p.i+1 >= len(p.toks) || p.toks[p.i].quoted || p.toks[p.i+1].quoted {
		return nil, fmt.Errorf("expected `attribute operator \"value\"`")
	}
	attr, op := p.toks[p.i].text, strings.ToLower(p.toks[p.i+1].text)
	p.i += 2
	if !slices.Contains(p.d.attrs, attr) && (p.d.prefix == "" || !strings.HasPrefix(attr, p.d.prefix)) {
		return nil, fmt.Errorf("%s does not support the attribute %s", p.d.name, attr)
	}
	if !slices.Contains(p.d.ops(attr), op) {
		return nil, fmt.Errorf("%s does not support the operator %s for %s", p.d.name, op, attr)
	}
	p.attrs = append(p.attrs, attr)
	if op == "pr" {
		return func(get func(string) []string) bool {
			return slices.ContainsFunc(get(attr), func(v string) bool { return v != "" })
		}, nil
	}
	if p.i >= len(p.toks) || !p.toks[p.i].quoted {
		return nil, fmt.Errorf("expected a quoted value after %s %s", attr, op)
	}
	val := p.toks[p.i].text
	p.i++
	cmp := strings.Compare
	if slices.Contains(p.d.dates, attr) {
		want, err := time.Parse(time.RFC3339Nano, val)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a date such as 2025-01-06T09:00:00.000Z", attr, val)
		}
		cmp = func(a, _ string) int {
			t, err := time.Parse(time.RFC3339Nano, a)
			if err != nil {
				return -2 // no date: matches nothing
			}
			return t.Compare(want)
		}
	}
	one := func(v string) bool {
		switch op {
		case "eq":
			return v == val
		case "ne":
			return v != val
		case "sw":
			return strings.HasPrefix(strings.ToLower(v), strings.ToLower(val))
		case "co":
			return strings.Contains(strings.ToLower(v), strings.ToLower(val))
		}
		c := cmp(v, val)
		switch {
		case c == -2:
			return false
		case op == "gt":
			return c > 0
		case op == "ge":
			return c >= 0
		case op == "lt":
			return c < 0
		}
		return c <= 0 // le
	}
	return func(get func(string) []string) bool { return slices.ContainsFunc(get(attr), one) }, nil
}
