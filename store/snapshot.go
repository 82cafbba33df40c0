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

// ExportParts are the reads a store's Export needs beyond the Store
// interface: each driver's own queries. ExportWith does the rest.
type ExportParts struct {
	// NextProfileID is the lowest ID the store may give a new profile.
	NextProfileID func() (int64, error)
	Values        func() ([]KeptValue, error)
	// Targets names every target the store knows of, with what it keeps
	// of each but the pending pushes and links, which ExportWith reads.
	Targets func() ([]TargetState, error)
	// RunsByStart lists the runs oldest first, without reports.
	RunsByStart func() ([]Run, error)
	// AuditAfter returns up to n audit entries after seq after, in order.
	AuditAfter func(after int64, n int) ([]AuditEntry, error)
}

// auditPage is how many audit entries a snapshot reads at a time.
const auditPage = 2000

// ExportWith reads s whole as a Snapshot, with p for what the Store
// interface does not read. The runs and the audit log are read as they
// are iterated.
func ExportWith(ctx context.Context, s Store, p ExportParts) (*Snapshot, error) {
	snap := &Snapshot{}
	var err error
	if snap.Profiles, err = s.Profiles(ctx); err != nil {
		return nil, err
	}
	if snap.NextProfileID, err = p.NextProfileID(); err != nil {
		return nil, err
	}
	if snap.Episodes, err = s.Episodes(ctx); err != nil {
		return nil, err
	}
	if snap.Values, err = p.Values(); err != nil {
		return nil, err
	}
	if snap.Targets, err = p.Targets(); err != nil {
		return nil, err
	}
	for i := range snap.Targets {
		t := &snap.Targets[i]
		if t.Pending, err = s.Pending(ctx, t.Name); err != nil {
			return nil, err
		}
		if t.Links, err = s.Links(ctx, t.Name); err != nil {
			return nil, err
		}
	}
	if snap.Grants, err = s.Grants(ctx); err != nil {
		return nil, err
	}
	if snap.Seats, err = s.SeatHistory(ctx, time.Time{}); err != nil {
		return nil, err
	}
	snap.Runs = func(yield func(Run, error) bool) {
		runs, err := p.RunsByStart()
		if err != nil {
			yield(Run{}, err)
			return
		}
		for _, r := range runs {
			full, err := s.Run(ctx, r.ID)
			if !yield(full, err) || err != nil {
				return
			}
		}
	}
	snap.Audit = func(yield func(AuditEntry, error) bool) {
		var after int64
		for {
			entries, err := p.AuditAfter(after, auditPage)
			if err != nil {
				yield(AuditEntry{}, fmt.Errorf("read the audit log: %w", err))
				return
			}
			for _, e := range entries {
				if !yield(e, nil) {
					return
				}
			}
			if len(entries) < auditPage {
				return
			}
			after = entries[len(entries)-1].Seq
		}
	}
	return snap, nil
}
