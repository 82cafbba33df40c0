// Package config loads and validates seatsync's YAML configuration
// (SPEC section 7).
//
// Loading is strict: unknown keys are errors, ${VAR} references are
// expanded from the environment, every secret has a *_file form, and every
// problem is reported at once with its YAML path and line.
package config

import (
	"slices"
	"strings"
	"time"
)

// Config is the whole configuration file.
type Config struct {
	Version   int       `yaml:"version"`
	Store     Store     `yaml:"store"`
	Schedule  string    `yaml:"schedule"`
	Licensing Licensing `yaml:"licensing"`
	Safety    Safety    `yaml:"safety"`
	Sources   []Source  `yaml:"sources"`
	Targets   []Target  `yaml:"targets"`
	Notify    Notify    `yaml:"notify"`
	Server    Server    `yaml:"server"`
	Log       Log       `yaml:"log"`

	// Path is the file the configuration was loaded from ("" when loaded
	// from bytes). Relative paths inside the file are resolved against its
	// directory by the loader.
	Path string `yaml:"-"`

	// Warnings are what the loader allows but a reader should know, such
	// as a schedule that runs more than once a minute; sorted by line.
	Warnings Problems `yaml:"-"`

	// locs records where each YAML path was written, for Line.
	locs map[string]loc
}

// Store selects the profile store.
type Store struct {
	Driver string `yaml:"driver"` // sqlite (default) | postgres
	Path   string `yaml:"path"`   // sqlite
	DSN    Secret `yaml:"dsn"`    // postgres; dsn_file also accepted
	// Retention prunes old runs and audit entries after each sync; a
	// period left out keeps everything.
	Retention Retention `yaml:"retention"`
}

// Retention is how long the store keeps run records and audit entries.
type Retention struct {
	Runs  Days `yaml:"runs"`
	Audit Days `yaml:"audit"`
}

// Days is a period written in days ("90d") or as a Go duration ("720h").
type Days struct{ time.Duration }

// Licensing holds the seat pools and the rules that order the queue.
type Licensing struct {
	// LicenseFile is the vendor's licence file, whose limits pools with
	// limit_from take; PublicKeyFile the vendor's PEM ed25519 public key
	// that signs it (optional: without it the signature is not checked);
	// LicenseURL where the file (and its .sig) is fetched before each run
	// (optional); LicenseTLS how that fetch trusts the server.
	LicenseFile   string     `yaml:"license_file"`
	PublicKeyFile string     `yaml:"public_key_file"`
	LicenseURL    string     `yaml:"license_url"`
	LicenseTLS    LicenseTLS `yaml:"license_tls"`

	Pools     []Pool         `yaml:"pools"`
	Exempt    []string       `yaml:"exempt"`
	Priority  []PriorityRule `yaml:"priority"`
	OnOverage string         `yaml:"on_overage"` // keep (default) | block_newest
	// Products are the per-product licences sold on top of the account
	// seat (a CRM add-on, a connector).
	Products []Product `yaml:"products"`
}

// Product is one per-product licence: Limit seats, given to the active
// profiles that match a Grant rule. EnabledBy names a yes/no flag of the
// licence file's limits; while it is off, or no licence is in force, the
// product grants nothing.
type Product struct {
	Name      string      `yaml:"name"`
	Limit     Limit       `yaml:"limit"`
	EnabledBy string      `yaml:"enabled_by"`
	Grant     []GrantRule `yaml:"grant"`
}

// GrantRule matches profiles that get a product: by group (compared
// case-insensitively), by area, or by a field or attribute value. A rule
// has exactly one of them.
type GrantRule struct {
	Group     string         `yaml:"group"`
	Area      string         `yaml:"area"`
	Attribute *AttributeRule `yaml:"attribute"`
}

// LicenseTLS is how license_url's server is trusted. Verification is
// always on; CAFile adds a CA to the system's.
type LicenseTLS struct {
	CAFile string `yaml:"ca_file"`
}

// Pool is one licence seat pool.
type Pool struct {
	Name  string `yaml:"name"`
	Limit Limit  `yaml:"limit"`
	// LimitFrom takes the limit from this key of the licence file's
	// limits, instead of Limit.
	LimitFrom string   `yaml:"limit_from"`
	Areas     []string `yaml:"areas"`
	Reserve   int      `yaml:"reserve"`
}

// Limit is a pool limit: a number or "unlimited".
type Limit struct {
	Unlimited bool
	N         int
}

// PriorityRule gives people in a group a higher place in the licence queue.
type PriorityRule struct {
	Group  string `yaml:"group"`
	Weight int    `yaml:"weight"`
}

// Safety holds the deprovision guard.
type Safety struct {
	MaxDeprovision Threshold `yaml:"max_deprovision"` // default "10%"
}

// Threshold is a count ("500") or a share ("10%").
type Threshold struct {
	Percent bool
	Value   float64 // a count, or a percentage 0..100
	Set     bool
}

// Source is one configured connector instance. The keys every type
// shares are here; Settings holds those of its type, owned by the type's
// connector package (the loader refuses keys of other types).
type Source struct {
	Name     string `yaml:"name"`
	Type     string `yaml:"type"` // one of the connector registry's types
	Schedule string `yaml:"schedule"`

	Mapping      map[string]string `yaml:"mapping"`
	UsernameCase string            `yaml:"username_case"` // lower (default) | keep
	Area         string            `yaml:"area"`
	Groups       []string          `yaml:"groups"`
	AreaRules    []AreaRule        `yaml:"area_rules"`
	OnLeave      string            `yaml:"on_leave"` // block (default) | delete | keep
	DeleteAfter  Duration          `yaml:"delete_after"`
	Adopt        bool              `yaml:"adopt"`
	// MaxFieldBytes is the longest value an identity field or attribute
	// may have (default 4096); an entry with a longer one is skipped.
	MaxFieldBytes int `yaml:"max_field_bytes"`

	// Settings are the type's own keys, decoded by its package's Settings.
	Settings Settings `yaml:"-"`
}

// Target is one application seatsync provisions (a target). The keys
// every type shares are here; Settings holds those of its type, owned by
// the type's package.
type Target struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"`
	// Areas are the areas whose profiles go to the target; empty means
	// every area.
	Areas    []string `yaml:"areas"`
	OnDelete string   `yaml:"on_delete"` // deactivate (default) | delete
	// Adopt links an application user that already has a profile's
	// userName (default true).
	Adopt   bool     `yaml:"adopt"`
	Timeout Duration `yaml:"timeout"` // per request
	// MaxRequestsPerSecond paces the requests (default 10).
	MaxRequestsPerSecond float64 `yaml:"max_requests_per_second"`
	// VerifySchedule is when serve runs `targets verify --fix`.
	VerifySchedule string `yaml:"verify_schedule"`

	// Settings are the type's own keys, decoded by its package's Settings.
	Settings Settings `yaml:"-"`
}

// Target returns the target called name, or nil.
func (c *Config) Target(name string) *Target {
	for i := range c.Targets {
		if c.Targets[i].Name == name {
			return &c.Targets[i]
		}
	}
	return nil
}

// AreaRule puts matching people into an area. A rule has exactly one of
// Group or Attribute.
type AreaRule struct {
	Group     string         `yaml:"group"`
	Attribute *AttributeRule `yaml:"attribute"`
	Area      string         `yaml:"area"`
}

// AttributeRule matches an identity field or extra attribute by value.
type AttributeRule struct {
	Name   string `yaml:"name"`
	Equals string `yaml:"equals"`
}

// Notify configures notifications (SPEC section 8).
type Notify struct {
	WarnAtPercent int       `yaml:"warn_at_percent"`
	Email         *Email    `yaml:"email"`
	Webhooks      []Webhook `yaml:"webhooks"`
}

// Email configures mail notifications.
type Email struct {
	To   []string `yaml:"to"`
	From string   `yaml:"from"`
	SMTP SMTP     `yaml:"smtp"`
}

// SMTP is the mail server seatsync sends through.
type SMTP struct {
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	TLS      string `yaml:"tls"` // starttls (default) | tls | none
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
}

// Webhook is one webhook receiver.
type Webhook struct {
	URL     string   `yaml:"url"`
	Format  string   `yaml:"format"` // slack | json
	Timeout Duration `yaml:"timeout"`
}

// Server configures `seatsync serve`'s HTTP listener.
type Server struct {
	Listen string `yaml:"listen"`
	Token  Secret `yaml:"token"`
	// RunOnStart says whether serve runs a sync as soon as it starts:
	// auto (default: when the last successful run is older than one
	// schedule period), always, or never (wait for the first tick).
	RunOnStart string `yaml:"run_on_start"`
	// ShutdownTimeout is how long serve lets a run in flight finish after
	// SIGTERM or SIGINT before cancelling it (default 30s).
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// LeaderCheck is how often serve checks its leadership of a shared
	// store (postgres), and how often a follower tries to take it over; a
	// replica that dies or loses the database is replaced within two
	// checks (default 5s).
	LeaderCheck Duration `yaml:"leader_check"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug | info (default) | warn | error
	Format string `yaml:"format"` // json (default) | console
}

// Duration is a Go duration written as a string ("90s", "720h").
type Duration struct{ time.Duration }

// StringList is a YAML scalar or a sequence of scalars.
type StringList []string

// Percent is a share written as "50%" (or a bare number, read as percent).
type Percent struct {
	Value float64
	Set   bool
}

// Line returns the line the YAML path (such as "sources[1].type") was
// written on, or, for a key that was not written, the line of the nearest
// enclosing value that was. It is 0 for a Config that did not come from
// Parse or Load. Use it to report problems found outside this package at
// the right place.
func (c *Config) Line(path string) int {
	if c == nil {
		return 0
	}
	return lineOf(c.locs, path)
}

// Given reports whether the YAML path (such as "log.level") was written
// in the file with a value; false for a Config not loaded from a file.
func (c *Config) Given(path string) bool {
	if c == nil {
		return false
	}
	l, ok := c.locs[path]
	return ok && !l.null
}

// PoolOf returns the pool that counts the given area, or nil if no pool
// lists it.
func (c *Config) PoolOf(area string) *Pool {
	for i := range c.Licensing.Pools {
		if slices.Contains(c.Licensing.Pools[i].Areas, area) {
			return &c.Licensing.Pools[i]
		}
	}
	return nil
}

// Source returns the source with the given name, or nil.
func (c *Config) Source(name string) *Source {
	for i := range c.Sources {
		if c.Sources[i].Name == name {
			return &c.Sources[i]
		}
	}
	return nil
}

// IsExempt reports whether username is on licensing.exempt, ignoring case.
func (c *Config) IsExempt(username string) bool {
	for _, u := range c.Licensing.Exempt {
		if strings.EqualFold(u, username) {
			return true
		}
	}
	return false
}

// ScheduleOf returns the schedule of the named source: its own, or else
// the top-level one. "" means the source has no schedule (or there is no
// such source).
func (c *Config) ScheduleOf(name string) string {
	s := c.Source(name)
	switch {
	case s == nil:
		return ""
	case s.Schedule != "":
		return s.Schedule
	default:
		return c.Schedule
	}
}
