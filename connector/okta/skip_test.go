package okta_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/internal/oktatest"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/reconcile"
)

// A skipped user is never a leaver (docs/behaviour.md): these tests run
// the rule through the fake org, the connector, the runner and a SQLite
// store.

// changesOf lists a run's changes as "action username state reason".
func changesOf(rep *reconcile.Report) []string {
	var out []string
	for _, c := range rep.Changes {
		out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s %s %s", c.Action, c.Username, c.State, c.Reason)))
	}
	return out
}

// skipsOf lists a run's skips as "where: external id: reason", sorted.
func skipsOf(rep *reconcile.Report) []string {
	var out []string
	for _, s := range rep.Skipped {
		out = append(out, s.Where+": "+s.ExternalID+": "+s.Reason)
	}
	slices.Sort(out)
	return out
}

func byExternalID(ps []model.Profile) map[string]model.Profile {
	m := make(map[string]model.Profile, len(ps))
	for _, p := range ps {
		m[p.ExternalID] = p
	}
	return m
}

// same checks that the profiles of the given external ids are exactly as
// they were.
func same(t *testing.T, before, now map[string]model.Profile, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if diff := cmp.Diff(before[id], now[id]); diff != "" {
			t.Errorf("profile %s changed (-before +now):\n%s", id, diff)
		}
	}
}

// TestSyncSkipWithoutExternalIDSuspendsLeaves: while a user's mapped
// external_id attribute is empty (missing, or only blanks), nobody of the
// source is blocked for leaving and the report says which user is why;
// once it is set again, the user who left is blocked.
func TestSyncSkipWithoutExternalIDSuspendsLeaves(t *testing.T) {
	o := newOrg(t, 0)
	ids := o.people(20, func(i int, u *oktatest.User) {
		u.Profile["employeeNumber"] = fmt.Sprintf("E%04d", i+1)
	})
	src := o.source()
	src.Mapping = map[string]string{"external_id": "employeeNumber"}
	r, st := o.runner(t, src)
	if rep, err := runSync(t, r); err != nil || rep.Summary.Create != 20 {
		t.Fatalf("first sync: %v %v", err, rep)
	}
	before := byExternalID(profiles(t, st))

	o.UpdateUser(ids[4], func(u *oktatest.User) { delete(u.Profile, "employeeNumber") })
	o.UpdateUser(ids[5], func(u *oktatest.User) { u.Profile["employeeNumber"] = "  " })
	o.UpdateUser(ids[6], func(u *oktatest.User) { u.Status = "DEPROVISIONED" }) // gone from the listing
	rep, err := runSync(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if got := changesOf(rep); len(got) != 0 {
		t.Errorf("changes %v, want none while two users have no external id", got)
	}
	want := []string{
		"okta user " + ids[4] + `: : external_id attribute "employeeNumber" is empty`,
		"okta user " + ids[5] + `: : external_id attribute "employeeNumber" is empty`,
	}
	if diff := cmp.Diff(want, skipsOf(rep)); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	why := rep.Sources[0].LeavesSuspended
	if !strings.Contains(why, "okta user "+ids[4]) || !strings.Contains(why, "nobody of source okta is blocked or deleted") {
		t.Errorf("leaves_suspended = %q, want it to name okta user %s", why, ids[4])
	}
	now := byExternalID(profiles(t, st))
	if len(now) != 20 {
		t.Errorf("%d profiles, want the 20 of the first sync (a blank external id is no new person)", len(now))
	}
	same(t, before, now, "E0005", "E0006", "E0007")

	o.UpdateUser(ids[4], func(u *oktatest.User) { u.Profile["employeeNumber"] = "E0005" })
	o.UpdateUser(ids[5], func(u *oktatest.User) { u.Profile["employeeNumber"] = "E0006" })
	rep, err = runSync(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if got := changesOf(rep); !slices.Equal(got, []string{"block u0007@example.com blocked left_source"}) || rep.Sources[0].LeavesSuspended != "" {
		t.Errorf("after the fix: changes %v, leaves suspended %q; want u0007 blocked", got, rep.Sources[0].LeavesSuspended)
	}
	same(t, before, byExternalID(profiles(t, st)), "E0005", "E0006")
}

// TestSyncSkipWithExternalIDKeepsProfile: a user whose id is known but who
// cannot be mapped (no username, an email that is no address, a value over
// max_field_bytes) keeps their profile exactly as it was, and the rest of
// the run (a leaver, a suspended user) is applied as usual.
func TestSyncSkipWithExternalIDKeepsProfile(t *testing.T) {
	o := newOrg(t, 0)
	ids := o.people(20, func(i int, u *oktatest.User) {
		u.Profile["nickName"] = fmt.Sprintf("nick%04d", i+1)
	})
	src := o.source()
	src.Mapping = map[string]string{"username": "nickName"}
	src.MaxFieldBytes = 4096
	r, st := o.runner(t, src)
	if rep, err := runSync(t, r); err != nil || rep.Summary.Create != 20 {
		t.Fatalf("first sync: %v %v", err, rep)
	}
	before := byExternalID(profiles(t, st))

	o.UpdateUser(ids[1], func(u *oktatest.User) { u.Profile["nickName"] = nil })
	o.UpdateUser(ids[2], func(u *oktatest.User) { u.Profile["email"] = "not-an-address" })
	o.UpdateUser(ids[3], func(u *oktatest.User) { u.Profile["title"] = strings.Repeat("t", 5000) })
	o.UpdateUser(ids[4], func(u *oktatest.User) { u.Status = "DEPROVISIONED" })
	o.UpdateUser(ids[5], func(u *oktatest.User) { u.Status = "SUSPENDED" })
	rep, err := runSync(t, r)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"okta user " + ids[1] + ": " + ids[1] + ": no username",
		"okta user " + ids[2] + ": " + ids[2] + `: email "not-an-address" is not a valid address`,
		"okta user " + ids[3] + ": " + ids[3] + ": title is 5000 bytes, over the limit of 4096 (max_field_bytes)",
	}
	if diff := cmp.Diff(want, skipsOf(rep)); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	if why := rep.Sources[0].LeavesSuspended; why != "" {
		t.Errorf("leaves suspended: %s; every skip named its external id", why)
	}
	wantChanges := []string{"block nick0005 blocked left_source", "block nick0006 blocked source_disabled"}
	if got := changesOf(rep); !cmp.Equal(sorted(got), wantChanges) {
		t.Errorf("changes %v, want %v", got, wantChanges)
	}
	same(t, before, byExternalID(profiles(t, st)), ids[0], ids[1], ids[2], ids[3])

	o.UpdateUser(ids[1], func(u *oktatest.User) { u.Profile["nickName"] = "nick0002" })
	o.UpdateUser(ids[2], func(u *oktatest.User) { u.Profile["email"] = "u0003@example.com" })
	o.UpdateUser(ids[3], func(u *oktatest.User) { delete(u.Profile, "title") })
	rep, err = runSync(t, r)
	if err != nil || rep.Summary.Total() != 0 || len(rep.Skipped) != 0 {
		t.Errorf("after the fix: %v changes %v skipped %v, want nothing", err, changesOf(rep), skipsOf(rep))
	}
	same(t, before, byExternalID(profiles(t, st)), ids[0], ids[1], ids[2], ids[3])
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
