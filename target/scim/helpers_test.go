package scim_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/internal/scimtest"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/target"
	"github.com/seatsync/seatsync/target/scim"
)

// targetConfig is a configured SCIM target for url, read from YAML as
// seatsync reads its file (token from the environment, tls.allow_insecure
// for the test server's http:// URL). extra is more keys of the target,
// indented by four spaces.
func targetConfig(t *testing.T, url, token, extra string) config.Target {
	t.Helper()
	yaml := fmt.Sprintf(`targets:
  - name: app
    type: scim
    url: %s
    token: ${SCIM_TOKEN}
    tls: {allow_insecure: true}
%s`, url, extra)
	cfg, err := config.ParseWith([]byte(base+yaml), filepath.Join(t.TempDir(), "seatsync.yaml"), func(k string) (string, bool) {
		if k == "SCIM_TOKEN" {
			return token, true
		}
		return "", false
	}, plugins())
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg.Targets[0]
}

// open opens a client of the server at url (s.URL(), or a proxy in front
// of it) with the server's token.
func open(t *testing.T, s *scimtest.Server, url, extra string) *scim.Client {
	t.Helper()
	return openToken(t, url, s.Token(), extra)
}

// openToken opens a client with token. Unless extra says otherwise, it
// keeps no pace (the default 10 a second would make the tests slow).
func openToken(t *testing.T, url, token, extra string) *scim.Client {
	t.Helper()
	if !strings.Contains(extra, "max_requests_per_second") {
		extra += "    max_requests_per_second: 0\n"
	}
	c, err := scim.Kind.Open(targetConfig(t, url, token, extra), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return c.(*scim.Client)
}

// person is a profile with every field the default mapping sends.
func person(name string) *model.Profile {
	return &model.Profile{Username: name, ExternalID: "E-" + name, Email: name + "@example.com",
		GivenName: "Given-" + name, FamilyName: "Family", DisplayName: "Display " + name,
		Title: "Engineer", Department: "R&D", Area: "primary", State: model.Active, Source: "hr"}
}

// raw sends one SCIM request to s as another client of the application
// would (with the token; not counted, no faults) and decodes the answer.
func raw(t *testing.T, s *scimtest.Server, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.Token())
	req.Header.Set("Content-Type", "application/scim+json")
	req.Header.Set("X-Scimtest-Uncounted", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, m
}

// rawUser is what the server holds for userName name (ignoring case), as
// decoded JSON; it fails the test when there is none.
func rawUser(t *testing.T, s *scimtest.Server, name string) map[string]any {
	t.Helper()
	u := s.UserByName(name)
	if u == nil {
		t.Fatalf("the server has no user %q", name)
	}
	var m map[string]any
	if err := json.Unmarshal(u.Raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// workEmails are the values of u's emails of type work.
func workEmails(u scimtest.User) []string {
	var out []string
	for _, e := range u.Emails {
		if e.Type == "work" {
			out = append(out, e.Value)
		}
	}
	return out
}

// noPatch is a reverse proxy in front of s whose /ServiceProviderConfig
// says patch.supported: false, for the client's PUT path (the harness has
// no option for it). It returns the SCIM base URL through the proxy.
func noPatch(t *testing.T, s *scimtest.Server) string {
	t.Helper()
	return proxy(t, s, func(r *http.Response) error {
		if !strings.HasSuffix(r.Request.URL.Path, "/ServiceProviderConfig") || r.StatusCode != http.StatusOK {
			return nil
		}
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return err
		}
		var spc map[string]any
		if err := json.Unmarshal(b, &spc); err != nil {
			return err
		}
		spc["patch"] = map[string]any{"supported": false}
		if b, err = json.Marshal(spc); err != nil {
			return err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		r.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	})
}

// proxy is a reverse proxy in front of s that hands each answer to
// modify before the client gets it. It returns the SCIM base URL through
// the proxy.
func proxy(t *testing.T, s *scimtest.Server, modify func(*http.Response) error) string {
	t.Helper()
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	rp.ModifyResponse = modify
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL + u.Path
}

// requests are the counters' requests, without the kinds never sent.
func requests(c scimtest.Counters) map[string]int {
	out := map[string]int{}
	for k, n := range c.Requests {
		if n > 0 {
			out[k] = n
		}
	}
	return out
}

func asError(t *testing.T, err error) *target.Error {
	t.Helper()
	var te *target.Error
	if !errors.As(err, &te) {
		t.Fatalf("%v (%T) is not a *target.Error", err, err)
	}
	return te
}
