package ldap

import "testing"

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
	} else if c2, err := parseCursor(again); err != nil || c2.known[[16]byte{1}].in {
		t.Errorf("the changed cursor reads back as %+v, %v", c2, err)
	}
}
