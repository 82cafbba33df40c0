package ldap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	goldap "github.com/go-ldap/ldap/v3"
)

// groupIndex is who is in which group, read by one group search
// (openldap/generic): groupOfNames/groupOfUniqueNames members by DN and
// posixGroup members by uid. It holds memberships only, not people.
type groupIndex struct {
	dns []string // group DNs as the server wrote them
	// byDN maps a member's normalised DN (a person or a group) to the
	// groups that list it; byUID maps a memberUid to its groups.
	byDN  map[string][]int
	byUID map[string][]int
	// index maps a group's normalised DN to its place in dns.
	index map[string]int
	// byDNHash and byUIDHash are byDN and byUID keyed by hash64, and norm
	// the normalised dns, made for incremental reads (groupsHash).
	byDNHash, byUIDHash map[uint64][]int
	norm                []string
	// digest is a digest of the search's answer: the groups and their
	// members, in the order the server gave them.
	digest string
}

// readGroups runs the group search under group_base_dn.
func (p *pull) readGroups(ctx context.Context) (*groupIndex, error) {
	gi := &groupIndex{byDN: map[string][]int{}, byUID: map[string][]int{}, index: map[string]int{}}
	h := sha256.New()
	q := query{what: "groups", base: p.groupBaseDN, scope: goldap.ScopeWholeSubtree, filter: wrap(p.groupFilter),
		attrs: []string{"member", "uniqueMember", "memberUid"}, paged: true}
	err := p.search(ctx, p.c, q, func(e *goldap.Entry) error {
		i := len(gi.dns)
		gi.dns = append(gi.dns, e.DN)
		h.Write([]byte("\x00group " + e.DN))
		gi.index[normDN(e.DN)] = i
		for _, attr := range []string{"member", "uniqueMember"} {
			vals, err := p.values(ctx, p.c, e, attr)
			if err != nil {
				return err
			}
			for _, m := range vals {
				k := normDN(m)
				gi.byDN[k] = append(gi.byDN[k], i)
				h.Write([]byte("\x00" + attr + " " + m))
			}
		}
		for _, uid := range e.GetAttributeValues("memberUid") {
			gi.byUID[uid] = append(gi.byUID[uid], i)
			h.Write([]byte("\x00memberUid " + uid))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	gi.digest = hex.EncodeToString(h.Sum(nil)[:16])
	return gi, nil
}

// any reports whether the group search found any membership.
func (gi *groupIndex) any() bool {
	return gi != nil && (len(gi.byDN) > 0 || len(gi.byUID) > 0)
}

// of returns groups (the person's memberOf values) together with the
// groups the index lists the person (dn, uid) in; with nested, also every
// group those groups are members of, at any depth.
func (gi *groupIndex) of(groups []string, dn, uid string, nested bool) []string {
	seen := map[string]bool{}
	var queue []string
	add := func(g string) {
		k := normDN(g)
		if seen[k] {
			return
		}
		seen[k] = true
		groups = append(groups, g)
		queue = append(queue, k)
	}
	direct := groups
	groups = nil
	for _, g := range direct {
		add(g)
	}
	for _, i := range gi.byDN[dn] {
		add(gi.dns[i])
	}
	if uid != "" {
		for _, i := range gi.byUID[uid] {
			add(gi.dns[i])
		}
	}
	for nested && len(queue) > 0 {
		k := queue[0]
		queue = queue[1:]
		for _, i := range gi.byDN[k] {
			add(gi.dns[i])
		}
	}
	return groups
}
