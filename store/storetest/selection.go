package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// owned is a profile of source src with external id ext.
func owned(p model.Profile, src, ext string) model.Profile {
	p.Source, p.ExternalID = src, ext
	return p
}

func key(src, ext string) store.Key { return store.Key{Source: src, ExternalID: ext} }

// testSelect checks that Select returns exactly the profiles each part of
// a Selection names, each once, in username order, and that Tally counts
// as CountActive does.
func testSelect(t *testing.T, newHandle func() store.Store) {
	ctx := t.Context()
	s := handle(t, newHandle)
	ps := []model.Profile{
		owned(active("alice", "primary"), "hr", "E1"),
		owned(active("Bob", "primary"), "hr", "E2"),
		owned(active("carol", "partners"), "ldap", "E1"), // the same external id, another source
		active("Dan", "primary"),                         // unowned
		owned(blocked("erin", "primary", model.ReasonLicense, at(3*time.Minute)), "hr", "E5"),
		owned(blocked("fred", "partners", model.ReasonLicense, at(time.Minute)), "ldap", "E6"),
		owned(blocked("gina", "elsewhere", model.ReasonLicense, at(time.Minute)), "hr", "E7"),
		owned(blocked("hank", "primary", model.ReasonLeftSource, time.Time{}), "hr", "E8"),
		owned(blocked("ivy", "primary", model.ReasonLeftSource, time.Time{}), "ldap", "E9"),
		owned(blocked("jack", "primary", model.ReasonAdmin, time.Time{}), "hr", "E10"),
		owned(active("Admin", "primary"), "hr", "E11"),
	}
	ps[7].BlockedAt, ps[8].BlockedAt = at(time.Hour), at(3*time.Hour)
	ptrs := make([]*model.Profile, len(ps))
	for i := range ps {
		ptrs[i] = &ps[i]
	}
	insert(t, s, ptrs...)

	tests := []struct {
		name string
		sel  store.Selection
		want []string
	}{
		{"nothing", store.Selection{}, nil},
		{"by key", store.Selection{Keys: []store.Key{key("hr", "E1"), key("ldap", "E6"), key("hr", "nobody"), key("", "E1")}},
			[]string{"alice", "fred"}},
		{"key of another source", store.Selection{Keys: []store.Key{key("ldap", "E2")}}, nil},
		{"by username, any case", store.Selection{Usernames: []string{"BOB", "dan", "zed"}}, []string{"Bob", "Dan"}},
		{"queue of areas", store.Selection{Areas: []string{"primary", "partners"}}, []string{"erin", "fred"}},
		{"left before", store.Selection{Areas: []string{"primary"}, Left: map[string]time.Time{"hr": at(2 * time.Hour), "ldap": at(2 * time.Hour)}},
			[]string{"erin", "hank"}},
		{"left at the time", store.Selection{Areas: []string{"primary"}, Left: map[string]time.Time{"ldap": at(3 * time.Hour)}},
			[]string{"erin", "ivy"}},
		{"each once", store.Selection{Keys: []store.Key{key("hr", "E5")}, Usernames: []string{"Erin", "alice"}, Areas: []string{"primary"}},
			[]string{"alice", "erin"}},
	}
	for _, tc := range tests {
		got, err := s.Select(ctx, tc.sel)
		if err != nil {
			t.Fatalf("Select %s: %v", tc.name, err)
		}
		if names := usernames(got); !slices.Equal(names, tc.want) {
			t.Errorf("Select %s = %q, want %q", tc.name, names, tc.want)
		}
		for _, p := range got {
			want := ps[slices.IndexFunc(ps, func(q model.Profile) bool { return q.Username == p.Username })]
			if p.ID != want.ID || p.Version != want.Version || p.Email != want.Email || !p.BlockedAt.Equal(want.BlockedAt) {
				t.Errorf("Select %s: %s reads back as %+v, want %+v", tc.name, p.Username, p, want)
			}
		}
	}

	tally, err := s.Tally(ctx, store.TallyRequest{
		Pools:   [][]string{{"primary"}, {"partners", "elsewhere"}, {}},
		Exempt:  []string{"ADMIN"},
		Sources: []string{"hr", "ldap", "nowhere", ""},
	})
	if err != nil {
		t.Fatalf("Tally: %v", err)
	}
	if want := []int{3, 1, 0}; !slices.Equal(tally.Active, want) {
		t.Errorf("Tally active = %v, want %v", tally.Active, want)
	}
	if want := []int{7, 3, 0, 0}; !slices.Equal(tally.Owned, want) {
		t.Errorf("Tally owned = %v, want %v", tally.Owned, want)
	}
}

// checkCounts checks, after every test of the suite, that Tally counts
// what the profiles hold: a store that keeps its counts beside the
// profiles must keep them through every write a test made.
func checkCounts(t *testing.T, s store.Store) {
	t.Helper()
	ps, err := s.Profiles(t.Context())
	if err != nil {
		t.Fatalf("read profiles to check the counts: %v", err)
	}
	areas := []string{"primary", "partners", "suppliers", "elsewhere", "other", "nowhere", ""}
	sources := []string{"hr", "ldap", "okta", "csv", "other", "nowhere"}
	active, owned := map[string]int{}, map[string]int{}
	for _, p := range ps {
		if !slices.Contains(areas, p.Area) {
			areas = append(areas, p.Area)
		}
		if p.State == model.Active {
			active[p.Area]++
		}
		if p.Source != "" {
			if !slices.Contains(sources, p.Source) {
				sources = append(sources, p.Source)
			}
			owned[p.Source]++
		}
	}
	req := store.TallyRequest{Sources: sources}
	for _, a := range areas {
		req.Pools = append(req.Pools, []string{a})
	}
	tally, err := s.Tally(t.Context(), req)
	if err != nil {
		t.Fatalf("Tally: %v", err)
	}
	for i, a := range areas {
		if tally.Active[i] != active[a] {
			t.Errorf("after the test, Tally counts %d active profiles in area %q; the profiles hold %d", tally.Active[i], a, active[a])
		}
	}
	for i, src := range sources {
		if tally.Owned[i] != owned[src] {
			t.Errorf("after the test, Tally counts %d profiles of source %q; the profiles hold %d", tally.Owned[i], src, owned[src])
		}
	}
}
