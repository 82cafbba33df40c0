package scim_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/internal/scimtest"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/target"
	"github.com/seatsync/seatsync/target/scim"
)

// These tests run the client against a real SCIM server: SCIMMY, started
// by internal/scimtest (they skip without node, and fail with
// SEATSYNC_INTEGRATION=required).

// TestCreate: what a create sends is what SCIMMY holds, active as a JSON
// boolean either way.
func TestCreate(t *testing.T) {
	t.Parallel()
	s := scimtest.Start(t, scimtest.Options{})
	c := open(t, s, s.URL(), "")
	ctx := t.Context()

	alice, bob := person("alice"), person("bob")
	bob.State, bob.BlockReason = model.Blocked, model.ReasonLicense
	ua, err := c.Create(ctx, alice, true)
	if err != nil {
		t.Fatal(err)
	}
	ub, err := c.Create(ctx, bob, false)
	if err != nil {
		t.Fatal(err)
	}
	if ua.ID == "" || ua.UserName != "alice" || !ua.Active || ub.ID == "" || ub.Active || ua.ExternalID != "E-alice" {
		t.Errorf("created: %+v, %+v", ua, ub)
	}
	for _, tc := range []struct {
		p      *model.Profile
		active bool
	}{{alice, true}, {bob, false}} {
		u := s.UserByName(tc.p.Username)
		if u == nil {
			t.Fatalf("%s is not on the server", tc.p.Username)
		}
		if u.UserName != tc.p.Username || u.ExternalID != tc.p.ExternalID || u.Name == nil ||
			u.Name.GivenName != tc.p.GivenName || u.Name.FamilyName != tc.p.FamilyName ||
			u.DisplayName != tc.p.DisplayName || u.Title != tc.p.Title ||
			u.Enterprise == nil || u.Enterprise.Department != tc.p.Department ||
			!cmp.Equal(u.Emails, []scimtest.Email{{Value: tc.p.Email, Type: "work", Primary: true}}) {
			t.Errorf("%s on the server: %s", tc.p.Username, u.Raw)
		}
		if active, ok := rawUser(t, s, tc.p.Username)["active"].(bool); !ok || active != tc.active {
			t.Errorf("%s: active is %v (%T) on the server, want the JSON boolean %v", tc.p.Username, active, active, tc.active)
		}
		if !strings.Contains(strings.Join(u.Schemas, " "), scim.EnterpriseUser) {
			t.Errorf("%s: schemas %v lack the enterprise extension", tc.p.Username, u.Schemas)
		}
	}

	// A second user with the same userName, in other case: the harness
	// refuses it as RFC 7643 says, and the client says so with
	// ErrUniqueness; Find then finds the holder (the Pusher's 409 path).
	_, err = c.Create(ctx, person("ALICE"), true)
	if !errors.Is(err, target.ErrUniqueness) || asError(t, err).Status != http.StatusConflict {
		t.Fatalf("create of ALICE beside alice: %v; want ErrUniqueness", err)
	}
	found, err := c.Find(ctx, []string{"ALICE"})
	if err != nil || found["alice"].ID != ua.ID {
		t.Fatalf("Find(ALICE) after the 409: %+v, %v; want alice's user %s", found, err, ua.ID)
	}
}

// TestFind: a few names are a lookup each; many, one listing. Names are
// compared ignoring case although SCIMMY's eq filter does not.
func TestFind(t *testing.T) {
	t.Parallel()
	s := scimtest.Start(t, scimtest.Options{})
	c := open(t, s, s.URL(), "")
	ctx := t.Context()
	var names []string
	for i := range 30 {
		p := person(fmt.Sprintf("user%02d", i))
		if _, err := c.Create(ctx, p, true); err != nil {
			t.Fatal(err)
		}
		names = append(names, p.Username)
	}
	if _, err := c.Create(ctx, person("MiXeD"), true); err != nil {
		t.Fatal(err)
	}

	s.ResetCounters()
	got, err := c.Find(ctx, []string{"user01", "user02", "user03"})
	if err != nil || len(got) != 3 || got["user02"].UserName != "user02" || got["user02"].Attributes["title"] != "Engineer" {
		t.Fatalf("Find of three: %+v, %v", got, err)
	}
	if r := requests(s.Counters()); !cmp.Equal(r, map[string]int{scimtest.KindLookup: 3}) {
		t.Errorf("Find of three existing users sent %v; want three lookups", r)
	}

	// More than 20: one listing (31 users fit a page), whatever the case.
	s.ResetCounters()
	many := append([]string{"mixed", "nobody"}, names[:25]...)
	many[5] = strings.ToUpper(many[5])
	got, err = c.Find(ctx, many)
	if err != nil || len(got) != 26 || got["mixed"].UserName != "MiXeD" || got["nobody"].ID != "" {
		t.Fatalf("Find of 27: %d found, %v; want 26 with MiXeD", len(got), err)
	}
	if r := requests(s.Counters()); !cmp.Equal(r, map[string]int{scimtest.KindList: 1}) {
		t.Errorf("Find of 27 sent %v; want one listing", r)
	}

	// A few names, one of them in other case than the server's. SCIMMY's
	// eq is case-sensitive: the lookup misses, so the client learns that
	// (one lookup in swapped case of a user it found) and lists.
	s.ResetCounters()
	got, err = c.Find(ctx, []string{"mixed", "user04", "nobody"})
	if err != nil || len(got) != 2 || got["mixed"].UserName != "MiXeD" || got["user04"].ID == "" {
		t.Fatalf("Find(mixed, user04, nobody): %+v, %v; want MiXeD and user04", got, err)
	}
	if r := requests(s.Counters()); !cmp.Equal(r, map[string]int{scimtest.KindLookup: 4, scimtest.KindList: 1}) {
		t.Errorf("first Find with a miss sent %v; want 3 lookups, 1 to learn the filter's case, 1 listing", r)
	}
	// Learnt once: a miss is now a lookup and the listing.
	s.ResetCounters()
	got, err = c.Find(ctx, []string{"MIXED"})
	if err != nil || got["mixed"].UserName != "MiXeD" {
		t.Fatalf("Find(MIXED): %+v, %v", got, err)
	}
	if r := requests(s.Counters()); !cmp.Equal(r, map[string]int{scimtest.KindLookup: 1, scimtest.KindList: 1}) {
		t.Errorf("Find(MIXED) sent %v; want a lookup and a listing", r)
	}

	// A fresh client with only misses learns from the first user listed.
	c2 := open(t, s, s.URL(), "")
	s.ResetCounters()
	got, err = c2.Find(ctx, []string{"mixed"})
	if err != nil || got["mixed"].UserName != "MiXeD" {
		t.Fatalf("fresh client, Find(mixed): %+v, %v", got, err)
	}
	if r := requests(s.Counters()); !cmp.Equal(r, map[string]int{scimtest.KindLookup: 2, scimtest.KindList: 2}) {
		t.Errorf("fresh client, Find(mixed) sent %v; want a lookup, a page of one, a lookup to learn, the listing", r)
	}

	// Names a filter must quote.
	for _, n := range []string{`o'brien`, `say "hi"`, `back\slash`, "space d"} {
		if _, err := c.Create(ctx, person(n), true); err != nil {
			t.Fatalf("create %q: %v", n, err)
		}
		if got, err := c.Find(ctx, []string{n}); err != nil || got[model.FoldUsername(n)].UserName != n {
			t.Errorf("Find(%q): %+v, %v", n, got, err)
		}
	}

	if got, err := c.Find(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("Find of nothing: %v, %v", got, err)
	}
}

// TestUpdatePatch: SCIMMY advertises PATCH; an update is one PATCH that
// replaces what has a value and removes what has none.
func TestUpdatePatch(t *testing.T) {
	t.Parallel()
	s := scimtest.Start(t, scimtest.Options{})
	c := open(t, s, s.URL(), "")
	ctx := t.Context()
	p := person("carol")
	u, err := c.Create(ctx, p, true)
	if err != nil {
		t.Fatal(err)
	}
	// The application adds a home email and a phone of its own: an
	// update must leave them.
	if st, m := raw(t, s, http.MethodPatch, "/Users/"+u.ID, patch(
		map[string]any{"op": "add", "path": "emails", "value": []any{map[string]any{"type": "home", "value": "carol@home.example"}}},
		map[string]any{"op": "add", "path": "phoneNumbers", "value": []any{map[string]any{"type": "work", "value": "+1 555 0100"}}},
	)); st != http.StatusOK {
		t.Fatalf("add home email: %d %v", st, m)
	}

	p.Title, p.FamilyName, p.Email, p.Department, p.GivenName = "", "", "carol@new.example", "Sales", "Caroline"
	s.ResetCounters()
	u2, err := c.Update(ctx, u, p, true)
	if err != nil {
		t.Fatal(err)
	}
	// The create read the server's features already.
	if r := requests(s.Counters()); !cmp.Equal(r, map[string]int{scimtest.KindPatch: 1}) {
		t.Errorf("update sent %v; want one PATCH", r)
	}
	got := s.UserByName("carol")
	if got.Title != "" || got.Name == nil || got.Name.FamilyName != "" || got.Name.GivenName != "Caroline" ||
		!cmp.Equal(workEmails(*got), []string{"carol@new.example"}) || got.Enterprise == nil || got.Enterprise.Department != "Sales" ||
		!got.IsActive() || !strings.Contains(string(got.Raw), "carol@home.example") || !strings.Contains(string(got.Raw), "+1 555 0100") {
		t.Errorf("after the update the server holds %s", got.Raw)
	}
	if _, ok := rawUser(t, s, "carol")["title"]; ok {
		t.Errorf("title is still there: %s", got.Raw)
	}
	if diff := cmp.Diff(c.Render(p, true), u2.Attributes); diff != "" {
		t.Errorf("the update answered (-render +answer):\n%s", diff)
	}

	// The same again changes nothing: SCIMMY answers 204 with no body.
	s.ResetCounters()
	u3, err := c.Update(ctx, u2, p, true)
	if err != nil {
		t.Fatal(err)
	}
	if r := requests(s.Counters()); !cmp.Equal(r, map[string]int{scimtest.KindPatch: 1}) || s.Counters().Statuses[204] != 1 {
		t.Errorf("an update that changes nothing sent %v, answered %v; want one PATCH, 204", r, s.Counters().Statuses)
	}
	if u3.ID != u.ID || u3.UserName != "carol" || !u3.Active {
		t.Errorf("after a 204: %+v", u3)
	}

	// Blocked, and the email emptied: a remove of the work email.
	p.Email = ""
	if _, err := c.Update(ctx, u3, p, false); err != nil {
		t.Fatal(err)
	}
	got = s.UserByName("carol")
	if got.IsActive() || len(workEmails(*got)) != 0 || !strings.Contains(string(got.Raw), "carol@home.example") {
		t.Errorf("after emptying the email, the server holds %s", got.Raw)
	}
	// An email again, for a user with no work email: SCIMMY answers the
	// replace by path noTarget; the client reads the user and adds it.
	p.Email = "carol@again.example"
	s.ResetCounters()
	if _, err := c.Update(ctx, u3, p, true); err != nil {
		t.Fatal(err)
	}
	if r := requests(s.Counters()); !cmp.Equal(r, map[string]int{scimtest.KindPatch: 2, scimtest.KindGet: 1}) {
		t.Errorf("adding a work email sent %v; want PATCH, GET, PATCH", r)
	}
	got = s.UserByName("carol")
	if !cmp.Equal(workEmails(*got), []string{"carol@again.example"}) || !got.IsActive() {
		t.Errorf("after adding the email, the server holds %s", got.Raw)
	}

	// userName changes case.
	p.Username = "Carol"
	if u, err = c.Update(ctx, u3, p, true); err != nil || u.UserName != "Carol" || s.UserByName("carol").UserName != "Carol" {
		t.Errorf("rename to Carol: %+v, %v", u, err)
	}

	// Deactivate: one PATCH of active.
	s.ResetCounters()
	if u, err = c.Deactivate(ctx, u); err != nil || u.Active {
		t.Fatalf("deactivate: %+v, %v", u, err)
	}
	if got = s.UserByName("carol"); got.IsActive() || got.Title != "" || got.DisplayName != p.DisplayName {
		t.Errorf("after deactivate: %s", got.Raw)
	}
	if r := requests(s.Counters()); !cmp.Equal(r, map[string]int{scimtest.KindPatch: 1}) {
		t.Errorf("deactivate sent %v", r)
	}
	// Again: nothing changes (204).
	if u, err = c.Deactivate(ctx, u); err != nil || u.Active {
		t.Fatalf("deactivate again: %+v, %v", u, err)
	}

	// Update and deactivate of a user gone: ErrNotFound.
	if st, _ := raw(t, s, http.MethodDelete, "/Users/"+u.ID, nil); st != http.StatusNoContent {
		t.Fatalf("delete: %d", st)
	}
	if _, err := c.Update(ctx, u, p, true); !errors.Is(err, target.ErrNotFound) {
		t.Errorf("update of a user gone: %v", err)
	}
	if _, err := c.Deactivate(ctx, u); !errors.Is(err, target.ErrNotFound) {
		t.Errorf("deactivate of a user gone: %v", err)
	}
}

func patch(ops ...map[string]any) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops}
}

// TestUpdatePut: a server without PATCH gets PUT. The harness has no
// option for it, so a reverse proxy in front of it rewrites
// /ServiceProviderConfig to patch.supported: false.
func TestUpdatePut(t *testing.T) {
	t.Parallel()
	s := scimtest.Start(t, scimtest.Options{})
	c := open(t, s, noPatch(t, s), "")
	ctx := t.Context()
	p := person("dave")
	u, err := c.Create(ctx, p, true)
	if err != nil {
		t.Fatal(err)
	}
	if st, m := raw(t, s, http.MethodPatch, "/Users/"+u.ID, patch(
		map[string]any{"op": "add", "path": "emails", "value": []any{map[string]any{"type": "home", "value": "dave@home.example"}}},
		map[string]any{"op": "add", "path": "phoneNumbers", "value": []any{map[string]any{"type": "work", "value": "+1 555 0101"}}},
	)); st != http.StatusOK {
		t.Fatalf("add home email: %d %v", st, m)
	}

	p.Title, p.Email, p.Department, p.DisplayName = "", "dave@new.example", "", "David"
	s.ResetCounters()
	u2, err := c.Update(ctx, u, p, false)
	if err != nil {
		t.Fatal(err)
	}
	if r := requests(s.Counters()); !cmp.Equal(r, map[string]int{scimtest.KindGet: 1, scimtest.KindReplace: 1}) {
		t.Errorf("update without PATCH sent %v; want a GET and a PUT", r)
	}
	got := s.UserByName("dave")
	if got.Title != "" || got.DisplayName != "David" || !cmp.Equal(workEmails(*got), []string{"dave@new.example"}) ||
		got.Enterprise != nil && got.Enterprise.Department != "" || got.IsActive() ||
		!strings.Contains(string(got.Raw), "dave@home.example") || !strings.Contains(string(got.Raw), "+1 555 0101") {
		t.Errorf("after the PUT, the server holds %s", got.Raw)
	}
	if diff := cmp.Diff(c.Render(p, false), u2.Attributes); diff != "" {
		t.Errorf("the PUT answered (-render +answer):\n%s", diff)
	}

	// Deactivate by PUT: read, send back inactive, nothing else changed.
	if u2, err = c.Update(ctx, u2, p, true); err != nil || !u2.Active {
		t.Fatalf("activate: %+v, %v", u2, err)
	}
	s.ResetCounters()
	u3, err := c.Deactivate(ctx, u2)
	if err != nil || u3.Active {
		t.Fatalf("deactivate: %+v, %v", u3, err)
	}
	if r := requests(s.Counters()); !cmp.Equal(r, map[string]int{scimtest.KindGet: 1, scimtest.KindReplace: 1}) {
		t.Errorf("deactivate without PATCH sent %v; want a GET and a PUT", r)
	}
	after := s.UserByName("dave")
	if after.IsActive() || after.DisplayName != "David" || !strings.Contains(string(after.Raw), "+1 555 0101") {
		t.Errorf("after the deactivating PUT, the server holds %s", after.Raw)
	}
}

// TestDelete: a user is deleted; one already gone is not an error.
func TestDelete(t *testing.T) {
	t.Parallel()
	s := scimtest.Start(t, scimtest.Options{})
	c := open(t, s, s.URL(), "")
	ctx := t.Context()
	u, err := c.Create(ctx, person("erin"), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, u); err != nil {
		t.Fatal(err)
	}
	if s.UserByName("erin") != nil {
		t.Fatal("erin is still there")
	}
	s.ResetCounters()
	if err := c.Delete(ctx, u); err != nil {
		t.Errorf("deleting a user gone: %v", err)
	}
	if st := s.Counters().Statuses; st[404] != 1 {
		t.Errorf("statuses %v; want the 404 the client took for done", st)
	}
}

// TestList: 250 users in three pages; SCIMMY would answer a fourth with
// the first page again, so the client stops on totalResults.
func TestList(t *testing.T) {
	t.Parallel()
	s := scimtest.Start(t, scimtest.Options{})
	c := open(t, s, s.URL(), "")
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 250)
	for w := range 5 {
		wg.Go(func() {
			for i := w; i < 250; i += 5 {
				if _, err := c.Create(ctx, person(fmt.Sprintf("u%03d", i)), i%3 != 0); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s.ResetCounters()
	seen := map[string]bool{}
	active := 0
	err := c.List(ctx, func(u target.User) error {
		if seen[u.ID] {
			t.Errorf("%s (%s) listed twice", u.UserName, u.ID)
		}
		seen[u.ID] = true
		if u.Active {
			active++
		}
		return nil
	})
	if err != nil || len(seen) != 250 || active != 166 {
		t.Fatalf("listed %d users, %d active, %v; want 250, 166", len(seen), active, err)
	}
	if r := requests(s.Counters()); !cmp.Equal(r, map[string]int{scimtest.KindList: 3}) {
		t.Errorf("the listing sent %v; want three pages", r)
	}
	// each's error ends the listing.
	stop := errors.New("enough")
	if err := c.List(ctx, func(target.User) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("List with each failing: %v", err)
	}
}

// TestETag: with the harness's ETag layer, writes carry If-Match; a user
// changed behind seatsync's back answers 412, and the client reads it
// again and retries once.
func TestETag(t *testing.T) {
	t.Parallel()
	s := scimtest.Start(t, scimtest.Options{ETag: true})
	c := open(t, s, s.URL(), "")
	ctx := t.Context()
	p := person("fay")
	u, err := c.Create(ctx, p, true)
	if err != nil {
		t.Fatal(err)
	}
	if u.ETag == "" || u.ETag != s.UserByName("fay").Meta.Version {
		t.Fatalf("created with ETag %q, the server's version is %q", u.ETag, s.UserByName("fay").Meta.Version)
	}
	// Changed behind seatsync's back: u.ETag is stale.
	if st, m := raw(t, s, http.MethodPatch, "/Users/"+u.ID, patch(map[string]any{"op": "replace", "path": "title", "value": "Intern"})); st != http.StatusOK {
		t.Fatalf("change behind the back: %d %v", st, m)
	}
	s.ResetCounters()
	p.Title = "Chief"
	u2, err := c.Update(ctx, u, p, true)
	if err != nil {
		t.Fatal(err)
	}
	cs := s.Counters()
	if r := requests(cs); !cmp.Equal(r, map[string]int{scimtest.KindPatch: 2, scimtest.KindGet: 1}) || cs.Statuses[412] != 1 {
		t.Errorf("update with a stale ETag sent %v, answered %v; want PATCH (412), GET, PATCH", r, cs.Statuses)
	}
	if got := s.UserByName("fay"); got.Title != "Chief" || u2.ETag != got.Meta.Version {
		t.Errorf("after the retry: title %q, ETag %q, version %q", got.Title, u2.ETag, got.Meta.Version)
	}

	// With the ETag it was given, the next write passes at once; a
	// PATCH that changes nothing (204, no ETag header) is read again for
	// its ETag.
	s.ResetCounters()
	u3, err := c.Update(ctx, u2, p, true)
	if err != nil {
		t.Fatal(err)
	}
	if r := requests(s.Counters()); !cmp.Equal(r, map[string]int{scimtest.KindPatch: 1, scimtest.KindGet: 1}) || s.Counters().Statuses[412] != 0 {
		t.Errorf("update with a fresh ETag sent %v; want one PATCH, no 412, then a GET for the ETag", r)
	}
	if u3.ETag != s.UserByName("fay").Meta.Version {
		t.Errorf("ETag %q after a 204, the version is %q", u3.ETag, s.UserByName("fay").Meta.Version)
	}

	// Deactivate and delete with a stale ETag.
	raw(t, s, http.MethodPatch, "/Users/"+u.ID, patch(map[string]any{"op": "replace", "path": "title", "value": "Gone"}))
	s.ResetCounters()
	u4, err := c.Deactivate(ctx, u3)
	if err != nil || u4.Active || s.UserByName("fay").IsActive() {
		t.Fatalf("deactivate with a stale ETag: %+v, %v", u4, err)
	}
	if s.Counters().Statuses[412] != 1 {
		t.Errorf("deactivate: statuses %v; want one 412", s.Counters().Statuses)
	}
	raw(t, s, http.MethodPatch, "/Users/"+u.ID, patch(map[string]any{"op": "replace", "path": "title", "value": "Really gone"}))
	s.ResetCounters()
	if err := c.Delete(ctx, u4); err != nil || s.UserByName("fay") != nil {
		t.Fatalf("delete with a stale ETag: %v", err)
	}
	if st := s.Counters().Statuses; st[412] != 1 || st[204] != 1 {
		t.Errorf("delete: statuses %v; want a 412, then the delete", st)
	}
	// Twice changed behind its back: the retry is once.
	u5, err := c.Create(ctx, person("gil"), true)
	if err != nil {
		t.Fatal(err)
	}
	raw(t, s, http.MethodPatch, "/Users/"+u5.ID, patch(map[string]any{"op": "replace", "path": "title", "value": "x"}))
	var once sync.Once
	c2 := open(t, s, changeOnGet(t, s, u5.ID, &once), "")
	if _, err := c2.Update(ctx, u5, person("gil"), true); asError(t, err).Status != http.StatusPreconditionFailed {
		t.Errorf("update of a user changed again after the re-read: %v; want the 412", err)
	}
}

// changeOnGet is a proxy in front of s that, on the first GET of user
// id, changes that user right after answering: the client's one retry
// meets a 412 again.
func changeOnGet(t *testing.T, s *scimtest.Server, id string, once *sync.Once) string {
	t.Helper()
	return proxy(t, s, func(r *http.Response) error {
		if r.Request.Method == http.MethodGet && strings.HasSuffix(r.Request.URL.Path, "/Users/"+id) {
			once.Do(func() {
				raw(t, s, http.MethodPatch, "/Users/"+id, patch(map[string]any{"op": "replace", "path": "title", "value": "again"}))
			})
		}
		return nil
	})
}

// TestFaults: what the client makes of a 429, a 500, a 400 and a 401.
func TestFaults(t *testing.T) {
	t.Parallel()
	s := scimtest.Start(t, scimtest.Options{})
	ctx := t.Context()
	c := open(t, s, s.URL(), "    timeout: 10s\n")

	t.Run("429 waited out", func(t *testing.T) {
		s.SetFaults(scimtest.Faults{RateLimit: 1, RetryAfter: 2})
		defer s.SetFaults(scimtest.Faults{})
		if _, err := c.Create(ctx, person("hal"), true); err != nil {
			t.Fatalf("create through a 429 with Retry-After: 2 and a 10s timeout: %v", err)
		}
		if s.Counters().Faults[429] != 1 || s.UserByName("hal") == nil {
			t.Errorf("faults %v; hal %v", s.Counters().Faults, s.UserByName("hal"))
		}
	})
	t.Run("429 longer than the timeout", func(t *testing.T) {
		short := open(t, s, s.URL(), "    timeout: 1s\n")
		s.SetFaults(scimtest.Faults{RateLimit: 1, RetryAfter: 2})
		defer s.SetFaults(scimtest.Faults{})
		_, err := short.Create(ctx, person("ivy"), true)
		te := asError(t, err)
		if te.Status != http.StatusTooManyRequests || target.Permanent(err) ||
			!strings.Contains(err.Error(), "Retry-After") || !strings.Contains(err.Error(), "2s") || !strings.Contains(err.Error(), "1s timeout") {
			t.Errorf("a 429 asking 2s with a 1s timeout: %v (permanent %v)", err, target.Permanent(err))
		}
	})
	t.Run("500", func(t *testing.T) {
		s.SetFaults(scimtest.Faults{FailEvery: 1})
		defer s.SetFaults(scimtest.Faults{})
		_, err := c.Create(ctx, person("jay"), true)
		if te := asError(t, err); te.Status != http.StatusInternalServerError || target.Permanent(err) || !strings.Contains(err.Error(), "injected fault") {
			t.Errorf("a 500: %v (permanent %v)", err, target.Permanent(err))
		}
	})
	t.Run("400 for one user", func(t *testing.T) {
		s.SetFaults(scimtest.Faults{Invalid: map[string]string{"kim": "kim's title is not allowed here"}})
		defer s.SetFaults(scimtest.Faults{})
		_, err := c.Create(ctx, person("Kim"), true)
		te := asError(t, err)
		if te.Status != http.StatusBadRequest || !target.Permanent(err) || !strings.Contains(err.Error(), "kim's title is not allowed here") ||
			!strings.Contains(err.Error(), "invalidValue") {
			t.Errorf("a 400 invalidValue: %v (permanent %v)", err, target.Permanent(err))
		}
		if _, err := c.Create(ctx, person("lee"), true); err != nil {
			t.Errorf("another user: %v", err)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		const wrong = "wrong-token-6f1c2b"
		bad := openToken(t, s.URL(), wrong, "")
		u := target.User{ID: s.UserByName("lee").ID, UserName: "lee"}
		calls := map[string]func() error{
			"Find":       func() error { _, err := bad.Find(ctx, []string{"lee"}); return err },
			"Create":     func() error { _, err := bad.Create(ctx, person("max"), true); return err },
			"Update":     func() error { _, err := bad.Update(ctx, u, person("lee"), true); return err },
			"Deactivate": func() error { _, err := bad.Deactivate(ctx, u); return err },
			"Delete":     func() error { return bad.Delete(ctx, u) },
			"List":       func() error { return bad.List(ctx, func(target.User) error { return nil }) },
		}
		for name, call := range calls {
			for range 2 { // the features are asked again after a 401, not remembered
				err := call()
				if !errors.Is(err, target.ErrUnauthorized) || target.Permanent(err) {
					t.Errorf("%s with a wrong token: %v; want ErrUnauthorized", name, err)
					continue
				}
				if msg := err.Error(); !strings.Contains(msg, "refused the token") || !strings.Contains(msg, "not valid") ||
					strings.Contains(msg, wrong) || strings.Contains(msg, s.Token()) {
					t.Errorf("%s: the error %q should name the problem, and never the token", name, msg)
				}
			}
		}
		if n := s.Counters().Statuses[401]; n != 12 {
			t.Errorf("%d answers 401, want one per call", n)
		}
		if s.UserByName("max") != nil || !s.UserByName("lee").IsActive() {
			t.Error("a request with a wrong token changed something")
		}
	})
	t.Run("server gone", func(t *testing.T) {
		gone := openToken(t, "http://127.0.0.1:1/scim/v2", "x", "    timeout: 2s\n")
		_, err := gone.Create(ctx, person("ned"), true)
		if te := asError(t, err); te.Status != 0 || target.Permanent(err) {
			t.Errorf("no server: %v", err)
		}
	})
}

// TestRender: what the client would send for a profile is what List and
// Find answer for the user it created, so that verify finds no drift,
// with fields empty too.
func TestRender(t *testing.T) {
	t.Parallel()
	s := scimtest.Start(t, scimtest.Options{})
	c := open(t, s, s.URL(), "")
	ctx := t.Context()
	full := person("olga")
	noTitle := person("pam")
	noTitle.Title = ""
	noEmail := person("quinn")
	noEmail.Email = ""
	bare := &model.Profile{Username: "rob", Area: "primary", State: model.Blocked}
	oneName := person("sue")
	oneName.GivenName, oneName.Department, oneName.DisplayName = "", "", ""
	odd := person("tim")
	odd.Title, odd.DisplayName = `  spaces & "quotes" <b>é</b>  `, "Tím Ünïcode"
	cases := []struct {
		p      *model.Profile
		active bool
	}{{full, true}, {noTitle, true}, {noEmail, false}, {bare, false}, {oneName, true}, {odd, true}}
	for _, tc := range cases {
		if _, err := c.Create(ctx, tc.p, tc.active); err != nil {
			t.Fatalf("create %s: %v", tc.p.Username, err)
		}
	}
	check := func(when string) {
		t.Helper()
		listed := map[string]target.User{}
		if err := c.List(ctx, func(u target.User) error { listed[u.UserName] = u; return nil }); err != nil {
			t.Fatal(err)
		}
		names := make([]string, len(cases))
		for i, tc := range cases {
			names[i] = tc.p.Username
		}
		found, err := c.Find(ctx, names)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range cases {
			want := c.Render(tc.p, tc.active)
			if diff := cmp.Diff(want, listed[tc.p.Username].Attributes); diff != "" {
				t.Errorf("%s: %s: Render and List differ (-render +list):\n%s", when, tc.p.Username, diff)
			}
			if diff := cmp.Diff(want, found[tc.p.Username].Attributes); diff != "" {
				t.Errorf("%s: %s: Render and Find differ (-render +find):\n%s", when, tc.p.Username, diff)
			}
		}
	}
	check("created")

	// Each profile takes another's fields: updates that fill and empty.
	users, err := c.Find(ctx, []string{"olga", "pam", "quinn", "rob", "sue", "tim"})
	if err != nil {
		t.Fatal(err)
	}
	next := make([]*model.Profile, len(cases))
	for i := range cases {
		p := *cases[(i+1)%len(cases)].p
		p.Username = cases[i].p.Username
		next[i] = &p
	}
	for i := range cases {
		if _, err := c.Update(ctx, users[next[i].Username], next[i], !cases[i].active); err != nil {
			t.Fatalf("update %s: %v", next[i].Username, err)
		}
		cases[i].p, cases[i].active = next[i], !cases[i].active
	}
	check("updated")
}

// TestPace: max_requests_per_second paces the client. The test counts
// what the server saw against the most the pace allows over the time it
// took (one at once, then the rate): never more, however slow the
// machine.
func TestPace(t *testing.T) {
	t.Parallel()
	s := scimtest.Start(t, scimtest.Options{})
	def, err := scim.Kind.Open(targetConfig(t, s.URL(), s.Token(), ""), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if got := def.(*scim.Client).RequestsPerSecond(); got != 10 {
		t.Errorf("default pace %v, want 10 a second", got)
	}
	if got := open(t, s, s.URL(), "    max_requests_per_second: 0\n").RequestsPerSecond(); got != 0 {
		t.Errorf("max_requests_per_second: 0 paces at %v", got)
	}
	c := open(t, s, s.URL(), "    max_requests_per_second: 5\n")
	if got := c.RequestsPerSecond(); got != 5 {
		t.Fatalf("pace %v, want 5", got)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	s.ResetCounters()
	start := time.Now()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				_, _ = c.Find(ctx, []string{"nobody"})
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	n := s.Counters().Total
	if most := 1 + 5*elapsed.Seconds(); float64(n) > most+1 || n < 2 {
		t.Errorf("%d requests in %s at 5 a second; want at least 2 and at most %.0f", n, elapsed, most)
	}
}

// TestRemember: what a client learnt of the server's features is handed
// to the next run's client, which then sends no /ServiceProviderConfig
// request; a memory it cannot read is ignored.
func TestRemember(t *testing.T) {
	t.Parallel()
	s := scimtest.Start(t, scimtest.Options{})
	ctx := t.Context()
	first := open(t, s, s.URL(), "")
	if m := first.Memory(); m != "" {
		t.Fatalf("a new client's memory = %q, want none", m)
	}
	p := person("remy")
	u, err := first.Create(ctx, p, true)
	if err != nil {
		t.Fatal(err)
	}
	p.Title = "Chef"
	if _, err := first.Update(ctx, u, p, true); err != nil {
		t.Fatal(err)
	}
	memory := first.Memory()
	if memory != "patch=true etag=false" {
		t.Fatalf("memory after an update = %q", memory)
	}
	next := open(t, s, s.URL(), "")
	next.Remember(memory)
	s.ResetCounters()
	p.Title = "Head chef"
	if _, err := next.Update(ctx, u, p, true); err != nil {
		t.Fatal(err)
	}
	if r := requests(s.Counters()); !cmp.Equal(r, map[string]int{scimtest.KindPatch: 1}) {
		t.Errorf("an update by a client that remembers sent %v; want one PATCH", r)
	}
	garbled := open(t, s, s.URL(), "")
	garbled.Remember("patch=maybe")
	if m := garbled.Memory(); m != "" {
		t.Errorf("a garbled memory was taken: %q", m)
	}
}
