package scimtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
)

// client is a bare SCIM client for these tests: it sends what it is
// given and returns what came back, so that the tests see the server's
// answers as they are.
type client struct {
	tb    testing.TB
	base  string
	token string
	hc    *http.Client
}

func newClient(tb testing.TB, s *Server) *client {
	return &client{tb: tb, base: s.URL(), token: s.Token(), hc: &http.Client{}}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// decode decodes the body into v, failing the test when it is not JSON.
func (r *response) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %d answer: %v: %s", r.Status, err, r.Body)
	}
}

// scimError is a SCIM error body (RFC 7644 section 3.12).
type scimError struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType"`
	Detail   string   `json:"detail"`
}

func (r *response) scimError(tb testing.TB) scimError {
	tb.Helper()
	var e scimError
	r.decode(tb, &e)
	if len(e.Schemas) != 1 || e.Schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" {
		tb.Errorf("error body schemas = %v: %s", e.Schemas, r.Body)
	}
	if e.Status != fmt.Sprint(r.Status) {
		tb.Errorf("error body status %q, HTTP status %d", e.Status, r.Status)
	}
	return e
}

func (r *response) user(tb testing.TB) User {
	tb.Helper()
	var u User
	r.decode(tb, &u)
	u.Raw = r.Body
	return u
}

// listPage is a ListResponse.
type listPage struct {
	TotalResults int    `json:"totalResults"`
	StartIndex   int    `json:"startIndex"`
	ItemsPerPage int    `json:"itemsPerPage"`
	Resources    []User `json:"Resources"`
}

// req sends one request with the bearer token; header is name, value pairs.
func (c *client) req(method, path string, body any, header ...string) *response {
	c.tb.Helper()
	var rd io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				c.tb.Fatal(err)
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.tb.Fatal(err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// must sends a request and fails the test unless the answer has status want.
func (c *client) must(want int, method, path string, body any, header ...string) *response {
	c.tb.Helper()
	r := c.req(method, path, body, header...)
	if r.Status != want {
		c.tb.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

func (c *client) create(u map[string]any) User {
	c.tb.Helper()
	return c.must(http.StatusCreated, http.MethodPost, "/Users", u).user(c.tb)
}

func (c *client) list(query url.Values) listPage {
	c.tb.Helper()
	var p listPage
	c.must(http.StatusOK, http.MethodGet, "/Users?"+query.Encode(), nil).decode(c.tb, &p)
	return p
}

func (c *client) filter(f string) listPage {
	c.tb.Helper()
	return c.list(url.Values{"filter": {f}})
}

func patchOp(ops ...map[string]any) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops}
}

func op(name, path string, value any) map[string]any {
	m := map[string]any{"op": name}
	if path != "" {
		m["path"] = path
	}
	if value != nil {
		m["value"] = value
	}
	return m
}

func names(users []User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.UserName
	}
	return out
}
