package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/seatsync/seatsync/internal/smallfile"
)

// Defaults, applied to keys the file leaves out (see docs/configuration.md).
const (
	DefaultStoreDriver    = "sqlite"
	DefaultStorePath      = "seatsync.db" // sqlite, next to the configuration file
	DefaultOnOverage      = "keep"
	DefaultMaxDeprovision = "10%"
	DefaultUsernameCase   = "lower"
	DefaultOnLeave        = "block"
	DefaultArea           = "primary"
	DefaultMaxFieldBytes  = 4 << 10 // 4 KiB
	MaxMaxFieldBytes      = 1 << 20 // 1 MiB: the most max_field_bytes may allow
	// Targets.
	DefaultTargetOnDelete          = "deactivate"
	DefaultTargetTimeout           = 30 * time.Second
	DefaultTargetRequestsPerSecond = 10
	DefaultTargetVerifySchedule    = "0 3 * * *"
	DefaultWarnAtPercent           = 90
	DefaultSMTPTLS                 = "starttls"
	DefaultSMTPPort                = 587 // 465 when smtp.tls is tls
	DefaultWebhookFormat           = "json"
	DefaultWebhookTimeout          = 10 * time.Second
	DefaultLogLevel                = "info"
	DefaultLogFormat               = "json"
	DefaultListen                  = "127.0.0.1:8080"
	DefaultRunOnStart              = "auto"
	DefaultShutdownTimeout         = 30 * time.Second
	DefaultLeaderCheck             = 5 * time.Second
	// MinLeaderCheck is the shortest server.leader_check: the leader
	// pings every half check and the server's TCP keepalives count in
	// seconds.
	MinLeaderCheck = time.Second

	// MaxConfigBytes is the largest configuration file Load reads.
	MaxConfigBytes = 1 << 20 // 1 MiB
	// MaxSecretFileBytes is the largest file a *_file secret may name.
	MaxSecretFileBytes = 64 << 10 // 64 KiB
	// MinRemoteTokenLength is the shortest server.token accepted when
	// server.listen is not a loopback address.
	MinRemoteTokenLength = 32
)

// Load reads and checks the configuration file at path, expanding ${VAR}
// from the process environment. Relative paths in the file are resolved
// against the file's directory. A file that can be read but is not valid
// returns Problems, listing every problem at once.
//
// The file must be a regular file (a link to one is fine) of at most
// MaxConfigBytes: a named pipe is refused at once instead of waiting for a
// writer, and a huge file is refused from its size, without being read.
//
// plugins are the source and target types, each with its own keys.
func Load(path string, plugins Plugins) (*Config, error) {
	data, err := smallfile.Read(path, MaxConfigBytes, "a configuration file")
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return ParseWith(data, path, os.LookupEnv, plugins)
}

// Parse decodes, completes with defaults and checks a configuration.
// path is the file the data came from: relative paths in it (store.path,
// a csv source's path, tls.ca_file, private_key_file and every *_file
// secret) are resolved against its directory; with path "" they stay
// relative to the working directory. env looks up ${VAR} references (nil
// means no variable is set).
//
// Any error Parse returns is Problems, sorted by line. With Problems, the
// Config is what could be decoded, with defaults applied (nil when the
// file is not YAML or not a mapping), so that a tool such as `seatsync
// validate` can add problems of its own and report them all together;
// nothing should run with it.
func Parse(data []byte, path string, env func(string) (string, bool)) (*Config, error) {
	return ParseWith(data, path, env, Plugins{})
}

// ParseWith is Parse with the plug-in types whose keys it decodes.
func ParseWith(data []byte, path string, env func(string) (string, bool), plugins Plugins) (*Config, error) {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	root, probs := parseYAML(data)
	if len(probs) > 0 {
		sortProblems(probs)
		return nil, probs
	}
	if root == nil {
		return nil, Problems{{Message: "the file is empty; it needs at least version, licensing.pools and sources"}}
	}

	dir := ""
	if path != "" {
		dir = configDir(path)
	}
	d := newDecoder(env, dir)
	d.plugins = plugins
	cfg := &Config{}
	d.value(root, reflect.ValueOf(cfg).Elem(), "", 0)
	if d.bad[""] { // not a mapping: nothing to complete or check
		return nil, d.probs
	}
	cfg.Path = path
	cfg.locs = d.locs
	applyDefaults(cfg, d.locs)
	resolvePaths(cfg, dir)
	v := &validator{c: cfg, locs: d.locs, bad: d.bad, plugins: plugins}
	v.validate()
	sortProblems(v.warns)
	cfg.Warnings = v.warns
	probs = append(d.probs, v.probs...)
	if len(probs) > 0 {
		sortProblems(probs)
		return cfg, probs
	}
	return cfg, nil
}

// parseYAML returns the root node of the only document in data, nil for
// an empty file.
func parseYAML(data []byte) (root *yaml.Node, probs Problems) {
	defer func() {
		// yaml.v3 raises its errors as panics and recovers them itself;
		// should one ever escape, it is still a problem with the file,
		// not a reason to crash the daemon on reload.
		if r := recover(); r != nil {
			root, probs = nil, Problems{{Message: fmt.Sprintf("invalid YAML: %v", r)}}
		}
	}()
	protected := protectVars(data)
	dec := yaml.NewDecoder(bytes.NewReader(protected))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, Problems{yamlProblem(err, data)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, Problems{{Line: extra.Line, Message: "a second YAML document (---); the file holds one configuration"}}
	case !errors.Is(err, io.EOF):
		return nil, Problems{yamlProblem(err, data)}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	if !bytes.Equal(protected, data) {
		restoreVars(&doc)
	}
	root = doc.Content[0]
	if isNull(root) {
		return nil, nil
	}
	return root, nil
}

// YAML does not allow { and } in a plain scalar inside a flow collection,
// so `smtp: {password: ${SMTP_PASSWORD}}` (as SPEC section 7 writes it)
// would be a syntax error. Before parsing, the braces of every ${NAME}
// (and $${NAME}) are swapped for two private-use characters, which YAML
// accepts anywhere; after parsing they are swapped back in every node, so
// the decoder sees exactly what the user wrote. Files that already hold
// those characters (or write them as \uE00x escapes), or are not UTF-8,
// are parsed as they are.
const (
	openMark  = "\uE000"
	closeMark = "\uE001"
)

func protectVars(data []byte) []byte {
	if !bytes.Contains(data, []byte("${")) || !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0 ||
		bytes.Contains(data, []byte(openMark)) || bytes.Contains(data, []byte(closeMark)) ||
		bytes.Contains(bytes.ToLower(data), []byte(`\ue00`)) {
		return data
	}
	re := regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*\}`)
	return re.ReplaceAllFunc(data, func(m []byte) []byte {
		name := m[2 : len(m)-1]
		out := make([]byte, 0, len(m)+4)
		out = append(out, '$')
		out = append(out, openMark...)
		out = append(out, name...)
		return append(out, closeMark...)
	})
}

// restoreVars undoes protectVars in every node of the tree.
func restoreVars(n *yaml.Node) {
	if strings.Contains(n.Value, openMark) {
		n.Value = strings.NewReplacer(openMark, "{", closeMark, "}").Replace(n.Value)
	}
	for _, c := range n.Content {
		restoreVars(c)
	}
}

// yamlProblem turns a yaml.v3 syntax error ("yaml: line 3: mapping values
// are not allowed in this context") into a Problem.
//
// yaml.v3 (v3.0.1) numbers lines from 1 in its scanner's errors but from 0
// in its parser's, and leaves the line out when it is the first one. The
// parser's messages are few and fixed, so they are recognised and their
// line corrected (and kept within the file: an error at its very end is
// reported on its last line).
func yamlProblem(err error, data []byte) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := regexp.MustCompile(`^line (\d+): (.*)$`).FindStringSubmatch(msg); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil {
			line, msg = n, m[2]
		}
	}
	switch msg {
	case "did not find expected ',' or ']'", "did not find expected ',' or '}'",
		"did not find expected <document start>", "did not find expected <stream-start>",
		"did not find expected '-' indicator", "did not find expected key",
		"did not find expected node content", "found duplicate %YAML directive",
		"found duplicate %TAG directive", "found incompatible YAML document",
		"found undefined tag handle":
		line++
	}
	if last := bytes.Count(bytes.TrimRight(data, "\n"), []byte("\n")) + 1; line > last {
		line = last
	}
	if msg == "found character that cannot start any token" && line > 0 {
		if lines := bytes.Split(data, []byte("\n")); line <= len(lines) && bytes.Contains(lines[line-1], []byte("\t")) {
			msg += ": a tab; YAML indents with spaces only"
		}
	}
	return Problem{Line: line, Message: "invalid YAML: " + msg}
}

// configDir is the directory relative paths are resolved against.
func configDir(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return filepath.Dir(path)
}

// ParseSchedule parses a schedule as seatsync reads it: five cron fields
// (minute hour day-of-month month day-of-week) or a descriptor such as
// "@hourly" or "@every 15m", optionally after "CRON_TZ=Europe/Berlin ".
func ParseSchedule(spec string) (cron.Schedule, error) {
	if (strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=")) && !strings.Contains(spec, " ") {
		// cron v3.0.1 panics on a time zone with nothing after it.
		return nil, errors.New("a time zone must be followed by a space and the schedule")
	}
	p := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	sched, err := p.Parse(spec)
	if err != nil {
		return nil, err
	}
	// cron turns "@every 0s" (and any interval under a second) into one
	// second, so the interval as written is checked here.
	if rest, ok := strings.CutPrefix(withoutTZ(spec), "@every "); ok {
		if d, err := time.ParseDuration(strings.TrimSpace(rest)); err == nil && d <= 0 {
			return nil, timingError(fmt.Sprintf("has an interval of %s: it must be more than 0", strings.TrimSpace(rest)))
		}
	}
	now := time.Now()
	next := sched.Next(now)
	if next.IsZero() || next.Sub(now) > 366*24*time.Hour {
		return nil, timingError("has no run in the next year (a date that does not exist, such as 30 February?)")
	}
	return sched, nil
}

// timingError is a schedule that parses but would never run, or never
// stop: its message follows the schedule ("\"@every 0s\" has an
// interval ...").
type timingError string

func (e timingError) Error() string { return string(e) }

// withoutTZ drops a schedule's leading "TZ=..." or "CRON_TZ=...".
func withoutTZ(spec string) string {
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		if _, rest, ok := strings.Cut(spec, " "); ok {
			return strings.TrimSpace(rest)
		}
	}
	return spec
}

// applyDefaults fills in what the file leaves out. Numbers and durations
// get their default only when the key is absent (or null), so an explicit
// 0 is checked rather than replaced; strings get theirs when empty.
func applyDefaults(c *Config, locs map[string]loc) {
	given := func(path string) bool {
		l, ok := locs[path]
		return ok && !l.null
	}
	orString := func(s *string, def string) {
		if *s == "" {
			*s = def
		}
	}

	orString(&c.Store.Driver, DefaultStoreDriver)
	if c.Store.Driver == "sqlite" {
		orString(&c.Store.Path, DefaultStorePath)
	}
	orString(&c.Licensing.OnOverage, DefaultOnOverage)
	if !given("safety.max_deprovision") {
		_ = c.Safety.MaxDeprovision.parseScalar(DefaultMaxDeprovision) // a constant that parses
	}

	for i := range c.Sources {
		s := &c.Sources[i]
		at := func(key string) string { return index("sources", i) + "." + key }
		orString(&s.UsernameCase, DefaultUsernameCase)
		orString(&s.OnLeave, DefaultOnLeave)
		orString(&s.Area, DefaultArea)
		if !given(at("max_field_bytes")) {
			s.MaxFieldBytes = DefaultMaxFieldBytes
		}
		if s.Settings != nil {
			s.Settings.Defaults(c.entry(index("sources", i), nil, nil))
		}
	}

	for i := range c.Targets {
		t := &c.Targets[i]
		at := func(key string) string { return index("targets", i) + "." + key }
		orString(&t.OnDelete, DefaultTargetOnDelete)
		if !given(at("adopt")) {
			t.Adopt = true
		}
		if !given(at("timeout")) {
			t.Timeout.Duration = DefaultTargetTimeout
		}
		if !given(at("max_requests_per_second")) {
			t.MaxRequestsPerSecond = DefaultTargetRequestsPerSecond
		}
		orString(&t.VerifySchedule, DefaultTargetVerifySchedule)
		if t.Settings != nil {
			t.Settings.Defaults(c.entry(index("targets", i), nil, nil))
		}
	}

	if !given("notify.warn_at_percent") {
		c.Notify.WarnAtPercent = DefaultWarnAtPercent
	}
	if e := c.Notify.Email; e != nil {
		orString(&e.SMTP.TLS, DefaultSMTPTLS)
		if !given("notify.email.smtp.port") {
			e.SMTP.Port = DefaultSMTPPort
			if e.SMTP.TLS == "tls" {
				e.SMTP.Port = 465
			}
		}
	}
	for i := range c.Notify.Webhooks {
		w := &c.Notify.Webhooks[i]
		orString(&w.Format, DefaultWebhookFormat)
		if !given(index("notify.webhooks", i) + ".timeout") {
			w.Timeout.Duration = DefaultWebhookTimeout
		}
	}

	orString(&c.Server.Listen, DefaultListen)
	orString(&c.Server.RunOnStart, DefaultRunOnStart)
	if !given("server.shutdown_timeout") {
		c.Server.ShutdownTimeout.Duration = DefaultShutdownTimeout
	}
	if !given("server.leader_check") {
		c.Server.LeaderCheck.Duration = DefaultLeaderCheck
	}
	orString(&c.Log.Level, DefaultLogLevel)
	orString(&c.Log.Format, DefaultLogFormat)
}

// resolvePaths makes the file paths in the configuration relative to its
// directory (the *_file secrets are resolved as they are read, and each
// source's and target's own files by its Settings' Defaults).
func resolvePaths(c *Config, dir string) {
	c.Store.Path = resolvePath(dir, c.Store.Path)
	l := &c.Licensing
	for _, p := range []*string{&l.LicenseFile, &l.PublicKeyFile, &l.LicenseTLS.CAFile} {
		*p = resolvePath(dir, *p)
	}
}
