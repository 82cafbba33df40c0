package scim_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/config"
	csvsource "github.com/seatsync/seatsync/connector/csv"
	"github.com/seatsync/seatsync/target/scim"
)

const base = `version: 1
licensing:
  pools:
    - {name: primary, limit: 5, areas: [primary]}
    - {name: extranet, limit: 5, areas: [partners]}
sources:
  - {name: hr, type: csv, path: people.csv}
`

// other is a second target type, so that a key of one type can be
// refused on the other.
type other struct {
	Endpoint string `yaml:"endpoint"`
}

func (*other) Defaults(*config.Entry) {}
func (*other) Validate(*config.Entry) {}

func plugins() config.Plugins {
	return config.Plugins{
		Sources: config.Kinds{"csv": csvsource.NewSettings},
		Targets: config.Kinds{"scim": scim.NewSettings, "other": func() config.Settings { return &other{} }},
	}
}

func parse(t *testing.T, yaml string, env map[string]string) (*config.Config, error) {
	t.Helper()
	dir := t.TempDir()
	return config.ParseWith([]byte(base+yaml), filepath.Join(dir, "seatsync.yaml"), func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}, plugins())
}

func TestTargetConfig(t *testing.T) {
	cfg, err := parse(t, `targets:
  - name: intranet
    type: scim
    url: https://intranet.example.com/scim/v2
    token: ${SCIM_TOKEN}
    tls: {ca_file: app-ca.pem}
    areas: [primary]
`, map[string]string{"SCIM_TOKEN": "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	tg := cfg.Targets[0]
	if tg.OnDelete != "deactivate" || !tg.Adopt || tg.Timeout.Duration != 30*time.Second ||
		tg.MaxRequestsPerSecond != 10 || tg.VerifySchedule != "0 3 * * *" {
		t.Errorf("defaults: %+v", tg)
	}
	s := tg.Settings.(*scim.Settings)
	if s.Token.Reveal() != "s3cret" || s.URL != "https://intranet.example.com/scim/v2" || !filepath.IsAbs(s.TLS.CAFile) {
		t.Errorf("settings: %+v", s)
	}
	if diff := cmp.Diff(scim.DefaultAttributes(), s.Attributes); diff != "" {
		t.Errorf("default attributes (-want +got):\n%s", diff)
	}
	if strings.Contains(strings.Join([]string{s.Token.String()}, ""), "s3cret") {
		t.Error("the token shows in its String form")
	}
}

func TestTargetConfigTokenFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.ParseWith([]byte(base+`targets:
  - {name: app, type: scim, url: "https://app.example.com/scim/v2", token_file: token}
`), filepath.Join(dir, "seatsync.yaml"), nil, plugins())
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Targets[0].Settings.(*scim.Settings).Token.Reveal(); got != "from-a-file" {
		t.Errorf("token from token_file = %q", got)
	}
}

func TestTargetConfigProblems(t *testing.T) {
	_, err := parse(t, `targets:
  - name: intranet
    type: scim
    url: http://intranet.example.com/scim/v2
    endpoint: /x
    areas: [primary, nowhere]
    on_delete: purge
    max_requests_per_second: -1
    verify_schedule: "not a schedule"
    attributes:
      userName: username
      name.givenName: first
      "emails[type eq work].value": email
  - name: intranet
    type: soap
    urll: https://x
  - name: other
    type: other
    url: https://x
`, nil)
	var ps config.Problems
	if !asProblems(err, &ps) {
		t.Fatalf("want problems, got %v", err)
	}
	want := []string{
		`line 11: targets[0].url: "http://intranet.example.com/scim/v2" is not https: the token and people's data would travel unencrypted; use https, or set tls.allow_insecure: true for a test server`,
		`line 9: targets[0].token: required: the bearer token the application gave seatsync (or token_file)`,
		`line 12: targets[0].endpoint: not a setting of a scim target (it is for other)`,
		`line 13: targets[0].areas[1]:`,
		`line 14: targets[0].on_delete: "purge" is not one of deactivate, delete`,
		`line 15: targets[0].max_requests_per_second: must not be negative (0 means no pace)`,
		`line 16: targets[0].verify_schedule: "not a schedule" is not a schedule`,
		`line 19: targets[0].attributes["name.givenName"]: "first" is not a profile field`,
		`line 20: targets[0].attributes["emails[type eq work].value"]: "emails[type eq work].value" is not a SCIM attribute path`,
		`line 21: targets[1].name: "intranet" is already the name of targets[0]`,
		`line 22: targets[1].type: "soap" is not one of other, scim`,
		`line 23: targets[1].urll: unknown key`,
		`line 26: targets[2].url: not a setting of an other target (it is for scim)`,
	}
	got := ps.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing problem %q in:\n%s", w, got)
		}
	}
}

func asProblems(err error, ps *config.Problems) bool {
	p, ok := err.(config.Problems)
	*ps = p
	return ok
}

// A filter inside an extension attribute is refused (the check once came
// after the filtered form had already been accepted).
func TestTargetConfigExtensionFilter(t *testing.T) {
	_, err := parse(t, `targets:
  - name: app
    type: scim
    url: https://app.example.com/scim/v2
    token: x
    attributes:
      userName: username
      "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:emails[type eq \"work\"].value": email
`, nil)
	var ps config.Problems
	if !asProblems(err, &ps) || !strings.Contains(ps.Error(), "a filter inside an extension attribute is not supported") {
		t.Fatalf("want the filter refused, got %v", err)
	}
}
