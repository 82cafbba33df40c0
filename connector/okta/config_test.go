package okta_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/connector/okta"
	"github.com/seatsync/seatsync/internal/configtest"
)

// head is a valid configuration; cases append sources.
const head = `version: 1
licensing:
  pools:
    - {name: primary, limit: 10, areas: [primary]}
    - {name: extranet, limit: unlimited, areas: [partners, suppliers]}
sources:
  - {name: o0, type: okta, org_url: "https://example.okta.com", token: t}
`

var plugins = config.Plugins{Sources: connector.Registry{"okta": okta.Kind}.Kinds()}

var env = map[string]string{"SECRET": "s3cr3t-value"}

func TestConfigProblems(t *testing.T) {
	for name, doc := range map[string]string{
		"okta": head + `  - {name: o1, type: okta, token: x}  # want sources[1].org_url "required for an okta source"
  - name: o2
    type: okta
    org_url: http://example.okta.com  # want sources[2].org_url "must use https"
    token: x
  - {name: o3, type: okta, org_url: http://127.0.0.1:8081, token: x}
  - {name: o4, type: okta, org_url: "http://localhost:8081/", token: x}
  - {name: o5, type: okta, org_url: example.okta.com, token: x}  # want sources[5].org_url "is not a URL such as https://example.okta.com"
  - {name: o6, type: okta, org_url: "https://example.okta.com"}  # want sources[6].token "required when auth is token (or token_file)"
  - name: o7
    type: okta
    org_url: https://example.okta.com
    auth: oauth  # want sources[7].auth "\"oauth\" is not one of token, private_key"
  - name: o8  # want sources[8].client_id "required when auth is private_key" # want sources[8].private_key_file "required when auth is private_key"
    type: okta
    org_url: https://example.okta.com
    auth: private_key
    token: x  # want sources[8].token "not used when auth is private_key"
    scopes: [okta.users.read, ""]  # want sources[8].scopes[1] "must not be empty"
    timeout: 0s  # want sources[8].timeout "must be more than 0"
  - {name: o9, type: okta, org_url: https://example.okta.com, auth: private_key, client_id: 0oa1, private_key_file: key.pem}
  - {name: o10, type: okta, org_url: https://example.okta.com, auth: private_key, client_id: 0oa1, private_key_file: key.pem, scopes: []}  # want sources[10].scopes "at least one scope is required"`,
		"zero percent": head + `  - name: okta
    type: okta
    org_url: https://example.okta.com
    token: ${SECRET}
    rate_limit_share: 0%  # want sources[1].rate_limit_share "\"0%\" is not a percentage above 0% and up to 100%"`,
		"incremental": head + `  - {name: o1, type: okta, org_url: "https://example.okta.com", token: t, incremental: true}
  - {name: o2, type: okta, org_url: "https://example.okta.com", token: t, incremental: true, full_schedule: "0 3 * * 0"}
  - {name: o3, type: okta, org_url: "https://example.okta.com", token: t, incremental: true, full_schedule: "daily"}  # want sources[3].full_schedule "is not a schedule"
  - {name: o4, type: okta, org_url: "https://example.okta.com", token: t, full_schedule: "0 3 * * *"}  # want sources[4].full_schedule "only used with incremental: true"`,
	} {
		t.Run(name, func(t *testing.T) { configtest.Check(t, doc, plugins, env) })
	}
}

func TestConfigDefaults(t *testing.T) {
	doc := head + `  - name: o1
    type: okta
    org_url: https://example.okta.com
    auth: private_key
    client_id: c
    private_key_file: ../keys/okta.pem
    scopes: [okta.users.read]
    filter: 'status eq "ACTIVE"'
    search: 'profile.department eq "Sales"'
    rate_limit_share: 20%
    timeout: 10s
    incremental: true
    full_schedule: "30 1 * * *"
`
	for _, tc := range []struct{ configPath, key string }{
		{"/etc/seatsync/seatsync.yaml", "/etc/keys/okta.pem"},
		{"", "../keys/okta.pem"},
	} {
		cfg, err := config.ParseWith([]byte(doc), tc.configPath, nil, plugins)
		if err != nil {
			t.Fatal(err)
		}
		want := []okta.Settings{
			{OrgURL: "https://example.okta.com", Token: config.NewSecret("t"), Auth: "token",
				Scopes: []string{"okta.users.read", "okta.groups.read"}, RateLimitShare: config.Percent{Value: 50, Set: true},
				Timeout: config.Duration{Duration: 30 * time.Second}},
			{OrgURL: "https://example.okta.com", Auth: "private_key", ClientID: "c", PrivateKeyFile: tc.key,
				Scopes: []string{"okta.users.read"}, Filter: `status eq "ACTIVE"`, Search: `profile.department eq "Sales"`,
				RateLimitShare: config.Percent{Value: 20, Set: true}, Timeout: config.Duration{Duration: 10 * time.Second},
				Incremental: true, FullSchedule: "30 1 * * *"},
		}
		var got []okta.Settings
		for _, s := range cfg.Sources {
			got = append(got, *s.Settings.(*okta.Settings))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("config at %q (-want +got):\n%s", tc.configPath, diff)
		}
	}
}

func TestIncrementalSync(t *testing.T) {
	for _, tc := range []struct {
		set      okta.Settings
		on       bool
		schedule string
	}{
		{okta.Settings{}, false, config.DefaultFullSchedule},
		{okta.Settings{Incremental: true}, true, config.DefaultFullSchedule},
		{okta.Settings{Incremental: true, FullSchedule: "0 3 * * 0"}, true, "0 3 * * 0"},
	} {
		on, schedule := tc.set.IncrementalSync()
		if on != tc.on || schedule != tc.schedule {
			t.Errorf("%+v: IncrementalSync() = %v, %q; want %v, %q", tc.set, on, schedule, tc.on, tc.schedule)
		}
	}
}
