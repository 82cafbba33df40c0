package store

import (
	"fmt"

	"github.com/seatsync/seatsync/model"
)

// CountKey is one row of the profile counts a store keeps beside its
// profiles (profile_counts), so that Tally and Tx.CountActive read a
// handful of rows instead of counting an index: how many profiles of an
// area and an owner source are active, or not.
type CountKey struct {
	Area, Source string
	Active       bool
}

// CountChanges are the changes a transaction makes to the profile counts,
// kept until it writes them: once per key, not once per profile.
type CountChanges map[CountKey]int

// Add counts p in (n = 1) or out (n = -1).
func (c CountChanges) Add(p *model.Profile, n int) {
	c.AddKey(CountKey{Area: p.Area, Source: p.Source, Active: p.State == model.Active}, n)
}

// AddKey counts n profiles of k in (or out, when n < 0).
func (c CountChanges) AddKey(k CountKey, n int) {
	if c[k] += n; c[k] == 0 {
		delete(c, k)
	}
}

// TallyWith answers req with a store's two counts: active, the seats a
// pool's areas hold but the exempt usernames' (folded), and owned, the
// profiles of one source.
func TallyWith(req TallyRequest, active func(areas, exempt []string) (int, error), owned func(source string) (int, error)) (Tally, error) {
	t := Tally{Active: make([]int, len(req.Pools)), Owned: make([]int, len(req.Sources))}
	folded := make([]string, len(req.Exempt))
	for i, u := range req.Exempt {
		folded[i] = model.FoldUsername(u)
	}
	var err error
	for i, areas := range req.Pools {
		if t.Active[i], err = active(areas, folded); err != nil {
			return Tally{}, fmt.Errorf("count active profiles: %w", err)
		}
	}
	for i, src := range req.Sources {
		if t.Owned[i], err = owned(src); err != nil {
			return Tally{}, fmt.Errorf("count the profiles of source %s: %w", src, err)
		}
	}
	return t, nil
}
