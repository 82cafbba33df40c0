package reconcile

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// productBrief is the part of a grant or recall the table tests compare.
type productBrief struct {
	Action   Action
	Product  string
	Username string
	Reason   string
	Queue    int
}

func productBriefs(p *Plan) []productBrief {
	var out []productBrief
	for _, c := range p.Changes {
		if c.IsProduct() {
			out = append(out, productBrief{c.Action, c.Product, c.Username, c.Reason, c.QueuePosition})
		}
	}
	return out
}

func withProducts(pol *licensing.Policy, ps ...licensing.Product) *licensing.Policy {
	pol.Products = ps
	return pol
}

func crm(limit int) licensing.Product {
	return licensing.Product{Name: "crm", Limit: limit, Grant: []licensing.GrantRule{
		{Group: "Sales"}, {Area: "partners"}, {Attribute: "department", Equals: "Sales"}}}
}

// seller is an active profile in group Sales with its own ID, and the
// identity that keeps it as it is.
func seller(id int64, user string, sales bool) (model.Profile, model.Identity) {
	p := active(user, user, "primary")
	p.ID = id
	ident := person(user, user)
	if sales {
		p.Groups, ident.Groups = []string{"Sales"}, []string{"Sales"}
	}
	return p, ident
}

func held(id int64, since time.Time) store.Grant {
	return store.Grant{ProfileID: id, Product: "crm", State: store.GrantGranted, Since: since}
}

func waiting(id int64, since time.Time) store.Grant {
	return store.Grant{ProfileID: id, Product: "crm", State: store.GrantQueued, Since: since}
}

func TestProducts(t *testing.T) {
	type who struct {
		id    int64
		user  string
		sales bool
	}
	people := func(ws ...who) ([]model.Profile, []model.Identity) {
		var ps []model.Profile
		var ids []model.Identity
		for _, w := range ws {
			p, i := seller(w.id, w.user, w.sales)
			ps, ids = append(ps, p), append(ids, i)
		}
		return ps, ids
	}
	tests := []struct {
		name    string
		product licensing.Product
		people  []who
		grants  []store.Grant
		edit    func(ps []model.Profile, ids []model.Identity) ([]model.Profile, []model.Identity)
		want    []productBrief
		result  ProductResult
	}{
		{
			name:    "matching active profiles get a licence while one is free; the rest are queued in queue order",
			product: crm(2),
			people:  []who{{1, "alice", false}, {2, "bob", true}, {3, "carol", true}, {4, "dave", true}},
			want: []productBrief{
				{ActionGrant, "crm", "bob", ReasonRule, 0},
				{ActionGrant, "crm", "carol", ReasonRule, 0},
				{ActionGrant, "crm", "dave", ReasonQueued, 1},
			},
			result: ProductResult{Name: "crm", Limit: 2, UsedAfter: 2, QueuedAfter: 1},
		},
		{
			name:    "nothing to do once in step",
			product: crm(2),
			people:  []who{{2, "bob", true}, {3, "carol", true}, {4, "dave", true}},
			grants:  []store.Grant{held(2, t0), held(3, t0), waiting(4, t0)},
			result:  ProductResult{Name: "crm", Limit: 2, UsedBefore: 2, UsedAfter: 2, QueuedAfter: 1},
		},
		{
			name:    "a recall when no rule matches frees the licence for the queue in the same run, earliest first",
			product: crm(2),
			people:  []who{{2, "bob", false}, {3, "carol", true}, {4, "dave", true}, {5, "erin", true}},
			grants:  []store.Grant{held(2, t0), held(3, t0), waiting(4, t0.Add(time.Hour)), waiting(5, t0)},
			want: []productBrief{
				{ActionGrant, "crm", "erin", ReasonSeatFreed, 0},
				{ActionRecall, "crm", "bob", ReasonNoRule, 0},
			},
			result: ProductResult{Name: "crm", Limit: 2, UsedBefore: 2, UsedAfter: 2, QueuedAfter: 1},
		},
		{
			name:    "a profile the run blocks loses its licence and its place in the queue",
			product: crm(1),
			people:  []who{{2, "bob", true}, {3, "carol", true}, {4, "dave", true}},
			grants:  []store.Grant{held(2, t0), waiting(3, t0)},
			edit: func(ps []model.Profile, ids []model.Identity) ([]model.Profile, []model.Identity) {
				ids[0].Enabled, ids[1].Enabled = false, false
				return ps, ids
			},
			want: []productBrief{
				{ActionGrant, "crm", "dave", ReasonRule, 0},
				{ActionRecall, "crm", "bob", ReasonBlocked, 0},
				{ActionRecall, "crm", "carol", ReasonBlocked, 0},
			},
			result: ProductResult{Name: "crm", Limit: 1, UsedBefore: 1, UsedAfter: 1},
		},
		{
			name:    "a lowered limit recalls nobody and gives nobody new a licence until under it",
			product: crm(1),
			people:  []who{{2, "bob", true}, {3, "carol", true}, {4, "dave", true}, {5, "erin", true}},
			grants:  []store.Grant{held(2, t0), held(3, t0), held(4, t0)},
			want:    []productBrief{{ActionGrant, "crm", "erin", ReasonQueued, 1}},
			result:  ProductResult{Name: "crm", Limit: 1, UsedBefore: 3, UsedAfter: 3, QueuedAfter: 1, Overage: 2},
		},
		{
			name:    "a lowered limit, once a holder goes: still over it, so the queue waits",
			product: crm(1),
			people:  []who{{2, "bob", false}, {3, "carol", true}, {4, "dave", true}, {5, "erin", true}},
			grants:  []store.Grant{held(2, t0), held(3, t0), held(4, t0), waiting(5, t0)},
			want:    []productBrief{{ActionRecall, "crm", "bob", ReasonNoRule, 0}},
			result:  ProductResult{Name: "crm", Limit: 1, UsedBefore: 3, UsedAfter: 2, QueuedAfter: 1, Overage: 1},
		},
		{
			name:    "a manual grant is kept while no rule matches, and recalled when its profile is blocked",
			product: crm(5),
			people:  []who{{1, "alice", false}, {2, "bob", false}},
			grants: []store.Grant{
				{ProfileID: 1, Product: "crm", State: store.GrantGranted, Since: t0, Manual: true},
				{ProfileID: 2, Product: "crm", State: store.GrantGranted, Since: t0, Manual: true},
			},
			edit: func(ps []model.Profile, ids []model.Identity) ([]model.Profile, []model.Identity) {
				ids[1].Enabled = false
				return ps, ids
			},
			want:   []productBrief{{ActionRecall, "crm", "bob", ReasonBlocked, 0}},
			result: ProductResult{Name: "crm", Limit: 5, UsedBefore: 2, UsedAfter: 1, RemainingAfter: 4},
		},
		{
			name:    "a deleted profile's licence is recalled",
			product: crm(5),
			people:  []who{{2, "bob", true}, {3, "carol", true}},
			grants:  []store.Grant{held(2, t0), held(3, t0)},
			edit: func(ps []model.Profile, ids []model.Identity) ([]model.Profile, []model.Identity) {
				return ps, ids[1:] // bob left; on_leave delete below
			},
			want:   []productBrief{{ActionRecall, "crm", "bob", ReasonDeleted, 0}},
			result: ProductResult{Name: "crm", Limit: 5, UsedBefore: 2, UsedAfter: 1, RemainingAfter: 4},
		},
		{
			name:    "new people: active ones a rule matches get a licence, those created blocked do not",
			product: crm(5),
			edit: func(ps []model.Profile, ids []model.Identity) ([]model.Profile, []model.Identity) {
				partner := person("p1", "pat", groups("Partners"))
				off := person("p2", "sam", groups("Sales"), disabled)
				dep := person("p3", "dee")
				dep.Department = "Sales"
				return ps, append(ids, partner, off, dep)
			},
			want: []productBrief{
				{ActionGrant, "crm", "dee", ReasonRule, 0},
				{ActionGrant, "crm", "pat", ReasonRule, 0},
			},
			result: ProductResult{Name: "crm", Limit: 5, UsedAfter: 2, RemainingAfter: 3},
		},
		{
			name: "a product its licence flag does not enable queues everyone and keeps its holders",
			product: func() licensing.Product {
				p := crm(5)
				p.EnabledBy, p.Disabled = "CRM_ALLOWED", true
				return p
			}(),
			people: []who{{2, "bob", true}, {3, "carol", true}},
			grants: []store.Grant{held(2, t0)},
			want:   []productBrief{{ActionGrant, "crm", "carol", ReasonQueued, 1}},
			result: ProductResult{Name: "crm", Limit: 5, UsedBefore: 1, UsedAfter: 1, QueuedAfter: 1, EnabledBy: "CRM_ALLOWED", Disabled: true},
		},
		{
			name:    "unlimited: everyone a rule matches",
			product: licensing.Product{Name: "crm", Unlimited: true, Grant: []licensing.GrantRule{{Group: "sales"}}},
			people:  []who{{2, "bob", true}, {3, "carol", true}},
			want: []productBrief{
				{ActionGrant, "crm", "bob", ReasonRule, 0},
				{ActionGrant, "crm", "carol", ReasonRule, 0},
			},
			result: ProductResult{Name: "crm", Unlimited: true, UsedAfter: 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps, ids := people(tc.people...)
			if tc.edit != nil {
				ps, ids = tc.edit(ps, ids)
			}
			pull := hr(ids...)
			pull.Rules.OnLeave = LeaveDelete
			plan := Calculate(Input{Now: now, Pulls: []Pull{pull}, Profiles: ps, Grants: tc.grants,
				Policy: withProducts(pools(100, 100), tc.product), MaxDeprovision: func(int) int { return 1000 }})
			if diff := cmp.Diff(tc.want, productBriefs(plan)); diff != "" {
				t.Errorf("grants and recalls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]ProductResult{tc.result}, plan.Products); diff != "" {
				t.Errorf("products (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProductOfNoConfigurationIsRecalled(t *testing.T) {
	p, id := seller(2, "bob", true)
	plan := Calculate(Input{Now: now, Pulls: []Pull{hr(id)}, Profiles: []model.Profile{p},
		Grants: []store.Grant{{ProfileID: 2, Product: "old", State: store.GrantGranted, Since: t0}},
		Policy: pools(10, 10), MaxDeprovision: func(int) int { return 1000 }})
	want := []productBrief{{ActionRecall, "old", "bob", ReasonUnknownProduct, 0}}
	if diff := cmp.Diff(want, productBriefs(plan)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if plan.Summary.Recall != 1 || plan.Summary.Total() != 1 {
		t.Errorf("summary = %+v, want one recall", plan.Summary)
	}
}
