// Package okta is the connector for Okta orgs (`type: okta`), built on
// github.com/okta/okta-sdk-golang/v2.
//
// It lists the org's users (or, with `groups`, the members of those
// groups) through the Management API, 200 per page, following the
// Link: rel="next" cursor to the end. A pull is all or nothing: an HTTP
// error, a timeout or a page that cannot be read in the middle of a listing
// fails the pull, because a shorter list would look like people leaving.
//
// Authentication is an API token (`token`, sent as "SSWS <token>") or an
// OAuth 2.0 service app with a private key (`auth: private_key`): the SDK
// signs a client assertion and trades it for an access token at the org's
// /oauth2/v1/token. The SDK's own configuration sources (~/.okta/okta.yaml,
// .okta.yaml, OKTA_* environment variables) are read by okta.NewClient but
// wiped before any of seatsync's settings are applied, so only the
// seatsync configuration counts. The SDK cache is off.
//
// Rate limits are handled by an http.RoundTripper of this package, not by
// the SDK (whose own retry is turned off): see transport.go.
package okta

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/model"
)

// Sentinels, for errors.Is.
var (
	// ErrRateLimited: Okta kept answering 429 after every retry.
	ErrRateLimited = errors.New("okta rate limit")
	// ErrUnauthorized: the token or the service app was refused.
	ErrUnauthorized = errors.New("okta refused the credentials")
	// ErrGroup: a configured group name matches no Okta group, or several.
	ErrGroup = errors.New("okta group")
	// ErrTimeout: Okta did not answer within `timeout`.
	ErrTimeout = errors.New("okta did not answer in time")
	// ErrConnection: the connection to Okta failed or dropped.
	ErrConnection = errors.New("okta connection failed")
)

// DefaultMaxRetries is how many times one request is retried after a 429.
const DefaultMaxRetries = 5

// pageLimit is the page size asked for: the most Okta serves per page.
const pageLimit = 200

// Options are what tests and benchmarks change; Open uses the zero value.
type Options struct {
	// Transport sends the requests; http.DefaultTransport when nil.
	Transport http.RoundTripper
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Sleep waits for d or until ctx is done; a timer when nil.
	Sleep func(ctx context.Context, d time.Duration) error
	// MaxRetries is the number of retries after a 429 for one request;
	// DefaultMaxRetries when 0, none when negative.
	MaxRetries int
}

// Identity fields a mapping can name.
var fieldNames = []string{"external_id", "username", "email", "given_name", "family_name",
	"display_name", "title", "department", "groups"}

// defaultMapping is the Okta profile attribute each field is read from
// unless `mapping` says otherwise. external_id "id" is the Okta user id.
func defaultMapping() map[string]string {
	return map[string]string{
		"external_id":  "id",
		"username":     "login",
		"email":        "email",
		"given_name":   "firstName",
		"family_name":  "lastName",
		"display_name": "displayName",
		"title":        "title",
		"department":   "department",
	}
}

// groupsAll is the mapping.groups value that asks for every Okta group of
// each user (one extra request per user).
const groupsAll = "groups"

// source pulls one configured Okta org. It holds configuration only, so one
// value can be pulled many times, also concurrently.
type source struct {
	name     string
	orgURL   string
	auth     string // token | private_key
	token    config.Secret
	clientID string
	keyFile  string
	scopes   []string
	filter   string
	search   string
	share    float64 // 0..1, the share of each rate limit seatsync may use
	timeout  time.Duration
	groups   []string          // scope: members of these groups only
	ruleGrps []string          // groups that area rules name
	mapping  map[string]string // identity field -> profile attribute
	allGrps  bool              // mapping.groups: groups
	opt      Options
	log      *zap.Logger
}

var _ connector.Source = (*source)(nil)

// Open builds the okta source described by cfg (it matches
// connector.Opener). It checks the settings and does no I/O.
func Open(cfg config.Source, log *zap.Logger) (connector.Source, error) {
	return New(cfg, log, Options{})
}

// New is Open with options, for tests and benchmarks.
func New(cfg config.Source, log *zap.Logger, opt Options) (connector.Source, error) {
	set, ok := cfg.Settings.(*Settings)
	if !ok {
		return nil, fmt.Errorf("source %s: no okta settings (%T)", cfg.Name, cfg.Settings)
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := &source{
		name:     cfg.Name,
		orgURL:   strings.TrimRight(strings.TrimSpace(set.OrgURL), "/"),
		auth:     set.Auth,
		token:    set.Token,
		clientID: strings.TrimSpace(set.ClientID),
		keyFile:  set.PrivateKeyFile,
		scopes:   set.Scopes,
		filter:   set.Filter,
		search:   set.Search,
		share:    DefaultRateLimitShare / 100.0,
		timeout:  set.Timeout.Duration,
		groups:   cfg.Groups,
		mapping:  defaultMapping(),
		opt:      opt,
		log:      log,
	}
	if s.auth == "" {
		s.auth = DefaultAuth
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if len(s.scopes) == 0 {
		s.scopes = DefaultScopes()
	}
	if set.RateLimitShare.Set {
		s.share = set.RateLimitShare.Value / 100
	}
	var problems []string
	if u, err := url.Parse(s.orgURL); s.orgURL == "" || err != nil || u.Host == "" ||
		(u.Scheme != "https" && u.Scheme != "http") {
		problems = append(problems, fmt.Sprintf("org_url: %q is not a URL such as https://example.okta.com", set.OrgURL))
	}
	switch s.auth {
	case "token":
		if !s.token.IsSet() {
			problems = append(problems, "token: required (or token_file, or auth: private_key)")
		}
	case "private_key":
		if s.clientID == "" {
			problems = append(problems, "client_id: required when auth is private_key")
		}
		if strings.TrimSpace(s.keyFile) == "" {
			problems = append(problems, "private_key_file: required when auth is private_key")
		}
	default:
		problems = append(problems, fmt.Sprintf("auth: %q is not token or private_key", s.auth))
	}
	if s.share <= 0 || s.share > 1 {
		problems = append(problems, fmt.Sprintf("rate_limit_share: %g%% is not above 0%% and at most 100%%", set.RateLimitShare.Value))
	}
	keys := make([]string, 0, len(cfg.Mapping))
	for k := range cfg.Mapping {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := strings.TrimSpace(cfg.Mapping[k])
		switch {
		case k == "enabled":
			problems = append(problems, "mapping.enabled: an Okta user's enabled state comes from their status and cannot be mapped")
		case !slices.Contains(fieldNames, k):
			problems = append(problems, fmt.Sprintf("mapping.%s: unknown identity field (one of %s)", k, strings.Join(fieldNames, ", ")))
		case v == "":
			problems = append(problems, fmt.Sprintf("mapping.%s: empty attribute name", k))
		case k == "groups" && v == groupsAll:
			s.allGrps = true
		default:
			s.mapping[k] = strings.TrimPrefix(v, "profile.")
		}
	}
	for i, g := range cfg.Groups {
		if strings.TrimSpace(g) == "" {
			problems = append(problems, fmt.Sprintf("groups[%d]: empty group name", i))
		}
	}
	for _, r := range cfg.AreaRules {
		if r.Group != "" && !slices.Contains(s.ruleGrps, r.Group) {
			s.ruleGrps = append(s.ruleGrps, r.Group)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("source %s: %s", cfg.Name, strings.Join(problems, "; "))
	}
	return s, nil
}

// Pull streams every user in scope to emit. See the package documentation
// for what fails the pull.
func (s *source) Pull(ctx context.Context, emit func(model.Identity) error, skip func(connector.Skip)) error {
	_, err := s.run(ctx, emit, skip)
	return err
}

// stats counts what one pull saw, for the log and for Check.
type stats struct {
	identities int
	skipped    int
	deleted    int // incremental reads: Delete calls
	requests   int
	retries    int
	waited     time.Duration
}

func (s *source) now() time.Time {
	if s.opt.Now != nil {
		return s.opt.Now()
	}
	return time.Now()
}
