package okta_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/connector/okta"
	"github.com/seatsync/seatsync/internal/oktatest"
	"github.com/seatsync/seatsync/model"
)

func TestPull1000UsersIn5Pages(t *testing.T) {
	o := newOrg(t, 0)
	ids := o.people(1000, func(i int, u *oktatest.User) {
		if i == 0 {
			u.Profile["displayName"] = "Given Family0001"
			u.Profile["title"] = "Engineer"
			u.Profile["department"] = "R&D"
			u.Profile["costCenter"] = "CC-7"
			u.Profile["employeeNumber"] = float64(1234)
			u.Profile["contractor"] = true
			u.Profile["badges"] = []any{"a", "b"}
			u.Profile["mobilePhone"] = nil
		}
	})
	got, skips, err := o.pull(t, o.source())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1000 || len(skips) != 0 {
		t.Fatalf("got %d identities, %d skips; want 1000, 0", len(got), len(skips))
	}
	if n := o.Count(oktatest.EndpointUsers); n != 5 {
		t.Errorf("user list requests = %d, want 5", n)
	}
	if n := o.Count(oktatest.EndpointGroups) + o.Count(oktatest.EndpointUserGroups) + o.Count(oktatest.EndpointGroupUsers); n != 0 {
		t.Errorf("group requests = %d, want 0 (no group is needed)", n)
	}
	want := model.Identity{
		ExternalID:  ids[0],
		Username:    "u0001@example.com",
		Email:       "u0001@example.com",
		GivenName:   "Given",
		FamilyName:  "Family0001",
		DisplayName: "Given Family0001",
		Title:       "Engineer",
		Department:  "R&D",
		Enabled:     true,
		Attributes: map[string]string{
			"costCenter":     "CC-7",
			"employeeNumber": "1234",
			"contractor":     "true",
			"badges":         "a|b",
		},
		Where: "okta user " + ids[0],
	}
	if diff := cmp.Diff(want, got[0]); diff != "" {
		t.Errorf("first identity (-want +got):\n%s", diff)
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id.ExternalID] {
			t.Fatalf("%s emitted twice", id.ExternalID)
		}
		seen[id.ExternalID] = true
	}
}

func TestMapping(t *testing.T) {
	o := newOrg(t, 0)
	o.people(1, func(_ int, u *oktatest.User) {
		u.Profile["employeeNumber"] = "E42"
		u.Profile["nickName"] = "jd"
	})
	cfg := o.source()
	cfg.Mapping = map[string]string{"external_id": "employeeNumber", "username": "profile.nickName"}
	got, _, err := o.pull(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].ExternalID != "E42" || got[0].Username != "jd" {
		t.Errorf("got external_id %q username %q, want E42 jd", got[0].ExternalID, got[0].Username)
	}
	if _, ok := got[0].Attributes["login"]; !ok {
		t.Errorf("login is no longer mapped, so it should be an attribute: %v", got[0].Attributes)
	}
	if _, ok := got[0].Attributes["nickName"]; ok {
		t.Errorf("nickName is mapped, so it should not be an attribute: %v", got[0].Attributes)
	}

	for _, bad := range []map[string]string{{"enabled": "status"}, {"shoe_size": "x"}, {"email": " "}} {
		cfg.Mapping = bad
		if _, err := okta.New(cfg.source(), nil, okta.Options{}); err == nil {
			t.Errorf("mapping %v: no error", bad)
		}
	}
}

func TestStatuses(t *testing.T) {
	statuses := map[string]bool{
		"ACTIVE": true, "PROVISIONED": true, "RECOVERY": true, "PASSWORD_EXPIRED": true,
		"SUSPENDED": false, "LOCKED_OUT": false, "DEPROVISIONED": false, "STAGED": false,
	}
	o := newOrg(t, 0)
	var order []string
	for st := range statuses {
		order = append(order, st)
	}
	ids := o.people(len(order), func(i int, u *oktatest.User) { u.Status = order[i] })

	// Okta leaves DEPROVISIONED users out of a plain listing.
	got, _, err := o.pull(t, o.source())
	if err != nil {
		t.Fatal(err)
	}
	m := byID(got)
	for i, st := range order {
		id, ok := m[ids[i]]
		if st == "DEPROVISIONED" {
			if ok {
				t.Errorf("DEPROVISIONED user listed without a status filter")
			}
			continue
		}
		if !ok || id.Enabled != statuses[st] {
			t.Errorf("%s: listed %v, enabled %v; want enabled %v", st, ok, id.Enabled, statuses[st])
		}
	}

	// With a filter naming every status, they all come, each with its state.
	cfg := o.source()
	var terms []string
	for _, st := range order {
		terms = append(terms, `status eq "`+st+`"`)
	}
	cfg.Filter = strings.Join(terms, " or ")
	got, _, err = o.pull(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m = byID(got)
	for i, st := range order {
		if id, ok := m[ids[i]]; !ok || id.Enabled != statuses[st] {
			t.Errorf("%s: listed %v, enabled %v; want listed, enabled %v", st, ok, id.Enabled, statuses[st])
		}
	}
}

func TestFilterAndSearch(t *testing.T) {
	o := newOrg(t, 0)
	o.people(10, func(i int, u *oktatest.User) {
		if i%2 == 0 {
			u.Profile["department"] = "Sales"
		}
		if i < 3 {
			u.Status = "SUSPENDED"
		}
	})
	cfg := o.source()
	cfg.Filter = `status eq "ACTIVE"`
	got, _, err := o.pull(t, cfg)
	if err != nil || len(got) != 7 {
		t.Fatalf("filter: %d identities, err %v; want 7", len(got), err)
	}
	cfg.Filter = ""
	cfg.Search = `profile.department eq "Sales"`
	got, _, err = o.pull(t, cfg)
	if err != nil || len(got) != 5 {
		t.Fatalf("search: %d identities, err %v; want 5", len(got), err)
	}
	// Okta's filter does not take custom attributes: that is an error, not
	// an empty list.
	cfg.Search = ""
	cfg.Filter = `profile.department eq "Sales"`
	if _, _, err = o.pull(t, cfg); err == nil || !strings.Contains(err.Error(), "E0000031") {
		t.Fatalf("filter on department: err %v, want Okta's E0000031", err)
	}
}

func TestGroupScope(t *testing.T) {
	o := newOrg(t, 0)
	ids := o.people(450, func(i int, u *oktatest.User) {
		switch {
		case i == 0:
			u.Groups = []string{"Contractors", "Partners"}
		case i < 250:
			u.Groups = []string{"Contractors"}
		case i < 300:
			u.Groups = []string{"Partners"}
		case i < 310:
			u.Groups = []string{"Contractors Archive"} // a prefix match only
		}
	})
	cfg := o.source()
	cfg.Groups = []string{"Contractors", "Partners"}
	got, _, err := o.pull(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 300 {
		t.Fatalf("got %d identities, want 300 (the members of both groups, once each)", len(got))
	}
	m := byID(got)
	if g := m[ids[0]].Groups; !cmp.Equal(g, []string{"Contractors", "Partners"}) {
		t.Errorf("user in two groups has groups %v", g)
	}
	if g := m[ids[1]].Groups; !cmp.Equal(g, []string{"Contractors"}) {
		t.Errorf("user in one group has groups %v", g)
	}
	// 2 group lookups, 2 pages of Contractors, 1 of Partners; no user list.
	if c := o.Counts(); c[oktatest.EndpointGroups] != 2 || c[oktatest.EndpointGroupUsers] != 3 || c[oktatest.EndpointUsers] != 0 {
		t.Errorf("requests %v", c)
	}

	// With a filter too, the filtered user list is intersected with the groups.
	cfg.Filter = `profile.lastName eq "Family0001" or profile.lastName eq "Family0400"`
	got, _, err = o.pull(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ExternalID != ids[0] {
		t.Errorf("groups+filter: got %v", got)
	}
}

func TestGroupNames(t *testing.T) {
	o := newOrg(t, 0)
	o.people(1, func(_ int, u *oktatest.User) { u.Groups = []string{"Sales EMEA", "Twice"} })
	o.AddGroup("Twice")
	cfg := o.source()
	for name, want := range map[string]string{
		"Sales":  `no Okta group has exactly this name (names that start with it: "Sales EMEA")`,
		"Nobody": `no Okta group has this name`,
		"Twice":  `2 Okta groups have this name`,
	} {
		cfg.Groups = []string{name}
		_, _, err := o.pull(t, cfg)
		if !errors.Is(err, okta.ErrGroup) || !strings.Contains(err.Error(), want) {
			t.Errorf("groups [%s]: err %v, want %q", name, err, want)
		}
	}
}

func TestGroupsWhenNeeded(t *testing.T) {
	o := newOrg(t, 0)
	ids := o.people(3, func(i int, u *oktatest.User) {
		u.Groups = [][]string{{"Partners", "Everyone"}, {"Everyone"}, nil}[i]
	})
	cfg := o.source()
	cfg.AreaRules = []config.AreaRule{{Group: "Partners", Area: "partners"}}
	got, _, err := o.pull(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := byID(got)
	if g := m[ids[0]].Groups; !cmp.Equal(g, []string{"Partners"}) {
		t.Errorf("area rule group: groups %v, want [Partners]", g)
	}
	if c := o.Counts(); c[oktatest.EndpointUserGroups] != 0 || c[oktatest.EndpointGroupUsers] != 1 {
		t.Errorf("area rule group: requests %v; want one member listing, no per-user lookups", c)
	}

	o.ResetCounts()
	cfg.Mapping = map[string]string{"groups": "groups"}
	got, _, err = o.pull(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m = byID(got)
	if g := m[ids[0]].Groups; !cmp.Equal(g, []string{"Everyone", "Partners"}) {
		t.Errorf("mapping groups: groups %v", g)
	}
	if g := m[ids[2]].Groups; len(g) != 0 {
		t.Errorf("mapping groups: user in no group has %v", g)
	}
	if n := o.Count(oktatest.EndpointUserGroups); n != 3 {
		t.Errorf("per-user group lookups = %d, want 3", n)
	}
}

func TestRateLimit429Recovers(t *testing.T) {
	o := newOrg(t, 0)
	o.people(500, nil)
	o.Throttle(2)
	got, _, err := o.pull(t, o.source())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 500 {
		t.Fatalf("got %d, want 500", len(got))
	}
	if c := o.Counts(); c["429"] != 2 || c[oktatest.EndpointUsers] != 5 {
		t.Errorf("requests %v; want 2 429s and 3 pages", c)
	}
	// Each wait lasts until the window's reset (plus a second): at most 61s.
	slept := o.clock.Slept()
	if len(slept) != 2 {
		t.Fatalf("slept %v, want two waits", slept)
	}
	for _, d := range slept {
		if d < time.Second || d > 61*time.Second {
			t.Errorf("wait %v is not until the reset", d)
		}
	}
}

func TestRateLimitStormFails(t *testing.T) {
	o := newOrg(t, 0)
	o.people(500, nil)
	o.Throttle(1000)
	_, _, err := o.pull(t, o.source())
	if !errors.Is(err, okta.ErrRateLimited) {
		t.Fatalf("err %v, want ErrRateLimited", err)
	}
	if n := o.Count(oktatest.EndpointUsers); n != 1+okta.DefaultMaxRetries {
		t.Errorf("requests %d, want %d", n, 1+okta.DefaultMaxRetries)
	}
}

func TestRateLimitShare(t *testing.T) {
	o := newOrg(t, 4) // 4 requests a minute
	o.people(1200, nil)
	got, _, err := o.pull(t, o.source()) // 50%: 2 a minute
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1200 {
		t.Fatalf("got %d", len(got))
	}
	if c := o.Counts(); c["429"] != 0 || c[oktatest.EndpointUsers] != 6 {
		t.Errorf("requests %v, want 6 pages and no 429", c)
	}
	if n := len(o.clock.Slept()); n != 2 {
		t.Errorf("waited %d times, want 2 (after pages 2 and 4)", n)
	}
}

func TestFailuresMidListing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault oktatest.Fault
		want  string
	}{
		{"500", oktatest.Fault500, "E0000009"},
		{"timeout", oktatest.FaultHang, "timeout"},
		{"bad json", oktatest.FaultBadJSON, "not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOrg(t, 0)
			o.people(1000, nil)
			o.Fail(3, tc.fault)
			cfg := o.source()
			cfg.Timeout = config.Duration{Duration: 300 * time.Millisecond}
			_, _, err := o.pull(t, cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "page 3") {
				t.Fatalf("err %v, want one about page 3 containing %q", err, tc.want)
			}
			t.Log(err)
			if tc.fault == oktatest.FaultHang && !errors.Is(err, okta.ErrTimeout) {
				t.Errorf("err %v is not ErrTimeout", err)
			}
		})
	}
}

func TestBadToken(t *testing.T) {
	o := newOrg(t, 0)
	o.people(3, nil)
	cfg := o.source()
	cfg.Token = config.NewSecret("not-the-token")
	_, _, err := o.pull(t, cfg)
	if !errors.Is(err, okta.ErrUnauthorized) || !strings.Contains(err.Error(), "Invalid token provided") {
		t.Fatalf("err %v, want ErrUnauthorized saying the token is invalid", err)
	}
	t.Log(err)
	if strings.Contains(err.Error(), "not-the-token") {
		t.Errorf("the error shows the token: %v", err)
	}
}

func TestCheck(t *testing.T) {
	o := newOrg(t, 0)
	o.people(321, nil)
	src, err := okta.New(o.source().source(), zaptest.NewLogger(t), o.options())
	if err != nil {
		t.Fatal(err)
	}
	n, err := connector.Check(context.Background(), src)
	if err != nil || n != 321 {
		t.Fatalf("Check = %d, %v; want 321", n, err)
	}
	cfg := o.source()
	cfg.Token = config.NewSecret("wrong")
	src, _ = okta.New(cfg.source(), nil, o.options())
	if _, err := connector.Check(context.Background(), src); !errors.Is(err, okta.ErrUnauthorized) {
		t.Fatalf("Check with a bad token: %v", err)
	}
}

// writeKey writes an RSA key in PEM (PKCS#8 or PKCS#1) and returns its path.
func writeKey(t *testing.T, key *rsa.PrivateKey, pkcs8 bool) string {
	t.Helper()
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}
	if pkcs8 {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	path := filepath.Join(t.TempDir(), "okta.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPrivateKeyAuth(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	o := newOrg(t, 0)
	o.people(250, func(_ int, u *oktatest.User) { u.Groups = []string{"Staff"} })
	o.AddClient("0oaseatsync", &key.PublicKey, "okta.users.read", "okta.groups.read")

	cfg := o.source()
	cfg.Auth, cfg.Token = "private_key", config.Secret{}
	cfg.ClientID = "0oaseatsync"
	cfg.Groups = []string{"Staff"}
	for _, pkcs8 := range []bool{true, false} {
		o.ResetCounts()
		cfg.PrivateKeyFile = writeKey(t, key, pkcs8)
		got, _, err := o.pull(t, cfg)
		if err != nil {
			t.Fatalf("pkcs8 %v: %v", pkcs8, err)
		}
		if len(got) != 250 {
			t.Fatalf("got %d, want 250", len(got))
		}
		if n := o.Count(oktatest.EndpointToken); n != 1 {
			t.Errorf("token requests = %d, want 1 for the whole pull", n)
		}
	}

	// A key the app does not know.
	cfg.PrivateKeyFile = writeKey(t, other, true)
	if _, _, err := o.pull(t, cfg); !errors.Is(err, okta.ErrUnauthorized) || !strings.Contains(err.Error(), "client_assertion") {
		t.Fatalf("wrong key: err %v", err)
	}
	// Scopes the app was not granted.
	cfg.PrivateKeyFile = writeKey(t, key, true)
	cfg.Scopes = []string{"okta.users.read", "okta.users.manage"}
	if _, _, err := o.pull(t, cfg); !errors.Is(err, okta.ErrUnauthorized) {
		t.Fatalf("ungranted scope: err %v", err)
	}
	// A missing key file.
	cfg.Scopes = okta.DefaultScopes()
	cfg.PrivateKeyFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, _, err := o.pull(t, cfg); err == nil || !strings.Contains(err.Error(), "private_key_file") {
		t.Fatalf("missing key: err %v", err)
	}
	// A named pipe: refused at once, not waited on for a writer.
	cfg.PrivateKeyFile = filepath.Join(t.TempDir(), "key.fifo")
	if err := syscall.Mkfifo(cfg.PrivateKeyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.pull(t, cfg); err == nil || !strings.Contains(err.Error(), "private_key_file: "+cfg.PrivateKeyFile+" is a named pipe, not a regular file") {
		t.Fatalf("key in a named pipe: err %v", err)
	}
}

// The SDK reads ~/.okta/okta.yaml and OKTA_* variables; seatsync must not
// let them change anything.
func TestIgnoresSDKEnvironmentAndYAML(t *testing.T) {
	o := newOrg(t, 0)
	o.people(3, nil)
	decoy := newOrg(t, 0)
	decoy.people(7, nil)

	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".okta"), 0o700); err != nil {
		t.Fatal(err)
	}
	yaml := "okta:\n  client:\n    orgUrl: " + decoy.URL + "\n    token: " + decoy.Token() +
		"\n    authorizationMode: Bearer\n    proxy:\n      host: 127.0.0.1\n      port: 1\n"
	if err := os.WriteFile(filepath.Join(home, ".okta", "okta.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("OKTA_CLIENT_ORGURL", decoy.URL)
	t.Setenv("OKTA_CLIENT_TOKEN", decoy.Token())
	t.Setenv("OKTA_CLIENT_AUTHORIZATIONMODE", "Bearer")
	t.Setenv("OKTA_CLIENT_CACHE_ENABLED", "true")
	t.Setenv("OKTA_CLIENT_RATE_LIMIT_MAX_RETRIES", "9")
	t.Setenv("OKTA_CLIENT_PROXY_HOST", "127.0.0.1")
	t.Setenv("OKTA_CLIENT_PROXY_PORT", "1")

	cfg := o.source()
	got, _, err := o.pull(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Errorf("got %d identities, want the 3 of the configured org", len(got))
	}
	if c := decoy.Counts(); len(c) != 0 {
		t.Errorf("the org named by OKTA_* and okta.yaml got requests: %v", c)
	}
	// Without a token of its own, the source fails; it does not borrow one.
	cfg.Token = config.Secret{}
	if _, err := okta.New(cfg.source(), nil, okta.Options{}); err == nil {
		t.Error("a source without a token opened (OKTA_CLIENT_TOKEN must not count)")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A failed token request must not print the signed client assertion, which
// the SDK sends in the query string.
func TestTokenRequestErrorHidesAssertion(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	o := newOrg(t, 0)
	cfg := o.source()
	cfg.Auth, cfg.Token, cfg.ClientID = "private_key", config.Secret{}, "0oaseatsync"
	cfg.PrivateKeyFile = writeKey(t, key, true)
	opt := o.options()
	opt.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, errors.New("network is unreachable")
	})
	src, err := okta.New(cfg.source(), nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	err = src.Pull(context.Background(), func(model.Identity) error { return nil }, func(connector.Skip) {})
	if err == nil || !strings.Contains(err.Error(), "network is unreachable") {
		t.Fatalf("err %v", err)
	}
	t.Log(err)
	if strings.Contains(err.Error(), "client_assertion") || strings.Contains(err.Error(), "eyJ") {
		t.Errorf("the error shows the client assertion: %v", err)
	}
}
