package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/target"
)

// Change results, set by the apply.
const (
	ResultApplied  = "applied"
	ResultNoSeat   = "no_seat"
	ResultConflict = "conflict"
)

// apply writes the plan's changes in batches of store transactions, in an
// order chosen so that a crash at any point leaves a prefix of the same
// outcome (see applyOrder). Every seat taken is re-checked inside its
// transaction, so nothing that happened since the plan can push a pool
// over its limit. A failure rolls back the batch in flight; committed
// batches stay, and the next run finishes the job.
func (r *Runner) apply(ctx context.Context, log *zap.Logger, rep *Report, pol *licensing.Policy, now time.Time) error {
	order := applyOrder(rep.Changes, pol, now)
	size := r.BatchSize
	if size <= 0 {
		size = 5000
	}
	exempt := pol.Exempt()
	targets := r.targets()
	// What each change writes is built here, one change at a time.
	var scratch applyScratch
	// The report's changes are compressed for the run's record as their
	// batches commit, beside the apply.
	var gz *changesGzip
	if len(rep.Changes) > 0 {
		gz = rep.compressChanges()
		defer gz.finish()
	}
	for start := 0; start < len(order); start += size {
		batch := order[start:min(start+size, len(order))]
		err := r.Store.WithTx(ctx, func(tx store.Tx) error {
			seats := newSeatCheck(tx, pol, exempt)
			if err := seats.prepare(ctx, rep.Changes, batch); err != nil {
				return err
			}
			conflicts := false
			for _, ci := range batch {
				ch := &rep.Changes[ci]
				ch.Result = ""
				if err := applyOne(ctx, tx, seats, targets, rep.RunID, ch, &scratch, now); err != nil {
					return fmt.Errorf("apply %s %s: %w", ch.Action, ch.Username, err)
				}
				conflicts = conflicts || ch.Result == ResultConflict
			}
			if conflicts {
				// A seat this batch counted as freed may not have been.
				return seats.verify(ctx)
			}
			return nil
		})
		if err != nil {
			for _, ci := range batch {
				rep.Changes[ci].Result = "" // rolled back
			}
			rep.Summary = appliedSummary(rep)
			return fmt.Errorf("store: %w", err)
		}
		for _, ci := range batch {
			logChange(log, &rep.Changes[ci])
		}
		if gz != nil {
			gz.final(batch)
		}
	}
	if err := r.applyProducts(ctx, log, rep, pol, now, size); err != nil {
		rep.Summary = appliedSummary(rep)
		return err
	}
	rep.Summary = appliedSummary(rep)
	if rechecked(rep) {
		if err := r.recount(ctx, rep, pol); err != nil {
			return err
		}
	}
	return nil
}

// applyOrder returns change indexes in the order they are written:
//
//  1. changes that take no seat (blocks and deletes free one; updates and
//     people created disabled take none), so their seats are free for
//     what follows;
//  2. moves that take a seat in another pool: each frees one in the pool
//     it leaves;
//  3. the other changes that take a seat, in queue order;
//  4. people this run puts in the licence queue for the first time, in
//     queue order.
//
// The last two make a crash harmless to the queue. New people have no
// queue time until they are written; the next run gives the ones not yet
// written its own, later, time. Were someone queued written before the
// people who got seats ahead of them, the next run would find them
// waiting longer than those not yet written, and give them the seats. In
// this order, whatever a crash leaves written is a prefix of the whole,
// and the next run completes it to the same seats and the same queue.
func applyOrder(changes []Change, pol *licensing.Policy, now time.Time) []int {
	var free, moves, takers, queued []int
	for i := range changes {
		switch ch := &changes[i]; {
		case ch.IsProduct():
			// Written after every account change: see applyProducts.
		case ch.TakesSeat && ch.Before != nil && pol.HoldsSeat(ch.Before):
			moves = append(moves, i)
		case ch.TakesSeat:
			takers = append(takers, i)
		case newlyQueued(ch, pol):
			queued = append(queued, i)
		default:
			free = append(free, i)
		}
	}
	req := func(i int) licensing.Request {
		ch := &changes[i]
		q := now
		switch {
		case ch.After != nil && !ch.After.QueuedAt.IsZero():
			q = ch.After.QueuedAt
		case ch.Before != nil && !ch.Before.QueuedAt.IsZero():
			q = ch.Before.QueuedAt
		}
		return licensing.Request{Weight: pol.Weight(ch.After.Groups), QueuedAt: q, Username: ch.Username}
	}
	byQueue := func(a, b int) int { return licensing.Compare(req(a), req(b)) }
	slices.SortStableFunc(moves, byQueue)
	slices.SortStableFunc(takers, byQueue)
	slices.SortStableFunc(queued, byQueue)
	order := make([]int, 0, len(changes))
	return append(append(append(append(order, free...), moves...), takers...), queued...)
}

// newlyQueued reports whether the change puts into the licence queue a
// profile that was neither queued nor holding a seat. One that held a seat
// (blocked for an overage, or moved into a full pool) frees it, and is
// written with the changes that free seats.
func newlyQueued(ch *Change, pol *licensing.Policy) bool {
	a, b := ch.After, ch.Before
	if a == nil || a.State != model.Blocked || a.BlockReason != model.ReasonLicense {
		return false
	}
	return b == nil || !(b.State == model.Blocked && b.BlockReason == model.ReasonLicense) && !pol.HoldsSeat(b)
}

// seatCheck re-counts pools inside one transaction. A pool is counted once
// per transaction; seats the same transaction frees (a move out, a block)
// count as free, because the transaction commits whole or not at all.
// verify counts again before commit when a freeing write was skipped as a
// conflict.
type seatCheck struct {
	tx       store.Tx
	pol      *licensing.Policy
	exempt   []string
	counted  map[int]int // pool -> active at the start of the transaction
	taken    map[int]int
	releases map[int]int
}

func newSeatCheck(tx store.Tx, pol *licensing.Policy, exempt []string) *seatCheck {
	return &seatCheck{tx: tx, pol: pol, exempt: exempt, counted: map[int]int{}, taken: map[int]int{}, releases: map[int]int{}}
}

// prepare counts, before the transaction writes anything, the pools its
// changes take seats in, and notes the seats its changes free.
func (s *seatCheck) prepare(ctx context.Context, changes []Change, batch []int) error {
	for _, ci := range batch {
		ch := &changes[ci]
		if ch.TakesSeat {
			// An unlimited pool has no seats to count: take never asks.
			if pi := s.pol.PoolIndex(ch.After.Area); !s.pol.Pools[pi].Unlimited {
				if _, err := s.count(ctx, pi); err != nil {
					return err
				}
			}
		}
		if ch.Before == nil || !s.pol.HoldsSeat(ch.Before) {
			continue
		}
		pi := s.pol.PoolIndex(ch.Before.Area)
		if ch.After == nil || !s.pol.HoldsSeat(ch.After) || s.pol.PoolIndex(ch.After.Area) != pi {
			s.releases[pi]++
		}
	}
	return nil
}

func (s *seatCheck) count(ctx context.Context, pi int) (int, error) {
	if n, ok := s.counted[pi]; ok {
		return n, nil
	}
	pool := &s.pol.Pools[pi]
	n, err := s.tx.CountActive(ctx, pool.Areas, s.exempt)
	if err != nil {
		return 0, fmt.Errorf("count seats of pool %s: %w", pool.Name, err)
	}
	s.counted[pi] = n
	return n, nil
}

func (s *seatCheck) take(ctx context.Context, area string) (bool, error) {
	pi := s.pol.PoolIndex(area)
	if s.pol.Pools[pi].Unlimited {
		return true, nil
	}
	used, err := s.count(ctx, pi)
	if err != nil {
		return false, err
	}
	if !s.pol.Pools[pi].HasRoom(used + s.taken[pi] - s.releases[pi]) {
		return false, nil
	}
	s.taken[pi]++
	return true, nil
}

// verify makes sure no pool this transaction gave seats in ends over its
// capacity by its doing.
func (s *seatCheck) verify(ctx context.Context) error {
	for pi, n := range s.taken {
		if n == 0 {
			continue
		}
		pool := &s.pol.Pools[pi]
		used, err := s.tx.CountActive(ctx, pool.Areas, s.exempt)
		if err != nil {
			return fmt.Errorf("count seats of pool %s: %w", pool.Name, err)
		}
		if !pool.HasRoom(used-1) && used > s.counted[pi] {
			return fmt.Errorf("pool %s would end the transaction with %d seats used of %d: rolled back", pool.Name, used, pool.Capacity())
		}
	}
	return nil
}

// applyOne writes one change and its audit entry. A profile that changed
// since the plan is a conflict: the change is left for the next run.
// scratch is where the profile and the audit entry to write are put
// together; the plan's After is left as it is.
func applyOne(ctx context.Context, tx store.Tx, seats *seatCheck, targets []target.Config, runID string, ch *Change, scratch *applyScratch, now time.Time) error {
	var after *model.Profile
	if ch.After != nil {
		scratch.profile = *ch.After // the store never changes slices or maps in place
		after = &scratch.profile
		after.UpdatedAt = now
	}
	result := ResultApplied
	if ch.TakesSeat {
		ok, err := seats.take(ctx, after.Area)
		if err != nil {
			return err
		}
		if !ok {
			result = ResultNoSeat
			demote(after, ch.Before, now)
			ch.State, ch.Reason, ch.QueuePosition = after.State, string(after.BlockReason), 0
			if ch.Before != nil && profileEqual(ch.Before, after) {
				ch.Result = result // still queued, nothing else changed
				return nil
			}
		}
	}
	var err error
	switch {
	case ch.Before == nil:
		after.CreatedAt = now
		err = tx.Insert(ctx, after)
	case after == nil:
		err = tx.Delete(ctx, *ch.Before)
	default:
		after.ID, after.Version = ch.Before.ID, ch.Before.Version
		err = tx.Update(ctx, after)
	}
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrDuplicate) {
		ch.Result = ResultConflict
		return nil
	}
	if err != nil {
		return err
	}
	ch.Result = result
	if after != nil {
		ch.id = after.ID
	}
	if ch.Before != nil && ch.Before.State == model.Active && (after == nil || after.State != model.Active) {
		// Only active profiles hold product licences: the block (or the
		// delete, whose store drops them itself) takes them in its own
		// transaction, so no crash leaves a blocked profile holding one.
		// The plan's recalls then find them gone.
		if err := dropGrants(ctx, tx, ch.Before.ID, after == nil); err != nil {
			return err
		}
	}
	if err := target.MarkPending(ctx, tx, targets, ch.Before, after); err != nil {
		return err
	}
	e, buf := store.AuditEntry{
		RunID: runID, At: now, Actor: "sync", Action: string(ch.Action), Username: ch.Username,
		Reason: ch.Reason,
	}.AppendChanged(scratch.audit, ch.Before, after)
	scratch.audit = buf
	return tx.Audit(ctx, e)
}

// applyScratch is where applyOne puts together what it writes, reused
// from one change to the next: a store keeps no pointer to what it is
// given.
type applyScratch struct {
	profile model.Profile
	audit   []byte // the audit entry's JSON
}

// dropGrants deletes a profile's product grants, unless the store's
// Delete already did (deleted).
func dropGrants(ctx context.Context, tx store.Tx, id int64, deleted bool) error {
	if deleted {
		return nil
	}
	grants, err := tx.ProfileGrants(ctx, id)
	if err != nil {
		return err
	}
	for _, g := range grants {
		if err := tx.DeleteGrant(ctx, id, g.Product); err != nil {
			return err
		}
	}
	return nil
}

// demote turns a profile that found no seat in the transaction into one
// blocked for license, keeping its queue time.
func demote(p, before *model.Profile, now time.Time) {
	p.State = model.Blocked
	p.BlockReason = model.ReasonLicense
	p.ActivatedAt = time.Time{}
	p.QueuedAt = now
	p.BlockedAt = now
	if before != nil {
		if !before.QueuedAt.IsZero() {
			p.QueuedAt = before.QueuedAt
		}
		p.ActivatedAt = before.ActivatedAt
		if before.State == model.Blocked && before.BlockReason == model.ReasonLicense {
			p.BlockedAt = before.BlockedAt
		}
	}
}

func rechecked(rep *Report) bool {
	for i := range rep.Changes {
		if r := rep.Changes[i].Result; r == ResultNoSeat || r == ResultConflict {
			return true
		}
	}
	return false
}

// recount refreshes the pool and product numbers from the store after an
// apply whose outcome differs from the plan.
func (r *Runner) recount(ctx context.Context, rep *Report, pol *licensing.Policy) error {
	profiles, err := r.Store.Profiles(ctx)
	if err != nil {
		return fmt.Errorf("read profiles: %w", err)
	}
	for i, st := range pol.Count(profiles) {
		p := &rep.Pools[i]
		p.UsedAfter, p.QueuedAfter, p.Overage = st.Active, st.Queued, st.Overage
		p.RemainingAfter = max(0, st.Remaining)
	}
	if len(rep.Products) == 0 {
		return nil
	}
	grants, err := r.Store.Grants(ctx)
	if err != nil {
		return fmt.Errorf("read product grants: %w", err)
	}
	for i, st := range pol.CountProducts(grants) {
		p := &rep.Products[i]
		p.UsedAfter, p.QueuedAfter, p.Overage = st.Issued, st.Queued, st.Overage
		p.RemainingAfter = max(0, st.Remaining)
	}
	return nil
}

// appliedSummary counts what was written.
func appliedSummary(rep *Report) Summary {
	s := Summary{Unchanged: rep.Summary.Unchanged, Skipped: rep.Summary.Skipped}
	for i := range rep.Changes {
		ch := &rep.Changes[i]
		switch ch.Result {
		case ResultApplied:
			s.add(ch.Action)
		case ResultNoSeat:
			if ch.Action != ActionActivate {
				s.add(ch.Action)
			}
		}
	}
	return s
}

func logChange(log *zap.Logger, ch *Change) {
	msg, level := "applied change", zap.InfoLevel
	if ch.Result == ResultConflict {
		msg, level = "skipped change: profile changed since the plan, the next run redoes it", zap.WarnLevel
	}
	ce := log.Check(level, msg)
	if ch.Result == "" || ce == nil {
		return
	}
	fields := []zap.Field{
		zap.String("action", string(ch.Action)), zap.String("username", ch.Username),
		zap.String("source", ch.Source), zap.String("area", ch.Area), zap.String("state", string(ch.State)),
		zap.String("result", ch.Result),
	}
	if ch.Reason != "" {
		fields = append(fields, zap.String("reason", ch.Reason))
	}
	ce.Write(fields...)
}

func jsonRaw(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return b, nil
}
