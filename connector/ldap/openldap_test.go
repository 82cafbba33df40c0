package ldap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/internal/ldaptest"
	"github.com/seatsync/seatsync/model"
)

// TestOpenLDAPPull: people in several OUs, some outside base_dn; groups
// from memberOf (groups added after start) and from a group search
// (posixGroup memberUid); a disabled person; an entry without the external
// id attribute; several pages.
func TestOpenLDAPPull(t *testing.T) {
	s := needSlapd(t)
	ou := unique("pull")
	root := "ou=" + ou + "," + s.BaseDN
	staff := "ou=staff," + root
	people := "ou=people," + staff
	sales := "ou=sales," + staff
	other := "ou=other," + root
	groups := "ou=groups," + staff
	s.Add(t, ldifOU(root)+ldifOU(staff)+ldifOU(people)+ldifOU(sales)+ldifOU(other)+ldifOU(groups)+
		ldifPerson(people, "alice", "title: Engineer", "departmentNumber: R&D", "displayName: Alice A.", "employeeNumber: 1")+
		ldifPerson(people, "bob", "ou: Ops", "employeeNumber: 2")+
		ldifPerson(sales, "carol", "employeeNumber: 3", "pwdAccountLockedTime: 000001010000Z")+
		ldifPerson(sales, "dave", "employeeNumber: 4", "employeeType: contractor")+
		ldifPerson(sales, "noid")+
		ldifPerson(other, "eve", "employeeNumber: 5")+
		ldifGroup("cn=engineers,"+groups, "uid=alice,"+people)+
		fmt.Sprintf("dn: cn=ops,%s\nobjectClass: posixGroup\ncn: ops\ngidNumber: 5000\nmemberUid: bob\nmemberUid: dave\n\n", groups))

	cfg := slapdSource(s, "staff,ou="+ou)
	cfg.DisabledFilter = "(pwdAccountLockedTime=*)"
	// An attribute that an area rule compares is read into Attributes.
	cfg.AreaRules = []config.AreaRule{{Attribute: &config.AttributeRule{Name: "employeeType", Equals: "contractor"}, Area: "partners"}}
	r := mustPull(t, cfg)
	equalUsers(t, r, "alice", "bob", "carol", "dave", "noid")
	if len(r.skips) != 0 {
		t.Errorf("skips = %v, want none", r.skips)
	}

	alice := r.byUser(t, "alice")
	if len(alice.ExternalID) != 36 {
		t.Errorf("alice external id %q is not an entryUUID", alice.ExternalID)
	}
	want := model.Identity{ExternalID: alice.ExternalID, Username: "alice", Email: "alice@example.org", GivenName: "alice",
		FamilyName: "Person", DisplayName: "Alice A.", Title: "Engineer", Department: "R&D",
		Groups: []string{"cn=engineers," + groups}, Enabled: true, Where: "uid=alice," + people}
	if fmt.Sprint(alice) != fmt.Sprint(want) {
		t.Errorf("alice =\n%+v, want\n%+v", alice, want)
	}
	bob := r.byUser(t, "bob")
	if bob.DisplayName != "bob Person" || bob.Department != "Ops" {
		t.Errorf("bob display name %q department %q: want the cn and ou fallbacks", bob.DisplayName, bob.Department)
	}
	if !strings.EqualFold(strings.Join(bob.Groups, ";"), "cn=ops,"+groups) {
		t.Errorf("bob groups = %v, want the posixGroup", bob.Groups)
	}
	if r.byUser(t, "carol").Enabled {
		t.Error("carol matches disabled_filter but is enabled")
	}
	if dave := r.byUser(t, "dave"); !dave.Enabled || dave.Attributes["employeeType"] != "contractor" {
		t.Errorf("dave = %+v, want enabled with attribute employeeType", dave)
	}

	// An entry without the external id attribute is skipped with its DN.
	cfg.Mapping = map[string]string{"external_id": "employeeNumber"}
	r = mustPull(t, cfg)
	equalUsers(t, r, "alice", "bob", "carol", "dave")
	if len(r.skips) != 1 || r.skips[0].Where != "uid=noid,"+sales || !strings.Contains(r.skips[0].Reason, "employeeNumber") {
		t.Errorf("skips = %+v, want noid skipped for its missing employeeNumber", r.skips)
	}
	if id := r.byUser(t, "alice").ExternalID; id != "1" {
		t.Errorf("alice external id = %q, want employeeNumber 1", id)
	}

	// Checker counts the people in scope.
	src, err := Open(cfg.source(), nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := src.(connector.Checker).Check(context.Background())
	if err != nil || n != 4 {
		t.Errorf("Check = %d, %v; want 4, nil", n, err)
	}
	cfg.BaseDN = "ou=missing," + s.BaseDN
	src, _ = Open(cfg.source(), nil)
	if _, err := src.(connector.Checker).Check(context.Background()); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Check of a missing base_dn: %v, want 'does not exist'", err)
	}
}

// TestOpenLDAPNestedGroups: groups three deep scope the pull and drive an
// area rule; a group name full of filter metacharacters.
func TestOpenLDAPNestedGroups(t *testing.T) {
	s := needSlapd(t)
	ou := unique("nested")
	root := "ou=" + ou + "," + s.BaseDN
	people := "ou=people," + root
	groups := "ou=groups," + root
	odd := `cn=R*(D) \5C team,` + groups
	s.Add(t, ldifOU(root)+ldifOU(people)+ldifOU(groups)+
		ldifPerson(people, "alice")+ldifPerson(people, "bob")+ldifPerson(people, "carol")+
		ldifGroup("cn=inner,"+groups, "uid=alice,"+people)+
		ldifGroup("cn=middle,"+groups, "cn=inner,"+groups)+
		ldifGroup("cn=outer,"+groups, "cn=middle,"+groups, "uid=bob,"+people)+
		ldifGroup(odd, "uid=carol,"+people))

	cfg := slapdSource(s, ou)
	cfg.Groups = []string{"CN=Outer," + groups}
	cfg.AreaRules = []config.AreaRule{{Group: "cn=outer," + groups, Area: "partners"}}
	equalUsers(t, mustPull(t, cfg), "bob") // direct members only

	cfg.NestedGroups = true
	r := mustPull(t, cfg)
	equalUsers(t, r, "alice", "bob")
	if !hasGroupFold(r.byUser(t, "alice").Groups, "cn=outer,"+groups) {
		t.Errorf("alice groups = %v, want the outer group through two levels of nesting", r.byUser(t, "alice").Groups)
	}

	cfg.Groups = []string{`cn=R*(D) \\ team,` + groups}
	r = mustPull(t, cfg)
	equalUsers(t, r, "carol")
}

func hasGroupFold(groups []string, g string) bool {
	for _, x := range groups {
		if normDN(x) == normDN(g) {
			return true
		}
	}
	return false
}

// TestOpenLDAPTransport: ldaps and StartTLS with the test CA, an untrusted
// certificate, a wrong host name, a wrong password, plain LDAP, fail-over.
func TestOpenLDAPTransport(t *testing.T) {
	s := needSlapd(t)
	ou := unique("transport")
	root := "ou=" + ou + "," + s.BaseDN
	s.Add(t, ldifOU(root)+ldifPerson(root, "alice"))
	base := slapdSource(s, ou)

	t.Run("ldaps", func(t *testing.T) {
		cfg := base
		cfg.URL = config.StringList{s.LDAPSURL}
		cfg.TLS.Mode = "ldaps"
		equalUsers(t, mustPull(t, cfg), "alice")
	})
	t.Run("starttls", func(t *testing.T) {
		equalUsers(t, mustPull(t, base), "alice")
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		other, err := ldaptest.NewCA(t.TempDir(), "other")
		if err != nil {
			t.Fatal(err)
		}
		for _, mode := range []string{"ldaps", "starttls"} {
			cfg := base
			cfg.TLS = TLS{Mode: mode, CAFile: other.File}
			if mode == "ldaps" {
				cfg.URL = config.StringList{s.LDAPSURL}
			}
			_, err := pullSource(t, cfg, zap.NewNop())
			if !errors.Is(err, ErrCertificate) {
				t.Errorf("%s with an untrusted CA: %v, want ErrCertificate", mode, err)
			}
		}
	})
	t.Run("wrong server name", func(t *testing.T) {
		cfg := base
		cfg.TLS.ServerName = "ldap.elsewhere.example"
		if _, err := pullSource(t, cfg, zap.NewNop()); !errors.Is(err, ErrCertificate) {
			t.Errorf("pull: %v, want ErrCertificate", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		cfg := base
		cfg.BindPassword = config.NewSecret("not-the-password")
		_, err := pullSource(t, cfg, zap.NewNop())
		if !errors.Is(err, ErrCredentials) {
			t.Fatalf("pull: %v, want ErrCredentials", err)
		}
		if strings.Contains(err.Error(), "not-the-password") {
			t.Errorf("the error shows the password: %v", err)
		}
	})
	t.Run("plain ldap", func(t *testing.T) {
		cfg := base
		// Without allow_insecure the loader refuses this (config_test.go).
		cfg.TLS = TLS{Mode: "none", AllowInsecure: true}
		equalUsers(t, mustPull(t, cfg), "alice")
	})
	t.Run("failover", func(t *testing.T) {
		port, err := ldaptest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		cfg := base
		cfg.URL = config.StringList{fmt.Sprintf("ldap://127.0.0.1:%d", port), s.URL}
		equalUsers(t, mustPull(t, cfg), "alice")
	})
	t.Run("no server", func(t *testing.T) {
		port, err := ldaptest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		cfg := base
		cfg.URL = config.StringList{fmt.Sprintf("ldap://127.0.0.1:%d", port)}
		if _, err := pullSource(t, cfg, zap.NewNop()); !errors.Is(err, ErrUnavailable) {
			t.Errorf("pull: %v, want ErrUnavailable", err)
		}
	})
}

// TestOpenLDAPSizeLimit: a server size limit that cuts the paged search
// short fails the pull.
func TestOpenLDAPSizeLimit(t *testing.T) {
	s := needSlapd(t)
	ou := peopleOU(t, s, "sizelimit", 6)
	cfg := slapdSource(s, ou)
	cfg.BindDN, cfg.BindPassword = s.LimitedDN, config.NewSecret("limited-secret")
	r, err := pullSource(t, cfg, zap.NewNop())
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "size limit") {
		t.Fatalf("pull: %v (%d identities), want a size limit error", err, len(r.ids))
	}
}

// TestOpenLDAPServerStopsMidPull: a server that goes away between pages
// fails the pull.
func TestOpenLDAPServerStopsMidPull(t *testing.T) {
	needSlapd(t)
	root := "ou=people,dc=example,dc=org"
	ldif := ldifOU(root)
	for i := range 300 {
		ldif += ldifPerson(root, fmt.Sprintf("user%03d", i))
	}
	s, err := ldaptest.StartSlapd(t.TempDir(), ldaptest.SlapdOptions{LDIF: ldif})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg := slapdSource(s, "people")
	cfg.PageSize = 10
	src, err := Open(cfg.source(), nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = src.Pull(context.Background(), func(model.Identity) error {
		if n++; n == 25 {
			s.Kill()
		}
		return nil
	}, func(connector.Skip) {})
	if err == nil {
		t.Fatalf("pull returned no error after the server was killed (%d identities)", n)
	}
	if !errors.Is(err, ErrIncomplete) {
		t.Errorf("pull: %v, want ErrIncomplete", err)
	}
	t.Logf("error after %d identities: %v", n, err)
}

// TestOpenLDAPHungServer: a server that stops answering in the middle of a
// pull fails it after timeout.
func TestOpenLDAPHungServer(t *testing.T) {
	needSlapd(t)
	root := "ou=people,dc=example,dc=org"
	ldif := ldifOU(root)
	for i := range 40 {
		ldif += ldifPerson(root, fmt.Sprintf("user%03d", i))
	}
	s, err := ldaptest.StartSlapd(t.TempDir(), ldaptest.SlapdOptions{LDIF: ldif})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer s.Resume()
	cfg := slapdSource(s, "people")
	cfg.PageSize = 10
	cfg.Timeout = config.Duration{Duration: time.Second}
	src, err := Open(cfg.source(), nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = src.Pull(context.Background(), func(model.Identity) error {
		if n++; n == 5 {
			s.Pause()
		}
		return nil
	}, func(connector.Skip) {})
	if !errors.Is(err, ErrIncomplete) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("pull: %v (%d identities), want a timeout", err, n)
	}
}

// TestOpenLDAPContext: a cancelled context ends the pull with its error.
func TestOpenLDAPContext(t *testing.T) {
	s := needSlapd(t)
	ou := unique("ctx")
	root := "ou=" + ou + "," + s.BaseDN
	s.Add(t, ldifOU(root)+ldifPerson(root, "a")+ldifPerson(root, "b")+ldifPerson(root, "c"))
	src, err := Open(slapdSource(s, ou).source(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	err = src.Pull(ctx, func(model.Identity) error { cancel(); return nil }, func(connector.Skip) {})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("pull: %v, want context.Canceled", err)
	}
}

// TestOpenLDAPReferral: a referral object inside the searched subtree
// comes back as a search reference, which is ignored; a base_dn at or below
// a referral gets a referral result, which seatsync cannot follow: the
// pull fails, through the wire and through go-ldap alike.
func TestOpenLDAPReferral(t *testing.T) {
	s := needSlapd(t)
	ou := unique("referral")
	root := "ou=" + ou + "," + s.BaseDN
	moved := "ou=moved," + root
	s.Add(t, ldifOU(root)+ldifPerson(root, "alice")+ldifPerson(root, "bob")+
		"dn: "+moved+"\nobjectClass: referral\nobjectClass: extensibleObject\nou: moved\nref: ldap://ldap.elsewhere.example/"+moved+"\n\n")

	r := mustPull(t, slapdSource(s, ou))
	equalUsers(t, r, "alice", "bob")

	for _, noWire := range []bool{false, true} {
		src, err := Open(slapdSource(s, "moved,ou="+ou).source(), nil)
		if err != nil {
			t.Fatal(err)
		}
		src.(*source).noWire = noWire
		r, err := pullWith(t, src)
		if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "referral") {
			t.Errorf("noWire=%v: pull under a referral: %v (%d identities), want an incomplete search for a referral", noWire, err, len(r.ids))
		}
	}
}

// TestOpenLDAPDebugLog: each search is logged at debug level as an
// ldapsearch command line, with the password as $LDAP_PASSWORD.
func TestOpenLDAPDebugLog(t *testing.T) {
	s := needSlapd(t)
	ou := unique("log")
	root := "ou=" + ou + "," + s.BaseDN
	s.Add(t, ldifOU(root)+ldifPerson(root, "alice"))
	core, logs := observer.New(zapcore.DebugLevel)
	if _, err := pullSource(t, slapdSource(s, ou), zap.New(core)); err != nil {
		t.Fatal(err)
	}
	var cmd string
	for _, e := range logs.All() {
		if strings.Contains(fmt.Sprint(e.ContextMap()), s.AdminPass) {
			t.Errorf("a log line shows the password: %v", e.ContextMap())
		}
		if e.Message == "ldap search" && e.ContextMap()["search"] == "people" {
			cmd = e.ContextMap()["ldapsearch"].(string)
		}
	}
	want := "LDAPTLS_CACERT=" + s.CA.File + " ldapsearch -o ldif-wrap=no -x -H " + s.URL + ` -ZZ -D cn=admin,dc=example,dc=org -w "$LDAP_PASSWORD" -b ou=` + ou + `,dc=example,dc=org -s sub -E pr=2/noprompt '(objectClass=inetOrgPerson)' entryUUID uid`
	if !strings.HasPrefix(cmd, want) {
		t.Errorf("ldapsearch line\n%s\nwant prefix\n%s", cmd, want)
	}
}
