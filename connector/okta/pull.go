package okta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/okta/okta-sdk-golang/v2/okta"
	"github.com/okta/okta-sdk-golang/v2/okta/query"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/model"
)

// enabledStatus tells whether a person with an Okta user status is
// enabled, and whether the status is one seatsync knows. An unknown status
// (one Okta adds later) counts as disabled.
func enabledStatus(status string) (enabled, known bool) {
	switch status {
	case "ACTIVE", "PROVISIONED", "RECOVERY", "PASSWORD_EXPIRED":
		return true, true
	case "SUSPENDED", "LOCKED_OUT", "DEPROVISIONED", "STAGED":
		return false, true
	}
	return false, false
}

// puller is the state of one pull.
type puller struct {
	*source
	c  *okta.Client
	t  *transport
	st stats
}

func (s *source) run(ctx context.Context, emit func(model.Identity) error, skip func(connector.Skip)) (stats, error) {
	start := time.Now()
	p, err := s.connect(ctx)
	if err != nil {
		return stats{}, err
	}
	err = p.pull(ctx, emit, skip)
	p.done()
	if err != nil {
		return p.st, err
	}
	p.logRead("okta users read", start)
	return p.st, nil
}

// connect makes the transport and the SDK client of one read.
func (s *source) connect(ctx context.Context) (*puller, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t := &transport{
		base:       s.opt.Transport,
		timeout:    s.timeout,
		share:      s.share,
		maxRetries: s.opt.MaxRetries,
		now:        s.now,
		sleep:      s.opt.Sleep,
		log:        s.log,
		buckets:    map[string]*bucket{},
	}
	if t.base == nil {
		t.base = defaultTransport()
	}
	if t.maxRetries == 0 {
		t.maxRetries = DefaultMaxRetries
	} else if t.maxRetries < 0 {
		t.maxRetries = 0
	}
	if t.sleep == nil {
		t.sleep = sleepCtx
	}
	c, err := s.newClient(ctx, t)
	if err != nil {
		return nil, err
	}
	return &puller{source: s, c: c, t: t}, nil
}

// done copies the transport's counts into the read's stats.
func (p *puller) done() {
	p.t.mu.Lock()
	p.st.requests, p.st.retries, p.st.waited = p.t.st.requests, p.t.st.retries, p.t.st.waited
	p.t.mu.Unlock()
}

func (p *puller) logRead(msg string, start time.Time, fields ...zap.Field) {
	p.log.Info(msg, append([]zap.Field{
		zap.Int("identities", p.st.identities),
		zap.Int("skipped", p.st.skipped),
		zap.Int("requests", p.st.requests),
		zap.Int("rate_limit_retries", p.st.retries),
		zap.Duration("rate_limit_wait", p.st.waited),
		zap.Duration("took", time.Since(start))}, fields...)...)
}

func (p *puller) pull(ctx context.Context, emit func(model.Identity) error, skip func(connector.Skip)) error {
	// Membership of the groups area rules name, as user id -> group names.
	memberOf := map[string][]string{}
	for _, name := range p.ruleGrps {
		if slices.Contains(p.groups, name) {
			continue // listed below, as a scope group
		}
		id, err := p.groupID(ctx, name)
		if err != nil {
			return fmt.Errorf("area_rules: %w", err)
		}
		err = p.groupMembers(ctx, name, id, func(u *okta.User) error {
			memberOf[u.Id] = append(memberOf[u.Id], name)
			return nil
		})
		if err != nil {
			return err
		}
	}
	out := func(u *okta.User) error {
		id, ok := p.identity(u, memberOf[u.Id], skip)
		if !ok {
			p.st.skipped++
			return nil
		}
		if p.allGrps {
			gs, err := p.userGroups(ctx, u.Id)
			if err != nil {
				return err
			}
			id.Groups = mergeSorted(id.Groups, gs)
		}
		p.st.identities++
		return emit(id)
	}
	if len(p.groups) == 0 {
		return p.listUsers(ctx, out)
	}

	// Scoped to groups: the members of each, merged by user id, in the
	// order first seen.
	var order []string
	scoped := map[string]*okta.User{}
	for _, name := range p.groups {
		id, err := p.groupID(ctx, name)
		if err != nil {
			return fmt.Errorf("groups: %w", err)
		}
		err = p.groupMembers(ctx, name, id, func(u *okta.User) error {
			if _, seen := scoped[u.Id]; !seen {
				order = append(order, u.Id)
				scoped[u.Id] = u
			}
			if !slices.Contains(memberOf[u.Id], name) {
				memberOf[u.Id] = append(memberOf[u.Id], name)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if p.filter == "" && p.search == "" {
		for _, uid := range order {
			if err := out(scoped[uid]); err != nil {
				return err
			}
		}
		return nil
	}
	// filter and search work on the user list only: list it and keep the
	// group members.
	return p.listUsers(ctx, func(u *okta.User) error {
		if _, ok := scoped[u.Id]; !ok {
			return nil
		}
		return out(u)
	})
}

// listUsers lists /api/v1/users with filter and search, page by page.
func (p *puller) listUsers(ctx context.Context, each func(*okta.User) error) error {
	qp := query.NewQueryParams(query.WithLimit(pageLimit))
	if p.filter != "" {
		qp.Filter = p.filter
	}
	if p.search != "" {
		qp.Search = p.search
	}
	users, resp, err := p.c.User.ListUsers(ctx, qp)
	return pages(ctx, "list users", users, resp, err, each)
}

// groupMembers lists the members of a group, page by page.
func (p *puller) groupMembers(ctx context.Context, name, id string, each func(*okta.User) error) error {
	users, resp, err := p.c.Group.ListGroupUsers(ctx, id, query.NewQueryParams(query.WithLimit(pageLimit)))
	return pages(ctx, fmt.Sprintf("list members of group %q", name), users, resp, err, each)
}

// userGroups returns the names of every group a user is a member of.
func (p *puller) userGroups(ctx context.Context, userID string) ([]string, error) {
	gs, resp, err := p.c.User.ListUserGroups(ctx, userID)
	var names []string
	err = pages(ctx, "list groups of user "+userID, gs, resp, err, func(g *okta.Group) error {
		if g.Profile != nil {
			names = append(names, g.Profile.Name)
		}
		return nil
	})
	return names, err
}

// groupID resolves a group name to its id. Okta's q= search is a prefix
// search, so only exact name matches count; none or several is an error.
func (p *puller) groupID(ctx context.Context, name string) (string, error) {
	gs, resp, err := p.c.Group.ListGroups(ctx, query.NewQueryParams(query.WithQ(name), query.WithLimit(pageLimit)))
	var exact, near []string
	err = pages(ctx, fmt.Sprintf("find group %q", name), gs, resp, err, func(g *okta.Group) error {
		if g.Profile == nil {
			return nil
		}
		if g.Profile.Name == name {
			exact = append(exact, g.Id)
		} else if len(near) < 5 {
			near = append(near, strconv.Quote(g.Profile.Name))
		}
		return nil
	})
	switch {
	case err != nil:
		return "", err
	case len(exact) == 1:
		return exact[0], nil
	case len(exact) > 1:
		return "", fmt.Errorf("%w %q: %d Okta groups have this name (%s); rename one so the name is unique",
			ErrGroup, name, len(exact), strings.Join(exact, ", "))
	case len(near) > 0:
		return "", fmt.Errorf("%w %q: no Okta group has exactly this name (names that start with it: %s)",
			ErrGroup, name, strings.Join(near, ", "))
	}
	return "", fmt.Errorf("%w %q: no Okta group has this name", ErrGroup, name)
}

// pages hands every item of a listing to each, following the next links to
// the end. Any error, on any page, fails the listing.
func pages[T any](ctx context.Context, what string, items []T, resp *okta.Response, err error, each func(T) error) error {
	for n := 1; ; n++ {
		if err != nil {
			return fmt.Errorf("%s: page %d: %w", what, n, describe(err))
		}
		for _, it := range items {
			if err := each(it); err != nil {
				return err
			}
		}
		connector.PageRead(ctx)
		if resp == nil || !resp.HasNextPage() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		items = nil
		resp, err = resp.Next(ctx, &items)
	}
}

// describe makes SDK errors say what an admin can act on. The SDK error
// stays in the chain.
func describe(err error) error {
	// The SDK puts the signed client assertion in the token request's
	// query string, and url.Error prints the whole URL: cut it off.
	var ue *url.Error
	if errors.As(err, &ue) && strings.Contains(ue.URL, "client_assertion") {
		if i := strings.IndexByte(ue.URL, '?'); i >= 0 {
			ue.URL = ue.URL[:i]
		}
	}
	var oe *okta.Error
	if errors.As(err, &oe) {
		switch {
		case oe.ErrorCode == "E0000011" || oe.ErrorMessage == "invalid_client":
			return fmt.Errorf("%w (check token / token_file, or the service app's client_id and private key): %w", ErrUnauthorized, err)
		case oe.ErrorCode == "E0000006" || oe.ErrorMessage == "invalid_scope":
			return fmt.Errorf("%w: not allowed (the token's admin role, or the scopes granted to the service app: "+
				"okta.users.read and okta.groups.read): %w", ErrUnauthorized, err)
		case oe.ErrorCode != "":
			return fmt.Errorf("okta error %s: %w", oe.ErrorCode, err)
		}
		return err
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	if errors.As(err, &se) || errors.As(err, &te) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("the page is not valid JSON: %w", err)
	}
	return err
}

// identity maps one Okta user. It returns false (after reporting a skip)
// for a user that cannot be read.
func (p *puller) identity(u *okta.User, groups []string, skip func(connector.Skip)) (model.Identity, bool) {
	if u == nil || u.Id == "" {
		skip(connector.Skip{Where: "okta user without an id", Reason: "the user has no id"})
		return model.Identity{}, false
	}
	prof := map[string]any{}
	if u.Profile != nil {
		prof = *u.Profile
	}
	id := model.Identity{Where: "okta user " + u.Id}
	used := map[string]bool{}
	get := func(field string) string {
		attr, ok := p.mapping[field]
		if !ok {
			return ""
		}
		if attr == "id" && field == "external_id" {
			return u.Id
		}
		used[attr] = true
		return format(prof[attr])
	}
	id.ExternalID = get("external_id")
	id.Username = get("username")
	id.Email = get("email")
	id.GivenName = get("given_name")
	id.FamilyName = get("family_name")
	id.DisplayName = get("display_name")
	id.Title = get("title")
	id.Department = get("department")
	if attr, ok := p.mapping["groups"]; ok {
		used[attr] = true
		groups = mergeSorted(groups, listOf(prof[attr]))
	}
	id.Groups = mergeSorted(nil, groups)
	enabled, known := enabledStatus(u.Status)
	if !known {
		p.log.Warn("unknown okta user status, treated as disabled", zap.String("user", u.Id), zap.String("status", u.Status))
	}
	id.Enabled = enabled
	// An id of blanks is no id: taken as one, it would be a new person,
	// and the profile of the person it belongs to would look like a leaver.
	if strings.TrimSpace(id.ExternalID) == "" {
		skip(connector.Skip{Where: id.Where, Reason: fmt.Sprintf("external_id attribute %q is empty", p.mapping["external_id"])})
		return model.Identity{}, false
	}
	for k, v := range prof {
		if used[k] || v == nil {
			continue
		}
		if id.Attributes == nil {
			id.Attributes = map[string]string{}
		}
		id.Attributes[k] = format(v)
	}
	return id, true
}

// format renders a profile value as a string: strings as they are,
// numbers without a trailing ".0", booleans as true/false, arrays of
// scalars joined with "|" (as CSV groups are), anything else as JSON.
func format(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			switch e.(type) {
			case map[string]any, []any:
				b, _ := json.Marshal(x)
				return string(b)
			}
			parts = append(parts, format(e))
		}
		return strings.Join(parts, "|")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// listOf reads a profile value as a list of strings.
func listOf(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s := format(e); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	if s := format(v); s != "" {
		return []string{s}
	}
	return nil
}

// mergeSorted returns the sorted union of a and b, without duplicates.
func mergeSorted(a, b []string) []string {
	if len(a)+len(b) == 0 {
		return nil
	}
	out := append(slices.Clone(a), b...)
	sort.Strings(out)
	return slices.Compact(out)
}
