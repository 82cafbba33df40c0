package store

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/seatsync/seatsync/model"
)

// ErrNotEmpty is returned by Import into a store that already holds
// profiles, runs, audit entries or seat history.
var ErrNotEmpty = errors.New("the store is not empty")

// Snapshot is everything a store holds but its run lock, as seatsync store
// migrate copies it from one store to another. IDs and sequence numbers
// are kept, so target links, pending pushes and audit order survive the
// move.
type Snapshot struct {
	// Profiles in any order, with their IDs and versions.
	Profiles []model.Profile
	// NextProfileID is the lowest ID the store may give a new profile:
	// IDs of deleted profiles are never given again.
	NextProfileID int64
	Episodes      map[string]Episode
	Values        []KeptValue
	Targets       []TargetState
	// Seats is the seat history, oldest first (SeatHistory).
	Seats []SeatRow
	// Grants are the product grants, as Store.Grants returns them.
	Grants []Grant
	// Runs are the recorded runs, oldest first, with their reports; Audit
	// is the audit log in the order it was written, Seq kept. Both read
	// from the store as they are iterated, so neither is held whole.
	Runs  iter.Seq2[Run, error]
	Audit iter.Seq2[AuditEntry, error]
}

// KeptValue is one Value of a store.
type KeptValue struct {
	Key, Value string
	At         time.Time
}

// TargetState is what a store knows of one target.
type TargetState struct {
	Name     string
	SeededAt time.Time // zero when SeedTarget never ran for it
	Memory   string
	MemoryAt time.Time
	// Pending pushes with their Seq, attempts and failures; Profile is
	// not imported (it is read from the profiles), Gone is.
	Pending []Pending
	Links   map[int64]Link
}

// Exporter is a store whose whole content can be read as a Snapshot.
type Exporter interface {
	Export(ctx context.Context) (*Snapshot, error)
}

// Importer is a store that can be filled from a Snapshot, all of it or
// nothing. It refuses (ErrNotEmpty) when it holds profiles, runs or audit
// entries already.
type Importer interface {
	Import(ctx context.Context, s *Snapshot) error
}

// Census counts what a snapshot holds, so that a copy can be checked
// against its original.
type Census struct {
	Profiles int `json:"profiles"`
	// Queued counts the profiles blocked for a licence: the queue.
	Queued   int `json:"queued"`
	Audit    int `json:"audit"`
	Runs     int `json:"runs"`
	Episodes int `json:"episodes"`
	Values   int `json:"values"`
	// Seats counts the rows of the seat history.
	Seats int `json:"seats"`
	// Grants counts the product grants, held and queued.
	Grants int `json:"grants"`
	// Pending and Links count each target's pending pushes and links,
	// leaving out the targets with none.
	Pending map[string]int `json:"pending"`
	Links   map[string]int `json:"links"`
	// LastAudit and LastRun are the newest audit sequence number and run
	// ID, so that two stores with the same counts but other content tell
	// apart at their ends.
	LastAudit int64  `json:"last_audit"`
	LastRun   string `json:"last_run"`
}

// Count reads s through and counts it.
func Count(s *Snapshot) (Census, error) {
	c := Census{Profiles: len(s.Profiles), Episodes: len(s.Episodes), Values: len(s.Values),
		Seats: len(s.Seats), Grants: len(s.Grants), Pending: map[string]int{}, Links: map[string]int{}}
	for _, p := range s.Profiles {
		if p.State == model.Blocked && p.BlockReason == model.ReasonLicense {
			c.Queued++
		}
	}
	for _, t := range s.Targets {
		if len(t.Pending) > 0 {
			c.Pending[t.Name] = len(t.Pending)
		}
		if len(t.Links) > 0 {
			c.Links[t.Name] = len(t.Links)
		}
	}
	for e, err := range s.Audit {
		if err != nil {
			return Census{}, fmt.Errorf("read the audit log: %w", err)
		}
		c.Audit, c.LastAudit = c.Audit+1, e.Seq
	}
	for r, err := range s.Runs {
		if err != nil {
			return Census{}, fmt.Errorf("read the runs: %w", err)
		}
		c.Runs, c.LastRun = c.Runs+1, r.ID
	}
	return c, nil
}

// Copy copies everything from into to, which must be empty, then reads
// both back and checks that they hold the same. It returns the census of
// the copy.
func Copy(ctx context.Context, from Exporter, to interface {
	Exporter
	Importer
}) (Census, error) {
	snap, err := from.Export(ctx)
	if err != nil {
		return Census{}, fmt.Errorf("read the source store: %w", err)
	}
	if err := to.Import(ctx, snap); err != nil {
		return Census{}, fmt.Errorf("write the destination store: %w", err)
	}
	if snap, err = from.Export(ctx); err != nil {
		return Census{}, fmt.Errorf("read the source store again: %w", err)
	}
	want, err := Count(snap)
	if err != nil {
		return Census{}, fmt.Errorf("count the source store: %w", err)
	}
	copied, err := to.Export(ctx)
	if err != nil {
		return Census{}, fmt.Errorf("read the destination store back: %w", err)
	}
	got, err := Count(copied)
	if err != nil {
		return Census{}, fmt.Errorf("count the destination store: %w", err)
	}
	if err := sameCensus(want, got); err != nil {
		return got, fmt.Errorf("the copy does not match the source (did something write to the source while it was copied?): %w", err)
	}
	return got, nil
}

func sameCensus(want, got Census) error {
	var diffs []error
	check := func(what string, w, g any) {
		if w != g {
			diffs = append(diffs, fmt.Errorf("%s: source %v, copy %v", what, w, g))
		}
	}
	check("profiles", want.Profiles, got.Profiles)
	check("queued profiles", want.Queued, got.Queued)
	check("audit entries", want.Audit, got.Audit)
	check("last audit entry", want.LastAudit, got.LastAudit)
	check("runs", want.Runs, got.Runs)
	check("last run", want.LastRun, got.LastRun)
	check("notification episodes", want.Episodes, got.Episodes)
	check("kept values", want.Values, got.Values)
	check("seat history rows", want.Seats, got.Seats)
	check("product grants", want.Grants, got.Grants)
	for t, n := range want.Pending {
		check("pending pushes of target "+t, n, got.Pending[t])
	}
	for t, n := range want.Links {
		check("links of target "+t, n, got.Links[t])
	}
	check("targets with pending pushes", len(want.Pending), len(got.Pending))
	check("targets with links", len(want.Links), len(got.Links))
	return errors.Join(diffs...)
}

// RunsOldestFirst yields the runs list gives (oldest first, without
// reports), each read whole by read when it is reached: a store's
// Snapshot.Runs.
func RunsOldestFirst(list func() ([]Run, error), read func(id string) (Run, error)) iter.Seq2[Run, error] {
	return func(yield func(Run, error) bool) {
		runs, err := list()
		if err != nil {
			yield(Run{}, err)
			return
		}
		for _, r := range runs {
			full, err := read(r.ID)
			if !yield(full, err) || err != nil {
				return
			}
		}
	}
}

// AuditInPages yields an audit log a page of size entries at a time:
// page returns the entries after seq after, in order. A store's
// Snapshot.Audit.
func AuditInPages(size int, page func(after int64, size int) ([]AuditEntry, error)) iter.Seq2[AuditEntry, error] {
	return func(yield func(AuditEntry, error) bool) {
		var after int64
		for {
			entries, err := page(after, size)
			if err != nil {
				yield(AuditEntry{}, fmt.Errorf("read the audit log: %w", err))
				return
			}
			for _, e := range entries {
				if !yield(e, nil) {
					return
				}
			}
			if len(entries) < size {
				return
			}
			after = entries[len(entries)-1].Seq
		}
	}
}

// FillTargets reads each target's pending pushes and links into ts.
func FillTargets(ctx context.Context, s TargetStore, ts []TargetState) error {
	for i := range ts {
		var err error
		if ts[i].Pending, err = s.Pending(ctx, ts[i].Name); err != nil {
			return err
		}
		if ts[i].Links, err = s.Links(ctx, ts[i].Name); err != nil {
			return err
		}
	}
	return nil
}
