package reconcile

import (
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
)

// BenchmarkCalculate1M plans 1,000,000 identities against 1,000,000
// profiles, with 1% of people changed, 0.5% joining and 0.5% leaving.
// Target (issue 2): under 2 s and 1.5 GB. It reports the heap in use with
// inputs and plan alive (heap-MB) next to the usual allocation figures.
func BenchmarkCalculate1M(b *testing.B) {
	const n = 1_000_000
	policy := licensing.NewPolicy([]licensing.Pool{
		{Name: "primary", Limit: 990_000, Areas: []string{"primary"}},
		{Name: "extranet", Limit: 20_000, Areas: []string{"partners"}},
	}, []string{"admin"}, []licensing.PriorityRule{{Group: "cn=executives", Weight: 100}}, "keep")
	profiles := make([]model.Profile, 0, n)
	ids := make([]model.Identity, 0, n)
	for i := range n {
		u := "user" + strconv.Itoa(i)
		ext := "E" + strconv.Itoa(i)
		area := "primary"
		groups := []string{"cn=staff"}
		if i%100 == 0 {
			area, groups = "partners", []string{"cn=partners"}
		}
		if i >= n/200 { // the first 0.5% have left
			profiles = append(profiles, model.Profile{ID: int64(i + 1), Version: 1, Username: u, Email: u + "@example.com",
				GivenName: "Given", FamilyName: "Family" + strconv.Itoa(i), Department: "Dept", Groups: groups,
				Area: area, State: model.Active, Source: "hr", ExternalID: ext, ActivatedAt: t0, CreatedAt: t0, UpdatedAt: t0})
		}
		id := model.Identity{ExternalID: ext, Username: u, Email: u + "@example.com", GivenName: "Given",
			FamilyName: "Family" + strconv.Itoa(i), Department: "Dept", Groups: groups, Enabled: true}
		if i%100 == 1 {
			id.Department = "Moved"
		}
		if i < n-n/200 { // the last 0.5% are new
			ids = append(ids, id)
		}
	}
	// As a store returns them: ordered by folded username.
	slices.SortFunc(profiles, func(a, b model.Profile) int { return strings.Compare(a.Username, b.Username) })
	pull := Pull{Rules: SourceRules{Name: "hr", Type: "csv", Area: "primary", OnLeave: LeaveBlock,
		AreaRules: []AreaRule{{Group: "cn=partners", Area: "partners"}}}, Identities: ids}
	b.ReportAllocs()
	b.ResetTimer()
	var plan *Plan
	for b.Loop() {
		plan = Calculate(Input{Now: now, Pulls: []Pull{pull}, Profiles: profiles, Policy: policy,
			MaxDeprovision: func(int) int { return n }})
	}
	b.StopTimer()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	b.ReportMetric(float64(len(plan.Changes)), "changes")
	if len(plan.Changes) == 0 {
		b.Fatal("empty plan")
	}
	runtime.KeepAlive(profiles)
}
