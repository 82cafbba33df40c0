package ldap

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/seatsync/seatsync/connector"
)

// A cursor is where an incremental read starts: the server's cookie (a
// DirSync cookie, an RFC 4533 sync cookie), whom it belongs to, and the
// people the source knew when it was taken. It is written as
//
//	ldap2.<base64url of the JSON head>.<base64url of the known set>.<check>
//
// where check is the CRC-32C of what precedes it, in hex: a cursor edited
// by hand or cut short in storage is refused. (ldap1 cursors, checked
// with SHA-256, are refused as another version: the source is read in
// full once.)
// The known set is kept because neither protocol names everything a
// change means: a tombstone carries only its objectGUID, an RFC 4533
// present phase lists who is still there (the others are gone), and a
// group whose members change changes nobody's entry on OpenLDAP (the
// memberof overlay does not move the member's entryCSN). It costs about
// 41 bytes a person on OpenLDAP and 17 on AD before base64: some 5.5 MB of
// text for 100,000 people on OpenLDAP. The store keeps values that size.
type cursor struct {
	// Kind is kindDirSync or kindSync.
	Kind string `json:"k"`
	// URL is the server the cookie came from; another server's cookie is
	// not trusted (AD DCs each have their own USNs).
	URL string `json:"u"`
	// Scope is a fingerprint of what decides who is in scope (scopeOf): a
	// cookie taken for another base or filter would not report the people
	// a change of settings brings in.
	Scope string `json:"s"`
	// Flags are the DirSync flags the cookie was taken with.
	Flags int64 `json:"f,omitempty"`
	// Cookie is the server's, as it gave it.
	Cookie []byte `json:"c"`
	// Root is the naming context DirSync reads (AD).
	Root string `json:"r,omitempty"`

	// Groups is a digest of the group search when the cursor was taken
	// (OpenLDAP): while it is the same, nobody's memberships changed, and
	// the read need not compare everyone's.
	Groups string `json:"g,omitempty"`

	// known is the known set, decoded from packed (its base64 text) the
	// first time people asks for it: a read that changes nothing needs
	// only the head, and 100,000 people take tens of milliseconds to
	// decode.
	known  map[[16]byte]known
	packed string
	// text is what the cursor was parsed from, and dirty says whether the
	// read changed it since (set, forget, setCookie): an unchanged cursor
	// is given back as it came, without encoding a set of 100,000 again.
	text  string
	dirty bool
	err   error // the known set did not decode (people)
}

// setGroups keeps the digest of the group search.
func (c *cursor) setGroups(digest string) {
	if c.Groups != digest {
		c.Groups = digest
		c.dirty = true
	}
}

// people is the known set, decoded on first use (parseCursor checked
// that it decodes).
func (c *cursor) people() map[[16]byte]known {
	if c.known != nil {
		return c.known
	}
	b, err := base64.RawURLEncoding.DecodeString(c.packed)
	n, _ := binary.Uvarint(b)
	c.known = make(map[[16]byte]known, min(n, uint64(len(b)/17)))
	if err == nil {
		err = walkKnown(b, c.Kind, func(k [16]byte, kn known) { c.known[k] = kn })
	}
	if err != nil {
		// Written by seatsync and vouched for by its checksum: a set that
		// does not decode is a bug. The read fails (ErrCursor), and the
		// next reads in full.
		c.err = fmt.Errorf("%w: the known set: %w", connector.ErrCursor, err)
		clear(c.known)
	}
	c.packed = ""
	return c.known
}

// set keeps what the cursor knows of the person k.
func (c *cursor) set(k [16]byte, kn known) {
	if prev, ok := c.people()[k]; !ok || prev != kn {
		c.known[k] = kn
		c.dirty = true
	}
}

// forget drops the person k.
func (c *cursor) forget(k [16]byte) {
	if _, ok := c.people()[k]; ok {
		delete(c.known, k)
		c.dirty = true
	}
}

// setCookie keeps the server's new cookie.
func (c *cursor) setCookie(cookie []byte) {
	if !bytes.Equal(c.Cookie, cookie) {
		c.Cookie = cookie
		c.dirty = true
	}
}

// known is one person of a cursor, keyed by objectGUID (AD) or entryUUID
// (OpenLDAP).
type known struct {
	// ext is the external id, "" when it is the key's own string (the
	// default mappings).
	ext string
	// in: the person was emitted (in scope, readable). An entry out of
	// scope is kept too (OpenLDAP), so that joining a scope group shows.
	in bool
	// dn, uid and groups are FNV-64a hashes of the entry's normalised DN,
	// its uid, and the groups the group search gives it (OpenLDAP).
	dn, uid, groups uint64
}

const (
	cursorVersion = "ldap2"
	kindDirSync   = "dirsync"
	kindSync      = "sync"
)

// errCursor marks a cursor this source cannot use.
var errCursor = errors.New("unusable cursor")

func (c *cursor) String() string {
	if c.text != "" && !c.dirty {
		return c.text
	}
	head, err := json.Marshal(c)
	if err != nil {
		panic(err) // a struct of strings, an int and bytes
	}
	enc := base64.RawURLEncoding
	if c.known == nil && c.packed != "" {
		// Only the head changed: the known set goes as it came.
		text := cursorVersion + "." + enc.EncodeToString(head) + "." + c.packed
		return text + "." + check(text)
	}
	known := c.people()
	keys := make([][16]byte, 0, len(known))
	for k := range known {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		p := known[k]
		b = append(b, k[:]...)
		flags := uint64(len(p.ext)) << 1
		if p.in {
			flags |= 1
		}
		b = binary.AppendUvarint(b, flags)
		b = append(b, p.ext...)
		if c.Kind == kindSync {
			b = binary.BigEndian.AppendUint64(b, p.dn)
			b = binary.BigEndian.AppendUint64(b, p.uid)
			b = binary.BigEndian.AppendUint64(b, p.groups)
		}
	}
	text := cursorVersion + "." + enc.EncodeToString(head) + "." + enc.EncodeToString(b)
	return text + "." + check(text)
}

func check(text string) string {
	// CRC-32C, not a cryptographic hash: the store is trusted, and the
	// check is against a cursor edited or cut short. Computed in hardware
	// it takes a tenth of SHA-256's 6 ms for 5.5 MB, on every read.
	return fmt.Sprintf("%08x", crc32.Checksum([]byte(text), castagnoli))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// parseCursor reads a cursor String wrote.
func parseCursor(text string) (*cursor, error) {
	parts := strings.Split(text, ".")
	if len(parts) != 4 || parts[0] != cursorVersion {
		return nil, fmt.Errorf("%w: not an %s cursor", errCursor, cursorVersion)
	}
	if check(text[:len(text)-len(parts[3])-1]) != parts[3] {
		return nil, fmt.Errorf("%w: its checksum does not match (edited, or cut short)", errCursor)
	}
	enc := base64.RawURLEncoding
	head, err := enc.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCursor, err)
	}
	c := &cursor{}
	if err := json.Unmarshal(head, c); err != nil {
		return nil, fmt.Errorf("%w: %w", errCursor, err)
	}
	if c.Kind != kindDirSync && c.Kind != kindSync {
		return nil, fmt.Errorf("%w: kind %q", errCursor, c.Kind)
	}
	// The known set is decoded when it is needed (people): the checksum
	// vouches for it, and a read that changes nothing does not need it.
	c.packed, c.text = parts[2], text
	return c, nil
}

// walkKnown reads a packed known set of a cursor of kind, calling fn
// with each person; it fails on a set cut short.
func walkKnown(b []byte, kind string, fn func([16]byte, known)) error {
	bad := fmt.Errorf("%w: the known set is cut short", errCursor)
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)) {
		return bad
	}
	b = b[w:]
	for range n {
		if len(b) < 16 {
			return bad
		}
		k := [16]byte(b[:16])
		b = b[16:]
		flags, w := binary.Uvarint(b)
		if w <= 0 || flags>>1 > uint64(len(b)-w) {
			return bad
		}
		b = b[w:]
		l := int(flags >> 1)
		p := known{ext: string(b[:l]), in: flags&1 != 0}
		b = b[l:]
		if kind == kindSync {
			if len(b) < 24 {
				return bad
			}
			p.dn, p.uid, p.groups = binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:]), binary.BigEndian.Uint64(b[16:])
			b = b[24:]
		}
		fn(k, p)
	}
	if len(b) != 0 {
		return bad
	}
	return nil
}

// scopeOf fingerprints the settings that decide who is in scope and what
// an identity holds.
func (s *source) scopeOf() string {
	h := sha256.New()
	for _, v := range []string{s.flavor, normDN(s.baseDN), s.userFilter, normDN(s.groupBaseDN), s.groupFilter, s.disabledFilter, fmt.Sprint(s.nested)} {
		h.Write([]byte(v + "\x00"))
	}
	for _, g := range s.scope {
		h.Write([]byte("scope " + normDN(g) + "\x00"))
	}
	for _, g := range s.ruleGroups {
		h.Write([]byte("rule " + normDN(g) + "\x00"))
	}
	for _, a := range s.extra {
		h.Write([]byte("extra " + strings.ToLower(a) + "\x00"))
	}
	h.Write([]byte(fmt.Sprint(s.mapping)))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// keyAttr is the attribute an incremental read keys people by.
func (s *source) keyAttr() string {
	if s.flavor == FlavorAD {
		return "objectGUID"
	}
	return "entryUUID"
}

// keyOf reads an entry's key: objectGUID's 16 bytes, or entryUUID parsed.
func (s *source) keyOf(get func(string) string) ([16]byte, bool) {
	raw := get(s.keyAttr())
	if s.flavor == FlavorAD {
		if len(raw) != 16 {
			return [16]byte{}, false
		}
		return [16]byte([]byte(raw)), true
	}
	return parseUUID(raw)
}

// keyString is the key as the default external id writes it.
func (s *source) keyString(k [16]byte) string {
	if s.flavor == FlavorAD {
		g, _ := guidString(k[:])
		return g
	}
	return uuidString(k)
}

func parseUUID(v string) ([16]byte, bool) {
	var k [16]byte
	h := strings.ReplaceAll(strings.TrimSpace(v), "-", "")
	if len(h) != 32 {
		return k, false
	}
	if _, err := hex.Decode(k[:], []byte(h)); err != nil {
		return k, false
	}
	return k, true
}

func uuidString(k [16]byte) string {
	h := hex.EncodeToString(k[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// hash64 is FNV-64a of s; 0 stands for nothing.
func hash64(s string) uint64 {
	if s == "" {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}
