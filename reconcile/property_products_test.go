package reconcile_test

import (
	"errors"
	"maps"

	"github.com/seatsync/seatsync/admin"
	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store"
)

// The property test's product licences: one product, crm, for the
// Executives and the partners, whose limit changes now and then, and an
// admin who grants and recalls it by hand.

func (w *world) changeProductLimit() {
	old := w.prodLimit
	switch {
	case w.rng.IntN(10) == 0:
		w.prodLimit = config.Limit{Unlimited: true}
	default:
		w.prodLimit = config.Limit{N: w.rng.IntN(5)}
	}
	w.reconfigure()
	w.logf("limit of product %s: %s -> %s", propProduct, old, w.prodLimit)
}

func (w *world) grants() []store.Grant {
	w.t.Helper()
	gs, err := w.st.Grants(w.ctx)
	if err != nil {
		w.t.Fatalf("read product grants: %v", err)
	}
	return gs
}

func grantOf(gs []store.Grant, id int64, product string) *store.Grant {
	for i := range gs {
		if gs[i].ProfileID == id && gs[i].Product == product {
			return &gs[i]
		}
	}
	return nil
}

// adminProduct is an admin granting or recalling crm by hand.
func (w *world) adminProduct() {
	t := w.t
	p := w.randomProfile()
	if p == nil {
		return
	}
	before, gs := w.read(), w.grants()
	pol := w.policy()
	prod := &pol.Products[pol.ProductIndex(propProduct)]
	held := pol.CountProducts(gs)[0].Issued
	cur := grantOf(gs, p.ID, propProduct)
	if w.rng.IntN(3) == 0 {
		_, err := w.admin().Recall(w.ctx, propProduct, p.Username)
		w.logf("admin recall %s %s: %v", propProduct, p.Username, err)
		if err != nil {
			t.Fatalf("admin recall %s %s: %v", propProduct, p.Username, err)
		}
		if g := grantOf(w.grants(), p.ID, propProduct); g != nil {
			t.Fatalf("admin recall %s %s: it still has %+v", propProduct, p.Username, g)
		}
	} else {
		_, err := w.admin().Grant(w.ctx, propProduct, p.Username)
		w.logf("admin grant %s %s (%s, %d issued of %s): %v", propProduct, p.Username, p.State, held, w.prodLimit, err)
		g := grantOf(w.grants(), p.ID, propProduct)
		switch {
		case p.State != model.Active:
			if !errors.Is(err, admin.ErrNotActive) {
				t.Fatalf("admin grant %s to %s, who is %s: %v, want ErrNotActive", propProduct, p.Username, p.State, err)
			}
		case cur != nil && cur.State == store.GrantGranted, prod.HasRoom(held):
			if err != nil || g == nil || g.State != store.GrantGranted || !g.Manual {
				t.Fatalf("admin grant %s to %s (%d of %s issued): %v, grant now %+v; want a manual grant", propProduct, p.Username, held, w.prodLimit, err, g)
			}
		default:
			if !errors.Is(err, admin.ErrNoLicence) {
				t.Fatalf("admin grant %s to %s with %d of %s issued: %v, want ErrNoLicence", propProduct, p.Username, held, w.prodLimit, err)
			}
			w.stats.adminGrantRefused.Add(1)
		}
	}
	w.onlyChanged(before, w.read())
	w.checkProducts(nil, false)
}

// checkProducts checks the product invariants against the store: no
// product over its limit (a lowered limit keeps its holders, but nobody
// new gets one), and no product licence (nor place in a product's queue)
// on a blocked or deleted profile. After a clean sync also: nobody waits
// while a licence is free, every active profile a rule matches holds or
// waits, nobody holds one without a rule or a manual grant, and the
// report's numbers are the store's.
func (w *world) checkProducts(rep *reconcile.Report, clean bool) {
	t := w.t
	t.Helper()
	pol := w.policy()
	profiles := w.read()
	ids := byID(profiles)
	gs := w.grants()
	for _, g := range gs {
		switch p := ids[g.ProfileID]; {
		case p == nil:
			t.Fatalf("product %s is %s for profile %d, which does not exist", g.Product, g.State, g.ProfileID)
		case p.State != model.Active:
			t.Fatalf("a product licence on a blocked profile: %s is %s %s and has %s %s", p.Username, p.State, p.BlockReason, g.Product, g.State)
		}
	}
	counts := pol.CountProducts(gs)
	held := map[string]int{}
	for i, prod := range pol.Products {
		c := counts[i]
		held[prod.Name] = c.Issued
		if bound := max(prod.Limit, w.prevHeld[prod.Name]); !prod.Unlimited && c.Issued > bound {
			t.Fatalf("product %s over its limit: %d issued, %d before, limit %d", prod.Name, c.Issued, w.prevHeld[prod.Name], prod.Limit)
		}
		if !clean {
			continue
		}
		if c.Queued > 0 && prod.HasRoom(c.Issued) {
			t.Fatalf("product %s: %d queued but only %d of %d issued after a sync", prod.Name, c.Queued, c.Issued, prod.Limit)
		}
		for i := range profiles {
			p := &profiles[i]
			g := grantOf(gs, p.ID, prod.Name)
			matches := licensing.MayHold(p) && prod.Matches(p)
			switch {
			case matches && g == nil:
				t.Fatalf("product %s: a rule matches %s, who neither holds nor waits for it after a sync", prod.Name, p.Username)
			case !matches && g != nil && !g.Manual:
				t.Fatalf("product %s: %s has it (%s) after a sync, but no rule matches and it was not granted by hand", prod.Name, p.Username, g.State)
			}
		}
		if rep != nil {
			for _, r := range rep.Products {
				if r.Name == prod.Name && (r.UsedAfter != c.Issued || r.QueuedAfter != c.Queued) {
					t.Fatalf("product %s: the report says %d used, %d queued; the store has %d issued, %d queued",
						prod.Name, r.UsedAfter, r.QueuedAfter, c.Issued, c.Queued)
				}
			}
		}
	}
	w.prevHeld = maps.Clone(held)
	if rep == nil {
		return
	}
	for _, ch := range rep.Changes {
		switch {
		case ch.Result != reconcile.ResultApplied:
		case ch.Action == reconcile.ActionRecall:
			w.stats.productRecalls.Add(1)
		case ch.Action == reconcile.ActionGrant && ch.Reason == reconcile.ReasonQueued:
			w.stats.productQueued.Add(1)
		case ch.Action == reconcile.ActionGrant:
			w.stats.productGrants.Add(1)
		}
	}
}
