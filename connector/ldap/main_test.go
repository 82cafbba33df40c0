package ldap

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/internal/ldaptest"
	"github.com/seatsync/seatsync/model"
)

// One slapd and one Samba AD DC serve every test of the package; each test
// works in its own OU.
var (
	slapd    *ldaptest.Slapd
	slapdErr error
	samba    *ldaptest.Samba
	sambaErr error
)

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" || flag.Lookup("test.fuzzworker").Value.String() == "true" {
		// Fuzzing runs only the fuzz target, in many processes: no servers.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "seatsync-ldap-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		slapd, slapdErr = ldaptest.StartSlapd(dir, ldaptest.SlapdOptions{})
	}()
	go func() {
		defer wg.Done()
		samba, sambaErr = ldaptest.StartSamba(dir)
	}()
	wg.Wait()
	code := m.Run()
	slapd.Close()
	samba.Close()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func needSlapd(t *testing.T) *ldaptest.Slapd {
	t.Helper()
	if slapdErr != nil {
		ldaptest.Unavailable(t, "OpenLDAP slapd", slapdErr)
	}
	return slapd
}

func needSamba(t *testing.T) *ldaptest.Samba {
	t.Helper()
	if sambaErr != nil {
		ldaptest.Unavailable(t, "Samba AD DC", sambaErr)
	}
	return samba
}

var ouSeq atomic.Int64

// unique makes an OU name no other test (or -count run) uses.
func unique(name string) string { return fmt.Sprintf("%s%d", name, ouSeq.Add(1)) }

// slapdSource is an openldap source for the OU ou under slapd's base,
// over StartTLS with the test CA, bound as the rootdn.
func slapdSource(s *ldaptest.Slapd, ou string) testConfig {
	return testConfig{
		Source: config.Source{Name: "corp", Type: "ldap", UsernameCase: "lower", Area: "primary", OnLeave: "block"},
		Settings: Settings{
			Flavor:       FlavorOpenLDAP,
			URL:          config.StringList{s.URL},
			TLS:          TLS{Mode: "starttls", CAFile: s.CA.File},
			BindDN:       s.AdminDN,
			BindPassword: config.NewSecret(s.AdminPass),
			BaseDN:       "ou=" + ou + "," + s.BaseDN,
			PageSize:     2,
			Timeout:      config.Duration{Duration: 10 * time.Second},
		},
	}
}

// testConfig is a source's configuration as the tests write it: the
// common keys and the ldap settings side by side, so that a copy changed
// by one case leaves the others alone.
type testConfig struct {
	config.Source
	Settings
}

// source is the configuration Open takes, with the loader's defaults for
// what the case leaves out.
func (c testConfig) source() config.Source {
	set := c.Settings
	if set.Flavor == "" {
		set.Flavor = DefaultFlavor
	}
	if set.TLS.Mode == "" {
		set.TLS.Mode = DefaultTLSMode
	}
	if set.PageSize == 0 {
		set.PageSize = DefaultPageSize
	}
	if set.Timeout.Duration == 0 {
		set.Timeout.Duration = DefaultTimeout
	}
	c.Source.Settings = &set
	return c.Source
}

// result is what one pull gave.
type result struct {
	ids   []model.Identity // sorted by username
	skips []connector.Skip
}

func (r result) byUser(t *testing.T, u string) model.Identity {
	t.Helper()
	for _, id := range r.ids {
		if id.Username == u {
			return id
		}
	}
	t.Fatalf("no identity %s among %v", u, r.usernames())
	return model.Identity{}
}

func (r result) usernames() []string {
	var out []string
	for _, id := range r.ids {
		out = append(out, id.Username)
	}
	return out
}

func pullSource(t *testing.T, cfg testConfig, log *zap.Logger) (result, error) {
	t.Helper()
	src, err := Open(cfg.source(), log)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return pullWith(t, src)
}

// pullWith pulls from an opened source.
func pullWith(t *testing.T, src connector.Source) (result, error) {
	t.Helper()
	src.(*source).backoff = 10 * time.Millisecond
	var r result
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := src.Pull(ctx, func(id model.Identity) error {
		r.ids = append(r.ids, id)
		return nil
	}, func(s connector.Skip) { r.skips = append(r.skips, s) })
	slices.SortFunc(r.ids, func(a, b model.Identity) int { return strings.Compare(a.Username, b.Username) })
	return r, err
}

func mustPull(t *testing.T, cfg testConfig) result {
	t.Helper()
	r, err := pullSource(t, cfg, zap.NewNop())
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	return r
}

func equalUsers(t *testing.T, r result, want ...string) {
	t.Helper()
	if got := r.usernames(); !slices.Equal(got, want) {
		t.Fatalf("usernames = %v, want %v", got, want)
	}
}

// peopleOU adds a new OU under slapd's base with n people user00, user01,
// ... and returns its name.
func peopleOU(t *testing.T, s *ldaptest.Slapd, name string, n int) string {
	t.Helper()
	ou := unique(name)
	root := "ou=" + ou + "," + s.BaseDN
	ldif := ldifOU(root)
	for i := range n {
		ldif += ldifPerson(root, fmt.Sprintf("user%02d", i))
	}
	s.Add(t, ldif)
	return ou
}

// ldifOU is an organizationalUnit.
func ldifOU(dn string) string {
	ou := strings.TrimPrefix(strings.SplitN(dn, ",", 2)[0], "ou=")
	return fmt.Sprintf("dn: %s\nobjectClass: organizationalUnit\nou: %s\n\n", dn, ou)
}

// ldifPerson is an inetOrgPerson uid=uid under parent; extra lines are
// appended as they are.
func ldifPerson(parent, uid string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: uid=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s Person\nsn: Person\ngivenName: %s\nmail: %s@example.org\n",
		uid, parent, uid, uid, uid, uid)
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

// ldifGroup is a groupOfNames with the given member DNs.
func ldifGroup(dn string, members ...string) string {
	cn := strings.TrimPrefix(strings.SplitN(dn, ",", 2)[0], "cn=")
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: groupOfNames\ncn: %s\n", dn, cn)
	for _, m := range members {
		b.WriteString("member: " + m + "\n")
	}
	b.WriteString("\n")
	return b.String()
}
