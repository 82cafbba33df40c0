package scimtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const userSchema = "urn:ietf:params:scim:schemas:core:2.0:User"

func jdoe() map[string]any {
	return map[string]any{
		"schemas":     []string{userSchema, EnterpriseSchema},
		"userName":    "JDoe",
		"externalId":  "emp-0042",
		"active":      true,
		"name":        map[string]any{"givenName": "John", "familyName": "Doe"},
		"displayName": "John Doe",
		"title":       "Engineer",
		"emails":      []map[string]any{{"type": "work", "value": "jdoe@example.com", "primary": true}},
		EnterpriseSchema: map[string]any{
			"department":     "R&D",
			"employeeNumber": "42",
		},
	}
}

func numbered(i int, active bool) map[string]any {
	return map[string]any{"userName": fmt.Sprintf("user%03d", i), "active": active}
}

// TestCreateGet: what a create stores is what a read answers, with the
// server's id and meta.
func TestCreateGet(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	c := newClient(t, s)

	created := c.create(jdoe())
	if created.ID == "" || len(created.ID) != 36 {
		t.Errorf("id %q, want a UUID", created.ID)
	}
	if want := s.URL() + "/Users/" + created.ID; created.Meta.Location != want {
		t.Errorf("meta.location %q, want %q", created.Meta.Location, want)
	}
	if created.Meta.ResourceType != "User" || created.Meta.Created.IsZero() || !created.Meta.LastModified.Equal(created.Meta.Created) ||
		!strings.HasPrefix(created.Meta.Version, `W/"`) {
		t.Errorf("meta %+v", created.Meta)
	}

	got := c.must(http.StatusOK, http.MethodGet, "/Users/"+created.ID, nil).user(t)
	want := created
	want.Raw, got.Raw = nil, nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET differs from the create's answer (-create +get):\n%s", diff)
	}
	if got.Active == nil || !*got.Active || got.Name == nil || got.Name.GivenName != "John" ||
		len(got.Emails) != 1 || got.Emails[0] != (Email{Value: "jdoe@example.com", Type: "work", Primary: true}) ||
		got.Enterprise == nil || got.Enterprise.Department != "R&D" || got.Enterprise.EmployeeNumber != "42" ||
		got.ExternalID != "emp-0042" || got.Title != "Engineer" {
		t.Errorf("stored user: %s", c.must(http.StatusOK, http.MethodGet, "/Users/"+created.ID, nil).Body)
	}
	if !contains(got.Schemas, EnterpriseSchema) {
		t.Errorf("schemas %v lack the enterprise extension", got.Schemas)
	}

	// An id or meta in the body is the server's to set, not the client's.
	other := c.create(map[string]any{"userName": "other", "id": "mine", "meta": map[string]any{"created": "1999-01-01T00:00:00Z"}})
	if other.ID == "mine" || other.Meta.Created.Year() == 1999 {
		t.Errorf("the client set id or meta: %+v", other)
	}
	c.must(http.StatusNotFound, http.MethodGet, "/Users/no-such-id", nil).scimError(t)
	if e := c.must(http.StatusBadRequest, http.MethodPost, "/Users", map[string]any{"displayName": "no userName"}).scimError(t); e.ScimType != "invalidValue" {
		t.Errorf("create without userName: %+v", e)
	}
	if e := c.must(http.StatusBadRequest, http.MethodPost, "/Users", []byte(`{"userName":`)).scimError(t); e.ScimType != "invalidSyntax" {
		t.Errorf("create with broken JSON: %+v", e)
	}
}

// TestPaging: 250 users read 100 a page come in three pages, in creation
// order. This is the test that Express 4 is in use: under Express 5,
// scimmy-routers cannot turn startIndex and count into numbers and SCIMMY
// answers 20 users from the first whatever was asked.
func TestPaging(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	c := newClient(t, s)
	var want []string
	for i := 1; i <= 250; i++ {
		want = append(want, c.create(numbered(i, true)).UserName)
	}
	if n := s.Counters().Requests[KindCreate]; n != 250 {
		t.Errorf("%d creates counted, want 250", n)
	}

	var got []string
	for _, tc := range []struct{ start, n int }{{1, 100}, {101, 100}, {201, 50}} {
		p := c.list(url.Values{"startIndex": {fmt.Sprint(tc.start)}, "count": {"100"}})
		if p.TotalResults != 250 || p.StartIndex != tc.start || p.ItemsPerPage != 100 || len(p.Resources) != tc.n {
			t.Errorf("page at %d: totalResults %d, startIndex %d, itemsPerPage %d, %d users; want 250, %d, 100, %d",
				tc.start, p.TotalResults, p.StartIndex, p.ItemsPerPage, len(p.Resources), tc.start, tc.n)
		}
		got = append(got, names(p.Resources)...)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("paged users (-created +read):\n%s", diff)
	}
	if diff := cmp.Diff(want, names(s.Users())); diff != "" {
		t.Errorf("Users() (-created +read):\n%s", diff)
	}

	// count=0 answers the total only.
	if p := c.list(url.Values{"count": {"0"}}); p.TotalResults != 250 || len(p.Resources) != 0 {
		t.Errorf("count=0: totalResults %d, %d users", p.TotalResults, len(p.Resources))
	}
	// Without count SCIMMY answers 20; past filter.maxResults (200) it
	// answers all that was asked.
	if p := c.list(nil); len(p.Resources) != 20 || p.ItemsPerPage != 20 {
		t.Errorf("no count: %d users, itemsPerPage %d; SCIMMY's default is 20", len(p.Resources), p.ItemsPerPage)
	}
	if p := c.list(url.Values{"count": {"250"}}); len(p.Resources) != 250 {
		t.Errorf("count=250: %d users; SCIMMY does not cap at maxResults", len(p.Resources))
	}
	// Sorting is supported.
	if p := c.list(url.Values{"sortBy": {"userName"}, "sortOrder": {"descending"}, "count": {"2"}}); !cmp.Equal(names(p.Resources), []string{"user250", "user249"}) {
		t.Errorf("sorted descending: %v", names(p.Resources))
	}
}

// TestUniqueness: userName is unique ignoring case, on create and on
// rename by PATCH or PUT (RFC 7643 section 4.1.1); SCIMMY alone would take
// both.
func TestUniqueness(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	c := newClient(t, s)
	holder := c.create(map[string]any{"userName": "JDoe"})
	other := c.create(map[string]any{"userName": "other"})

	for _, tc := range []struct {
		name         string
		method, path string
		body         any
	}{
		{"create, same case", http.MethodPost, "/Users", map[string]any{"userName": "JDoe"}},
		{"create, lower case", http.MethodPost, "/Users", map[string]any{"userName": "jdoe"}},
		{"create, upper case", http.MethodPost, "/Users", map[string]any{"userName": "JDOE"}},
		{"rename by PATCH", http.MethodPatch, "/Users/" + other.ID, patchOp(op("replace", "userName", "jdoe"))},
		{"rename by PATCH without path", http.MethodPatch, "/Users/" + other.ID, patchOp(op("replace", "", map[string]any{"userName": "JDOE"}))},
		{"rename by PUT", http.MethodPut, "/Users/" + other.ID, map[string]any{"userName": "jDoE"}},
	} {
		r := c.req(tc.method, tc.path, tc.body)
		if r.Status != http.StatusConflict {
			t.Errorf("%s: status %d, want 409: %s", tc.name, r.Status, r.Body)
			continue
		}
		if e := r.scimError(t); e.ScimType != "uniqueness" || !strings.Contains(e.Detail, holder.ID) {
			t.Errorf("%s: %+v, want scimType uniqueness naming %s", tc.name, e, holder.ID)
		}
	}
	if diff := cmp.Diff([]string{"JDoe", "other"}, names(s.Users())); diff != "" {
		t.Errorf("users after the refused writes (-want +got):\n%s", diff)
	}
	// A user may change the case of its own userName.
	if u := c.must(http.StatusOK, http.MethodPut, "/Users/"+holder.ID, map[string]any{"userName": "jdoe"}).user(t); u.UserName != "jdoe" {
		t.Errorf("own rename: %+v", u)
	}
}

// TestFilter: the filters a client uses to find a user again.
func TestFilter(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	c := newClient(t, s)
	jd := c.create(jdoe())
	c.create(map[string]any{"userName": "asmith", "externalId": "emp-0007", "active": false})
	c.create(map[string]any{"userName": "bjones", "active": true})

	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{`userName eq "JDoe"`, []string{"JDoe"}},
		{`USERNAME EQ "JDoe"`, []string{"JDoe"}}, // attribute names and operators ignore case
		{`userName eq "jdoe"`, nil},              // SCIMMY: values do not (see README)
		{`externalId eq "emp-0007"`, []string{"asmith"}},
		{`id eq "` + jd.ID + `"`, []string{"JDoe"}},
		{`active eq false`, []string{"asmith"}},
		{`active eq true and userName sw "b"`, []string{"bjones"}},
		{`userName eq "asmith" or userName eq "bjones"`, []string{"asmith", "bjones"}},
		{`userName pr`, []string{"JDoe", "asmith", "bjones"}},
	} {
		p := c.filter(tc.filter)
		if got := names(p.Resources); !cmp.Equal(got, tc.want, cmp.Comparer(func(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") })) || p.TotalResults != len(tc.want) {
			t.Errorf("filter %s: %v (totalResults %d), want %v", tc.filter, got, p.TotalResults, tc.want)
		}
	}
	if e := c.must(http.StatusBadRequest, http.MethodGet, "/Users?filter="+url.QueryEscape(`(userName eq "a"`), nil).scimError(t); e.ScimType != "invalidFilter" {
		t.Errorf("unclosed group: %+v", e)
	}
	// POST /Users/.search answers the same.
	var p listPage
	c.must(http.StatusOK, http.MethodPost, "/Users/.search", map[string]any{
		"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"}, "filter": `userName eq "bjones"`,
	}).decode(t, &p)
	if !cmp.Equal(names(p.Resources), []string{"bjones"}) {
		t.Errorf(".search: %v", names(p.Resources))
	}
}

// TestPatchPut: the PATCH forms a client sends, PUT's replace-all, and
// meta after each.
func TestPatchPut(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	c := newClient(t, s)
	u := c.create(jdoe())
	path := "/Users/" + u.ID

	time.Sleep(5 * time.Millisecond) // so that lastModified can differ from created
	r := c.must(http.StatusOK, http.MethodPatch, path, patchOp(op("replace", "active", false)))
	p := r.user(t)
	if p.Active == nil || *p.Active {
		t.Errorf("after replace active false: active %v", p.Active)
	}
	if !p.Meta.Created.Equal(u.Meta.Created) || !p.Meta.LastModified.After(u.Meta.LastModified) || p.Meta.Version == u.Meta.Version {
		t.Errorf("meta after PATCH %+v, before %+v", p.Meta, u.Meta)
	}
	if p.Title != "Engineer" || p.Enterprise == nil || p.Enterprise.Department != "R&D" {
		t.Errorf("PATCH lost other attributes: %s", r.Body)
	}

	for _, tc := range []struct {
		name  string
		body  map[string]any
		check func(User) bool
	}{
		{"replace without path", patchOp(op("replace", "", map[string]any{"active": true, "displayName": "Johnny"})),
			func(u User) bool { return u.IsActive() && u.DisplayName == "Johnny" }},
		{"replace a sub-attribute", patchOp(op("replace", "name.givenName", "Jon")),
			func(u User) bool { return u.Name.GivenName == "Jon" && u.Name.FamilyName == "Doe" }},
		{"replace through a value filter", patchOp(op("replace", `emails[type eq "work"].value`, "jd@example.com")),
			func(u User) bool {
				return len(u.Emails) == 1 && u.Emails[0].Value == "jd@example.com" && u.Emails[0].Type == "work"
			}},
		{"replace an enterprise attribute", patchOp(op("replace", EnterpriseSchema+":department", "Sales")),
			func(u User) bool {
				return u.Enterprise != nil && u.Enterprise.Department == "Sales" && u.Enterprise.EmployeeNumber == "42"
			}},
		{"enterprise attribute without path", patchOp(op("replace", "", map[string]any{EnterpriseSchema + ":department": "Ops"})),
			func(u User) bool { return u.Enterprise != nil && u.Enterprise.Department == "Ops" }},
		{"add then remove", patchOp(op("add", "nickName", "JJ"), op("remove", "title", nil)),
			func(u User) bool { return u.Title == "" && strings.Contains(string(u.Raw), `"nickName":"JJ"`) }},
		{"op names ignore case", patchOp(op("Replace", "active", false)),
			func(u User) bool { return !u.IsActive() }},
	} {
		r := c.req(http.MethodPatch, path, tc.body)
		if r.Status != http.StatusOK {
			t.Errorf("%s: status %d: %s", tc.name, r.Status, r.Body)
			continue
		}
		if u := r.user(t); !tc.check(u) {
			t.Errorf("%s: %s", tc.name, r.Body)
		}
	}
	// Entra's string booleans are refused, not coerced.
	if e := c.must(http.StatusBadRequest, http.MethodPatch, path, patchOp(op("replace", "active", "False"))).scimError(t); e.ScimType != "invalidValue" {
		t.Errorf("string boolean: %+v", e)
	}
	if e := c.must(http.StatusBadRequest, http.MethodPatch, path, map[string]any{"Operations": []any{op("replace", "active", true)}}).scimError(t); e.ScimType != "invalidSyntax" {
		t.Errorf("PATCH without schemas: %+v", e)
	}
	c.must(http.StatusNotFound, http.MethodPatch, "/Users/no-such-id", patchOp(op("replace", "active", true)))

	// PUT replaces the whole user: what it leaves out is gone.
	before := c.must(http.StatusOK, http.MethodGet, path, nil).user(t)
	put := c.must(http.StatusOK, http.MethodPut, path, map[string]any{"schemas": []string{userSchema}, "userName": "JDoe", "active": true, "title": "Manager"}).user(t)
	if put.ID != u.ID || put.Title != "Manager" || !put.IsActive() || put.Name != nil || put.Emails != nil || put.Enterprise != nil ||
		put.ExternalID != "" || !put.Meta.Created.Equal(u.Meta.Created) || put.Meta.Version == before.Meta.Version {
		t.Errorf("after PUT: %s", put.Raw)
	}
	c.must(http.StatusNotFound, http.MethodPut, "/Users/no-such-id", map[string]any{"userName": "x"})
	if e := c.must(http.StatusBadRequest, http.MethodPut, path, map[string]any{"active": true}).scimError(t); e.ScimType != "invalidValue" {
		t.Errorf("PUT without userName: %+v", e)
	}
}

// TestDelete: a deleted user is gone.
func TestDelete(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	c := newClient(t, s)
	u := c.create(map[string]any{"userName": "gone"})
	keep := c.create(map[string]any{"userName": "kept"})
	if r := c.must(http.StatusNoContent, http.MethodDelete, "/Users/"+u.ID, nil); len(r.Body) != 0 {
		t.Errorf("DELETE answered a body: %s", r.Body)
	}
	c.must(http.StatusNotFound, http.MethodGet, "/Users/"+u.ID, nil).scimError(t)
	c.must(http.StatusNotFound, http.MethodDelete, "/Users/"+u.ID, nil).scimError(t)
	if got := s.Users(); len(got) != 1 || got[0].ID != keep.ID {
		t.Errorf("users after delete: %v", names(got))
	}
	// The userName is free again.
	c.create(map[string]any{"userName": "GONE"})
}

// TestRestart: the users, their ids and meta survive a restart and a
// crash, and a server started on the same file.
func TestRestart(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	c := newClient(t, s)
	for i := 1; i <= 5; i++ {
		c.create(numbered(i, i%2 == 0))
	}
	c.must(http.StatusOK, http.MethodPatch, "/Users/"+s.Users()[0].ID, patchOp(op("replace", "displayName", "First")))
	before := s.Users()
	url0, pid0 := s.URL(), s.PID()

	s.Restart()
	if s.URL() != url0 || s.PID() == pid0 {
		t.Errorf("restart: URL %s → %s, PID %d → %d", url0, s.URL(), pid0, s.PID())
	}
	if diff := cmp.Diff(before, s.Users(), cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Raw" }, cmp.Ignore())); diff != "" {
		t.Errorf("users after restart (-before +after):\n%s", diff)
	}
	// The same client, unchanged, goes on.
	c.create(numbered(6, true))

	s.Kill()
	if s.PID() != 0 {
		t.Error("PID after Kill")
	}
	r, err := http.Get(s.URL() + "/Users")
	if err == nil {
		r.Body.Close()
		t.Errorf("a killed server answered %s", r.Status)
	}
	s.Restart()
	if n := len(s.Users()); n != 6 {
		t.Errorf("%d users after a kill, want 6", n)
	}
	// The uniqueness rule holds for the users read back from the file.
	c.must(http.StatusConflict, http.MethodPost, "/Users", map[string]any{"userName": "USER001"})

	// The file is the store: JSON, written whole, no temporary left over.
	b, err := os.ReadFile(s.StorePath())
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Format int              `json:"format"`
		Users  []map[string]any `json:"users"`
	}
	if err := json.Unmarshal(b, &file); err != nil || file.Format != 1 || len(file.Users) != 6 {
		t.Errorf("store file: format %d, %d users, %v", file.Format, len(file.Users), err)
	}
	if _, err := os.Stat(s.StorePath() + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary store file left: %v", err)
	}

	// A second server on a copy of the file starts with the same users.
	cp := filepath.Join(t.TempDir(), "copy.json")
	if err := os.WriteFile(cp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := Start(t, Options{StorePath: cp})
	if diff := cmp.Diff(names(s.Users()), names(s2.Users())); diff != "" {
		t.Errorf("server on the copied file (-first +second):\n%s", diff)
	}
}

// TestAuth: SCIM needs the bearer token; the admin API does not.
func TestAuth(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Token: "the-token"})
	if s.Token() != "the-token" {
		t.Errorf("Token() = %q", s.Token())
	}
	for _, tc := range []struct{ name, header string }{
		{"no header", ""},
		{"wrong token", "Bearer not-the-token"},
		{"token prefix", "Bearer the-toke"},
		{"basic", "Basic dGhlLXRva2VuOg=="},
		{"bare token", "the-token"},
	} {
		c := newClient(t, s)
		c.token = ""
		var h []string
		if tc.header != "" {
			h = []string{"Authorization", tc.header}
		}
		for _, path := range []string{"/Users", "/ServiceProviderConfig"} {
			r := c.req(http.MethodGet, path, nil, h...)
			if r.Status != http.StatusUnauthorized {
				t.Errorf("%s, %s: status %d, want 401", tc.name, path, r.Status)
				continue
			}
			r.scimError(t)
			if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: WWW-Authenticate %q", tc.name, r.Header.Get("WWW-Authenticate"))
			}
		}
		c.must(http.StatusUnauthorized, http.MethodPost, "/Users", map[string]any{"userName": "intruder"}, h...)
	}
	if len(s.Users()) != 0 {
		t.Error("an unauthenticated create went through")
	}
	newClient(t, s).must(http.StatusOK, http.MethodGet, "/Users", nil, "Authorization", "bearer the-token")
	if n := s.Counters().Statuses[401]; n != 15 {
		t.Errorf("%d 401s counted, want 15", n)
	}
}

// TestServiceProviderConfig: what a client reads to choose PATCH or PUT,
// and the resource types and schemas.
func TestServiceProviderConfig(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	c := newClient(t, s)
	var spc struct {
		Patch, Filter, Sort, Etag, ChangePassword struct {
			Supported  bool `json:"supported"`
			MaxResults int  `json:"maxResults"`
		}
		AuthenticationSchemes []struct{ Type string } `json:"authenticationSchemes"`
	}
	c.must(http.StatusOK, http.MethodGet, "/ServiceProviderConfig", nil).decode(t, &spc)
	if !spc.Patch.Supported || !spc.Filter.Supported || spc.Filter.MaxResults != 200 || !spc.Sort.Supported || spc.Etag.Supported ||
		len(spc.AuthenticationSchemes) != 1 || spc.AuthenticationSchemes[0].Type != "oauthbearertoken" {
		t.Errorf("ServiceProviderConfig: %+v", spc)
	}
	var rt struct {
		Resources []struct {
			Endpoint         string
			SchemaExtensions []struct{ Schema string }
		}
	}
	c.must(http.StatusOK, http.MethodGet, "/ResourceTypes", nil).decode(t, &rt)
	if len(rt.Resources) != 1 || rt.Resources[0].Endpoint != "/Users" || len(rt.Resources[0].SchemaExtensions) != 1 ||
		rt.Resources[0].SchemaExtensions[0].Schema != EnterpriseSchema {
		t.Errorf("ResourceTypes: %+v", rt)
	}
	c.must(http.StatusOK, http.MethodGet, "/Schemas/"+EnterpriseSchema, nil)
	c.must(http.StatusNotFound, http.MethodGet, "/Groups", nil).scimError(t)
}

// TestFaults: each fault, set and cleared at run time.
func TestFaults(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	c := newClient(t, s)

	t.Run("fail every Nth", func(t *testing.T) {
		s.SetFaults(Faults{FailEvery: 3})
		s.ResetCounters()
		var got []int
		for range 9 {
			r := c.req(http.MethodGet, "/Users", nil)
			if r.Status == http.StatusInternalServerError {
				r.scimError(t)
			}
			got = append(got, r.Status)
		}
		if want := []int{200, 200, 500, 200, 200, 500, 200, 200, 500}; !cmp.Equal(got, want) {
			t.Errorf("statuses %v, want %v", got, want)
		}
		if n := s.Counters().Faults[500]; n != 3 {
			t.Errorf("%d injected 500s counted, want 3", n)
		}
		s.SetFaults(Faults{})
		c.must(http.StatusOK, http.MethodGet, "/Users", nil)
	})

	t.Run("fail writes only", func(t *testing.T) {
		s.SetFaults(Faults{FailEvery: 1, FailMethods: []string{"POST"}})
		c.must(http.StatusOK, http.MethodGet, "/Users", nil)
		c.must(http.StatusInternalServerError, http.MethodPost, "/Users", map[string]any{"userName": "never"})
		s.SetFaults(Faults{})
		if s.UserByName("never") != nil {
			t.Error("a request failed before it was carried out made a user")
		}
	})

	t.Run("answer lost after apply", func(t *testing.T) {
		s.SetFaults(Faults{FailEvery: 1, FailMethods: []string{"POST"}, FailAfterApply: true})
		c.must(http.StatusInternalServerError, http.MethodPost, "/Users", map[string]any{"userName": "lost.answer"}).scimError(t)
		u := s.UserByName("lost.answer")
		if u == nil {
			t.Fatal("the failed-after-apply create made no user")
		}
		s.SetFaults(Faults{})
		// The resend meets the user it made, as the client must handle.
		if e := c.must(http.StatusConflict, http.MethodPost, "/Users", map[string]any{"userName": "lost.answer"}).scimError(t); e.ScimType != "uniqueness" {
			t.Errorf("resend: %+v", e)
		}
		if p := c.filter(`userName eq "lost.answer"`); len(p.Resources) != 1 || p.Resources[0].ID != u.ID {
			t.Errorf("lookup after the lost answer: %+v", p)
		}
	})

	t.Run("rate limit", func(t *testing.T) {
		s.SetFaults(Faults{RateLimit: 2, RetryAfter: 7})
		for i := range 2 {
			r := c.must(http.StatusTooManyRequests, http.MethodPost, "/Users", map[string]any{"userName": "limited"})
			if r.Header.Get("Retry-After") != "7" {
				t.Errorf("429 #%d: Retry-After %q, want 7", i+1, r.Header.Get("Retry-After"))
			}
			r.scimError(t)
		}
		c.create(map[string]any{"userName": "limited"})
		var f map[string]any
		if err := s.do(http.MethodGet, s.adminURL("/faults"), false, nil, &f); err != nil || f["rate_limit"] != 0.0 {
			t.Errorf("faults after the limit ran out: %v %v", f, err)
		}
	})

	t.Run("invalid value", func(t *testing.T) {
		existing := c.create(map[string]any{"userName": "Bad.Later"})
		s.SetFaults(Faults{Invalid: map[string]string{"bad.user": "department must not be empty", "bad.later": "title too long"}})
		for _, name := range []string{"bad.user", "BAD.USER"} {
			e := c.must(http.StatusBadRequest, http.MethodPost, "/Users", map[string]any{"userName": name}).scimError(t)
			if e.ScimType != "invalidValue" || e.Detail != "department must not be empty" {
				t.Errorf("create %s: %+v", name, e)
			}
		}
		// PATCH and PUT of a user that has the userName, whatever the body.
		e := c.must(http.StatusBadRequest, http.MethodPatch, "/Users/"+existing.ID, patchOp(op("replace", "active", false))).scimError(t)
		if e.ScimType != "invalidValue" || e.Detail != "title too long" {
			t.Errorf("patch: %+v", e)
		}
		c.must(http.StatusBadRequest, http.MethodPut, "/Users/"+existing.ID, map[string]any{"userName": "renamed"})
		c.must(http.StatusBadRequest, http.MethodPatch, "/Users/"+s.UserByName("limited").ID, patchOp(op("replace", "userName", "Bad.User")))
		// Others go through, and so does a delete.
		c.create(map[string]any{"userName": "good.user"})
		c.must(http.StatusNoContent, http.MethodDelete, "/Users/"+existing.ID, nil)
		s.SetFaults(Faults{})
		c.create(map[string]any{"userName": "bad.user"})
	})

	t.Run("latency", func(t *testing.T) {
		s.SetFaults(Faults{Latency: 3 * time.Second})
		slow := newClient(t, s)
		slow.hc = &http.Client{Timeout: 100 * time.Millisecond}
		req, _ := http.NewRequest(http.MethodGet, s.URL()+"/ServiceProviderConfig", nil)
		req.Header.Set("Authorization", "Bearer "+s.Token())
		resp, err := slow.hc.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("a 100ms client got %s through a 3s latency", resp.Status)
		}
		var ne interface{ Timeout() bool }
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("want a timeout, got %v", err)
		}
		// The harness's own reads are not delayed, nor limited.
		s.SetFaults(Faults{Latency: 3 * time.Second, RateLimit: 100, FailEvery: 1})
		hc := s.client
		s.client = &http.Client{Timeout: time.Second}
		_ = s.Users()
		s.client = hc
		s.SetFaults(Faults{})
	})

	t.Run("bad fault sets", func(t *testing.T) {
		for _, body := range []any{
			map[string]any{"fail_evry": 2},
			map[string]any{"fail_every": -1},
			map[string]any{"invalid": []string{"x"}},
			[]int{1},
		} {
			if err := s.do(http.MethodPut, s.adminURL("/faults"), false, body, nil); err == nil || !strings.Contains(err.Error(), "400") {
				t.Errorf("faults %v: %v, want 400", body, err)
			}
		}
	})
}

// TestCounters: exact counts by request kind, which the helper's own
// reads do not change.
func TestCounters(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	c := newClient(t, s)
	c.must(http.StatusOK, http.MethodGet, "/ServiceProviderConfig", nil)
	a := c.create(map[string]any{"userName": "a"})
	c.create(map[string]any{"userName": "b"})
	c.filter(`userName eq "a"`)
	c.filter(`userName eq "zz"`)
	c.must(http.StatusOK, http.MethodGet, "/Users/"+a.ID, nil)
	c.must(http.StatusOK, http.MethodGet, "/Users?count=10", nil)
	c.must(http.StatusOK, http.MethodPatch, "/Users/"+a.ID, patchOp(op("replace", "active", false)))
	c.must(http.StatusOK, http.MethodPut, "/Users/"+a.ID, map[string]any{"userName": "a", "active": true})
	c.must(http.StatusNoContent, http.MethodDelete, "/Users/"+a.ID, nil)
	c.must(http.StatusConflict, http.MethodPost, "/Users", map[string]any{"userName": "B"})
	c.must(http.StatusNotFound, http.MethodGet, "/Nothing", nil)
	_ = s.Users()
	_ = s.UserByName("b")

	got := s.Counters()
	want := map[string]int{KindConfig: 1, KindCreate: 3, KindLookup: 2, KindGet: 1, KindList: 1,
		KindPatch: 1, KindReplace: 1, KindDelete: 1, "GET other": 1}
	if diff := cmp.Diff(want, got.Requests); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if got.Total != 12 || got.Lookups() != 3 {
		t.Errorf("total %d, lookups %d; want 12, 3", got.Total, got.Lookups())
	}
	if diff := cmp.Diff(map[int]int{200: 7, 201: 2, 204: 1, 409: 1, 404: 1}, got.Statuses); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}

	s.ResetCounters()
	got = s.Counters()
	if got.Total != 0 || len(got.Requests) != 0 || len(got.Statuses) != 0 || len(got.ActiveLog) != 0 || got.MaxActive != 1 || got.Active != 1 {
		t.Errorf("after reset: %+v", got)
	}
}

// TestMaxActive: the active-user log a seat test reads. "b" counts
// though it was created without active, as an application would let it in.
func TestMaxActive(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	c := newClient(t, s)
	var ids []string
	for i := 1; i <= 50; i++ {
		ids = append(ids, c.create(numbered(i, true)).ID)
	}
	for i := 51; i <= 60; i++ {
		c.create(numbered(i, false)) // queued: created blocked
	}
	if got := s.MaxActive(); got != 50 {
		t.Errorf("MaxActive %d after 50 active and 10 inactive, want 50", got)
	}
	// Seat order: free ten seats first, then give them to the queued.
	users := s.Users()
	for _, id := range ids[:10] {
		c.must(http.StatusOK, http.MethodPatch, "/Users/"+id, patchOp(op("replace", "active", false)))
	}
	for _, u := range users[50:] {
		c.must(http.StatusOK, http.MethodPatch, "/Users/"+u.ID, patchOp(op("replace", "active", true)))
	}
	cn := s.Counters()
	if cn.MaxActive != 50 || cn.Active != 50 || len(cn.ActiveLog) != 80 {
		t.Errorf("after the swap: max %d, active %d, %d log entries; want 50, 50, 80", cn.MaxActive, cn.Active, len(cn.ActiveLog))
	}
	if l := cn.ActiveLog[len(cn.ActiveLog)-1]; l.Op != "patch" || l.UserName != "user060" || l.Active != 50 {
		t.Errorf("last log entry %+v", l)
	}
	// The wrong order shows: one create before a deactivation.
	c.create(map[string]any{"userName": "b"})
	c.must(http.StatusNoContent, http.MethodDelete, "/Users/"+ids[20], nil)
	cn = s.Counters()
	if cn.MaxActive != 51 || cn.Active != 50 {
		t.Errorf("after create-then-delete: max %d, active %d; want 51, 50", cn.MaxActive, cn.Active)
	}
	if l := cn.ActiveLog[len(cn.ActiveLog)-2:]; l[0].Op != "create" || l[0].Active != 51 || l[1].Op != "delete" || l[1].Active != 50 {
		t.Errorf("log tail %+v", l)
	}
}

// TestETag: our ETag layer in front of SCIMMY.
func TestETag(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{ETag: true})
	c := newClient(t, s)
	var spc struct{ Etag struct{ Supported bool } }
	c.must(http.StatusOK, http.MethodGet, "/ServiceProviderConfig", nil).decode(t, &spc)
	if !spc.Etag.Supported {
		t.Error("etag.supported is false in ETag mode")
	}

	r := c.must(http.StatusCreated, http.MethodPost, "/Users", map[string]any{"userName": "v"})
	u := r.user(t)
	if tag := r.Header.Get("ETag"); tag == "" || tag != u.Meta.Version {
		t.Errorf("create: ETag %q, meta.version %q", tag, u.Meta.Version)
	}
	path := "/Users/" + u.ID
	v1 := c.must(http.StatusOK, http.MethodGet, path, nil).Header.Get("ETag")
	if v1 != u.Meta.Version {
		t.Errorf("GET ETag %q, want %q", v1, u.Meta.Version)
	}
	c.must(http.StatusNotModified, http.MethodGet, path, nil, "If-None-Match", v1)
	c.must(http.StatusOK, http.MethodGet, path, nil, "If-None-Match", `W/"other"`)
	if r := c.must(http.StatusOK, http.MethodGet, "/Users", nil); r.Header.Get("ETag") != "" {
		t.Errorf("a list has ETag %q", r.Header.Get("ETag"))
	}

	stale := `W/"0000000000000000"`
	for _, tc := range []struct {
		method string
		body   any
	}{
		{http.MethodPatch, patchOp(op("replace", "active", false))},
		{http.MethodPut, map[string]any{"userName": "v", "active": false}},
		{http.MethodDelete, nil},
	} {
		e := c.must(http.StatusPreconditionFailed, tc.method, path, tc.body, "If-Match", stale).scimError(t)
		if !strings.Contains(e.Detail, v1) {
			t.Errorf("%s with a stale If-Match: %+v", tc.method, e)
		}
	}
	if got := c.must(http.StatusOK, http.MethodGet, path, nil).user(t); got.Meta.Version != v1 {
		t.Error("a refused write changed the user")
	}

	r = c.must(http.StatusOK, http.MethodPatch, path, patchOp(op("replace", "active", false)), "If-Match", v1)
	v2 := r.Header.Get("ETag")
	if v2 == "" || v2 == v1 || v2 != r.user(t).Meta.Version {
		t.Errorf("PATCH: ETag %q (was %q), meta.version %q", v2, v1, r.user(t).Meta.Version)
	}
	c.must(http.StatusPreconditionFailed, http.MethodPut, path, map[string]any{"userName": "v"}, "If-Match", v1)
	// Weak and strong spellings of the tag match alike; so does "*"; and a
	// write without If-Match is not checked.
	c.must(http.StatusOK, http.MethodPut, path, map[string]any{"userName": "v", "active": true}, "If-Match", strings.TrimPrefix(v2, "W/"))
	c.must(http.StatusOK, http.MethodPatch, path, patchOp(op("replace", "title", "x")), "If-Match", "*")
	c.must(http.StatusOK, http.MethodPatch, path, patchOp(op("replace", "title", "y")))
	c.must(http.StatusNoContent, http.MethodDelete, path, nil, "If-Match", c.must(http.StatusOK, http.MethodGet, path, nil).Header.Get("ETag"))
	c.must(http.StatusNotFound, http.MethodDelete, path, nil, "If-Match", "*")

	// Without ETag mode, SCIMMY's own answer: no ETag, If-Match ignored.
	plain := Start(t, Options{})
	pc := newClient(t, plain)
	r = pc.must(http.StatusCreated, http.MethodPost, "/Users", map[string]any{"userName": "v"})
	if r.Header.Get("ETag") != "" {
		t.Errorf("ETag %q without ETag mode", r.Header.Get("ETag"))
	}
	pc.must(http.StatusOK, http.MethodPatch, "/Users/"+r.user(t).ID, patchOp(op("replace", "active", false)), "If-Match", stale)
}

// TestSCIMMYDeviations pins where SCIMMY departs from RFC 7644, as the
// README lists them, so that an upgrade that changes one is noticed.
func TestSCIMMYDeviations(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	c := newClient(t, s)
	c.create(jdoe())
	for i := 1; i <= 4; i++ {
		c.create(numbered(i, true))
	}

	// 1. userName eq compares case-sensitively.
	if p := c.filter(`userName eq "jdoe"`); p.TotalResults != 0 {
		t.Errorf("userName eq ignored case: %v", names(p.Resources))
	}
	// 2. A filter with no value, or on an unknown attribute, matches nothing
	// instead of answering 400 invalidFilter.
	for _, f := range []string{`userName eq`, `noSuchAttribute eq "x"`} {
		if p := c.filter(f); p.TotalResults != 0 {
			t.Errorf("filter %q: %d results", f, p.TotalResults)
		}
	}
	// 3. A filter on an enterprise attribute matches nothing.
	if p := c.filter(EnterpriseSchema + `:department eq "R&D"`); p.TotalResults != 0 {
		t.Errorf("enterprise filter matched %v", names(p.Resources))
	}
	// 4. A filter into a multi-valued attribute fails with 400 as soon as
	// one user lacks that attribute.
	for _, f := range []string{`emails.value eq "jdoe@example.com"`, `emails[type eq "work"].value eq "jdoe@example.com"`} {
		if e := c.must(http.StatusBadRequest, http.MethodGet, "/Users?filter="+url.QueryEscape(f), nil).scimError(t); e.ScimType != "invalidValue" {
			t.Errorf("filter %s: %+v", f, e)
		}
	}
	// 5. A startIndex past the end answers the first page again.
	if p := c.list(url.Values{"startIndex": {"6"}, "count": {"2"}}); p.TotalResults != 5 || !cmp.Equal(names(p.Resources), []string{"JDoe", "user001"}) {
		t.Errorf("past the end: %+v", names(p.Resources))
	}
	// 6. A PATCH that changes nothing answers 204 with no body (the user is
	// still written: lastModified moves, version stays).
	u := s.UserByName("user001")
	r := c.must(http.StatusNoContent, http.MethodPatch, "/Users/"+u.ID, patchOp(op("replace", "active", true)))
	if len(r.Body) != 0 {
		t.Errorf("no-op PATCH body: %s", r.Body)
	}
	if after := s.UserByName("user001"); after.Meta.Version != u.Meta.Version || !after.Meta.LastModified.After(u.Meta.LastModified) {
		t.Errorf("no-op PATCH meta %+v, before %+v", after.Meta, u.Meta)
	}
	// 7. No ETags (unless our layer is on): see TestETag.
}

// TestExpress4: the lock file holds Express 4 (see TestPaging).
func TestExpress4(t *testing.T) {
	dir, err := ServerDir()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	var lock struct {
		Packages map[string]struct{ Version string } `json:"packages"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		t.Fatal(err)
	}
	for name, major := range map[string]string{"express": "4.", "scimmy": "1.", "scimmy-routers": "1."} {
		if v := lock.Packages["node_modules/"+name].Version; !strings.HasPrefix(v, major) {
			t.Errorf("%s %q in package-lock.json, want %sx", name, v, major)
		}
	}
}

// TestEnsureModules: two installs at once into a fresh folder run npm ci
// once and both see the finished install.
func TestEnsureModules(t *testing.T) {
	if testing.Short() {
		t.Skip("runs npm ci")
	}
	t.Parallel()
	dir, err := ServerDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lookNode(); err != nil {
		Unavailable(t, err)
	}
	tmp := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- EnsureModules(tmp) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			Unavailable(t, err)
		}
	}
	if !modulesReady(tmp) {
		t.Error("node_modules incomplete")
	}
}

// TestUnavailable: a missing node skips, unless integration is required.
func TestUnavailable(t *testing.T) {
	t.Setenv("SEATSYNC_INTEGRATION", "")
	var skipped bool
	t.Run("missing", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Unavailable(t, fmt.Errorf("node: %w", ErrMissing))
	})
	if !skipped {
		t.Error("a missing node did not skip")
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := lookNode(); !errors.Is(err, ErrMissing) {
		t.Errorf("lookNode without node in PATH: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
