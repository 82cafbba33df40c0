package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/seatsync/seatsync/model"
)

// This file checks a decoded configuration, with its defaults applied,
// against the rules of SPEC section 7. Every problem is collected, each at
// the path of the value that is wrong and the line it was written on (or,
// for a missing key, the line of the mapping that should hold it).

// IdentityFields returns the identity fields a source's mapping may set
// (SPEC section 1).
func IdentityFields() []string { return model.FieldNames() }

type validator struct {
	plugins Plugins
	c       *Config
	locs    map[string]loc
	bad     map[string]bool // paths the decoder already reported
	probs   Problems
	warns   Problems
}

// add records a problem at path, unless the decoder already reported one
// there (a value that could not be read is not checked again).
func (v *validator) add(path, format string, args ...any) {
	if v.bad[path] {
		return
	}
	v.probs = append(v.probs, Problem{Path: path, Line: v.line(path), Message: fmt.Sprintf(format, args...)})
	v.bad[path] = true
}

// warn records something that is allowed but probably not meant.
func (v *validator) warn(path, format string, args ...any) {
	v.warns = append(v.warns, Problem{Path: path, Line: v.line(path), Message: fmt.Sprintf(format, args...)})
}

// line returns the line path was written on, or that of its nearest
// written ancestor.
func (v *validator) line(path string) int { return lineOf(v.locs, path) }

func lineOf(locs map[string]loc, path string) int {
	for {
		if l, ok := locs[path]; ok {
			return l.line
		}
		if path == "" {
			return 0
		}
		path = parentPath(path)
	}
}

// parentPath drops a path's last key or index.
func parentPath(path string) string {
	if strings.HasSuffix(path, `"]`) { // a quoted key: mapping["a.b"]
		if i := strings.LastIndex(path, `["`); i >= 0 {
			return path[:i]
		}
	}
	i := max(strings.LastIndexByte(path, '.'), strings.LastIndexByte(path, '['))
	if i < 0 {
		return ""
	}
	return path[:i]
}

// given reports whether path was written with a non-null value.
func (v *validator) given(path string) bool {
	l, ok := v.locs[path]
	return ok && !l.null
}

// oneOf checks that val is one of the options.
func (v *validator) oneOf(path, val string, options ...string) bool {
	if slices.Contains(options, val) {
		return true
	}
	v.add(path, "%q is not one of %s", val, strings.Join(options, ", "))
	return false
}

func (v *validator) schedule(path, spec string) {
	if spec == "" {
		return
	}
	sched, err := ParseSchedule(spec)
	var timing timingError
	switch {
	case errors.As(err, &timing):
		v.add(path, "%q %s", spec, timing)
	case err != nil:
		v.add(path, "%q is not a schedule (5 cron fields or a descriptor such as @every 15m): %v", spec, err)
	default:
		if next := sched.Next(time.Now()); sched.Next(next).Sub(next) < time.Minute {
			v.warn(path, "%q runs more than once a minute; fine for tests, heavy for a directory", spec)
		}
	}
}

// secret reports whether a secret was configured: set, or written but not
// readable (the decoder has reported that, so "required" would be noise).
func (v *validator) secret(path string, s Secret) bool {
	return s.IsSet() || v.bad[path] || v.bad[path+"_file"]
}

func (v *validator) notEmpty(path, s string) bool {
	if strings.TrimSpace(s) == "" {
		v.add(path, "must not be empty")
		return false
	}
	return true
}

func (v *validator) positive(path string, d Duration) {
	if d.Duration <= 0 {
		v.add(path, "must be more than 0")
	}
}

func (v *validator) validate() {
	c := v.c
	if !v.given("version") {
		v.add("version", "required: write version: 1")
	} else if c.Version != 1 {
		v.add("version", "%d is not a supported version (the only one is 1)", c.Version)
	}
	v.store()
	v.schedule("schedule", c.Schedule)
	areas := v.licensing()
	v.sources(areas)
	v.targets(areas)
	v.notify()
	v.server()
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "json", "console")
}

func (v *validator) store() {
	s := v.c.Store
	if !v.oneOf("store.driver", s.Driver, "sqlite", "postgres") {
		return
	}
	switch s.Driver {
	case "postgres":
		hasDSN := v.secret("store.dsn", s.DSN)
		switch {
		case !hasDSN && v.given("store.path"):
			// A path-only store that names postgres: say what to put
			// where, once.
			v.add("store.dsn", "required when driver is postgres (or dsn_file): the PostgreSQL connection string, such as postgres://seatsync@db.example/seatsync?sslmode=verify-full; store.path is the sqlite driver's file, not used by postgres")
		case !hasDSN:
			v.add("store.dsn", "required when driver is postgres (or dsn_file): the PostgreSQL connection string, such as postgres://seatsync@db.example/seatsync?sslmode=verify-full")
		case v.given("store.path"):
			v.add("store.path", "not used by the postgres driver (it is for sqlite)")
		}
	case "sqlite":
		if s.DSN.IsSet() {
			v.add("store.dsn", "not used by the sqlite driver (it is for postgres)")
		}
	}
}

// licensing checks the pools, exempt list and priority rules, and returns
// each area with the index of the pool it belongs to.
func (v *validator) licensing() map[string]int {
	l := v.c.Licensing
	areas := map[string]int{}
	if len(l.Pools) == 0 {
		v.add("licensing.pools", "at least one pool is required")
	}
	names := map[string]int{}
	for i, p := range l.Pools {
		pp := index("licensing.pools", i)
		if v.notEmpty(pp+".name", p.Name) {
			if j, dup := names[p.Name]; dup {
				v.add(pp+".name", "%q is already the name of licensing.pools[%d]", p.Name, j)
			} else {
				names[p.Name] = i
			}
		}
		limitOK := v.given(pp+".limit") && !v.bad[pp+".limit"]
		switch from := v.given(pp + ".limit_from"); {
		case from && v.given(pp+".limit"):
			v.add(pp+".limit_from", "a pool has limit or limit_from, not both")
		case from && strings.TrimSpace(p.LimitFrom) == "":
			v.add(pp+".limit_from", "must name a key of the licence file's limits, such as MAX_USERS")
		case from && l.LicenseFile == "":
			v.add(pp+".limit_from", "needs licensing.license_file: the licence whose limits.%s this pool takes", p.LimitFrom)
		case !from && !v.given(pp+".limit"):
			v.add(pp+".limit", `required: a number of seats or "unlimited" (or limit_from, a key of the licence file)`)
		}
		if len(p.Areas) == 0 {
			v.add(pp+".areas", "at least one area is required")
		}
		for k, a := range p.Areas {
			ap := index(pp+".areas", k)
			if !v.notEmpty(ap, a) {
				continue
			}
			if j, dup := areas[a]; dup {
				if j == i {
					v.add(ap, "%q is listed twice", a)
				} else {
					v.add(ap, "%q is already an area of licensing.pools[%d]; an area belongs to one pool", a, j)
				}
				continue
			}
			areas[a] = i
		}
		switch {
		case p.Reserve < 0:
			v.add(pp+".reserve", "%d is negative", p.Reserve)
		case limitOK && !p.Limit.Unlimited && p.Reserve > p.Limit.N:
			v.add(pp+".reserve", "%d is more than the pool's limit of %d", p.Reserve, p.Limit.N)
		}
	}

	v.licenseFile()

	seen := map[string]int{}
	for i, u := range l.Exempt {
		ep := index("licensing.exempt", i)
		if !v.notEmpty(ep, u) {
			continue
		}
		key := strings.ToLower(u)
		if j, dup := seen[key]; dup {
			v.add(ep, "%q is already listed as licensing.exempt[%d] (usernames are compared ignoring case)", u, j)
			continue
		}
		seen[key] = i
	}

	for i, r := range l.Priority {
		rp := index("licensing.priority", i)
		if strings.TrimSpace(r.Group) == "" {
			v.add(rp+".group", "required")
		}
		if !v.given(rp + ".weight") {
			v.add(rp+".weight", "required: a whole number, higher goes first")
		}
	}
	v.oneOf("licensing.on_overage", l.OnOverage, "keep", "block_newest")
	v.products(areas)
	return areas
}

// products checks the per-product licences.
func (v *validator) products(areas map[string]int) {
	l := v.c.Licensing
	names := map[string]int{}
	for i, p := range l.Products {
		pp := index("licensing.products", i)
		if v.notEmpty(pp+".name", p.Name) {
			if j, dup := names[p.Name]; dup {
				v.add(pp+".name", "%q is already the name of licensing.products[%d]", p.Name, j)
			} else {
				names[p.Name] = i
			}
			if strings.ContainsAny(p.Name, " \t,") {
				v.add(pp+".name", "%q has a space or comma; product names are listed separated by spaces", p.Name)
			}
		}
		if !v.given(pp + ".limit") {
			v.add(pp+".limit", `required: a number of licences or "unlimited"`)
		}
		if v.given(pp+".enabled_by") && strings.TrimSpace(p.EnabledBy) == "" {
			v.add(pp+".enabled_by", "must name a yes/no flag of the licence file's limits")
		} else if p.EnabledBy != "" && l.LicenseFile == "" {
			v.add(pp+".enabled_by", "needs licensing.license_file: the licence whose flag %s enables this product", p.EnabledBy)
		}
		if len(p.Grant) == 0 {
			v.add(pp+".grant", "at least one rule is required (group, area or attribute)")
		}
		for j, r := range p.Grant {
			rp := index(pp+".grant", j)
			n := 0
			for _, set := range []bool{r.Group != "", r.Area != "", r.Attribute != nil} {
				if set {
					n++
				}
			}
			switch {
			case n > 1:
				v.add(rp, "has more than one of group, area and attribute; a rule has one of them")
			case n == 0:
				v.add(rp, "needs a group, an area or an attribute to match")
			case r.Attribute != nil && strings.TrimSpace(r.Attribute.Name) == "":
				v.add(rp+".attribute.name", "required: the profile field or attribute to compare")
			case r.Area != "":
				v.area(rp+".area", r.Area, areas)
			}
		}
	}
}

// licenseFile checks the keys of the vendor's licence file. The licence
// itself (its signature, its keys) is checked by `validate`, which knows
// the licence format; here only how the keys fit together.
func (v *validator) licenseFile() {
	l := v.c.Licensing
	if l.LicenseFile == "" {
		for _, key := range []string{"public_key_file", "license_url", "license_tls"} {
			if v.given("licensing." + key) {
				v.add("licensing."+key, "needs licensing.license_file (the licence it is for)")
			}
		}
		return
	}
	if !slices.ContainsFunc(l.Pools, func(p Pool) bool { return p.LimitFrom != "" }) {
		v.warn("licensing.license_file", "no pool takes its limit from the licence (limit_from)")
	}
	if l.PublicKeyFile == "" {
		v.warn("licensing.license_file", "without licensing.public_key_file the licence's signature is not checked: whoever can write the file sets the limits")
	}
	if l.LicenseURL != "" {
		switch u, err := url.Parse(l.LicenseURL); {
		case err != nil || u.Host == "" || u.Scheme != "https":
			v.add("licensing.license_url", "is not an https:// URL")
		case u.Fragment != "":
			v.add("licensing.license_url", "has a fragment; give the licence file's URL (its signature is that URL with .sig added)")
		}
	} else if v.given("licensing.license_tls") {
		v.add("licensing.license_tls", "only applies with licensing.license_url")
	}
}

// area checks that a source or area rule puts people in an area of some
// pool. With no areas at all the pools are already reported.
func (v *validator) area(path, area string, areas map[string]int) {
	if len(areas) == 0 || !v.notEmpty(path, area) {
		return
	}
	if _, ok := areas[area]; ok {
		return
	}
	known := make([]string, 0, len(areas))
	for a := range areas {
		known = append(known, a)
	}
	sort.Strings(known)
	what := fmt.Sprintf("%q", area)
	if !v.given(path) {
		what = fmt.Sprintf("the default area %q", area)
	}
	v.add(path, "%s is not an area of any pool (areas: %s)", what, strings.Join(known, ", "))
}

func (v *validator) sources(areas map[string]int) {
	if len(v.c.Sources) == 0 {
		v.add("sources", "at least one source is required")
	}
	names := map[string]int{}
	for i := range v.c.Sources {
		v.source(i, &v.c.Sources[i], areas, names)
	}
}

func (v *validator) targets(areas map[string]int) {
	names := map[string]int{}
	for i := range v.c.Targets {
		t := &v.c.Targets[i]
		p := index("targets", i)
		at := func(key string) string { return p + "." + key }
		v.pluggedEntry("targets", i, t.Name, t.Type, t.Settings, v.plugins.Targets, names)
		for j, a := range t.Areas {
			v.area(index(at("areas"), j), a, areas)
		}
		v.oneOf(at("on_delete"), t.OnDelete, "deactivate", "delete")
		v.positive(at("timeout"), t.Timeout)
		if t.MaxRequestsPerSecond < 0 {
			v.add(at("max_requests_per_second"), "must not be negative (0 means no pace)")
		}
		v.schedule(at("verify_schedule"), t.VerifySchedule)
		if t.Settings != nil {
			t.Settings.Validate(v.c.entry(p, v, areas))
		}
	}
}

// pluggedEntry checks the name and the type of item i of list (sources,
// targets): a unique name of safe characters, and a type of kinds (its
// settings are nil when it is not one).
func (v *validator) pluggedEntry(list string, i int, name, typ string, settings Settings, kinds Kinds, names map[string]int) {
	at := func(key string) string { return index(list, i) + "." + key }
	switch j, dup := names[name]; {
	case name == "":
		v.add(at("name"), "required")
	case !isSourceName(name):
		v.add(at("name"), "%q may only contain letters, digits, '-', '_' and '.'", name)
	case dup:
		v.add(at("name"), "%q is already the name of %s[%d]", name, list, j)
	default:
		names[name] = i
	}
	types := kinds.Names()
	switch {
	case typ == "":
		v.add(at("type"), "required: one of %s", strings.Join(types, ", "))
	case settings == nil:
		v.oneOf(at("type"), typ, types...)
	}
}

func isSourceName(s string) bool {
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

func (v *validator) source(i int, s *Source, areas map[string]int, names map[string]int) {
	p := index("sources", i)
	at := func(key string) string { return p + "." + key }

	v.pluggedEntry("sources", i, s.Name, s.Type, s.Settings, v.plugins.Sources, names)
	v.schedule(at("schedule"), s.Schedule)
	v.oneOf(at("username_case"), s.UsernameCase, "lower", "keep")
	if v.oneOf(at("on_leave"), s.OnLeave, "block", "delete", "keep") &&
		v.given(at("delete_after")) && s.OnLeave != "block" {
		v.add(at("delete_after"), "only applies with on_leave: block (on_leave is %s)", s.OnLeave)
	}
	v.area(at("area"), s.Area, areas)
	if s.MaxFieldBytes < 1 || s.MaxFieldBytes > MaxMaxFieldBytes {
		v.add(at("max_field_bytes"), "%d is not between 1 and %d", s.MaxFieldBytes, MaxMaxFieldBytes)
	}
	for j, g := range s.Groups {
		v.notEmpty(index(at("groups"), j), g)
	}
	for j, r := range s.AreaRules {
		rp := index(at("area_rules"), j)
		switch {
		case r.Group != "" && r.Attribute != nil:
			v.add(rp, "has both group and attribute; a rule has one of them")
		case r.Group == "" && r.Attribute == nil:
			v.add(rp, "needs a group or an attribute to match")
		case r.Attribute != nil && strings.TrimSpace(r.Attribute.Name) == "":
			v.add(rp+".attribute.name", "required: the identity field or attribute to compare")
		}
		if !v.given(rp + ".area") {
			v.add(rp+".area", "required")
		} else {
			v.area(rp+".area", r.Area, areas)
		}
	}
	fields := IdentityFields()
	keys := make([]string, 0, len(s.Mapping))
	for k := range s.Mapping {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		mp := joinKey(at("mapping"), k)
		if !slices.Contains(fields, k) {
			msg := fmt.Sprintf("%q is not an identity field (one of %s)", k, strings.Join(fields, ", "))
			if n := nearest(k, fields); n != "" {
				msg = fmt.Sprintf("%q is not an identity field (did you mean %s?)", k, n)
			}
			v.add(mp, "%s", msg)
			continue
		}
		if strings.TrimSpace(s.Mapping[k]) == "" {
			v.add(mp, "must name the source attribute or column to read")
		}
	}

	if s.Settings != nil {
		s.Settings.Validate(v.c.entry(p, v, areas))
	}
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (v *validator) address(path, a string) {
	if !v.notEmpty(path, a) {
		return
	}
	if _, err := mail.ParseAddress(a); err != nil {
		v.add(path, "%q is not an email address", a)
	}
}

func (v *validator) notify() {
	n := v.c.Notify
	if n.WarnAtPercent < 1 || n.WarnAtPercent > 100 {
		v.add("notify.warn_at_percent", "%d is not between 1 and 100", n.WarnAtPercent)
	}
	if e := n.Email; e != nil {
		if len(e.To) == 0 {
			v.add("notify.email.to", "at least one address is required")
		}
		for j, a := range e.To {
			v.address(index("notify.email.to", j), a)
		}
		if strings.TrimSpace(e.From) == "" {
			v.add("notify.email.from", "required")
		} else {
			v.address("notify.email.from", e.From)
		}
		if strings.TrimSpace(e.SMTP.Host) == "" {
			v.add("notify.email.smtp.host", "required")
		}
		if e.SMTP.Port < 1 || e.SMTP.Port > 65535 {
			v.add("notify.email.smtp.port", "%d is not a port (1 to 65535)", e.SMTP.Port)
		}
		v.oneOf("notify.email.smtp.tls", e.SMTP.TLS, "starttls", "tls", "none")
		if v.secret("notify.email.smtp.password", e.SMTP.Password) && e.SMTP.Username == "" {
			v.add("notify.email.smtp.password", "needs username")
		}
	}
	for j, w := range n.Webhooks {
		wp := index("notify.webhooks", j)
		// A webhook URL often carries a token (Slack's do), so messages
		// never quote it.
		if strings.TrimSpace(w.URL) == "" {
			v.add(wp+".url", "required")
		} else if u, err := url.Parse(w.URL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			v.add(wp+".url", "is not an http:// or https:// URL")
		}
		v.oneOf(wp+".format", w.Format, "slack", "json")
		v.positive(wp+".timeout", w.Timeout)
	}
}

func (v *validator) server() {
	s := v.c.Server
	v.oneOf("server.run_on_start", s.RunOnStart, "auto", "always", "never")
	v.positive("server.shutdown_timeout", s.ShutdownTimeout)
	if s.LeaderCheck.Duration < MinLeaderCheck {
		v.add("server.leader_check", "%s is shorter than the shortest check, %s", s.LeaderCheck.Duration, MinLeaderCheck)
	}
	host, port, err := net.SplitHostPort(s.Listen)
	if err != nil {
		v.add("server.listen", "%q is not host:port, such as 127.0.0.1:8080", s.Listen)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.add("server.listen", "%q: the port must be a number from 1 to 65535", s.Listen)
		return
	}
	if isLoopbackHost(host) {
		return // any token, or none: only this machine can connect
	}
	if !v.secret("server.token", s.Token) {
		v.add("server.listen", "%q is not a loopback address and server.token is not set; set a token (or token_file), or listen on 127.0.0.1", s.Listen)
		return
	}
	// Other machines can try tokens: a short one can be guessed. The
	// message never says how long it is.
	if s.Token.IsSet() && utf8.RuneCountInString(s.Token.Reveal()) < MinRemoteTokenLength {
		path := "server.token"
		if v.given("server.token_file") {
			path = "server.token_file"
		}
		v.add(path, "shorter than %d characters, which is too easy to guess with server.listen %q (not a loopback address); make a random one with: openssl rand -hex 32",
			MinRemoteTokenLength, s.Listen)
	}
}
