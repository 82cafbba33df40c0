package ldap

import (
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/seatsync/seatsync/config"
)

func TestGUIDString(t *testing.T) {
	b := []byte{0x67, 0x45, 0x23, 0x01, 0xab, 0x89, 0xef, 0xcd, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	if got, err := guidString(b); err != nil || got != "01234567-89ab-cdef-0123-456789abcdef" {
		t.Errorf("guidString = %q, %v", got, err)
	}
	if _, err := guidString(b[:15]); err == nil {
		t.Error("15 bytes accepted")
	}
}

func TestADDisabled(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	ft := func(tm time.Time) string {
		return strconv.FormatInt((tm.Unix()+11644473600)*10_000_000, 10)
	}
	for _, c := range []struct {
		uac, expires string
		want         bool
	}{
		{"512", "", false},
		{"514", "", true},
		{"66050", "0", true},
		{"512", "0", false},
		{"512", "9223372036854775807", false},
		{"512", ft(now.Add(-time.Hour)), true},
		{"512", ft(now.Add(time.Hour)), false},
	} {
		if got, bad := adDisabled(c.uac, c.expires, now); got != c.want || bad != "" {
			t.Errorf("adDisabled(%s, %s) = %v %q, want %v", c.uac, c.expires, got, bad, c.want)
		}
	}
	if _, bad := adDisabled("x", "", now); bad == "" {
		t.Error("a userAccountControl that is no number was accepted")
	}
}

// TestQuoted: a skip reason quotes at most 64 bytes of a value, cut at a
// character boundary.
func TestQuoted(t *testing.T) {
	for in, want := range map[string]string{
		"maybe":                        `"maybe"`,
		strings.Repeat("a", 64):        `"` + strings.Repeat("a", 64) + `"`,
		strings.Repeat("a", 65):        `"` + strings.Repeat("a", 64) + `"...`,
		strings.Repeat("a", 63) + "é!": `"` + strings.Repeat("a", 63) + `"...`,
		"tab\there":                    `"tab\there"`,
	} {
		if got := quoted(in); got != want {
			t.Errorf("quoted(%.20q...) = %s, want %s", in, got, want)
		}
	}
	if _, bad := adDisabled(strings.Repeat("9x", 5000), "", time.Now()); len(bad) > 120 {
		t.Errorf("a 10,000-byte userAccountControl gives a %d-byte reason", len(bad))
	}
}

func TestRangeOf(t *testing.T) {
	for _, c := range []struct {
		desc   string
		lo, hi int
		ok     bool
	}{
		{"member;range=0-1499", 0, 1499, true},
		{"Member;Range=1500-*", 1500, -1, true},
		{"member", 0, 0, false},
		{"memberOf;range=0-10", 0, 0, false},
		{"member;range=x-1", 0, 0, false},
	} {
		lo, hi, ok := rangeOf(c.desc, "member")
		if lo != c.lo || hi != c.hi || ok != c.ok {
			t.Errorf("rangeOf(%q) = %d %d %v", c.desc, lo, hi, ok)
		}
	}
}

// TestOpenChecks: Open trusts the settings the loader checked (see
// config_test.go) and checks what the loader cannot: the group DNs and the
// mapping.
func TestOpenChecks(t *testing.T) {
	good := testConfig{Source: config.Source{Name: "x", Type: "ldap"}, Settings: Settings{Flavor: FlavorAD,
		URL: config.StringList{"ldaps://dc1:636"}, TLS: TLS{Mode: "ldaps"}, BindDN: "cn=svc",
		BindPassword: config.NewSecret("pw"), BaseDN: "dc=x", PageSize: 500}}
	if _, err := Open(good.source(), nil); err != nil {
		t.Fatalf("Open: %v", err)
	}
	for name, change := range map[string]func(*testConfig){
		"bad group":     func(s *testConfig) { s.Groups = []string{"not a dn"} },
		"bad rule":      func(s *testConfig) { s.AreaRules = []config.AreaRule{{Group: "not a dn", Area: "primary"}} },
		"unknown field": func(s *testConfig) { s.Mapping = map[string]string{"phone": "telephoneNumber"} },
	} {
		s := good
		change(&s)
		if _, err := Open(s.source(), nil); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "pw") && !strings.Contains(err.Error(), "password") {
			t.Errorf("%s: error shows the password: %v", name, err)
		}
	}
	if _, err := Open(config.Source{Name: "x", Type: "ldap"}, nil); err == nil {
		t.Error("Open without settings: accepted")
	}
}

// TestScopeFilter: group DNs are escaped in filters; AD nesting uses
// LDAP_MATCHING_RULE_IN_CHAIN.
func TestScopeFilter(t *testing.T) {
	src, err := Open(testConfig{Source: config.Source{Name: "x", Groups: []string{`CN=R*(D) \\ Team,DC=x`}},
		Settings: Settings{Flavor: FlavorAD, URL: config.StringList{"ldaps://dc1"}, BaseDN: "dc=x", NestedGroups: true}}.source(), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := src.(*source).peopleFilter()
	want := `(&(&(objectCategory=person)(objectClass=user))(|(memberOf:1.2.840.113556.1.4.1941:=CN=R\2a\28D\29 \5c\5c Team,DC=x)))`
	if f != want {
		t.Errorf("filter\n%s\nwant\n%s", f, want)
	}
	if _, err := goldap.CompileFilter(f); err != nil {
		t.Errorf("filter does not compile: %v", err)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"dc=x,dc=org":             "dc=x,dc=org",
		"(uid=*)":                 "'(uid=*)'",
		"it's":                    `'it'\''s'`,
		"CN=A B,DC=x":             "'CN=A B,DC=x'",
		"ldaps://dc1.example:636": "ldaps://dc1.example:636",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestCAFileNotRegular: a tls.ca_file that names a named pipe is refused
// at once instead of waiting for a writer.
func TestCAFileNotRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "ca.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &source{caFile: fifo}
	_, err := s.tlsConfig("dc1.example")
	if want := "tls.ca_file: " + fifo + " is a named pipe, not a regular file"; err == nil || err.Error() != want {
		t.Errorf("tlsConfig with a named pipe: %v, want %q", err, want)
	}
}
