package storetest

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// copier is what every store implements for seatsync store migrate.
type copier interface {
	store.Store
	store.Exporter
	store.Importer
}

func asCopier(t *testing.T, s store.Store) copier {
	t.Helper()
	c, ok := s.(copier)
	if !ok {
		t.Fatalf("%T does not implement store.Exporter and store.Importer", s)
	}
	return c
}

// testSnapshot fills a store through its interface, copies it into a
// fresh one with store.Copy, and checks that the copy reads back the
// same through the interface and goes on from where the source was: new
// IDs and sequence numbers follow the copied ones.
func testSnapshot(t *testing.T, newSource, newDest func() store.Store) {
	ctx := t.Context()
	src := asCopier(t, handle(t, newSource))
	alice, bob := active("alice", "primary"), active("Bob", "partners")
	carol := blocked("carol", "primary", model.ReasonLicense, at(3*time.Minute))
	dave := blocked("dave", "primary", model.ReasonLicense, time.Time{})
	gone := active("gone", "primary")
	alice.Groups, alice.Attributes = []string{"CN=Staff"}, map[string]string{"cost_center": "42"}
	bob.Source, bob.ExternalID = "hr", "e-2"
	insert(t, src, &alice, &bob, &carol, &dave, &gone)
	if _, err := src.SeedTarget(ctx, "intranet", nil); err != nil {
		t.Fatal(err)
	}
	err := src.WithTx(ctx, func(tx store.Tx) error {
		alice.Title = "Engineer"
		if err := tx.Update(ctx, &alice); err != nil {
			return err
		}
		for _, g := range []store.Grant{
			{ProfileID: alice.ID, Product: "crm", State: store.GrantGranted, Since: at(time.Minute), Manual: true},
			{ProfileID: bob.ID, Product: "crm", State: store.GrantQueued, Since: at(2 * time.Minute)},
			{ProfileID: gone.ID, Product: "crm", State: store.GrantGranted, Since: at(time.Minute)},
		} {
			if err := tx.SetGrant(ctx, g); err != nil {
				return err
			}
		}
		if err := tx.Delete(ctx, gone); err != nil {
			return err
		}
		if err := tx.MarkPending(ctx, "intranet", gone.ID, &gone); err != nil {
			return err
		}
		for _, e := range []store.AuditEntry{
			store.AuditEntry{RunID: "r1", At: at(time.Hour), Actor: "sync", Action: "update", Username: "alice"}.Changed(&carol, &alice),
			store.AuditEntry{RunID: "r1", At: at(time.Hour), Actor: "sync", Action: "delete", Username: "gone", Reason: "left"}.Changed(&gone, nil),
			// As an older seatsync recorded changes: two whole copies.
			{RunID: "r0", At: at(time.Minute), Actor: "sync", Action: "update", Username: "alice",
				Before: json.RawMessage(`{"id":1,"version":1,"username":"alice","area":"primary","state":"active"}`),
				After:  json.RawMessage(`{"id":1,"version":2,"username":"alice","title":"Boss","area":"primary","state":"active"}`)},
		} {
			if err := tx.Audit(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pending := onePending(t, src, "intranet", bob.ID)
	link := store.Link{AppID: "u-bob", ETag: `W/"3"`, Active: true, Hash: "h", Username: "Bob"}
	if err := src.PushDone(ctx, "intranet", bob.ID, pending.Seq, &link); err != nil {
		t.Fatal(err)
	}
	pc := onePending(t, src, "intranet", carol.ID)
	if err := src.PushFailed(ctx, "intranet", carol.ID, pc.Seq, 409, "taken", true, nil); err != nil {
		t.Fatal(err)
	}
	if err := src.SetTargetMemory(ctx, "intranet", `{"etag":true}`); err != nil {
		t.Fatal(err)
	}
	if err := src.SetLink(ctx, "lms", alice.ID, store.Link{AppID: "7", Active: true}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []store.Run{
		{ID: "r1", Mode: "sync", Result: "ok", StartedAt: at(time.Hour), FinishedAt: at(time.Hour + time.Second),
			Sources: []string{"hr"}, Summary: []byte(`{"creates":5}`), Report: []byte(`{"run_id":"r1"}`)},
		{ID: "r2", Mode: "plan", Result: "failed", Error: "boom", StartedAt: at(2 * time.Hour), FinishedAt: at(2*time.Hour + time.Second)},
	} {
		if err := src.SaveRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.SetEpisode(ctx, "seats_exhausted/primary", store.Episode{StartedAt: at(time.Hour), RunID: "r1"}); err != nil {
		t.Fatal(err)
	}
	if err := src.SetValue(ctx, "license", "registered_to: Example"); err != nil {
		t.Fatal(err)
	}
	if err := src.SaveSeats(ctx, "r1", at(time.Hour), []store.SeatRow{
		{Kind: store.SeatKindPool, Name: "primary", Limit: 5, Used: 3, Queued: 2, Remaining: 2},
		{Kind: store.SeatKindPool, Name: "partners", Unlimited: true, Used: 1},
	}); err != nil {
		t.Fatal(err)
	}

	dst := asCopier(t, handle(t, newDest))
	census, err := store.Copy(ctx, src, dst)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	want := store.Census{Profiles: 4, Queued: 2, Audit: 3, Runs: 2, Episodes: 1, Values: 1, Seats: 2, Grants: 2,
		Pending: map[string]int{"intranet": 4}, Links: map[string]int{"intranet": 1, "lms": 1}, LastRun: "r2"}
	if diff := cmp.Diff(want, census, cmpopts.IgnoreFields(store.Census{}, "LastAudit")); diff != "" {
		t.Errorf("census of the copy (-want +got):\n%s", diff)
	}

	// What the interface reads is the same on both sides.
	same := func(what string, read func(store.Store) (any, error)) {
		t.Helper()
		w, err := read(src)
		if err != nil {
			t.Fatalf("%s from the source: %v", what, err)
		}
		g, err := read(dst)
		if err != nil {
			t.Fatalf("%s from the copy: %v", what, err)
		}
		if diff := cmp.Diff(w, g, jsonByValue()); diff != "" {
			t.Errorf("%s differs in the copy (-source +copy):\n%s", what, diff)
		}
	}
	same("profiles", func(s store.Store) (any, error) { return s.Profiles(ctx) })
	same("queue", func(s store.Store) (any, error) { return s.Queue(ctx, []string{"primary"}) })
	same("product grants", func(s store.Store) (any, error) { return s.Grants(ctx) })
	same("audit", func(s store.Store) (any, error) { return s.AuditMatching(ctx, store.AuditFilter{}) })
	same("runs", func(s store.Store) (any, error) { return s.Runs(ctx, 0) })
	same("run r1", func(s store.Store) (any, error) { return s.Run(ctx, "r1") })
	same("episodes", func(s store.Store) (any, error) { return s.Episodes(ctx) })
	same("pending", func(s store.Store) (any, error) { return s.Pending(ctx, "intranet") })
	same("links", func(s store.Store) (any, error) { return s.Links(ctx, "lms") })
	same("counts", func(s store.Store) (any, error) {
		p, f, err := s.TargetCounts(ctx, "intranet")
		return [2]int{p, f}, err
	})
	same("memory", func(s store.Store) (any, error) {
		m, _, err := s.TargetMemory(ctx, "intranet")
		return m, err
	})
	same("seat history", func(s store.Store) (any, error) { return s.SeatHistory(ctx, time.Time{}) })
	same("value", func(s store.Store) (any, error) {
		v, _, err := s.Value(ctx, "license")
		return v, err
	})
	if seeded, err := dst.SeedTarget(ctx, "intranet", nil); err != nil || seeded {
		t.Errorf("SeedTarget on the copy = %v, %v; want false: it was seeded before the copy", seeded, err)
	}

	// The copy goes on after the source: no ID or sequence number given
	// again.
	erin := active("erin", "primary")
	insert(t, dst, &erin)
	if erin.ID <= gone.ID {
		t.Errorf("a profile made in the copy got ID %d, not above the source's last (%d, deleted)", erin.ID, gone.ID)
	}
	err = dst.WithTx(ctx, func(tx store.Tx) error {
		if err := tx.Audit(ctx, store.AuditEntry{RunID: "r3", At: at(3 * time.Hour), Actor: "sync", Action: "create", Username: "erin"}.Changed(nil, &erin)); err != nil {
			return err
		}
		return tx.MarkPending(ctx, "intranet", erin.ID, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := dst.AuditMatching(ctx, store.AuditFilter{})
	if err != nil || len(entries) != 4 || entries[0].Username != "erin" || entries[0].Seq <= entries[1].Seq {
		t.Errorf("audit of the copy after a new entry = %+v, %v; want erin's newest, numbered after the copied ones", entries, err)
	}
	ids := pendingIDs(t, dst, "intranet")
	if len(ids) == 0 || ids[len(ids)-1] != erin.ID {
		t.Errorf("pending of the copy = %v; want erin's push last, after the copied ones", ids)
	}

	// A store that holds anything refuses an import, and is left as it
	// was.
	snap, err := src.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.Import(ctx, snap); !errors.Is(err, store.ErrNotEmpty) {
		t.Errorf("Import into a store that holds profiles: %v, want ErrNotEmpty", err)
	}
	if ps, err := dst.Profiles(ctx); err != nil || len(ps) != 5 {
		t.Errorf("after a refused import: %d profiles, %v; want the 5 it had", len(ps), err)
	}
}
