package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

var (
	// ErrNoLicence is returned by Grant when every licence of the product
	// is taken.
	ErrNoLicence = errors.New("no free product licence")
	// ErrNotActive is returned by Grant for a blocked profile.
	ErrNotActive = errors.New("only active profiles hold product licences")
	// ErrUnknownProduct is returned for a product the configuration does
	// not list.
	ErrUnknownProduct = errors.New("no such product")
)

// product returns the configured product called name.
func (a *Admin) product(name string) (*licensing.Product, error) {
	i := a.Policy.ProductIndex(name)
	if i < 0 {
		names := make([]string, 0, len(a.Policy.Products))
		for _, p := range a.Policy.Products {
			names = append(names, p.Name)
		}
		known := "none is configured (licensing.products)"
		if len(names) > 0 {
			known = "products: " + strings.Join(names, ", ")
		}
		return nil, fmt.Errorf("%w %q (%s)", ErrUnknownProduct, name, known)
	}
	return &a.Policy.Products[i], nil
}

// Grant gives an active profile a licence of product by hand. It takes a
// licence: the product's count is re-checked inside the write transaction,
// and when none is free it fails with ErrNoLicence. The grant is recorded
// as manual: a sync keeps it while no grant rule matches the profile, and
// recalls it only when the profile is blocked or deleted (or by Recall).
func (a *Admin) Grant(ctx context.Context, product, username string) (Outcome, error) {
	prod, err := a.product(product)
	if err != nil {
		return Outcome{}, err
	}
	return a.grantChange(ctx, username, "grant", product, func(tx store.Tx, p *model.Profile, cur *store.Grant, now time.Time) (*store.Grant, string, error) {
		if !licensing.MayHold(p) {
			return nil, "", fmt.Errorf("%w: %s is %s", ErrNotActive, p.Username, describeState(p))
		}
		if cur != nil && cur.State == store.GrantGranted {
			if cur.Manual {
				return nil, "", nil
			}
			g := *cur
			g.Manual = true
			return &g, fmt.Sprintf("already held %s; now kept as a manual grant", product), nil
		}
		if prod.Disabled {
			return nil, "", fmt.Errorf("%w of product %s: its licence flag %s is off, or no licence is in force, so it gives nobody a licence",
				ErrNoLicence, product, prod.EnabledBy)
		}
		if !prod.Unlimited {
			n, err := tx.CountGrants(ctx, product)
			if err != nil {
				return nil, "", fmt.Errorf("count licences of product %s: %w", product, err)
			}
			if !prod.HasRoom(n) {
				return nil, "", fmt.Errorf("%w of product %s (%d of %d issued): recall it from someone first (seatsync profiles recall), or raise its limit",
					ErrNoLicence, product, n, prod.Limit)
			}
		}
		return &store.Grant{ProfileID: p.ID, Product: product, State: store.GrantGranted, Since: now, Manual: true},
			fmt.Sprintf("granted %s (by hand: a sync keeps it until the profile is blocked or deleted)", product), nil
	})
}

// Recall takes a product licence (or its place in the product's queue)
// from a profile by hand. A grant rule that still matches the profile
// grants it again at the next sync.
func (a *Admin) Recall(ctx context.Context, product, username string) (Outcome, error) {
	prod, err := a.product(product)
	if err != nil {
		return Outcome{}, err
	}
	return a.grantChange(ctx, username, "recall", product, func(tx store.Tx, p *model.Profile, cur *store.Grant, now time.Time) (*store.Grant, string, error) {
		if cur == nil {
			return nil, "", nil
		}
		msg := "recalled " + product
		if cur.State == store.GrantQueued {
			msg = "taken out of the queue of " + product
		}
		if licensing.MayHold(p) && prod.Matches(p) {
			msg += "; note that a grant rule of the product still matches, so the next sync grants it again"
		}
		return nil, msg, nil
	})
}

// grantChange runs fn on the profile's grant of product, in one write
// transaction, and writes what it returns: the grant to set, or nil for
// a recall (when msg is not empty). An empty msg is nothing to do.
func (a *Admin) grantChange(ctx context.Context, username, action, product string,
	fn func(store.Tx, *model.Profile, *store.Grant, time.Time) (*store.Grant, string, error)) (Outcome, error) {
	if a.Actor == "" {
		return Outcome{}, ErrNoActor
	}
	now := a.now()
	var out Outcome
	err := a.Store.WithTx(ctx, func(tx store.Tx) error {
		p, err := a.find(ctx, tx, username)
		if err != nil {
			return err
		}
		grants, err := tx.ProfileGrants(ctx, p.ID)
		if err != nil {
			return err
		}
		var cur *store.Grant
		for i := range grants {
			if grants[i].Product == product {
				cur = &grants[i]
			}
		}
		next, msg, err := fn(tx, &p, cur, now)
		if err != nil {
			return err
		}
		out = Outcome{Username: p.Username, Action: action, Product: product, State: p.State, Reason: p.BlockReason, Message: msg, Profile: p}
		if msg == "" {
			what := "holds " + product
			if action == "recall" {
				what = "does not hold " + product
			}
			out.Action, out.Message = "none", "nothing to do: already "+what
			return nil
		}
		if next != nil {
			err = tx.SetGrant(ctx, *next)
		} else {
			err = tx.DeleteGrant(ctx, p.ID, product)
		}
		if err != nil {
			return err
		}
		return tx.Audit(ctx, store.AuditEntry{RunID: newID(now), At: now, Actor: a.Actor, Action: action,
			Username: p.Username, Reason: "product " + product + ": manual"}.Changed(&p, &p))
	})
	return out, err
}

// recallAll takes every product licence from a profile that is blocked,
// in the block's transaction, and names the products.
func recallAll(ctx context.Context, tx store.Tx, p *model.Profile) ([]string, error) {
	grants, err := tx.ProfileGrants(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, g := range grants {
		if err := tx.DeleteGrant(ctx, p.ID, g.Product); err != nil {
			return nil, err
		}
		if g.State == store.GrantGranted {
			names = append(names, g.Product)
		}
	}
	return names, nil
}
