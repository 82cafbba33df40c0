package main_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seatsync/seatsync/internal/oktatest"
)

// oktaSite is a site whose one source is a fake Okta org reached with an
// API token.
func oktaSite(t *testing.T, org *oktatest.Server, token string) *site {
	t.Helper()
	s := oktaSiteWith(t, org, `    token_file: okta.token
    area_rules:
      - attribute: {name: costCenter, equals: "S-100"}
        area: suppliers`)
	s.write("okta.token", token+"\n")
	return s
}

// oktaSiteWith writes a site whose okta source has the given extra keys.
func oktaSiteWith(t *testing.T, org *oktatest.Server, keys string) *site {
	t.Helper()
	s := &site{t: t, dir: t.TempDir()}
	s.config = s.dir + "/seatsync.yaml"
	s.write("seatsync.yaml", fmt.Sprintf(`version: 1
store: {path: seatsync.db}
licensing:
  pools:
    - {name: primary, limit: 2000, areas: [primary]}
    - {name: extranet, limit: 100, areas: [suppliers]}
safety: {max_deprovision: "10%%"}
sources:
  - name: okta
    type: okta
    org_url: %s
    area: primary
%s
log: {level: warn}
`, org.URL, keys))
	return s
}

func oktaPeople(n int) []oktatest.User {
	users := make([]oktatest.User, n)
	for i := range users {
		login := fmt.Sprintf("user%04d@example.com", i)
		users[i] = oktatest.User{Profile: map[string]any{
			"login": login, "email": login, "firstName": "Given", "lastName": fmt.Sprintf("Family%d", i),
		}}
		if i%10 == 0 {
			users[i].Profile["costCenter"] = "S-100"
		}
		if i%100 == 1 {
			users[i].Status = "SUSPENDED"
		}
	}
	return users
}

// TestOktaThroughTheBinary: 1,000 users over 5 pages, a custom attribute
// used in an area rule, suspended users blocked, then a 500 on page 3 that
// fails the run with nothing written, and a bad token with a clear error.
func TestOktaThroughTheBinary(t *testing.T) {
	org := oktatest.New(oktatest.Options{RateLimit: -1})
	defer org.Close()
	org.AddUsers(oktaPeople(1000)...)
	s := oktaSite(t, org, org.Token())

	s.must(exitOK, "validate", "--connect", "-c", s.config)
	org.ResetCounts()
	rep := decodeReport(t, s.must(exitOK, "sync", "-c", s.config, "--format", "json"))
	if got := org.Count(oktatest.EndpointUsers); got != 5 {
		t.Errorf("user-list requests = %d, want 5 pages of 200", got)
	}
	if rep.Summary["create"] != 1000 {
		t.Fatalf("created %d, want 1000: %v", rep.Summary["create"], rep.Summary)
	}
	states := tally(s.profiles())
	want := map[string]int{"primary/active/": 890, "suppliers/active/": 100, "primary/blocked/source_disabled": 10}
	for k, n := range want {
		if states[k] != n {
			t.Errorf("profiles %s = %d, want %d (all: %v)", k, states[k], n, states)
		}
	}

	// A 500 on page 3: the run fails, nothing is written, nobody is blocked.
	org.Fail(3, oktatest.Fault500)
	r := s.must(exitFailed, "sync", "-c", s.config)
	if !strings.Contains(r.stderr, "page 3") {
		t.Errorf("the error does not name the page:\n%s", r)
	}
	after := tally(s.profiles())
	for k, n := range want {
		if after[k] != n {
			t.Errorf("after the failed run: %s = %d, want %d", k, after[k], n)
		}
	}

	// A bad token: a clear error, and the token is not printed.
	bad := oktaSite(t, org, "not-the-token")
	r = bad.must(exitFailed, "sync", "-c", bad.config)
	if !strings.Contains(r.stderr, "token") || strings.Contains(r.stderr, "not-the-token") {
		t.Errorf("bad token error unclear or leaks the token:\n%s", r)
	}
}

// tally counts profiles by area/state/block_reason.
func tally(profiles map[string]profile) map[string]int {
	out := map[string]int{}
	for _, p := range profiles {
		out[fmt.Sprintf("%v/%v/%v", p["area"], p["state"], p["block_reason"])]++
	}
	return out
}

// TestOktaRateLimitAndOAuthThroughTheBinary: a 429 that the binary waits
// out (the fake's clock is moved so the reset is seconds away), the OAuth
// private-key flow, and group scoping with a person in two groups.
func TestOktaRateLimitAndOAuthThroughTheBinary(t *testing.T) {
	var offset atomic.Int64
	org := oktatest.New(oktatest.Options{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	defer org.Close()
	org.AddUsers(oktaPeople(300)...)
	org.AddUsers(
		oktatest.User{Profile: map[string]any{"login": "both@example.com", "email": "both@example.com"}, Groups: []string{"Contractors", "Partners"}},
		oktatest.User{Profile: map[string]any{"login": "one@example.com", "email": "one@example.com"}, Groups: []string{"Partners"}},
	)

	t.Run("429 waited out", func(t *testing.T) {
		s := oktaSite(t, org, org.Token())
		s.must(exitOK, "validate", "--connect", "-c", s.config) // opens the rate-limit window
		offset.Store(int64(57 * time.Second))                   // the window resets in about 3 s
		defer offset.Store(0)
		org.ResetCounts()
		org.Throttle(1)
		rep := decodeReport(t, s.must(exitOK, "sync", "-c", s.config, "--format", "json"))
		if rep.Summary["create"] != 302 || org.Count("429") != 1 {
			t.Errorf("created %d after %d 429s; want 302 after 1", rep.Summary["create"], org.Count("429"))
		}
	})

	t.Run("OAuth private key and groups", func(t *testing.T) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		org.AddClient("0oaseatsync", &key.PublicKey, "okta.users.read", "okta.groups.read")
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		s := oktaSiteWith(t, org, `    auth: private_key
    client_id: 0oaseatsync
    private_key_file: okta.pem
    groups: [Contractors, Partners]`)
		s.write("okta.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
		org.ResetCounts()
		rep := decodeReport(t, s.must(exitOK, "sync", "-c", s.config, "--format", "json"))
		if rep.Summary["create"] != 2 {
			t.Errorf("created %d, want the 2 members of the two groups (one is in both)", rep.Summary["create"])
		}
		if org.Count(oktatest.EndpointToken) == 0 {
			t.Error("no token was requested: the OAuth flow did not run")
		}
		if p := s.profiles(); p["both@example.com"] == nil || p["one@example.com"] == nil {
			t.Errorf("profiles: %v", p)
		}
	})
}
