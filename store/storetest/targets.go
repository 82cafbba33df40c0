package storetest

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/store"
)

// The outbox of pushes to targets and the links to applications' users.

func pendingIDs(t *testing.T, s store.Store, target string) []int64 {
	t.Helper()
	ps, err := s.Pending(t.Context(), target)
	if err != nil {
		t.Fatalf("Pending(%s): %v", target, err)
	}
	var ids []int64
	for _, p := range ps {
		ids = append(ids, p.ProfileID)
	}
	return ids
}

func onePending(t *testing.T, s store.Store, target string, id int64) store.Pending {
	t.Helper()
	ps, err := s.Pending(t.Context(), target)
	if err != nil {
		t.Fatalf("Pending(%s): %v", target, err)
	}
	for _, p := range ps {
		if p.ProfileID == id {
			return p
		}
	}
	t.Fatalf("profile %d is not pending for %s", id, target)
	return store.Pending{}
}

func counts(t *testing.T, s store.Store, target string) [2]int {
	t.Helper()
	p, f, err := s.TargetCounts(t.Context(), target)
	if err != nil {
		t.Fatalf("TargetCounts(%s): %v", target, err)
	}
	return [2]int{p, f}
}

func testTargetOutbox(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s, other := handle(t, newHandle), handle(t, newHandle)
	alice, bob, carol := active("alice", "primary"), active("bob", "partners"), active("carol", "primary")
	insert(t, s, &alice, &bob, &carol)

	// A target seen for the first time gets every profile of its areas,
	// once.
	seeded, err := s.SeedTarget(ctx, "intranet", []string{"primary"})
	if err != nil || !seeded {
		t.Fatalf("SeedTarget(intranet) = %v, %v; want true", seeded, err)
	}
	if got := pendingIDs(t, s, "intranet"); !cmp.Equal(got, []int64{alice.ID, carol.ID}) {
		t.Fatalf("pending after seeding primary = %v, want alice and carol (%d, %d)", got, alice.ID, carol.ID)
	}
	if seeded, err := other.SeedTarget(ctx, "intranet", nil); err != nil || seeded {
		t.Fatalf("a second SeedTarget(intranet) = %v, %v; want false", seeded, err)
	}
	if seeded, err := s.SeedTarget(ctx, "lms", nil); err != nil || !seeded || len(pendingIDs(t, s, "lms")) != 3 {
		t.Fatalf("SeedTarget(lms, every area) = %v, %v, pending %v; want all three", seeded, err, pendingIDs(t, s, "lms"))
	}

	// A push marked in a transaction that rolls back never happened.
	errRollback := errors.New("roll back")
	err = s.WithTx(ctx, func(tx store.Tx) error {
		if err := tx.MarkPending(ctx, "crm", bob.ID, nil); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) || len(pendingIDs(t, s, "crm")) != 0 {
		t.Fatalf("rolled back MarkPending: err %v, pending %v", err, pendingIDs(t, s, "crm"))
	}

	// Marked with the change it carries, in one transaction; the pending
	// push reads the profile as it is now.
	err = s.WithTx(ctx, func(tx store.Tx) error {
		bob.Title = "Partner manager"
		if err := tx.Update(ctx, &bob); err != nil {
			return err
		}
		return tx.MarkPending(ctx, "intranet", bob.ID, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := pendingIDs(t, other, "intranet"); !cmp.Equal(got, []int64{alice.ID, carol.ID, bob.ID}) {
		t.Fatalf("pending = %v, want alice, carol, then bob", got)
	}
	pb := onePending(t, other, "intranet", bob.ID)
	if pb.Profile == nil || pb.Profile.Title != "Partner manager" || pb.Link != nil || pb.Gone != nil || pb.MarkedAt.IsZero() {
		t.Fatalf("bob's pending push = %+v, want his profile as updated, no link, a mark time", pb)
	}

	// Done: the link is kept and the push leaves the outbox.
	link := store.Link{AppID: "u-alice", ETag: `W/"1"`, Active: true, Hash: "h1", Username: "alice"}
	pa := onePending(t, s, "intranet", alice.ID)
	if err := s.PushDone(ctx, "intranet", alice.ID, pa.Seq, &link); err != nil {
		t.Fatal(err)
	}
	links, err := other.Links(ctx, "intranet")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[int64]store.Link{alice.ID: link}, links); diff != "" {
		t.Errorf("links (-want +got):\n%s", diff)
	}
	if got := pendingIDs(t, s, "intranet"); !cmp.Equal(got, []int64{carol.ID, bob.ID}) {
		t.Fatalf("pending after alice's push = %v", got)
	}

	// Marked again while its push was in flight: the push that ends is not
	// the last word, so the profile stays pending.
	pc := onePending(t, s, "intranet", carol.ID)
	err = s.WithTx(ctx, func(tx store.Tx) error { return tx.MarkPending(ctx, "intranet", carol.ID, nil) })
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PushDone(ctx, "intranet", carol.ID, pc.Seq, &store.Link{AppID: "u-carol", Active: true, Username: "carol"}); err != nil {
		t.Fatal(err)
	}
	if again := onePending(t, s, "intranet", carol.ID); again.Seq == pc.Seq || again.Link == nil || again.Link.AppID != "u-carol" {
		t.Fatalf("carol, marked again during her push: %+v; want still pending, with a new seq and her link", again)
	}

	// A failure for one user: counted, kept, not failed forever.
	pb = onePending(t, s, "intranet", bob.ID)
	if err := s.PushFailed(ctx, "intranet", bob.ID, pb.Seq, 400, "invalidValue: title too long", true, nil); err != nil {
		t.Fatal(err)
	}
	pb = onePending(t, other, "intranet", bob.ID)
	if !pb.Failed || pb.Attempts != 1 || pb.LastStatus != 400 || pb.LastError != "invalidValue: title too long" {
		t.Fatalf("bob after a 400: %+v", pb)
	}
	if got := counts(t, s, "intranet"); got != [2]int{2, 1} {
		t.Errorf("TargetCounts = %v, want 2 pending, 1 failed", got)
	}
	if n, err := s.RetryFailed(ctx, "intranet"); err != nil || n != 1 {
		t.Fatalf("RetryFailed = %d, %v; want 1", n, err)
	}
	if pb = onePending(t, s, "intranet", bob.ID); pb.Failed || pb.Attempts != 1 {
		t.Errorf("bob after RetryFailed: %+v, want pending, not failed, attempts kept", pb)
	}
	if err := s.PushFailed(ctx, "intranet", bob.ID, pb.Seq, 503, "unavailable", false, &store.Link{AppID: "u-bob", Username: "bob"}); err != nil {
		t.Fatal(err)
	}
	if pb = onePending(t, s, "intranet", bob.ID); pb.Failed || pb.Attempts != 2 || pb.Link == nil || pb.Link.AppID != "u-bob" {
		t.Errorf("bob after a 503 whose user was found: %+v, want pending, attempts 2, linked to u-bob", pb)
	}
	if err := s.PushFailed(ctx, "intranet", bob.ID, pb.Seq, 400, "bad", true, nil); err != nil {
		t.Fatal(err)
	}
	err = s.WithTx(ctx, func(tx store.Tx) error { return tx.MarkPending(ctx, "intranet", bob.ID, nil) })
	if err != nil {
		t.Fatal(err)
	}
	if pb = onePending(t, s, "intranet", bob.ID); pb.Failed {
		t.Errorf("bob's failed push, marked again by a change: %+v, want pending again", pb)
	}

	// A deleted profile's push carries its last state, and its link stays.
	err = s.WithTx(ctx, func(tx store.Tx) error {
		if err := tx.Delete(ctx, alice); err != nil {
			return err
		}
		return tx.MarkPending(ctx, "intranet", alice.ID, &alice)
	})
	if err != nil {
		t.Fatal(err)
	}
	pa = onePending(t, other, "intranet", alice.ID)
	if pa.Profile != nil || pa.Gone == nil || pa.Gone.Username != "alice" || pa.Link == nil || pa.Link.AppID != "u-alice" {
		t.Fatalf("alice after her delete: %+v, want no profile, her last state, her link", pa)
	}
	gone := store.Link{AppID: "u-alice", Active: false, Username: "alice", Gone: true}
	if err := s.PushDone(ctx, "intranet", alice.ID, pa.Seq, &gone); err != nil {
		t.Fatal(err)
	}
	links, err = s.Links(ctx, "intranet")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(gone, links[alice.ID]); diff != "" {
		t.Errorf("alice's link once deactivated (-want +got):\n%s", diff)
	}

	// One user, one profile: linking an application id anew moves it.
	if err := s.SetLink(ctx, "intranet", carol.ID, store.Link{AppID: "u-alice", Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	links, err = s.Links(ctx, "intranet")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := links[alice.ID]; ok || links[carol.ID].AppID != "u-alice" {
		t.Errorf("links after u-alice moved to carol: %+v", links)
	}
	if err := s.PushDone(ctx, "intranet", carol.ID, onePending(t, s, "intranet", carol.ID).Seq, nil); err != nil {
		t.Fatal(err)
	}
	links, _ = s.Links(ctx, "intranet")
	if _, ok := links[carol.ID]; ok {
		t.Errorf("PushDone with no link kept carol's link: %+v", links)
	}
	// What a client learnt of its application is kept between runs.
	if m, at, err := other.TargetMemory(ctx, "crm"); err != nil || m != "" || !at.IsZero() {
		t.Fatalf("TargetMemory of a target never seen = %q, %s, %v", m, at, err)
	}
	for _, m := range []string{"patch=1 etag=0", "patch=0 etag=1"} {
		if err := s.SetTargetMemory(ctx, "intranet", m); err != nil {
			t.Fatal(err)
		}
		if got, at, err := other.TargetMemory(ctx, "intranet"); err != nil || got != m || at.IsZero() {
			t.Errorf("TargetMemory = %q, %s, %v; want %q and a time", got, at, err, m)
		}
	}
	if err := s.SetTargetMemory(ctx, "crm", "patch=1 etag=1"); err != nil {
		t.Fatal(err)
	}
	if seeded, err := s.SeedTarget(ctx, "crm", nil); err != nil || !seeded {
		t.Errorf("SeedTarget of a target only remembered so far = %v, %v; want seeded", seeded, err)
	}
	if got := len(pendingIDs(t, s, "crm")); got != 2 {
		t.Errorf("crm seeded with %d profiles, want the 2 left", got)
	}
	// Other targets are apart.
	if got := counts(t, s, "lms"); got != [2]int{3, 0} {
		t.Errorf("lms counts = %v, want 3 pending", got)
	}
}
