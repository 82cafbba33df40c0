package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/seatsync/seatsync/internal/smallfile"
)

// This file holds the generic part of the loader: a decoder that walks a
// yaml.Node tree alongside a Go value, guided by the `yaml` struct tags,
// and records every problem it meets instead of stopping at the first.
//
// Beyond what yaml.v3's own decoder does, it
//   - rejects unknown and duplicate keys, suggesting the nearest known key;
//   - expands ${VAR} in every scalar value ($${ is a literal ${);
//   - accepts X_file for every Secret field X and reads the secret from it;
//   - decodes a source's or a target's own keys into the Settings of its
//     `type` (see plugin.go), so a key of one type is refused on another;
//   - records the line of every path it decodes (locs), so the validator
//     can report its problems at the right line too.

// loc is where a value was written.
type loc struct {
	line int  // the node's line; for a mapping or list under a key, the key's line
	null bool // written as null (~, null, or nothing after the colon)
}

// maxNodes bounds the work one file can cause, aliases included.
const maxNodes = 100_000

type decoder struct {
	plugins Plugins
	env     func(string) (string, bool)
	dir     string          // relative *_file names are read from here ("" = working directory)
	locs    map[string]loc  // path -> where it was written
	bad     map[string]bool // paths that already have a problem
	probs   Problems
	budget  int
}

func newDecoder(env func(string) (string, bool), dir string) *decoder {
	return &decoder{env: env, dir: dir, locs: map[string]loc{}, bad: map[string]bool{}, budget: maxNodes}
}

func (d *decoder) add(path string, line int, format string, args ...any) {
	d.probs = append(d.probs, Problem{Path: path, Line: line, Message: fmt.Sprintf(format, args...)})
	d.bad[path] = true
}

// spend counts one node against the budget and reports whether decoding
// may go on.
func (d *decoder) spend(path string, line int) bool {
	d.budget--
	if d.budget == 0 {
		d.add(path, line, "the file expands to more than %d values; check its anchors and aliases", maxNodes)
	}
	return d.budget > 0
}

// value decodes n into v, which must be addressable. keyLine is the line
// of the key n is the value of (0 for list items and the document).
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string, keyLine int) {
	n = deref(n)
	if n == nil || !d.spend(path, keyLine) {
		return
	}
	line := n.Line
	if keyLine > 0 && (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) {
		line = keyLine
	}
	if isNull(n) {
		d.locs[path] = loc{line: line, null: true}
		return // leave the zero value
	}
	d.locs[path] = loc{line: line}
	d.fill(n, v, path)
}

// fill decodes a non-null node into v according to v's type.
func (d *decoder) fill(n *yaml.Node, v reflect.Value, path string) {
	if p, ok := v.Addr().Interface().(scalarParser); ok {
		if s, ok := d.scalar(n, path, "a single value"); ok {
			if err := p.parseScalar(s); err != nil {
				d.add(path, n.Line, "%v", err)
			}
		}
		return
	}
	switch v.Type() {
	case reflect.TypeFor[Secret]():
		if s, ok := d.scalar(n, path, "a string"); ok {
			v.Set(reflect.ValueOf(NewSecret(s)))
		}
		return
	case reflect.TypeFor[StringList]():
		if n.Kind == yaml.ScalarNode { // one value stands for a list of one
			if s, ok := d.scalar(n, path, "a string"); ok {
				v.Set(reflect.ValueOf(StringList{s}))
				d.locs[index(path, 0)] = loc{line: n.Line}
			}
			return
		}
	}

	switch v.Kind() {
	case reflect.String:
		if s, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Int:
		if s, ok := d.scalar(n, path, "a whole number"); ok {
			i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 0)
			if err != nil {
				d.add(path, n.Line, "%q is not a whole number", s)
				return
			}
			v.SetInt(i)
		}
	case reflect.Float64:
		if s, ok := d.scalar(n, path, "a number"); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				d.add(path, n.Line, "%q is not a number", s)
				return
			}
			v.SetFloat(f)
		}
	case reflect.Bool:
		if s, ok := d.scalar(n, path, "true or false"); ok {
			switch strings.ToLower(strings.TrimSpace(s)) {
			case "true":
				v.SetBool(true)
			case "false":
				v.SetBool(false)
			default:
				d.add(path, n.Line, "%q is not true or false", s)
			}
		}
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		d.fill(n, e.Elem(), path)
		v.Set(e)
	case reflect.Struct:
		d.object(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.add(path, n.Line, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.value(item, s.Index(i), index(path, i), 0)
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.add(path, n.Line, "expected a mapping, got %s", describe(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		for _, e := range d.entries(n, path) {
			ev := reflect.New(v.Type().Elem()).Elem()
			d.value(e.value, ev, joinKey(path, e.name), e.key.Line)
			m.SetMapIndex(reflect.ValueOf(e.name), ev)
		}
		v.Set(m)
	default:
		// Only reached if a type with a field kind the decoder does not
		// know is added to the configuration.
		d.add(path, n.Line, "internal error: cannot decode into %s", v.Type())
	}
}

// scalar returns a scalar node's text with ${VAR} expanded. want describes
// the expected value for the message when n is not a scalar.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.add(path, n.Line, "expected %s, got %s", want, describe(n))
		return "", false
	}
	s, problems := expand(n.Value, d.env)
	for _, p := range problems {
		d.add(path, n.Line, "%s", p)
	}
	return s, len(problems) == 0
}

// field is one key a struct accepts.
type field struct {
	name  string // the YAML key
	index int    // the struct field it fills
	base  string // for the X_file form of a Secret field X: X
}

// fieldsOf lists the keys a struct type accepts: its `yaml` tags, plus
// X_file for every Secret field X.
func fieldsOf(t reflect.Type) []field {
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || name == "" || name == "-" {
			continue
		}
		fs = append(fs, field{name: name, index: i})
		if sf.Type == reflect.TypeFor[Secret]() {
			fs = append(fs, field{name: name + "_file", index: i, base: name})
		}
	}
	return fs
}

// object decodes a mapping into a struct.
func (d *decoder) object(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.add(path, n.Line, "expected a mapping (key: value), got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	entries := d.entries(n, path)
	present := map[string]bool{}
	for _, e := range entries {
		present[e.name] = true
	}
	// A source or target: its type's own keys go to its Settings.
	plug, isPlugged := d.pluggedOf(v.Type())
	var kind string
	var settings Settings
	var sv reflect.Value
	var sfields []field
	if isPlugged {
		settings, kind = d.settingsFor(plug, entries)
		if settings != nil {
			sv = reflect.ValueOf(settings).Elem()
			sfields = fieldsOf(sv.Type())
			v.FieldByName("Settings").Set(reflect.ValueOf(settings))
		}
	}

	for _, e := range entries {
		p := joinKey(path, e.name)
		target := v
		i := slices.IndexFunc(fields, func(f field) bool { return f.name == e.name })
		var f field
		switch j := slices.IndexFunc(sfields, func(f field) bool { return f.name == e.name }); {
		case i >= 0:
			f = fields[i]
		case j >= 0:
			f, target = sfields[j], sv
		case isPlugged:
			others := otherKinds(plug, e.name)
			switch {
			case settings != nil && len(others) > 0:
				d.add(p, e.key.Line, "%s", notForKind(plug, kind, others))
			case settings != nil:
				d.add(p, e.key.Line, "unknown key%s", hint(e.name, slices.Concat(fields, sfields)))
			case len(others) == 0:
				d.add(p, e.key.Line, "unknown key%s", hint(e.name, allKeys(plug, fields)))
			}
			// A key of some type, with the type missing or unknown: the
			// validator reports the type.
			continue
		default:
			d.add(p, e.key.Line, "unknown key%s", hint(e.name, fields))
			continue
		}
		if f.base != "" {
			if present[f.base] {
				d.add(p, e.key.Line, "%s is also set; give only one of %s and %s", f.base, f.base, f.name)
				continue
			}
			d.secretFile(e.value, target.Field(f.index), p, joinKey(path, f.base), e.key.Line)
			continue
		}
		d.value(e.value, target.Field(f.index), p, e.key.Line)
	}
}

// secretFile reads the secret named by an X_file key into the Secret v.
// Messages name the key and the file, never the file's content.
func (d *decoder) secretFile(n *yaml.Node, v reflect.Value, path, base string, keyLine int) {
	n = deref(n)
	if n == nil || !d.spend(path, keyLine) {
		return
	}
	if isNull(n) {
		d.locs[path] = loc{line: n.Line, null: true}
		return
	}
	d.locs[path] = loc{line: n.Line}
	name, ok := d.scalar(n, path, "a file name")
	if !ok {
		return
	}
	if strings.TrimSpace(name) == "" {
		d.add(path, n.Line, "the file name is empty")
		return
	}
	s, err := readSecretFile(d.resolve(name))
	if err != nil {
		d.add(path, n.Line, "%v", err)
		return
	}
	v.Set(reflect.ValueOf(NewSecret(s)))
	d.locs[base] = loc{line: n.Line}
}

// readSecretFile returns a file's content without one trailing newline
// ("\n" or "\r\n"). The file must be a regular file (a link to one is
// fine) of at most MaxSecretFileBytes.
func readSecretFile(name string) (string, error) {
	b, err := smallfile.Read(name, MaxSecretFileBytes, "a secret file")
	if err != nil {
		return "", err
	}
	s := string(b)
	if t, ok := strings.CutSuffix(s, "\r\n"); ok {
		s = t
	} else {
		s = strings.TrimSuffix(s, "\n")
	}
	if s == "" {
		return "", fmt.Errorf("%s is empty", name)
	}
	return s, nil
}

// resolve makes a relative file name relative to the configuration's
// directory.
func (d *decoder) resolve(name string) string {
	return resolvePath(d.dir, name)
}

func resolvePath(dir, name string) string {
	if dir == "" || name == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(dir, name)
}

// entry is one key: value pair of a mapping, after merge keys (<<) are
// applied.
type entry struct {
	key, value *yaml.Node
	name       string
}

// entries returns a mapping's pairs, reporting duplicate and non-string
// keys. Pairs merged in with `<<: *anchor` come after the mapping's own
// and never override them; among merged mappings, the first one wins.
func (d *decoder) entries(n *yaml.Node, path string) []entry {
	var out []entry
	first := map[string]int{} // key -> line it was first set on
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kd := deref(k)
		if kd == nil || kd.Kind != yaml.ScalarNode {
			d.add(path, k.Line, "a key must be a plain string, not %s", describe(kd))
			continue
		}
		if kd.ShortTag() == "!!merge" {
			merges = append(merges, val)
			continue
		}
		if line, dup := first[kd.Value]; dup {
			d.add(joinKey(path, kd.Value), k.Line, "duplicate key (first set on line %d)", line)
			continue
		}
		first[kd.Value] = k.Line
		out = append(out, entry{key: k, value: val, name: kd.Value})
	}
	seen := map[*yaml.Node]bool{n: true}
	for _, m := range merges {
		out = d.merge(m, path, first, seen, out)
	}
	return out
}

// merge adds the pairs of a merged mapping (or list of mappings) whose keys
// are not in have yet. seen holds the mappings already merged, which also
// stops a mapping that merges itself.
func (d *decoder) merge(m *yaml.Node, path string, have map[string]int, seen map[*yaml.Node]bool, out []entry) []entry {
	m = deref(m)
	var maps []*yaml.Node
	switch {
	case m != nil && m.Kind == yaml.MappingNode:
		maps = []*yaml.Node{m}
	case m != nil && m.Kind == yaml.SequenceNode:
		for _, item := range m.Content {
			if it := deref(item); it != nil && it.Kind == yaml.MappingNode {
				maps = append(maps, it)
			} else {
				d.add(path, item.Line, "<< merges mappings, not %s", describe(it))
			}
		}
	default:
		line := 0
		if m != nil {
			line = m.Line
		}
		d.add(path, line, "<< merges a mapping or a list of mappings, not %s", describe(m))
	}
	for _, mm := range maps {
		if seen[mm] || !d.spend(path, mm.Line) {
			continue
		}
		seen[mm] = true
		var nested []*yaml.Node
		for i := 0; i+1 < len(mm.Content); i += 2 {
			k := deref(mm.Content[i])
			if k == nil || k.Kind != yaml.ScalarNode {
				continue // reported where the mapping itself is decoded
			}
			if k.ShortTag() == "!!merge" {
				nested = append(nested, mm.Content[i+1])
				continue
			}
			if _, ok := have[k.Value]; ok {
				continue
			}
			have[k.Value] = k.Line
			out = append(out, entry{key: mm.Content[i], value: mm.Content[i+1], name: k.Value})
		}
		for _, nm := range nested {
			out = d.merge(nm, path, have, seen, out)
		}
	}
	return out
}

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 100 {
			return nil
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's kind for messages. It never quotes the value:
// the value may be a secret.
func describe(n *yaml.Node) string {
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	default:
		return "a single value"
	}
}

// joinKey appends a mapping key to a path: "sources[1]" + "tls" is
// "sources[1].tls". Keys that are not plain words are quoted:
// mapping["home dir"].
func joinKey(path, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return path + "[" + strconv.Quote(key) + "]"
	case path == "":
		return key
	default:
		return path + "." + key
	}
}

// index appends a list index to a path: "sources" + 1 is "sources[1]".
func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// expand replaces ${VAR} with the variable's value from env; $${ stands for
// a literal ${. It returns the problems it found, each naming the
// variable; a value read from the environment is not expanded again.
func expand(s string, env func(string) (string, bool)) (string, []string) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	var problems []string
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				problems = append(problems, "${ is not closed by }; write $${ for a literal ${")
				return s, problems
			}
			name := s[i+2 : i+2+end]
			i += 2 + end + 1
			if !isVarName(name) {
				problems = append(problems, fmt.Sprintf("${%s} is not a variable reference: a name is letters, digits and _ (write $${ for a literal ${)", name))
				continue
			}
			val, ok := env(name)
			if !ok {
				problems = append(problems, fmt.Sprintf("environment variable %s is not set", name))
				continue
			}
			b.WriteString(val)
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), problems
}

func isVarName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// hint suggests what an unknown key may have meant: the nearest key the
// mapping accepts, or the list of them when there are few.
func hint(key string, fields []field) string {
	var names []string
	for _, f := range fields {
		names = append(names, f.name)
	}
	if s := nearest(key, names); s != "" {
		return fmt.Sprintf(" (did you mean %s?)", s)
	}
	if len(names) <= 10 {
		sort.Strings(names)
		return fmt.Sprintf(" (known keys: %s)", strings.Join(names, ", "))
	}
	return ""
}

// nearest returns the name closest to key when it is a likely typo: the
// same apart from case and separators, or at most two edits away (one for
// short names).
func nearest(key string, names []string) string {
	if len(key) > 64 {
		return ""
	}
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	}
	best, bestDist := "", 3
	for _, n := range names {
		if norm(n) == norm(key) {
			return n
		}
		limit := 2
		if len(n) <= 4 {
			limit = 1
		}
		if dist := editDistance(key, n); dist <= limit && dist < bestDist {
			best, bestDist = n, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between two strings, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// article returns "an" for types whose name is read starting with a vowel
// sound (an ldap source, an okta source) and "a" otherwise (a csv source).
func article(kind string) string {
	if kind != "" && strings.ContainsRune("aeiol", rune(kind[0])) {
		return "an"
	}
	return "a"
}
