package ldap

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
)

// Kind is the ldap source type, for the connector registry.
var Kind = connector.Kind{Settings: NewSettings, Open: Open}

// Defaults, applied to keys the file leaves out.
const (
	DefaultFlavor   = FlavorGeneric
	DefaultTLSMode  = "ldaps"
	DefaultPageSize = 500
	DefaultTimeout  = 30 * time.Second
	// MaxPageSize is Active Directory's MaxPageSize: it refuses bigger
	// pages.
	MaxPageSize = 1000
)

// Settings are an ldap source's own keys.
type Settings struct {
	Flavor         string            `yaml:"flavor"` // active_directory | openldap | generic
	URL            config.StringList `yaml:"url"`
	TLS            TLS               `yaml:"tls"`
	BindDN         string            `yaml:"bind_dn"`
	BindPassword   config.Secret     `yaml:"bind_password"` // bind_password_file too
	BaseDN         string            `yaml:"base_dn"`
	UserFilter     string            `yaml:"user_filter"`
	GroupBaseDN    string            `yaml:"group_base_dn"`
	GroupFilter    string            `yaml:"group_filter"`
	DisabledFilter string            `yaml:"disabled_filter"`
	PageSize       int               `yaml:"page_size"`
	Timeout        config.Duration   `yaml:"timeout"`
	NestedGroups   bool              `yaml:"nested_groups"`
	// Incremental reads only what changed since the last run (AD DirSync,
	// OpenLDAP RFC 4533 refreshOnly), and in full on FullSchedule.
	Incremental  bool   `yaml:"incremental"`
	FullSchedule string `yaml:"full_schedule"` // cron; config.DefaultFullSchedule
}

var _ config.IncrementalSettings = (*Settings)(nil)

// IncrementalSync implements config.IncrementalSettings.
func (s *Settings) IncrementalSync() (on bool, fullSchedule string) {
	return s.Incremental, s.FullSchedule
}

// TLS configures an LDAP connection's transport security.
type TLS struct {
	Mode          string `yaml:"mode"` // ldaps | starttls | none
	CAFile        string `yaml:"ca_file"`
	ServerName    string `yaml:"server_name"`
	AllowInsecure bool   `yaml:"allow_insecure"`
}

// NewSettings makes an empty Settings, for the connector registry.
func NewSettings() config.Settings { return &Settings{} }

// Defaults implements config.Settings. Numbers and durations get their
// default only when the key is absent, so an explicit 0 is checked rather
// than replaced.
func (s *Settings) Defaults(e *config.Entry) {
	if s.Flavor == "" {
		s.Flavor = DefaultFlavor
	}
	if s.TLS.Mode == "" {
		s.TLS.Mode = DefaultTLSMode
	}
	if !e.Given("page_size") {
		s.PageSize = DefaultPageSize
	}
	if !e.Given("timeout") {
		s.Timeout.Duration = DefaultTimeout
	}
	if strings.TrimSpace(s.FullSchedule) == "" {
		s.FullSchedule = config.DefaultFullSchedule
	}
	e.Resolve(&s.TLS.CAFile)
}

// Validate implements config.Settings. These are the only checks of an
// ldap source's settings: Open trusts them.
func (s *Settings) Validate(e *config.Entry) {
	if len(s.URL) == 0 {
		e.Add("url", "required for an ldap source: one URL or a list, such as ldaps://dc1.example.com:636")
	}
	mode := s.TLS.Mode
	modeOK := e.OneOf("tls.mode", mode, "ldaps", "starttls", "none")
	modeNote := ""
	if !e.Given("tls.mode") {
		modeNote = " (the default)"
	}
	for j, raw := range s.URL {
		key := fmt.Sprintf("url[%d]", j)
		u, err := url.Parse(raw)
		switch {
		case strings.TrimSpace(raw) == "":
			e.Add(key, "must not be empty")
		case err != nil || u.Host == "":
			e.Add(key, "%q is not a URL such as ldaps://dc1.example.com:636", raw)
		case u.Scheme != "ldap" && u.Scheme != "ldaps":
			e.Add(key, "%q: the scheme must be ldap or ldaps", raw)
		case modeOK && mode == "ldaps" && u.Scheme != "ldaps":
			e.Add(key, "%q is a plain ldap:// URL but tls.mode is ldaps%s; write ldaps://, or set tls.mode: starttls", raw, modeNote)
		case modeOK && mode != "ldaps" && u.Scheme == "ldaps":
			e.Add(key, "%q is an ldaps:// URL but tls.mode is %s; ldaps:// needs tls.mode: ldaps", raw, mode)
		}
	}
	if strings.TrimSpace(s.BaseDN) == "" {
		e.Add("base_dn", "required for an ldap source")
	}
	if e.OneOf("flavor", s.Flavor, FlavorAD, FlavorOpenLDAP, FlavorGeneric) && s.Incremental && s.Flavor == FlavorGeneric {
		note := ""
		if !e.Given("flavor") {
			note = " (the default)"
		}
		e.Add("incremental", "needs flavor %s (DirSync) or %s (RFC 4533 sync with the syncprov overlay); flavor %s%s cannot be assumed to serve either", FlavorAD, FlavorOpenLDAP, FlavorGeneric, note)
	}
	e.Schedule("full_schedule", s.FullSchedule)
	if e.Given("full_schedule") && !s.Incremental {
		e.Add("full_schedule", "only used with incremental: true (every run is a full pull without it)")
	}
	hasPassword := e.Secret("bind_password", s.BindPassword)
	if modeOK && mode == "none" && hasPassword && !s.TLS.AllowInsecure {
		e.Add("tls.mode", "none would send bind_password unencrypted; use ldaps or starttls, or set tls.allow_insecure: true")
	}
	switch {
	case hasPassword && s.BindDN == "":
		e.Add("bind_password", "needs bind_dn")
	case s.BindDN != "" && !hasPassword:
		e.Add("bind_dn", "needs bind_password (or bind_password_file)")
	}
	if s.PageSize < 1 || s.PageSize > MaxPageSize {
		e.Add("page_size", "%d is not between 1 and %d", s.PageSize, MaxPageSize)
	}
	e.Positive("timeout", s.Timeout)
	for _, f := range []struct{ key, val string }{
		{"user_filter", s.UserFilter}, {"group_filter", s.GroupFilter}, {"disabled_filter", s.DisabledFilter},
	} {
		if strings.TrimSpace(f.val) == "" {
			continue
		}
		if err := checkFilter(strings.TrimSpace(f.val)); err != nil {
			e.Add(f.key, "%q is not an LDAP filter: %v", f.val, err)
		}
	}
}
