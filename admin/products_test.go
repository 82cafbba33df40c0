package admin_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/admin"
	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/store"
)

func productPolicy(limit int) *licensing.Policy {
	return licensing.FromConfig(config.Licensing{
		Pools:    []config.Pool{{Name: "primary", Limit: config.Limit{N: 5}, Areas: []string{"primary"}}},
		Products: []config.Product{{Name: "crm", Limit: config.Limit{N: limit}, Grant: []config.GrantRule{{Group: "Sales"}}}},
	})
}

func grantsOf(t *testing.T, st store.Store) map[string]store.Grant {
	t.Helper()
	ctx := context.Background()
	grants, err := st.Grants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	profiles, err := st.Profiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := map[int64]string{}
	for _, p := range profiles {
		names[p.ID] = p.Username
	}
	out := map[string]store.Grant{}
	for _, g := range grants {
		out[names[g.ProfileID]] = g
	}
	return out
}

// A manual grant takes a licence, re-checked in its transaction: the
// grant that finds none free fails with a clear message; a blocked
// profile gets none; a block recalls what the profile held.
func TestGrantAndRecall(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, "alice", "bob", "carol")
	ad := &admin.Admin{Store: st, Policy: productPolicy(1), Actor: "cli:root"}

	out, err := ad.Grant(ctx, "crm", "alice")
	if err != nil || out.Action != "grant" || out.Product != "crm" {
		t.Fatalf("grant alice = %+v, %v", out, err)
	}
	if out, err := ad.Grant(ctx, "crm", "alice"); err != nil || out.Action != "none" {
		t.Errorf("second grant alice = %+v, %v; want nothing to do", out, err)
	}
	_, err = ad.Grant(ctx, "crm", "bob")
	if !errors.Is(err, admin.ErrNoLicence) || !strings.Contains(err.Error(), "1 of 1 issued") {
		t.Errorf("grant bob with none free = %v, want ErrNoLicence saying 1 of 1 issued", err)
	}
	if _, err := ad.Grant(ctx, "bi", "bob"); !errors.Is(err, admin.ErrUnknownProduct) || !strings.Contains(err.Error(), "products: crm") {
		t.Errorf("grant of an unknown product = %v", err)
	}
	if _, err := ad.Block(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := ad.Grant(ctx, "crm", "carol"); !errors.Is(err, admin.ErrNotActive) ||
		!strings.Contains(err.Error(), "only active profiles hold product licences") {
		t.Errorf("grant to a blocked profile = %v, want ErrNotActive", err)
	}
	g := grantsOf(t, st)
	if len(g) != 1 || g["alice"].State != store.GrantGranted || !g["alice"].Manual {
		t.Errorf("grants = %+v, want alice's manual grant alone", g)
	}

	// A block recalls; the licence is free for bob.
	out, err = ad.Block(ctx, "alice")
	if err != nil || !strings.Contains(out.Message, "product licences recalled: crm") {
		t.Errorf("block alice = %+v, %v; want its crm licence recalled", out, err)
	}
	if _, err := ad.Grant(ctx, "crm", "bob"); err != nil {
		t.Fatalf("grant bob once alice is blocked: %v", err)
	}
	out, err = ad.Recall(ctx, "crm", "bob")
	if err != nil || out.Action != "recall" {
		t.Errorf("recall bob = %+v, %v", out, err)
	}
	if out, err := ad.Recall(ctx, "crm", "bob"); err != nil || out.Action != "none" {
		t.Errorf("second recall bob = %+v, %v; want nothing to do", out, err)
	}
	if g := grantsOf(t, st); len(g) != 0 {
		t.Errorf("grants = %+v, want none", g)
	}
	entries, err := st.Audit(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action+" "+e.Username)
	}
	want := []string{"recall bob", "grant bob", "block alice", "block carol", "grant alice"}
	if diff := cmp.Diff(want, actions); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}
