package store

import "github.com/seatsync/seatsync/model"

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
