package main

import (
	"context"
	"fmt"
	"time"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store/sqlite"
)

// otherSource owns the profiles the big store adds; the timed runs never
// pull it.
const otherSource = "hr"

// fillBig copies the store at from into a new store at to, as `seatsync
// store migrate` would (Export, Import: the same profiles, runs, audit log,
// seat history and cursor), with more profiles of otherSource, all active
// in the same area. The store then looks as it would after a first sync of
// both sources, but for the audit entries of those extra profiles.
func fillBig(from, to string, more int) error {
	ctx := context.Background()
	src, err := sqlite.Open(ctx, from)
	if err != nil {
		return err
	}
	defer src.Close()
	snap, err := src.Export(ctx)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	next := snap.NextProfileID
	for _, p := range snap.Profiles {
		next = max(next, p.ID+1)
	}
	profiles := make([]model.Profile, 0, len(snap.Profiles)+more)
	profiles = append(profiles, snap.Profiles...)
	for i := range more {
		profiles = append(profiles, model.Profile{
			ID: next + int64(i), Version: 1,
			Username: fmt.Sprintf("hr%07d", i), Email: fmt.Sprintf("hr%07d@example.com", i),
			GivenName: fmt.Sprintf("Given%d", i), FamilyName: fmt.Sprintf("Family%d", i),
			DisplayName: fmt.Sprintf("Given%d Family%d", i, i),
			Title:       fmt.Sprintf("Title %d", i%50), Department: fmt.Sprintf("Dept%d", i%20),
			Groups: []string{}, Area: "primary", State: model.Active,
			Source: otherSource, ExternalID: fmt.Sprintf("E%07d", i),
			ActivatedAt: now, CreatedAt: now, UpdatedAt: now,
		})
	}
	snap.Profiles = profiles
	snap.NextProfileID = next + int64(more)
	dst, err := sqlite.Open(ctx, to)
	if err != nil {
		return err
	}
	if err := dst.Import(ctx, snap); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
