package scim

import (
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/seatsync/seatsync/config"
)

// Settings are a SCIM target's own keys.
type Settings struct {
	// URL is the SCIM base URL (…/scim/v2): /Users and
	// /ServiceProviderConfig are under it.
	URL   string        `yaml:"url"`
	Token config.Secret `yaml:"token"` // bearer token; token_file too
	TLS   TLS           `yaml:"tls"`
	// Attributes maps SCIM attribute paths to profile fields; see
	// DefaultAttributes.
	Attributes map[string]string `yaml:"attributes"`
}

// TLS is a SCIM target's transport security. Verification is always on.
type TLS struct {
	CAFile     string `yaml:"ca_file"`
	ServerName string `yaml:"server_name"`
	// AllowInsecure lets an http:// url through (a test server on
	// loopback); it never turns certificate checks off.
	AllowInsecure bool `yaml:"allow_insecure"`
}

// EnterpriseUser is the URN of the enterprise User extension (RFC 7643
// section 4.3).
const EnterpriseUser = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// DefaultAttributes is the mapping of SCIM attributes to profile fields
// when the file gives none.
func DefaultAttributes() map[string]string {
	return map[string]string{
		"userName":                     "username",
		"externalId":                   "external_id",
		"name.givenName":               "given_name",
		"name.familyName":              "family_name",
		"displayName":                  "display_name",
		`emails[type eq "work"].value`: "email",
		"title":                        "title",
		EnterpriseUser + ":department": "department",
	}
}

// profileFields are the profile fields an attribute may take its value
// from.
var profileFields = []string{"username", "external_id", "email", "given_name", "family_name", "display_name", "title", "department", "area"}

// Endpoint is the application's URL, which a vendor licence's hosts
// must cover.
func (s *Settings) Endpoint() string { return s.URL }

// NewSettings makes an empty Settings, for the target registry.
func NewSettings() config.Settings { return &Settings{} }

// Defaults implements config.Settings.
func (s *Settings) Defaults(e *config.Entry) {
	if len(s.Attributes) == 0 && !e.Given("attributes") {
		s.Attributes = DefaultAttributes()
	}
	e.Resolve(&s.TLS.CAFile)
}

// Validate implements config.Settings.
func (s *Settings) Validate(e *config.Entry) {
	switch u, err := url.Parse(s.URL); {
	case strings.TrimSpace(s.URL) == "":
		e.Add("url", "required: the SCIM base URL, such as https://app.example.com/scim/v2")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		e.Add("url", "%q is not an http:// or https:// URL", s.URL)
	case u.Scheme == "http" && !s.TLS.AllowInsecure:
		e.Add("url", "%q is not https: the token and people's data would travel unencrypted; use https, or set tls.allow_insecure: true for a test server", s.URL)
	case u.RawQuery != "" || u.Fragment != "":
		e.Add("url", "%q has a query or fragment; give the base URL only", s.URL)
	}
	if !e.Secret("token", s.Token) {
		e.Add("token", "required: the bearer token the application gave seatsync (or token_file)")
	}
	if _, ok := s.Attributes["userName"]; !ok {
		e.Add("attributes", "must map userName (to username, usually)")
	}
	keys := make([]string, 0, len(s.Attributes))
	for k := range s.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		key := config.Key("attributes", k)
		if _, err := parsePath(k); err != nil {
			e.Add(key, "%v", err)
			continue
		}
		if k == "active" || k == "id" || k == "meta" || k == "schemas" {
			e.Add(key, "%s is set by seatsync itself and cannot be mapped", k)
			continue
		}
		if f := s.Attributes[k]; !slices.Contains(profileFields, f) {
			e.Add(key, "%q is not a profile field (one of %s)", f, strings.Join(profileFields, ", "))
		}
	}
}
