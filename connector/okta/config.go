package okta

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
)

// Kind is the okta source type, for the connector registry.
var Kind = connector.Kind{Settings: NewSettings, Open: Open}

// Defaults, applied to keys the file leaves out.
const (
	DefaultAuth           = "token"
	DefaultRateLimitShare = 50 // percent
	DefaultTimeout        = 30 * time.Second
)

// DefaultScopes returns the OAuth scopes an okta source asks for when it
// sets none.
func DefaultScopes() []string { return []string{"okta.users.read", "okta.groups.read"} }

// Settings are an okta source's own keys.
type Settings struct {
	OrgURL         string          `yaml:"org_url"`
	Token          config.Secret   `yaml:"token"` // token_file too
	Auth           string          `yaml:"auth"`  // token (default) | private_key
	ClientID       string          `yaml:"client_id"`
	PrivateKeyFile string          `yaml:"private_key_file"`
	Scopes         []string        `yaml:"scopes"`
	Filter         string          `yaml:"filter"`
	Search         string          `yaml:"search"`
	RateLimitShare config.Percent  `yaml:"rate_limit_share"`
	Timeout        config.Duration `yaml:"timeout"`
	// Incremental reads only the users changed since the last run (by
	// lastUpdated, and the System Log for deletions); FullSchedule is when
	// a run pulls in full instead.
	Incremental  bool   `yaml:"incremental"`
	FullSchedule string `yaml:"full_schedule"`
}

var _ config.IncrementalSettings = (*Settings)(nil)

// IncrementalSync implements config.IncrementalSettings.
func (s *Settings) IncrementalSync() (on bool, fullSchedule string) {
	if s.FullSchedule == "" {
		return s.Incremental, config.DefaultFullSchedule
	}
	return s.Incremental, s.FullSchedule
}

// NewSettings makes an empty Settings, for the connector registry.
func NewSettings() config.Settings { return &Settings{} }

// Defaults implements config.Settings.
func (s *Settings) Defaults(e *config.Entry) {
	if s.Auth == "" {
		s.Auth = DefaultAuth
	}
	if !e.Given("rate_limit_share") {
		s.RateLimitShare = config.Percent{Value: DefaultRateLimitShare, Set: true}
	}
	if !e.Given("timeout") {
		s.Timeout.Duration = DefaultTimeout
	}
	if len(s.Scopes) == 0 && !e.Given("scopes") {
		s.Scopes = DefaultScopes()
	}
	// full_schedule stays "" when left out: IncrementalSync gives
	// config.DefaultFullSchedule for it.
	e.Resolve(&s.PrivateKeyFile)
}

// Validate implements config.Settings.
func (s *Settings) Validate(e *config.Entry) {
	if strings.TrimSpace(s.OrgURL) == "" {
		e.Add("org_url", "required for an okta source, such as https://example.okta.com")
	} else {
		u, err := url.Parse(s.OrgURL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			e.Add("org_url", "%q is not a URL such as https://example.okta.com", s.OrgURL)
		case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
			e.Add("org_url", "%q must use https (http is only accepted for localhost, for tests)", s.OrgURL)
		}
	}
	if e.OneOf("auth", s.Auth, "token", "private_key") {
		switch s.Auth {
		case "token":
			if !e.Secret("token", s.Token) {
				e.Add("token", "required when auth is token (or token_file)")
			}
		case "private_key":
			if strings.TrimSpace(s.ClientID) == "" {
				e.Add("client_id", "required when auth is private_key")
			}
			if strings.TrimSpace(s.PrivateKeyFile) == "" {
				e.Add("private_key_file", "required when auth is private_key")
			}
			if e.Secret("token", s.Token) {
				e.Add("token", "not used when auth is private_key")
			}
		}
	}
	if s.Auth == "private_key" && len(s.Scopes) == 0 {
		e.Add("scopes", "at least one scope is required with auth: private_key")
	}
	for j, sc := range s.Scopes {
		e.NotEmpty(fmt.Sprintf("scopes[%d]", j), sc)
	}
	e.Positive("timeout", s.Timeout)
	e.Schedule("full_schedule", s.FullSchedule)
	if e.Given("full_schedule") && !s.Incremental {
		e.Add("full_schedule", "only used with incremental: true (every run is a full pull without it)")
	}
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
