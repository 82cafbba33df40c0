// Package licensing knows the seat pools: which pool an area belongs to,
// who counts against a pool, how many seats remain, and the order in which
// people waiting for a seat get one (SPEC section 4).
//
// Everything here is pure: no store, no clock.
package licensing

import (
	"cmp"
	"errors"
	"fmt"
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
	// LimitFrom is the licence key the limit came from ("" for a limit
	// written in the configuration).
	LimitFrom string
	// Frozen is a pool that gives no new seat and blocks nobody: its
	// licence expired, or there is none in force. The seats in use stay
	// in use; Limit is what the licence said (0 with none).
	Frozen bool
}

// Capacity is the number of seats the pool may hand out: limit − reserve.
func (p *Pool) Capacity() int {
	return max(0, p.Limit-p.Reserve)
}

// Remaining is the number of free seats when used seats are taken:
// limit − reserve − used, never below 0. Unlimited pools always have room,
// reported as -1.
func (p *Pool) Remaining(used int) int {
	if p.Frozen {
		return 0
	}
	if p.Unlimited {
		return -1
	}
	return max(0, p.Capacity()-used)
}

// HasRoom reports whether one more seat can be taken when used are taken.
func (p *Pool) HasRoom(used int) bool {
	return !p.Frozen && (p.Unlimited || used < p.Capacity())
}

// Overage is how far used exceeds the licence limit (0 when it does not,
// and for a frozen pool, whose seats in use stay in use).
func (p *Pool) Overage(used int) int {
	if p.Unlimited || p.Frozen {
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
	// Products are the per-product licences (see Product).
	Products []Product

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

// FromConfig builds the policy of a loaded configuration with no licence
// in force: a pool that takes its limit from the licence (limit_from) is
// frozen at 0, so it gives no new seat and blocks nobody. Use
// FromConfigLicensed where the licence in force is known.
func FromConfig(c config.Licensing) *Policy {
	pol, _ := FromConfigLicensed(c, nil, time.Time{})
	return pol
}

// FromConfigLicensed builds the policy of a loaded configuration with
// lic, the licence in force (nil for none), at now. A pool with limit_from
// takes the licence's limit of that key; while lic is nil or expired at
// now, such a pool is frozen (see Pool.Frozen). Pools with a limit of
// their own are as configured.
//
// A limit_from key the licence lacks, or names a flag, is an error; the
// policy returned with it has that pool frozen at 0.
func FromConfigLicensed(c config.Licensing, lic *License, now time.Time) (*Policy, error) {
	pools := make([]Pool, 0, len(c.Pools))
	var errs []error
	for i, cp := range c.Pools {
		pool := Pool{
			Name:      cp.Name,
			Limit:     cp.Limit.N,
			Unlimited: cp.Limit.Unlimited,
			Reserve:   cp.Reserve,
			Areas:     slices.Clone(cp.Areas),
			LimitFrom: cp.LimitFrom,
		}
		if cp.LimitFrom != "" {
			pool.Limit, pool.Unlimited, pool.Frozen = 0, false, true
			switch q, ok := lic.limit(cp.LimitFrom); {
			case lic == nil:
			case !ok:
				errs = append(errs, &MissingKeyError{Pool: cp.Name, Index: i, Key: cp.LimitFrom, License: lic})
			default:
				// An expired licence freezes the pool at what it said.
				pool.Frozen = lic.Expired(now)
				pool.Limit = q.N
				pool.Unlimited = q.Unlimited && !pool.Frozen
			}
		}
		pools = append(pools, pool)
	}
	rules := make([]PriorityRule, 0, len(c.Priority))
	for _, r := range c.Priority {
		rules = append(rules, PriorityRule{Group: r.Group, Weight: r.Weight})
	}
	pol := NewPolicy(pools, c.Exempt, rules, c.OnOverage)
	var perrs []error
	pol.Products, perrs = productsFromConfig(c, lic, now)
	return pol, errors.Join(append(errs, perrs...)...)
}

// limit is Limit on a licence that may be nil.
func (l *License) limit(key string) (Quantity, bool) {
	if l == nil {
		return Quantity{}, false
	}
	return l.Limit(key)
}

// MissingKeyError is a pool whose limit_from names a key the licence in
// force does not have as a limit.
type MissingKeyError struct {
	Pool    string
	Index   int // in licensing.pools
	Key     string
	License *License
}

func (e *MissingKeyError) Error() string {
	what := fmt.Sprintf("licensing.pools[%d].limit_from: the licence (issued %s) has no limit %s", e.Index, e.License.Issued.Format(time.DateOnly), e.Key)
	if e.License.IsFlag(e.Key) {
		what = fmt.Sprintf("licensing.pools[%d].limit_from: %s is a yes/no flag of the licence, not a limit", e.Index, e.Key)
	}
	keys := e.License.LimitKeys()
	if len(keys) == 0 {
		return what + " (it has none); pool " + e.Pool + " gives no new seats"
	}
	return fmt.Sprintf("%s (its limits: %s); pool %s gives no new seats", what, strings.Join(keys, ", "), e.Pool)
}

// Frozen reports whether any pool is frozen.
func (p *Policy) Frozen() bool {
	return slices.ContainsFunc(p.Pools, func(pool Pool) bool { return pool.Frozen })
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
	// LimitFrom is the licence key of the limit; Frozen a pool that gives
	// no new seat (its licence expired, or none is in force).
	LimitFrom string `json:"limit_from,omitempty"`
	Frozen    bool   `json:"frozen,omitempty"`
	// Forecast is when the pool fills at the current rate, set by those
	// who read the seat history (nil when it is not filling).
	Forecast *FillForecast `json:"forecast,omitempty"`
}

// Count tallies every pool from the stored profiles. Active counts the
// seats in use (active, non-exempt); Queued the profiles blocked for
// license; Blocked every blocked profile; Exempt the exempt profiles in the
// pool's areas.
func (p *Policy) Count(profiles []model.Profile) []Status {
	out := make([]Status, len(p.Pools))
	for i, pool := range p.Pools {
		out[i] = Status{Name: pool.Name, Limit: pool.Limit, Unlimited: pool.Unlimited, Reserve: pool.Reserve,
			LimitFrom: pool.LimitFrom, Frozen: pool.Frozen}
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
