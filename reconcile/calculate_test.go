package reconcile

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
)

var (
	t0  = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	now = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
)

// fixtures

func pools(primary, extranet int) *licensing.Policy {
	return licensing.NewPolicy([]licensing.Pool{
		{Name: "primary", Limit: primary, Areas: []string{"primary"}},
		{Name: "extranet", Limit: extranet, Areas: []string{"partners", "suppliers"}},
	}, []string{"admin"}, []licensing.PriorityRule{{Group: "Executives", Weight: 100}}, "keep")
}

func hr(ids ...model.Identity) Pull {
	return Pull{Rules: SourceRules{Name: "hr", Type: "csv", Area: "primary", OnLeave: LeaveBlock,
		AreaRules: []AreaRule{{Group: "Partners", Area: "partners"}, {Attribute: "company", Equals: "Acme", Area: "suppliers"}}},
		Identities: ids}
}

func person(id, user string, mods ...func(*model.Identity)) model.Identity {
	p := model.Identity{ExternalID: id, Username: user, Email: user + "@example.com", Enabled: true}
	for _, m := range mods {
		m(&p)
	}
	return p
}

func disabled(i *model.Identity)               { i.Enabled = false }
func groups(g ...string) func(*model.Identity) { return func(i *model.Identity) { i.Groups = g } }

func active(id, user, area string) model.Profile {
	return model.Profile{ID: int64(len(user)), Version: 1, Username: user, Email: user + "@example.com", Area: area,
		State: model.Active, Source: "hr", ExternalID: id, ActivatedAt: t0, CreatedAt: t0, UpdatedAt: t0}
}

func blocked(id, user, area string, reason model.Reason, at time.Time) model.Profile {
	p := active(id, user, area)
	p.State, p.BlockReason, p.BlockedAt, p.ActivatedAt = model.Blocked, reason, at, time.Time{}
	if reason == model.ReasonLicense {
		p.QueuedAt = at
	}
	return p
}

func unowned(user, area string) model.Profile {
	p := active("", user, area)
	p.Source = ""
	return p
}

// brief is the part of a change the table tests compare.
type brief struct {
	Action   Action
	Username string
	State    model.State
	Reason   string
	Queue    int
}

func briefs(p *Plan) []brief {
	var out []brief
	for _, c := range p.Changes {
		out = append(out, brief{c.Action, c.Username, c.State, c.Reason, c.QueuePosition})
	}
	return out
}

func planFor(profiles []model.Profile, policy *licensing.Policy, pulls ...Pull) *Plan {
	return Calculate(Input{Now: now, Pulls: pulls, Profiles: profiles, Policy: policy,
		MaxDeprovision: func(int) int { return 1000 }})
}

func TestCalculate(t *testing.T) {
	tests := []struct {
		name     string
		policy   *licensing.Policy
		profiles []model.Profile
		pull     Pull
		want     []brief
		skipped  []string
	}{
		{
			name:   "new people get seats until the pool is full, the rest are created blocked for license in queue order",
			policy: pools(2, 10),
			pull:   hr(person("1", "carol"), person("2", "alice"), person("3", "bob")),
			want: []brief{
				{ActionCreate, "alice", model.Active, "", 0},
				{ActionCreate, "bob", model.Active, "", 0},
				{ActionCreate, "carol", model.Blocked, "license", 1},
			},
		},
		{
			name:   "priority group goes first",
			policy: pools(1, 10),
			pull:   hr(person("1", "alice"), person("2", "zed", groups("Executives"))),
			want: []brief{
				{ActionCreate, "alice", model.Blocked, "license", 1},
				{ActionCreate, "zed", model.Active, "", 0},
			},
		},
		{
			name:   "queued people keep their queue time: the earliest gets the freed seat",
			policy: pools(2, 10),
			profiles: []model.Profile{
				active("1", "alice", "primary"),
				blocked("2", "bob", "primary", model.ReasonLicense, t0.Add(2*time.Hour)),
				blocked("3", "carol", "primary", model.ReasonLicense, t0.Add(time.Hour)),
				active("4", "dave", "primary"),
			},
			pull: hr(person("1", "alice"), person("2", "bob"), person("3", "carol")),
			want: []brief{
				{ActionActivate, "carol", model.Active, ReasonSeatFreed, 0},
				{ActionBlock, "dave", model.Blocked, "left_source", 0},
			},
		},
		{
			name:     "a disabled person is blocked source_disabled and frees a seat for the queue",
			policy:   pools(1, 10),
			profiles: []model.Profile{active("1", "alice", "primary"), blocked("2", "bob", "primary", model.ReasonLicense, t0)},
			pull:     hr(person("1", "alice", disabled), person("2", "bob")),
			want: []brief{
				{ActionActivate, "bob", model.Active, ReasonSeatFreed, 0},
				{ActionBlock, "alice", model.Blocked, "source_disabled", 0},
			},
		},
		{
			name:     "re-enabled person needs a seat like anyone else",
			policy:   pools(1, 10),
			profiles: []model.Profile{active("1", "alice", "primary"), blocked("2", "bob", "primary", model.ReasonSourceDisabled, t0)},
			pull:     hr(person("1", "alice"), person("2", "bob")),
			want:     []brief{{ActionBlock, "bob", model.Blocked, "license", 1}},
		},
		{
			name:     "re-enabled person with a free seat is activated",
			policy:   pools(5, 10),
			profiles: []model.Profile{blocked("2", "bob", "primary", model.ReasonSourceDisabled, t0)},
			pull:     hr(person("2", "bob")),
			want:     []brief{{ActionActivate, "bob", model.Active, ReasonSourceEnabled, 0}},
		},
		{
			name:     "admin block is never cleared by a sync",
			policy:   pools(5, 10),
			profiles: []model.Profile{blocked("1", "alice", "primary", model.ReasonAdmin, t0)},
			pull:     hr(person("1", "alice")),
		},
		{
			name:     "rename keeps the profile",
			policy:   pools(5, 10),
			profiles: []model.Profile{active("1", "alice", "primary")},
			pull:     hr(person("1", "alice.smith", func(i *model.Identity) { i.Email = "alice@example.com" })),
			want:     []brief{{ActionUpdate, "alice.smith", model.Active, "", 0}},
		},
		{
			name:     "username case is lowered by default",
			policy:   pools(5, 10),
			profiles: []model.Profile{active("1", "alice", "primary")},
			pull:     hr(person("1", "ALICE", func(i *model.Identity) { i.Email = "alice@example.com" })),
		},
		{
			name:     "left person is blocked left_source",
			policy:   pools(5, 10),
			profiles: []model.Profile{active("1", "alice", "primary"), active("2", "bob", "primary")},
			pull:     hr(person("1", "alice")),
			want:     []brief{{ActionBlock, "bob", model.Blocked, "left_source", 0}},
		},
		{
			name:     "a person who comes back needs a seat",
			policy:   pools(5, 10),
			profiles: []model.Profile{blocked("1", "alice", "primary", model.ReasonLeftSource, t0)},
			pull:     hr(person("1", "alice")),
			want:     []brief{{ActionActivate, "alice", model.Active, ReasonSourceEnabled, 0}},
		},
		{
			name:     "area rule by group moves a person to another pool, releasing the old seat",
			policy:   pools(1, 1),
			profiles: []model.Profile{active("1", "alice", "primary"), blocked("2", "bob", "primary", model.ReasonLicense, t0)},
			pull:     hr(person("1", "alice", groups("Partners")), person("2", "bob")),
			want: []brief{
				{ActionMove, "alice", model.Active, "", 0},
				{ActionActivate, "bob", model.Active, ReasonSeatFreed, 0},
			},
		},
		{
			name:   "area rule by attribute; the new pool is full so the move blocks for license",
			policy: pools(5, 1),
			profiles: []model.Profile{active("1", "alice", "primary"),
				func() model.Profile {
					p := active("9", "zoe", "suppliers")
					p.Attributes = map[string]string{"company": "Acme"}
					return p
				}()},
			pull: hr(person("1", "alice", func(i *model.Identity) { i.Attributes = map[string]string{"company": "Acme"} }),
				person("9", "zoe", func(i *model.Identity) { i.Attributes = map[string]string{"company": "Acme"} })),
			want: []brief{{ActionMove, "alice", model.Blocked, "license", 1}},
		},
		{
			name:     "a move within one pool keeps the seat",
			policy:   pools(5, 1),
			profiles: []model.Profile{active("1", "alice", "partners")},
			pull:     hr(person("1", "alice", func(i *model.Identity) { i.Attributes = map[string]string{"company": "Acme"} })),
			want:     []brief{{ActionMove, "alice", model.Active, "", 0}},
		},
		{
			name:     "exempt and unowned profiles are left alone and exempt takes no seat",
			policy:   pools(1, 10),
			profiles: []model.Profile{unowned("admin", "primary"), unowned("helpdesk", "primary")},
			pull:     hr(person("1", "admin"), person("2", "alice")),
			want:     []brief{{ActionCreate, "alice", model.Blocked, "license", 1}},
			skipped:  []string{"username admin is exempt and is never changed by a sync"},
		},
		{
			name:     "adopt takes over an unowned profile with the same name",
			policy:   pools(5, 10),
			profiles: []model.Profile{unowned("Alice", "primary")},
			pull:     func() Pull { p := hr(person("1", "alice")); p.Rules.Adopt = true; return p }(),
			want:     []brief{{ActionUpdate, "alice", model.Active, "", 0}},
		},
		{
			name:     "without adopt the name clash is skipped",
			policy:   pools(5, 10),
			profiles: []model.Profile{unowned("alice", "primary")},
			pull:     hr(person("1", "alice")),
			skipped:  []string{"username alice is already used by an unowned profile"},
		},
		{
			name:    "two identities want one username: the first wins",
			policy:  pools(5, 10),
			pull:    hr(person("E123", "jdoe"), person("E999", "JDoe")),
			want:    []brief{{ActionCreate, "jdoe", model.Active, "", 0}},
			skipped: []string{"username jdoe is already used by hr E123"},
		},
		{
			name:    "identities that cannot be mapped are skipped with a reason",
			policy:  pools(5, 10),
			pull:    hr(person("1", ""), person("", "x"), person("3", "bad", func(i *model.Identity) { i.Email = "not-an-email" }), person("4", "ok"), person("4", "dup")),
			want:    []brief{{ActionCreate, "ok", model.Active, "", 0}},
			skipped: []string{"no username", "no external id", `email "not-an-email" is not a valid address`, "external id 4 appears more than once in the source"},
		},
		{
			name:   "disabled newcomers are created blocked and take no seat",
			policy: pools(1, 10),
			pull:   hr(person("1", "alice", disabled), person("2", "bob")),
			want: []brief{
				{ActionCreate, "alice", model.Blocked, "source_disabled", 0},
				{ActionCreate, "bob", model.Active, "", 0},
			},
		},
		{
			name:     "a skipped identity still counts as present: its profile is not blocked as left",
			policy:   pools(5, 10),
			profiles: []model.Profile{active("1", "alice", "primary")},
			pull:     hr(person("1", "alice", func(i *model.Identity) { i.Email = "broken" })),
			skipped:  []string{`email "broken" is not a valid address`},
		},
		{
			name:   "the queue of an unowned profile queued by an admin is served too",
			policy: pools(1, 10),
			profiles: []model.Profile{func() model.Profile {
				p := unowned("kiosk", "primary")
				p.State, p.BlockReason, p.QueuedAt = model.Blocked, model.ReasonLicense, t0
				return p
			}()},
			pull: hr(person("1", "alice")),
			want: []brief{
				{ActionCreate, "alice", model.Blocked, "license", 1},
				{ActionActivate, "kiosk", model.Active, ReasonSeatFreed, 0},
			},
		},
		{
			name:   "unlimited pool never blocks",
			policy: licensing.NewPolicy([]licensing.Pool{{Name: "primary", Unlimited: true, Areas: []string{"primary"}}}, nil, nil, "keep"),
			pull:   hr(person("1", "a"), person("2", "b")),
			want:   []brief{{ActionCreate, "a", model.Active, "", 0}, {ActionCreate, "b", model.Active, "", 0}},
		},
		{
			name:   "reserve keeps seats free",
			policy: licensing.NewPolicy([]licensing.Pool{{Name: "primary", Limit: 3, Reserve: 2, Areas: []string{"primary"}}}, nil, nil, "keep"),
			pull:   hr(person("1", "a"), person("2", "b")),
			want:   []brief{{ActionCreate, "a", model.Active, "", 0}, {ActionCreate, "b", model.Blocked, "license", 1}},
		},
		{
			name:     "lowered limit with on_overage keep blocks nobody",
			policy:   pools(1, 10),
			profiles: []model.Profile{active("1", "a", "primary"), active("2", "b", "primary")},
			pull:     hr(person("1", "a"), person("2", "b")),
		},
		{
			name:   "lowered limit with on_overage block_newest blocks the most recently activated",
			policy: licensing.NewPolicy([]licensing.Pool{{Name: "primary", Limit: 1, Areas: []string{"primary"}}}, nil, nil, "block_newest"),
			profiles: []model.Profile{active("1", "a", "primary"),
				func() model.Profile { p := active("2", "b", "primary"); p.ActivatedAt = t0.Add(time.Hour); return p }()},
			pull: hr(person("1", "a"), person("2", "b")),
			want: []brief{{ActionBlock, "b", model.Blocked, "license", 1}},
		},
		{
			name:     "profiles of other sources are not touched",
			policy:   pools(5, 10),
			profiles: []model.Profile{func() model.Profile { p := active("1", "okta1", "primary"); p.Source = "okta"; return p }()},
			pull:     hr(person("1", "alice")),
			want:     []brief{{ActionCreate, "alice", model.Active, "", 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := planFor(tt.profiles, tt.policy, tt.pull)
			if diff := cmp.Diff(tt.want, briefs(plan), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			var reasons []string
			for _, s := range plan.Skipped {
				reasons = append(reasons, s.Reason)
			}
			if diff := cmp.Diff(tt.skipped, reasons, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("skipped (-want +got):\n%s", diff)
			}
		})
	}
}

// apply writes a plan's changes onto a profile list, as a store would.
func applyPlan(profiles []model.Profile, plan *Plan) []model.Profile {
	byID := map[int64]int{}
	for i, p := range profiles {
		byID[p.ID] = i
	}
	out := append([]model.Profile(nil), profiles...)
	var deleted = map[int64]bool{}
	next := int64(1000)
	for _, p := range profiles {
		next = max(next, p.ID)
	}
	for _, c := range plan.Changes {
		switch {
		case c.Before == nil:
			next++
			a := *c.After
			a.ID = next
			out = append(out, a)
		case c.After == nil:
			deleted[c.Before.ID] = true
		default:
			out[byID[c.Before.ID]] = *c.After
		}
	}
	kept := out[:0]
	for _, p := range out {
		if !deleted[p.ID] {
			kept = append(kept, p)
		}
	}
	return kept
}

func TestSecondRunPlansNothing(t *testing.T) {
	policy := pools(2, 1)
	pull := hr(person("1", "a"), person("2", "b"), person("3", "c"), person("4", "d", disabled),
		person("5", "e", groups("Partners")), person("6", "f", groups("Partners")))
	plan := planFor(nil, policy, pull)
	if plan.Summary.Total() != 6 {
		t.Fatalf("first plan: %d changes, want 6", plan.Summary.Total())
	}
	after := applyPlan(nil, plan)
	again := planFor(after, policy, pull)
	if len(again.Changes) != 0 {
		t.Fatalf("second plan is not empty: %+v", briefs(again))
	}
	if again.Summary.Unchanged != 6 {
		t.Errorf("unchanged = %d, want 6", again.Summary.Unchanged)
	}
	if got := again.Pools[0].QueuedAfter; got != 1 {
		t.Errorf("primary queued = %d, want 1", got)
	}
}

func TestDeleteAfterAndOnLeaveDelete(t *testing.T) {
	policy := pools(5, 10)
	old := blocked("1", "gone", "primary", model.ReasonLeftSource, now.Add(-800*time.Hour))
	recent := blocked("2", "recent", "primary", model.ReasonLeftSource, now.Add(-10*time.Hour))
	pull := hr(person("3", "stay"))
	pull.Rules.DeleteAfter = 720 * time.Hour
	plan := planFor([]model.Profile{old, recent, active("3", "stay", "primary")}, policy, pull)
	want := []brief{{ActionDelete, "gone", model.Blocked, "left_source", 0}}
	if diff := cmp.Diff(want, briefs(plan)); diff != "" {
		t.Errorf("delete_after (-want +got):\n%s", diff)
	}

	pull = hr(person("3", "stay"))
	pull.Rules.OnLeave = LeaveDelete
	plan = planFor([]model.Profile{active("1", "x", "primary"), active("3", "stay", "primary")}, policy, pull)
	want = []brief{{ActionDelete, "x", model.Active, "", 0}}
	if diff := cmp.Diff(want, briefs(plan)); diff != "" {
		t.Errorf("on_leave delete (-want +got):\n%s", diff)
	}

	pull.Rules.OnLeave = LeaveKeep
	plan = planFor([]model.Profile{active("1", "x", "primary"), active("3", "stay", "primary")}, policy, pull)
	if len(plan.Changes) != 0 {
		t.Errorf("on_leave keep: %+v", briefs(plan))
	}
}

func TestGuard(t *testing.T) {
	policy := pools(100, 10)
	var profiles []model.Profile
	var ids []model.Identity
	for i := range 20 {
		id := string(rune('a' + i))
		profiles = append(profiles, active(id, "user"+id, "primary"))
		if i >= 3 {
			ids = append(ids, person(id, "user"+id))
		}
	}
	in := Input{Now: now, Pulls: []Pull{hr(ids...)}, Profiles: profiles, Policy: policy,
		MaxDeprovision: func(total int) int { return total * 10 / 100 }}
	plan := Calculate(in)
	want := Guard{Tripped: true, Deprovisions: 3, Limit: 2, Sources: []SourceGuard{{Name: "hr", Owned: 20, Deprovisions: 3, Limit: 2, Tripped: true,
		Why: "source hr would deprovision 3 of its 20 profiles, more than the limit of 2 (safety.max_deprovision)"}}}
	if diff := cmp.Diff(want, plan.Guard); diff != "" {
		t.Errorf("guard (-want +got):\n%s", diff)
	}
	in.AllowDeprovision = true
	if g := Calculate(in).Guard; g.Tripped || !g.Overridden {
		t.Errorf("--allow-deprovision: guard %+v", g)
	}

	in = Input{Now: now, Pulls: []Pull{hr()}, Profiles: profiles, Policy: policy, MaxDeprovision: func(int) int { return 1000 }}
	if g := Calculate(in).Guard; !g.Tripped || g.Sources[0].Why != "source hr returned no identities but owns 20 profiles" {
		t.Errorf("zero identities: guard %+v", g)
	}
}

func TestQueueOrderAcrossRuns(t *testing.T) {
	// Three people queue one run apart; seats free one at a time; they must
	// be served in the order they queued, whatever their usernames.
	policy := pools(1, 10)
	profiles := []model.Profile{active("0", "holder", "primary")}
	people := []model.Identity{person("0", "holder")}
	for i, u := range []string{"zz", "mm", "aa"} {
		people = append(people, person(string(rune('1'+i)), u))
		plan := Calculate(Input{Now: now.Add(time.Duration(i) * time.Hour), Pulls: []Pull{hr(people...)}, Profiles: profiles, Policy: policy,
			MaxDeprovision: func(int) int { return 100 }})
		profiles = applyPlan(profiles, plan)
	}
	var served []string
	for i := range 3 {
		// Drop whoever holds the seat.
		var rest []model.Identity
		for _, p := range people {
			holds := false
			for _, pr := range profiles {
				if pr.ExternalID == p.ExternalID && pr.State == model.Active {
					holds = true
				}
			}
			if !holds {
				rest = append(rest, p)
			}
		}
		people = rest
		plan := Calculate(Input{Now: now.Add(time.Duration(10+i) * time.Hour), Pulls: []Pull{hr(people...)}, Profiles: profiles, Policy: policy,
			MaxDeprovision: func(int) int { return 100 }})
		for _, c := range plan.Changes {
			if c.Action == ActionActivate {
				served = append(served, c.Username)
			}
		}
		profiles = applyPlan(profiles, plan)
	}
	if diff := cmp.Diff([]string{"zz", "mm", "aa"}, served); diff != "" {
		t.Errorf("service order (-want +got):\n%s", diff)
	}
}
