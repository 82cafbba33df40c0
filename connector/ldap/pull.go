package ldap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/model"
)

// stats counts what one pull saw, for the log and for Check.
type stats struct {
	entries    int
	identities int
	skipped    int
	outOfScope int
}

// Pull streams every person in scope to emit. See the package
// documentation for what fails the pull.
func (s *source) Pull(ctx context.Context, emit func(model.Identity) error, skip func(connector.Skip)) error {
	_, err := s.run(ctx, emit, skip)
	return err
}

// Check connects and binds, checks that base_dn exists, and counts the
// people a pull would report, for `validate --connect`.
func (s *source) Check(ctx context.Context) (int, error) {
	c, err := s.connect(ctx)
	if err != nil {
		return 0, fmt.Errorf("source %s: %w", s.name, err)
	}
	q := query{what: "base_dn", base: s.baseDN, scope: goldap.ScopeBaseObject, filter: "(objectClass=*)", attrs: []string{"1.1"}}
	found := false
	err = s.search(ctx, c, q, func(*goldap.Entry) error { found = true; return nil })
	c.close()
	if err != nil {
		return 0, fmt.Errorf("source %s: %w", s.name, err)
	}
	if !found {
		return 0, fmt.Errorf("source %s: base_dn %s: not found or not readable by %s", s.name, s.baseDN, s.bindDN)
	}
	st, err := s.run(ctx, func(model.Identity) error { return nil }, func(connector.Skip) {})
	if err != nil {
		return 0, err
	}
	return st.identities, nil
}

// pull is the state of one pull.
type pull struct {
	*source
	c *conn
	// disabled holds the normalised DNs disabled_filter matches.
	disabled map[string]bool
	// groups indexes group membership read by a group search
	// (openldap/generic), nil for AD.
	groups *groupIndex
	// inRule holds, per rule group (AD, nested_groups), the normalised DNs
	// of its transitive members.
	inRule map[string]map[string]bool
	// pullScope holds the normalised scope group DNs (checked here for
	// openldap/generic; AD filters on the server).
	pullScope map[string]bool
	// uidScope: a scope group takes members by memberUid (see inScope).
	uidScope bool
	attrs    []string
	// observe, when set, sees every entry of the people search that has
	// an external id, with in set when it was emitted: a full read of an
	// incremental source builds its cursor's known set from it.
	observe func(p *pull, e *goldap.Entry, id *model.Identity, in bool)
}

// run pulls once. A transient failure (a lost connection, a busy or
// unavailable server) before anything was emitted or skipped is retried
// with backoff; after that it fails the pull, because a caller may already
// hold part of the list.
func (s *source) run(ctx context.Context, emit func(model.Identity) error, skip func(connector.Skip)) (stats, error) {
	return s.runObserved(ctx, emit, skip, nil)
}

// runObserved is run with a pull.observe.
func (s *source) runObserved(ctx context.Context, emit func(model.Identity) error, skip func(connector.Skip), observe func(*pull, *goldap.Entry, *model.Identity, bool)) (stats, error) {
	wait := s.backoff
	for attempt := 0; ; attempt++ {
		st, err := s.runOnce(ctx, emit, skip, observe)
		if err == nil || attempt >= s.retries || st.identities+st.skipped > 0 || !transient(err) || ctx.Err() != nil {
			return st, err
		}
		s.log.Warn("ldap pull failed, retrying", zap.Int("attempt", attempt+1), zap.Duration("wait", wait), zap.Error(err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return st, err
		case <-t.C:
		}
		wait *= 2
	}
}

// transient reports an error worth another try: a lost connection, or a
// server that said it is busy or unavailable. Certificates, credentials and
// connect failures (already retried) are not.
func transient(err error) bool {
	if errors.Is(err, ErrCertificate) || errors.Is(err, ErrCredentials) || errors.Is(err, ErrUnavailable) {
		return false
	}
	if goldap.IsErrorAnyOf(err, goldap.LDAPResultBusy, goldap.LDAPResultUnavailable) {
		return true
	}
	return errors.Is(err, ErrIncomplete) && isConnError(err)
}

func (s *source) runOnce(ctx context.Context, emit func(model.Identity) error, skip func(connector.Skip), observe func(*pull, *goldap.Entry, *model.Identity, bool)) (stats, error) {
	start := time.Now()
	var st stats
	c, err := s.connect(ctx)
	if err != nil {
		return st, err
	}
	defer c.close()
	if !s.noWire {
		if c.wire, err = s.dialWire(ctx, c.url); err != nil {
			if ctx.Err() != nil {
				return st, err
			}
			// Slower, but complete: some servers or proxies allow one
			// connection per client.
			s.log.Warn("ldap second connection failed; reading people through the first, more slowly", zap.String("url", c.url), zap.Error(err))
		}
	}
	p := &pull{source: s, c: c, observe: observe}
	if err := p.prepare(ctx); err != nil {
		return st, err
	}
	filter := s.peopleFilter()
	q := query{what: "people", base: s.baseDN, scope: goldap.ScopeWholeSubtree, filter: filter, attrs: p.attrs, paged: true}
	err = s.search(ctx, c, q, func(e *goldap.Entry) error {
		st.entries++
		id, reason, err := p.identity(ctx, e)
		if err != nil {
			return err
		}
		// Scope first: an entry outside it is nobody seatsync manages, even
		// when it cannot be read. Were it skipped, a service account
		// without the external id attribute would keep every leaver of
		// the source from being blocked.
		in := p.inScope(&id, e)
		if p.observe != nil && id.ExternalID != "" {
			p.observe(p, e, &id, in == scopeIn && reason == "")
		}
		switch in {
		case scopeOut:
			st.outOfScope++
			return nil
		case scopeUnknown:
			if reason == "" {
				reason = "no uid attribute, so its posixGroup memberships (memberUid), which decide whether it is in scope (groups), cannot be read"
			}
		}
		if reason != "" {
			st.skipped++
			skip(connector.Skip{ExternalID: id.ExternalID, Where: e.DN, Reason: reason})
			return nil
		}
		st.identities++
		return emit(id)
	})
	if err != nil {
		return st, err
	}
	s.log.Debug("ldap pull done", zap.String("url", c.url), zap.Int("entries", st.entries),
		zap.Int("identities", st.identities), zap.Int("skipped", st.skipped), zap.Int("out_of_scope", st.outOfScope),
		zap.Duration("took", time.Since(start)))
	return st, nil
}

// peopleFilter is user_filter, limited to the scope groups on AD.
func (s *source) peopleFilter() string {
	f := wrap(s.userFilter)
	if s.flavor != FlavorAD || len(s.scope) == 0 {
		return f
	}
	var b strings.Builder
	b.WriteString("(&" + f + "(|")
	for _, g := range s.scope {
		b.WriteString(s.memberOfFilter(g))
	}
	b.WriteString("))")
	return b.String()
}

// memberOfFilter matches the members of group g: direct members, or with
// nested_groups on AD members through any depth of nesting.
func (s *source) memberOfFilter(g string) string {
	if s.nested && s.flavor == FlavorAD {
		return "(memberOf:" + matchingRuleInChain + ":=" + goldap.EscapeFilter(g) + ")"
	}
	return "(memberOf=" + goldap.EscapeFilter(g) + ")"
}

func wrap(f string) string {
	if strings.HasPrefix(f, "(") {
		return f
	}
	return "(" + f + ")"
}

// prepare reads what the people search needs to know beforehand: the
// disabled people, the group index and the members of rule groups.
func (p *pull) prepare(ctx context.Context) error {
	for f := range model.NumFields {
		for _, a := range p.mapping[f] {
			p.attrs = appendFold(p.attrs, a)
		}
	}
	if p.flavor == FlavorAD {
		p.attrs = appendFold(p.attrs, "userAccountControl")
		p.attrs = appendFold(p.attrs, "accountExpires")
	}
	for _, a := range p.extra {
		p.attrs = appendFold(p.attrs, a)
	}
	if p.observe != nil {
		// What an incremental read keys people by, and what it hashes
		// their groups from (see known).
		p.attrs = appendFold(p.attrs, p.keyAttr())
		if p.flavor != FlavorAD {
			p.attrs = appendFold(p.attrs, "uid")
		}
	}
	if p.disabledFilter != "" {
		p.disabled = map[string]bool{}
		q := query{what: "disabled people", base: p.baseDN, scope: goldap.ScopeWholeSubtree,
			filter: "(&" + wrap(p.userFilter) + wrap(p.disabledFilter) + ")", attrs: []string{"1.1"}, paged: true}
		if err := p.search(ctx, p.c, q, func(e *goldap.Entry) error {
			p.disabled[normDN(e.DN)] = true
			return nil
		}); err != nil {
			return err
		}
	}
	if p.flavor == FlavorAD {
		if p.nested && len(p.ruleGroups) > 0 {
			p.inRule = map[string]map[string]bool{}
			for _, g := range p.ruleGroups {
				members := map[string]bool{}
				q := query{what: "members of " + g, base: p.baseDN, scope: goldap.ScopeWholeSubtree,
					filter: "(&" + wrap(p.userFilter) + p.memberOfFilter(g) + ")", attrs: []string{"1.1"}, paged: true}
				if err := p.search(ctx, p.c, q, func(e *goldap.Entry) error {
					members[normDN(e.DN)] = true
					return nil
				}); err != nil {
					return err
				}
				p.inRule[g] = members
			}
		}
		return nil
	}
	gi, err := p.readGroups(ctx)
	if err != nil {
		return err
	}
	p.groups = gi
	if len(gi.byUID) > 0 {
		// memberUid names people by uid, whatever username is mapped to.
		p.attrs = appendFold(p.attrs, "uid")
	}
	if len(p.scope) > 0 {
		p.pullScope = map[string]bool{}
		for _, g := range p.scope {
			p.pullScope[normDN(g)] = true
		}
		p.uidScope = p.scopedByUID()
	}
	return nil
}

func appendFold(list []string, a string) []string {
	if slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, a) }) {
		return list
	}
	return append(list, a)
}

// identity turns one entry into an identity. A non-empty reason means the
// entry cannot be one and is skipped; the identity then still holds what
// could be read (its external id when known, and its groups for the scope).
func (p *pull) identity(ctx context.Context, e *goldap.Entry) (model.Identity, string, error) {
	id := model.Identity{Where: e.DN, Enabled: true}
	var reason string
	idAttr := p.mapping[model.FieldExternalID][0]
	// Values are strings on both paths (a wire sets no ByteValues); a raw
	// value such as objectGUID is its string's bytes.
	switch raw := e.GetEqualFoldAttributeValue(idAttr); {
	case raw == "":
		reason = fmt.Sprintf("no %s attribute (the external id)", idAttr)
	case strings.EqualFold(idAttr, "objectGUID"):
		g, err := guidString([]byte(raw))
		if err != nil {
			reason = err.Error()
		}
		id.ExternalID = g
	default:
		id.ExternalID = strings.TrimSpace(raw)
	}
	id.Username = p.first(e, model.FieldUsername)
	id.Email = p.first(e, model.FieldEmail)
	id.GivenName = p.first(e, model.FieldGivenName)
	id.FamilyName = p.first(e, model.FieldFamilyName)
	id.DisplayName = p.first(e, model.FieldDisplayName)
	id.Title = p.first(e, model.FieldTitle)
	id.Department = p.first(e, model.FieldDepartment)

	groups, err := p.values(ctx, p.c, e, p.mapping[model.FieldGroups][0])
	if err != nil {
		return id, "", err
	}
	var dn string // normalised only when something is looked up by DN
	if p.groups.any() || len(p.inRule) > 0 || len(p.disabled) > 0 {
		dn = normDN(e.DN)
	}
	if p.groups.any() {
		groups = p.groups.of(groups, dn, e.GetAttributeValue("uid"), p.nested)
	}
	for g, members := range p.inRule {
		if members[dn] {
			groups = append(groups, g)
		}
	}
	id.Groups = dedupeFold(groups)
	if reason != "" {
		return id, reason, nil
	}

	switch {
	case p.mapping[model.FieldEnabled] != nil:
		attr := p.mapping[model.FieldEnabled][0]
		v := strings.ToLower(strings.TrimSpace(e.GetEqualFoldAttributeValue(attr)))
		switch v {
		case "", "true", "yes", "1", "active", "enabled":
		case "false", "no", "0", "inactive", "disabled":
			id.Enabled = false
		default:
			return id, fmt.Sprintf("%s %s is not a yes/no value", attr, quoted(v)), nil
		}
	case p.flavor == FlavorAD:
		off, bad := adDisabled(e.GetAttributeValue("userAccountControl"), e.GetAttributeValue("accountExpires"), p.now())
		if bad != "" {
			return id, bad, nil
		}
		id.Enabled = !off
	}
	if p.disabled[dn] {
		id.Enabled = false
	}
	for _, a := range p.extra {
		if v := e.GetEqualFoldAttributeValue(a); v != "" {
			if id.Attributes == nil {
				id.Attributes = map[string]string{}
			}
			id.Attributes[a] = v
		}
	}
	return id, "", nil
}

// quotedMax is how much of a value a skip reason quotes: enough to
// recognise it, never a whole blob.
const quotedMax = 64

// quoted is v as %q writes it, cut after quotedMax bytes (at a character
// boundary) and then followed by "...".
func quoted(v string) string {
	if len(v) <= quotedMax {
		return strconv.Quote(v)
	}
	n := quotedMax
	for n > 0 && !utf8.RuneStart(v[n]) {
		n--
	}
	return strconv.Quote(v[:n]) + "..."
}

// first reads field f from the first of its attributes the entry has.
func (p *pull) first(e *goldap.Entry, f int) string {
	for _, a := range p.mapping[f] {
		if v := strings.TrimSpace(e.GetEqualFoldAttributeValue(a)); v != "" {
			return v
		}
	}
	return ""
}

// Answers of inScope.
const (
	scopeIn = iota
	scopeOut
	// scopeUnknown: the entry has no uid, and a scope group takes members
	// by memberUid, so whether it is in scope cannot be told.
	scopeUnknown
)

// inScope applies the `groups` scope for openldap/generic (AD filters on
// the server).
func (p *pull) inScope(id *model.Identity, e *goldap.Entry) int {
	if p.pullScope == nil {
		return scopeIn
	}
	for _, g := range id.Groups {
		if p.pullScope[normDN(g)] {
			return scopeIn
		}
	}
	if p.uidScope && e.GetAttributeValue("uid") == "" {
		return scopeUnknown
	}
	return scopeOut
}

// scopedByUID reports whether a posixGroup with memberUid members is, or
// (with nested_groups) is nested in, a scope group: then a person's scope
// depends on their uid.
func (p *pull) scopedByUID() bool {
	byUID := map[int]bool{}
	for _, gs := range p.groups.byUID {
		for _, i := range gs {
			byUID[i] = true
		}
	}
	for i := range byUID {
		dn := p.groups.dns[i]
		if p.pullScope[normDN(dn)] {
			return true
		}
		if !p.nested {
			continue
		}
		for _, g := range p.groups.of(nil, normDN(dn), "", true) {
			if p.pullScope[normDN(g)] {
				return true
			}
		}
	}
	return false
}

func dedupeFold(list []string) []string {
	if len(list) == 0 {
		return nil
	}
	seen := make(map[string]bool, len(list))
	out := list[:0:0]
	for _, v := range list {
		k := normDN(v)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, v)
	}
	return out
}
