// Package scim is the SCIM 2.0 target type (`type: scim`, RFC 7643 and
// RFC 7644): a small client of the /Users endpoint on net/http.
//
// It reads /ServiceProviderConfig once and sends PATCH when the server
// supports it (PUT otherwise), and If-Match when it keeps ETags (a 412 is
// answered by reading the user again and retrying once). Booleans go as
// JSON booleans. A 429 is waited out (Retry-After) up to the target's
// timeout; requests are paced at max_requests_per_second. Every filter it
// sends is well formed, and it never relies on a server comparing
// userName case-insensitively: it compares the answers itself, and finds
// a user whose userName differs in case even on a server whose filter
// does not (see Find).
//
// It is tested against a real server (SCIMMY, internal/scimtest); what
// SCIMMY taught it is noted where it applies.
package scim

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/target"
)

// Kind is the SCIM target type for the target registry.
var Kind = target.Kind{Settings: NewSettings, Open: Open}

const (
	coreUser    = "urn:ietf:params:scim:schemas:core:2.0:User"
	patchOp     = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	contentType = "application/scim+json"
	// pageSize is how many users one listing page asks for.
	pageSize = 100
	// listAbove is how many users to find make one listing of every user
	// cheaper than a lookup each.
	listAbove = 20
	// maxBody bounds an answer read into memory.
	maxBody = 8 << 20
)

// errNoTarget marks a 400 with scimType noTarget: a PATCH path that
// selects nothing, such as emails[type eq "work"].value on a user with no
// work email (RFC 7644 section 3.5.2).
var errNoTarget = errors.New("the PATCH path selects nothing in the user")

// What the client learnt of the server's `userName eq` filter.
const (
	foldUnknown int32 = iota
	// foldYes: it ignores case, as RFC 7643 says: a lookup that misses
	// means there is no such user.
	foldYes
	// foldNo: it does not (SCIMMY): a user may be there in other case.
	foldNo
)

// Client is a target.Client for one SCIM application.
type Client struct {
	name    string
	base    string // the base URL, without a trailing slash
	token   config.Secret
	http    *http.Client
	timeout time.Duration
	limit   *rate.Limiter
	log     *zap.Logger

	paths []mapped // every mapped attribute, sorted by name
	// plain are the attributes a path-less PATCH replace carries;
	// elements the filtered ones (emails[type eq "work"].value), grouped
	// by the element they select.
	plain    []mapped
	elements [][]mapped

	spcMu    sync.Mutex
	spcKnown bool
	spc      features

	fold atomic.Int32
}

// features are what /ServiceProviderConfig says the server supports.
type features struct {
	patch, etag bool
}

// mapped is one attribute of the mapping: its path and the profile field
// that fills it.
type mapped struct {
	name  string
	path  path
	field string
}

var _ target.Client = (*Client)(nil)

// Open builds the Client of a configured target. It does no I/O but read
// the CA file.
func Open(t config.Target, log *zap.Logger) (target.Client, error) {
	s, ok := t.Settings.(*Settings)
	if !ok {
		return nil, fmt.Errorf("not a scim target")
	}
	base, err := url.Parse(strings.TrimRight(s.URL, "/"))
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.TLS.ServerName}
	if s.TLS.CAFile != "" {
		pem, err := os.ReadFile(s.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate", s.TLS.CAFile)
		}
		tc.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.MaxIdleConnsPerHost = target.Workers + 1
	if log == nil {
		log = zap.NewNop()
	}
	c := &Client{
		name: t.Name, base: base.String(), token: s.Token, timeout: t.Timeout.Duration, log: log,
		http: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	if c.timeout <= 0 {
		c.timeout = 30 * time.Second
	}
	c.limit = rate.NewLimiter(rate.Inf, 1)
	if t.MaxRequestsPerSecond > 0 {
		c.limit = rate.NewLimiter(rate.Limit(t.MaxRequestsPerSecond), 1)
	}
	for _, name := range slices.Sorted(maps.Keys(s.Attributes)) {
		p, err := parsePath(name)
		if err != nil {
			return nil, fmt.Errorf("attributes: %w", err)
		}
		m := mapped{name: name, path: p, field: s.Attributes[name]}
		c.paths = append(c.paths, m)
		if p.filterAttr == "" {
			c.plain = append(c.plain, m)
			continue
		}
		i := slices.IndexFunc(c.elements, func(g []mapped) bool { return g[0].path.sameElement(p) })
		if i < 0 {
			c.elements = append(c.elements, nil)
			i = len(c.elements) - 1
		}
		c.elements[i] = append(c.elements[i], m)
	}
	return c, nil
}

// RequestsPerSecond is the pace the client keeps (max_requests_per_second);
// 0 when it keeps none.
func (c *Client) RequestsPerSecond() float64 {
	if c.limit.Limit() == rate.Inf {
		return 0
	}
	return float64(c.limit.Limit())
}

// field reads a profile field by its configuration name.
func field(p *model.Profile, name string) string {
	v, _ := p.Text(name)
	return v
}

// Render implements target.Client.
func (c *Client) Render(p *model.Profile, active bool) map[string]string {
	r := make(map[string]string, len(c.paths)+1)
	for _, m := range c.paths {
		r[m.name] = field(p, m.field)
	}
	r["active"] = strconv.FormatBool(active)
	return r
}

// resource is the SCIM User seatsync creates for p.
func (c *Client) resource(p *model.Profile, active bool) map[string]any {
	res := map[string]any{"schemas": []any{coreUser}}
	c.fill(res, p, active)
	return res
}

// fill makes the resource res hold p and the active flag: each mapped
// attribute set, or cleared when p has no value for it. Attributes
// seatsync does not map are left as they are, so that a user read back
// and sent with PUT keeps what the application gave it.
func (c *Client) fill(res map[string]any, p *model.Profile, active bool) {
	for _, m := range c.paths {
		if v := field(p, m.field); v != "" {
			m.path.set(res, v)
		} else {
			m.path.clear(res)
		}
	}
	res[keyOf(res, "active")] = active
	key := keyOf(res, "schemas")
	schemas, _ := res[key].([]any)
	for _, m := range c.paths {
		if s := m.path.schema; s != "" && lookup(res, s) != nil && !slices.ContainsFunc(schemas, func(x any) bool { return strings.EqualFold(str(x), s) }) {
			schemas = append(schemas, s)
		}
	}
	res[key] = schemas
	delete(res, keyOf(res, "meta"))
}

// user reads a User from a decoded resource and its ETag header.
func (c *Client) user(res map[string]any, etag string) target.User {
	u := target.User{ID: str(res["id"]), UserName: str(lookup(res, "userName")), ExternalID: str(lookup(res, "externalId")),
		Attributes: make(map[string]string, len(c.paths)+1)}
	switch a := lookup(res, "active").(type) {
	case bool:
		u.Active = a
	case string: // some servers answer "True"
		u.Active = strings.EqualFold(a, "true")
	case nil:
		u.Active = true // RFC 7643: no active attribute means not deactivated
	}
	if meta, ok := lookup(res, "meta").(map[string]any); ok && etag == "" {
		etag = str(lookup(meta, "version"))
	}
	u.ETag = etag
	for _, m := range c.paths {
		u.Attributes[m.name] = m.path.get(res)
	}
	u.Attributes["active"] = strconv.FormatBool(u.Active)
	return u
}

// Memory implements target.Remembering: the server's features once they
// are known, so the next run need not read /ServiceProviderConfig.
func (c *Client) Memory() string {
	c.spcMu.Lock()
	defer c.spcMu.Unlock()
	if !c.spcKnown {
		return ""
	}
	return fmt.Sprintf("patch=%t etag=%t", c.spc.patch, c.spc.etag)
}

// Remember implements target.Remembering. A memory it cannot read is
// ignored, and the server is asked.
func (c *Client) Remember(memory string) {
	var f features
	if _, err := fmt.Sscanf(memory, "patch=%t etag=%t", &f.patch, &f.etag); err != nil {
		return
	}
	c.spcMu.Lock()
	defer c.spcMu.Unlock()
	c.spc, c.spcKnown = f, true
}

// features reads /ServiceProviderConfig, once: PATCH and ETag support. A
// server that has none (a 4xx) gets PUT and no If-Match; one that cannot
// answer now (no answer, 401, 429, 5xx) is asked again next time.
func (c *Client) features(ctx context.Context) (features, error) {
	c.spcMu.Lock()
	defer c.spcMu.Unlock()
	if c.spcKnown {
		return c.spc, nil
	}
	a, err := c.do(ctx, http.MethodGet, "/ServiceProviderConfig", nil, "")
	if err != nil && !target.Permanent(err) {
		return features{}, fmt.Errorf("read the server's features: %w", err)
	}
	var spc struct {
		Patch struct {
			Supported bool `json:"supported"`
		} `json:"patch"`
		Etag struct {
			Supported bool `json:"supported"`
		} `json:"etag"`
	}
	if err == nil {
		err = json.Unmarshal(a.body, &spc)
	}
	if err != nil {
		c.log.Warn("the SCIM server has no usable /ServiceProviderConfig; using PUT and no ETags", zap.Error(err))
	}
	c.spc = features{patch: spc.Patch.Supported, etag: spc.Etag.Supported}
	c.spcKnown = true
	c.log.Debug("SCIM server features", zap.Bool("patch", c.spc.patch), zap.Bool("etag", c.spc.etag))
	return c.spc, nil
}

// answer is one HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request. An answer other than 2xx is a *target.Error
// naming the application's own message (the answer is returned too, for
// its status). A 429 is waited out and sent again while the target's
// timeout allows.
func (c *Client) do(ctx context.Context, method, p string, body any, ifMatch string) (answer, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return answer{}, fmt.Errorf("%s %s: %w", method, p, err)
		}
	}
	deadline := time.Now().Add(c.timeout)
	for {
		if err := c.limit.Wait(ctx); err != nil {
			return answer{}, err
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		a, err := c.send(rctx, method, p, payload, ifMatch)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return answer{}, ctx.Err()
			}
			return answer{}, &target.Error{Message: fmt.Sprintf("%s %s: %v", method, p, err), Err: err}
		}
		if a.status == http.StatusTooManyRequests {
			wait := retryAfter(a.header.Get("Retry-After"))
			if time.Now().Add(wait).After(deadline) {
				return a, &target.Error{Status: a.status, Message: fmt.Sprintf(
					"%s %s: rate limited: the application asks to wait %s (Retry-After), more than the %s timeout allows", method, p, wait, c.timeout)}
			}
			c.log.Info("rate limited by the application; waiting", zap.String("target", c.name), zap.Duration("retry_after", wait))
			t := time.NewTimer(wait)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
				return answer{}, ctx.Err()
			}
		}
		if a.status/100 != 2 {
			return a, answerError(method, p, a)
		}
		return a, nil
	}
}

func (c *Client) send(ctx context.Context, method, p string, payload []byte, ifMatch string) (answer, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+p, rd)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token.Reveal())
	req.Header.Set("Accept", contentType+", application/json")
	if payload != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return answer{}, err
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// retryAfter reads a Retry-After header: seconds or an HTTP date; one
// second when it says nothing usable.
func retryAfter(h string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(0, time.Until(t))
	}
	return time.Second
}

// answerError turns a non-2xx answer into a *target.Error with the
// application's detail (RFC 7644 section 3.12) when it gave one.
func answerError(method, p string, a answer) error {
	var e struct {
		Detail   string `json:"detail"`
		ScimType string `json:"scimType"`
	}
	_ = json.Unmarshal(a.body, &e)
	msg := strings.TrimSpace(e.Detail)
	if msg == "" {
		msg = strings.TrimSpace(string(a.body))
		if msg == "" || len(msg) > 200 || !json.Valid(a.body) && strings.ContainsAny(msg, "<>") {
			msg = http.StatusText(a.status)
		}
	}
	if e.ScimType != "" {
		msg = e.ScimType + ": " + msg
	}
	te := &target.Error{Status: a.status, Message: fmt.Sprintf("%s %s: %s", method, p, msg)}
	switch {
	case a.status == http.StatusUnauthorized || a.status == http.StatusForbidden:
		te.Err = target.ErrUnauthorized
		te.Message = fmt.Sprintf("%s %s: the application refused the token (the target's token is wrong, expired or lacks the rights): %s", method, p, msg)
	case a.status == http.StatusNotFound:
		te.Err = target.ErrNotFound
	case a.status == http.StatusConflict:
		te.Err = target.ErrUniqueness
	case strings.EqualFold(e.ScimType, "noTarget"):
		te.Err = errNoTarget
	}
	return te
}

// listResponse is a page of /Users.
type listResponse struct {
	TotalResults int              `json:"totalResults"`
	StartIndex   int              `json:"startIndex"`
	ItemsPerPage int              `json:"itemsPerPage"`
	Resources    []map[string]any `json:"Resources"`
}

func decode(method, p string, a answer, out any) error {
	if err := json.Unmarshal(a.body, out); err != nil {
		return &target.Error{Status: a.status, Message: fmt.Sprintf("%s %s: the answer is not SCIM JSON: %v", method, p, err), Err: err}
	}
	return nil
}

// filterValue quotes a value for a SCIM filter (RFC 7644 section 3.4.2.2:
// a JSON string).
func filterValue(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// queryEscape escapes a query value with %20 for a space: a "+" is a
// space only to form decoders, and a SCIM server need not be one.
func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func userPath(id string) string { return "/Users/" + url.PathEscape(id) }

// Find implements target.Client: a userName eq lookup each for a few
// names, one listing of every user for many.
//
// A server's eq filter may compare userName case-sensitively (SCIMMY
// does, though RFC 7643 says userName is not case-exact), so a lookup
// that misses does not prove the user is not there. When one misses, the
// client finds out once whether the filter ignores case: it looks a user
// it knows (one just found, or the first of the listing) up by its
// userName in swapped case. If the filter ignores case, misses are
// believed, now and from then on, at no further cost. If it does not,
// the missed names are looked for in one listing of every user. This is
// the cheapest way that does not create a second user beside one in
// other case: on a case-sensitive server, a listing per push that creates
// users; on an RFC one, two requests in the client's life. (Leaving it
// to the 409 a create would get is not enough: a server whose filter is
// case-sensitive may well not refuse "jdoe" beside "JDoe" either; SCIMMY
// alone does not.)
func (c *Client) Find(ctx context.Context, usernames []string) (map[string]target.User, error) {
	out := make(map[string]target.User, len(usernames))
	if len(usernames) == 0 {
		return out, nil
	}
	if len(usernames) > listAbove {
		return out, c.listFor(ctx, usernames, out)
	}
	var missed []string
	var sample *target.User // a user found, to learn whether the filter ignores case
	mustList := false
	for _, n := range usernames {
		u, ok, err := c.lookupName(ctx, n)
		var te *target.Error
		switch {
		case err != nil && errors.As(err, &te) && te.Status == http.StatusBadRequest:
			// The server cannot take this filter (a character its parser
			// refuses): look for the name in the listing.
			c.log.Debug("userName lookup refused; the name is looked for in the listing", zap.String("username", n), zap.Error(err))
			missed, mustList = append(missed, n), true
		case err != nil:
			return nil, err
		case ok:
			out[model.FoldUsername(n)] = u
			if sample == nil && swapCase(u.UserName) != u.UserName {
				sample = &u
			}
		default:
			missed = append(missed, n)
		}
	}
	if len(missed) == 0 {
		return out, nil
	}
	if !mustList {
		folds, err := c.filterFolds(ctx, sample)
		if err != nil {
			return nil, err
		}
		if folds {
			return out, nil
		}
	}
	return out, c.listFor(ctx, missed, out)
}

// lookupName looks one userName up with an eq filter, and compares the
// answers itself.
func (c *Client) lookupName(ctx context.Context, name string) (target.User, bool, error) {
	p := "/Users?filter=" + queryEscape("userName eq "+filterValue(name))
	a, err := c.do(ctx, http.MethodGet, p, nil, "")
	if err != nil {
		return target.User{}, false, err
	}
	var page listResponse
	if err := decode(http.MethodGet, p, a, &page); err != nil {
		return target.User{}, false, err
	}
	for _, res := range page.Resources {
		if u := c.user(res, ""); strings.EqualFold(u.UserName, name) {
			return u, true, nil
		}
	}
	return target.User{}, false, nil
}

// filterFolds reports whether a lookup that missed can be believed: the
// server's eq filter ignores case (learnt once, with sample or the first
// user the server lists), or it holds no user at all.
func (c *Client) filterFolds(ctx context.Context, sample *target.User) (bool, error) {
	switch c.fold.Load() {
	case foldYes:
		return true, nil
	case foldNo:
		return false, nil
	}
	if sample == nil {
		p := "/Users?startIndex=1&count=1"
		a, err := c.do(ctx, http.MethodGet, p, nil, "")
		if err != nil {
			return false, err
		}
		var page listResponse
		if err := decode(http.MethodGet, p, a, &page); err != nil {
			return false, err
		}
		if page.TotalResults == 0 {
			return true, nil // no user at all: nothing to miss
		}
		for _, res := range page.Resources {
			if u := c.user(res, ""); swapCase(u.UserName) != u.UserName {
				sample = &u
			}
		}
		if sample == nil {
			return false, nil // no letters to swap: learn another time
		}
	}
	u, ok, err := c.lookupName(ctx, swapCase(sample.UserName))
	if err != nil {
		// Cannot learn it now; the listing answers this time.
		c.log.Debug("could not learn how the SCIM server compares userName in filters", zap.Error(err))
		return false, nil
	}
	folds := ok && u.ID == sample.ID
	if folds {
		c.fold.Store(foldYes)
	} else {
		c.fold.Store(foldNo)
	}
	c.log.Debug("learnt how the SCIM server compares userName in filters", zap.Bool("ignores_case", folds))
	return folds, nil
}

// swapCase turns every lower-case letter of s upper-case and the others
// lower-case.
func swapCase(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLower(r) {
			return unicode.ToUpper(r)
		}
		return unicode.ToLower(r)
	}, s)
}

// listFor lists every user and keeps in out those whose userName is one
// of names, ignoring case.
func (c *Client) listFor(ctx context.Context, names []string, out map[string]target.User) error {
	want := make(map[string]string, len(names))
	for _, n := range names {
		want[model.FoldUsername(n)] = n
	}
	return c.List(ctx, func(u target.User) error {
		k := model.FoldUsername(u.UserName)
		n, ok := want[k]
		// A server that compares userName case-sensitively may hold
		// both jdoe and JDoe: the one spelt as asked wins.
		if ok && (out[k].ID == "" || u.UserName == n) {
			out[k] = u
		}
		return nil
	})
}

// List implements target.Client: every user, page by page. It stops on
// totalResults, never on an empty page: SCIMMY answers a startIndex past
// the end with the first page again.
func (c *Client) List(ctx context.Context, each func(target.User) error) error {
	for start := 1; ; {
		p := "/Users?startIndex=" + strconv.Itoa(start) + "&count=" + strconv.Itoa(pageSize)
		a, err := c.do(ctx, http.MethodGet, p, nil, "")
		if err != nil {
			return fmt.Errorf("list users from %d: %w", start, err)
		}
		var page listResponse
		if err := decode(http.MethodGet, p, a, &page); err != nil {
			return fmt.Errorf("list users from %d: %w", start, err)
		}
		if page.StartIndex != 0 && page.StartIndex != start {
			// A server that ignores startIndex would answer the first
			// page over and over.
			return &target.Error{Status: a.status, Message: fmt.Sprintf(
				"GET %s: the application answered the page from %d instead: it does not page /Users", p, page.StartIndex)}
		}
		for _, res := range page.Resources {
			if err := each(c.user(res, "")); err != nil {
				return err
			}
		}
		start += len(page.Resources)
		if len(page.Resources) == 0 || start > page.TotalResults {
			return nil
		}
	}
}

// Create implements target.Client.
func (c *Client) Create(ctx context.Context, p *model.Profile, active bool) (target.User, error) {
	// A create needs none of the server's features, but the next run's
	// updates do: learnt now, once, they are remembered (Memory), and a
	// re-sync sends nothing but its changes.
	if _, err := c.features(ctx); err != nil {
		return target.User{}, err
	}
	a, err := c.do(ctx, http.MethodPost, "/Users", c.resource(p, active), "")
	if err != nil {
		return target.User{}, err
	}
	var res map[string]any
	if err := decode(http.MethodPost, "/Users", a, &res); err != nil {
		return target.User{}, err
	}
	u := c.user(res, a.header.Get("ETag"))
	if u.ID == "" {
		return u, &target.Error{Status: a.status, Message: "POST /Users: the answer has no id"}
	}
	return u, nil
}

// read reads one user: the resource as the server holds it, and as a
// User.
func (c *Client) read(ctx context.Context, id string) (map[string]any, target.User, error) {
	p := userPath(id)
	a, err := c.do(ctx, http.MethodGet, p, nil, "")
	if err != nil {
		return nil, target.User{}, err
	}
	var res map[string]any
	if err := decode(http.MethodGet, p, a, &res); err != nil {
		return nil, target.User{}, err
	}
	return res, c.user(res, a.header.Get("ETag")), nil
}

// Update implements target.Client.
//
// With PATCH (RFC 7644 section 3.5.2) it sends one request: a path-less
// replace of every plain attribute that has a value (SCIMMY merges a
// complex attribute such as name into the user's, as the RFC allows), a
// replace by path of each filtered one (emails[type eq "work"].value: a
// path-less replace of emails would add a second work email on SCIMMY,
// not replace the first), and a remove of each that has no value. A
// server answers noTarget (400) when the user has no work email to
// replace; the client then reads the user and sends the PATCH that fits
// what it holds (add the element, remove only what is there).
//
// With PUT, it reads the user, sets the mapped attributes and sends it
// all back: a PUT replaces the whole user, and attributes seatsync does
// not map (the application's own) must survive it.
func (c *Client) Update(ctx context.Context, u target.User, p *model.Profile, active bool) (target.User, error) {
	f, err := c.features(ctx)
	if err != nil {
		return target.User{}, err
	}
	after := u
	after.UserName, after.Active, after.Attributes = p.Username, active, c.Render(p, active)
	if f.patch {
		return c.write(ctx, f, u, nil, after, http.MethodPatch, func(cur map[string]any) any {
			return c.patchOf(p, active, cur)
		})
	}
	cur, fresh, err := c.read(ctx, u.ID)
	if err != nil {
		return target.User{}, err
	}
	return c.write(ctx, f, fresh, cur, after, http.MethodPut, func(cur map[string]any) any {
		c.fill(cur, p, active)
		return cur
	})
}

// Deactivate implements target.Client.
func (c *Client) Deactivate(ctx context.Context, u target.User) (target.User, error) {
	f, err := c.features(ctx)
	if err != nil {
		return target.User{}, err
	}
	after := u
	after.Active = false
	if after.Attributes != nil {
		after.Attributes = maps.Clone(after.Attributes)
		after.Attributes["active"] = "false"
	}
	if f.patch {
		return c.write(ctx, f, u, nil, after, http.MethodPatch, func(map[string]any) any {
			return map[string]any{"schemas": []string{patchOp},
				"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": false}}}
		})
	}
	// PUT replaces the whole user: read it, and send it back inactive.
	cur, fresh, err := c.read(ctx, u.ID)
	if err != nil {
		return target.User{}, err
	}
	return c.write(ctx, f, fresh, cur, after, http.MethodPut, func(cur map[string]any) any {
		cur[keyOf(cur, "active")] = false
		delete(cur, keyOf(cur, "meta"))
		return cur
	})
}

// write sends a PATCH or PUT of user u, built by body from cur (the user
// as last read; nil when the client has not read it), with If-Match when
// the server keeps ETags. On a 412 (the user changed in the application
// since seatsync saw it) or a noTarget, it reads the user and sends once
// more. after is the user as it stands once written, for a server that
// answers 204 with no representation.
func (c *Client) write(ctx context.Context, f features, u target.User, cur map[string]any, after target.User,
	method string, body func(cur map[string]any) any) (target.User, error) {
	p := userPath(u.ID)
	for reread := false; ; reread = true {
		a, err := c.do(ctx, method, p, body(cur), ifMatch(f, u.ETag))
		if err == nil {
			return c.written(ctx, f, a, after)
		}
		if reread || a.status != http.StatusPreconditionFailed && !errors.Is(err, errNoTarget) {
			return target.User{}, err
		}
		if cur, u, err = c.read(ctx, u.ID); err != nil {
			return target.User{}, err
		}
	}
}

func ifMatch(f features, etag string) string {
	if f.etag {
		return etag
	}
	return ""
}

// written is the user a PATCH or PUT answered with. SCIMMY answers a
// PATCH that changes nothing with 204 and no body: then the user is
// after, and is read again only for an ETag the server keeps but did not
// send.
func (c *Client) written(ctx context.Context, f features, a answer, after target.User) (target.User, error) {
	if len(bytes.TrimSpace(a.body)) > 0 {
		var res map[string]any
		if err := json.Unmarshal(a.body, &res); err == nil {
			if u := c.user(res, a.header.Get("ETag")); u.ID != "" {
				return u, nil
			}
		}
	}
	if tag := a.header.Get("ETag"); tag != "" || !f.etag {
		after.ETag = tag
		return after, nil
	}
	_, u, err := c.read(ctx, after.ID)
	return u, err
}

// patchOf is the PATCH that makes a user hold p and the active flag. cur
// is the user as read, or nil when unknown: then the PATCH assumes that
// each filtered element is there to replace (it is, for a user seatsync
// created) and removes every attribute p has no value for (SCIMMY
// answers the remove of an absent attribute 204; a stricter server's
// noTarget makes the client read the user and send the PATCH for cur).
func (c *Client) patchOf(p *model.Profile, active bool, cur map[string]any) map[string]any {
	value := map[string]any{"active": active}
	var ops []any
	remove := func(path string) { ops = append(ops, map[string]any{"op": "remove", "path": path}) }
	for _, m := range c.plain {
		if v := field(p, m.field); v != "" {
			m.path.set(value, v)
		} else if cur == nil || m.path.get(cur) != "" {
			remove(m.name)
		}
	}
	for _, el := range c.elements {
		first := el[0].path
		exists := cur == nil || first.has(cur)
		var set map[string]any // the element's sub-attributes that have a value
		for _, m := range el {
			if v := field(p, m.field); v != "" {
				if set == nil {
					set = map[string]any{first.filterAttr: first.filterValue}
				}
				set[m.path.sub] = v
			}
		}
		switch {
		case set != nil && exists:
			for _, m := range el {
				if v := field(p, m.field); v != "" {
					ops = append(ops, map[string]any{"op": "replace", "path": m.name, "value": v})
				} else if cur == nil || m.path.get(cur) != "" {
					remove(m.name)
				}
			}
		case set != nil:
			if list, _ := lookup(cur, first.attr).([]any); len(list) == 0 {
				set["primary"] = true
			}
			ops = append(ops, map[string]any{"op": "add", "path": first.attr, "value": []any{set}})
		case exists:
			remove(first.element())
		}
	}
	ops = append([]any{map[string]any{"op": "replace", "value": value}}, ops...)
	return map[string]any{"schemas": []string{patchOp}, "Operations": ops}
}

// Delete implements target.Client. A 412 is answered by reading the user
// again (it is gone: done) and deleting it with its current ETag.
func (c *Client) Delete(ctx context.Context, u target.User) error {
	f, err := c.features(ctx)
	if err != nil {
		return err
	}
	p := userPath(u.ID)
	a, err := c.do(ctx, http.MethodDelete, p, nil, ifMatch(f, u.ETag))
	if a.status == http.StatusPreconditionFailed {
		var fresh target.User
		if _, fresh, err = c.read(ctx, u.ID); err == nil {
			_, err = c.do(ctx, http.MethodDelete, p, nil, ifMatch(f, fresh.ETag))
		}
	}
	if errors.Is(err, target.ErrNotFound) {
		return nil
	}
	return err
}
