package connector_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	csvsource "github.com/seatsync/seatsync/connector/csv"
	"github.com/seatsync/seatsync/connector/ldap"
	"github.com/seatsync/seatsync/connector/okta"
	"github.com/seatsync/seatsync/internal/configtest"
)

// The configuration with every source type of seatsync together: the
// example of SPEC section 7 (config/testdata/full.yaml), the examples of
// docs/configuration.md, and the messages that name other types.

// plugins are the source types of seatsync (cmd/seatsync registers the
// same; a test there would run in the process the e2e tests measure).
func plugins() config.Plugins {
	return config.Plugins{Sources: connector.Registry{
		"csv": csvsource.Kind, "ldap": ldap.Kind, "okta": okta.Kind,
	}.Kinds()}
}

var fullEnv = map[string]string{
	"AD_PASSWORD":        "ad-secret",
	"OKTA_API_TOKEN":     "okta-secret",
	"SMTP_PASSWORD":      "smtp-secret",
	"SEATSYNC_API_TOKEN": "api-secret",
}

func mustParse(t *testing.T, doc, path string, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.ParseWith([]byte(doc), path, configtest.Env(env), plugins())
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "config", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// head is a valid configuration; cases append sources.
const head = `version: 1
licensing:
  pools:
    - {name: primary, limit: 10, areas: [primary]}
    - {name: extranet, limit: unlimited, areas: [partners, suppliers]}
sources:
  - {name: hr, type: csv, path: hr.csv}
`

// TestConfigTypes: what the loader says about types and their keys, with
// every source type.
func TestConfigTypes(t *testing.T) {
	for name, doc := range map[string]string{
		"key of another source type": head + `  - name: hr2
    type: csv
    path: a.csv
    org_url: https://example.okta.com  # want sources[1].org_url "not a setting of a csv source (it is for okta)"`,
		"secret file key of another source type": head + `  - name: hr2
    type: csv
    path: a.csv
    token_file: token.txt  # want sources[1].token_file "not a setting of a csv source (it is for okta)"`,
		"key of two other source types": head + `  - name: hr2
    type: csv
    path: a.csv
    timeout: 5s  # want sources[1].timeout "not a setting of a csv source (it is for ldap and okta)"`,
		"ldap key on an okta source": head + `  - name: okta
    type: okta
    org_url: https://example.okta.com
    token: ${SECRET}
    page_size: 100  # want sources[1].page_size "not a setting of an okta source (it is for ldap)"`,
		"source types": head + `  - {name: x1}  # want sources[1].type "required: one of csv, ldap, okta"
  - {name: x2, type: workday, url: x}  # want sources[2].type "\"workday\" is not one of csv, ldap, okta"`,
		"many problems at once": `version: 3  # want version "3 is not a supported version"
store: {driver: postgres}  # want store.dsn "required when driver is postgres"
licensing:
  pools:
    - {name: primary, limit: 10, areas: [primary], reserv: 1}  # want licensing.pools[0].reserv "unknown key (did you mean reserve?)"
  on_overage: never  # want licensing.on_overage "\"never\" is not one of keep, block_newest"
sources:
  - name: corp-ad
    type: ldap
    url: ldaps://dc1
    base_dn: dc=corp
    bind_dn: cn=svc
    bind_password: ${AD_PASSWORD}  # want sources[0].bind_password "environment variable AD_PASSWORD is not set"
    tls: {mode: ldap}  # want sources[0].tls.mode "\"ldap\" is not one of ldaps, starttls, none"
    delimiter: ","  # want sources[0].delimiter "not a setting of an ldap source (it is for csv)"
  - {name: hr, type: csv}  # want sources[1].path "required for a csv source"
log: {level: trace}  # want log.level "\"trace\" is not one of debug"`,
	} {
		t.Run(name, func(t *testing.T) {
			configtest.Check(t, doc, plugins(), map[string]string{"SECRET": "s3cr3t-value"})
		})
	}
}

// TestParseFull parses the example of SPEC section 7, as written there.
func TestParseFull(t *testing.T) {
	got := mustParse(t, readTestdata(t, "full.yaml"), "/etc/seatsync/seatsync.yaml", fullEnv)
	want := &config.Config{
		Version:  1,
		Store:    config.Store{Driver: "sqlite", Path: "/var/lib/seatsync/seatsync.db"},
		Schedule: "*/15 * * * *",
		Licensing: config.Licensing{
			Pools: []config.Pool{
				{Name: "primary", Limit: config.Limit{N: 50}, Areas: []string{"primary"}, Reserve: 2},
				{Name: "extranet", Limit: config.Limit{N: 10}, Areas: []string{"partners", "suppliers"}},
			},
			Exempt:    []string{"admin", "support"},
			Priority:  []config.PriorityRule{{Group: "CN=Executives,OU=Groups,DC=corp,DC=example", Weight: 100}},
			OnOverage: "keep",
		},
		Safety: config.Safety{MaxDeprovision: config.Threshold{Percent: true, Value: 10, Set: true}},
		Sources: []config.Source{
			{
				Name:     "corp-ad",
				Type:     "ldap",
				Schedule: "*/10 * * * *",
				Settings: &ldap.Settings{
					Flavor:       "active_directory",
					URL:          config.StringList{"ldaps://dc1.corp.example:636", "ldaps://dc2.corp.example:636"},
					TLS:          ldap.TLS{Mode: "ldaps", CAFile: "/etc/seatsync/corp-ca.pem"},
					BindDN:       "CN=svc-seatsync,OU=Service,DC=corp,DC=example",
					BindPassword: config.NewSecret("ad-secret"),
					BaseDN:       "OU=Staff,DC=corp,DC=example",
					UserFilter:   "(&(objectCategory=person)(objectClass=user))",
					PageSize:     500,
					Timeout:      config.Duration{Duration: 30 * time.Second},
					NestedGroups: true,
					FullSchedule: config.DefaultFullSchedule,
				},
				Mapping: map[string]string{
					"external_id": "objectGUID",
					"username":    "sAMAccountName",
					"email":       "mail",
					"given_name":  "givenName",
					"family_name": "sn",
					"title":       "title",
					"department":  "department",
				},
				UsernameCase: "lower",
				Area:         "primary",
				Groups:       []string{"CN=App Users,OU=Groups,DC=corp,DC=example"},
				AreaRules: []config.AreaRule{
					{Group: "CN=Partners,OU=Groups,DC=corp,DC=example", Area: "partners"},
					{Attribute: &config.AttributeRule{Name: "company", Equals: "Acme Supplies"}, Area: "suppliers"},
				},
				OnLeave:       "block",
				Adopt:         true,
				MaxFieldBytes: 4096,
			},
			{
				Name: "okta",
				Type: "okta",
				Settings: &okta.Settings{
					OrgURL:         "https://example.okta.com",
					Token:          config.NewSecret("okta-secret"),
					Auth:           "token",
					Filter:         `status eq "ACTIVE" or status eq "SUSPENDED"`,
					Scopes:         []string{"okta.users.read", "okta.groups.read"},
					RateLimitShare: config.Percent{Value: 50, Set: true},
					Timeout:        config.Duration{Duration: 30 * time.Second},
				},
				Groups:        []string{"Contractors"},
				Area:          "suppliers",
				UsernameCase:  "lower",
				OnLeave:       "block",
				MaxFieldBytes: 4096,
			},
			{
				Name:     "hr",
				Type:     "csv",
				Settings: &csvsource.Settings{Path: "/srv/hr/export.csv", Delimiter: ";"},
				Mapping: map[string]string{
					"external_id": "employee_id",
					"username":    "login",
					"email":       "mail",
					"enabled":     "active",
					"groups":      "teams",
				},
				UsernameCase:  "lower",
				Area:          "primary",
				OnLeave:       "block",
				MaxFieldBytes: 4096,
			},
		},
		Notify: config.Notify{
			WarnAtPercent: 90,
			Email: &config.Email{
				To:   []string{"it-licences@example.com"},
				From: "seatsync@example.com",
				SMTP: config.SMTP{Host: "smtp.example.com", Port: 587, TLS: "starttls", Username: "seatsync", Password: config.NewSecret("smtp-secret")},
			},
			Webhooks: []config.Webhook{{URL: "https://hooks.example.com/T000/B000", Format: "slack", Timeout: config.Duration{Duration: 10 * time.Second}}},
		},
		Server: config.Server{Listen: "127.0.0.1:8080", Token: config.NewSecret("api-secret"), RunOnStart: "auto", ShutdownTimeout: config.Duration{Duration: 30 * time.Second}, LeaderCheck: config.Duration{Duration: 5 * time.Second}},
		Log:    config.Log{Level: "info", Format: "json"},
		Path:   "/etc/seatsync/seatsync.yaml",
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(config.Config{})); diff != "" {
		t.Errorf("Parse(full.yaml) (-want +got):\n%s", diff)
	}
}

func TestLine(t *testing.T) {
	cfg := mustParse(t, readTestdata(t, "full.yaml"), "", fullEnv)
	for path, want := range map[string]int{
		"version":                  1,
		"store.driver":             3,
		"licensing.pools[1]":       13,
		"licensing.pools[1].limit": 14,
		"sources[0].tls":           29, // the key's line
		"sources[0].tls.mode":      29, // in a flow mapping
		"sources[0].url[1]":        28, // in a flow list
		"sources[0].mapping.email": 40, // a map entry
		"sources[2].area":          62, // not written: the source's line
		"sources[2].type":          63,
		"notify.email.smtp.port":   72,
		"notify.webhooks[0].url":   74,
		"no.such.key":              1, // the document
		"":                         1,
	} {
		if got := cfg.Line(path); got != want {
			t.Errorf("Line(%q) = %d, want %d", path, got, want)
		}
	}
	if got := (&config.Config{}).Line("version"); got != 0 {
		t.Errorf("Line on a Config not from Parse = %d", got)
	}
}

func TestHelpers(t *testing.T) {
	cfg := mustParse(t, readTestdata(t, "full.yaml"), "", fullEnv)
	if p := cfg.PoolOf("suppliers"); p == nil || p.Name != "extranet" {
		t.Errorf("PoolOf(suppliers) = %+v", p)
	}
	if p := cfg.PoolOf("nowhere"); p != nil {
		t.Errorf("PoolOf(nowhere) = %+v, want nil", p)
	}
	if s := cfg.Source("hr"); s == nil || s.Type != "csv" {
		t.Errorf("Source(hr) = %+v", s)
	}
	if s := cfg.Source("nope"); s != nil {
		t.Errorf("Source(nope) = %+v, want nil", s)
	}
	for name, want := range map[string]string{"corp-ad": "*/10 * * * *", "hr": "*/15 * * * *", "nope": ""} {
		if got := cfg.ScheduleOf(name); got != want {
			t.Errorf("ScheduleOf(%s) = %q, want %q", name, got, want)
		}
	}
	for user, want := range map[string]bool{"admin": true, "ADMIN": true, "Support": true, "jdoe": false, "": false} {
		if got := cfg.IsExempt(user); got != want {
			t.Errorf("IsExempt(%q) = %v, want %v", user, got, want)
		}
	}
	// A pointer from PoolOf refers into the Config.
	cfg.PoolOf("primary").Reserve = 7
	if cfg.Licensing.Pools[0].Reserve != 7 {
		t.Error("PoolOf returned a copy")
	}
}

// Every complete example in docs/configuration.md is a valid configuration.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Skipf("docs not found: %v", err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	env := func(name string) (string, bool) { return "value-of-" + name, true }
	n := 0
	for _, b := range blocks {
		if !strings.HasPrefix(b[1], "version: 1") {
			continue
		}
		n++
		if _, err := config.ParseWith([]byte(b[1]), "/etc/seatsync/seatsync.yaml", env, plugins()); err != nil {
			t.Errorf("docs example %d:\n%v\n%s", n, err, b[1])
		}
	}
	if n == 0 {
		t.Error("docs/configuration.md has no complete example (a yaml block starting with version: 1)")
	}
}
