package target

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// Drift is what `targets verify` found in one application: how it differs
// from the store. Usernames are sorted.
type Drift struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Users is every user of the application; Managed those seatsync
	// created or linked; Unmanaged the others, which are never changed.
	Users           int `json:"users"`
	Managed         int `json:"managed"`
	Unmanaged       int `json:"unmanaged"`
	UnmanagedActive int `json:"unmanaged_active"`
	// Missing: profiles of the target's areas with no user in the
	// application (never pushed, or deleted there).
	Missing []string `json:"missing"`
	// SeatLeaks: users active in the application whose profile is blocked
	// or deleted.
	SeatLeaks []string `json:"seat_leaks"`
	// Inactive: users inactive in the application whose profile is active.
	Inactive []string `json:"inactive"`
	// Changed: users whose attributes differ from their profile's.
	Changed []Changed `json:"changed"`
	// Unlinked: profiles with no link whose userName an application user
	// has; linked by --fix when the target adopts.
	Unlinked []string `json:"unlinked"`

	// fixes are what Fix would do, found by the same pass.
	fixes []fix
}

// Changed is one user whose attributes differ.
type Changed struct {
	Username   string   `json:"username"`
	Attributes []string `json:"attributes"`
}

// Count is the number of differences.
func (d *Drift) Count() int {
	return len(d.Missing) + len(d.SeatLeaks) + len(d.Inactive) + len(d.Changed) + len(d.Unlinked)
}

// Deprovisions counts the deactivations a fix would make, which the
// deprovision guard limits.
func (d *Drift) Deprovisions() int { return len(d.SeatLeaks) }

// fix is what Verify would have to do to one profile or link.
type fix struct {
	profileID int64
	link      *store.Link // the link as the application really is; nil to leave it
}

// Verifier compares a target's application with the store.
type Verifier struct {
	Store store.Store
}

// Verify reads every user of the application through c and compares it
// with the profiles of the target's areas and the links, and returns the
// drift found; Fix then puts it right.
func (v *Verifier) Verify(ctx context.Context, cfg Config, c Client) (Drift, error) {
	d := Drift{Name: cfg.Name, Type: cfg.Type, Missing: []string{}, SeatLeaks: []string{}, Inactive: []string{},
		Changed: []Changed{}, Unlinked: []string{}}
	defer recall(ctx, v.Store, cfg.Name, c)()
	profiles, err := v.Store.Profiles(ctx)
	if err != nil {
		return d, err
	}
	links, err := v.Store.Links(ctx, cfg.Name)
	if err != nil {
		return d, err
	}
	users := map[string]User{}
	byName := map[string]User{}
	err = c.List(ctx, func(u User) error {
		users[u.ID] = u
		byName[model.FoldUsername(u.UserName)] = u
		return nil
	})
	if err != nil {
		return d, fmt.Errorf("read the application's users: %w", err)
	}
	d.Users = len(users)
	managed := map[string]bool{}
	for _, l := range links {
		if _, ok := users[l.AppID]; ok {
			managed[l.AppID] = true
		}
	}
	fixes := &d.fixes
	seen := map[int64]bool{}
	for i := range profiles {
		p := &profiles[i]
		seen[p.ID] = true
		l, linked := links[p.ID]
		if !cfg.Covers(p.Area) {
			if linked {
				if u, ok := users[l.AppID]; ok && u.Active {
					d.SeatLeaks = append(d.SeatLeaks, p.Username)
					*fixes = append(*fixes, fix{p.ID, actual(l, u)})
				}
			}
			continue
		}
		active := p.State == model.Active
		if !linked {
			if u, ok := byName[model.FoldUsername(p.Username)]; ok && !managed[u.ID] {
				d.Unlinked = append(d.Unlinked, p.Username)
			} else {
				d.Missing = append(d.Missing, p.Username)
			}
			*fixes = append(*fixes, fix{profileID: p.ID})
			continue
		}
		u, ok := users[l.AppID]
		switch {
		case !ok:
			d.Missing = append(d.Missing, p.Username)
		case u.Active && !active:
			d.SeatLeaks = append(d.SeatLeaks, p.Username)
		case !u.Active && active:
			d.Inactive = append(d.Inactive, p.Username)
		default:
			want := c.Render(p, active)
			if diff := differing(want, u.Attributes); len(diff) > 0 {
				d.Changed = append(d.Changed, Changed{Username: p.Username, Attributes: diff})
			} else {
				continue
			}
		}
		f := fix{profileID: p.ID, link: &l}
		if ok {
			f.link = actual(l, u)
		}
		*fixes = append(*fixes, f)
	}
	// Users of deleted profiles must stay inactive (or be gone).
	for id, l := range links {
		if seen[id] {
			continue
		}
		if u, ok := users[l.AppID]; ok && (u.Active || cfg.OnDelete == OnDeleteDelete) {
			d.SeatLeaks = append(d.SeatLeaks, l.Username)
			*fixes = append(*fixes, fix{id, actual(l, u)})
		}
	}
	d.Managed = len(managed)
	for id, u := range users {
		if !managed[id] {
			d.Unmanaged++
			if u.Active {
				d.UnmanagedActive++
			}
		}
	}
	for _, list := range []*[]string{&d.Missing, &d.SeatLeaks, &d.Inactive, &d.Unlinked} {
		slices.Sort(*list)
	}
	slices.SortFunc(d.Changed, func(a, b Changed) int { return compareStrings(a.Username, b.Username) })
	return d, nil
}

// Fix makes each profile d found drifted pending, with its link set to
// what the application really holds, so that the next push puts it
// right; the caller pushes. It uses what Verify read, without asking the
// application again.
func (v *Verifier) Fix(ctx context.Context, cfg Config, d Drift) error {
	if len(d.fixes) == 0 {
		return nil
	}
	return v.mark(ctx, cfg, d.fixes)
}

// actual is link l as the application really holds user u: the next push
// compares the profile with that, not with what seatsync last sent.
func actual(l store.Link, u User) *store.Link {
	l.ETag, l.Active, l.Username = u.ETag, u.Active, u.UserName
	l.Hash = Digest(u.Attributes)
	return &l
}

// mark makes the drifted profiles pending, with their links as found.
func (v *Verifier) mark(ctx context.Context, cfg Config, fixes []fix) error {
	for _, f := range fixes {
		if f.link != nil {
			if err := v.Store.SetLink(ctx, cfg.Name, f.profileID, *f.link); err != nil {
				return err
			}
		}
	}
	return v.Store.WithTx(ctx, func(tx store.Tx) error {
		for _, f := range fixes {
			if err := tx.MarkPending(ctx, cfg.Name, f.profileID, nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// differing lists the attributes whose values differ, sorted.
func differing(want, got map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if want[k] != got[k] {
			out = append(out, k)
		}
	}
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
