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

// ids lists the ids of a page of users or the uuids of events.
func ids(items []map[string]any, key string) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, it[key].(string))
	}
	return out
}

func query(path string, params ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		v.Set(params[i], params[i+1])
	}
	return path + "?" + v.Encode()
}

func TestLastUpdatedFilters(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	s := New(Options{Now: func() time.Time { return now }, RateLimit: -1})
	defer s.Close()
	auth := "SSWS " + s.Token()
	a := s.AddUsers(User{Profile: map[string]any{"login": "a"}})[0]
	now = now.Add(time.Minute)
	b := s.AddUsers(User{Profile: map[string]any{"login": "b"}, Groups: []string{"G"}})[0]
	now = now.Add(time.Minute)
	// A profile change moves lastUpdated; a membership change does not.
	s.UpdateUser(a, func(u *User) { u.Profile["title"] = "Boss" })
	s.UpdateUser(b, func(u *User) { u.Groups = nil })
	now = now.Add(time.Minute)
	c := s.AddUsers(User{Profile: map[string]any{"login": "c"}, Status: "DEPROVISIONED"})[0]

	for _, tt := range []struct {
		param, expr string
		want        []string
	}{
		{"filter", `lastUpdated gt "2026-01-01T10:01:00.000Z"`, []string{a}},
		{"filter", `lastUpdated ge "2026-01-01T10:01:00.000Z"`, []string{a, b}},
		{"filter", `lastUpdated lt "2026-01-01T10:02:00.000Z"`, []string{b}},
		{"filter", `lastUpdated gt "2026-01-01T10:00:00.000Z"`, []string{a, b}},
		{"filter", `status eq "DEPROVISIONED" and lastUpdated gt "2026-01-01T10:00:00.000Z"`, []string{c}},
		{"filter", `lastUpdated gt "2026-01-01T09:00:00.000Z" and (status eq "ACTIVE" or status eq "DEPROVISIONED")`, []string{a, b, c}},
		{"filter", `(profile.login eq "a" or profile.login eq "c") and lastUpdated gt "2026-01-01T09:00:00.000Z"`, []string{a}},
		{"filter", `(id eq "` + a + `" or id eq "` + b + `")`, []string{a, b}},
		{"search", `lastUpdated gt "2026-01-01T10:01:30.000Z" and profile.title eq "Boss"`, []string{a}},
		{"search", `status ne "ACTIVE"`, []string{c}},
	} {
		resp, us := get(t, s, query("/api/v1/users", tt.param, tt.expr), auth)
		if resp.StatusCode != 200 {
			t.Errorf("%s=%s: status %d", tt.param, tt.expr, resp.StatusCode)
			continue
		}
		if got := strings.Join(ids(us, "id"), " "); got != strings.Join(tt.want, " ") {
			t.Errorf("%s=%s: got %s, want %s", tt.param, tt.expr, got, strings.Join(tt.want, " "))
		}
	}
	for _, tt := range []struct{ param, expr string }{
		{"filter", `lastUpdated gt "yesterday"`},
		{"filter", `profile.title eq "Boss"`},
		{"filter", `(status eq "ACTIVE"`},
		{"filter", `status gt "ACTIVE"`},
	} {
		if resp, _ := get(t, s, query("/api/v1/users", tt.param, tt.expr), auth); resp.StatusCode != 400 {
			t.Errorf("%s=%s: status %d, want 400", tt.param, tt.expr, resp.StatusCode)
		}
	}
	resp, us := get(t, s, "/api/v1/users", auth)
	if resp.StatusCode != 200 || len(us) != 2 {
		t.Errorf("plain list: %d users, want the 2 that are not DEPROVISIONED", len(us))
	}
	if us[0]["lastUpdated"] != "2026-01-01T10:02:00.000Z" || us[1]["lastUpdated"] != "2026-01-01T10:01:00.000Z" {
		t.Errorf("lastUpdated = %v, %v", us[0]["lastUpdated"], us[1]["lastUpdated"])
	}
}

func TestSystemLog(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	s := New(Options{Now: func() time.Time { return now }, RateLimit: -1})
	defer s.Close()
	auth := "SSWS " + s.Token()
	var users []string
	for i := 0; i < 5; i++ {
		now = now.Add(time.Second)
		users = append(users, s.AddUsers(User{Profile: map[string]any{"login": fmt.Sprint(i)}})[0])
	}
	now = now.Add(time.Second)
	for _, id := range users[:3] {
		s.DeleteUser(id)
	}
	now = now.Add(time.Second)
	if s.DeleteUser(users[0]) {
		t.Error("a deleted user was deleted again")
	}
	if resp, us := get(t, s, "/api/v1/users", auth); resp.StatusCode != 200 || len(us) != 2 {
		t.Errorf("after 3 deletes: %d users, want 2", len(us))
	}

	// Bounded: pages end.
	filter := `eventType eq "user.lifecycle.delete.completed"`
	path := query("/api/v1/logs", "since", "2026-01-01T10:00:00.000Z", "until", now.Format(time.RFC3339), "filter", filter, "limit", "2")
	var got []string
	for n := 0; path != ""; n++ {
		if n > 5 {
			t.Fatal("the pages of a bounded request do not end")
		}
		resp, evs := get(t, s, path, auth)
		if resp.StatusCode != 200 {
			t.Fatalf("logs: %d", resp.StatusCode)
		}
		for _, e := range evs {
			ts := e["target"].([]any)
			got = append(got, ts[0].(map[string]any)["id"].(string))
			if e["eventType"] != "user.lifecycle.delete.completed" || ts[0].(map[string]any)["type"] != "User" {
				t.Errorf("event %v", e)
			}
		}
		path = ""
		for _, l := range resp.Header.Values("Link") {
			if strings.HasSuffix(l, `rel="next"`) {
				path = strings.TrimPrefix(strings.Split(l, ">")[0], "<"+s.URL)
			}
		}
	}
	if strings.Join(got, " ") != strings.Join(users[:3], " ") {
		t.Errorf("deleted %v, want %v", got, users[:3])
	}

	// Polling: a next link even when there is nothing more.
	resp, evs := get(t, s, query("/api/v1/logs", "since", now.Format(time.RFC3339), "filter", filter), auth)
	if resp.StatusCode != 200 || len(evs) != 0 || !strings.Contains(strings.Join(resp.Header.Values("Link"), ","), `rel="next"`) {
		t.Errorf("polling request: %d, %d events, links %v", resp.StatusCode, len(evs), resp.Header.Values("Link"))
	}

	// since: events older than it are left out; older than 90 days gone.
	_, evs = get(t, s, query("/api/v1/logs", "since", "2026-01-01T10:00:04Z", "until", now.Format(time.RFC3339), "filter", `eventType sw "user.lifecycle.create"`), auth)
	if len(evs) != 2 {
		t.Errorf("created since 10:00:04: %d events, want 2", len(evs))
	}
	now = now.Add(LogRetention)
	_, evs = get(t, s, query("/api/v1/logs", "since", "2025-01-01T00:00:00Z", "until", now.Format(time.RFC3339)), auth)
	if len(evs) != 0 {
		t.Errorf("after 90 days: %d events, want none", len(evs))
	}

	s.DenyLogs(true)
	req, _ := http.NewRequest("GET", s.URL+"/api/v1/logs", nil)
	req.Header.Set("Authorization", auth)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	if r.StatusCode != 403 || body["errorCode"] != "E0000006" || body["errorSummary"] == "" {
		t.Errorf("DenyLogs: %d %v", r.StatusCode, body)
	}
	if resp, _ := get(t, s, "/api/v1/users", auth); resp.StatusCode != 200 {
		t.Errorf("DenyLogs also took the users: %d", resp.StatusCode)
	}
}

func TestMembershipEvents(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	s := New(Options{Now: func() time.Time { return now }, RateLimit: -1})
	defer s.Close()
	id := s.AddUsers(User{Profile: map[string]any{"login": "a"}, Groups: []string{"A"}})[0]
	s.UpdateUser(id, func(u *User) { u.Groups = []string{"B"} })
	var got []string
	for _, e := range s.Events() {
		got = append(got, e.EventType)
		if strings.HasPrefix(e.EventType, "group.") && (len(e.Targets) != 2 || e.Targets[0].ID != id || e.Targets[1].Type != "UserGroup") {
			t.Errorf("membership event targets %+v", e.Targets)
		}
	}
	want := "user.lifecycle.create group.user_membership.add group.user_membership.remove group.user_membership.add"
	if strings.Join(got, " ") != want {
		t.Errorf("events %v, want %s", got, want)
	}
}
