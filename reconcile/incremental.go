package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
// incremental reads go on from: a Cursor.
func CursorKey(source string) string { return "cursor/" + source }

// Cursor is what the runner keeps of a source's incremental reads. It is
// kept as a line of text (cursorMagic, Config, FullAt), then the
// position as the connector gave it: a position can be megabytes (an
// OpenLDAP cursor knows everyone), and goes through no JSON encoding.
type Cursor struct {
	// Position is the connector's cursor: a DirSync or sync cookie, an
	// Okta timestamp, a csv file's fingerprint.
	Position string
	// Config is a digest of the source's configuration when the position
	// was taken: a source configured otherwise since (a mapping, an area
	// rule, another base) is read in full, so that the change reaches
	// everyone, not only the people who change next.
	Config string
	// FullAt is when the source was last read in full; the next full read
	// is due at the first time of its full_schedule after it.
	FullAt time.Time
}

const cursorMagic = "seatsync-cursor1"

func (c Cursor) String() string {
	return cursorMagic + " " + c.Config + " " + c.FullAt.UTC().Format(time.RFC3339Nano) + "\n" + c.Position
}

// ParseCursor reads what Cursor.String wrote.
func ParseCursor(text string) (Cursor, error) {
	head, pos, _ := strings.Cut(text, "\n")
	f := strings.Fields(head)
	if len(f) != 3 || f[0] != cursorMagic || pos == "" {
		return Cursor{}, errors.New("not a seatsync cursor")
	}
	at, err := time.Parse(time.RFC3339Nano, f[2])
	if err != nil {
		return Cursor{}, fmt.Errorf("its full read time: %w", err)
	}
	return Cursor{Position: pos, Config: f[1], FullAt: at}, nil
}

// readPlan is how one source is read in one run.
type readPlan struct {
	inc      connector.Incremental // nil: Pull, in full, as always
	position string                // "" reads in full
	fallback string                // why a kept position is not used
	config   string
	fullAt   time.Time
	// asked is why the store asks for a full read (store.FullReadKey),
	// cleared once a full read is committed.
	asked string
	// broken is the read's error when it found the cursor unusable part
	// way (connector.ErrCursor).
	broken error
}

// askFullReads has the next run read in full the sources whose read
// found their cursor unusable part way (a sync that failed for it: a
// plan writes nothing).
func (r *Runner) askFullReads(ctx context.Context, log *zap.Logger, reads []readPlan, sources []config.Source) {
	for i, rp := range reads {
		if rp.broken == nil {
			continue
		}
		why := fmt.Sprintf("the last read could not use the cursor: %v", rp.broken)
		if err := r.Store.SetValue(ctx, store.FullReadKey(sources[i].Name), why); err != nil {
			log.Error("ask for a full read of the source", zap.String("source", sources[i].Name), zap.Error(err))
		}
	}
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
	b, err := json.Marshal(sc) // Settings, the type's own keys, included
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
	if rp.asked, _, err = r.Store.Value(ctx, store.FullReadKey(sc.Name)); err != nil {
		return readPlan{}, fmt.Errorf("read whether source %s is to be read in full: %w", sc.Name, err)
	}
	if raw == "" || full {
		return rp, nil
	}
	if rp.asked != "" {
		rp.fallback = rp.asked
		return rp, nil
	}
	cur, err := ParseCursor(raw)
	if err != nil {
		rp.fallback = fmt.Sprintf("the kept cursor of the source is unreadable (%v)", err)
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
// source's incremental read got to. Two kinds of source keep their old
// cursor, so that the next run reads the same changes again: one with a
// change the apply left for the next run (a conflict), and one whose
// delete notices this run could not act on, because an entry whose
// external id could not be read suspended its leavers (that entry, read
// again, may be readable then).
func (r *Runner) saveCursors(ctx context.Context, log *zap.Logger, rep *Report, plan *Plan, reads []readPlan, results []connector.Result, sources []config.Source) error {
	left := map[string]bool{}
	for i := range rep.Changes {
		if rep.Changes[i].Result == ResultConflict {
			left[rep.Changes[i].Source] = true
		}
	}
	for i, rp := range reads {
		res, name := results[i], sources[i].Name
		if rp.inc == nil || res.Cursor == "" {
			continue
		}
		src := &rep.Sources[i]
		switch {
		case left[name]:
			log.Warn("a change of the source was left for the next run: its cursor stays, so that the next run reads it again",
				zap.String("source", name))
			continue
		case !src.Full && src.Deletes > 0 && src.LeavesSuspended != "":
			log.Warn("the source's delete notices wait while its leavers are suspended: its cursor stays, so that the next run reads them again",
				zap.String("source", name))
			continue
		}
		if err := r.wantFullRead(ctx, log, rep, plan.Wanted[i], name, res.Full); err != nil {
			return err
		}
		if res.Full && rp.asked != "" {
			if err := r.Store.SetValue(ctx, store.FullReadKey(name), ""); err != nil {
				return fmt.Errorf("source %s: %w", name, err)
			}
		}
		if !res.Full && res.Cursor == rp.position {
			continue // nothing moved: a no-op run writes nothing
		}
		cur := Cursor{Position: res.Cursor, Config: rp.config, FullAt: rp.fullAt}
		if res.Full {
			cur.FullAt = rep.StartedAt
		}
		if err := r.Store.SetValue(ctx, CursorKey(name), cur.String()); err != nil {
			return fmt.Errorf("keep the cursor of source %s: %w", name, err)
		}
	}
	return nil
}

// wantedKey is the store value holding the usernames (folded, one a line)
// that entries of a source skipped for a taken username want.
func wantedKey(source string) string { return "wanted-names/" + source }

// wantFullRead keeps the usernames source's skipped entries want (this
// read's; with a read of changes, also those kept before, since the
// entries were not read again), and asks for a full read of the source
// next when this run freed one of them: a full run would give the name at
// once, and a read of changes would not read the entry that wants it.
func (r *Runner) wantFullRead(ctx context.Context, log *zap.Logger, rep *Report, wanted []string, source string, full bool) error {
	if len(wanted) == 0 && !full && !freesNames(rep) {
		return nil // the kept names stand, and none was freed: nothing to read or write
	}
	key := wantedKey(source)
	kept, _, err := r.Store.Value(ctx, key)
	if err != nil {
		return fmt.Errorf("source %s: %w", source, err)
	}
	names := map[string]bool{}
	for _, n := range wanted {
		names[n] = true
	}
	if !full {
		for _, n := range strings.Split(kept, "\n") {
			names[n] = n != ""
		}
	}
	var freed string
	for i := range rep.Changes {
		ch := &rep.Changes[i]
		if ch.Result != ResultApplied || ch.Before == nil {
			continue
		}
		name := model.FoldUsername(ch.Before.Username)
		if (ch.After == nil || model.FoldUsername(ch.After.Username) != name) && names[name] {
			freed = ch.Before.Username
			delete(names, name)
		}
	}
	if freed != "" {
		why := fmt.Sprintf("run %s freed the username %s, which an entry of the source skipped earlier wants", rep.RunID, freed)
		log.Info("a username a skipped entry wants was freed: the source is read in full next", zap.String("source", source), zap.String("username", freed))
		if err := r.Store.SetValue(ctx, store.FullReadKey(source), why); err != nil {
			return fmt.Errorf("source %s: %w", source, err)
		}
	}
	list := make([]string, 0, len(names))
	for n, ok := range names {
		if ok {
			list = append(list, n)
		}
	}
	slices.Sort(list)
	if text := strings.Join(list, "\n"); text != kept {
		if err := r.Store.SetValue(ctx, key, text); err != nil {
			return fmt.Errorf("source %s: %w", source, err)
		}
	}
	return nil
}

// freesNames reports whether the run applied a rename or a delete: the
// only changes that free a username.
func freesNames(rep *Report) bool {
	for i := range rep.Changes {
		ch := &rep.Changes[i]
		if ch.Result == ResultApplied && ch.Before != nil &&
			(ch.After == nil || model.FoldUsername(ch.After.Username) != model.FoldUsername(ch.Before.Username)) {
			return true
		}
	}
	return false
}
