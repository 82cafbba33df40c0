// Package oktatest is a fake Okta org for tests and benchmarks: an
// httptest server that answers the parts of the Okta Management API the
// okta connector uses, written from Okta's published API reference.
//
//   - GET /api/v1/users: limit (default and cap 200), the after cursor,
//     Link headers with rel="self" and rel="next", filter and search
//     expressions (attr eq|sw|co|gt|ge|lt|le "value", joined by and / or,
//     with parentheses; lastUpdated compared as an instant; see expr.go).
//     Without a filter or search naming status, DEPROVISIONED users are
//     left out, as Okta does. A user's lastUpdated moves with every change
//     of its status or profile, not with its group memberships.
//   - GET /api/v1/logs, the System Log: since, until, filter, limit
//     (default 100, cap 1000), after, sortOrder; events with uuid,
//     published, eventType, actor and target[]. A request with until is
//     bounded (a next link only while there is more); one without is a
//     polling request, whose answer always has a next link, as Okta's
//     does. Events older than 90 days are gone. The server logs what
//     changes users: user.lifecycle.create, user.account.update_profile,
//     user.lifecycle.deactivate / suspend / unsuspend / activate,
//     user.lifecycle.delete.initiated and .completed,
//     group.user_membership.add / remove.
//   - GET /api/v1/groups?q= (a prefix search on the group name, paged),
//     GET /api/v1/groups/{id}/users (paged), GET /api/v1/users/{id}/groups.
//   - X-Rate-Limit-Limit, -Remaining and -Reset and a Date header on every
//     answer; a 429 with error E0000047 over the limit.
//   - SSWS API tokens, and OAuth 2.0 client credentials with a
//     private_key_jwt client assertion at /oauth2/v1/token, whose access
//     tokens the API accepts as Authorization: Bearer.
//
// Users can be changed between pulls (UpdateUser) and deleted
// (DeleteUser); DenyLogs takes the right to read the System Log from the
// API token (403, E0000006). Faults can be injected
// on a page of the user list: a 500, a hang until the client gives up, or
// broken JSON. Requests are counted by endpoint.
package oktatest

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Endpoints, as counted by Count.
const (
	EndpointUsers      = "users"       // GET /api/v1/users
	EndpointGroups     = "groups"      // GET /api/v1/groups
	EndpointGroupUsers = "group_users" // GET /api/v1/groups/{id}/users
	EndpointUserGroups = "user_groups" // GET /api/v1/users/{id}/groups
	EndpointToken      = "token"       // POST /oauth2/v1/token
	EndpointLogs       = "logs"        // GET /api/v1/logs
)

// LogRetention is how long Okta keeps System Log events.
const LogRetention = 90 * 24 * time.Hour

// MaxLimit is the largest page Okta serves for the user and group
// endpoints faked here.
const MaxLimit = 200

// Pages of the System Log: the default and the most Okta serves.
const (
	DefaultLogLimit = 100
	MaxLogLimit     = 1000
)

// Fault is something to go wrong on one page of the user list.
type Fault int

const (
	FaultNone    Fault = iota
	Fault500           // an HTTP 500 with Okta's error JSON (E0000009)
	FaultHang          // no answer until the client gives up
	FaultBadJSON       // a 200 whose body is cut off mid-object
)

// User is one person in the fake org.
type User struct {
	ID      string         // generated when empty ("00u" + number)
	Status  string         // ACTIVE when empty
	Profile map[string]any // login, email, firstName, ... and custom attributes
	Groups  []string       // names of the groups the user is a member of
	// LastUpdated is when the status or the profile last changed; the
	// server's now when AddUsers gets it zero, and moved to now by every
	// UpdateUser that changes either, unless the change sets it itself.
	LastUpdated time.Time
}

// Event is one System Log event, as the server records it.
type Event struct {
	UUID      string
	Published time.Time
	EventType string
	Targets   []Target
}

// Target is one target of a System Log event.
type Target struct {
	ID, Type, AlternateID, DisplayName string
}

// Options configure a Server.
type Options struct {
	// Token is the API token accepted as "SSWS <token>". Default "test-token".
	Token string
	// Now is the server's clock (for the Date and X-Rate-Limit headers);
	// time.Now when nil.
	Now func() time.Time
	// RateLimit is the number of requests per endpoint per minute;
	// 600 when 0, no limit when negative.
	RateLimit int
}

// Server is a running fake org. Its methods are safe for concurrent use.
type Server struct {
	// URL is the org URL, such as http://127.0.0.1:41234.
	URL string

	srv   *httptest.Server
	token string
	now   func() time.Time
	limit int
	done  chan struct{}

	mu       sync.Mutex
	users    []*User
	byID     map[string]*User
	groups   []*group
	clients  map[string]client
	access   map[string][]string // issued access token -> scopes
	windows  map[string]*window
	throttle int // the next n API requests get a 429
	faults   map[int]Fault
	counts   map[string]int
	seq      int
	events   []Event
	denyLogs bool
}

type group struct {
	id, name string
	// lastMembershipUpdated moves with every member added or removed.
	lastMembershipUpdated time.Time
}

type client struct {
	key    *rsa.PublicKey
	scopes []string
}

type window struct {
	start time.Time
	used  int
}

// New starts a fake org. Close it when done.
func New(opt Options) *Server {
	s := &Server{
		token:   opt.Token,
		now:     opt.Now,
		limit:   opt.RateLimit,
		done:    make(chan struct{}),
		byID:    map[string]*User{},
		clients: map[string]client{},
		access:  map[string][]string{},
		windows: map[string]*window{},
		faults:  map[int]Fault{},
		counts:  map[string]int{},
	}
	if s.token == "" {
		s.token = "test-token"
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.limit == 0 {
		s.limit = 600
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server; requests left hanging are released first.
func (s *Server) Close() {
	close(s.done)
	s.srv.Close()
}

// Token is the API token the server accepts.
func (s *Server) Token() string { return s.token }

// AddUsers adds people to the org, with the groups they name (groups that
// do not exist yet are created). It returns their ids.
func (s *Server) AddUsers(us ...User) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.stampLocked()
	ids := make([]string, 0, len(us))
	for _, u := range us {
		s.seq++
		if u.ID == "" {
			u.ID = fmt.Sprintf("00u%07d", s.seq)
		}
		if u.Status == "" {
			u.Status = "ACTIVE"
		}
		if u.Profile == nil {
			u.Profile = map[string]any{}
		}
		if u.LastUpdated.IsZero() {
			u.LastUpdated = now
		}
		u.Groups = slices.Clone(u.Groups)
		s.users = append(s.users, &u)
		s.byID[u.ID] = &u
		ids = append(ids, u.ID)
		s.logLocked("user.lifecycle.create", userTarget(&u))
		for _, g := range u.Groups {
			s.joinedLocked(&u, g)
		}
	}
	return ids
}

// UpdateUser changes a user in place, as an admin or a profile push from
// HR would: change gets the user and may set its Status, Profile values,
// Groups (groups that do not exist yet are created) and LastUpdated. A
// change of status or profile moves LastUpdated to now, unless change set
// it; a change of groups does not (Okta keeps membership apart from the
// user), and is logged as group.user_membership.add / remove. It returns
// false when there is no user with that id.
func (s *Server) UpdateUser(id string, change func(*User)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byID[id]
	if !ok {
		return false
	}
	before := *u
	before.Profile = maps.Clone(u.Profile)
	before.Groups = slices.Clone(u.Groups)
	change(u)
	u.ID = id
	if u.Profile == nil {
		u.Profile = map[string]any{}
	}
	profile := !reflect.DeepEqual(before.Profile, u.Profile)
	status := before.Status != u.Status
	if (profile || status) && u.LastUpdated.Equal(before.LastUpdated) {
		u.LastUpdated = s.stampLocked()
	}
	if profile {
		s.logLocked("user.account.update_profile", userTarget(u))
	}
	if status {
		s.logLocked(statusEvent(u.Status), userTarget(u))
	}
	for _, g := range before.Groups {
		if !slices.Contains(u.Groups, g) {
			s.leftLocked(u, g)
		}
	}
	for _, g := range u.Groups {
		if !slices.Contains(before.Groups, g) {
			s.joinedLocked(u, g)
		}
	}
	return true
}

// statusEvent is the System Log event of a move to status.
func statusEvent(status string) string {
	switch status {
	case "DEPROVISIONED":
		return "user.lifecycle.deactivate"
	case "SUSPENDED":
		return "user.lifecycle.suspend"
	case "ACTIVE":
		return "user.lifecycle.activate"
	}
	return "user.lifecycle.status_change"
}

// DeleteUser deletes a user for good, as an admin does in two steps: a
// user who is not DEPROVISIONED yet is deactivated first (its lastUpdated
// moves), then deleted. The user leaves its groups without membership
// events, and is then in no listing: only the System Log tells, with
// user.lifecycle.delete.initiated and user.lifecycle.delete.completed. It
// returns false when there is no user with that id.
func (s *Server) DeleteUser(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byID[id]
	if !ok {
		return false
	}
	if u.Status != "DEPROVISIONED" {
		u.Status = "DEPROVISIONED"
		u.LastUpdated = s.stampLocked()
		s.logLocked(statusEvent(u.Status), userTarget(u))
	}
	s.logLocked("user.lifecycle.delete.initiated", userTarget(u))
	delete(s.byID, id)
	s.users = slices.DeleteFunc(s.users, func(x *User) bool { return x.ID == id })
	s.logLocked("user.lifecycle.delete.completed", userTarget(u))
	return true
}

// DenyLogs takes from the API token the right to read the System Log (or
// gives it back): /api/v1/logs answers 403 with E0000006, as Okta does for
// an admin role without it. OAuth access tokens need the okta.logs.read
// scope instead.
func (s *Server) DenyLogs(deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denyLogs = deny
}

// Events returns the System Log, oldest first.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

func (s *Server) stampLocked() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

func (s *Server) logLocked(eventType string, targets ...Target) {
	s.seq++
	s.events = append(s.events, Event{
		UUID:      fmt.Sprintf("evt%07d-0000-11ee-8000-000000000000", s.seq),
		Published: s.stampLocked(),
		EventType: eventType,
		Targets:   targets,
	})
}

func userTarget(u *User) Target {
	login, _ := u.Profile["login"].(string)
	first, _ := u.Profile["firstName"].(string)
	last, _ := u.Profile["lastName"].(string)
	return Target{ID: u.ID, Type: "User", AlternateID: login, DisplayName: strings.TrimSpace(first + " " + last)}
}

func (s *Server) joinedLocked(u *User, name string) {
	g := s.addGroupLocked(name)
	g.lastMembershipUpdated = s.stampLocked()
	s.logLocked("group.user_membership.add", userTarget(u),
		Target{ID: g.id, Type: "UserGroup", AlternateID: "unknown", DisplayName: g.name})
}

func (s *Server) leftLocked(u *User, name string) {
	g := s.addGroupLocked(name)
	g.lastMembershipUpdated = s.stampLocked()
	s.logLocked("group.user_membership.remove", userTarget(u),
		Target{ID: g.id, Type: "UserGroup", AlternateID: "unknown", DisplayName: g.name})
}

// AddGroup adds a group (a second one with the same name too: Okta allows
// that for groups of different types) and returns its id.
func (s *Server) AddGroup(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := fmt.Sprintf("00g%07d", s.seq)
	s.groups = append(s.groups, &group{id: id, name: name, lastMembershipUpdated: s.stampLocked()})
	return id
}

// addGroupLocked returns the first group with that name, made when there
// is none.
func (s *Server) addGroupLocked(name string) *group {
	for _, g := range s.groups {
		if g.name == name {
			return g
		}
	}
	s.seq++
	g := &group{id: fmt.Sprintf("00g%07d", s.seq), name: name, lastMembershipUpdated: s.stampLocked()}
	s.groups = append(s.groups, g)
	return g
}

// AddClient registers an OAuth service app that authenticates with a
// private key (its public half here) and may be granted the given scopes.
func (s *Server) AddClient(id string, key *rsa.PublicKey, scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = client{key, scopes}
}

// Fail makes page (1-based) of every user listing fail with f.
func (s *Server) Fail(page int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[page] = f
}

// Throttle makes the next n API requests (of any endpoint) get a 429, as
// if other clients had used up the org's limit.
func (s *Server) Throttle(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle = n
}

// Count returns the number of requests an endpoint got, 429s included.
func (s *Server) Count(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[endpoint]
}

// Counts returns the request counts by endpoint, plus "429" for the number
// of rate-limited answers.
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		m[k] = v
	}
	return m
}

// ResetCounts sets every count back to 0.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counts)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/oauth2/v1/token" {
		s.count(EndpointToken)
		s.tokenEndpoint(w, r)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 3 || parts[0] != "api" || parts[1] != "v1" || r.Method != http.MethodGet {
		s.oktaError(w, http.StatusNotFound, "E0000022", "The endpoint does not support the provided HTTP method")
		return
	}
	var endpoint, id, scope string
	switch {
	case len(parts) == 3 && parts[2] == "users":
		endpoint, scope = EndpointUsers, "okta.users.read"
	case len(parts) == 3 && parts[2] == "groups":
		endpoint, scope = EndpointGroups, "okta.groups.read"
	case len(parts) == 5 && parts[2] == "groups" && parts[4] == "users":
		endpoint, id, scope = EndpointGroupUsers, parts[3], "okta.groups.read"
	case len(parts) == 5 && parts[2] == "users" && parts[4] == "groups":
		endpoint, id, scope = EndpointUserGroups, parts[3], "okta.users.read"
	case len(parts) == 3 && parts[2] == "logs":
		endpoint, scope = EndpointLogs, "okta.logs.read"
	default:
		s.oktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.URL.Path)
		return
	}
	s.count(endpoint)
	if !s.rateLimit(w, endpoint) {
		return
	}
	if code, summary, status := s.authorize(r, scope); code != "" {
		s.oktaError(w, status, code, summary)
		return
	}
	switch endpoint {
	case EndpointUsers:
		s.listUsers(w, r)
	case EndpointGroups:
		s.listGroups(w, r)
	case EndpointGroupUsers:
		s.listGroupUsers(w, r, id)
	case EndpointUserGroups:
		s.listUserGroups(w, r, id)
	case EndpointLogs:
		s.listLogs(w, r)
	}
}

func (s *Server) count(endpoint string) {
	s.mu.Lock()
	s.counts[endpoint]++
	s.mu.Unlock()
}

// rateLimit sets the X-Rate-Limit headers and the Date header, and answers
// 429 when the endpoint's minute is used up. It reports whether to go on.
func (s *Server) rateLimit(w http.ResponseWriter, endpoint string) bool {
	s.mu.Lock()
	now := s.now()
	win := s.windows[endpoint]
	if win == nil || !now.Before(win.start.Add(time.Minute)) {
		win = &window{start: now.Truncate(time.Second)}
		s.windows[endpoint] = win
	}
	win.used++
	limit := s.limit
	reset := win.start.Add(time.Minute)
	over := limit > 0 && win.used > limit
	if s.throttle > 0 {
		s.throttle--
		over = true
	}
	if over {
		s.counts["429"]++
	}
	s.mu.Unlock()

	h := w.Header()
	h.Set("Date", now.UTC().Format(http.TimeFormat))
	if limit > 0 {
		remaining := max(limit-win.used, 0)
		if over {
			remaining = 0
		}
		h.Set("X-Rate-Limit-Limit", strconv.Itoa(limit))
		h.Set("X-Rate-Limit-Remaining", strconv.Itoa(remaining))
		h.Set("X-Rate-Limit-Reset", strconv.FormatInt(reset.Unix(), 10))
	} else if over {
		h.Set("X-Rate-Limit-Limit", "0")
		h.Set("X-Rate-Limit-Remaining", "0")
		h.Set("X-Rate-Limit-Reset", strconv.FormatInt(reset.Unix(), 10))
	}
	if over {
		s.oktaError(w, http.StatusTooManyRequests, "E0000047", "API call exceeded rate limit due to too many requests.")
		return false
	}
	return true
}

// authorize checks the Authorization header; it returns an Okta error code
// when the request may not go on.
func (s *Server) authorize(r *http.Request, scope string) (code, summary string, status int) {
	a := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(a, "SSWS "):
		if strings.TrimPrefix(a, "SSWS ") == s.token {
			s.mu.Lock()
			deny := s.denyLogs && scope == "okta.logs.read"
			s.mu.Unlock()
			if deny {
				return "E0000006", "You do not have permission to perform the requested action", http.StatusForbidden
			}
			return "", "", 0
		}
	case strings.HasPrefix(a, "Bearer "):
		s.mu.Lock()
		scopes, ok := s.access[strings.TrimPrefix(a, "Bearer ")]
		s.mu.Unlock()
		if ok {
			if !slices.Contains(scopes, scope) {
				return "E0000006", "You do not have permission to perform the requested action", http.StatusForbidden
			}
			return "", "", 0
		}
	}
	return "E0000011", "Invalid token provided", http.StatusUnauthorized
}

func (s *Server) oktaError(w http.ResponseWriter, status int, code, summary string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errorCode":    code,
		"errorSummary": summary,
		"errorLink":    code,
		"errorId":      fmt.Sprintf("oae%013d", time.Now().UnixNano()%1e13),
		"errorCauses":  []any{},
	})
}

// page reads limit and after, and returns the slice bounds of the page.
func page(r *http.Request, n int, idAt func(int) string) (start, end, limit int, bad string) {
	q := r.URL.Query()
	limit = MaxLimit
	if l := q.Get("limit"); l != "" {
		v, err := strconv.Atoi(l)
		if err != nil || v < 1 {
			return 0, 0, 0, "limit: " + l
		}
		limit = min(v, MaxLimit)
	}
	if after := q.Get("after"); after != "" {
		start = -1
		for i := 0; i < n; i++ {
			if idAt(i) == after {
				start = i + 1
				break
			}
		}
		if start < 0 {
			return 0, 0, 0, "after: " + after
		}
	}
	return start, min(start+limit, n), limit, ""
}

// links sets the Link headers of a page: self, and next when there is more.
func (s *Server) links(w http.ResponseWriter, r *http.Request, limit int, lastID string, more bool) {
	q := r.URL.Query()
	q.Set("limit", strconv.Itoa(limit))
	self := *r.URL
	self.RawQuery = q.Encode()
	w.Header().Add("Link", fmt.Sprintf(`<%s%s>; rel="self"`, s.URL, self.RequestURI()))
	if more {
		q.Set("after", lastID)
		next := *r.URL
		next.RawQuery = q.Encode()
		w.Header().Add("Link", fmt.Sprintf(`<%s%s>; rel="next"`, s.URL, next.RequestURI()))
	}
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var keep []expr
	explicitStatus := false
	for _, p := range []struct {
		param string
		d     dialect
	}{{"filter", userFilter}, {"search", userSearch}} {
		text := q.Get(p.param)
		if text == "" {
			continue
		}
		e, err := parse(p.d, text)
		if err != nil {
			s.oktaError(w, http.StatusBadRequest, "E0000031", "Invalid search criteria. "+err.Error())
			return
		}
		keep = append(keep, e)
		explicitStatus = explicitStatus || e.names("status")
	}
	s.mu.Lock()
	var us []*User
	for _, u := range s.users {
		if u.Status == "DEPROVISIONED" && !explicitStatus {
			continue
		}
		get := userAttrs(u)
		ok := true
		for _, e := range keep {
			ok = ok && e.match(get)
		}
		if ok {
			us = append(us, u)
		}
	}
	s.mu.Unlock()
	start, end, limit, bad := page(r, len(us), func(i int) string { return us[i].ID })
	if bad != "" {
		s.oktaError(w, http.StatusBadRequest, "E0000001", "Api validation failed: "+bad)
		return
	}
	if !s.fault(w, r, start/limit+1) {
		return
	}
	s.links(w, r, limit, lastID(us[start:end]), end < len(us))
	s.writeUsers(w, us[start:end])
}

func lastID(us []*User) string {
	if len(us) == 0 {
		return ""
	}
	return us[len(us)-1].ID
}

// fault injects the fault set for a page; it reports whether to go on.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, pageNo int) bool {
	s.mu.Lock()
	f := s.faults[pageNo]
	s.mu.Unlock()
	switch f {
	case Fault500:
		s.oktaError(w, http.StatusInternalServerError, "E0000009", "Internal Server Error")
		return false
	case FaultHang:
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return false
	case FaultBadJSON:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[{"id":"00ubroken","status":"ACTIVE","profile":{"login":"bro`))
		return false
	}
	return true
}

func (s *Server) writeUsers(w http.ResponseWriter, us []*User) {
	out := make([]map[string]any, 0, len(us))
	s.mu.Lock()
	for _, u := range us {
		out = append(out, s.userJSON(u))
	}
	s.mu.Unlock()
	writeJSON(w, out)
}

func (s *Server) userJSON(u *User) map[string]any {
	const stamp = "2025-01-06T09:00:00.000Z"
	var activated any
	if u.Status != "STAGED" {
		activated = stamp
	}
	return map[string]any{
		"id":              u.ID,
		"status":          u.Status,
		"created":         stamp,
		"activated":       activated,
		"statusChanged":   stamp,
		"lastLogin":       nil,
		"lastUpdated":     u.LastUpdated.UTC().Format(stampFormat),
		"passwordChanged": stamp,
		"type":            map[string]any{"id": "oty00000000000000001"},
		// A copy: the answer is written after the lock is let go, and
		// UpdateUser may change the profile meanwhile.
		"profile": maps.Clone(u.Profile),
		"credentials": map[string]any{
			"provider": map[string]any{"type": "OKTA", "name": "OKTA"},
		},
		"_links": map[string]any{"self": map[string]any{"href": s.URL + "/api/v1/users/" + u.ID}},
	}
}

func (s *Server) groupJSON(g group) map[string]any {
	const stamp = "2025-01-06T09:00:00.000Z"
	return map[string]any{
		"id":                    g.id,
		"created":               stamp,
		"lastUpdated":           stamp,
		"lastMembershipUpdated": g.lastMembershipUpdated.Format(stampFormat),
		"objectClass":           []string{"okta:user_group"},
		"type":                  "OKTA_GROUP",
		"profile":               map[string]any{"name": g.name, "description": ""},
		"_links":                map[string]any{},
	}
}

// stampFormat is how Okta writes instants: RFC 3339, in UTC, with
// milliseconds.
const stampFormat = "2006-01-02T15:04:05.000Z"

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	prefix := strings.ToLower(r.URL.Query().Get("q"))
	s.mu.Lock()
	var gs []group
	for _, g := range s.groups {
		if strings.HasPrefix(strings.ToLower(g.name), prefix) {
			gs = append(gs, *g) // a copy: written after the lock is let go
		}
	}
	s.mu.Unlock()
	start, end, limit, bad := page(r, len(gs), func(i int) string { return gs[i].id })
	if bad != "" {
		s.oktaError(w, http.StatusBadRequest, "E0000001", "Api validation failed: "+bad)
		return
	}
	last := ""
	if end > start {
		last = gs[end-1].id
	}
	s.links(w, r, limit, last, end < len(gs))
	out := make([]map[string]any, 0, end-start)
	for _, g := range gs[start:end] {
		out = append(out, s.groupJSON(g))
	}
	writeJSON(w, out)
}

func (s *Server) groupByID(id string) (group, bool) {
	for _, g := range s.groups {
		if g.id == id {
			return *g, true
		}
	}
	return group{}, false
}

func (s *Server) listGroupUsers(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	g, ok := s.groupByID(id)
	var us []*User
	for _, u := range s.users {
		if ok && slices.Contains(u.Groups, g.name) {
			us = append(us, u)
		}
	}
	s.mu.Unlock()
	if !ok {
		s.oktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+id+" (UserGroup)")
		return
	}
	start, end, limit, bad := page(r, len(us), func(i int) string { return us[i].ID })
	if bad != "" {
		s.oktaError(w, http.StatusBadRequest, "E0000001", "Api validation failed: "+bad)
		return
	}
	s.links(w, r, limit, lastID(us[start:end]), end < len(us))
	s.writeUsers(w, us[start:end])
}

func (s *Server) listUserGroups(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	u, ok := s.byID[id]
	var out []map[string]any
	if ok {
		for _, g := range s.groups {
			if slices.Contains(u.Groups, g.name) {
				out = append(out, s.groupJSON(*g))
			}
		}
	}
	s.mu.Unlock()
	if !ok {
		s.oktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+id+" (User)")
		return
	}
	if out == nil {
		out = []map[string]any{}
	}
	writeJSON(w, out)
}

// tokenEndpoint is the org authorization server's token endpoint, for the
// client credentials grant with a private_key_jwt client assertion.
func (s *Server) tokenEndpoint(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if r.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if gt := r.Form.Get("grant_type"); gt != "client_credentials" {
		fail(http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported: "+gt)
		return
	}
	if r.Form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		fail(http.StatusUnauthorized, "invalid_client", "client_assertion_type must be jwt-bearer")
		return
	}
	clientID, err := s.verifyAssertion(r.Form.Get("client_assertion"))
	if err != nil {
		fail(http.StatusUnauthorized, "invalid_client", "The client_assertion token is invalid: "+err.Error())
		return
	}
	s.mu.Lock()
	c := s.clients[clientID]
	s.mu.Unlock()
	scopes := strings.Fields(r.Form.Get("scope"))
	if len(scopes) == 0 {
		fail(http.StatusBadRequest, "invalid_scope", "The authorization server resource does not have any configured default scopes, 'scope' must be provided.")
		return
	}
	for _, sc := range scopes {
		if !slices.Contains(c.scopes, sc) {
			fail(http.StatusBadRequest, "invalid_scope", "The following scopes are not granted to the client: "+sc)
			return
		}
	}
	s.mu.Lock()
	s.seq++
	at := fmt.Sprintf("at.%s.%d", clientID, s.seq)
	s.access[at] = scopes
	s.mu.Unlock()
	writeJSON(w, map[string]any{
		"token_type":   "Bearer",
		"expires_in":   3600,
		"access_token": at,
		"scope":        strings.Join(scopes, " "),
	})
}

// verifyAssertion checks an RS256 client assertion against the registered
// key of its issuer and returns the client id.
func (s *Server) verifyAssertion(jwt string) (string, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("not a compact JWS")
	}
	var head struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Exp int64           `json:"exp"`
	}
	if err := decodeSeg(parts[0], &head); err != nil {
		return "", fmt.Errorf("header: %w", err)
	}
	if err := decodeSeg(parts[1], &claims); err != nil {
		return "", fmt.Errorf("claims: %w", err)
	}
	if head.Alg != "RS256" {
		return "", fmt.Errorf("alg %q is not RS256", head.Alg)
	}
	s.mu.Lock()
	c, ok := s.clients[claims.Iss]
	s.mu.Unlock()
	if !ok || claims.Sub != claims.Iss {
		return "", fmt.Errorf("unknown client %q", claims.Iss)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", fmt.Errorf("signature: %w", err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(c.key, crypto.SHA256, sum[:], sig); err != nil {
		return "", fmt.Errorf("signature does not verify with the client's key")
	}
	aud := s.URL + "/oauth2/v1/token"
	var auds []string
	var one string
	if json.Unmarshal(claims.Aud, &one) == nil {
		auds = []string{one}
	} else {
		_ = json.Unmarshal(claims.Aud, &auds)
	}
	if !slices.Contains(auds, aud) {
		return "", fmt.Errorf("aud %s is not %s", claims.Aud, aud)
	}
	if time.Now().Unix() > claims.Exp {
		return "", fmt.Errorf("expired")
	}
	return claims.Iss, nil
}

func decodeSeg(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// userAttrs gives a user's attributes to an expression. Call it with the
// lock held.
func userAttrs(u *User) func(string) []string {
	return func(attr string) []string {
		switch {
		case attr == "status":
			return []string{u.Status}
		case attr == "id":
			return []string{u.ID}
		case attr == "lastUpdated":
			return []string{u.LastUpdated.UTC().Format(stampFormat)}
		case strings.HasPrefix(attr, "profile."):
			v, ok := u.Profile[strings.TrimPrefix(attr, "profile.")]
			if !ok || v == nil {
				return []string{""}
			}
			return []string{fmt.Sprint(v)}
		}
		return []string{""}
	}
}
