package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// applyProducts writes the grants and recalls, after every account change
// (a grant needs its profile written, and active), in batches of store
// transactions: recalls first, so the licences they free are free for
// the grants; then grants, in the plan's queue order. Each licence given
// is re-checked inside its transaction against the product's count, so
// nothing since the plan (an admin's grant, another replica) can push a
// product over its limit: a grant that finds none free is written queued
// (result no_seat). A grant whose profile is not active in the store
// (the store refuses it), or was not written, is a conflict the next run
// redoes.
func (r *Runner) applyProducts(ctx context.Context, log *zap.Logger, rep *Report, pol *licensing.Policy, now time.Time, size int) error {
	var recalls, grants []int
	created := map[string]int64{}
	for i := range rep.Changes {
		ch := &rep.Changes[i]
		switch {
		case ch.Action == ActionRecall:
			recalls = append(recalls, i)
		case ch.Action == ActionGrant:
			grants = append(grants, i)
		case ch.Action == ActionCreate && ch.id != 0:
			created[model.FoldUsername(ch.Username)] = ch.id
		}
	}
	// Held grants before queued ones; each in the plan's order, which is
	// queue order within a product.
	slices.SortStableFunc(grants, func(a, b int) int {
		return boolRank(rep.Changes[a].Grant.State == store.GrantQueued) - boolRank(rep.Changes[b].Grant.State == store.GrantQueued)
	})
	order := append(recalls, grants...)
	for start := 0; start < len(order); start += size {
		batch := order[start:min(start+size, len(order))]
		err := r.Store.WithTx(ctx, func(tx store.Tx) error {
			check := &productCheck{tx: tx, pol: pol, counted: map[string]int{}, taken: map[string]int{}}
			for _, ci := range batch {
				ch := &rep.Changes[ci]
				ch.Result = ""
				if err := applyProduct(ctx, tx, check, created, rep.RunID, ch, now); err != nil {
					return fmt.Errorf("%s %s %s: %w", ch.Action, ch.Product, ch.Username, err)
				}
			}
			return nil
		})
		if err != nil {
			for _, ci := range batch {
				rep.Changes[ci].Result = ""
			}
			return fmt.Errorf("store: %w", err)
		}
		for _, ci := range batch {
			logChange(log, &rep.Changes[ci])
		}
	}
	return nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// productCheck counts product licences inside one transaction, as
// seatCheck does pools. A product is counted when the transaction first
// gives one of its licences, after its recalls (which come first), so the
// count already leaves out what they freed.
type productCheck struct {
	tx      store.Tx
	pol     *licensing.Policy
	counted map[string]int
	taken   map[string]int // licences this transaction gave
}

func (p *productCheck) take(ctx context.Context, product string) (bool, error) {
	pi := p.pol.ProductIndex(product)
	if pi < 0 {
		return false, nil
	}
	prod := &p.pol.Products[pi]
	if prod.Disabled {
		return false, nil
	}
	if prod.Unlimited {
		return true, nil
	}
	n, ok := p.counted[product]
	if !ok {
		var err error
		if n, err = p.tx.CountGrants(ctx, product); err != nil {
			return false, fmt.Errorf("count licences of product %s: %w", product, err)
		}
		p.counted[product] = n
	}
	if !prod.HasRoom(n + p.taken[product]) {
		return false, nil
	}
	p.taken[product]++
	return true, nil
}

func applyProduct(ctx context.Context, tx store.Tx, check *productCheck, created map[string]int64, runID string, ch *Change, now time.Time) error {
	id := ch.ProfileID
	if id == 0 {
		id = created[model.FoldUsername(ch.Username)]
	}
	if id == 0 {
		ch.Result = ResultConflict // its profile was not written
		return nil
	}
	result := ResultApplied
	if ch.Action == ActionRecall {
		if err := tx.DeleteGrant(ctx, id, ch.Product); err != nil {
			return err
		}
	} else {
		g := *ch.Grant
		g.ProfileID = id
		took := false
		if g.State == store.GrantGranted {
			ok, err := check.take(ctx, g.Product)
			if err != nil {
				return err
			}
			took = ok
			if !ok {
				result = ResultNoSeat
				g.State, g.Since = store.GrantQueued, now
				if ch.PrevGrant != nil {
					g.Since = ch.PrevGrant.Since
				}
				ch.Reason = ReasonQueued
			}
		}
		if result == ResultNoSeat && ch.PrevGrant != nil && ch.PrevGrant.State == store.GrantQueued {
			ch.Result = result // still queued, nothing to write
			return nil
		}
		// The store refuses a profile that is gone or not active (an admin
		// blocked it since the plan, or its activation found no seat).
		err := tx.SetGrant(ctx, g)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrNotActive) {
			if took {
				check.taken[g.Product]--
			}
			ch.Result = ResultConflict
			return nil
		}
		if err != nil {
			return err
		}
	}
	ch.Result = result
	return tx.Audit(ctx, store.AuditEntry{
		RunID: runID, At: now, Actor: "sync", Action: string(ch.Action), Username: ch.Username,
		Reason: "product " + ch.Product + ": " + ch.Reason,
	})
}
