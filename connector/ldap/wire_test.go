package ldap

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/seatsync/seatsync/config"
)

// encodeEntry encodes a SearchResultEntry operation as a server sends it.
func encodeEntry(dn string, attrs []goldap.EntryAttribute) []byte {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationSearchResultEntry, nil, "entry")
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, "dn"))
	list := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attributes")
	for _, a := range attrs {
		attr := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attribute")
		attr.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, a.Name, "type"))
		set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "vals")
		for _, v := range a.Values {
			set.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, v, "val"))
		}
		attr.AppendChild(set)
		list.AppendChild(attr)
	}
	op.AppendChild(list)
	return op.Bytes()
}

// operation returns the contents of an encoded operation.
func operation(t testing.TB, b []byte) []byte {
	d := decoder{b: b}
	tag, el, ok := d.next()
	if !ok || tag != tagEntry || !d.done() {
		t.Fatalf("not one entry operation: %x", b)
	}
	return el.b
}

// TestDecodeEntry: random entries, with empty, binary and long values
// (long-form lengths), decode to what was encoded.
func TestDecodeEntry(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	value := func() string {
		n := []int{0, 1, 5, 127, 128, 300, 70_000}[r.IntN(7)]
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		return string(b)
	}
	for i := range 300 {
		dn := fmt.Sprintf("uid=user%d,ou=people,dc=example,dc=org", i)
		var attrs []goldap.EntryAttribute
		for j := range r.IntN(6) {
			a := goldap.EntryAttribute{Name: fmt.Sprintf("attr%d;range=0-%d", j, j)}
			for range r.IntN(4) {
				a.Values = append(a.Values, value())
			}
			attrs = append(attrs, a)
		}
		e, err := decodeEntry(operation(t, encodeEntry(dn, attrs)))
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if e.DN != dn || len(e.Attributes) != len(attrs) {
			t.Fatalf("entry %d: DN %q with %d attributes, want %q with %d", i, e.DN, len(e.Attributes), dn, len(attrs))
		}
		for j, a := range attrs {
			got := e.Attributes[j]
			if got.Name != a.Name || len(got.Values) != len(a.Values) || (len(a.Values) > 0 && !reflect.DeepEqual(got.Values, a.Values)) {
				t.Fatalf("entry %d attribute %d = %q %d values, want %q %d values", i, j, got.Name, len(got.Values), a.Name, len(a.Values))
			}
		}
	}
}

// TestDecodeEntryMalformed: every cut of a valid entry, and some wrong
// shapes, are errors, not panics or entries.
func TestDecodeEntryMalformed(t *testing.T) {
	good := operation(t, encodeEntry("uid=a,dc=example,dc=org", []goldap.EntryAttribute{
		{Name: "uid", Values: []string{"a"}}, {Name: "mail", Values: []string{"a@example.org", "b@example.org"}}}))
	if _, err := decodeEntry(good); err != nil {
		t.Fatal(err)
	}
	for n := range len(good) {
		if e, err := decodeEntry(good[:n]); err == nil {
			t.Errorf("%d of %d bytes decoded to %+v", n, len(good), e)
		}
	}
	for name, b := range map[string][]byte{
		"integer DN":          {0x02, 0x01, 0x01, 0x30, 0x00},
		"attributes not list": {0x04, 0x00, 0x04, 0x00},
		"value not a string":  {0x04, 0x00, 0x30, 0x08, 0x30, 0x06, 0x04, 0x01, 'a', 0x31, 0x01, 0x01},
		"length past the end": {0x04, 0x05, 'a'},
		"indefinite length":   {0x04, 0x80, 0x00, 0x00},
		"multi-byte tag":      {0x1f, 0x81, 0x01, 0x00},
	} {
		if e, err := decodeEntry(b); err == nil {
			t.Errorf("%s: decoded to %+v", name, e)
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(operation(f, encodeEntry("uid=a,dc=example,dc=org", []goldap.EntryAttribute{{Name: "uid", Values: []string{"a"}}})))
	f.Add([]byte{0x04, 0x00, 0x30, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		// What decodes encodes to an entry that decodes the same.
		attrs := make([]goldap.EntryAttribute, len(e.Attributes))
		for i, a := range e.Attributes {
			attrs[i] = *a
		}
		again, err := decodeEntry(operation(t, encodeEntry(e.DN, attrs)))
		if err != nil || !reflect.DeepEqual(flat(again), flat(e)) {
			t.Errorf("%x decoded to %+v, which encodes to %+v, %v", b, flat(e), flat(again), err)
		}
	})
}

// flat is an entry's DN and attributes as values, with nil and empty
// value lists alike.
func flat(e *goldap.Entry) []string {
	out := []string{e.DN}
	for _, a := range e.Attributes {
		out = append(out, fmt.Sprintf("%q=%q", a.Name, a.Values))
	}
	return out
}

// TestWireMatchesGoLDAP: a pull through the wire gives exactly what a pull
// through go-ldap alone gives, on OpenLDAP (groups, a disabled filter,
// multi-valued and long values) and on AD (binary objectGUIDs, search
// references, userAccountControl).
func TestWireMatchesGoLDAP(t *testing.T) {
	compare := func(t *testing.T, cfg testConfig) {
		t.Helper()
		viaWire := mustPull(t, cfg)
		src, err := Open(cfg.source(), nil)
		if err != nil {
			t.Fatal(err)
		}
		src.(*source).noWire = true
		viaConn, err := pullWith(t, src)
		if err != nil {
			t.Fatal(err)
		}
		if len(viaWire.ids) == 0 {
			t.Fatal("the pull found nobody")
		}
		if !reflect.DeepEqual(viaWire, viaConn) {
			t.Errorf("through the wire:\n%+v\nthrough go-ldap:\n%+v", viaWire, viaConn)
		}
	}
	t.Run("openldap", func(t *testing.T) {
		s := needSlapd(t)
		ou := unique("wire")
		root := "ou=" + ou + "," + s.BaseDN
		groups := "ou=groups," + root
		long := strings.Repeat("Very long title ", 40)
		ldif := ldifOU(root) + ldifOU(groups)
		var members []string
		for i := range 40 {
			uid := fmt.Sprintf("user%02d", i)
			extra := []string{"title: " + long, "mail: second" + uid + "@example.org", "displayName: Zoë Ünïcode " + uid}
			if i%7 == 0 {
				extra = append(extra, "pwdAccountLockedTime: 000001010000Z")
			}
			ldif += ldifPerson(root, uid, extra...)
			members = append(members, "uid="+uid+","+root)
		}
		ldif += ldifGroup("cn=all,"+groups, members...) + ldifGroup("cn=few,"+groups, members[:3]...)
		s.Add(t, ldif)
		cfg := slapdSource(s, ou)
		cfg.PageSize = 7
		cfg.DisabledFilter = "(pwdAccountLockedTime=*)"
		compare(t, cfg)
	})
	t.Run("active_directory", func(t *testing.T) {
		s := needSamba(t)
		cfg := adSource(s, s.BaseDN)
		cfg.PageSize = 50
		compare(t, cfg)
	})
}

// TestWireFallback: behind a proxy that lets one connection through, the
// pull reads through the go-ldap connection, says so, and misses nobody.
func TestWireFallback(t *testing.T) {
	s := needSlapd(t)
	ou := peopleOU(t, s, "fallback", 12)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if accepted.Add(1) > 1 {
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "ldap://"))
			if err != nil {
				c.Close()
				continue
			}
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()

	cfg := slapdSource(s, ou)
	cfg.URL = config.StringList{"ldap://" + ln.Addr().String()}
	cfg.TLS = TLS{Mode: "none", AllowInsecure: true}
	core, logs := observer.New(zap.WarnLevel)
	r, err := pullSource(t, cfg, zap.New(core))
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if len(r.ids) != 12 {
		t.Errorf("%d identities through one connection, want 12", len(r.ids))
	}
	if logs.FilterMessageSnippet("second connection failed").Len() != 1 {
		t.Errorf("warnings = %v, want one about the second connection", logs.All())
	}
}

// TestWireNestedSearch: a paged search made while the wire reads a page
// goes to the go-ldap connection, and both searches see every entry.
func TestWireNestedSearch(t *testing.T) {
	s := needSlapd(t)
	ou := peopleOU(t, s, "nested", 9)
	src, err := Open(slapdSource(s, ou).source(), nil)
	if err != nil {
		t.Fatal(err)
	}
	so := src.(*source)
	ctx := t.Context()
	c, err := so.connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if c.wire, err = so.dialWire(ctx, c.url); err != nil {
		t.Fatal(err)
	}
	q := query{what: "people", base: so.baseDN, scope: goldap.ScopeWholeSubtree, filter: "(objectClass=inetOrgPerson)", attrs: []string{"uid"}, paged: true}
	outer, inner := 0, 0
	err = so.search(ctx, c, q, func(*goldap.Entry) error {
		if outer++; outer == 1 {
			return so.search(ctx, c, q, func(*goldap.Entry) error { inner++; return nil })
		}
		return nil
	})
	if err != nil || outer != 9 || inner != 9 {
		t.Errorf("outer search saw %d, inner %d, err %v; want 9, 9, nil", outer, inner, err)
	}
}
