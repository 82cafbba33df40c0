// Package scim is the SCIM 2.0 target type (`type: scim`, RFC 7643 and
// RFC 7644): a small client of the /Users endpoint on net/http.
//
// It reads /ServiceProviderConfig once and sends PATCH when the server
// supports it (PUT otherwise), and If-Match when it keeps ETags (a 412 is
// answered by reading the user again and retrying once). Booleans go as
// JSON booleans. A 429 is waited out (Retry-After) up to the target's
// timeout; requests are paced at max_requests_per_second. Every filter it
// sends is well formed, and it never relies on a server comparing
// userName case-insensitively: it compares the answers itself.
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
	"time"

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

// Client is a target.Client for one SCIM application.
type Client struct {
	name    string
	base    *url.URL
	token   config.Secret
	http    *http.Client
	timeout time.Duration
	limit   *rate.Limiter
	paths   []mapped
	log     *zap.Logger

	// spcMu guards the reading of /ServiceProviderConfig; patch and etag
	// are set once, before spcRead.
	spcMu   sync.Mutex
	spcRead bool
	patch   bool
	etag    bool
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
	tr.MaxIdleConnsPerHost = target.Workers
	c := &Client{
		name: t.Name, base: base, token: s.Token, timeout: t.Timeout.Duration, log: log,
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
		c.paths = append(c.paths, mapped{name: name, path: p, field: s.Attributes[name]})
	}
	return c, nil
}

// field reads a profile field by its configuration name.
func field(p *model.Profile, name string) string {
	switch name {
	case "username":
		return p.Username
	case "external_id":
		return p.ExternalID
	case "email":
		return p.Email
	case "given_name":
		return p.GivenName
	case "family_name":
		return p.FamilyName
	case "display_name":
		return p.DisplayName
	case "title":
		return p.Title
	case "department":
		return p.Department
	case "area":
		return p.Area
	}
	return ""
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

// resource is the SCIM User seatsync sends for p.
func (c *Client) resource(p *model.Profile, active bool) map[string]any {
	res := map[string]any{"active": active}
	schemas := []string{coreUser}
	for _, m := range c.paths {
		v := field(p, m.field)
		if v == "" {
			continue
		}
		m.path.set(res, v)
		if m.path.schema != "" && !slices.Contains(schemas, m.path.schema) {
			schemas = append(schemas, m.path.schema)
		}
	}
	res["schemas"] = schemas
	return res
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

// serviceProvider reads /ServiceProviderConfig once: PATCH and ETag
// support. A server without one (it refuses the request for good, as
// with a 404) gets PUT and no If-Match. A refused token, an unreachable
// server, a 5xx or a 429 is the request's error, and the next request
// asks again.
func (c *Client) serviceProvider(ctx context.Context) error {
	c.spcMu.Lock()
	defer c.spcMu.Unlock()
	if c.spcRead {
		return nil
	}
	var spc struct {
		Patch struct {
			Supported bool `json:"supported"`
		} `json:"patch"`
		Etag struct {
			Supported bool `json:"supported"`
		} `json:"etag"`
	}
	_, _, err := c.do(ctx, http.MethodGet, "/ServiceProviderConfig", nil, "", &spc)
	switch {
	case err == nil:
		c.patch, c.etag = spc.Patch.Supported, spc.Etag.Supported
	case target.Permanent(err):
		c.log.Warn("the SCIM server has no /ServiceProviderConfig; using PUT and no ETags", zap.Error(err))
	default:
		return err
	}
	c.spcRead = true
	return nil
}

// do sends one request and decodes a 2xx answer's body into out (when
// not nil). Every other answer is a *target.Error naming the
// application's own message. A 429 is waited out and sent again while the
// target's timeout allows.
func (c *Client) do(ctx context.Context, method, p string, body any, ifMatch string, out any) (int, http.Header, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return 0, nil, err
		}
	}
	deadline := time.Now().Add(c.timeout)
	for {
		if err := c.limit.Wait(ctx); err != nil {
			return 0, nil, err
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		status, hdr, data, err := c.send(rctx, method, p, payload, ifMatch)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return 0, nil, ctx.Err()
			}
			return 0, nil, &target.Error{Message: fmt.Sprintf("%s %s: %v", method, p, err)}
		}
		if status == http.StatusTooManyRequests {
			wait := retryAfter(hdr.Get("Retry-After"))
			if time.Now().Add(wait).After(deadline) {
				return status, hdr, &target.Error{Status: status, Message: fmt.Sprintf(
					"rate limited: the server asks to wait %s, more than the %s timeout allows", wait, c.timeout)}
			}
			c.log.Info("rate limited by the application; waiting", zap.Duration("retry_after", wait))
			select {
			case <-time.After(wait):
				continue
			case <-ctx.Done():
				return 0, nil, ctx.Err()
			}
		}
		if status/100 != 2 {
			return status, hdr, answerError(method, p, status, data)
		}
		if out != nil && len(data) > 0 {
			if err := json.Unmarshal(data, out); err != nil {
				return status, hdr, &target.Error{Status: status, Message: fmt.Sprintf("%s %s: the answer is not SCIM JSON: %v", method, p, err)}
			}
		}
		return status, hdr, nil
	}
}

func (c *Client) send(ctx context.Context, method, p string, payload []byte, ifMatch string) (int, http.Header, []byte, error) {
	u := *c.base
	rel, err := url.Parse(p)
	if err != nil {
		return 0, nil, nil, err
	}
	u.Path = strings.TrimRight(u.Path, "/") + rel.Path
	u.RawQuery = rel.RawQuery
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return 0, nil, nil, err
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
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, data, nil
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
func answerError(method, p string, status int, data []byte) error {
	var e struct {
		Detail   string `json:"detail"`
		ScimType string `json:"scimType"`
	}
	_ = json.Unmarshal(data, &e)
	msg := strings.TrimSpace(e.Detail)
	if msg == "" {
		msg = strings.TrimSpace(string(data))
		if len(msg) > 200 || !json.Valid(data) && strings.ContainsAny(msg, "<>") {
			msg = http.StatusText(status)
		}
	}
	if e.ScimType != "" {
		msg = e.ScimType + ": " + msg
	}
	te := &target.Error{Status: status, Message: fmt.Sprintf("%s %s: %s", method, p, msg)}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		te.Err = target.ErrUnauthorized
		te.Message = fmt.Sprintf("%s %s: the application refused the token (HTTP %d): %s", method, p, status, msg)
	case status == http.StatusNotFound:
		te.Err = target.ErrNotFound
	case status == http.StatusConflict:
		te.Err = target.ErrUniqueness
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

// filterValue quotes a value for a SCIM filter (RFC 7644 section 3.4.2.2:
// a JSON string).
func filterValue(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Find implements target.Client: a userName eq lookup each for a few
// names, one listing of every user for many.
func (c *Client) Find(ctx context.Context, usernames []string) (map[string]target.User, error) {
	out := map[string]target.User{}
	if len(usernames) == 0 {
		return out, nil
	}
	if len(usernames) > listAbove {
		want := make(map[string]bool, len(usernames))
		for _, n := range usernames {
			want[model.FoldUsername(n)] = true
		}
		err := c.List(ctx, func(u target.User) error {
			if k := model.FoldUsername(u.UserName); want[k] {
				out[k] = u
			}
			return nil
		})
		return out, err
	}
	for _, n := range usernames {
		var page listResponse
		q := url.Values{"filter": {"userName eq " + filterValue(n)}}
		if _, _, err := c.do(ctx, http.MethodGet, "/Users?"+q.Encode(), nil, "", &page); err != nil {
			return nil, err
		}
		for _, res := range page.Resources {
			if u := c.user(res, ""); strings.EqualFold(u.UserName, n) {
				out[model.FoldUsername(n)] = u
			}
		}
	}
	return out, nil
}

// List implements target.Client: every user, page by page.
func (c *Client) List(ctx context.Context, each func(target.User) error) error {
	start := 1
	for {
		var page listResponse
		q := url.Values{"startIndex": {strconv.Itoa(start)}, "count": {strconv.Itoa(pageSize)}}
		if _, _, err := c.do(ctx, http.MethodGet, "/Users?"+q.Encode(), nil, "", &page); err != nil {
			return fmt.Errorf("list users from %d: %w", start, err)
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
	var res map[string]any
	_, hdr, err := c.do(ctx, http.MethodPost, "/Users", c.resource(p, active), "", &res)
	if err != nil {
		return target.User{}, err
	}
	u := c.user(res, hdr.Get("ETag"))
	if u.ID == "" {
		return u, &target.Error{Status: http.StatusCreated, Message: "POST /Users: the answer has no id"}
	}
	return u, nil
}

// get reads one user.
func (c *Client) get(ctx context.Context, id string) (target.User, error) {
	var res map[string]any
	_, hdr, err := c.do(ctx, http.MethodGet, "/Users/"+url.PathEscape(id), nil, "", &res)
	if err != nil {
		return target.User{}, err
	}
	return c.user(res, hdr.Get("ETag")), nil
}

// Update implements target.Client.
func (c *Client) Update(ctx context.Context, u target.User, p *model.Profile, active bool) (target.User, error) {
	return c.write(ctx, u, func(u target.User) (string, any) {
		if c.patch {
			return http.MethodPatch, c.patchOf(p, active)
		}
		res := c.resource(p, active)
		res["id"] = u.ID
		return http.MethodPut, res
	})
}

// Deactivate implements target.Client.
func (c *Client) Deactivate(ctx context.Context, u target.User) (target.User, error) {
	if err := c.serviceProvider(ctx); err != nil {
		return target.User{}, err
	}
	if !c.patch {
		// PUT replaces the whole user: read it, and send it back inactive.
		var res map[string]any
		_, hdr, err := c.do(ctx, http.MethodGet, "/Users/"+url.PathEscape(u.ID), nil, "", &res)
		if err != nil {
			return target.User{}, err
		}
		u.ETag = c.user(res, hdr.Get("ETag")).ETag
		return c.write(ctx, u, func(target.User) (string, any) {
			res["active"] = false
			delete(res, "meta")
			return http.MethodPut, res
		})
	}
	return c.write(ctx, u, func(target.User) (string, any) {
		return http.MethodPatch, map[string]any{"schemas": []string{patchOp},
			"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": false}}}
	})
}

// write sends a PATCH or PUT of user u, with If-Match when the server
// keeps ETags; on a 412 it reads the user again and retries once.
func (c *Client) write(ctx context.Context, u target.User, body func(target.User) (string, any)) (target.User, error) {
	if err := c.serviceProvider(ctx); err != nil {
		return target.User{}, err
	}
	for attempt := 0; ; attempt++ {
		method, b := body(u)
		ifMatch := ""
		if c.etag {
			ifMatch = u.ETag
		}
		var res map[string]any
		status, hdr, err := c.do(ctx, method, "/Users/"+url.PathEscape(u.ID), b, ifMatch, &res)
		if status == http.StatusPreconditionFailed && attempt == 0 {
			// Changed in the application since seatsync last saw it.
			fresh, gerr := c.get(ctx, u.ID)
			if gerr != nil {
				return target.User{}, gerr
			}
			u = fresh
			continue
		}
		if err != nil {
			return target.User{}, err
		}
		if status == http.StatusNoContent || res == nil {
			// 204: no representation came back; read it for its ETag.
			return c.get(ctx, u.ID)
		}
		return c.user(res, hdr.Get("ETag")), nil
	}
}

// patchOf is the PATCH that makes a user hold p: one replace of every
// attribute that has a value (RFC 7644 section 3.5.2.3, no path), and a
// remove of each that has none.
//
// A multi-valued attribute (emails) goes in a replace of its own, with
// its name as the path: RFC 7644 replaces all its values either way, but
// SCIMMY, given it in a replace without a path, adds the values to those
// the user has, so a changed email would leave the old one beside it.
func (c *Client) patchOf(p *model.Profile, active bool) map[string]any {
	value := c.resource(p, active)
	delete(value, "schemas")
	ops := []any{map[string]any{"op": "replace", "value": value}}
	for _, m := range c.paths {
		if v, ok := value[m.path.attr]; ok && m.path.filterAttr != "" && m.path.schema == "" {
			delete(value, m.path.attr)
			ops = append(ops, map[string]any{"op": "replace", "path": m.path.attr, "value": v})
		}
	}
	for _, m := range c.paths {
		if field(p, m.field) == "" {
			ops = append(ops, map[string]any{"op": "remove", "path": m.name})
		}
	}
	return map[string]any{"schemas": []string{patchOp}, "Operations": ops}
}

// Delete implements target.Client.
func (c *Client) Delete(ctx context.Context, u target.User) error {
	if err := c.serviceProvider(ctx); err != nil {
		return err
	}
	ifMatch := ""
	if c.etag {
		ifMatch = u.ETag
	}
	status, _, err := c.do(ctx, http.MethodDelete, "/Users/"+url.PathEscape(u.ID), nil, ifMatch, nil)
	if status == http.StatusPreconditionFailed {
		status, _, err = c.do(ctx, http.MethodDelete, "/Users/"+url.PathEscape(u.ID), nil, "", nil)
	}
	if errors.Is(err, target.ErrNotFound) || status == http.StatusNotFound {
		return nil
	}
	return err
}
