package main_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/seatsync/seatsync/internal/ldaptest"
)

const ldapOU = "ou=staff,dc=example,dc=org"

func ldapPerson(uid string, extra ...string) string {
	s := fmt.Sprintf("dn: uid=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: Person\ngivenName: %s\nmail: %s@example.org\n",
		uid, ldapOU, uid, uid, uid, uid)
	for _, e := range extra {
		s += e + "\n"
	}
	return s + "\n"
}

// TestOpenLDAPThroughTheBinary runs `seatsync sync` against a real slapd
// over ldaps with the test CA: first sync, a disabled person, a rename, a
// departure, then the server stopped: exit 1, nothing written.
func TestOpenLDAPThroughTheBinary(t *testing.T) {
	ldif := "dn: " + ldapOU + "\nobjectClass: organizationalUnit\nou: staff\n\n"
	for _, uid := range []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"} {
		ldif += ldapPerson(uid)
	}
	slapd, err := ldaptest.StartSlapd(t.TempDir(), ldaptest.SlapdOptions{LDIF: ldif})
	if err != nil {
		ldaptest.Unavailable(t, "slapd", err)
		return
	}
	defer slapd.Close()

	s := &site{t: t, dir: t.TempDir()}
	s.config = s.dir + "/seatsync.yaml"
	s.write("seatsync.yaml", fmt.Sprintf(`version: 1
store: {path: seatsync.db}
licensing:
  pools: [{name: primary, limit: 8, areas: [primary]}]
safety: {max_deprovision: 2}
sources:
  - name: corp
    type: ldap
    flavor: openldap
    url: [ldaps://127.0.0.1:1, %s]      # the first URL fails: failover
    tls: {mode: ldaps, ca_file: %s}
    bind_dn: %q
    bind_password_file: ldap.password
    base_dn: %q
    disabled_filter: "(description=disabled)"
log: {level: warn}
`, slapd.LDAPSURL, slapd.CA.File, slapd.AdminDN, ldapOU))
	s.write("ldap.password", slapd.AdminPass+"\n")

	s.must(exitOK, "validate", "--connect", "-c", s.config)
	rep := decodeReport(t, s.must(exitOK, "sync", "-c", s.config, "--format", "json"))
	if rep.Summary["create"] != 10 {
		t.Fatalf("first sync created %d, want 10: %v", rep.Summary["create"], rep.Summary)
	}
	if got := tally(s.profiles()); got["primary/active/"] != 8 || got["primary/blocked/license"] != 2 {
		t.Errorf("after the first sync: %v, want 8 active and 2 queued", got)
	}

	// Disable alice (a seat frees for the first in the queue), rename bob,
	// and let carol leave.
	slapd.Modify(t, "dn: uid=alice,"+ldapOU+"\nchangetype: modify\nadd: description\ndescription: disabled\n\n"+
		"dn: uid=bob,"+ldapOU+"\nchangetype: modrdn\nnewrdn: uid=robert\ndeleteoldrdn: 1\n\n")
	slapd.Modify(t, "dn: uid=carol,"+ldapOU+"\nchangetype: delete\n\n")
	before := s.profiles()
	s.must(exitOK, "sync", "-c", s.config)
	after := s.profiles()
	if got := after["alice"].state(); got != "blocked source_disabled" {
		t.Errorf("alice: %s, want blocked source_disabled", got)
	}
	if after["bob"] != nil || after["robert"] == nil || after["robert"]["external_id"] != before["bob"]["external_id"] {
		t.Errorf("rename: bob %v, robert %v; want robert with bob's external id", after["bob"], after["robert"])
	}
	if got := after["carol"].state(); got != "blocked left_source" {
		t.Errorf("carol: %s, want blocked left_source", got)
	}
	if got := tally(after)["primary/active/"]; got != 8 {
		t.Errorf("active after the changes: %d, want 8 (the queue took the freed seats)", got)
	}

	// The server gone: the run fails, and nobody is blocked for it.
	slapd.Stop()
	r := s.must(exitFailed, "sync", "-c", s.config)
	if !strings.Contains(r.stderr, "corp") {
		t.Errorf("the error does not name the source:\n%s", r)
	}
	if got := tally(s.profiles()); fmt.Sprint(got) != fmt.Sprint(tally(after)) {
		t.Errorf("a failed run changed profiles: %v, was %v", got, tally(after))
	}
}
