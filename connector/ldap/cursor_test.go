package ldap

import (
	"errors"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/seatsync/seatsync/connector"
)

// A cursor a read did not change is given back as it came, and one it
// changed is encoded again.
func TestCursorUnchangedKeepsText(t *testing.T) {
	c := &cursor{Kind: kindSync, URL: "ldap://x", Scope: "s", Cookie: []byte("rid=000,csn=1"), known: map[[16]byte]known{{1}: {in: true, dn: 7}}}
	text := c.String()
	back, err := parseCursor(text)
	if err != nil {
		t.Fatal(err)
	}
	back.set([16]byte{1}, known{in: true, dn: 7})
	back.setCookie([]byte("rid=000,csn=1"))
	back.forget([16]byte{2})
	if back.dirty || back.String() != text {
		t.Errorf("a cursor set to what it held is dirty (%v) or encoded anew", back.dirty)
	}
	back.set([16]byte{1}, known{in: false, dn: 7})
	if again := back.String(); again == text {
		t.Error("a changed cursor gives its old text")
	} else if c2, err := parseCursor(again); err != nil || c2.people()[[16]byte{1}].in {
		t.Errorf("the changed cursor reads back as %+v, %v", c2, err)
	}
}

// A cursor whose head alone changed (a new cookie, a new group digest)
// keeps its known set without decoding it, and reads back with it.
func TestCursorHeadChangeKeepsSet(t *testing.T) {
	c := &cursor{Kind: kindSync, URL: "ldap://x", Scope: "s", Cookie: []byte("rid=000,csn=1"),
		known: map[[16]byte]known{{1}: {in: true, dn: 7}, {2}: {ext: "E2", uid: 9}}}
	back, err := parseCursor(c.String())
	if err != nil {
		t.Fatal(err)
	}
	back.setCookie([]byte("rid=000,csn=2"))
	back.setGroups("digest")
	if back.known != nil {
		t.Fatal("setting the head decoded the known set")
	}
	again, err := parseCursor(back.String())
	if err != nil {
		t.Fatal(err)
	}
	if string(again.Cookie) != "rid=000,csn=2" || again.Groups != "digest" || len(again.people()) != 2 || again.people()[[16]byte{2}].ext != "E2" {
		t.Errorf("read back: cookie %q, groups %q, known %+v", again.Cookie, again.Groups, again.people())
	}
	if _, err := parseCursor(strings.Replace(c.String(), ".", ".x", 2)); err == nil {
		t.Error("an edited cursor parsed")
	}
}

// normDN's shortcut for plain DNs gives what the parser gives.
func TestNormDNShortcut(t *testing.T) {
	slow := func(dn string) string {
		d, err := goldap.ParseDN(dn)
		if err != nil || len(d.RDNs) == 0 {
			return strings.ToLower(strings.TrimSpace(dn))
		}
		return strings.ToLower(d.String())
	}
	for _, dn := range []string{
		"uid=user00001,ou=people,dc=example,dc=org", "CN=John Smith,OU=People,DC=corp,DC=example",
		"cn=a.b-c_d@e,dc=x", "cn=a  b,dc=x", "cn= a,dc=x", "cn=a ,dc=x", "cn=a, dc=x", "cn =a,dc=x",
		"cn=a+sn=b,dc=x", `cn=a\,b,dc=x`, "cn=a=b,dc=x", "cn=#a,dc=x", "cn=Jörg,dc=x", "cn=a;dc=x", "",
		"cn=a,,dc=x", "=a,dc=x", "cn=,dc=x", "cn=a,dc=x,", "dc=x", "cn=a,dc", "CN=Ab Cd Ef,OU=x y,DC=z",
	} {
		if plainDN(dn) && normDN(dn) != slow(dn) {
			t.Errorf("normDN(%q) = %q, the parser gives %q", dn, normDN(dn), slow(dn))
		}
	}
	for _, dn := range []string{"uid=user00001,ou=people,dc=example,dc=org", "CN=John Smith,OU=People,DC=corp,DC=example"} {
		if !plainDN(dn) {
			t.Errorf("%q takes the slow way", dn)
		}
	}
}

func FuzzNormDNShortcut(f *testing.F) {
	f.Add("uid=a,dc=x")
	f.Add("CN=John Smith,OU=People,DC=corp")
	f.Fuzz(func(t *testing.T, dn string) {
		if !plainDN(dn) {
			return
		}
		d, err := goldap.ParseDN(dn)
		if err != nil || len(d.RDNs) == 0 {
			t.Fatalf("plainDN(%q) but the parser refuses it: %v", dn, err)
		}
		if got, want := normDN(dn), strings.ToLower(d.String()); got != want {
			t.Fatalf("normDN(%q) = %q, the parser gives %q", dn, got, want)
		}
	})
}

// A known set that its checksum vouches for but that does not decode (a
// bug in whatever wrote it) is found when the read needs it: the read
// fails with connector.ErrCursor, so that the next reads in full.
func TestCursorBrokenKnownSet(t *testing.T) {
	c := &cursor{Kind: kindSync, URL: "ldap://x", Scope: "s", Cookie: []byte("rid=000,csn=1"), known: map[[16]byte]known{{1}: {in: true}}}
	good := c.String()
	parts := strings.Split(good, ".")
	text := strings.Join([]string{parts[0], parts[1], "AQID"}, ".") // says one person, holds two bytes
	text += "." + check(text)
	back, err := parseCursor(text)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if len(back.people()) != 0 || !errors.Is(back.err, connector.ErrCursor) {
		t.Errorf("people() = %v, err %v; want none and ErrCursor", back.people(), back.err)
	}
}
