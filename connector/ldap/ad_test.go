package ldap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/internal/ldaptest"
	"github.com/seatsync/seatsync/model"
)

// adSource is an active_directory source for base over StartTLS with the
// test CA, bound as Administrator@REALM.
func adSource(s *ldaptest.Samba, base string) testConfig {
	return testConfig{
		Source: config.Source{Name: "corp-ad", Type: "ldap", UsernameCase: "lower", Area: "primary", OnLeave: "block"},
		Settings: Settings{
			Flavor:       FlavorAD,
			URL:          config.StringList{s.URL},
			TLS:          TLS{Mode: "starttls", CAFile: s.CA.File},
			BindDN:       s.AdminUPN,
			BindPassword: config.NewSecret(s.AdminPass),
			BaseDN:       base,
			PageSize:     3,
			Timeout:      config.Duration{Duration: 30 * time.Second},
		},
	}
}

// adOU is an AD organizationalUnit.
func adOU(dn string) string {
	return fmt.Sprintf("dn: %s\nobjectClass: organizationalUnit\n\n", dn)
}

// adUser is an AD user CN=sam under parent. uac 544 is an enabled account
// without a password (NORMAL_ACCOUNT | PASSWD_NOTREQD), 546 a disabled one.
func adUser(parent, sam string, uac int, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: CN=%s,%s\nobjectClass: user\nsAMAccountName: %s\nuserAccountControl: %d\ngivenName: %s\nsn: Tester\ndisplayName: %s Tester\nmail: %s@seatsync.test\n",
		sam, parent, sam, uac, sam, sam, sam)
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

// adGroup is an AD global security group with the given members.
func adGroup(dn, sam string, members ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: group\nsAMAccountName: %s\n", dn, sam)
	for _, m := range members {
		b.WriteString("member: " + m + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

// TestADPull: the AD mapping, objectGUID as a GUID string the server
// itself accepts, userAccountControl and accountExpires, OUs in and out of
// base_dn, paging, search references in a whole-domain search.
func TestADPull(t *testing.T) {
	s := needSamba(t)
	n := unique("")
	root := "OU=pull" + n + "," + s.BaseDN
	staff := "OU=Staff," + root
	sales := "OU=Sales," + staff
	other := "OU=Other," + root
	expired := "accountExpires: 129000000000000000" // 2009
	future := fmt.Sprintf("accountExpires: %d", (time.Now().Add(365*24*time.Hour).Unix()+11644473600)*10_000_000)
	s.Add(t, adOU(root)+adOU(staff)+adOU(sales)+adOU(other)+
		adUser(staff, "alice"+n, 544, "title: Engineer", "department: R&D")+
		adUser(staff, "bob"+n, 546)+
		adUser(sales, "carol"+n, 544, expired)+
		adUser(sales, "dave"+n, 544, future)+
		adUser(other, "eve"+n, 544))
	r := mustPull(t, adSource(s, staff))
	equalUsers(t, r, "alice"+n, "bob"+n, "carol"+n, "dave"+n)
	alice := r.byUser(t, "alice"+n)
	if alice.Email != "alice"+n+"@seatsync.test" || alice.GivenName != "alice"+n || alice.FamilyName != "Tester" ||
		alice.DisplayName != "alice"+n+" Tester" || alice.Title != "Engineer" || alice.Department != "R&D" ||
		!alice.Enabled || alice.Where != "CN=alice"+n+","+staff {
		t.Errorf("alice = %+v", alice)
	}
	for u, enabled := range map[string]bool{"bob": false, "carol": false, "dave": true} {
		if got := r.byUser(t, u+n).Enabled; got != enabled {
			t.Errorf("%s enabled = %v, want %v", u, got, enabled)
		}
	}

	src, err := Open(adSource(s, staff).source(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := src.(connector.Checker).Check(context.Background()); err != nil || n != 4 {
		t.Errorf("Check = %d, %v; want 4, nil", n, err)
	}

	// The GUID string is the one AD itself understands: <GUID=...>.
	c, err := goldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(s.AdminUPN, s.AdminPass); err != nil {
		t.Fatal(err)
	}
	res, err := c.Search(goldap.NewSearchRequest("<GUID="+alice.ExternalID+">", goldap.ScopeBaseObject, goldap.NeverDerefAliases,
		0, 0, false, "(objectClass=*)", []string{"sAMAccountName"}, nil))
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("sAMAccountName") != "alice"+n {
		t.Errorf("<GUID=%s> lookup: %v %v", alice.ExternalID, err, res)
	}

	// The whole domain: continuation references (Configuration, DNS zones)
	// are ignored, Administrator is there.
	whole := adSource(s, s.BaseDN)
	whole.PageSize = 1000
	r = mustPull(t, whole)
	r.byUser(t, "Administrator")
	r.byUser(t, "eve"+n)
}

// TestADGroups: nested groups three deep for scope and area rules, a group
// name with filter metacharacters, and a group of more than 1,500 members
// read with range retrieval.
func TestADGroups(t *testing.T) {
	s := needSamba(t)
	n := unique("")
	root := "OU=groups" + n + "," + s.BaseDN
	people := "OU=People," + root
	groups := "OU=Groups," + root
	inner, middle, outer := "CN=Inner"+n+","+groups, "CN=Middle"+n+","+groups, "CN=Outer"+n+","+groups
	odd := `CN=R*(D) \5C Team` + n + "," + groups
	s.Add(t, adOU(root)+adOU(people)+adOU(groups)+
		adUser(people, "alice"+n, 544)+adUser(people, "bob"+n, 544)+adUser(people, "carol"+n, 544)+
		adGroup(inner, "inner"+n, "CN=alice"+n+","+people)+
		adGroup(middle, "middle"+n, inner)+
		adGroup(outer, "outer"+n, middle, "CN=bob"+n+","+people)+
		adGroup(odd, "odd"+n, "CN=carol"+n+","+people))

	cfg := adSource(s, people)
	cfg.Groups = []string{outer}
	cfg.AreaRules = []config.AreaRule{{Group: strings.ToUpper(outer), Area: "partners"}}
	r := mustPull(t, cfg)
	equalUsers(t, r, "bob"+n)

	cfg.NestedGroups = true
	r = mustPull(t, cfg)
	equalUsers(t, r, "alice"+n, "bob"+n)
	if !hasGroupFold(r.byUser(t, "alice"+n).Groups, outer) {
		t.Errorf("alice groups = %v, want %s through nesting", r.byUser(t, "alice"+n).Groups, outer)
	}

	cfg.Groups = []string{`CN=R*(D) \\ Team` + n + "," + groups}
	r = mustPull(t, cfg)
	equalUsers(t, r, "carol"+n)
	if !hasGroupFold(r.byUser(t, "carol"+n).Groups, odd) {
		t.Errorf("carol groups = %v", r.byUser(t, "carol"+n).Groups)
	}

	// Through the runner: the nested area rule puts alice in partners.
	cfg.Groups = nil
	sy := newSyncer(t, cfg)
	sy.sync()
	sy.expect("alice"+n, model.Active, model.ReasonNone, "partners")
	sy.expect("carol"+n, model.Active, model.ReasonNone, "primary")
}

// TestADBigGroup: 1,600 members, more than AD returns at once.
func TestADBigGroup(t *testing.T) {
	s := needSamba(t)
	if testing.Short() {
		t.Skip("SKIPPING in -short mode: adding 1,600 users to Samba takes over a minute")
	}
	n := unique("")
	root := "OU=big" + n + "," + s.BaseDN
	people := "OU=People," + root
	big := "CN=Big" + n + "," + root
	var ldif strings.Builder
	ldif.WriteString(adOU(root) + adOU(people))
	var members []string
	const size = 1600
	for i := range size {
		sam := fmt.Sprintf("b%s-%04d", n, i)
		ldif.WriteString(adUser(people, sam, 544))
		members = append(members, "CN="+sam+","+people)
	}
	ldif.WriteString(adGroup(big, "big"+n, members...))
	s.Add(t, ldif.String())

	cfg := adSource(s, people)
	cfg.PageSize = 1000
	cfg.Groups = []string{big}
	if r := mustPull(t, cfg); len(r.ids) != size {
		t.Fatalf("pulled %d members of the big group, want %d", len(r.ids), size)
	}

	// The member attribute in ranges of 1,000, as AD hands out 1,500.
	src, err := Open(cfg.source(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := src.(*source).connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	var entry *goldap.Entry
	q := query{what: "big group", base: big, scope: goldap.ScopeBaseObject, filter: "(objectClass=group)", attrs: []string{"member;range=0-999"}}
	if err := src.(*source).search(ctx, c, q, func(e *goldap.Entry) error { entry = e; return nil }); err != nil || entry == nil {
		t.Fatalf("read the big group: %v", err)
	}
	if got := len(entry.Attributes[0].Values); got != 1000 {
		t.Fatalf("first range has %d values (%s), want 1000", got, entry.Attributes[0].Name)
	}
	vals, err := src.(*source).values(ctx, c, entry, "member")
	if err != nil || len(vals) != size {
		t.Fatalf("range retrieval: %d values, %v; want %d", len(vals), err, size)
	}
}

// TestADTransport: ldaps and StartTLS with the test CA, an untrusted
// certificate, a wrong password, fail-over.
func TestADTransport(t *testing.T) {
	s := needSamba(t)
	base := adSource(s, "CN=Users,"+s.BaseDN)
	t.Run("ldaps", func(t *testing.T) {
		cfg := base
		cfg.URL, cfg.TLS.Mode = config.StringList{s.LDAPSURL}, "ldaps"
		mustPull(t, cfg).byUser(t, "Administrator")
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		other, err := ldaptest.NewCA(t.TempDir(), "other")
		if err != nil {
			t.Fatal(err)
		}
		cfg := base
		cfg.URL, cfg.TLS = config.StringList{s.LDAPSURL}, TLS{Mode: "ldaps", CAFile: other.File}
		if _, err := pullSource(t, cfg, zap.NewNop()); !errors.Is(err, ErrCertificate) {
			t.Errorf("pull: %v, want ErrCertificate", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		cfg := base
		cfg.BindPassword = config.NewSecret("Wrong-Password-1")
		_, err := pullSource(t, cfg, zap.NewNop())
		if !errors.Is(err, ErrCredentials) || strings.Contains(err.Error(), "Wrong-Password-1") {
			t.Errorf("pull: %v, want ErrCredentials without the password", err)
		}
	})
	t.Run("failover", func(t *testing.T) {
		port, err := ldaptest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		cfg := base
		cfg.URL = config.StringList{fmt.Sprintf("ldap://127.0.0.1:%d", port), s.URL}
		mustPull(t, cfg).byUser(t, "Administrator")
	})
}

// TestADReconcile: disabled and re-enabled, renamed, moved out of base_dn,
// through the runner and a SQLite store.
func TestADReconcile(t *testing.T) {
	s := needSamba(t)
	n := unique("")
	root := "OU=rec" + n + "," + s.BaseDN
	staff := "OU=Staff," + root
	gone := "OU=Gone," + root
	s.Add(t, adOU(root)+adOU(staff)+adOU(gone)+
		adUser(staff, "alice"+n, 544)+adUser(staff, "bob"+n, 544)+adUser(staff, "carol"+n, 544))
	sy := newSyncer(t, adSource(s, staff))
	if rep := sy.sync(); rep.Summary.Create != 3 {
		t.Fatalf("first sync: %s", summary(rep))
	}
	alice := sy.expect("alice"+n, model.Active, model.ReasonNone, "primary")

	s.Modify(t, "dn: CN=bob"+n+","+staff+"\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 546\n")
	sy.sync()
	sy.expect("bob"+n, model.Blocked, model.ReasonSourceDisabled, "primary")
	s.Modify(t, "dn: CN=bob"+n+","+staff+"\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 544\n")
	sy.sync()
	sy.expect("bob"+n, model.Active, model.ReasonNone, "primary")

	s.Modify(t, "dn: CN=alice"+n+","+staff+"\nchangetype: modify\nreplace: sAMAccountName\nsAMAccountName: alicia"+n+"\n")
	if rep := sy.sync(); rep.Summary.Create != 0 {
		t.Fatalf("rename: %s", summary(rep))
	}
	if p := sy.expect("alicia"+n, model.Active, model.ReasonNone, "primary"); p.ExternalID != alice.ExternalID {
		t.Errorf("renamed profile has external id %s, want %s", p.ExternalID, alice.ExternalID)
	}

	s.Modify(t, "dn: CN=carol"+n+","+staff+"\nchangetype: modrdn\nnewrdn: CN=carol"+n+"\ndeleteoldrdn: 1\nnewsuperior: "+gone+"\n")
	sy.sync()
	sy.expect("carol"+n, model.Blocked, model.ReasonLeftSource, "primary")
}
