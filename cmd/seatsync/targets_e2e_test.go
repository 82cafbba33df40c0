package main_test

// End-to-end tests of SCIM targets (SPEC section 14) through the binary:
// each test starts a real SCIM server (SCIMMY, internal/scimtest), points
// a site's target at it, runs seatsync, and then reads the application's
// users back through the application's own SCIM API, to check what a
// person logging in there would find: one user per profile, active
// exactly when the profile is, never more active users than seats.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seatsync/seatsync/internal/scimtest"
)

// exitPushes is SPEC section 6's exit 5: the store was updated, pushes to
// a target failed or are still pending.
const exitPushes = 5

// scimSite is a site with one SCIM target, "intranet", served by a real
// SCIM server.
type scimSite struct {
	*site
	app *scimtest.Server
}

// targetOptions shape the target section of a scimSite's configuration.
type targetOptions struct {
	token string // the token seatsync is given; the server's when empty
	keys  string // more keys of the target, each line indented by four spaces
	app   scimtest.Options
}

func newSCIMSite(t *testing.T, opt siteOptions, topt targetOptions, people ...string) *scimSite {
	t.Helper()
	app := scimtest.Start(t, topt.app)
	s := &scimSite{site: newSite(t, opt, people...), app: app}
	s.setTarget(topt)
	return s
}

// setTarget writes the target section of the configuration, replacing
// the one written before.
func (s *scimSite) setTarget(topt targetOptions) {
	s.t.Helper()
	cfg := s.read("seatsync.yaml")
	if i := strings.Index(cfg, "\ntargets:\n"); i >= 0 {
		cfg = cfg[:i+1]
	}
	token := topt.token
	if token == "" {
		token = s.app.Token()
	}
	cfg += fmt.Sprintf(`targets:
  - name: intranet
    type: scim
    url: %s
    token: %q
    tls: {allow_insecure: true}
    max_requests_per_second: 1000
%s`, s.app.URL(), token, topt.keys)
	s.write("seatsync.yaml", cfg)
}

// onLeave sets the source's on_leave.
func (s *scimSite) onLeave(v string) {
	s.t.Helper()
	s.write("seatsync.yaml", strings.Replace(s.read("seatsync.yaml"), "on_leave: block", "on_leave: "+v, 1))
}

// targetResult is one entry of a report's targets list.
type targetResult struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Sent     int    `json:"sent"`
	Pending  int    `json:"pending"`
	Failed   int    `json:"failed"`
	Error    string `json:"error"`
	HeldBack int    `json:"held_back"`
	Failures []struct {
		Username string `json:"username"`
		Status   int    `json:"status"`
		Error    string `json:"error"`
	} `json:"failures"`
}

// targetsOf is the report's targets list, which must have intranet alone.
func targetsOf(t *testing.T, r result) targetResult {
	t.Helper()
	var rep struct {
		Targets []targetResult `json:"targets"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("the json report does not decode: %v\n%s", err, r)
	}
	if len(rep.Targets) != 1 || rep.Targets[0].Name != "intranet" || rep.Targets[0].Type != "scim" {
		t.Fatalf("the report's targets: %+v, want intranet (scim) alone\n%s", rep.Targets, r)
	}
	return rep.Targets[0]
}

// targetStatus is `targets status --format json`'s entry for intranet.
type targetStatus struct {
	Name     string `json:"name"`
	Linked   int    `json:"linked"`
	Pending  int    `json:"pending"`
	Failed   int    `json:"failed"`
	Failures []struct {
		Username string `json:"username"`
		Status   int    `json:"status"`
		Error    string `json:"error"`
	} `json:"failures"`
	Retrying []struct {
		Username string `json:"username"`
		Attempts int    `json:"attempts"`
		Status   int    `json:"status"`
		Error    string `json:"error"`
	} `json:"retrying"`
}

func (s *scimSite) status() targetStatus {
	s.t.Helper()
	r := s.must(exitOK, "targets", "status", "-c", s.config, "--format", "json")
	var out []targetStatus
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out) != 1 || out[0].Name != "intranet" {
		s.t.Fatalf("targets status --format json: %v, %+v\n%s", err, out, r)
	}
	return out[0]
}

// appUsers reads the application's users, keyed by their userName in
// lower case; a second user of the same name fails the test.
func (s *scimSite) appUsers() map[string]scimtest.User {
	s.t.Helper()
	out := map[string]scimtest.User{}
	for _, u := range s.app.Users() {
		k := strings.ToLower(u.UserName)
		if prev, dup := out[k]; dup {
			s.t.Errorf("the application holds %q twice: ids %s and %s", u.UserName, prev.ID, u.ID)
		}
		out[k] = u
	}
	return out
}

// converged checks that the application holds exactly what the store
// does: one user per profile, with its userName and externalId, active
// exactly when the profile is. Users without a profile must be named:
// gone are users of deleted profiles (they must be inactive). Unmanaged
// users are not checked: users seatsync must not touch, whether or not a
// profile has their name. It returns the users.
func (s *scimSite) converged(gone []string, unmanaged ...string) map[string]scimtest.User {
	s.t.Helper()
	profiles := s.profiles()
	users := s.appUsers()
	for name, p := range profiles {
		u, ok := users[strings.ToLower(name)]
		switch {
		case slices.Contains(unmanaged, strings.ToLower(name)):
		case !ok:
			s.t.Errorf("%s (%s) is missing from the application", name, p.state())
		case u.UserName != name:
			s.t.Errorf("%s is %q in the application", name, u.UserName)
		case u.ExternalID != p["external_id"]:
			s.t.Errorf("%s has externalId %q in the application, want %v", name, u.ExternalID, p["external_id"])
		case u.IsActive() != (p["state"] == "active"):
			s.t.Errorf("%s is %s here but active=%v in the application", name, p.state(), u.IsActive())
		}
	}
	for k, u := range users {
		switch {
		case slices.Contains(unmanaged, k), profiles[u.UserName] != nil:
		case slices.Contains(gone, k):
			if u.IsActive() {
				s.t.Errorf("%s, whose profile was deleted, is still active in the application", u.UserName)
			}
		case slices.Contains(unmanaged, k):
		default:
			s.t.Errorf("the application has %q (active=%v), which has no profile", u.UserName, u.IsActive())
		}
	}
	for _, k := range gone {
		if _, ok := users[k]; !ok {
			s.t.Errorf("%s, whose profile was deleted, is gone from the application; want it deactivated", k)
		}
	}
	return users
}

// activeCount counts the application's active users.
func activeCount(users map[string]scimtest.User) int {
	n := 0
	for _, u := range users {
		if u.IsActive() {
			n++
		}
	}
	return n
}

// neverAbove checks the server's record of active users after every
// write since its counters were reset.
func (s *scimSite) neverAbove(limit int) {
	s.t.Helper()
	c := s.app.Counters()
	if c.MaxActive > limit {
		s.t.Errorf("the application held %d active users at one point, more than the %d seats", c.MaxActive, limit)
	}
	for _, a := range c.ActiveLog {
		if a.Active > limit {
			s.t.Errorf("after write %d (%s %s) the application held %d active users, more than the %d seats", a.Seq, a.Op, a.UserName, a.Active, limit)
			break
		}
	}
}

// scimAdmin sends one request to the application as its own admin would,
// beside seatsync, and decodes the answer.
func (s *scimSite) scimAdmin(method, path string, body any) map[string]any {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.app.URL()+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.app.Token())
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		s.t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	out := map[string]any{}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return out
}

// createAppUser creates a user directly in the application.
func (s *scimSite) createAppUser(userName string, active bool) string {
	s.t.Helper()
	u := s.scimAdmin(http.MethodPost, "/Users", map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": userName, "active": active, "title": "made by hand",
	})
	return u["id"].(string)
}

// setAppActive sets a user's active flag directly in the application.
func (s *scimSite) setAppActive(id string, active bool) {
	s.t.Helper()
	s.scimAdmin(http.MethodPatch, "/Users/"+id, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": active}},
	})
}

// employees is n people of the primary area: E001 user001, E002 user002, ...
func employees(n int) []string {
	rows := make([]string, n)
	for i := range rows {
		rows[i] = row(fmt.Sprintf("E%03d", i+1), fmt.Sprintf("user%03d", i+1))
	}
	return rows
}

// TestTargetSeats: a first sync of 60 people for 50 seats puts 60 users
// in the application, 50 of them active; an admin's block then frees a
// seat for the first in the queue, and at no moment does the application
// hold more than 50 active users.
func TestTargetSeats(t *testing.T) {
	t.Parallel()
	s := newSCIMSite(t, siteOptions{primaryLimit: "50"}, targetOptions{}, employees(60)...)
	r := s.must(exitOK, "sync", "-c", s.config, "--format", "json")
	rep := decodeReport(t, r)
	if tr := targetsOf(t, r); tr.Sent != 60 || tr.Pending != 0 || tr.Failed != 0 || tr.Error != "" {
		t.Errorf("first sync: targets[0] %+v, want 60 sent, 0 pending, 0 failed", tr)
	}
	users := s.converged(nil)
	if len(users) != 60 || activeCount(users) != 50 {
		t.Errorf("the application has %d users, %d active; want 60 and 50", len(users), activeCount(users))
	}
	s.neverAbove(50)

	// The first in the queue, and someone active to block.
	first, blocked := "", ""
	for _, c := range rep.Changes {
		switch {
		case c.QueuePosition == 1:
			first = c.Username
		case c.State == "active" && blocked == "":
			blocked = c.Username
		}
	}
	if first == "" || blocked == "" {
		t.Fatalf("the first sync's report has no queue position 1 or no active person: %+v", rep.Changes)
	}
	s.must(exitOK, "profiles", "block", "-c", s.config, blocked)
	if st := s.status(); st.Pending != 1 {
		t.Errorf("after profiles block: targets status %+v, want 1 pending", st)
	}
	s.app.ResetCounters()
	r = s.must(exitOK, "sync", "-c", s.config, "--format", "json")
	if tr := targetsOf(t, r); tr.Sent != 2 || tr.Pending != 0 {
		t.Errorf("the sync after a block: targets[0] %+v, want 2 sent (%s out, %s in), 0 pending", tr, blocked, first)
	}
	users = s.converged(nil)
	if users[blocked].IsActive() || !users[first].IsActive() {
		t.Errorf("in the application: %s active=%v, %s active=%v; want %s deactivated, %s activated",
			blocked, users[blocked].IsActive(), first, users[first].IsActive(), blocked, first)
	}
	if activeCount(users) != 50 {
		t.Errorf("the application has %d active users, want 50", activeCount(users))
	}
	s.neverAbove(50)
	// The deactivation went first.
	log := s.app.Counters().ActiveLog
	if len(log) != 2 || !strings.EqualFold(log[0].UserName, blocked) || !strings.EqualFold(log[1].UserName, first) {
		t.Errorf("the writes of the push: %+v, want %s's deactivation, then %s's activation", log, blocked, first)
	}
}

// TestTargetRename: a login changed in the export, for the same employee
// id, renames the user in the application in place.
func TestTargetRename(t *testing.T) {
	t.Parallel()
	s := newSCIMSite(t, siteOptions{primaryLimit: "10"}, targetOptions{}, employees(3)...)
	s.must(exitOK, "sync", "-c", s.config)
	before := s.converged(nil)["user002"]

	s.people(row("E001", "user001"), row("E002", "renamed002"), row("E003", "user003"))
	r := s.must(exitOK, "sync", "-c", s.config, "--format", "json")
	if tr := targetsOf(t, r); tr.Sent != 1 || tr.Pending != 0 {
		t.Errorf("the sync of a rename: targets[0] %+v, want 1 sent", tr)
	}
	users := s.converged(nil)
	after, ok := users["renamed002"]
	if !ok || after.ID != before.ID || after.ExternalID != "E002" {
		t.Fatalf("after the rename: %+v, want the user %s (E002) renamed002", after, before.ID)
	}
	if _, ok := users["user002"]; ok || len(users) != 3 {
		t.Errorf("the old userName is still in the application, or a user was added: %v", users)
	}
	if len(after.Emails) != 1 || after.Emails[0].Value != "renamed002@example.com" {
		t.Errorf("renamed002's emails in the application: %+v", after.Emails)
	}
}

// TestTargetLeaving: a person who leaves the export is deactivated in the
// application; with on_leave: delete and on_delete: delete, deleted.
func TestTargetLeaving(t *testing.T) {
	t.Parallel()
	t.Run("deactivate", func(t *testing.T) {
		t.Parallel()
		s := newSCIMSite(t, siteOptions{primaryLimit: "10", maxDeprov: "50%"}, targetOptions{}, employees(4)...)
		s.must(exitOK, "sync", "-c", s.config)
		s.people(employees(3)...)
		s.must(exitOK, "sync", "-c", s.config)
		if p := s.profiles()["user004"]; p.state() != "blocked left_source" {
			t.Fatalf("user004 after leaving: %s", p.state())
		}
		if users := s.converged(nil); users["user004"].IsActive() {
			t.Errorf("user004 left and is still active in the application")
		}
	})
	t.Run("delete", func(t *testing.T) {
		t.Parallel()
		s := newSCIMSite(t, siteOptions{primaryLimit: "10", maxDeprov: "50%"}, targetOptions{keys: "    on_delete: delete\n"}, employees(4)...)
		s.onLeave("delete")
		s.must(exitOK, "sync", "-c", s.config)
		s.converged(nil)
		s.people(employees(3)...)
		r := s.must(exitOK, "sync", "-c", s.config, "--format", "json")
		if tr := targetsOf(t, r); tr.Sent != 1 {
			t.Errorf("the sync of a leaver: targets[0] %+v, want 1 sent", tr)
		}
		users := s.converged(nil)
		if _, ok := users["user004"]; ok || len(users) != 3 {
			t.Errorf("user004 left with on_delete: delete and is still in the application: %+v", users["user004"])
		}
		s.must(exitOK, "targets", "verify", "-c", s.config)
	})
}

// TestTargetAdopt: a user already in the application with the same
// userName in another case is linked, not created a second time; with
// adopt: false it is left as it is and reported.
func TestTargetAdopt(t *testing.T) {
	t.Parallel()
	t.Run("adopt", func(t *testing.T) {
		t.Parallel()
		s := newSCIMSite(t, siteOptions{primaryLimit: "10"}, targetOptions{}, employees(3)...)
		id := s.createAppUser("USER002", false)
		r := s.must(exitOK, "sync", "-c", s.config, "--format", "json")
		if tr := targetsOf(t, r); tr.Sent != 3 || tr.Failed != 0 {
			t.Errorf("targets[0] %+v, want 3 sent", tr)
		}
		users := s.converged(nil)
		if u := users["user002"]; u.ID != id || len(users) != 3 {
			t.Errorf("user002 is %s in the application (%d users), want the existing user %s linked", u.ID, len(users), id)
		}
		s.must(exitOK, "targets", "verify", "-c", s.config)
	})
	t.Run("no adopt", func(t *testing.T) {
		t.Parallel()
		s := newSCIMSite(t, siteOptions{primaryLimit: "10"}, targetOptions{keys: "    adopt: false\n"}, employees(3)...)
		id := s.createAppUser("USER002", false)
		orig := s.app.UserByName("USER002")
		r := s.must(exitPushes, "sync", "-c", s.config, "--format", "json")
		tr := targetsOf(t, r)
		if tr.Sent != 2 || tr.Failed != 1 || len(tr.Failures) != 1 || tr.Failures[0].Username != "user002" ||
			!strings.Contains(tr.Failures[0].Error, "adopt") {
			t.Errorf("targets[0] %+v, want 2 sent and user002 failed, with a message about adopt", tr)
		}
		users := s.converged(nil, "user002")
		if u := users["user002"]; u.ID != id || u.UserName != "USER002" || string(u.Raw) != string(orig.Raw) || len(users) != 3 {
			t.Errorf("with adopt: false, the application's USER002 was changed or duplicated: %s (was %s)", u.Raw, orig.Raw)
		}
		st := s.status()
		if st.Failed != 1 || len(st.Failures) != 1 || st.Failures[0].Username != "user002" || !strings.Contains(st.Failures[0].Error, "adopt") {
			t.Errorf("targets status: %+v, want user002 failed, about adopt", st)
		}
	})
}

// TestTargetServerKilled: the application dies half-way through a push.
// The store's changes stand, the sync exits 5, the pushes left are
// pending, and once the application is back the next sync sends them:
// no user twice, none missing.
func TestTargetServerKilled(t *testing.T) {
	t.Parallel()
	s := newSCIMSite(t, siteOptions{primaryLimit: "20"}, targetOptions{}, employees(24)...)
	s.app.SetFaults(scimtest.Faults{Latency: 150 * time.Millisecond})
	cmd := exec.Command(binary, "sync", "-c", s.config, "--format", "json")
	cmd.Dir = s.dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once the first users are in.
	for deadline := time.Now().Add(30 * time.Second); len(s.app.Users()) < 4; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no user reached the application in 30s")
		}
	}
	s.app.Kill()
	err := cmd.Wait()
	r := result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errOut.String()}
	if r.code != exitPushes {
		t.Fatalf("the sync whose application died: %v, want exit 5: %s", err, r)
	}
	tr := targetsOf(t, r)
	if tr.Pending == 0 || tr.Sent+tr.Pending != 24 {
		t.Errorf("targets[0] %+v, want some sent and the rest of the 24 pending", tr)
	}
	if got := s.profiles(); len(got) != 24 {
		t.Errorf("the store holds %d profiles after the push failed, want 24", len(got))
	}
	st := s.status()
	if st.Pending != tr.Pending {
		t.Errorf("targets status: %d pending, the report %d", st.Pending, tr.Pending)
	}
	r = s.must(exitOK, "targets", "status", "-c", s.config)
	if !strings.Contains(r.stdout, "intranet") || !strings.Contains(r.stdout, fmt.Sprint(tr.Pending)) {
		t.Errorf("targets status does not show the pending pushes:\n%s", r)
	}

	s.app.Restart()
	r = s.must(exitOK, "sync", "-c", s.config, "--format", "json")
	if tr2 := targetsOf(t, r); tr2.Pending != 0 || tr2.Failed != 0 {
		t.Errorf("the sync after the restart: targets[0] %+v, want nothing left", tr2)
	}
	users := s.converged(nil)
	if len(users) != 24 || activeCount(users) != 20 {
		t.Errorf("the application: %d users, %d active; want 24 and 20", len(users), activeCount(users))
	}
	s.must(exitOK, "targets", "verify", "-c", s.config)

	// Down before a push of changes to linked users (whose first request
	// asks for the ServiceProviderConfig): the same.
	rows := employees(24)
	rows[0] = row("E001", "user001", "active=no")
	rows[1] = row("E002", "renamed002")
	s.people(rows...)
	s.app.Kill()
	r = s.must(exitPushes, "sync", "-c", s.config, "--format", "json")
	if tr := targetsOf(t, r); tr.Sent != 0 || tr.Pending == 0 {
		t.Errorf("a sync while the application is down: targets[0] %+v, want everything pending", tr)
	}
	if st := s.status(); st.Pending == 0 || len(st.Retrying) == 0 || st.Retrying[0].Error == "" {
		t.Errorf("targets status while the application is down: %+v, want the pending pushes and why", st)
	}
	s.app.Restart()
	s.must(exitOK, "targets", "push", "-c", s.config)
	s.converged(nil)
	s.must(exitOK, "targets", "verify", "-c", s.config)
}

// TestTargetServerErrors: every third request answered 500, with and
// without the request carried out first (a lost answer); then 429s with
// Retry-After: 2, longer than the target's timeout. Each time the sync
// exits 5 with pushes pending, and the next push sends them.
func TestTargetServerErrors(t *testing.T) {
	t.Parallel()
	// changed makes six pushes of a site of employees(8) synced once:
	// two deactivations (disabled in the export), two new people, two
	// renames.
	changed := func() []string {
		rows := employees(8)
		rows[0] = row("E001", "user001", "active=no")
		rows[1] = row("E002", "user002", "active=no")
		rows[2] = row("E003", "renamed003")
		rows[3] = row("E004", "renamed004")
		return append(rows, row("E009", "user009"), row("E010", "user010"))
	}
	for _, tc := range []struct {
		name   string
		keys   string
		faults scimtest.Faults
		retry  string // how the pending pushes are sent: sync, or targets push
	}{
		{name: "500 every third", faults: scimtest.Faults{FailEvery: 3}, retry: "sync"},
		{name: "500 after apply", faults: scimtest.Faults{FailEvery: 3, FailMethods: []string{"POST", "PATCH", "PUT"}, FailAfterApply: true}, retry: "targets"},
		{name: "429", keys: "    timeout: 1s\n", faults: scimtest.Faults{RateLimit: 3, RetryAfter: 2}, retry: "sync"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSCIMSite(t, siteOptions{primaryLimit: "20"}, targetOptions{keys: tc.keys}, employees(8)...)
			s.must(exitOK, "sync", "-c", s.config)
			users := s.converged(nil)
			// An attribute the application keeps and seatsync does not
			// map: no push may drop it (as a PUT would).
			for _, u := range []string{"user003", "user004"} {
				s.scimAdmin(http.MethodPatch, "/Users/"+users[u].ID, map[string]any{
					"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
					"Operations": []any{map[string]any{"op": "add", "path": "nickName", "value": "Nick"}},
				})
			}

			s.people(changed()...)
			s.app.SetFaults(tc.faults)
			r := s.must(exitPushes, "sync", "-c", s.config, "--format", "json")
			tr := targetsOf(t, r)
			if tr.Pending == 0 || tr.Sent+tr.Pending+tr.Failed != 6 {
				t.Errorf("targets[0] %+v, want some of the 6 pushes pending", tr)
			}
			if !strings.Contains(r.stderr, "intranet") {
				t.Errorf("stderr does not name the target:\n%s", r.stderr)
			}
			got := s.profiles()
			if len(got) != 10 || got["renamed003"] == nil || got["user001"].state() != "blocked source_disabled" {
				t.Errorf("the store after the failed pushes: %v", got)
			}
			st := s.status()
			if st.Pending != tr.Pending || len(st.Retrying) == 0 {
				t.Errorf("targets status %+v, want the %d pending pushes, and why", st, tr.Pending)
			}
			for _, p := range st.Retrying {
				if p.Error == "" || p.Attempts == 0 {
					t.Errorf("targets status: %+v says nothing of why", p)
				}
			}
			text := s.must(exitOK, "targets", "status", "-c", s.config).stdout
			for _, p := range st.Retrying {
				if !strings.Contains(text, p.Username) {
					t.Errorf("targets status (text) does not name %s:\n%s", p.Username, text)
				}
			}

			s.app.SetFaults(scimtest.Faults{})
			if tc.retry == "sync" {
				r = s.must(exitOK, "sync", "-c", s.config, "--format", "json")
				if tr2 := targetsOf(t, r); tr2.Sent != tr.Pending || tr2.Pending != 0 {
					t.Errorf("the next sync: targets[0] %+v, want the %d pending sent", tr2, tr.Pending)
				}
			} else {
				s.must(exitOK, "targets", "push", "-c", s.config)
			}
			users = s.converged(nil)
			if len(users) != 10 {
				t.Errorf("the application has %d users, want 10", len(users))
			}
			for _, u := range []string{"renamed003", "renamed004"} {
				if raw := string(users[u].Raw); !strings.Contains(raw, `"nickName":"Nick"`) {
					t.Errorf("%s lost the nickName the application gave it: %s", u, raw)
				}
			}
			if st := s.status(); st.Pending != 0 || st.Failed != 0 || st.Linked != 10 {
				t.Errorf("targets status at the end: %+v", st)
			}
			s.must(exitOK, "targets", "verify", "-c", s.config)
		})
	}
	t.Run("429 waited out", func(t *testing.T) {
		t.Parallel()
		s := newSCIMSite(t, siteOptions{primaryLimit: "20"}, targetOptions{keys: "    timeout: 5s\n"}, employees(8)...)
		s.must(exitOK, "sync", "-c", s.config)
		s.people(changed()...)
		s.app.SetFaults(scimtest.Faults{RateLimit: 2, RetryAfter: 2})
		r := s.must(exitOK, "sync", "-c", s.config, "--format", "json")
		if tr := targetsOf(t, r); tr.Sent != 6 || tr.Pending != 0 {
			t.Errorf("targets[0] %+v, want the 6 sent once the 429s were waited out", tr)
		}
		if c := s.app.Counters(); c.Faults[429] != 2 {
			t.Errorf("the server answered %d 429s, want 2", c.Faults[429])
		}
		s.converged(nil)
	})
}

// TestTargetCrash: `seatsync sync` killed with SIGKILL during a long push
// (every request slowed down), at several points of it: before its first
// request is answered, and after 1, 3, 6 and 10 of its writes. Each time
// the next sync converges: no user twice, none missing, none in the wrong
// state, and never more active users than seats.
func TestTargetCrash(t *testing.T) {
	t.Parallel()
	const seats = 20
	s := newSCIMSite(t, siteOptions{primaryLimit: fmt.Sprint(seats), maxDeprov: "100%"}, targetOptions{}, employees(20)...)
	s.must(exitOK, "sync", "-c", s.config)
	s.converged(nil)
	rows := employees(40)
	for i, writes := range []int{0, 1, 3, 6, 10} {
		// Each round disables or enables a third of the people, and
		// brings in four new ones: deactivations, activations from the
		// queue, creates.
		n := 20 + 4*(i+1)
		for j := range rows[:n] {
			if j%3 == i%3 {
				if strings.HasSuffix(rows[j], ";no") {
					rows[j] = strings.TrimSuffix(rows[j], ";no") + ";yes"
				} else {
					rows[j] = strings.TrimSuffix(rows[j], ";yes") + ";no"
				}
			}
		}
		s.people(rows[:n]...)
		s.app.ResetCounters()
		s.app.SetFaults(scimtest.Faults{Latency: 100 * time.Millisecond})
		cmd := s.startSync()
		exited := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(exited)
		}()
		killed := false
	wait:
		for {
			select {
			case <-exited:
				break wait
			case <-time.After(10 * time.Millisecond):
			}
			if c := s.app.Counters(); (writes == 0 && c.Total > 0) || (writes > 0 && len(c.ActiveLog) >= writes) {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				<-exited
				killed = true
				break
			}
		}
		s.app.SetFaults(scimtest.Faults{})
		st := s.status()
		t.Logf("round %d: killed=%v after %d writes (%d in), %d pushes pending", i, killed, writes, len(s.app.Counters().ActiveLog), st.Pending)

		r := s.run("sync", "-c", s.config, "--format", "json")
		if r.code != exitOK {
			t.Fatalf("round %d (killed after %d writes): the next sync: %s", i, writes, r)
		}
		if tr := targetsOf(t, r); tr.Pending != 0 || tr.Failed != 0 {
			t.Errorf("round %d: targets[0] %+v", i, tr)
		}
		users := s.converged(nil)
		if len(users) != n {
			t.Errorf("round %d: the application has %d users, want %d", i, len(users), n)
		}
		s.neverAbove(seats)
	}
	s.must(exitOK, "targets", "verify", "-c", s.config)
}

// TestTargetBadToken: a token the application refuses fails the target
// (exit 5), says so and names the target, and never prints a token.
func TestTargetBadToken(t *testing.T) {
	t.Parallel()
	const wrong = "wrong-token-0f3c9a7e55d1"
	s := newSCIMSite(t, siteOptions{primaryLimit: "10"}, targetOptions{token: wrong}, employees(3)...)
	secrets := func(r result) {
		t.Helper()
		for _, tok := range []string{wrong, s.app.Token()} {
			if strings.Contains(r.stdout+r.stderr, tok) {
				t.Errorf("a token is in the output:\n%s", r)
			}
		}
	}
	r := s.must(exitPushes, "sync", "-c", s.config, "--format", "json")
	secrets(r)
	tr := targetsOf(t, r)
	if tr.Sent != 0 || tr.Pending != 3 || !strings.Contains(tr.Error, "refused the token") {
		t.Errorf("targets[0] %+v, want 3 pending and an error saying the token was refused", tr)
	}
	if !strings.Contains(r.stderr, "intranet") || !strings.Contains(r.stderr, "token") {
		t.Errorf("stderr does not name the target and the token:\n%s", r.stderr)
	}
	if got := s.profiles(); len(got) != 3 {
		t.Errorf("the store holds %d profiles, want 3: the store's changes stand", len(got))
	}
	if n := len(s.app.Users()); n != 0 {
		t.Errorf("the application has %d users", n)
	}
	r = s.must(exitPushes, "sync", "-c", s.config) // text report
	secrets(r)
	r = s.must(exitPushes, "targets", "push", "-c", s.config)
	secrets(r)
	if !strings.Contains(r.stdout+r.stderr, "refused the token") {
		t.Errorf("targets push does not say the token was refused:\n%s", r)
	}
	r = s.run("targets", "verify", "-c", s.config)
	secrets(r)
	if r.code != exitFailed || !strings.Contains(r.stderr, "intranet") || !strings.Contains(r.stderr, "refused the token") {
		t.Errorf("targets verify with a refused token: want exit 1 naming the target and the token, got %s", r)
	}
	secrets(s.must(exitOK, "targets", "status", "-c", s.config))

	s.setTarget(targetOptions{})
	s.must(exitOK, "sync", "-c", s.config)
	s.converged(nil)

	// A token revoked later: the next push (a deactivation, the first
	// request of this run) is refused as well.
	s.setTarget(targetOptions{token: wrong})
	s.must(exitOK, "profiles", "block", "-c", s.config, "user001")
	r = s.must(exitPushes, "sync", "-c", s.config, "--format", "json")
	secrets(r)
	if tr := targetsOf(t, r); tr.Sent != 0 || tr.Pending != 1 || !strings.Contains(tr.Error, "refused the token") {
		t.Errorf("with a revoked token: targets[0] %+v, want 1 pending and the token refused", tr)
	}
	if !s.app.UserByName("user001").IsActive() {
		t.Errorf("user001 was deactivated with a wrong token")
	}
	s.setTarget(targetOptions{})
	s.must(exitOK, "targets", "push", "-c", s.config)
	s.converged(nil)
}

// TestTargetInvalidUser: the application refuses one user (400
// invalidValue); its message is in the report and in targets status, and
// the others are pushed.
func TestTargetInvalidUser(t *testing.T) {
	t.Parallel()
	const why = "userName user002 is reserved in this application"
	s := newSCIMSite(t, siteOptions{primaryLimit: "10"},
		targetOptions{app: scimtest.Options{Faults: scimtest.Faults{Invalid: map[string]string{"user002": why}}}}, employees(4)...)
	r := s.must(exitPushes, "sync", "-c", s.config, "--format", "json")
	tr := targetsOf(t, r)
	if tr.Sent != 3 || tr.Failed != 1 || tr.Pending != 0 || len(tr.Failures) != 1 {
		t.Fatalf("targets[0] %+v, want 3 sent and user002 failed", tr)
	}
	if f := tr.Failures[0]; f.Username != "user002" || f.Status != 400 || !strings.Contains(f.Error, why) {
		t.Errorf("the failure %+v, want user002, 400 and the application's message", f)
	}
	users := s.appUsers()
	if _, ok := users["user002"]; ok || len(users) != 3 {
		t.Errorf("the application: %v; want the three others", users)
	}
	st := s.status()
	if st.Failed != 1 || len(st.Failures) != 1 || st.Failures[0].Username != "user002" || st.Failures[0].Status != 400 ||
		!strings.Contains(st.Failures[0].Error, why) {
		t.Errorf("targets status: %+v, want user002 refused with the application's message", st)
	}
	if text := s.must(exitOK, "targets", "status", "-c", s.config).stdout; !strings.Contains(text, "user002") || !strings.Contains(text, why) {
		t.Errorf("targets status (text) does not show user002's refusal:\n%s", text)
	}
	// A sync with no change to user002 leaves the refusal alone.
	s.must(exitPushes, "sync", "-c", s.config)
	// Once the application accepts it, targets push sends it.
	s.app.SetFaults(scimtest.Faults{})
	s.must(exitOK, "targets", "push", "-c", s.config)
	s.converged(nil)
	if st := s.status(); st.Failed != 0 || st.Pending != 0 {
		t.Errorf("targets status after the push: %+v", st)
	}
}

// TestTargetDrift: a user activated in the application behind seatsync's
// back is a seat leak, which targets verify finds and --fix puts right; a
// user seatsync never knew is counted, and never changed.
func TestTargetDrift(t *testing.T) {
	t.Parallel()
	s := newSCIMSite(t, siteOptions{primaryLimit: "3"}, targetOptions{}, employees(5)...)
	s.must(exitOK, "sync", "-c", s.config)
	users := s.converged(nil)
	var leak string
	for name, p := range s.profiles() {
		if p.state() == "blocked license" {
			leak = name
			break
		}
	}
	s.setAppActive(users[leak].ID, true)
	s.createAppUser("stranger", true)
	stranger := s.app.UserByName("stranger")

	type verifyOut struct {
		Name            string   `json:"name"`
		Users           int      `json:"users"`
		Managed         int      `json:"managed"`
		Unmanaged       int      `json:"unmanaged"`
		UnmanagedActive int      `json:"unmanaged_active"`
		SeatLeaks       []string `json:"seat_leaks"`
		Missing         []string `json:"missing"`
		Drift           int      `json:"drift"`
		Fixed           *struct {
			Left int `json:"left"`
		} `json:"fixed"`
	}
	verify := func(code int, args ...string) verifyOut {
		t.Helper()
		r := s.must(code, append([]string{"targets", "verify", "-c", s.config, "--format", "json"}, args...)...)
		var out []verifyOut
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out) != 1 {
			t.Fatalf("targets verify --format json: %v\n%s", err, r)
		}
		return out[0]
	}
	v := verify(exitChanges)
	if !slices.Equal(v.SeatLeaks, []string{leak}) || v.Drift != 1 || v.Users != 6 || v.Managed != 5 || v.Unmanaged != 1 || v.UnmanagedActive != 1 {
		t.Errorf("targets verify: %+v, want the seat leak %s, 5 managed, 1 unmanaged active", v, leak)
	}
	if r := s.must(exitChanges, "targets", "verify", "-c", s.config); !strings.Contains(r.stdout, "seat leak") || !strings.Contains(r.stdout, leak) {
		t.Errorf("targets verify (text) does not list the seat leak %s:\n%s", leak, r.stdout)
	}

	v = verify(exitOK, "--fix")
	if v.Fixed == nil || v.Fixed.Left != 0 {
		t.Errorf("targets verify --fix: %+v, want it fixed", v)
	}
	users = s.converged(nil, "stranger")
	if users[leak].IsActive() {
		t.Errorf("%s is still active in the application after --fix", leak)
	}
	if u := users["stranger"]; string(u.Raw) != string(stranger.Raw) {
		t.Errorf("--fix changed a user seatsync never knew:\n%s\nwas\n%s", u.Raw, stranger.Raw)
	}
	if v := verify(exitOK); v.Drift != 0 || v.Unmanaged != 1 {
		t.Errorf("targets verify after --fix: %+v", v)
	}
}

// TestTargetConvergence is ldap2pg's check for a target: plan says what
// would be sent, sync sends it, plan then says nothing, and verify finds
// no drift.
func TestTargetConvergence(t *testing.T) {
	t.Parallel()
	s := newSCIMSite(t, siteOptions{primaryLimit: "3"}, targetOptions{}, fivePeople()...)
	plan := func(want int) {
		t.Helper()
		if tr := targetsOf(t, s.must(exitOK, "plan", "-c", s.config, "--format", "json")); tr.Pending != want || tr.Sent != 0 {
			t.Errorf("plan: targets[0] %+v, want %d to send", tr, want)
		}
	}
	plan(5)
	if n := len(s.app.Users()); n != 0 {
		t.Fatalf("plan wrote %d users to the application", n)
	}
	if tr := targetsOf(t, s.must(exitOK, "sync", "-c", s.config, "--format", "json")); tr.Sent != 5 || tr.Pending != 0 {
		t.Errorf("sync: targets[0] %+v, want 5 sent", tr)
	}
	plan(0)
	s.must(exitOK, "targets", "verify", "-c", s.config)
	s.converged(nil)

	// A change: one leaves, one comes; plan counts them, sync sends them.
	s.people(row("E1", "alice"), row("E2", "bob"), row("E3", "carol"), row("E4", "dave", "teams=Staff|Partners"), row("E6", "frank"))
	s.write("seatsync.yaml", strings.Replace(s.read("seatsync.yaml"), `max_deprovision: "10%"`, `max_deprovision: "50%"`, 1))
	before := s.app.Counters().Total
	plan(2)
	if s.app.Counters().Total != before {
		t.Errorf("plan sent requests to the application")
	}
	s.must(exitOK, "sync", "-c", s.config)
	plan(0)
	s.must(exitOK, "targets", "verify", "-c", s.config)
	s.converged(nil)
	// A second sync sends nothing.
	s.app.ResetCounters()
	if tr := targetsOf(t, s.must(exitOK, "sync", "-c", s.config, "--format", "json")); tr.Sent != 0 {
		t.Errorf("a second sync: targets[0] %+v, want nothing sent", tr)
	}
	if c := s.app.Counters(); c.Total != 0 {
		t.Errorf("a second sync sent %d requests: %v", c.Total, c.Requests)
	}
}

// TestTargetAddedLater: a target configured on a site that has synced
// before gets every profile: plan says so, and the sync sends them.
func TestTargetAddedLater(t *testing.T) {
	t.Parallel()
	s := newSCIMSite(t, siteOptions{primaryLimit: "3"}, targetOptions{}, fivePeople()...)
	cfg := s.read("seatsync.yaml")
	s.write("seatsync.yaml", cfg[:strings.Index(cfg, "\ntargets:\n")+1])
	s.must(exitOK, "sync", "-c", s.config)
	s.write("seatsync.yaml", cfg)
	if tr := targetsOf(t, s.must(exitOK, "plan", "-c", s.config, "--format", "json")); tr.Pending != 5 {
		t.Errorf("plan with a new target: targets[0] %+v, want 5 to send", tr)
	}
	if tr := targetsOf(t, s.must(exitOK, "sync", "-c", s.config, "--format", "json")); tr.Sent != 5 {
		t.Errorf("the first sync with the target: %+v, want 5 sent", tr)
	}
	s.converged(nil)
}
