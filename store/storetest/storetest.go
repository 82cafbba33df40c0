// Package storetest is the conformance suite every store.Store
// implementation runs unchanged:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) func() store.Store {
//			path := filepath.Join(t.TempDir(), "seatsync.db")
//			return func() store.Store {
//				s, err := sqlite.Open(t.Context(), path)
//				if err != nil {
//					t.Fatal(err)
//				}
//				return s
//			}
//		})
//	}
//
// What it pins down beyond the doc comments of package store:
//
//   - every profile field reads back exactly as written: nil and empty
//     Groups and Attributes stay apart, non-zero times come back in UTC
//     (with at least microsecond precision), zero times stay zero;
//   - Profiles and Queue order usernames case-insensitively, by the byte
//     order of model.FoldUsername;
//   - Queue puts a zero QueuedAt first; Queue and CountActive with no areas
//     find nothing;
//   - a deleted profile's ID is never given to a new profile;
//   - the ErrDuplicate error names the username being written, and the
//     ErrLocked error names the lock's holder;
//   - Runs returns Summary but not Report; JSON is compared by value, so a
//     store may re-encode it. A report SaveRun takes from WriteReport, in
//     pieces, reads back in Report like one given whole; an error from
//     WriteReport fails SaveRun, and records nothing.
//   - Value keeps UTF-8 text without NUL (binary cursors are encoded by
//     their owners) under a non-empty key, and refuses anything else;
//   - SeatHistory returns an empty, non-nil slice when nothing was
//     recorded; an unlimited row reads back with Limit 0; Prune removes
//     the rows recorded before runsBefore (seathistory.go);
//   - Episodes returns an empty, non-nil map when none is open; an
//     episode's zero SentAt stays zero; episodes are seen by a new handle.
//
// A test fn that gets an error from a Tx method returns it at once, as a
// PostgreSQL transaction cannot go on after an error.
package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// Run runs the suite. For each subtest open prepares a fresh, empty
// database and returns a function that opens a new handle on it each time
// it is called, as another process or replica would. The suite closes the
// handles it opens (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) func() store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newHandle func() store.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Handles", testHandles},
		{"Update", testUpdate},
		{"Delete", testDelete},
		{"Duplicates", testDuplicates},
		{"TxRollback", testTxRollback},
		{"TxPanic", testTxPanic},
		{"SeatCheckSerialised", testSeatCheckSerialised},
		{"CountActive", testCountActive},
		{"Queue", testQueue},
		{"Select", testSelect},
		{"RunLock", testRunLock},
		{"UnfinishedRuns", testUnfinishedRuns},
		{"Prune", testPrune},
		{"Runs", testRuns},
		{"LargeReport", testLargeReport},
		{"Audit", testAudit},
		{"AuditMatching", testAuditMatching},
		{"AuditChanges", testAuditChanges},
		{"AuditWholeCopies", testAuditWholeCopies},
		{"Episodes", testEpisodes},
		{"Values", testValues},
		{"SeatHistory", testSeatHistory},
		{"TargetOutbox", testTargetOutbox},
		{"Grants", testGrants},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			newHandle := open(t)
			tc.fn(t, newHandle)
			if !t.Failed() {
				checkCounts(t, handle(t, newHandle))
			}
		})
	}
	t.Run("Snapshot", func(t *testing.T) {
		testSnapshot(t, open(t), open(t))
	})
}

// handle opens a new handle and closes it when the test ends.
func handle(t *testing.T, newHandle func() store.Store) store.Store {
	t.Helper()
	s := newHandle()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// at is the suite's clock: d after a fixed time with microsecond
// precision, which every store keeps.
func at(d time.Duration) time.Time {
	return time.Date(2026, 3, 2, 9, 30, 0, 123456000, time.UTC).Add(d)
}

// jsonByValue compares JSON by value, so a store may re-encode it.
func jsonByValue() cmp.Option {
	return cmp.Comparer(func(a, b json.RawMessage) bool {
		if a == nil || b == nil {
			return a == nil && b == nil
		}
		if bytes.Equal(a, b) {
			return true
		}
		var x, y any
		if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
			return string(a) == string(b)
		}
		return reflect.DeepEqual(x, y)
	})
}

func active(username, area string) model.Profile {
	return model.Profile{
		Username:    username,
		Email:       strings.ToLower(username) + "@example.com",
		Area:        area,
		State:       model.Active,
		ActivatedAt: at(time.Minute),
		CreatedAt:   at(time.Minute),
		UpdatedAt:   at(time.Minute),
	}
}

func blocked(username, area string, reason model.Reason, queuedAt time.Time) model.Profile {
	p := active(username, area)
	p.State, p.BlockReason = model.Blocked, reason
	p.ActivatedAt, p.BlockedAt, p.QueuedAt = time.Time{}, at(2*time.Minute), queuedAt
	return p
}

// insert stores ps in one transaction and sets their IDs and versions.
func insert(t *testing.T, s store.Store, ps ...*model.Profile) {
	t.Helper()
	err := s.WithTx(t.Context(), func(tx store.Tx) error {
		for _, p := range ps {
			if err := tx.Insert(t.Context(), p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("insert: %v", err)
	}
}

func usernames(ps []model.Profile) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Username
	}
	return out
}

func checkUTC(t *testing.T, what string, ts ...time.Time) {
	t.Helper()
	for i, x := range ts {
		if !x.IsZero() && x.Location() != time.UTC {
			t.Errorf("%s: time %d (%s) is in %s, want UTC", what, i, x, x.Location())
		}
	}
}

func checkProfileUTC(t *testing.T, p model.Profile) {
	t.Helper()
	checkUTC(t, p.Username, p.QueuedAt, p.ActivatedAt, p.BlockedAt, p.CreatedAt, p.UpdatedAt)
}

func testRoundTrip(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)

	full := model.Profile{
		Username:    "Bob",
		Email:       "bob@example.com",
		GivenName:   "Bob",
		FamilyName:  "Müller-Öztürk",
		DisplayName: `Bob "Bobby" Müller`,
		Title:       "R&D <lead>",
		Department:  "Research & Development",
		Groups: []string{
			"CN=App Users,OU=Groups,DC=corp,DC=example",
			`CN=R&D \, Labs,OU=Groups,DC=corp,DC=example`,
			"Équipe \"été\"",
			"",
		},
		Attributes:  map[string]string{"company": "Acme", "costCenter": "4711", "note": "line1\nline2\t\u2028", "empty": ""},
		Area:        "partners",
		State:       model.Blocked,
		BlockReason: model.ReasonLicense,
		Source:      "corp-ad",
		ExternalID:  "6f1c-4a2b",
		QueuedAt:    at(1 * time.Hour),
		ActivatedAt: at(2 * time.Hour),
		BlockedAt:   at(3 * time.Hour),
		// A time in another zone is stored as its instant and read back in UTC.
		CreatedAt: at(4*time.Hour + time.Microsecond).In(time.FixedZone("CET", 3600)),
		UpdatedAt: at(5*time.Hour + 999999*time.Microsecond),
	}
	minimal := model.Profile{Username: "alice", Area: "primary", State: model.Active}
	empty := model.Profile{
		Username:   "carol",
		Area:       "primary",
		State:      model.Active,
		Groups:     []string{},
		Attributes: map[string]string{},
		CreatedAt:  at(0),
	}
	insert(t, s, &full, &minimal, &empty)

	ids := map[int64]bool{}
	for _, p := range []model.Profile{full, minimal, empty} {
		if p.ID == 0 || p.Version != 1 {
			t.Errorf("after Insert %s: ID %d Version %d, want a non-zero ID and Version 1", p.Username, p.ID, p.Version)
		}
		ids[p.ID] = true
	}
	if len(ids) != 3 {
		t.Errorf("Insert gave IDs %v, want 3 different ones", ids)
	}

	got, err := s.Profiles(ctx)
	if err != nil {
		t.Fatalf("Profiles: %v", err)
	}
	want := []model.Profile{minimal, full, empty} // alice, Bob, carol: case-insensitive order
	if diff := cmp.Diff(want, got, jsonByValue()); diff != "" {
		t.Errorf("Profiles (-want +got):\n%s", diff)
	}
	for _, p := range got {
		checkProfileUTC(t, p)
	}

	for _, name := range []string{"bob", "BOB", "Bob"} {
		p, err := s.Profile(ctx, name)
		if err != nil {
			t.Fatalf("Profile(%q): %v", name, err)
		}
		if diff := cmp.Diff(full, p, jsonByValue()); diff != "" {
			t.Errorf("Profile(%q) (-want +got):\n%s", name, diff)
		}
		checkProfileUTC(t, p)
	}
	if _, err := s.Profile(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Profile(nobody) = %v, want ErrNotFound", err)
	}

	err = s.WithTx(ctx, func(tx store.Tx) error {
		for _, want := range []model.Profile{full, minimal, empty} {
			p, err := tx.Get(ctx, want.ID)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(want, p, jsonByValue()); diff != "" {
				t.Errorf("Get(%d) (-want +got):\n%s", want.ID, diff)
			}
		}
		if _, err := tx.Get(ctx, full.ID+minimal.ID+empty.ID+1000); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(missing) = %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("WithTx: %v", err)
	}
}

func testHandles(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s1, s2 := handle(t, newHandle), handle(t, newHandle)
	p := active("jdoe", "primary")
	insert(t, s1, &p)
	got, err := s2.Profile(ctx, "jdoe")
	if err != nil {
		t.Fatalf("Profile through a second handle: %v", err)
	}
	if diff := cmp.Diff(p, got, jsonByValue()); diff != "" {
		t.Errorf("second handle (-want +got):\n%s", diff)
	}

	// A third handle opened later sees it too: the data is in the store,
	// not in a handle.
	s3 := handle(t, newHandle)
	if all, err := s3.Profiles(ctx); err != nil || len(all) != 1 {
		t.Errorf("Profiles through a new handle = %d profiles, %v; want 1", len(all), err)
	}
}

func testUpdate(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)
	p := active("jdoe", "primary")
	p.Source, p.ExternalID = "hr", "E1"
	insert(t, s, &p)
	stale := p.Clone()

	// Change every field; the case-only rename must not collide with itself.
	p.Username = "JDoe"
	p.Email, p.GivenName, p.FamilyName = "john.doe@example.com", "John", "Doe"
	p.DisplayName, p.Title, p.Department = "John Doe", "Engineer", "IT"
	p.Groups = []string{"Staff"}
	p.Attributes = map[string]string{"company": "Acme"}
	p.Area = "partners"
	p.State, p.BlockReason = model.Blocked, model.ReasonAdmin
	p.Source, p.ExternalID = "okta", "00u1"
	p.QueuedAt, p.ActivatedAt, p.BlockedAt = at(time.Hour), time.Time{}, at(2*time.Hour)
	p.CreatedAt, p.UpdatedAt = at(-time.Hour), at(3*time.Hour)
	err := s.WithTx(ctx, func(tx store.Tx) error { return tx.Update(ctx, &p) })
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if p.Version != 2 {
		t.Errorf("after Update Version = %d, want 2", p.Version)
	}
	got, err := s.Profile(ctx, "jdoe")
	if err != nil {
		t.Fatalf("Profile: %v", err)
	}
	if diff := cmp.Diff(p, got, jsonByValue()); diff != "" {
		t.Errorf("after Update (-want +got):\n%s", diff)
	}

	// Back to nil groups and attributes.
	p.Groups, p.Attributes = nil, nil
	if err := s.WithTx(ctx, func(tx store.Tx) error { return tx.Update(ctx, &p) }); err != nil {
		t.Fatalf("second Update: %v", err)
	}
	if p.Version != 3 {
		t.Errorf("after second Update Version = %d, want 3", p.Version)
	}
	if got, err := s.Profile(ctx, "jdoe"); err != nil {
		t.Fatalf("Profile: %v", err)
	} else if diff := cmp.Diff(p, got, jsonByValue()); diff != "" {
		t.Errorf("after second Update (-want +got):\n%s", diff)
	}

	// A write from a stale read is refused and changes nothing.
	stale.Email = "stale@example.com"
	err = s.WithTx(ctx, func(tx store.Tx) error { return tx.Update(ctx, &stale) })
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("Update with stale Version = %v, want ErrConflict", err)
	}
	if stale.Version != 1 {
		t.Errorf("a refused Update changed Version to %d", stale.Version)
	}
	if got, err := s.Profile(ctx, "jdoe"); err != nil || got.Email != p.Email || got.Version != 3 {
		t.Errorf("after a refused Update: %s version %d, %v; want %s version 3", got.Email, got.Version, err, p.Email)
	}

	// An Update of a profile that is gone is a conflict too.
	gone := active("ghost", "primary")
	gone.ID, gone.Version = p.ID+1000, 1
	err = s.WithTx(ctx, func(tx store.Tx) error { return tx.Update(ctx, &gone) })
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("Update of a missing profile = %v, want ErrConflict", err)
	}
}

func testDelete(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)
	p, other := active("jdoe", "primary"), active("other", "primary")
	insert(t, s, &p, &other)
	stale := p
	if err := s.WithTx(ctx, func(tx store.Tx) error { return tx.Update(ctx, &p) }); err != nil {
		t.Fatalf("Update: %v", err)
	}

	err := s.WithTx(ctx, func(tx store.Tx) error { return tx.Delete(ctx, stale) })
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("Delete with stale Version = %v, want ErrConflict", err)
	}
	if _, err := s.Profile(ctx, "jdoe"); err != nil {
		t.Errorf("after a refused Delete: %v", err)
	}

	if err := s.WithTx(ctx, func(tx store.Tx) error { return tx.Delete(ctx, p) }); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Profile(ctx, "jdoe"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Profile after Delete = %v, want ErrNotFound", err)
	}
	if all, err := s.Profiles(ctx); err != nil || !reflect.DeepEqual(usernames(all), []string{"other"}) {
		t.Errorf("Profiles after Delete = %v, %v; want [other]", usernames(all), err)
	}

	err = s.WithTx(ctx, func(tx store.Tx) error { return tx.Delete(ctx, p) })
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("Delete of a missing profile = %v, want ErrConflict", err)
	}

	// The username is free again, and the new profile gets a new ID: a
	// plan made before the delete cannot write over it.
	again := active("JDOE", "primary")
	insert(t, s, &again)
	if again.ID == p.ID {
		t.Errorf("a new profile reused the deleted profile's ID %d", p.ID)
	}
	p.Version = again.Version
	err = s.WithTx(ctx, func(tx store.Tx) error { return tx.Update(ctx, &p) })
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("Update of the deleted profile = %v, want ErrConflict", err)
	}
}

func testDuplicates(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)
	jdoe := active("jdoe", "primary")
	jdoe.Source, jdoe.ExternalID = "hr", "E1"
	admin1, admin2 := active("admin", "primary"), active("support", "primary") // unowned
	okta := active("jd", "primary")
	okta.Source, okta.ExternalID = "okta", "E1" // same external ID, other source
	insert(t, s, &jdoe, &admin1, &admin2, &okta)

	tryInsert := func(p model.Profile) error {
		return s.WithTx(ctx, func(tx store.Tx) error { return tx.Insert(ctx, &p) })
	}
	tryUpdate := func(p model.Profile) error {
		return s.WithTx(ctx, func(tx store.Tx) error { return tx.Update(ctx, &p) })
	}

	caseOnly := active("JDOE", "partners")
	caseOnly.Source, caseOnly.ExternalID = "hr", "E2"
	err := tryInsert(caseOnly)
	if !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("Insert of a username differing only in case = %v, want ErrDuplicate", err)
	} else if !strings.Contains(err.Error(), "JDOE") {
		t.Errorf("duplicate username error %q does not name the username JDOE", err)
	}

	sameKey := active("john", "primary")
	sameKey.Source, sameKey.ExternalID = "hr", "E1"
	err = tryInsert(sameKey)
	if !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("Insert of a taken (source, external_id) = %v, want ErrDuplicate", err)
	} else if !strings.Contains(err.Error(), "john") {
		t.Errorf("duplicate external id error %q does not name the username john", err)
	}

	renamed := okta
	renamed.Username = "JDoe"
	if err := tryUpdate(renamed); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("Update to a taken username = %v, want ErrDuplicate", err)
	}
	rekeyed := okta
	rekeyed.Source = "hr"
	if err := tryUpdate(rekeyed); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("Update to a taken (source, external_id) = %v, want ErrDuplicate", err)
	}

	all, err := s.Profiles(ctx)
	if err != nil {
		t.Fatalf("Profiles: %v", err)
	}
	want := []model.Profile{admin1, okta, jdoe, admin2}
	if diff := cmp.Diff(want, all, jsonByValue()); diff != "" {
		t.Errorf("refused writes changed the store (-want +got):\n%s", diff)
	}
}

func testTxRollback(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)
	kept := active("kept", "primary")
	insert(t, s, &kept)

	boom := errors.New("boom")
	err := s.WithTx(ctx, func(tx store.Tx) error {
		p := active("new", "primary")
		if err := tx.Insert(ctx, &p); err != nil {
			return err
		}
		k := kept
		k.Email = "changed@example.com"
		if err := tx.Update(ctx, &k); err != nil {
			return err
		}
		if err := tx.Audit(ctx, store.AuditEntry{RunID: "rolled-back", At: at(0), Actor: "sync", Action: "create", Username: "new"}.Changed(nil, &p)); err != nil {
			return err
		}
		return fmt.Errorf("apply: %w", boom)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WithTx = %v, want fn's error", err)
	}
	all, err := s.Profiles(ctx)
	if err != nil {
		t.Fatalf("Profiles: %v", err)
	}
	if diff := cmp.Diff([]model.Profile{kept}, all, jsonByValue()); diff != "" {
		t.Errorf("after a failed transaction (-want +got):\n%s", diff)
	}
	if es, err := s.Audit(ctx, "rolled-back", 0); err != nil || len(es) != 0 {
		t.Errorf("audit of a rolled-back transaction = %d entries, %v; want none", len(es), err)
	}

	// The store takes writes again.
	p := active("after", "primary")
	insert(t, s, &p)
}

func testTxPanic(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)
	recovered := func() (r any) {
		defer func() { r = recover() }()
		_ = s.WithTx(ctx, func(tx store.Tx) error {
			p := active("new", "primary")
			if err := tx.Insert(ctx, &p); err != nil {
				return err
			}
			panic("boom")
		})
		return nil
	}()
	if recovered != "boom" {
		t.Fatalf("WithTx recovered %v, want the panic to go on", recovered)
	}
	if _, err := s.Profile(ctx, "new"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Profile written before a panic = %v, want ErrNotFound", err)
	}
	// Neither the transaction nor any lock is left behind.
	p := active("after", "primary")
	insert(t, s, &p)
	other := handle(t, newHandle)
	q := active("other", "primary")
	insert(t, other, &q)
}

func testSeatCheckSerialised(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	const limit, perHandle = 5, 8
	handles := []store.Store{handle(t, newHandle), handle(t, newHandle)}
	// Some profiles that do not count: blocked, or in another area.
	b := blocked("queued", "primary", model.ReasonLicense, at(0))
	o := active("partner", "partners")
	insert(t, handles[0], &b, &o)

	var wg sync.WaitGroup
	errs := make(chan error, len(handles)*perHandle)
	for h, s := range handles {
		for i := range perHandle {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.WithTx(ctx, func(tx store.Tx) error {
					n, err := tx.CountActive(ctx, []string{"primary"}, nil)
					if err != nil {
						return err
					}
					if n >= limit {
						return nil // no seat: nothing to do
					}
					// Widen the window a racy store would lose in.
					time.Sleep(time.Millisecond)
					p := active(fmt.Sprintf("user-%d-%d", h, i), "primary")
					return tx.Insert(ctx, &p)
				})
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("seat transaction: %v", err)
		}
	}

	var n int
	err := handles[1].WithTx(ctx, func(tx store.Tx) (err error) {
		n, err = tx.CountActive(ctx, []string{"primary"}, nil)
		return err
	})
	if err != nil {
		t.Fatalf("CountActive: %v", err)
	}
	if n != limit {
		t.Errorf("%d active profiles after %d racing seat checks, want exactly the limit %d", n, len(handles)*perHandle, limit)
	}
	all, err := handles[0].Profiles(ctx)
	if err != nil {
		t.Fatalf("Profiles: %v", err)
	}
	if len(all) != limit+2 {
		t.Errorf("%d profiles, want %d", len(all), limit+2)
	}
}

func testCountActive(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)
	ps := []model.Profile{
		active("alice", "primary"),
		active("Bob", "primary"),
		active("Admin", "primary"),
		blocked("carol", "primary", model.ReasonLicense, at(0)),
		blocked("dave", "primary", model.ReasonAdmin, time.Time{}),
		blocked("eve", "primary", model.ReasonSourceDisabled, time.Time{}),
		blocked("fred", "primary", model.ReasonLeftSource, time.Time{}),
		active("erin", "partners"),
		active("frank", "suppliers"),
	}
	ptrs := make([]*model.Profile, len(ps))
	for i := range ps {
		ptrs[i] = &ps[i]
	}
	insert(t, s, ptrs...)

	tests := []struct {
		areas, exempt []string
		want          int
	}{
		{[]string{"primary"}, nil, 3},
		{[]string{"primary"}, []string{"admin"}, 2},
		{[]string{"primary"}, []string{"ADMIN", "support"}, 2},
		{[]string{"primary"}, []string{"admin", "bob"}, 1},
		{[]string{"primary", "partners"}, []string{"Admin"}, 3},
		{[]string{"partners", "suppliers"}, nil, 2},
		{[]string{"Primary"}, nil, 0}, // areas are exact names
		{[]string{"nowhere"}, nil, 0},
		{nil, nil, 0},
	}
	err := s.WithTx(ctx, func(tx store.Tx) error {
		for _, tc := range tests {
			got, err := tx.CountActive(ctx, tc.areas, tc.exempt)
			if err != nil {
				return err
			}
			if got != tc.want {
				t.Errorf("CountActive(%q, %q) = %d, want %d", tc.areas, tc.exempt, got, tc.want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("CountActive: %v", err)
	}
}

func testQueue(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)
	ps := []model.Profile{
		blocked("third", "primary", model.ReasonLicense, at(3*time.Hour)),
		blocked("first", "primary", model.ReasonLicense, at(1*time.Hour)),
		blocked("zed", "primary", model.ReasonLicense, at(2*time.Hour)),
		blocked("Amy", "primary", model.ReasonLicense, at(2*time.Hour)), // same time: by username
		blocked("nodate", "primary", model.ReasonLicense, time.Time{}),  // zero time first
		blocked("partner", "partners", model.ReasonLicense, at(90*time.Minute)),
		blocked("admin-blocked", "primary", model.ReasonAdmin, at(0)),
		blocked("disabled", "primary", model.ReasonSourceDisabled, at(0)),
		blocked("left", "primary", model.ReasonLeftSource, at(0)),
		active("active", "primary"),
	}
	ptrs := make([]*model.Profile, len(ps))
	for i := range ps {
		ptrs[i] = &ps[i]
	}
	insert(t, s, ptrs...)

	tests := []struct {
		areas []string
		want  []string
	}{
		{[]string{"primary"}, []string{"nodate", "first", "Amy", "zed", "third"}},
		{[]string{"primary", "partners"}, []string{"nodate", "first", "partner", "Amy", "zed", "third"}},
		{[]string{"partners"}, []string{"partner"}},
		{[]string{"suppliers"}, nil},
		{nil, nil},
	}
	for _, tc := range tests {
		got, err := s.Queue(ctx, tc.areas)
		if err != nil {
			t.Fatalf("Queue(%q): %v", tc.areas, err)
		}
		if diff := cmp.Diff(tc.want, usernames(got), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Queue(%q) (-want +got):\n%s", tc.areas, diff)
		}
	}
	got, err := s.Queue(ctx, []string{"partners"})
	if err != nil {
		t.Fatalf("Queue: %v", err)
	}
	if len(got) == 1 {
		if diff := cmp.Diff(ps[5], got[0], jsonByValue()); diff != "" {
			t.Errorf("Queue profile (-want +got):\n%s", diff)
		}
	}
}

func testRunLock(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s1, s2 := handle(t, newHandle), handle(t, newHandle)
	mustAcquire := func(s store.Store, holder string, ttl time.Duration) {
		t.Helper()
		if err := s.AcquireLock(ctx, holder, ttl); err != nil {
			t.Fatalf("AcquireLock(%s): %v", holder, err)
		}
	}
	refused := func(s store.Store, holder, by string) {
		t.Helper()
		err := s.AcquireLock(ctx, holder, time.Minute)
		if !errors.Is(err, store.ErrLocked) {
			t.Fatalf("AcquireLock(%s) while %s holds the lock = %v, want ErrLocked", holder, by, err)
		}
		if !strings.Contains(err.Error(), by) {
			t.Errorf("ErrLocked error %q does not name the holder %s", err, by)
		}
	}
	release := func(s store.Store, holder string) {
		t.Helper()
		if err := s.ReleaseLock(ctx, holder); err != nil {
			t.Fatalf("ReleaseLock(%s): %v", holder, err)
		}
	}

	mustAcquire(s1, "replica-a", time.Minute)
	refused(s2, "replica-b", "replica-a")
	refused(s1, "replica-b", "replica-a")
	mustAcquire(s1, "replica-a", time.Minute) // renew
	mustAcquire(s2, "replica-a", time.Minute) // the holder is a name, not a handle

	release(s2, "replica-b") // not the holder: harmless
	refused(s2, "replica-b", "replica-a")

	release(s1, "replica-a")
	release(s1, "replica-a") // again: harmless
	const ttl = 300 * time.Millisecond
	mustAcquire(s2, "replica-b", ttl)
	refused(s1, "replica-a", "replica-b")

	time.Sleep(ttl + 200*time.Millisecond) // replica-b died without releasing
	mustAcquire(s1, "replica-a", time.Minute)
	refused(s2, "replica-b", "replica-a")
	release(s1, "replica-a")
	mustAcquire(s2, "replica-b", time.Minute)
	release(s2, "replica-b")

	// A holder known to be gone is taken over at once, but only while it
	// still holds the lock.
	mustAcquire(s1, "crashed", time.Hour)
	var le *store.LockedError
	if err := s2.AcquireLock(ctx, "next", time.Minute); !errors.As(err, &le) || le.Holder != "crashed" || le.Expires.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("AcquireLock while crashed holds it for an hour = %v, want a *LockedError naming crashed and its expiry", err)
	}
	if err := s2.TakeOverLock(ctx, "someone-else", "next", time.Minute); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("TakeOverLock from a holder that does not hold the lock = %v, want ErrLocked", err)
	}
	if err := s2.TakeOverLock(ctx, "crashed", "next", time.Minute); err != nil {
		t.Fatalf("TakeOverLock(crashed -> next): %v", err)
	}
	refused(s1, "crashed", "next")
	if err := s1.TakeOverLock(ctx, "crashed", "late", time.Minute); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("a second TakeOverLock from crashed, after next took it = %v, want ErrLocked", err)
	}
	release(s2, "next")
	if err := s1.TakeOverLock(ctx, "crashed", "late", time.Minute); err != nil {
		t.Fatalf("TakeOverLock of a free lock: %v", err)
	}
	release(s1, "late")
}

func testPrune(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)
	day := func(n int) time.Time { return time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC).AddDate(0, 0, n) }
	for i, r := range []store.Run{
		{ID: "old", Mode: "sync", Result: "ok", StartedAt: day(0)},
		{ID: "old-running", Mode: "sync", Result: store.RunRunning, StartedAt: day(0)},
		{ID: "new", Mode: "sync", Result: "ok", StartedAt: day(10)},
	} {
		if err := s.SaveRun(ctx, r); err != nil {
			t.Fatalf("SaveRun %d: %v", i, err)
		}
	}
	p := model.Profile{Username: "jdoe", Area: "primary", State: model.Active}
	err := s.WithTx(ctx, func(tx store.Tx) error {
		for i, at := range []time.Time{day(0), day(1), day(10)} {
			if err := tx.Audit(ctx, store.AuditEntry{RunID: fmt.Sprint(i), At: at, Actor: "sync", Action: "update", Username: "jdoe"}.Changed(nil, &p)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r, a, err := s.Prune(ctx, time.Time{}, time.Time{}); err != nil || r != 0 || a != 0 {
		t.Fatalf("Prune with no periods = %d, %d, %v; want nothing pruned", r, a, err)
	}
	r, a, err := s.Prune(ctx, day(5), day(2))
	if err != nil || r != 1 || a != 2 {
		t.Fatalf("Prune = %d runs, %d audit entries, %v; want 1 and 2", r, a, err)
	}
	runs, err := s.Runs(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, []string{"new", "old-running"}) {
		t.Errorf("runs after pruning: %v; want new and the one still running", ids)
	}
	if left, err := s.Audit(ctx, "", 0); err != nil || len(left) != 1 || left[0].RunID != "2" {
		t.Errorf("audit after pruning: %v, %v; want the newest entry only", left, err)
	}
}

func testUnfinishedRuns(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)
	at := func(d time.Duration) time.Time { return time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC).Add(d) }
	for _, r := range []store.Run{
		{ID: "done", Mode: "sync", Result: "ok", StartedAt: at(0), FinishedAt: at(time.Second)},
		{ID: "killed-2", Mode: "sync", Result: store.RunRunning, StartedAt: at(2 * time.Minute)},
		{ID: "killed-1", Mode: "sync", Result: store.RunRunning, StartedAt: at(time.Minute), Sources: []string{"hr"}},
	} {
		if err := s.SaveRun(ctx, r); err != nil {
			t.Fatalf("SaveRun(%s): %v", r.ID, err)
		}
	}
	runs, err := s.UnfinishedRuns(ctx)
	if err != nil {
		t.Fatalf("UnfinishedRuns: %v", err)
	}
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, []string{"killed-1", "killed-2"}) {
		t.Fatalf("UnfinishedRuns = %v, want killed-1, killed-2", ids)
	}
	if !slices.Equal(runs[0].Sources, []string{"hr"}) || !runs[0].StartedAt.Equal(at(time.Minute)) {
		t.Errorf("UnfinishedRuns[0] = %+v, want its sources and start", runs[0])
	}

	p := model.Profile{Username: "jdoe", Area: "primary", State: model.Active, Source: "hr", ExternalID: "E1"}
	err = s.WithTx(ctx, func(tx store.Tx) error {
		if err := tx.Insert(ctx, &p); err != nil {
			return err
		}
		for i, a := range []string{"create", "block", "create"} {
			if err := tx.Audit(ctx, store.AuditEntry{RunID: "killed-1", At: at(time.Duration(i+1) * time.Minute), Actor: "sync", Action: a, Username: "jdoe"}.Changed(nil, &p)); err != nil {
				return err
			}
		}
		return tx.Audit(ctx, store.AuditEntry{RunID: "other", At: at(time.Hour), Actor: "sync", Action: "delete", Username: "jdoe"}.Changed(&p, nil))
	})
	if err != nil {
		t.Fatal(err)
	}
	counts, last, err := s.AuditCounts(ctx, "killed-1")
	if err != nil {
		t.Fatalf("AuditCounts: %v", err)
	}
	if diff := cmp.Diff(map[string]int{"create": 2, "block": 1}, counts); diff != "" || !last.Equal(at(3*time.Minute)) {
		t.Errorf("AuditCounts(killed-1) = %v, %s (-want +got counts:\n%s), want last %s", counts, last, diff, at(3*time.Minute))
	}
	if counts, last, err := s.AuditCounts(ctx, "none"); err != nil || len(counts) != 0 || !last.IsZero() {
		t.Errorf("AuditCounts of a run with no entries = %v, %s, %v; want empty, zero, nil", counts, last, err)
	}
}

func testRuns(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)
	save := func(r store.Run) {
		t.Helper()
		if err := s.SaveRun(ctx, r); err != nil {
			t.Fatalf("SaveRun(%s): %v", r.ID, err)
		}
	}
	first := store.Run{ID: "01A", Mode: "sync", Result: "running", StartedAt: at(0), Sources: []string{"hr", "corp-ad"}}
	second := store.Run{
		ID: "01B", Mode: "plan", Result: "failed", Error: "pull corp-ad: bind: invalid credentials",
		StartedAt: at(time.Hour), FinishedAt: at(time.Hour + time.Second), Sources: []string{"corp-ad"},
	}
	third := store.Run{
		ID: "01C", Mode: "sync", Result: "ok", StartedAt: at(2 * time.Hour), FinishedAt: at(2*time.Hour + 3*time.Second),
		Sources: []string{}, Summary: json.RawMessage(`{"create": 0}`), Report: json.RawMessage(`{"run_id": "01C", "changes": []}`),
	}
	save(first)
	save(third)
	save(second)

	// The first run finishes: SaveRun replaces it.
	first.Result, first.FinishedAt = "ok", at(time.Minute)
	first.Summary = json.RawMessage(`{"create":12,"update":3}`)
	first.Report = json.RawMessage(`{"run_id":"01A","summary":{"create":12,"update":3},"changes":[{"action":"create","username":"jdoe"}]}`)
	save(first)

	noReport := func(rs ...store.Run) []store.Run {
		out := make([]store.Run, len(rs))
		for i, r := range rs {
			r.Report = nil
			out[i] = r
		}
		return out
	}
	runs, err := s.Runs(ctx, 10)
	if err != nil {
		t.Fatalf("Runs: %v", err)
	}
	if diff := cmp.Diff(noReport(third, second, first), runs, jsonByValue()); diff != "" {
		t.Errorf("Runs(10) (-want +got):\n%s", diff)
	}
	for _, r := range runs {
		checkUTC(t, r.ID, r.StartedAt, r.FinishedAt)
	}
	runs, err = s.Runs(ctx, 2)
	if err != nil {
		t.Fatalf("Runs: %v", err)
	}
	if diff := cmp.Diff(noReport(third, second), runs, jsonByValue()); diff != "" {
		t.Errorf("Runs(2) (-want +got):\n%s", diff)
	}

	for _, want := range []store.Run{first, second, third} {
		got, err := s.Run(ctx, want.ID)
		if err != nil {
			t.Fatalf("Run(%s): %v", want.ID, err)
		}
		if diff := cmp.Diff(want, got, jsonByValue()); diff != "" {
			t.Errorf("Run(%s) (-want +got):\n%s", want.ID, diff)
		}
	}
	if _, err := s.Run(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Run(missing) = %v, want ErrNotFound", err)
	}
}

// bigReport is a report as a first sync of n people writes it, some 170
// bytes of JSON per person.
func bigReport(runID string, n int) []byte {
	b := fmt.Appendf(make([]byte, 0, 200*n), `{"run_id":%q,"summary":{"create":%d},"changes":[`, runID, n)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		id := strconv.Itoa(i)
		b = append(b, `{"action":"create","username":"user`+id+`","source":"hr","external_id":"E`+id+
			`","fields":{"email":{"old":null,"new":"user`+id+`@example.com"},"groups":{"old":null,"new":["staff","team`+
			strconv.Itoa(i%50)+`"]}}}`...)
	}
	return append(b, `]}`...)
}

// inPieces writes report the way a report too large to hold twice is
// written: in small pieces.
func inPieces(report []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		for len(report) > 0 {
			n := min(len(report), 1000)
			if _, err := w.Write(report[:n]); err != nil {
				return err
			}
			report = report[n:]
		}
		return nil
	}
}

func testLargeReport(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)
	streamed := store.Run{ID: "01BIG", Mode: "sync", Result: "ok", StartedAt: at(0), FinishedAt: at(time.Minute),
		Sources: []string{"hr"}, Summary: json.RawMessage(`{"create":100000}`)}
	report := bigReport(streamed.ID, 100_000) // 17 MB
	streamed.WriteReport = inPieces(report)
	if err := s.SaveRun(ctx, streamed); err != nil {
		t.Fatalf("SaveRun with WriteReport: %v", err)
	}
	whole := streamed
	whole.ID, whole.WriteReport, whole.StartedAt = "01WHOLE", nil, at(time.Hour)
	whole.Report = bigReport(whole.ID, 20_000)
	if err := s.SaveRun(ctx, whole); err != nil {
		t.Fatalf("SaveRun with Report: %v", err)
	}

	// A failing WriteReport fails the save, and records nothing.
	boom := errors.New("encoder failed")
	failed := streamed
	failed.ID = "01FAILED"
	failed.WriteReport = func(w io.Writer) error {
		if _, err := w.Write(report[:1000]); err != nil {
			return err
		}
		return boom
	}
	if err := s.SaveRun(ctx, failed); !errors.Is(err, boom) {
		t.Errorf("SaveRun with a failing WriteReport = %v, want it to wrap %v", err, boom)
	}
	if _, err := s.Run(ctx, failed.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Run(%s) after a failed save = %v, want ErrNotFound", failed.ID, err)
	}

	// Read by another handle, as the server reads what a sync saved.
	other := handle(t, newHandle)
	for _, want := range []store.Run{streamed, whole} {
		got, err := other.Run(ctx, want.ID)
		if err != nil {
			t.Fatalf("Run(%s): %v", want.ID, err)
		}
		if want.WriteReport != nil {
			want.Report, want.WriteReport = report, nil
		}
		if diff := cmp.Diff(want, got, jsonByValue()); diff != "" {
			t.Errorf("Run(%s) (-want +got):\n%.2000s", want.ID, diff)
		}
	}
	runs, err := other.Runs(ctx, 0)
	if err != nil {
		t.Fatalf("Runs: %v", err)
	}
	if len(runs) != 2 || runs[0].ID != whole.ID || runs[1].ID != streamed.ID || runs[0].Report != nil || runs[1].Report != nil {
		t.Errorf("Runs = %d runs %+v, want %s and %s without reports", len(runs), runs, whole.ID, streamed.ID)
	}
}

func testAudit(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)

	var want []store.AuditEntry
	err := s.WithTx(ctx, func(tx store.Tx) error {
		p := active("jdoe", "primary")
		p.Source, p.ExternalID = "hr", "E1"
		p.Groups = []string{"Staff", "R&D"}
		p.Attributes = map[string]string{}
		if err := tx.Insert(ctx, &p); err != nil {
			return err
		}
		created := p.Clone()
		before := p.Clone()
		p.State, p.BlockReason, p.BlockedAt, p.ActivatedAt = model.Blocked, model.ReasonSourceDisabled, at(time.Hour), time.Time{}
		if err := tx.Update(ctx, &p); err != nil {
			return err
		}
		blockedP := p.Clone()
		if err := tx.Delete(ctx, p); err != nil {
			return err
		}
		want = []store.AuditEntry{
			store.AuditEntry{RunID: "run-1", At: at(time.Second), Actor: "sync", Action: "create", Username: "jdoe"}.Changed(nil, &created),
			store.AuditEntry{RunID: "run-1", At: at(2 * time.Second), Actor: "sync", Action: "block", Username: "jdoe", Reason: "source_disabled"}.Changed(&before, &blockedP),
			store.AuditEntry{RunID: "run-1", At: at(3 * time.Second), Actor: "admin", Action: "delete", Username: "jdoe"}.Changed(&blockedP, nil),
		}
		for _, e := range want {
			e.Seq = 999 // ignored: the store numbers entries
			if err := tx.Audit(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("WithTx: %v", err)
	}
	other := active("other", "primary")
	if err := s.WithTx(ctx, func(tx store.Tx) error {
		return tx.Audit(ctx, store.AuditEntry{RunID: "run-2", At: at(time.Minute), Actor: "admin", Action: "block", Username: "other", Reason: "admin"}.Changed(&other, &other))
	}); err != nil {
		t.Fatalf("WithTx: %v", err)
	}
	boom := errors.New("boom")
	if err := s.WithTx(ctx, func(tx store.Tx) error {
		if err := tx.Audit(ctx, store.AuditEntry{RunID: "run-1", At: at(time.Hour), Actor: "sync", Action: "create", Username: "lost"}); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("WithTx = %v, want boom", err)
	}

	got, err := s.Audit(ctx, "run-1", 0)
	if err != nil {
		t.Fatalf("Audit(run-1): %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("Audit(run-1) = %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i := range got {
		if i > 0 && got[i].Seq <= got[i-1].Seq {
			t.Errorf("entry %d has Seq %d after %d, want increasing", i, got[i].Seq, got[i-1].Seq)
		}
		want[i].Seq = got[i].Seq
		if want[i].Fields, err = store.AuditFields(want[i].Before, want[i].After); err != nil {
			t.Fatal(err)
		}
		checkUTC(t, "audit", got[i].At)
	}
	if diff := cmp.Diff(want, got, jsonByValue()); diff != "" {
		t.Errorf("Audit(run-1) (-want +got):\n%s", diff)
	}

	recent, err := s.Audit(ctx, "", 2)
	if err != nil {
		t.Fatalf("Audit(\"\", 2): %v", err)
	}
	if len(recent) != 2 || recent[0].RunID != "run-2" || recent[1].Seq != want[2].Seq {
		t.Errorf("Audit(\"\", 2) = %+v, want the run-2 entry then run-1's delete", recent)
	}
	if none, err := s.Audit(ctx, "run-unknown", 0); err != nil || len(none) != 0 {
		t.Errorf("Audit(run-unknown) = %v, %v; want no entries", none, err)
	}
}

// testAuditChanges: an entry records the fields a change set, with their
// values before and after, and reads back as it was written.
func testAuditChanges(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)
	p := active("jdoe", "primary")
	p.GivenName, p.Title, p.Source, p.ExternalID = "Jane", "Clerk", "hr", "E1"
	p.Groups = []string{"Staff"}
	var created, updated, deleted model.Profile
	err := s.WithTx(ctx, func(tx store.Tx) error {
		if err := tx.Insert(ctx, &p); err != nil {
			return err
		}
		created = p.Clone()
		if err := tx.Audit(ctx, store.AuditEntry{RunID: "r", At: at(time.Minute), Actor: "sync", Action: "create", Username: "jdoe"}.Changed(nil, &created)); err != nil {
			return err
		}
		p.Title, p.Groups, p.UpdatedAt = "Manager", []string{"Staff", "Managers"}, at(time.Hour)
		if err := tx.Update(ctx, &p); err != nil {
			return err
		}
		updated = p.Clone()
		if err := tx.Audit(ctx, store.AuditEntry{RunID: "r", At: at(time.Hour), Actor: "sync", Action: "update", Username: "jdoe"}.Changed(&created, &updated)); err != nil {
			return err
		}
		deleted = p.Clone()
		if err := tx.Delete(ctx, p); err != nil {
			return err
		}
		return tx.Audit(ctx, store.AuditEntry{RunID: "r", At: at(2 * time.Hour), Actor: "cli:root", Action: "delete", Username: "jdoe"}.Changed(&deleted, nil))
	})
	if err != nil {
		t.Fatalf("WithTx: %v", err)
	}
	got, err := s.Audit(ctx, "r", 0)
	if err != nil || len(got) != 3 {
		t.Fatalf("Audit(r) = %+v, %v; want 3 entries", got, err)
	}
	id := strconv.FormatInt(created.ID, 10)
	ts := func(d time.Duration) string { return `"` + at(d).Format(time.RFC3339Nano) + `"` }
	want := []struct {
		fields        []string
		before, after string
	}{
		{
			fields: []string{"id", "username", "email", "given_name", "title", "groups", "area", "state", "source", "external_id", "activated_at", "created_at"},
			after: `{"id":` + id + `,"username":"jdoe","email":"jdoe@example.com","given_name":"Jane","title":"Clerk","groups":["Staff"],` +
				`"area":"primary","state":"active","source":"hr","external_id":"E1","activated_at":` + ts(time.Minute) + `,"created_at":` + ts(time.Minute) + `}`,
		},
		{
			fields: []string{"title", "groups"},
			before: `{"title":"Clerk","groups":["Staff"]}`,
			after:  `{"title":"Manager","groups":["Staff","Managers"]}`,
		},
		{
			fields: []string{"id", "username", "email", "given_name", "title", "groups", "area", "state", "source", "external_id", "activated_at", "created_at", "updated_at"},
			before: `{"id":` + id + `,"username":"jdoe","email":"jdoe@example.com","given_name":"Jane","title":"Manager","groups":["Staff","Managers"],` +
				`"area":"primary","state":"active","source":"hr","external_id":"E1","activated_at":` + ts(time.Minute) + `,"created_at":` + ts(time.Minute) +
				`,"updated_at":` + ts(time.Hour) + `}`,
		},
	}
	for i, w := range want {
		e := got[i]
		if diff := cmp.Diff(w.fields, e.Fields); diff != "" {
			t.Errorf("%s: Fields (-want +got):\n%s", e.Action, diff)
		}
		for _, side := range []struct {
			name      string
			want, got json.RawMessage
		}{{"before", json.RawMessage(w.before), e.Before}, {"after", json.RawMessage(w.after), e.After}} {
			if len(side.want) == 0 {
				side.want = nil
			}
			if !cmp.Equal(side.want, side.got, jsonByValue()) {
				t.Errorf("%s: %s = %s, want %s", e.Action, side.name, side.got, side.want)
			}
		}
	}
}

// testAuditWholeCopies: entries that an older seatsync recorded as two
// whole copies of the profile read back as they were stored, their
// Fields the ones that differ between the copies. (The snapshot test
// copies one from store to store.)
func testAuditWholeCopies(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)
	// As the stores wrote them: every field but zero ones, and the version.
	const (
		created = `{"id":7,"version":1,"username":"jdoe","email":"jdoe@example.com","area":"primary","state":"active",` +
			`"source":"hr","external_id":"E1","activated_at":"2026-01-02T03:04:05Z","created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z"}`
		blocked = `{"id":7,"version":2,"username":"jdoe","email":"jdoe@example.com","area":"primary","state":"blocked","block_reason":"source_disabled",` +
			`"source":"hr","external_id":"E1","activated_at":"2026-01-02T03:04:05Z","blocked_at":"2026-01-03T00:00:00Z","created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-03T00:00:00Z"}`
	)
	old := []store.AuditEntry{
		{RunID: "old", At: at(time.Minute), Actor: "sync", Action: "create", Username: "jdoe", After: json.RawMessage(created)},
		{RunID: "old", At: at(time.Hour), Actor: "sync", Action: "block", Username: "jdoe", Reason: "source_disabled",
			Before: json.RawMessage(created), After: json.RawMessage(blocked)},
		{RunID: "old", At: at(2 * time.Hour), Actor: "sync", Action: "delete", Username: "jdoe", Before: json.RawMessage(blocked)},
	}
	if err := s.WithTx(ctx, func(tx store.Tx) error {
		for _, e := range old {
			if err := tx.Audit(ctx, e); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("WithTx: %v", err)
	}
	got, err := s.Audit(ctx, "old", 0)
	if err != nil || len(got) != 3 {
		t.Fatalf("Audit(old) = %+v, %v; want 3 entries", got, err)
	}
	wantFields := [][]string{
		{"id", "username", "email", "area", "state", "source", "external_id", "activated_at", "created_at"},
		{"state", "block_reason", "blocked_at"},
		{"id", "username", "email", "area", "state", "block_reason", "source", "external_id", "activated_at", "blocked_at", "created_at", "updated_at"},
	}
	for i, e := range got {
		if diff := cmp.Diff(wantFields[i], e.Fields); diff != "" {
			t.Errorf("%s: Fields (-want +got):\n%s", e.Action, diff)
		}
		if string(e.Before) != string(old[i].Before) || string(e.After) != string(old[i].After) {
			t.Errorf("%s: before %s, after %s; want them as stored: %s, %s", e.Action, e.Before, e.After, old[i].Before, old[i].After)
		}
	}
	counts, _, err := s.AuditCounts(ctx, "old")
	if err != nil || counts["create"] != 1 || counts["block"] != 1 || counts["delete"] != 1 {
		t.Errorf("AuditCounts(old) = %v, %v; want one of each", counts, err)
	}
}

func testAuditMatching(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)
	p := active("Alice", "primary")
	entries := []store.AuditEntry{
		store.AuditEntry{RunID: "run-1", At: at(0), Actor: "sync", Action: "create", Username: "Alice"}.Changed(nil, &p),
		store.AuditEntry{RunID: "run-1", At: at(time.Second), Actor: "sync", Action: "create", Username: "bob"}.Changed(nil, &p),
		store.AuditEntry{RunID: "run-2", At: at(time.Hour), Actor: "cli:root", Action: "block", Username: "alice", Reason: "admin"}.Changed(&p, &p),
		store.AuditEntry{RunID: "run-2", At: at(2 * time.Hour), Actor: "sync", Action: "create", Username: "Ärne"}.Changed(nil, &p),
		store.AuditEntry{RunID: "run-3", At: at(3 * time.Hour), Actor: "sync", Action: "update", Username: "ärne"}.Changed(&p, &p),
	}
	if err := s.WithTx(ctx, func(tx store.Tx) error {
		for _, e := range entries {
			if err := tx.Audit(ctx, e); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("WithTx: %v", err)
	}
	// key is what tells the entries apart: run, action and username.
	key := func(es []store.AuditEntry) []string {
		out := make([]string, len(es))
		for i, e := range es {
			out[i] = e.RunID + " " + e.Action + " " + e.Username
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    store.AuditFilter
		want []string
	}{
		{"all, newest first", store.AuditFilter{}, []string{"run-3 update ärne", "run-2 create Ärne", "run-2 block alice", "run-1 create bob", "run-1 create Alice"}},
		{"limit", store.AuditFilter{Limit: 2}, []string{"run-3 update ärne", "run-2 create Ärne"}},
		{"run", store.AuditFilter{RunID: "run-1"}, []string{"run-1 create bob", "run-1 create Alice"}},
		{"username in any case", store.AuditFilter{Username: "ALICE"}, []string{"run-2 block alice", "run-1 create Alice"}},
		{"non-ASCII username in any case", store.AuditFilter{Username: "ÄRNE"}, []string{"run-3 update ärne", "run-2 create Ärne"}},
		{"non-ASCII username, limit", store.AuditFilter{Username: "ärne", Limit: 1}, []string{"run-3 update ärne"}},
		{"since, inclusive", store.AuditFilter{Since: at(time.Hour)}, []string{"run-3 update ärne", "run-2 create Ärne", "run-2 block alice"}},
		{"everything at once", store.AuditFilter{RunID: "run-2", Username: "Alice", Since: at(time.Minute), Limit: 5}, []string{"run-2 block alice"}},
		{"no match", store.AuditFilter{Username: "nobody"}, []string{}},
	} {
		got, err := s.AuditMatching(ctx, tc.f)
		if err != nil {
			t.Errorf("AuditMatching(%s): %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, key(got)); diff != "" {
			t.Errorf("AuditMatching(%s) (-want +got):\n%s", tc.name, diff)
		}
	}
	got, err := s.AuditMatching(ctx, store.AuditFilter{RunID: "run-2", Username: "alice"})
	if err != nil || len(got) != 1 {
		t.Fatalf("AuditMatching(run-2, alice) = %v, %v", got, err)
	}
	e := got[0]
	checkUTC(t, "audit", e.At)
	if e.Actor != "cli:root" || e.Reason != "admin" || !e.At.Equal(at(time.Hour)) || string(e.Before) != "{}" || string(e.After) != "{}" || e.Fields == nil || len(e.Fields) != 0 {
		t.Errorf("AuditMatching(run-2, alice) = %+v, want the entry as written", e)
	}
}

func testEpisodes(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)
	episodes := func(s store.Store) map[string]store.Episode {
		t.Helper()
		eps, err := s.Episodes(ctx)
		if err != nil {
			t.Fatalf("Episodes: %v", err)
		}
		if eps == nil {
			t.Fatal("Episodes returned a nil map")
		}
		for k, e := range eps {
			checkUTC(t, k, e.StartedAt, e.SentAt)
		}
		return eps
	}
	set := func(key string, e store.Episode) {
		t.Helper()
		if err := s.SetEpisode(ctx, key, e); err != nil {
			t.Fatalf("SetEpisode(%s): %v", key, err)
		}
	}
	if eps := episodes(s); len(eps) != 0 {
		t.Fatalf("a new store has episodes: %v", eps)
	}

	full := store.Episode{StartedAt: at(0), RunID: "01A"}
	failed := store.Episode{StartedAt: at(time.Hour), RunID: "01B", SentAt: at(time.Hour + time.Second)}
	set("seats_exhausted/primary", full)
	set("run_failed", failed)
	want := map[string]store.Episode{"seats_exhausted/primary": full, "run_failed": failed}
	if diff := cmp.Diff(want, episodes(s)); diff != "" {
		t.Errorf("Episodes after two SetEpisode (-want +got):\n%s", diff)
	}

	// The pool stays full over another run, and the notification goes out.
	full.RunID, full.SentAt = "01C", at(2*time.Hour)
	set("seats_exhausted/primary", full)
	want["seats_exhausted/primary"] = full
	if diff := cmp.Diff(want, episodes(s)); diff != "" {
		t.Errorf("Episodes after an update (-want +got):\n%s", diff)
	}

	// The next run succeeds: the failure episode ends; ending it again,
	// or ending one never opened, is not an error.
	for _, key := range []string{"run_failed", "run_failed", "overage/extranet"} {
		if err := s.EndEpisode(ctx, key); err != nil {
			t.Fatalf("EndEpisode(%s): %v", key, err)
		}
	}
	delete(want, "run_failed")
	if diff := cmp.Diff(want, episodes(s)); diff != "" {
		t.Errorf("Episodes after EndEpisode (-want +got):\n%s", diff)
	}

	// Another process (a new handle) sees the same episodes.
	s2 := handle(t, newHandle)
	if diff := cmp.Diff(want, episodes(s2)); diff != "" {
		t.Errorf("Episodes seen by a new handle (-want +got):\n%s", diff)
	}
	if err := s2.SetEpisode(ctx, "", store.Episode{StartedAt: at(0)}); err == nil {
		t.Error("SetEpisode with an empty key succeeded")
	}
}

func testValues(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)
	if v, at, err := s.Value(ctx, "license/primary"); err != nil || v != "" || !at.IsZero() {
		t.Fatalf("Value of a key never set = %q, %v, %v; want \"\", zero, nil", v, at, err)
	}
	before := time.Now().Add(-time.Second)
	if err := s.SetValue(ctx, "license/primary", "first"); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("\u00e9x\ty\n", 100_000) // any text, 600 KB of it
	if err := s.SetValue(ctx, "cursor/ad", big); err != nil {
		t.Fatal(err)
	}
	if err := s.SetValue(ctx, "license/primary", "second"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][2]string{{"", "x"}, {"k", "a\x00b"}, {"k", "\xff"}} {
		if err := s.SetValue(ctx, bad[0], bad[1]); err == nil {
			t.Errorf("SetValue(%q, %q): no error; a value is UTF-8 text without NUL under a key", bad[0], bad[1])
		}
	}
	other := handle(t, newHandle)
	v, at, err := other.Value(ctx, "license/primary")
	if err != nil || v != "second" {
		t.Fatalf("Value = %q, %v; want the last value set, from another handle", v, err)
	}
	if at.Before(before) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("Value's time = %v, want about now", at)
	}
	checkUTC(t, "Value", at)
	if v, _, err := other.Value(ctx, "cursor/ad"); err != nil || v != big {
		t.Errorf("a large value did not round-trip (%d bytes back, %v)", len(v), err)
	}
}
