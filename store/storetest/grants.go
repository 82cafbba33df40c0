package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// testGrants checks the product grants: written and replaced by SetGrant
// (for active profiles only),
// counted (held only) inside a transaction, rolled back with it, removed
// by DeleteGrant and with their profile.
func testGrants(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)
	alice, bob, carol := active("alice", "primary"), active("bob", "primary"), active("carol", "primary")
	insert(t, s, &alice, &bob, &carol)

	if gs, err := s.Grants(ctx); err != nil || len(gs) != 0 {
		t.Fatalf("Grants of an empty store = %v, %v; want none", gs, err)
	}
	write := func(fn func(tx store.Tx) error) {
		t.Helper()
		if err := s.WithTx(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	write(func(tx store.Tx) error {
		for _, g := range []store.Grant{
			{ProfileID: bob.ID, Product: "crm", State: store.GrantGranted, Since: at(time.Minute)},
			{ProfileID: alice.ID, Product: "crm", State: store.GrantQueued, Since: at(2 * time.Minute)},
			{ProfileID: alice.ID, Product: "bi", State: store.GrantGranted, Since: at(3 * time.Minute), Manual: true},
		} {
			if err := tx.SetGrant(ctx, g); err != nil {
				return err
			}
		}
		// Seen inside the same transaction.
		n, err := tx.CountGrants(ctx, "crm")
		if err != nil {
			return err
		}
		if n != 1 {
			t.Errorf("CountGrants(crm) = %d, want 1 (a queued grant holds nothing)", n)
		}
		return nil
	})
	want := []store.Grant{
		{ProfileID: alice.ID, Product: "bi", State: store.GrantGranted, Since: at(3 * time.Minute), Manual: true},
		{ProfileID: alice.ID, Product: "crm", State: store.GrantQueued, Since: at(2 * time.Minute)},
		{ProfileID: bob.ID, Product: "crm", State: store.GrantGranted, Since: at(time.Minute)},
	}
	got, err := s.Grants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Grants (-want +got):\n%s", diff)
	}

	// Replaced by product; read back per profile; a rollback keeps nothing.
	write(func(tx store.Tx) error {
		if err := tx.SetGrant(ctx, store.Grant{ProfileID: alice.ID, Product: "crm", State: store.GrantGranted, Since: at(4 * time.Minute)}); err != nil {
			return err
		}
		gs, err := tx.ProfileGrants(ctx, alice.ID)
		if err != nil {
			return err
		}
		want := []store.Grant{want[0], {ProfileID: alice.ID, Product: "crm", State: store.GrantGranted, Since: at(4 * time.Minute)}}
		if diff := cmp.Diff(want, gs); diff != "" {
			t.Errorf("ProfileGrants after a replace (-want +got):\n%s", diff)
		}
		return nil
	})
	boom := errors.New("boom")
	err = s.WithTx(ctx, func(tx store.Tx) error {
		if err := tx.SetGrant(ctx, store.Grant{ProfileID: carol.ID, Product: "crm", State: store.GrantGranted}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WithTx = %v, want boom", err)
	}
	write(func(tx store.Tx) error {
		if n, err := tx.CountGrants(ctx, "crm"); err != nil || n != 2 {
			t.Errorf("CountGrants(crm) after a rollback = %d, %v; want 2", n, err)
		}
		return nil
	})

	// Refused: an unknown profile, a bad state.
	err = s.WithTx(ctx, func(tx store.Tx) error {
		return tx.SetGrant(ctx, store.Grant{ProfileID: carol.ID + 1000, Product: "crm", State: store.GrantGranted})
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetGrant of a missing profile = %v, want ErrNotFound", err)
	}
	erin := blocked("erin", "primary", model.ReasonAdmin, time.Time{})
	insert(t, s, &erin)
	err = s.WithTx(ctx, func(tx store.Tx) error {
		return tx.SetGrant(ctx, store.Grant{ProfileID: erin.ID, Product: "crm", State: store.GrantQueued})
	})
	if !errors.Is(err, store.ErrNotActive) {
		t.Errorf("SetGrant of a blocked profile = %v, want ErrNotActive", err)
	}
	err = s.WithTx(ctx, func(tx store.Tx) error {
		return tx.SetGrant(ctx, store.Grant{ProfileID: carol.ID, Product: "crm", State: "maybe"})
	})
	if err == nil {
		t.Error("SetGrant with state maybe: no error")
	}

	// DeleteGrant, twice; deleting a profile deletes its grants.
	write(func(tx store.Tx) error {
		for range 2 {
			if err := tx.DeleteGrant(ctx, bob.ID, "crm"); err != nil {
				return err
			}
		}
		p, err := tx.Get(ctx, alice.ID)
		if err != nil {
			return err
		}
		return tx.Delete(ctx, p)
	})
	if got, err = s.Grants(ctx); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("Grants after DeleteGrant and deleting the profile = %v, want none", got)
	}
	// A new profile never inherits a deleted one's grants.
	dave := model.Profile{Username: "dave", Area: "primary", State: model.Active}
	insert(t, s, &dave)
	if got, _ = s.Grants(ctx); len(got) != 0 {
		t.Errorf("Grants after a new profile = %v, want none", got)
	}
}
