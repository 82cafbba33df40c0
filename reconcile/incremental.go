package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// CursorKey is the store value (Store.Value) that keeps where a source's
// incremental reads go on from: a Cursor, as JSON.
func CursorKey(source string) string { return "cursor/" + source }

// Cursor is what the runner keeps of a source's incremental reads.
type Cursor struct {
	// Position is the connector's cursor: a DirSync or sync cookie, an
	// Okta timestamp, a csv file's fingerprint.
	Position string `json:"position"`
	// Config is a digest of the source's configuration when the position
	// was taken: a source configured otherwise since (a mapping, an area
	// rule, another base) is read in full, so that the change reaches
	// everyone, not only the people who change next.
	Config string `json:"config"`
	// FullAt is when the source was last read in full; the next full read
	// is due at the first time of its full_schedule after it.
	FullAt time.Time `json:"full_at"`
}

// readPlan is how one source is read in one run.
type readPlan struct {
	inc      connector.Incremental // nil: Pull, in full, as always
	position string                // "" reads in full
	fallback string                // why a kept position is not used
	config   string
	fullAt   time.Time
}

// incrementalOf says whether source sc, opened as src, reads only what
// changed, and on which schedule it reads in full. A connector that can
// read changes and has no `incremental` key (csv) always does.
func incrementalOf(sc config.Source, src connector.Source) (connector.Incremental, string) {
	inc, ok := src.(connector.Incremental)
	if !ok {
		return nil, ""
	}
	if is, ok := sc.Settings.(config.IncrementalSettings); ok {
		on, full := is.IncrementalSync()
		if !on {
			return nil, ""
		}
		if strings.TrimSpace(full) == "" {
			full = config.DefaultFullSchedule
		}
		return inc, full
	}
	return inc, config.DefaultFullSchedule
}

// configDigest is a digest of a source's configuration, its own keys
// included, for Cursor.Config.
func configDigest(sc config.Source) string {
	b, err := json.Marshal(struct {
		Source   config.Source
		Settings config.Settings
	}{sc, sc.Settings})
	if err != nil {
		return "" // never equal to a kept digest: the source is read in full
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// planRead decides how source sc is read in this run: incrementally from
// its kept cursor, or in full (a first run, --full, its full_schedule, a
// configuration changed since the cursor was taken, a cursor the store
// cannot read).
func (r *Runner) planRead(ctx context.Context, sc config.Source, src connector.Source, full bool, now time.Time) (readPlan, error) {
	inc, schedule := incrementalOf(sc, src)
	if inc == nil {
		return readPlan{}, nil
	}
	rp := readPlan{inc: inc, config: configDigest(sc)}
	raw, _, err := r.Store.Value(ctx, CursorKey(sc.Name))
	if err != nil {
		return readPlan{}, fmt.Errorf("read the cursor of source %s: %w", sc.Name, err)
	}
	if raw == "" || full {
		return rp, nil
	}
	var cur Cursor
	if err := json.Unmarshal([]byte(raw), &cur); err != nil || cur.Position == "" {
		rp.fallback = "the kept cursor of the source is unreadable"
		return rp, nil
	}
	rp.fullAt = cur.FullAt
	if cur.Config != rp.config {
		rp.fallback = "the source's configuration changed since its last run"
		return rp, nil
	}
	sched, err := config.ParseSchedule(schedule)
	if err != nil {
		return readPlan{}, fmt.Errorf("source %s: full_schedule %q: %w", sc.Name, schedule, err)
	}
	if cur.FullAt.IsZero() || !sched.Next(cur.FullAt).After(now) {
		return rp, nil // a full read is due
	}
	rp.position = cur.Position
	return rp, nil
}

// readChanges reads src from rp's position into p, streaming identities
// to emit as a full Pull would.
func readChanges(ctx context.Context, rp readPlan, p *Pull, emit func(model.Identity) error, skip func(connector.Skip)) (connector.Result, error) {
	res, err := rp.inc.PullChanges(ctx, rp.position, connector.ChangeSink{
		Upsert: emit,
		Delete: func(id string) error {
			p.Deletes = append(p.Deletes, id)
			return nil
		},
		Skip: skip,
	})
	if err != nil {
		return res, err
	}
	p.Incremental = true
	p.Changes = !res.Full
	if !p.Changes {
		p.Deletes = nil // a full read: whoever it did not return has left
	}
	p.NoDeletes = p.Changes && res.NoDeletes
	p.Fallback = rp.fallback
	if res.Fallback != "" {
		p.Fallback = res.Fallback
	}
	return res, nil
}

// Touched is what a run whose pulls hold changes only reads from the
// store (Store.Select): the profiles of the identities read and of the
// delete notices, by external id; the profiles holding or adopting the
// usernames read (renames, collisions, adoption); every pool's licence
// queue; and the leavers delete_after may delete by now.
func Touched(pulls []Pull, pol *licensing.Policy, now time.Time) store.Selection {
	var sel store.Selection
	for _, p := range pulls {
		for i := range p.Identities {
			id := &p.Identities[i]
			if id.ExternalID != "" {
				sel.Keys = append(sel.Keys, store.Key{Source: p.Rules.Name, ExternalID: id.ExternalID})
			}
			if u := strings.TrimSpace(id.Username); u != "" {
				sel.Usernames = append(sel.Usernames, u)
			}
		}
		for _, id := range p.Deletes {
			sel.Keys = append(sel.Keys, store.Key{Source: p.Rules.Name, ExternalID: id})
		}
		if d := p.Rules.DeleteAfter; d > 0 {
			if sel.Left == nil {
				sel.Left = map[string]time.Time{}
			}
			sel.Left[p.Rules.Name] = now.Add(-d)
		}
	}
	for _, pool := range pol.Pools {
		sel.Areas = append(sel.Areas, pool.Areas...)
	}
	return sel
}

// touchedProfiles reads, for a run whose pulls all hold changes only, the
// profiles Touched names and the store's counts, so that the plan does
// work in proportion to the changes. It returns nil, nil when the plan
// needs every profile after all: per-product licences (their rules
// match over every profile), an overage on_overage: block_newest may
// block for, or a dry run with targets to count for.
func (r *Runner) touchedProfiles(ctx context.Context, mode string, pulls []Pull, pol *licensing.Policy, now time.Time) ([]model.Profile, *store.Tally, error) {
	for _, p := range pulls {
		if !p.Changes {
			return nil, nil, nil
		}
	}
	if len(pol.Products) > 0 || (mode != ModeSync && len(r.Config.Targets) > 0) {
		return nil, nil, nil
	}
	req := store.TallyRequest{Exempt: pol.Exempt()}
	for _, pool := range pol.Pools {
		req.Pools = append(req.Pools, pool.Areas)
	}
	for _, p := range pulls {
		req.Sources = append(req.Sources, p.Rules.Name)
	}
	tally, err := r.Store.Tally(ctx, req)
	if err != nil {
		return nil, nil, fmt.Errorf("count profiles: %w", err)
	}
	if pol.OnOverage == licensing.OverageBlockNewest {
		for i := range pol.Pools {
			if pol.Pools[i].Overage(tally.Active[i]) > 0 {
				return nil, nil, nil
			}
		}
	}
	profiles, err := r.Store.Select(ctx, Touched(pulls, pol, now))
	if err != nil {
		return nil, nil, fmt.Errorf("read profiles: %w", err)
	}
	return profiles, &tally, nil
}

// saveCursors keeps, once the run's changes are committed, where each
// source's incremental read got to. A source with a change the apply
// left for the next run (a conflict) keeps its old cursor, so that the
// next run reads that change again.
func (r *Runner) saveCursors(ctx context.Context, log *zap.Logger, rep *Report, reads []readPlan, results []connector.Result, sources []config.Source) error {
	left := map[string]bool{}
	for i := range rep.Changes {
		if rep.Changes[i].Result == ResultConflict {
			left[rep.Changes[i].Source] = true
		}
	}
	for i, rp := range reads {
		res := results[i]
		if rp.inc == nil || res.Cursor == "" {
			continue
		}
		name := sources[i].Name
		if left[name] {
			log.Warn("a change of the source was left for the next run: its cursor stays, so that the next run reads it again",
				zap.String("source", name))
			continue
		}
		cur := Cursor{Position: res.Cursor, Config: rp.config, FullAt: rp.fullAt}
		if res.Full {
			cur.FullAt = rep.StartedAt
		}
		b, err := json.Marshal(cur)
		if err == nil {
			err = r.Store.SetValue(ctx, CursorKey(name), string(b))
		}
		if err != nil {
			return fmt.Errorf("keep the cursor of source %s: %w", name, err)
		}
	}
	return nil
}
