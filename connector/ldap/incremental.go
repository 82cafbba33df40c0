package ldap

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/model"
)

// Incremental reads (connector.Incremental), for `incremental: true`.
//
// Active Directory: DirSync (1.2.840.113556.1.4.841) over the domain's
// naming context, with LDAP_DIRSYNC_INCREMENTAL_VALUES so that a group's
// change names the members added and removed. DirSync gives only changed
// attributes and cannot be limited to base_dn, so every changed person is
// read again in full by objectGUID with the people filter under base_dn:
// one that is no longer found (moved out of the base, out of the filter or
// the scope groups) is a Delete. A tombstone (isDeleted) is a Delete by its
// objectGUID. Without the "Replicating Directory Changes" right DirSync
// answers insufficientAccessRights; the read then uses
// LDAP_DIRSYNC_OBJECT_SECURITY, which never shows deletions
// (Result.NoDeletes): the full pulls on full_schedule find them.
//
// OpenLDAP: RFC 4533 sync, refreshOnly, over base_dn with user_filter
// (the syncprov overlay). Entries added or changed arrive in full, as
// "add"; deletions arrive as entryUUIDs (with syncprov-sessionlog), or a
// present phase lists who is still there and the rest of the known set is
// gone. A group's change moves no member's entryCSN, so the group search
// is read on every run, as in Pull, and every known person whose groups
// from it differ from the cursor's hash is read again.
//
// A first read (cursor ""), or a cursor that cannot be used, is a full
// pull: the server's cookie is taken first, then the people are pulled as
// Pull does; what changes in between is reported again next time.

var _ connector.Incremental = (*source)(nil)

// dirSyncFilter is what DirSync reports: people (and computers, which the
// people filter drops when they are read again) and groups. Tombstones
// keep their objectClass.
const dirSyncFilter = "(|(objectClass=user)(objectClass=group))"

// reread is how many people one search reads again by key.
const reread = 50

// errRefused marks a cookie the server would not use; the read falls back
// to a full pull.
var errRefused = errors.New("the server refused the cursor")

// PullChanges implements connector.Incremental.
func (s *source) PullChanges(ctx context.Context, text string, sink connector.ChangeSink) (connector.Result, error) {
	if s.flavor != FlavorAD && s.flavor != FlavorOpenLDAP {
		return connector.Result{}, fmt.Errorf("source %s: incremental reads need flavor %s or %s, not %s", s.name, FlavorAD, FlavorOpenLDAP, s.flavor)
	}
	if text == "" {
		return s.fullRead(ctx, sink, "")
	}
	cur, err := parseCursor(text)
	switch {
	case err != nil:
		return s.fullRead(ctx, sink, fmt.Sprintf("the cursor could not be read: %v", err))
	case cur.Kind != s.kind():
		return s.fullRead(ctx, sink, fmt.Sprintf("the cursor is a %s cursor, and this source reads with %s", cur.Kind, s.kind()))
	case cur.Scope != s.scopeOf():
		return s.fullRead(ctx, sink, "base_dn, a filter, the groups, area rule groups or the mapping changed since the cursor was taken")
	}
	res, err := s.changes(ctx, cur, sink)
	if err == nil && cur.err != nil {
		err = cur.err
	}
	if errors.Is(err, errRefused) {
		s.log.Warn("ldap incremental read refused, pulling in full", zap.Error(err))
		return s.fullRead(ctx, sink, err.Error())
	}
	if err != nil {
		return connector.Result{}, fmt.Errorf("source %s: incremental read: %w", s.name, err)
	}
	return res, nil
}

func (s *source) kind() string {
	if s.flavor == FlavorAD {
		return kindDirSync
	}
	return kindSync
}

// fullRead takes a new cookie, then pulls in full.
func (s *source) fullRead(ctx context.Context, sink connector.ChangeSink, why string) (connector.Result, error) {
	cur := &cursor{Kind: s.kind(), Scope: s.scopeOf(), known: map[[16]byte]known{}}
	c, err := s.connect(ctx)
	if err != nil {
		return connector.Result{}, fmt.Errorf("source %s: %w", s.name, err)
	}
	cur.URL = c.url
	p := &pull{source: s, c: c}
	if s.flavor == FlavorAD {
		err = p.dirSyncCookie(ctx, cur)
	} else {
		err = p.syncCookie(ctx, cur)
	}
	c.close()
	if err != nil {
		return connector.Result{}, fmt.Errorf("source %s: take a cookie: %w", s.name, err)
	}
	var groups *groupIndex
	observe := func(p *pull, e *goldap.Entry, id *model.Identity, in bool) {
		groups = p.groups
		if k, ok := s.keyOf(e.GetEqualFoldAttributeValue); ok {
			cur.known[k] = p.knownOf(k, e, id, in)
		}
	}
	if _, err := s.runObserved(ctx, sink.Upsert, sink.Skip, observe); err != nil {
		return connector.Result{}, err
	}
	if groups != nil {
		cur.Groups = groups.digest
	}
	return connector.Result{Cursor: cur.String(), Full: true, Fallback: why}, nil
}

// knownOf is what the cursor keeps of a person.
func (p *pull) knownOf(k [16]byte, e *goldap.Entry, id *model.Identity, in bool) known {
	kn := known{in: in}
	if id.ExternalID != p.keyString(k) {
		kn.ext = id.ExternalID
	}
	if p.flavor != FlavorAD {
		kn.dn, kn.uid = hash64(normDN(e.DN)), hash64(e.GetAttributeValue("uid"))
		kn.groups = p.groupsHash(kn.dn, kn.uid)
	}
	return kn
}

func (s *source) extOf(k [16]byte, kn known) string {
	if kn.ext != "" {
		return kn.ext
	}
	return s.keyString(k)
}

// changes reads what changed since cur.
func (s *source) changes(ctx context.Context, cur *cursor, sink connector.ChangeSink) (connector.Result, error) {
	start := time.Now()
	c, err := s.connect(ctx)
	if err != nil {
		return connector.Result{}, err
	}
	defer c.close()
	if c.url != cur.URL {
		return connector.Result{}, fmt.Errorf("%w: it was taken from %s, and %s answered", errRefused, cur.URL, c.url)
	}
	p := &pull{source: s, c: c, observe: func(*pull, *goldap.Entry, *model.Identity, bool) {}}
	if err := p.prepare(ctx); err != nil {
		return connector.Result{}, err
	}
	ch := &change{pull: p, cur: cur, sink: sink, done: map[[16]byte]bool{}}
	if s.flavor == FlavorAD {
		err = ch.dirSync(ctx)
	} else {
		err = ch.sync(ctx)
	}
	if err != nil {
		return connector.Result{}, err
	}
	s.log.Debug("ldap incremental read done", zap.String("url", c.url), zap.Int("upserts", ch.upserts),
		zap.Int("deletes", ch.deletes), zap.Int("skipped", ch.skipped), zap.Int("known", len(cur.known)), // 0 when the read needed no one
		zap.Duration("took", time.Since(start)))
	return connector.Result{Cursor: cur.String(), NoDeletes: cur.Kind == kindDirSync && cur.Flags&goldap.DirSyncObjectSecurity != 0}, nil
}

// change is one incremental read.
type change struct {
	*pull
	cur  *cursor
	sink connector.ChangeSink
	// done holds the people already handled in this read.
	done                      map[[16]byte]bool
	upserts, deletes, skipped int
}

// apply handles one person read in full: an Upsert, a Skip, or a Delete
// when it left the scope.
func (ch *change) apply(ctx context.Context, k [16]byte, e *goldap.Entry) error {
	ch.done[k] = true
	id, reason, err := ch.identity(ctx, e)
	if err != nil {
		return err
	}
	in := ch.inScope(&id, e)
	prev, had := ch.cur.people()[k]
	switch {
	case in == scopeOut:
		if had && prev.in {
			if err := ch.remove(k, prev); err != nil {
				return err
			}
		}
		if ch.flavor == FlavorAD {
			ch.cur.forget(k)
		} else {
			ch.cur.set(k, ch.knownOf(k, e, &id, false))
		}
		return nil
	case reason == "" && in == scopeUnknown:
		reason = "no uid attribute, so its posixGroup memberships (memberUid), which decide whether it is in scope (groups), cannot be read"
	}
	if reason != "" {
		// Unreadable is never gone: the person stays as the cursor had it.
		ch.skipped++
		ch.sink.Skip(connector.Skip{ExternalID: id.ExternalID, Where: e.DN, Reason: reason})
		if !had {
			ch.cur.set(k, ch.knownOf(k, e, &id, false))
		}
		return nil
	}
	ch.cur.set(k, ch.knownOf(k, e, &id, true))
	ch.upserts++
	return ch.sink.Upsert(id)
}

// remove reports a person who left, and forgets them.
func (ch *change) remove(k [16]byte, kn known) error {
	ch.cur.forget(k)
	if !kn.in {
		return nil
	}
	ch.deletes++
	return ch.sink.Delete(ch.extOf(k, kn))
}

// gone handles a key the server says is deleted or out of its search.
func (ch *change) gone(k [16]byte) error {
	ch.done[k] = true
	if kn, ok := ch.cur.people()[k]; ok {
		return ch.remove(k, kn)
	}
	return nil
}

// readAgain reads people by key with the people filter under base_dn, and
// applies each one found; missing gets the keys not found.
func (ch *change) readAgain(ctx context.Context, keys [][16]byte, missing func(k [16]byte) error) error {
	for len(keys) > 0 {
		batch := keys[:min(reread, len(keys))]
		keys = keys[len(batch):]
		var b strings.Builder
		b.WriteString("(&" + ch.peopleFilter() + "(|")
		for _, k := range batch {
			if ch.flavor == FlavorAD {
				b.WriteString("(objectGUID=" + escapeBytes(k[:]) + ")")
			} else {
				b.WriteString("(entryUUID=" + uuidString(k) + ")")
			}
		}
		b.WriteString("))")
		found := map[[16]byte]bool{}
		q := query{what: "changed people", base: ch.baseDN, scope: goldap.ScopeWholeSubtree, filter: b.String(), attrs: ch.attrs}
		err := ch.search(ctx, ch.c, q, func(e *goldap.Entry) error {
			k, ok := ch.keyOf(e.GetEqualFoldAttributeValue)
			if !ok {
				return nil
			}
			found[k] = true
			return ch.apply(ctx, k, e)
		})
		if err != nil {
			return err
		}
		if missing == nil {
			continue
		}
		for _, k := range batch {
			if !found[k] {
				if err := missing(k); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func escapeBytes(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		fmt.Fprintf(&s, `\%02x`, c)
	}
	return s.String()
}

// stream reads a search's answers with the idle timeout s.timeout: a
// server that says nothing for that long ends the read. fn gets each
// answer; done reports whether the final control came, without which the
// read is cut short (go-ldap ends a search on a closed connection
// without an error).
func (s *source) stream(ctx context.Context, c *conn, what string, start func(context.Context) goldap.Response, fn func(goldap.Response) error) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := time.AfterFunc(s.timeout, cancel)
	defer idle.Stop()
	resp := start(sctx)
	for resp.Next() {
		idle.Reset(s.timeout)
		if err := fn(resp); err != nil {
			return err
		}
	}
	q := query{what: what, base: s.baseDN}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", what, ctx.Err())
	case sctx.Err() != nil:
		return searchError(q, 1, c, fmt.Errorf("no answer within timeout %s: %w", s.timeout, context.DeadlineExceeded))
	case resp.Err() != nil:
		return resp.Err()
	case c.IsClosing():
		return searchError(q, 1, c, goldap.NewError(goldap.ErrorNetwork, errors.New("connection closed")))
	}
	return nil
}

// refused tells a server's refusal of a cookie from other failures.
func refused(err error, what string) error {
	if goldap.IsErrorAnyOf(err, goldap.LDAPResultSyncRefreshRequired, goldap.LDAPResultUnwillingToPerform,
		goldap.LDAPResultUnavailableCriticalExtension, goldap.LDAPResultProtocolError) {
		return fmt.Errorf("%w (%s): %w", errRefused, what, err)
	}
	return err
}

// Active Directory: DirSync.

// rootNC is the naming context that holds base_dn, which DirSync must be
// given as its base.
func (p *pull) rootNC(ctx context.Context) (string, error) {
	var ncs []string
	q := query{what: "root DSE", base: "", scope: goldap.ScopeBaseObject, filter: "(objectClass=*)", attrs: []string{"namingContexts"}}
	if err := p.search(ctx, p.c, q, func(e *goldap.Entry) error {
		ncs = e.GetAttributeValues("namingContexts")
		return nil
	}); err != nil {
		return "", err
	}
	base := normDN(p.baseDN)
	best := ""
	for _, nc := range ncs {
		n := normDN(nc)
		if (base == n || strings.HasSuffix(base, ","+n)) && len(nc) > len(best) {
			best = nc
		}
	}
	if best == "" {
		return "", fmt.Errorf("base_dn %s is in none of the server's naming contexts (%s)", p.baseDN, strings.Join(ncs, "; "))
	}
	return best, nil
}

// dirSyncCookie takes a DirSync cookie from now, for a full read: with
// flags 0 when the bind account may replicate directory changes, else
// with LDAP_DIRSYNC_OBJECT_SECURITY.
func (p *pull) dirSyncCookie(ctx context.Context, cur *cursor) error {
	root, err := p.rootNC(ctx)
	if err != nil {
		return err
	}
	cur.Root = root
	cur.Flags = goldap.DirSyncIncrementalValues
	discard := func(*goldap.Entry) error { return nil }
	cur.Cookie, err = p.dirSyncRead(ctx, root, cur.Flags, nil, discard)
	if goldap.IsErrorWithCode(err, goldap.LDAPResultInsufficientAccessRights) {
		p.log.Warn("ldap DirSync: the bind account lacks the Replicating Directory Changes right; incremental reads will not see deletions until the next full pull",
			zap.String("bind_dn", p.bindDN), zap.Error(err))
		cur.Flags |= goldap.DirSyncObjectSecurity
		cur.Cookie, err = p.dirSyncRead(ctx, root, cur.Flags, nil, discard)
	}
	return err
}

// dirSyncRead runs DirSync from cookie until the server has nothing more,
// and returns the last cookie.
func (p *pull) dirSyncRead(ctx context.Context, root string, flags int64, cookie []byte, fn func(*goldap.Entry) error) ([]byte, error) {
	// DirSync reports an object only when one of the attributes asked for
	// changed: every attribute a person is read from, and name, which a
	// rename or a move changes.
	attrs := []string{"objectGUID", "objectClass", "isDeleted", "member", "name", "userAccountControl", "accountExpires"}
	for f := range model.NumFields {
		for _, a := range p.mapping[f] {
			attrs = appendFold(attrs, a)
		}
	}
	for _, a := range p.extra {
		attrs = appendFold(attrs, a)
	}
	for round := 1; ; round++ {
		var got *goldap.ControlDirSync
		err := p.stream(ctx, p.c, "DirSync", func(sctx context.Context) goldap.Response {
			req := goldap.NewSearchRequest(root, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false, dirSyncFilter, attrs, nil)
			return p.c.DirSyncAsync(sctx, req, 2*p.pageSize+16, flags, 0, cookie)
		}, func(r goldap.Response) error {
			if e := r.Entry(); e != nil {
				return fn(e)
			}
			if ctl, ok := goldap.FindControl(r.Controls(), goldap.ControlTypeDirSync).(*goldap.ControlDirSync); ok {
				got = ctl
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if got == nil {
			return nil, searchError(query{what: "DirSync", base: root}, round, p.c, goldap.NewError(goldap.ErrorNetwork,
				fmt.Errorf("%w: the answer ended without a DirSync control", ErrIncomplete)))
		}
		cookie = got.Cookie
		// The response's first field is "more data": ask again.
		if got.Flags == 0 {
			return cookie, nil
		}
	}
}

// dirSync reads AD's changes since the cursor.
func (ch *change) dirSync(ctx context.Context) error {
	var people, gone [][16]byte
	members := map[string]bool{}
	cookie, err := ch.dirSyncRead(ctx, ch.cur.Root, ch.cur.Flags, ch.cur.Cookie, func(e *goldap.Entry) error {
		raw := []byte(e.GetEqualFoldAttributeValue("objectGUID"))
		if len(raw) != 16 {
			return nil
		}
		k := [16]byte(raw)
		switch {
		case strings.EqualFold(e.GetAttributeValue("isDeleted"), "TRUE"):
			gone = append(gone, k)
		default:
			// A person, or a group: DirSync gives only changed
			// attributes, so a group's objectClass is not there, its
			// member changes are (a group is then read again in vain). With
			// incremental values, member;range=1-1 are added and
			// member;range=0-0 removed; else the whole list.
			for _, a := range e.Attributes {
				if strings.EqualFold(a.Name, "member") || strings.HasPrefix(strings.ToLower(a.Name), "member;") {
					for _, m := range a.Values {
						members[m] = true
					}
				}
			}
			people = append(people, k)
		}
		return nil
	})
	if err != nil {
		return refused(err, "DirSync")
	}
	for _, k := range gone {
		if err := ch.gone(k); err != nil {
			return err
		}
	}
	// Members a group gained or lost, and with nested_groups the people
	// of groups that were added or removed, may have changed scope or
	// area: they are read again too.
	for m := range members {
		more, err := ch.membersOf(ctx, m)
		if err != nil {
			return err
		}
		people = append(people, more...)
	}
	slices.SortFunc(people, func(a, b [16]byte) int { return strings.Compare(string(a[:]), string(b[:])) })
	people = slices.Compact(people)
	people = slices.DeleteFunc(people, func(k [16]byte) bool { return ch.done[k] })
	err = ch.readAgain(ctx, people, func(k [16]byte) error {
		if kn, ok := ch.cur.people()[k]; ok {
			return ch.remove(k, kn)
		}
		return nil
	})
	if err != nil {
		return err
	}
	ch.cur.setCookie(cookie)
	return nil
}

// membersOf returns the key of the member dn of a changed group: the
// person's, or with nested_groups those of a member group's people.
func (ch *change) membersOf(ctx context.Context, dn string) ([][16]byte, error) {
	var keys [][16]byte
	isGroup := false
	q := query{what: "changed member", base: dn, scope: goldap.ScopeBaseObject, filter: "(objectClass=*)", attrs: []string{"objectGUID", "objectClass"}}
	err := ch.search(ctx, ch.c, q, func(e *goldap.Entry) error {
		if slices.ContainsFunc(e.GetAttributeValues("objectClass"), func(c string) bool { return strings.EqualFold(c, "group") }) {
			isGroup = true
		} else if raw := []byte(e.GetEqualFoldAttributeValue("objectGUID")); len(raw) == 16 {
			keys = append(keys, [16]byte(raw))
		}
		return nil
	})
	if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return nil, nil // deleted since: its own tombstone says so
	}
	if err != nil || !isGroup || !ch.nested {
		return keys, err
	}
	q = query{what: "members of changed group " + dn, base: ch.baseDN, scope: goldap.ScopeWholeSubtree,
		filter: "(&" + wrap(ch.userFilter) + "(memberOf:" + matchingRuleInChain + ":=" + goldap.EscapeFilter(dn) + "))", attrs: []string{"objectGUID"}, paged: true}
	err = ch.search(ctx, ch.c, q, func(e *goldap.Entry) error {
		if raw := []byte(e.GetEqualFoldAttributeValue("objectGUID")); len(raw) == 16 {
			keys = append(keys, [16]byte(raw))
		}
		return nil
	})
	return keys, err
}

// OpenLDAP: RFC 4533 sync, refreshOnly.

// syncCookie takes a sync cookie from now, for a full read.
//
// The cookie is asked for with a search of the base entry alone: a
// syncprov cookie is the provider's state (its contextCSN), not the
// search's, so it serves the people search of the next read as well, and
// a sync search of the whole base would send every entry for nothing
// (100,000 entries decoded, about a second). A base entry the account
// may not read is asked for the old way.
func (p *pull) syncCookie(ctx context.Context, cur *cursor) error {
	var err error
	cur.Cookie, _, err = p.syncRead(ctx, nil, true, []string{"1.1"}, nil)
	if err != nil && goldap.IsErrorAnyOf(err, goldap.LDAPResultNoSuchObject, goldap.LDAPResultInsufficientAccessRights) {
		cur.Cookie, _, err = p.syncRead(ctx, nil, false, []string{"1.1"}, nil)
	}
	return err
}

// syncEvent is one thing a sync read says of an entry.
type syncEvent struct {
	key     [16]byte
	entry   *goldap.Entry // added or changed, in full
	gone    bool          // deleted, or out of the search
	present bool          // unchanged and still there
}

// syncRead runs one refreshOnly sync search from cookie and hands what
// it says to fn. It returns the new cookie (the old one when the server
// sends none: nothing changed) and whether the refresh was a present
// phase (refreshDeletes false: whoever was not named is gone).
func (p *pull) syncRead(ctx context.Context, cookie []byte, baseOnly bool, attrs []string, fn func(syncEvent) error) ([]byte, bool, error) {
	if fn == nil {
		fn = func(syncEvent) error { return nil }
	}
	var done *goldap.ControlSyncDone
	next := cookie
	setCookie := func(c []byte) {
		if len(c) > 0 {
			next = c
		}
	}
	err := p.stream(ctx, p.c, "sync", func(sctx context.Context) goldap.Response {
		req := goldap.NewSearchRequest(p.baseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false, wrap(p.userFilter), attrs, nil)
		if baseOnly {
			req.Scope, req.Filter = goldap.ScopeBaseObject, "(objectClass=*)"
		}
		return p.c.Syncrepl(sctx, req, 2*p.pageSize+16, goldap.SyncRequestModeRefreshOnly, cookie, false)
	}, func(r goldap.Response) error {
		if e := r.Entry(); e != nil {
			st, ok := goldap.FindControl(r.Controls(), goldap.ControlTypeSyncState).(*goldap.ControlSyncState)
			if !ok {
				return goldap.NewError(goldap.ErrorUnexpectedResponse, fmt.Errorf("entry %s came without a sync state control", e.DN))
			}
			setCookie(st.Cookie)
			ev := syncEvent{key: [16]byte(st.EntryUUID)}
			switch st.State {
			case goldap.SyncStateAdd, goldap.SyncStateModify:
				ev.entry = e
			case goldap.SyncStateDelete:
				ev.gone = true
			case goldap.SyncStatePresent:
				ev.present = true
			}
			return fn(ev)
		}
		for _, ctl := range r.Controls() {
			switch ctl := ctl.(type) {
			case *goldap.ControlSyncInfo:
				switch {
				case ctl.NewCookie != nil:
					setCookie(ctl.NewCookie.Cookie)
				case ctl.RefreshDelete != nil:
					setCookie(ctl.RefreshDelete.Cookie)
				case ctl.RefreshPresent != nil:
					setCookie(ctl.RefreshPresent.Cookie)
				case ctl.SyncIdSet != nil:
					setCookie(ctl.SyncIdSet.Cookie)
					for _, u := range ctl.SyncIdSet.SyncUUIDs {
						if err := fn(syncEvent{key: [16]byte(u), gone: ctl.SyncIdSet.RefreshDeletes, present: !ctl.SyncIdSet.RefreshDeletes}); err != nil {
							return err
						}
					}
				}
			case *goldap.ControlSyncDone:
				done = ctl
				setCookie(ctl.Cookie)
			}
		}
		return nil
	})
	if err != nil {
		return nil, false, refused(err, "RFC 4533 sync")
	}
	if done == nil {
		return nil, false, searchError(query{what: "sync", base: p.baseDN}, 1, p.c, goldap.NewError(goldap.ErrorNetwork,
			fmt.Errorf("%w: the answer ended without a sync done control", ErrIncomplete)))
	}
	if len(next) == 0 {
		return nil, false, fmt.Errorf("%w: the sync read gave no cookie", errRefused)
	}
	return next, !done.RefreshDeletes, nil
}

// csnCookie is how syncprov writes a cookie: rid, perhaps sid, and one or
// more CSNs (yyyymmddHHMMSS.uuuuuuZ#count#sid#mod).
var csnCookie = regexp.MustCompile(`^rid=[0-9]{3}(,sid=[0-9a-f]{3})?,csn=[0-9]{14}\.[0-9]{6}Z#[0-9a-f]{6}#[0-9a-f]{3}#[0-9a-f]{6}(;[0-9]{14}\.[0-9]{6}Z#[0-9a-f]{6}#[0-9a-f]{3}#[0-9a-f]{6})*(,delcsn=[^,]*)?$`)

// sync reads OpenLDAP's changes since the cursor.
func (ch *change) sync(ctx context.Context) error {
	// syncprov answers a cookie it cannot parse as if nothing had
	// changed, and sends a new cookie: the changes in between would be
	// lost without a word.
	if !csnCookie.Match(ch.cur.Cookie) {
		return fmt.Errorf("%w: the sync cookie %s is not one syncprov writes", errRefused, quoted(string(ch.cur.Cookie)))
	}
	present := map[[16]byte]bool{}
	cookie, presentPhase, err := ch.syncRead(ctx, ch.cur.Cookie, false, ch.attrs, func(ev syncEvent) error {
		switch {
		case ev.entry != nil:
			present[ev.key] = true
			return ch.apply(ctx, ev.key, ev.entry)
		case ev.gone:
			return ch.gone(ev.key)
		case ev.present:
			present[ev.key] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	// A present phase names everyone still there: the complete list has
	// arrived (the sync done control came), so the rest are gone.
	if presentPhase {
		for k := range ch.cur.people() {
			if !present[k] && !ch.done[k] {
				if err := ch.gone(k); err != nil {
					return err
				}
			}
		}
	}
	// Memberships: whoever's groups by the group search differ from the
	// cursor's is read again; nobody's, while the group search is the
	// same as when the cursor was taken.
	var d string
	if ch.groups != nil {
		d = ch.groups.digest
	}
	if d == "" || d != ch.cur.Groups {
		var again [][16]byte
		for k, kn := range ch.cur.people() {
			if !ch.done[k] && ch.groupsHash(kn.dn, kn.uid) != kn.groups {
				again = append(again, k)
			}
		}
		if err := ch.readAgain(ctx, again, nil); err != nil {
			return err
		}
		ch.cur.setGroups(d)
	}
	ch.cur.setCookie(cookie)
	return nil
}

// groupsHash hashes the groups the group search gives the person with the
// normalised DN hash dn and the uid hash uid (with nested_groups, at any
// depth), in order.
func (p *pull) groupsHash(dn, uid uint64) uint64 {
	gi := p.groups
	if !gi.any() {
		return 0
	}
	if gi.byDNHash == nil {
		gi.byDNHash, gi.byUIDHash = map[uint64][]int{}, map[uint64][]int{}
		for k, v := range gi.byDN {
			h := hash64(k)
			gi.byDNHash[h] = append(gi.byDNHash[h], v...)
		}
		for k, v := range gi.byUID {
			h := hash64(k)
			gi.byUIDHash[h] = append(gi.byUIDHash[h], v...)
		}
		gi.norm = make([]string, len(gi.dns))
		for i, dn := range gi.dns {
			gi.norm[i] = normDN(dn)
		}
	}
	seen := map[int]bool{}
	var queue []int
	add := func(list []int) {
		for _, i := range list {
			if !seen[i] {
				seen[i] = true
				queue = append(queue, i)
			}
		}
	}
	add(gi.byDNHash[dn])
	if uid != 0 {
		add(gi.byUIDHash[uid])
	}
	for p.nested && len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		add(gi.byDN[gi.norm[i]])
	}
	if len(seen) == 0 {
		return 0
	}
	names := make([]string, 0, len(seen))
	for i := range seen {
		names = append(names, gi.norm[i])
	}
	slices.Sort(names)
	return hash64(strings.Join(names, "\n"))
}
