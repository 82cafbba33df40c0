package oktatest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, s *Server, path, auth string) (*http.Response, []map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+path, nil)
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []map[string]any
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
	}
	return resp, out
}

func TestPagingAndHeaders(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 0, 30, 0, time.UTC)
	s := New(Options{Now: func() time.Time { return now }, RateLimit: 3})
	defer s.Close()
	for i := 0; i < 5; i++ {
		s.AddUsers(User{Profile: map[string]any{"login": fmt.Sprint(i)}})
	}
	resp, us := get(t, s, "/api/v1/users?limit=2", "SSWS "+s.Token())
	if len(us) != 2 {
		t.Fatalf("page 1: %d users", len(us))
	}
	links := strings.Join(resp.Header.Values("Link"), ", ")
	if !strings.Contains(links, `rel="self"`) || !strings.Contains(links, `after=`+us[1]["id"].(string)) {
		t.Errorf("Link %s", links)
	}
	if resp.Header.Get("X-Rate-Limit-Limit") != "3" || resp.Header.Get("X-Rate-Limit-Remaining") != "2" ||
		resp.Header.Get("X-Rate-Limit-Reset") != fmt.Sprint(now.Add(time.Minute).Unix()) || resp.Header.Get("Date") == "" {
		t.Errorf("headers %v", resp.Header)
	}
	get(t, s, "/api/v1/users", "SSWS "+s.Token())
	get(t, s, "/api/v1/users", "SSWS "+s.Token())
	resp, _ = get(t, s, "/api/v1/users", "SSWS "+s.Token())
	if resp.StatusCode != 429 {
		t.Errorf("4th request in a minute with limit 3: %d", resp.StatusCode)
	}
	if resp, _ := get(t, s, "/api/v1/groups", "SSWS wrong"); resp.StatusCode != 401 {
		t.Errorf("bad token: %d", resp.StatusCode)
	}
	if c := s.Counts(); c[EndpointUsers] != 4 || c["429"] != 1 || c[EndpointGroups] != 1 {
		t.Errorf("counts %v", c)
	}
}

func TestFilter(t *testing.T) {
	s := New(Options{RateLimit: -1})
	defer s.Close()
	s.AddUsers(User{Status: "SUSPENDED", Profile: map[string]any{"department": "Sales"}},
		User{Profile: map[string]any{"department": "Sales"}}, User{Status: "DEPROVISIONED"})
	for q, want := range map[string]int{
		"":                                     2,
		`filter=status eq "ACTIVE"`:            1,
		`filter=status eq "DEPROVISIONED"`:     1,
		`search=profile.department eq "Sales"`: 2,
		`search=profile.department sw "sa" and status eq "ACTIVE"`: 1,
	} {
		k, v, _ := strings.Cut(q, "=")
		path := "/api/v1/users"
		if q != "" {
			path += "?" + url.Values{k: {v}}.Encode()
		}
		resp, us := get(t, s, path, "SSWS "+s.Token())
		if resp.StatusCode != 200 || len(us) != want {
			t.Errorf("%s: %d, %d users; want %d", q, resp.StatusCode, len(us), want)
		}
	}
	resp, _ := get(t, s, "/api/v1/users?"+url.Values{"filter": {`profile.department eq "Sales"`}}.Encode(), "SSWS "+s.Token())
	if resp.StatusCode != 400 {
		t.Errorf("filter on a custom attribute: %d, want 400", resp.StatusCode)
	}
}

func assertion(t *testing.T, key *rsa.PrivateKey, iss, aud string) string {
	t.Helper()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "RS256"}) + "." +
		enc(map[string]any{"iss": iss, "sub": iss, "aud": aud, "exp": time.Now().Add(time.Hour).Unix()})
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestTokenEndpoint(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	s.AddClient("0oa1", &key.PublicKey, "okta.users.read")
	token := func(k *rsa.PrivateKey, scope string) (int, map[string]any) {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {assertion(t, k, "0oa1", s.URL+"/oauth2/v1/token")}}
		resp, err := http.PostForm(s.URL+"/oauth2/v1/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, out := token(other, "okta.users.read"); code != 401 || out["error"] != "invalid_client" {
		t.Errorf("wrong key: %d %v", code, out)
	}
	if code, out := token(key, "okta.groups.read"); code != 400 || out["error"] != "invalid_scope" {
		t.Errorf("ungranted scope: %d %v", code, out)
	}
	code, out := token(key, "okta.users.read")
	if code != 200 {
		t.Fatalf("token: %d %v", code, out)
	}
	bearer := "Bearer " + out["access_token"].(string)
	if resp, _ := get(t, s, "/api/v1/users", bearer); resp.StatusCode != 200 {
		t.Errorf("users with the access token: %d", resp.StatusCode)
	}
	if resp, _ := get(t, s, "/api/v1/groups", bearer); resp.StatusCode != 403 {
		t.Errorf("groups without okta.groups.read: %d, want 403", resp.StatusCode)
	}
}
