package config

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Plug-ins: sources and targets have keys of their own type. Each type's
// package owns those keys as a struct with `yaml` tags (its Settings), its
// defaults and its checks; the loader decodes the common keys into Source
// or Target and the type's own keys, from the same mapping, into a fresh
// Settings from the type's registry. A key of neither is refused, and a
// key of another type is named as such.

// Settings is one plug-in type's own part of a source's or a target's
// configuration: a pointer to a struct whose `yaml` tags are its keys
// (Secret fields take the X_file form too).
type Settings interface {
	// Defaults fills in what the file left out, and resolves relative
	// file names (e.Resolve).
	Defaults(e *Entry)
	// Validate reports every problem through e.
	Validate(e *Entry)
}

// Kinds maps each type of one kind of plug-in to a constructor of its
// Settings. The registry of that kind (connector, target) is the only list
// of types; the loader gets it from its caller.
type Kinds map[string]func() Settings

// Names returns the types, sorted.
func (k Kinds) Names() []string {
	names := make([]string, 0, len(k))
	for n := range k {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Plugins are the plug-in types the loader knows.
type Plugins struct {
	Sources Kinds
	Targets Kinds
}

// Entry is one source or target of the file, as its Settings sees it:
// keys are relative to the entry (`url`, `tls.ca_file`), and problems land
// at the entry's path and the line each key was written on.
type Entry struct {
	path  string
	dir   string
	areas map[string]int
	locs  map[string]loc
	v     *validator // nil while defaults are applied
}

func (e *Entry) at(key string) string { return e.path + "." + key }

// Given reports whether key was written with a value (not null).
func (e *Entry) Given(key string) bool {
	l, ok := e.locs[e.at(key)]
	return ok && !l.null
}

// Resolve makes a relative file name relative to the configuration file's
// directory.
func (e *Entry) Resolve(name *string) {
	if *name != "" {
		*name = resolvePath(e.dir, *name)
	}
}

// Add reports a problem with key.
func (e *Entry) Add(key, format string, args ...any) { e.v.add(e.at(key), format, args...) }

// OneOf checks that value is one of options.
func (e *Entry) OneOf(key, value string, options ...string) bool {
	return e.v.oneOf(e.at(key), value, options...)
}

// NotEmpty checks that s is not empty or blank.
func (e *Entry) NotEmpty(key, s string) bool { return e.v.notEmpty(e.at(key), s) }

// Positive checks that d is more than 0.
func (e *Entry) Positive(key string, d Duration) { e.v.positive(e.at(key), d) }

// Secret reports whether a secret was configured (also when its file
// could not be read, which the decoder has reported).
func (e *Entry) Secret(key string, s Secret) bool { return e.v.secret(e.at(key), s) }

// Schedule checks a cron schedule.
func (e *Entry) Schedule(key, spec string) { e.v.schedule(e.at(key), spec) }

// Area checks that area belongs to a licence pool.
func (e *Entry) Area(key, area string) { e.v.area(e.at(key), area, e.areas) }

// entry makes the Entry of the item at path.
func (c *Config) entry(path string, v *validator, areas map[string]int) *Entry {
	dir := ""
	if c.Path != "" {
		dir = configDir(c.Path)
	}
	return &Entry{path: path, dir: dir, areas: areas, locs: c.locs, v: v}
}

// plugged is how the decoder fills a struct that has plug-in settings:
// the kinds of its types and the field that takes the settings.
type plugged struct {
	what  string // "source", "target": for messages
	kinds Kinds
}

// pluggedOf returns the plug-ins of struct type t, if it has any.
func (d *decoder) pluggedOf(t reflect.Type) (plugged, bool) {
	switch t {
	case reflect.TypeFor[Target]():
		return plugged{what: "target", kinds: d.plugins.Targets}, true
	case reflect.TypeFor[Source]():
		return plugged{what: "source", kinds: d.plugins.Sources}, true
	}
	return plugged{}, false
}

// settingsFor returns a fresh Settings for the mapping's `type`, and the
// type, or nil when the type is not one of kinds (the validator reports
// that).
func (d *decoder) settingsFor(p plugged, entries []entry) (Settings, string) {
	for _, e := range entries {
		if e.name != "type" {
			continue
		}
		n := deref(e.value)
		if n == nil || n.Kind != yaml.ScalarNode {
			return nil, ""
		}
		s, problems := expand(n.Value, d.env)
		if len(problems) > 0 {
			return nil, ""
		}
		if mk, ok := p.kinds[s]; ok {
			return mk(), s
		}
		return nil, s
	}
	return nil, ""
}

// otherKinds names the types of p whose settings have key, for "it is for
// ..." messages.
func otherKinds(p plugged, key string) []string {
	var out []string
	for _, name := range p.kinds.Names() {
		t := reflect.TypeOf(p.kinds[name]()).Elem()
		if slices.ContainsFunc(fieldsOf(t), func(f field) bool { return f.name == key }) {
			out = append(out, name)
		}
	}
	return out
}

// allKeys lists every key a plugged struct may have, for suggestions.
func allKeys(p plugged, common []field) []field {
	out := slices.Clone(common)
	for _, name := range p.kinds.Names() {
		out = append(out, fieldsOf(reflect.TypeOf(p.kinds[name]()).Elem())...)
	}
	return out
}

func notForKind(p plugged, kind string, others []string) string {
	return fmt.Sprintf("not a setting of %s %s %s (it is for %s)", article(kind), kind, p.what, strings.Join(others, " and "))
}

// Key joins a mapping key to a path the way the loader writes paths:
// attributes.title, attributes["name.givenName"].
func Key(path, key string) string { return joinKey(path, key) }

// DefaultFullSchedule is when an incremental source pulls in full when
// its full_schedule is left out: daily at 02:00.
const DefaultFullSchedule = "0 2 * * *"

// IncrementalSettings is implemented by the Settings of source types that
// can read only what changed (ldap, okta): their `incremental` and
// `full_schedule` keys. A full_schedule left out is DefaultFullSchedule.
type IncrementalSettings interface {
	IncrementalSync() (on bool, fullSchedule string)
}
