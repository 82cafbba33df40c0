package okta

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/okta/okta-sdk-golang/v2/okta"
	"github.com/okta/okta-sdk-golang/v2/okta/query"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/connector"
)

// Incremental reads (`incremental: true`).
//
// The cursor is an instant on Okta's clock: the Date of the first answer
// of the read that gave it. The next read asks for what changed from
// overlap before it, so that a change stamped a little before the cursor
// (Okta's clocks, and its search index and System Log, which catch up
// after a few seconds) still arrives; reading a change twice is harmless.
//
//   - Changed users: List Users with filter `lastUpdated gt "T"`, and
//     `status eq "DEPROVISIONED" and lastUpdated gt "T"` (Okta leaves
//     deactivated users out unless a filter names status). lastUpdated
//     moves with every change of a user's status or profile. `filter`
//     reads Okta's up-to-date data; `search` an index that lags.
//   - Each changed user is then what a full pull makes of it: with a
//     configured filter or search, it is in scope when that expression
//     AND'ed with the change also lists it; without one, a DEPROVISIONED
//     user is out of scope (the user list leaves it out), except with
//     `groups` alone (group member lists keep it, disabled); with
//     `groups`, it must be a member of one. In scope: Upsert, in full.
//     Out of scope: Delete.
//   - Deleted users, and membership changes (which do not move the
//     user's lastUpdated), are only in the System Log: events
//     user.lifecycle.delete.* (Delete) and group.user_membership.add /
//     remove of the groups that matter (scope groups, area rule groups,
//     any with mapping.groups: groups), whose users are read again as
//     above. A token that may not read the log (403) gets
//     Result.NoDeletes: deletions, and membership changes, wait for the
//     next full pull.
//   - A cursor that does not parse, or older than the 90 days Okta keeps
//     its System Log, is a full pull (Result.Full, Result.Fallback).

// overlap is how far before the cursor a read starts.
const overlap = 5 * time.Minute

// logRetention is how long Okta keeps System Log events.
const logRetention = 90 * 24 * time.Hour

// logLimit is the page size asked of the System Log: the most it serves.
const logLimit = 1000

// idBatch is how many users one `id eq` query asks for.
const idBatch = 20

const cursorPrefix = "okta1 "

// stampFormat is how Okta writes instants in filters.
const stampFormat = "2006-01-02T15:04:05.000Z"

var _ connector.Incremental = (*source)(nil)

func parseCursor(cursor string) (time.Time, bool) {
	if !strings.HasPrefix(cursor, cursorPrefix) {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(cursor, cursorPrefix))
	return t, err == nil
}

func formatCursor(t time.Time) string { return cursorPrefix + t.UTC().Format(stampFormat) }

// PullChanges implements connector.Incremental; see above.
func (s *source) PullChanges(ctx context.Context, cursor string, sink connector.ChangeSink) (connector.Result, error) {
	start := time.Now()
	var res connector.Result
	since, ok := parseCursor(cursor)
	switch {
	case cursor == "":
	case !ok:
		res.Fallback = fmt.Sprintf("the cursor %q is not an Okta timestamp", clipCursor(cursor))
	case since.Add(-overlap).Before(s.now().Add(-logRetention)):
		res.Fallback = fmt.Sprintf("the cursor is from %s, older than the %d days Okta keeps its System Log",
			since.UTC().Format(time.RFC3339), int(logRetention.Hours()/24))
		ok = false
	}
	p, err := s.connect(ctx)
	if err != nil {
		return connector.Result{}, err
	}
	if !ok {
		res.Full = true
		err = p.pull(ctx, sink.Upsert, sink.Skip)
	} else {
		err = p.changes(ctx, since.Add(-overlap), sink, &res)
	}
	p.done()
	if err != nil {
		return connector.Result{}, err
	}
	res.Cursor = formatCursor(p.started())
	p.logRead("okta changes read", start, zap.Bool("full", res.Full), zap.String("fallback", res.Fallback),
		zap.Int("deleted", p.st.deleted), zap.Bool("no_deletes", res.NoDeletes))
	return res, nil
}

func clipCursor(c string) string {
	if len(c) > 64 {
		return c[:64] + "..."
	}
	return c
}

// started is the read's start on Okta's clock: the Date of its first
// answer (a whole second, so never later than the answer was made).
func (p *puller) started() time.Time {
	p.t.mu.Lock()
	defer p.t.mu.Unlock()
	if !p.t.first.IsZero() {
		return p.t.first
	}
	return p.now().Truncate(time.Second)
}

// changes reads what changed from since on.
func (p *puller) changes(ctx context.Context, since time.Time, sink connector.ChangeSink, res *connector.Result) error {
	// The groups the scope and the area rules name, by id, resolved as a
	// full pull does (and failing as it does).
	groupNames := map[string]string{} // id -> configured name
	resolved := map[string]bool{}
	for _, list := range []struct {
		key   string
		names []string
	}{{"groups", p.groups}, {"area_rules", p.ruleGrps}} {
		for _, name := range list.names {
			if resolved[name] {
				continue
			}
			id, err := p.groupID(ctx, name)
			if err != nil {
				return fmt.Errorf("%s: %w", list.key, err)
			}
			groupNames[id], resolved[name] = name, true
		}
	}
	membership := len(groupNames) > 0 || p.allGrps

	// The System Log: deletions, and users whose memberships changed.
	deleted, moved, err := p.systemLog(ctx, since, membership, groupNames)
	switch {
	case errors.Is(err, errNoLog):
		res.NoDeletes = true
		p.log.Warn("this Okta token may not read the System Log: deleted users, and changes of group membership, "+
			"are seen at the next full pull only (grant okta.logs.read, or an admin role that reads the System Log)",
			zap.Error(err))
	case err != nil:
		return err
	}

	// Users whose status or profile changed, deactivated ones too.
	changed := p.newCandidates()
	cond := fmt.Sprintf("lastUpdated gt %q", since.UTC().Format(stampFormat))
	if err := p.candidates(ctx, cond, changed); err != nil {
		return err
	}
	// Users whose membership changed, read again.
	gone := map[string]bool{}
	for _, id := range deleted {
		gone[id] = true
	}
	var again []string
	for _, id := range moved {
		if _, ok := changed.users[id]; !ok && !gone[id] {
			again = append(again, id)
		}
	}
	for b := range slices.Chunk(again, idBatch) {
		terms := make([]string, len(b))
		for i, id := range b {
			terms[i] = fmt.Sprintf("id eq %q", id)
		}
		if err := p.candidates(ctx, strings.Join(terms, " or "), changed); err != nil {
			return err
		}
	}

	for _, id := range changed.order {
		u := changed.users[id]
		in := changed.inFilter[id]
		var memberOf []string
		if in && membership {
			names, ids, err := p.userGroupsWithIDs(ctx, id)
			if err != nil {
				return err
			}
			for _, gid := range ids {
				if name, ok := groupNames[gid]; ok && !slices.Contains(memberOf, name) {
					memberOf = append(memberOf, name)
				}
			}
			if len(p.groups) > 0 && !slices.ContainsFunc(memberOf, func(n string) bool { return slices.Contains(p.groups, n) }) {
				in = false
			}
			if p.allGrps {
				memberOf = mergeSorted(memberOf, names)
			}
		}
		if !in {
			if err := p.delete(sink, id); err != nil {
				return err
			}
			continue
		}
		idn, ok := p.identity(u, memberOf, sink.Skip)
		if !ok {
			p.st.skipped++
			continue
		}
		p.st.identities++
		if err := sink.Upsert(idn); err != nil {
			return err
		}
	}
	for _, id := range deleted {
		if _, ok := changed.users[id]; ok {
			continue // listed again: a user of that id is back
		}
		if err := p.delete(sink, id); err != nil {
			return err
		}
	}
	return nil
}

func (p *puller) delete(sink connector.ChangeSink, id string) error {
	p.st.deleted++
	return sink.Delete(id)
}

// candidateSet is the users an incremental read looks at, in the order
// first listed, and whether a full pull's user list would list each.
type candidateSet struct {
	order    []string
	users    map[string]*okta.User
	inFilter map[string]bool
}

func (p *puller) newCandidates() *candidateSet {
	return &candidateSet{users: map[string]*okta.User{}, inFilter: map[string]bool{}}
}

// candidates lists the users that match cond, of every status, and marks
// those the full pull's listing would hold.
func (p *puller) candidates(ctx context.Context, cond string, set *candidateSet) error {
	listed := map[string]bool{} // first listed by this call
	add := func(deprovisioned bool) func(*okta.User) error {
		return func(u *okta.User) error {
			if u == nil || u.Id == "" {
				return nil
			}
			if _, seen := set.users[u.Id]; !seen {
				set.order = append(set.order, u.Id)
				listed[u.Id] = true
			}
			set.users[u.Id] = u
			// Without filter or search, the full pull's list is the user
			// list (no DEPROVISIONED) or, with groups, the members'.
			set.inFilter[u.Id] = !deprovisioned || len(p.groups) > 0
			return nil
		}
	}
	if err := p.list(ctx, cond, "", add(false)); err != nil {
		return err
	}
	if err := p.list(ctx, fmt.Sprintf(`status eq "DEPROVISIONED" and (%s)`, cond), "", add(true)); err != nil {
		return err
	}
	if p.filter == "" && p.search == "" {
		return nil
	}
	// The configured expression decides, as in a full pull.
	for id := range listed {
		set.inFilter[id] = false
	}
	f, q := p.filter, p.search
	if f != "" {
		f = fmt.Sprintf("(%s) and (%s)", f, cond)
	} else {
		q = fmt.Sprintf("(%s) and (%s)", q, cond)
	}
	return p.list(ctx, f, q, func(u *okta.User) error {
		if listed[u.Id] {
			set.users[u.Id] = u
			set.inFilter[u.Id] = true
		}
		return nil
	})
}

// list lists /api/v1/users with a filter and a search, page by page.
func (p *puller) list(ctx context.Context, filter, search string, each func(*okta.User) error) error {
	qp := query.NewQueryParams(query.WithLimit(pageLimit))
	qp.Filter, qp.Search = filter, search
	users, resp, err := p.c.User.ListUsers(ctx, qp)
	return pages(ctx, "list changed users", users, resp, err, each)
}

// userGroupsWithIDs returns the names and ids of every group of a user.
func (p *puller) userGroupsWithIDs(ctx context.Context, userID string) (names, ids []string, err error) {
	gs, resp, err := p.c.User.ListUserGroups(ctx, userID)
	err = pages(ctx, "list groups of user "+userID, gs, resp, err, func(g *okta.Group) error {
		name := ""
		if g.Profile != nil {
			name = g.Profile.Name
		}
		names = append(names, name)
		ids = append(ids, g.Id)
		return nil
	})
	return names, ids, err
}

// errNoLog: the token may not read the System Log.
var errNoLog = errors.New("the System Log may not be read")

// systemLog reads the System Log from since to the read's start: the ids
// of users deleted, and of users whose membership of a group that matters
// changed (when membership matters).
func (p *puller) systemLog(ctx context.Context, since time.Time, membership bool, groups map[string]string) (deleted, moved []string, err error) {
	filter := `eventType sw "user.lifecycle.delete"`
	if membership {
		filter += ` or eventType eq "group.user_membership.add" or eventType eq "group.user_membership.remove"`
	}
	// A request with until is bounded: its pages end. Without it, Okta
	// answers a polling request, whose next link never runs out.
	qp := query.NewQueryParams(query.WithLimit(logLimit), query.WithFilter(filter),
		query.WithSince(since.UTC().Format(stampFormat)), query.WithUntil(p.started().UTC().Format(stampFormat)),
		query.WithSortOrder("ASCENDING"))
	seenDel, seenMoved := map[string]bool{}, map[string]bool{}
	evs, resp, err := p.c.LogEvent.GetLogs(ctx, qp)
	if resp != nil && resp.StatusCode == http.StatusForbidden {
		return nil, nil, fmt.Errorf("%w: %w", errNoLog, err)
	}
	err = pages(ctx, "read the System Log", evs, resp, err, func(e *okta.LogEvent) error {
		var user, group string
		for _, t := range e.Target {
			switch {
			case t == nil:
			case t.Type == "User" && user == "":
				user = t.Id
			case t.Type == "UserGroup" && group == "":
				group = t.Id
			}
		}
		switch {
		case user == "":
		case strings.HasPrefix(e.EventType, "user.lifecycle.delete"):
			if !seenDel[user] {
				seenDel[user] = true
				deleted = append(deleted, user)
			}
		case p.allGrps || groups[group] != "":
			if !seenMoved[user] {
				seenMoved[user] = true
				moved = append(moved, user)
			}
		}
		return nil
	})
	return deleted, moved, err
}
