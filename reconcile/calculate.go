package reconcile

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// On-leave policies.
const (
	LeaveBlock  = "block"
	LeaveDelete = "delete"
	LeaveKeep   = "keep"
)

// SourceRules are the per-source settings the planner applies when it
// maps identities to profiles.
type SourceRules struct {
	Name         string
	Type         string
	UsernameCase string // lower (default) | keep
	Area         string
	AreaRules    []AreaRule
	OnLeave      string // block (default) | delete | keep
	DeleteAfter  time.Duration
	Adopt        bool
	// MaxFieldBytes is the longest value a field or attribute may have;
	// an identity with a longer one is skipped. 0 means no limit.
	MaxFieldBytes int
}

// AreaRule puts people into an area: by group membership (Group, compared
// case-insensitively) or by a field or attribute value (Attribute, Equals).
type AreaRule struct {
	Group     string
	Attribute string
	Equals    string
	Area      string
}

// Pull is everything one source gave this run.
type Pull struct {
	Rules      SourceRules
	Identities []model.Identity
	// Skipped are entries the connector itself could not read.
	Skipped []Skipped
	// Changes is set when Identities are only what changed since the
	// source's last run (an incremental read that was not full): a
	// profile the pull does not mention is unchanged, never gone, and
	// only the people Deletes names leave.
	Changes bool
	// Deletes are the external ids an incremental read says left the
	// source's scope.
	Deletes []string
	// Incremental is set when the source reads incrementally (the
	// report's sources[].incremental); Fallback says why this read was
	// full all the same, when a cursor could not be used.
	Incremental bool
	Fallback    string
	// NoDeletes is set when the read of changes could not see deletions.
	NoDeletes bool
}

// result is what the report says of the pull, but its skipped entries,
// which the caller counts.
func (p *Pull) result() SourceResult {
	return SourceResult{Name: p.Rules.Name, Type: p.Rules.Type, Identities: len(p.Identities), Full: !p.Changes,
		Incremental: p.Incremental, IncrementalFallback: p.Fallback, Deletes: len(p.Deletes), NoDeletes: p.NoDeletes}
}

// Input is everything Calculate needs. Calculate does no I/O and reads no
// clock: Now is the run's time.
type Input struct {
	Now      time.Time
	Pulls    []Pull // the sources this run covers, in configuration order
	Profiles []model.Profile
	Policy   *licensing.Policy
	// MaxDeprovision returns how many deprovisions a source owning total
	// profiles may make in one run.
	MaxDeprovision   func(total int) int
	AllowDeprovision bool
	// Grants are the stored product grants (store.Store.Grants).
	Grants []store.Grant
	// Tally, when set, is what the store counted for a run whose pulls
	// all hold changes only (Pull.Changes): one pool per Policy pool, one
	// source per pull. Profiles then holds only the profiles the changes
	// touch (Touched says which), and the seats held and the profiles
	// owned are taken from Tally. Such a run plans no product licences
	// and blocks nobody for an overage (on_overage: block_newest): the
	// caller reads every profile when those may be needed.
	Tally *store.Tally
}

// entry is one identity of one pull, mapped.
type entry struct {
	src      int
	id       *model.Identity
	username string
	area     string
	prof     int  // matched profile index, -1 for a new profile
	adopt    bool // prof is an unowned profile this identity adopts
	skip     bool
	groups   []string
}

// outcome is a profile (existing or new) whose state this run decides.
type outcome struct {
	prof      int // index into Input.Profiles, -1 for a new profile
	entry     int // index into calc.entries, -1 when no identity drives it
	after     model.Profile
	del       bool
	deprov    bool
	need      bool // needs a seat in the pool of after.Area
	actReason string
}

type calc struct {
	in      Input
	plan    *Plan
	covered map[string]int   // source name -> pull index
	byExtID []map[string]int // per pull: external id -> profile index
	names   nameIndex
	seen    []bool // profile index -> an identity of its owner was seen, or a skipped entry named it
	// suspended says, per pull, why this run deprovisions nobody of that
	// source ("" when it may): an entry was skipped whose external id could
	// not be read, so any unseen profile may be that person.
	suspended []string
	entries   []entry
	targets   []*outcome
	targetOf  map[int]int // profile index -> target index
	// deleted holds, per pull of changes, the external ids it says left.
	deleted []map[string]bool
}

// Calculate plans the changes that bring the profiles in step with the
// pulled identities (SPEC section 3 steps 2 to 6). It is pure: the same
// input always gives the same plan.
func Calculate(in Input) *Plan {
	c := &calc{
		in:        in,
		plan:      &Plan{Now: in.Now, Wanted: make([][]string, len(in.Pulls))},
		covered:   make(map[string]int, len(in.Pulls)),
		byExtID:   make([]map[string]int, len(in.Pulls)),
		seen:      make([]bool, len(in.Profiles)),
		suspended: make([]string, len(in.Pulls)),
		targetOf:  make(map[int]int),
		deleted:   make([]map[string]bool, len(in.Pulls)),
	}
	owned := make([]int, len(in.Pulls))
	for i, p := range in.Pulls {
		c.covered[p.Rules.Name] = i
		if in.Tally != nil && !p.Changes {
			panic("reconcile: a Tally is for pulls of changes only, and source " + p.Rules.Name + " was read in full")
		}
		if p.Changes {
			c.deleted[i] = make(map[string]bool, len(p.Deletes))
			for _, id := range p.Deletes {
				c.deleted[i][id] = true
			}
		}
	}
	for i := range in.Profiles {
		if si, ok := c.covered[in.Profiles[i].Source]; ok {
			owned[si]++
		}
	}
	for si, n := range owned {
		c.byExtID[si] = make(map[string]int, n)
	}
	for i := range in.Profiles {
		p := &in.Profiles[i]
		if si, ok := c.covered[p.Source]; ok && p.Owned() {
			c.byExtID[si][p.ExternalID] = i
		}
	}
	c.names = newNameIndex(in.Profiles)
	c.mapIdentities()
	c.leave()
	c.claimUsernames()
	c.diff()
	c.allocate()
	c.build()
	c.products()
	c.guard()
	return c.plan
}

func (c *calc) skip(src int, id *model.Identity, format string, args ...any) {
	c.skipped(src, Skipped{
		Source:     c.in.Pulls[src].Rules.Name,
		ExternalID: id.ExternalID,
		Where:      id.Where,
		Reason:     fmt.Sprintf(format, args...),
	})
}

// skipped records an entry of pull src that this run cannot use. A skipped
// entry is never a leaver: when its external id is known, that person's
// profile is left exactly as it is; when it is not, any profile of the
// source might be that person, so the run deprovisions nobody of it.
func (c *calc) skipped(src int, s Skipped) {
	c.plan.Skipped = append(c.plan.Skipped, s)
	if s.ExternalID == "" {
		if c.suspended[src] == "" {
			c.suspended[src] = suspendWhy(s)
		}
		return
	}
	if pi, ok := c.byExtID[src][s.ExternalID]; ok {
		c.seen[pi] = true
	}
}

// suspendWhy says why leaves are suspended, naming the first entry that
// could not be read.
func suspendWhy(s Skipped) string {
	where := "an entry"
	if s.Where != "" {
		where = "the entry at " + s.Where
	}
	return fmt.Sprintf("%s was skipped and its external id could not be read (%s), so nobody of source %s is blocked or deleted for leaving in this run",
		where, s.Reason, s.Source)
}

// mapIdentities maps every identity to a wanted username and area, and
// matches it to its profile by (owner, external_id).
func (c *calc) mapIdentities() {
	n := 0
	for _, p := range c.in.Pulls {
		n += len(p.Identities)
	}
	c.entries = make([]entry, 0, n)
	for si := range c.in.Pulls {
		pull := &c.in.Pulls[si]
		for _, sk := range pull.Skipped {
			c.skipped(si, sk)
		}
		rules := &pull.Rules
		// Duplicates among known people show as a profile seen twice; only
		// newcomers need a set of their own.
		newcomers := make(map[string]bool)
		for ii := range pull.Identities {
			id := &pull.Identities[ii]
			if id.ExternalID == "" {
				c.skip(si, id, "no external id")
				continue
			}
			if f, n := oversized(id, rules.MaxFieldBytes); f != "" {
				sk := Skipped{Source: rules.Name, ExternalID: id.ExternalID, Where: id.Where,
					Reason: fmt.Sprintf("%s is %d bytes, over the limit of %d (max_field_bytes)", f, n, rules.MaxFieldBytes)}
				if f == "external_id" {
					sk.ExternalID = ""
				}
				c.skipped(si, sk)
				continue
			}
			e := entry{src: si, id: id, prof: -1}
			pi, known := c.byExtID[si][id.ExternalID]
			if (known && c.seen[pi]) || (!known && newcomers[id.ExternalID]) {
				c.skip(si, id, "external id %s appears more than once in the source", id.ExternalID)
				continue
			}
			if known {
				e.prof = pi
				c.seen[pi] = true
			} else {
				newcomers[id.ExternalID] = true
			}
			e.username = strings.TrimSpace(id.Username)
			if rules.UsernameCase != "keep" {
				e.username = strings.ToLower(e.username)
			}
			if why := invalidIdentity(e.username, id); why != "" {
				c.skip(si, id, "%s", why)
				continue
			}
			e.groups = id.Groups
			if !slices.IsSorted(e.groups) {
				e.groups = slices.Clone(e.groups)
				slices.Sort(e.groups)
			}
			e.area = areaOf(rules, id)
			if c.in.Policy.PoolIndex(e.area) < 0 {
				c.skip(si, id, "area %s belongs to no licence pool", e.area)
				continue
			}
			c.entries = append(c.entries, e)
		}
	}
}

// oversized names the first field or attribute of id longer than limit
// bytes, and its length; "" when there is none or limit is 0.
func oversized(id *model.Identity, limit int) (string, int) {
	if limit <= 0 {
		return "", 0
	}
	fields := [...]struct {
		name  string
		value string
	}{
		{"external_id", id.ExternalID}, {"username", id.Username}, {"email", id.Email},
		{"given_name", id.GivenName}, {"family_name", id.FamilyName}, {"display_name", id.DisplayName},
		{"title", id.Title}, {"department", id.Department},
	}
	for _, f := range fields {
		if len(f.value) > limit {
			return f.name, len(f.value)
		}
	}
	for _, g := range id.Groups {
		if len(g) > limit {
			return "a group", len(g)
		}
	}
	// The attribute named is the first in name order, so the same input
	// always gives the same reason.
	var name string
	n := 0
	for k, v := range id.Attributes {
		if (len(v) > limit || len(k) > limit) && (name == "" || k < name) {
			name, n = k, max(len(v), len(k))
		}
	}
	if name != "" {
		if len(name) > 64 {
			name = name[:64] + "..."
		}
		return fmt.Sprintf("attribute %q", name), n
	}
	return "", 0
}

// invalidIdentity says why an identity cannot be mapped, or "".
func invalidIdentity(username string, id *model.Identity) string {
	if username == "" {
		return "no username"
	}
	if len(username) > 256 {
		return fmt.Sprintf("username %.20s... is longer than 256 characters", username)
	}
	if i := strings.IndexFunc(username, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }); i >= 0 {
		return fmt.Sprintf("username %q contains a control or invalid character", username)
	}
	if e := id.Email; e != "" {
		at := strings.IndexByte(e, '@')
		if at <= 0 || at == len(e)-1 || strings.Count(e, "@") != 1 || strings.ContainsAny(e, " \t\r\n<>,;") {
			return fmt.Sprintf("email %q is not a valid address", e)
		}
	}
	return ""
}

// areaOf applies the source's area rules: the first match wins, else the
// source's default area.
func areaOf(rules *SourceRules, id *model.Identity) string {
	for _, r := range rules.AreaRules {
		if r.Group != "" {
			for _, g := range id.Groups {
				if strings.EqualFold(g, r.Group) {
					return r.Area
				}
			}
			continue
		}
		if v, ok := fieldValue(id, r.Attribute); ok && v == r.Equals {
			return r.Area
		}
	}
	return rules.Area
}

// fieldValue reads an identity field or extra attribute by name.
func fieldValue(id *model.Identity, name string) (string, bool) {
	switch name {
	case "external_id":
		return id.ExternalID, true
	case "username":
		return id.Username, true
	case "email":
		return id.Email, true
	case "given_name":
		return id.GivenName, true
	case "family_name":
		return id.FamilyName, true
	case "display_name":
		return id.DisplayName, true
	case "title":
		return id.Title, true
	case "department":
		return id.Department, true
	}
	v, ok := id.Attributes[name]
	return v, ok
}

// leave decides the fate of owned profiles whose person the owner source
// no longer reports, and applies delete_after.
func (c *calc) leave() {
	for i := range c.in.Profiles {
		p := &c.in.Profiles[i]
		si, ok := c.covered[p.Source]
		if !ok || !p.Owned() || c.in.Policy.IsExempt(p.Username) {
			continue
		}
		rules := &c.in.Pulls[si].Rules
		if c.seen[i] || c.suspended[si] != "" {
			continue
		}
		expired := rules.DeleteAfter > 0 && p.State == model.Blocked && p.BlockReason == model.ReasonLeftSource &&
			!p.BlockedAt.IsZero() && !c.in.Now.Before(p.BlockedAt.Add(rules.DeleteAfter))
		if c.in.Pulls[si].Changes && !expired && !c.deleted[si][p.ExternalID] {
			continue // not mentioned by a read of changes: unchanged, never gone
		}
		switch {
		case rules.OnLeave == LeaveDelete || expired:
			c.addTarget(outcome{prof: i, entry: -1, after: *p, del: true, deprov: true})
		case rules.OnLeave == LeaveKeep:
		case p.State == model.Active || p.BlockReason == model.ReasonLicense || p.BlockReason == model.ReasonSourceDisabled:
			after := *p
			c.block(&after, p, model.ReasonLeftSource)
			c.addTarget(outcome{prof: i, entry: -1, after: after, deprov: true})
		}
	}
}

func (c *calc) addTarget(t outcome) int {
	c.targets = append(c.targets, &t)
	ti := len(c.targets) - 1
	if t.prof >= 0 {
		c.targetOf[t.prof] = ti
	}
	return ti
}

// block sets after to blocked with reason, keeping the block time when the
// reason does not change.
func (c *calc) block(after, before *model.Profile, reason model.Reason) {
	after.State = model.Blocked
	after.BlockReason = reason
	if reason != model.ReasonLicense {
		after.QueuedAt = time.Time{}
	}
	if before == nil || before.State != model.Blocked || before.BlockReason != reason {
		after.BlockedAt = c.in.Now
	}
}

// describe names a profile for a conflict message.
func describe(p *model.Profile) string {
	if !p.Owned() {
		return "an unowned profile"
	}
	s := p.Source + " " + p.ExternalID
	if p.State == model.Blocked {
		s += fmt.Sprintf(" (blocked, %s)", p.BlockReason)
	}
	return s
}

// claimUsernames gives each wanted username to one profile. Profiles that
// keep their name hold it; then renames, then new people claim names in
// source order. A name still held by a profile (one that is not deleted in
// this run) cannot be taken, so such an identity is skipped with a reason.
// Unmatched identities may adopt an unowned profile of the same name.
func (c *calc) claimUsernames() {
	type holder struct {
		prof  int // profile index, or -1
		entry int // entry index, or -1
	}
	held := make(map[string]holder) // only renames and newcomers claim
	deleted := func(pi int) bool {
		ti, ok := c.targetOf[pi]
		return ok && c.targets[ti].del
	}
	name := func(h holder) string {
		if h.prof >= 0 {
			return describe(&c.in.Profiles[h.prof])
		}
		e := &c.entries[h.entry]
		return c.in.Pulls[e.src].Rules.Name + " " + e.id.ExternalID
	}
	// Owners of a name: the profile that holds it now, unless deleted.
	lookup := func(fold string) (holder, bool) {
		if h, ok := held[fold]; ok {
			return h, true
		}
		if pi, ok := c.names.find(fold); ok && !deleted(pi) {
			return holder{prof: pi, entry: -1}, true
		}
		return holder{}, false
	}
	adopted := make(map[int]bool)
	for pass := 0; pass < 2; pass++ {
		for ei := range c.entries {
			e := &c.entries[ei]
			fold := model.FoldUsername(e.username)
			if pass == 0 {
				// Renames of matched profiles.
				if e.prof < 0 || model.FoldUsername(c.in.Profiles[e.prof].Username) == fold {
					continue
				}
			} else if e.prof >= 0 {
				continue
			}
			h, taken := lookup(fold)
			switch {
			case !taken:
				held[fold] = holder{prof: -1, entry: ei}
				if e.prof >= 0 {
					held[fold] = holder{prof: e.prof, entry: -1}
				}
				continue
			case h.prof >= 0 && h.prof == e.prof:
				continue
			}
			if e.prof < 0 && h.prof >= 0 && c.in.Pulls[e.src].Rules.Adopt && !adopted[h.prof] {
				p := &c.in.Profiles[h.prof]
				if !p.Owned() && !c.in.Policy.IsExempt(p.Username) {
					e.prof, e.adopt = h.prof, true
					adopted[h.prof] = true
					held[fold] = h
					continue
				}
			}
			e.skip = true
			if c.in.Policy.IsExempt(e.username) {
				c.skip(e.src, e.id, "username %s is exempt and is never changed by a sync", e.username)
			} else {
				c.skip(e.src, e.id, "username %s is already used by %s", e.username, name(h))
				c.plan.Wanted[e.src] = append(c.plan.Wanted[e.src], fold)
			}
		}
	}
}

// diff works out the wanted profile of every mapped identity.
func (c *calc) diff() {
	pol := c.in.Policy
	for ei := range c.entries {
		e := &c.entries[ei]
		if e.skip {
			continue
		}
		id := e.id
		if e.prof < 0 {
			after := model.Profile{CreatedAt: c.in.Now}
			c.fill(&after, e)
			t := outcome{prof: -1, entry: ei}
			switch {
			case pol.IsExempt(after.Username):
				after.State, after.ActivatedAt = model.Active, c.in.Now
			case !id.Enabled:
				c.block(&after, nil, model.ReasonSourceDisabled)
			default:
				t.need = true
			}
			t.after = after
			c.addTarget(t)
			continue
		}
		before := &c.in.Profiles[e.prof]
		if pol.IsExempt(before.Username) {
			c.plan.Summary.Unchanged++
			continue
		}
		after := *before // shallow: slices and maps are replaced, never changed in place
		c.fill(&after, e)
		t := outcome{prof: e.prof, entry: ei}
		switch {
		case before.State == model.Blocked && before.BlockReason == model.ReasonAdmin:
			// A sync never clears an admin block.
		case !id.Enabled:
			if before.State == model.Active || before.BlockReason != model.ReasonSourceDisabled {
				c.block(&after, before, model.ReasonSourceDisabled)
			}
		case before.State == model.Active:
			bp, ap := pol.PoolIndex(before.Area), pol.PoolIndex(after.Area)
			if ap >= 0 && ap != bp {
				t.need = true
			}
		default:
			t.need = true
			t.actReason = ReasonSourceEnabled
			if before.BlockReason == model.ReasonLicense {
				t.actReason = ReasonSeatFreed
			}
		}
		if !t.need && profileEqual(before, &after) {
			c.plan.Summary.Unchanged++
			continue
		}
		t.after = after
		c.addTarget(t)
	}
}

// fill copies an identity's mapped fields into a profile.
func (c *calc) fill(p *model.Profile, e *entry) {
	id := e.id
	p.Username = e.username
	p.Email = id.Email
	p.GivenName = id.GivenName
	p.FamilyName = id.FamilyName
	p.DisplayName = id.DisplayName
	p.Title = id.Title
	p.Department = id.Department
	p.Groups = e.groups
	p.Attributes = id.Attributes
	p.Area = e.area
	p.Source = c.in.Pulls[e.src].Rules.Name
	p.ExternalID = id.ExternalID
}

// profileEqual compares what a sync may change.
func profileEqual(a, b *model.Profile) bool {
	return a.Username == b.Username && a.Email == b.Email && a.GivenName == b.GivenName &&
		a.FamilyName == b.FamilyName && a.DisplayName == b.DisplayName && a.Title == b.Title &&
		a.Department == b.Department && slices.Equal(a.Groups, b.Groups) &&
		maps.Equal(a.Attributes, b.Attributes) && a.Area == b.Area && a.State == b.State &&
		a.BlockReason == b.BlockReason && a.Source == b.Source && a.ExternalID == b.ExternalID &&
		a.QueuedAt.Equal(b.QueuedAt) && a.BlockedAt.Equal(b.BlockedAt) && a.ActivatedAt.Equal(b.ActivatedAt)
}

// seatRequest is a licensing request that refers to a target.
func (c *calc) request(ti int) licensing.Request {
	t := c.targets[ti]
	groups := t.after.Groups
	queued := c.in.Now
	if t.prof >= 0 {
		if q := c.in.Profiles[t.prof].QueuedAt; !q.IsZero() {
			queued = q
		}
	}
	return licensing.Request{Ref: ti, Weight: c.in.Policy.Weight(groups), QueuedAt: queued, Username: t.after.Username}
}

// allocate gives seats (SPEC section 4): seats freed in this run count
// first, then the people who need a seat get one in queue order; the rest
// are blocked (or stay blocked) for license and keep their queue time.
func (c *calc) allocate() {
	pol := c.in.Policy
	used := make([]int, len(pol.Pools))
	if c.in.Tally != nil {
		copy(used, c.in.Tally.Active)
	}
	// Profiles no identity drives that wait for a seat (queued by an admin,
	// owned by a source this run does not cover, or not mentioned by a
	// read of changes) still join the queue: seat allocation spans the
	// whole store.
	for i := range c.in.Profiles {
		p := &c.in.Profiles[i]
		if c.in.Tally == nil && pol.HoldsSeat(p) {
			used[pol.PoolIndex(p.Area)]++
		}
		if _, ok := c.targetOf[i]; ok || c.seen[i] {
			continue
		}
		if p.State == model.Blocked && p.BlockReason == model.ReasonLicense && pol.PoolIndex(p.Area) >= 0 && !pol.IsExempt(p.Username) {
			if si, covered := c.covered[p.Source]; covered && p.Owned() && !c.in.Pulls[si].Changes && c.in.Pulls[si].Rules.OnLeave != LeaveKeep {
				// Left the source: handled by leave(). With on_leave: keep the
				// profile is kept as it is, waiting in the queue: a read of
				// changes could not tell it from one whose person stays.
				continue
			}
			c.addTarget(outcome{prof: i, entry: -1, after: *p, need: true, actReason: ReasonSeatFreed})
		}
	}
	kept := slices.Clone(used)
	for ti := range c.targets {
		t := c.targets[ti]
		if t.prof < 0 {
			continue
		}
		before := &c.in.Profiles[t.prof]
		if !pol.HoldsSeat(before) {
			continue
		}
		if t.del || t.need || t.after.State != model.Active {
			kept[pol.PoolIndex(before.Area)]--
		}
	}
	c.plan.Pools = make([]PoolResult, len(pol.Pools))
	for pi := range pol.Pools {
		pool := &pol.Pools[pi]
		c.plan.Pools[pi] = PoolResult{Name: pool.Name, Limit: pool.Limit, Unlimited: pool.Unlimited, Reserve: pool.Reserve, UsedBefore: used[pi],
			LimitFrom: pool.LimitFrom, Frozen: pool.Frozen}
	}
	// Counted first: on a first sync everyone asks for a seat.
	asks := make([]int, len(pol.Pools))
	for _, t := range c.targets {
		if t.need {
			asks[pol.PoolIndex(t.after.Area)]++
		}
	}
	reqs := make([][]licensing.Request, len(pol.Pools))
	for pi, n := range asks {
		reqs[pi] = make([]licensing.Request, 0, n)
	}
	for ti := range c.targets {
		if t := c.targets[ti]; t.need {
			pi := pol.PoolIndex(t.after.Area)
			reqs[pi] = append(reqs[pi], c.request(ti))
		}
	}
	for pi := range pol.Pools {
		pool := &pol.Pools[pi]
		licensing.Order(reqs[pi])
		free := pool.Remaining(kept[pi])
		for _, r := range reqs[pi] {
			t := c.targets[r.Ref]
			var before *model.Profile
			if t.prof >= 0 {
				before = &c.in.Profiles[t.prof]
			}
			if pool.Unlimited || free > 0 {
				free--
				kept[pi]++
				t.after.State = model.Active
				t.after.BlockReason = model.ReasonNone
				t.after.QueuedAt = time.Time{}
				t.after.BlockedAt = time.Time{}
				if before == nil || before.State != model.Active {
					t.after.ActivatedAt = c.in.Now
				}
				continue
			}
			t.need = false
			t.actReason = ""
			t.after.QueuedAt = r.QueuedAt
			c.block(&t.after, before, model.ReasonLicense)
		}
		if over := pool.Overage(kept[pi]); over > 0 && pol.OnOverage == licensing.OverageBlockNewest {
			kept[pi] -= c.blockNewest(pi, over)
		}
		c.plan.Pools[pi].UsedAfter = kept[pi]
		c.plan.Pools[pi].Overage = pool.Overage(kept[pi])
		c.plan.Pools[pi].RemainingAfter = max(0, pool.Remaining(kept[pi]))
	}
}

// blockNewest blocks the n most recently activated owned profiles of a
// pool (on_overage: block_newest) and returns how many it blocked.
func (c *calc) blockNewest(pi, n int) int {
	pol := c.in.Policy
	var cands []int // profile indexes holding a seat in pool pi after the plan
	for i := range c.in.Profiles {
		p := &c.in.Profiles[i]
		if ti, ok := c.targetOf[i]; ok {
			p = &c.targets[ti].after
			if c.targets[ti].del || c.targets[ti].need {
				continue // a seat just given is not taken back in the same run
			}
		}
		if p.Owned() && pol.HoldsSeat(p) && pol.PoolIndex(p.Area) == pi {
			cands = append(cands, i)
		}
	}
	slices.SortFunc(cands, func(a, b int) int {
		pa, pb := &c.in.Profiles[a], &c.in.Profiles[b]
		if x := pb.ActivatedAt.Compare(pa.ActivatedAt); x != 0 {
			return x
		}
		return cmp.Compare(pb.Username, pa.Username)
	})
	n = min(n, len(cands))
	for _, i := range cands[:n] {
		before := &c.in.Profiles[i]
		ti, ok := c.targetOf[i]
		if !ok {
			ti = c.addTarget(outcome{prof: i, entry: -1, after: *before})
		}
		t := c.targets[ti]
		t.after.QueuedAt = c.in.Now
		c.block(&t.after, before, model.ReasonLicense)
	}
	return n
}

// nameIndex finds a profile by folded username. Stores return profiles
// sorted by folded username, so most of the time a binary search over the
// input does, without a million-entry map; any other order gets a map.
type nameIndex struct {
	sorted   []model.Profile
	byFolded map[string]int
}

func newNameIndex(profiles []model.Profile) nameIndex {
	sorted := true
	for i := 1; i < len(profiles); i++ {
		if model.FoldUsername(profiles[i-1].Username) >= model.FoldUsername(profiles[i].Username) {
			sorted = false
			break
		}
	}
	if sorted {
		return nameIndex{sorted: profiles}
	}
	m := make(map[string]int, len(profiles))
	for i := range profiles {
		m[model.FoldUsername(profiles[i].Username)] = i
	}
	return nameIndex{byFolded: m}
}

func (x nameIndex) find(fold string) (int, bool) {
	if x.byFolded != nil {
		i, ok := x.byFolded[fold]
		return i, ok
	}
	i, ok := slices.BinarySearchFunc(x.sorted, fold, func(p model.Profile, f string) int {
		return cmp.Compare(model.FoldUsername(p.Username), f)
	})
	return i, ok
}
