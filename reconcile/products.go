package reconcile

import (
	"cmp"
	"slices"
	"time"

	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// Product licence actions: a grant gives a profile a product licence, or
// puts it in the product's queue (reason queued); a recall takes it back,
// or takes the profile out of the queue.
const (
	ActionGrant  Action = "grant"
	ActionRecall Action = "recall"
)

// Reasons of grants and recalls, reported in Change.Reason.
const (
	// ReasonRule: a grant rule matches and a licence was free.
	ReasonRule = "rule"
	// ReasonQueued: a rule matches but every licence is taken (or the
	// product is not enabled): the grant waits in queue order.
	ReasonQueued = "queued"
	// ReasonNoRule: no rule matches the profile any more.
	ReasonNoRule = "no_rule"
	// ReasonBlocked, ReasonDeleted: only active profiles hold product
	// licences.
	ReasonBlocked = "blocked"
	ReasonDeleted = "deleted"
	// ReasonUnknownProduct: the product is no longer configured.
	ReasonUnknownProduct = "unknown_product"
)

// ProductResult is a product's licences before and after the plan, shaped
// like PoolResult.
type ProductResult struct {
	Name           string `json:"name"`
	Limit          int    `json:"limit"`
	Unlimited      bool   `json:"unlimited"`
	UsedBefore     int    `json:"used_before"`
	UsedAfter      int    `json:"used_after"`
	RemainingAfter int    `json:"remaining_after"`
	QueuedAfter    int    `json:"queued_after"`
	Overage        int    `json:"overage"`
	// EnabledBy is the licence flag that enables the product; Disabled a
	// product that gives nobody new a licence, because that flag is off or
	// no licence is in force. Holders keep theirs.
	EnabledBy string `json:"enabled_by,omitempty"`
	Disabled  bool   `json:"disabled,omitempty"`
}

// holder is a profile as the plan leaves it, for the product step.
type holder struct {
	after *model.Profile // nil when the plan deletes it
	id    int64          // 0 for a profile this plan creates
	name  string
	src   *model.Profile // the stored profile, nil for a new one
}

// products plans the product licences (after seat allocation, so it knows
// each profile's state after the plan): holders that no rule matches any
// more, or that the plan blocks or deletes, lose their licence; then the
// active profiles a rule matches get one in queue order while licences
// are free, and the rest wait. Nobody is recalled to make room, also when
// a limit was lowered. A manual grant (seatsync profiles grant) is kept
// while no rule matches, and recalled only with its profile.
func (c *calc) products() {
	pol := c.in.Policy
	if len(pol.Products) == 0 && len(c.in.Grants) == 0 {
		return
	}
	first := len(c.plan.Changes)
	// Every profile after the plan, stored ones first, then new ones.
	var hs []holder
	byID := make(map[int64]int, len(c.in.Profiles))
	for i := range c.in.Profiles {
		p := &c.in.Profiles[i]
		h := holder{after: p, id: p.ID, name: p.Username, src: p}
		if ti, ok := c.targetOf[i]; ok {
			h.after = &c.targets[ti].after
			if c.targets[ti].del {
				h.after = nil
			}
		}
		byID[p.ID] = len(hs)
		hs = append(hs, h)
	}
	for _, t := range c.targets {
		if t.prof < 0 {
			hs = append(hs, holder{after: &t.after, name: t.after.Username})
		}
	}
	// Stored grants by product, then by holder index.
	grants := make(map[string]map[int]store.Grant)
	for _, g := range c.in.Grants {
		hi, ok := byID[g.ProfileID]
		if !ok {
			continue // its profile is gone: the store deleted it with it
		}
		if pol.ProductIndex(g.Product) < 0 {
			c.productChange(&hs[hi], g.Product, ActionRecall, ReasonUnknownProduct, &g, nil, 0)
			continue
		}
		if grants[g.Product] == nil {
			grants[g.Product] = map[int]store.Grant{}
		}
		grants[g.Product][hi] = g
	}
	c.plan.Products = make([]ProductResult, len(pol.Products))
	for pi := range pol.Products {
		c.planProduct(pi, hs, grants[pol.Products[pi].Name])
	}
	// After the profile changes: grants, then recalls, each by product
	// and username.
	tail := c.plan.Changes[first:]
	slices.SortStableFunc(tail, func(a, b Change) int {
		if x := cmp.Compare(actionRank(a.Action), actionRank(b.Action)); x != 0 {
			return x
		}
		return productRank(&a, &b)
	})
}

func (c *calc) planProduct(pi int, hs []holder, stored map[int]store.Grant) {
	prod := &c.in.Policy.Products[pi]
	res := &c.plan.Products[pi]
	*res = ProductResult{Name: prod.Name, Limit: prod.Limit, Unlimited: prod.Unlimited, EnabledBy: prod.EnabledBy, Disabled: prod.Disabled}
	used := 0
	var reqs []licensing.Request
	// In holder order, so the same input gives the same changes.
	his := make([]int, 0, len(stored))
	for hi := range stored {
		his = append(his, hi)
	}
	slices.Sort(his)
	for _, hi := range his {
		g := stored[hi]
		h := &hs[hi]
		if g.State == store.GrantGranted {
			res.UsedBefore++
		}
		why := ""
		switch {
		case h.after == nil:
			why = ReasonDeleted
		case !licensing.MayHold(h.after):
			why = ReasonBlocked
		case !g.Manual && !prod.Matches(h.after):
			why = ReasonNoRule
		}
		if why != "" {
			c.productChange(h, prod.Name, ActionRecall, why, &g, nil, 0)
			continue
		}
		if g.State == store.GrantGranted {
			used++ // kept, also over a lowered limit
			continue
		}
		reqs = append(reqs, c.productRequest(hi, h, g.Since))
	}
	for hi := range hs {
		h := &hs[hi]
		if _, ok := stored[hi]; ok || h.after == nil || !licensing.MayHold(h.after) || !prod.Matches(h.after) {
			continue
		}
		reqs = append(reqs, c.productRequest(hi, h, c.in.Now))
	}
	licensing.Order(reqs)
	queued := 0
	for _, r := range reqs {
		h := &hs[r.Ref]
		prev, had := stored[r.Ref]
		var pg *store.Grant
		if had {
			pg = &prev
		}
		if prod.HasRoom(used) {
			used++
			reason := ReasonRule
			if had {
				reason = ReasonSeatFreed
			}
			c.productChange(h, prod.Name, ActionGrant, reason, pg, &store.Grant{ProfileID: h.id, Product: prod.Name,
				State: store.GrantGranted, Since: c.in.Now}, 0)
			continue
		}
		queued++
		if !had {
			c.productChange(h, prod.Name, ActionGrant, ReasonQueued, nil, &store.Grant{ProfileID: h.id, Product: prod.Name,
				State: store.GrantQueued, Since: r.QueuedAt}, queued)
		}
	}
	res.UsedAfter, res.QueuedAfter = used, queued
	res.RemainingAfter = max(0, prod.Remaining(used))
	if !prod.Unlimited && used > prod.Limit {
		res.Overage = used - prod.Limit
	}
}

func (c *calc) productRequest(hi int, h *holder, queued time.Time) licensing.Request {
	return licensing.Request{Ref: hi, Weight: c.in.Policy.Weight(h.after.Groups), QueuedAt: queued, Username: h.after.Username}
}

// productChange adds a grant or recall to the plan.
func (c *calc) productChange(h *holder, product string, a Action, reason string, prev, next *store.Grant, pos int) {
	p := h.after
	if p == nil {
		p = h.src
	}
	c.plan.Changes = append(c.plan.Changes, Change{
		Action: a, Username: p.Username, Source: p.Source, ExternalID: p.ExternalID, Area: p.Area,
		Pool: c.in.Policy.PoolName(p.Area), State: p.State, Reason: reason, QueuePosition: pos,
		Product: product, ProfileID: h.id, PrevGrant: prev, Grant: next,
	})
	c.plan.Summary.add(a)
}

// productRank orders grants and recalls among themselves: by product, then
// username.
func productRank(a, b *Change) int {
	if x := cmp.Compare(a.Product, b.Product); x != 0 {
		return x
	}
	return cmp.Compare(a.Username, b.Username)
}
