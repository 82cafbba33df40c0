package reconcile_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/admin"
	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	csvsource "github.com/seatsync/seatsync/connector/csv"
	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/store/sqlite"
)

// A sync writes the grants it plans, a second one finds nothing to do,
// and a raised limit gives the queue its licences.
func TestSyncGrantsProducts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writePeople(t, filepath.Join(dir, "people.csv"), 30)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := benchConfig(dir)
	cfg.Licensing.Products = []config.Product{{Name: "crm", Limit: config.Limit{N: 2}, Grant: []config.GrantRule{
		{Group: "team1"}, {Attribute: &config.AttributeRule{Name: "department", Equals: "Dept2"}}}}}
	r := &reconcile.Runner{Config: cfg, Store: st, Connectors: connector.Registry{"csv": csvsource.Kind}, Log: zap.NewNop()}
	sync := func() *reconcile.Report {
		t.Helper()
		rep, err := r.Run(ctx, reconcile.Options{Mode: reconcile.ModeSync})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	type grantOf struct{ Action, Product, Username, Reason, Result string }
	productChanges := func(rep *reconcile.Report) []grantOf {
		var out []grantOf
		for _, c := range rep.Changes {
			if c.IsProduct() {
				out = append(out, grantOf{string(c.Action), c.Product, c.Username, c.Reason, c.Result})
			}
		}
		return out
	}
	holders := func() map[string]string {
		t.Helper()
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
		out := map[string]string{}
		for _, g := range grants {
			out[names[g.ProfileID]] = g.State
		}
		return out
	}

	rep := sync()
	want := []grantOf{
		{"grant", "crm", "user1", "rule", "applied"},
		{"grant", "crm", "user2", "rule", "applied"},
		{"grant", "crm", "user22", "queued", "applied"},
	}
	if diff := cmp.Diff(want, productChanges(rep)); diff != "" {
		t.Errorf("first sync (-want +got):\n%s", diff)
	}
	if p := rep.Products[0]; p.UsedAfter != 2 || p.QueuedAfter != 1 {
		t.Errorf("products = %+v, want 2 used, 1 queued", rep.Products)
	}
	if diff := cmp.Diff(map[string]string{"user1": store.GrantGranted, "user2": store.GrantGranted, "user22": store.GrantQueued}, holders()); diff != "" {
		t.Errorf("stored grants (-want +got):\n%s", diff)
	}
	if rep.Summary.Grant != 3 {
		t.Errorf("summary = %+v, want 3 grants", rep.Summary)
	}

	if rep := sync(); len(rep.Changes) != 0 {
		t.Errorf("second sync: %d changes, want none: %+v", len(rep.Changes), productChanges(rep))
	}

	cfg.Licensing.Products[0].Limit.N = 3
	rep = sync()
	if diff := cmp.Diff([]grantOf{{"grant", "crm", "user22", "seat_freed", "applied"}}, productChanges(rep)); diff != "" {
		t.Errorf("after raising the limit (-want +got):\n%s", diff)
	}

	// The lowered limit recalls nobody.
	cfg.Licensing.Products[0].Limit.N = 1
	rep = sync()
	if len(rep.Changes) != 0 || rep.Products[0].Overage != 2 {
		t.Errorf("after lowering the limit: changes %+v, products %+v; want none, overage 2", productChanges(rep), rep.Products)
	}
	if n := len(holders()); n != 3 {
		t.Errorf("%d holders, want 3", n)
	}
}

// hookStore runs before once, before the first write transaction: an
// admin acting between the plan and the apply.
type hookStore struct {
	store.Store
	before func()
}

func (h *hookStore) WithTx(ctx context.Context, fn func(store.Tx) error) error {
	if b := h.before; b != nil {
		h.before = nil
		b()
	}
	return h.Store.WithTx(ctx, fn)
}

// A licence an admin grants between the plan and the apply is counted by
// the apply's re-check: the sync's grant that no longer fits is written
// queued (no_seat), and the product never goes over its limit.
func TestSyncGrantRecheckedInTransaction(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writePeople(t, filepath.Join(dir, "people.csv"), 30)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := benchConfig(dir)
	cfg.Licensing.Products = []config.Product{{Name: "crm", Limit: config.Limit{N: 0}, Grant: []config.GrantRule{
		{Group: "team1"}, {Attribute: &config.AttributeRule{Name: "department", Equals: "Dept2"}}}}}
	hs := &hookStore{Store: st}
	r := &reconcile.Runner{Config: cfg, Store: hs, Connectors: connector.Registry{"csv": csvsource.Kind}, Log: zap.NewNop()}
	if _, err := r.Run(ctx, reconcile.Options{Mode: reconcile.ModeSync}); err != nil {
		t.Fatal(err)
	}
	cfg.Licensing.Products[0].Limit.N = 2
	hs.before = func() {
		ad := &admin.Admin{Store: st, Policy: licensing.FromConfig(cfg.Licensing), Actor: "cli:test"}
		if _, err := ad.Grant(ctx, "crm", "user5"); err != nil {
			t.Errorf("admin grant: %v", err)
		}
	}
	rep, err := r.Run(ctx, reconcile.Options{Mode: reconcile.ModeSync})
	if err != nil {
		t.Fatal(err)
	}
	results := map[string]string{}
	for _, c := range rep.Changes {
		if c.IsProduct() {
			results[c.Username] = c.Result
		}
	}
	if diff := cmp.Diff(map[string]string{"user1": reconcile.ResultApplied, "user2": reconcile.ResultNoSeat}, results); diff != "" {
		t.Errorf("grant results (-want +got):\n%s", diff)
	}
	grants, err := st.Grants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, g := range grants {
		if g.State == store.GrantGranted {
			held++
		}
	}
	if held != 2 || len(grants) != 4 {
		t.Errorf("%d held of %d grants, want 2 held, 2 queued: %+v", held, len(grants), grants)
	}
	if p := rep.Products[0]; p.UsedAfter != 2 || p.QueuedAfter != 2 {
		t.Errorf("report products after the recount: %+v", rep.Products)
	}
}
