package reconcile

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
)

// actionRank orders changes in a report: the order a reader expects.
func actionRank(a Action) int {
	switch a {
	case ActionCreate:
		return 0
	case ActionUpdate:
		return 1
	case ActionMove:
		return 2
	case ActionActivate:
		return 3
	case ActionBlock:
		return 4
	case ActionGrant:
		return 6
	case ActionRecall:
		return 7
	}
	return 5 // ActionDelete
}

// build turns the decided targets into changes, queue positions, the
// summary and the per-source counts.
func (c *calc) build() {
	pol := c.in.Policy
	queues := c.queues()
	// Counted first: a first sync has a change per person, and growing the
	// slice would copy them all over several times.
	n := 0
	for _, t := range c.targets {
		if !c.unchanged(t) {
			n++
		}
	}
	if n > 0 {
		c.plan.Changes = make([]Change, 0, n)
	}
	for _, t := range c.targets {
		if c.unchanged(t) {
			if t.entry >= 0 {
				c.plan.Summary.Unchanged++
			}
			continue
		}
		var before *model.Profile
		if t.prof >= 0 {
			before = &c.in.Profiles[t.prof]
		}
		ch := Change{
			Username:   t.after.Username,
			Source:     t.after.Source,
			ExternalID: t.after.ExternalID,
			Area:       t.after.Area,
			Pool:       pol.PoolName(t.after.Area),
			State:      t.after.State,
			Before:     before,
		}
		if !t.del {
			ch.After = &t.after
		}
		ch.Action, ch.Reason = classify(before, t)
		ch.Deprovision = t.deprov
		ch.TakesSeat = !t.del && pol.HoldsSeat(&t.after) &&
			(before == nil || !pol.HoldsSeat(before) || pol.PoolIndex(before.Area) != pol.PoolIndex(t.after.Area))
		if ch.State == model.Blocked && t.after.BlockReason == model.ReasonLicense {
			ch.QueuePosition = queues.get(t.after.Username)
		}
		c.plan.Changes = append(c.plan.Changes, ch)
		c.plan.Summary.add(ch.Action)
	}
	slices.SortFunc(c.plan.Changes, func(a, b Change) int {
		if x := cmp.Compare(actionRank(a.Action), actionRank(b.Action)); x != 0 {
			return x
		}
		return cmp.Compare(a.Username, b.Username)
	})
	for pi := range c.plan.Pools {
		c.plan.Pools[pi].QueuedAfter = len(queues.pool[pi])
	}
	counts := make([]SourceResult, len(c.in.Pulls))
	for si := range c.in.Pulls {
		counts[si] = c.in.Pulls[si].result()
		counts[si].LeavesSuspended = c.suspended[si]
	}
	for _, s := range c.plan.Skipped {
		if si, ok := c.covered[s.Source]; ok {
			counts[si].Skipped++
		}
	}
	c.plan.Sources = counts
	c.plan.Summary.Skipped = len(c.plan.Skipped)
}

// unchanged reports whether target t leaves its profile as it is.
func (c *calc) unchanged(t *outcome) bool {
	return t.prof >= 0 && !t.del && profileEqual(&c.in.Profiles[t.prof], &t.after)
}

// classify names a change by its most telling action, and its reason.
func classify(before *model.Profile, t *outcome) (Action, string) {
	after := &t.after
	switch {
	case t.del:
		return ActionDelete, string(before.BlockReason)
	case before == nil:
		return ActionCreate, string(after.BlockReason)
	case before.Area != after.Area:
		if after.State == model.Blocked {
			return ActionMove, string(after.BlockReason)
		}
		return ActionMove, t.actReason
	case after.State == model.Blocked && (before.State != model.Blocked || before.BlockReason != after.BlockReason):
		return ActionBlock, string(after.BlockReason)
	case after.State == model.Active && before.State != model.Active:
		return ActionActivate, t.actReason
	}
	return ActionUpdate, string(after.BlockReason)
}

// queueIndex holds each pool's licence queue after the plan, in order,
// and each queued username's 1-based position.
type queueIndex struct {
	pool [][]licensing.Request
	pos  map[string]int
}

func (c *calc) queues() queueIndex {
	pol := c.in.Policy
	q := queueIndex{pool: make([][]licensing.Request, len(pol.Pools)), pos: make(map[string]int)}
	add := func(p *model.Profile) {
		pi := pol.PoolIndex(p.Area)
		if p.State != model.Blocked || p.BlockReason != model.ReasonLicense || pi < 0 {
			return
		}
		q.pool[pi] = append(q.pool[pi], licensing.Request{Weight: pol.Weight(p.Groups), QueuedAt: p.QueuedAt, Username: p.Username})
	}
	for i := range c.in.Profiles {
		if ti, ok := c.targetOf[i]; ok {
			if !c.targets[ti].del {
				add(&c.targets[ti].after)
			}
			continue
		}
		add(&c.in.Profiles[i])
	}
	for ti := range c.targets {
		if c.targets[ti].prof < 0 {
			add(&c.targets[ti].after)
		}
	}
	for _, reqs := range q.pool {
		licensing.Order(reqs)
		for i, r := range reqs {
			q.pos[r.Username] = i + 1
		}
	}
	return q
}

func (q queueIndex) get(username string) int { return q.pos[username] }

// guard applies SPEC section 5: the deprovision limit per source and the
// zero-identities rule.
func (c *calc) guard() {
	owned := make([]int, len(c.in.Pulls))
	live := make([]int, len(c.in.Pulls))
	for i := range c.in.Profiles {
		p := &c.in.Profiles[i]
		if si, ok := c.covered[p.Source]; ok && p.Owned() {
			owned[si]++
			if p.State == model.Active || p.BlockReason != model.ReasonLeftSource {
				live[si]++
			}
		}
	}
	dep := make([]int, len(c.in.Pulls))
	for _, ch := range c.plan.Changes {
		if ch.Deprovision {
			dep[c.covered[ch.Before.Source]]++
		}
	}
	g := &c.plan.Guard
	if t := c.in.Tally; t != nil {
		copy(owned, t.Owned)
	}
	for si, p := range c.in.Pulls {
		sg := SourceGuard{Name: p.Rules.Name, Owned: owned[si], Deprovisions: dep[si], Limit: owned[si]}
		if c.in.MaxDeprovision != nil {
			sg.Limit = c.in.MaxDeprovision(owned[si])
		}
		switch {
		case len(p.Identities) == 0 && live[si] > 0 && !p.Changes: // a read of changes may well have none
			sg.Tripped = true
			sg.Why = fmt.Sprintf("source %s returned no identities but owns %d profiles", p.Rules.Name, live[si])
		case sg.Deprovisions > sg.Limit:
			sg.Tripped = true
			sg.Why = fmt.Sprintf("source %s would deprovision %d of its %d profiles, more than the limit of %d (safety.max_deprovision)",
				p.Rules.Name, sg.Deprovisions, sg.Owned, sg.Limit)
		}
		g.Deprovisions += sg.Deprovisions
		g.Limit += sg.Limit
		g.Tripped = g.Tripped || sg.Tripped
		g.Sources = append(g.Sources, sg)
	}
	if g.Tripped && c.in.AllowDeprovision {
		g.Tripped, g.Overridden = false, true
	}
}
