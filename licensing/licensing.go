// Package licensing knows the seat pools: which pool an area belongs to,
// who counts against a pool, how many seats remain, and the order in which
// people waiting for a seat get one (SPEC section 4).
//
// Everything here is pure: no store, no clock.
package licensing

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/model"
)

// Pool is one licence seat pool.
type Pool struct {
	Name      string
	Limit     int
	Unlimited bool
	Reserve   int
	Areas     []string
}

// Capacity is the number of seats the pool may hand out: limit − reserve.
func (p *Pool) Capacity() int {
	return max(0, p.Limit-p.Reserve)
}

// Remaining is the number of free seats when used seats are taken:
// limit − reserve − used, never below 0. Unlimited pools always have room,
// reported as -1.
func (p *Pool) Remaining(used int) int {
	if p.Unlimited {
		return -1
	}
	return max(0, p.Capacity()-used)
}

// HasRoom reports whether one more seat can be taken when used are taken.
func (p *Pool) HasRoom(used int) bool {
	return p.Unlimited || used < p.Capacity()
}

// Overage is how far used exceeds the licence limit (0 when it does not).
func (p *Pool) Overage(used int) int {
	if p.Unlimited {
		return 0
	}
	return max(0, used-p.Limit)
}

// PriorityRule raises the queue place of members of a group.
type PriorityRule struct {
	Group  string // compared case-insensitively
	Weight int
}

// Overage policies.
const (
	OverageKeep        = "keep"
	OverageBlockNewest = "block_newest"
)

// Policy is the licensing configuration in the form the planner uses.
type Policy struct {
	Pools     []Pool
	Priority  []PriorityRule
	OnOverage string

	exempt map[string]bool // folded usernames
	areas  map[string]int  // area -> index into Pools
}

// NewPolicy builds a policy. exempt usernames are compared
// case-insensitively.
func NewPolicy(pools []Pool, exempt []string, priority []PriorityRule, onOverage string) *Policy {
	p := &Policy{
		Pools:     pools,
		Priority:  priority,
		OnOverage: onOverage,
		exempt:    make(map[string]bool, len(exempt)),
		areas:     make(map[string]int),
	}
	for _, u := range exempt {
		p.exempt[model.FoldUsername(u)] = true
	}
	for i, pool := range pools {
		for _, a := range pool.Areas {
			p.areas[a] = i
		}
	}
	if p.OnOverage == "" {
		p.OnOverage = OverageKeep
	}
	return p
}

// FromConfig builds the policy of a loaded configuration.
func FromConfig(c config.Licensing) *Policy {
	pools := make([]Pool, 0, len(c.Pools))
	for _, cp := range c.Pools {
		pools = append(pools, Pool{
			Name:      cp.Name,
			Limit:     cp.Limit.N,
			Unlimited: cp.Limit.Unlimited,
			Reserve:   cp.Reserve,
			Areas:     slices.Clone(cp.Areas),
		})
	}
	rules := make([]PriorityRule, 0, len(c.Priority))
	for _, r := range c.Priority {
		rules = append(rules, PriorityRule{Group: r.Group, Weight: r.Weight})
	}
	return NewPolicy(pools, c.Exempt, rules, c.OnOverage)
}

// Exempt lists the exempt usernames, folded and sorted.
func (p *Policy) Exempt() []string {
	out := make([]string, 0, len(p.exempt))
	for u := range p.exempt {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

// IsExempt reports whether a username never counts and is never changed
// by a sync.
func (p *Policy) IsExempt(username string) bool {
	if len(p.exempt) == 0 {
		return false
	}
	return p.exempt[model.FoldUsername(username)]
}

// PoolIndex returns the index of the pool an area belongs to, or -1.
func (p *Policy) PoolIndex(area string) int {
	if i, ok := p.areas[area]; ok {
		return i
	}
	return -1
}

// PoolName returns the name of the pool an area belongs to ("" if none).
func (p *Policy) PoolName(area string) string {
	if i := p.PoolIndex(area); i >= 0 {
		return p.Pools[i].Name
	}
	return ""
}

// HoldsSeat reports whether a profile counts against its pool: active,
// not exempt, in an area of some pool.
func (p *Policy) HoldsSeat(pr *model.Profile) bool {
	return pr.State == model.Active && !p.IsExempt(pr.Username) && p.PoolIndex(pr.Area) >= 0
}

// Weight is the highest weight of the priority rules whose group the
// person is in (0 when none matches).
func (p *Policy) Weight(groups []string) int {
	w := 0
	for _, r := range p.Priority {
		if r.Weight <= w {
			continue
		}
		for _, g := range groups {
			if strings.EqualFold(g, r.Group) {
				w = r.Weight
				break
			}
		}
	}
	return w
}

// Request is one person who needs a seat, in the terms that order the
// queue. Ref is the caller's own reference.
type Request struct {
	Ref      int
	Weight   int
	QueuedAt time.Time
	Username string
}

// Compare orders requests: higher weight first, then earlier queue time,
// then username.
func Compare(a, b Request) int {
	if c := cmp.Compare(b.Weight, a.Weight); c != 0 {
		return c
	}
	if c := a.QueuedAt.Compare(b.QueuedAt); c != 0 {
		return c
	}
	return cmp.Compare(model.FoldUsername(a.Username), model.FoldUsername(b.Username))
}

// Order sorts requests into queue order.
func Order(reqs []Request) {
	slices.SortStableFunc(reqs, Compare)
}

// Status is what an admin's licence panel shows for one pool.
type Status struct {
	Name      string `json:"name"`
	Limit     int    `json:"limit"`
	Unlimited bool   `json:"unlimited"`
	Reserve   int    `json:"reserve"`
	Active    int    `json:"active"`
	Remaining int    `json:"remaining"`
	Queued    int    `json:"queued"`
	Blocked   int    `json:"blocked"`
	Exempt    int    `json:"exempt"`
	Overage   int    `json:"overage"`
}

// Count tallies every pool from the stored profiles. Active counts the
// seats in use (active, non-exempt); Queued the profiles blocked for
// license; Blocked every blocked profile; Exempt the exempt profiles in the
// pool's areas.
func (p *Policy) Count(profiles []model.Profile) []Status {
	out := make([]Status, len(p.Pools))
	for i, pool := range p.Pools {
		out[i] = Status{Name: pool.Name, Limit: pool.Limit, Unlimited: pool.Unlimited, Reserve: pool.Reserve}
	}
	for i := range profiles {
		pr := &profiles[i]
		pi := p.PoolIndex(pr.Area)
		if pi < 0 {
			continue
		}
		s := &out[pi]
		switch {
		case p.IsExempt(pr.Username):
			s.Exempt++
		case pr.State == model.Active:
			s.Active++
		default:
			s.Blocked++
			if pr.BlockReason == model.ReasonLicense {
				s.Queued++
			}
		}
	}
	for i := range out {
		out[i].Remaining = p.Pools[i].Remaining(out[i].Active)
		out[i].Overage = p.Pools[i].Overage(out[i].Active)
	}
	return out
}

// UsedPercent is how much of its limit a pool uses, in whole percent
// rounded down, as the seats_low notification says it: over 100 when the
// pool is over its limit, 0 for a limit of 0 (or unlimited).
func UsedPercent(used, limit int) int {
	if limit <= 0 {
		return 0
	}
	return used * 100 / limit
}

// QueueEntry is one profile waiting for a seat.
type QueueEntry struct {
	Pool        string    `json:"pool"`
	Position    int       `json:"position"` // 1 is next
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name"`
	Email       string    `json:"email"`
	Area        string    `json:"area"`
	Weight      int       `json:"weight"` // 0 for no priority group
	QueuedAt    time.Time `json:"queued_at"`
}

// Queue lists the licence queue of every pool, pool by pool in the order
// of the configuration, each in the order seats are given: priority
// weight, then queue time, then username (SPEC section 4). The queue is
// the non-exempt profiles blocked for license; the status page, `seats`
// and `profiles list` all read it from here, so they never disagree.
func (p *Policy) Queue(profiles []model.Profile) []QueueEntry {
	out := []QueueEntry{}
	for pi, pool := range p.Pools {
		var reqs []Request
		for i := range profiles {
			pr := &profiles[i]
			if pr.State != model.Blocked || pr.BlockReason != model.ReasonLicense || p.PoolIndex(pr.Area) != pi || p.IsExempt(pr.Username) {
				continue
			}
			reqs = append(reqs, Request{Ref: i, Weight: p.Weight(pr.Groups), QueuedAt: pr.QueuedAt, Username: pr.Username})
		}
		Order(reqs)
		for n, r := range reqs {
			pr := &profiles[r.Ref]
			out = append(out, QueueEntry{Pool: pool.Name, Position: n + 1, Username: pr.Username, DisplayName: pr.DisplayName, Email: pr.Email,
				Area: pr.Area, Weight: r.Weight, QueuedAt: pr.QueuedAt})
		}
	}
	return out
}
