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
)

// Change results, set by the apply.
const (
	ResultApplied  = "applied"
	ResultNoSeat   = "no_seat"
	ResultConflict = "conflict"
)

// apply writes the plan's changes in batches of store transactions.
// Changes that free seats or take none go first; changes that take a seat
// follow in queue order, and each is re-checked inside its transaction, so
// nothing that happened since the plan can push a pool over its limit. A
// failure rolls back the batch in flight; committed batches stay, and the
// next run finishes the job.
func (r *Runner) apply(ctx context.Context, log *zap.Logger, rep *Report, pol *licensing.Policy, now time.Time) error {
	order := applyOrder(rep.Changes, pol, now)
	size := r.BatchSize
	if size <= 0 {
		size = 1000
	}
	exempt := pol.Exempt()
	for start := 0; start < len(order); start += size {
		batch := order[start:min(start+size, len(order))]
		err := r.Store.WithTx(ctx, func(tx store.Tx) error {
			seats := seatCheck{tx: tx, pol: pol, exempt: exempt, used: map[int]int{}}
			for _, ci := range batch {
				ch := &rep.Changes[ci]
				ch.Result = ""
				if err := applyOne(ctx, tx, &seats, rep.RunID, ch, now); err != nil {
					return fmt.Errorf("apply %s %s: %w", ch.Action, ch.Username, err)
				}
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
	}
	rep.Summary = appliedSummary(rep)
	if rechecked(rep) {
		if err := r.recount(ctx, rep, pol); err != nil {
			return err
		}
	}
	return nil
}

// applyOrder returns change indexes: first those that take no seat, then
// the seat-takers in queue order.
func applyOrder(changes []Change, pol *licensing.Policy, now time.Time) []int {
	var free, takers []int
	for i := range changes {
		if changes[i].TakesSeat {
			takers = append(takers, i)
		} else {
			free = append(free, i)
		}
	}
	req := func(i int) licensing.Request {
		ch := &changes[i]
		q := now
		if ch.Before != nil && !ch.Before.QueuedAt.IsZero() {
			q = ch.Before.QueuedAt
		}
		return licensing.Request{Weight: pol.Weight(ch.After.Groups), QueuedAt: q, Username: ch.Username}
	}
	slices.SortStableFunc(takers, func(a, b int) int { return licensing.Compare(req(a), req(b)) })
	return append(free, takers...)
}

// seatCheck re-counts a pool's seats inside the transaction, once per pool
// per transaction, and keeps the count as seats are taken.
type seatCheck struct {
	tx     store.Tx
	pol    *licensing.Policy
	exempt []string
	used   map[int]int
}

func (s *seatCheck) take(ctx context.Context, area string) (bool, error) {
	pi := s.pol.PoolIndex(area)
	pool := &s.pol.Pools[pi]
	if pool.Unlimited {
		return true, nil
	}
	used, ok := s.used[pi]
	if !ok {
		n, err := s.tx.CountActive(ctx, pool.Areas, s.exempt)
		if err != nil {
			return false, fmt.Errorf("count seats of pool %s: %w", pool.Name, err)
		}
		used = n
	}
	if !pool.HasRoom(used) {
		s.used[pi] = used
		return false, nil
	}
	s.used[pi] = used + 1
	return true, nil
}

// applyOne writes one change and its audit entry. A profile that changed
// since the plan is a conflict: the change is left for the next run.
func applyOne(ctx context.Context, tx store.Tx, seats *seatCheck, runID string, ch *Change, now time.Time) error {
	var after *model.Profile
	if ch.After != nil {
		a := ch.After.Clone()
		after = &a
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
			if ch.Before != nil && ch.Before.State == model.Blocked && ch.Before.BlockReason == model.ReasonLicense &&
				ch.Before.Area == after.Area {
				// Still queued: nothing to write but the other fields.
				if ch.Action == ActionActivate {
					ch.Result = result
					return nil
				}
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
	return tx.Audit(ctx, store.AuditEntry{
		RunID: runID, At: now, Actor: "sync", Action: string(ch.Action), Username: ch.Username,
		Reason: ch.Reason, Before: ch.Before, After: after,
	})
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

// recount refreshes the pool numbers from the store after an apply whose
// outcome differs from the plan.
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
	if ch.Result == "" {
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
	if ch.Result == ResultConflict {
		log.Warn("skipped change: profile changed since the plan, the next run redoes it", fields...)
		return
	}
	log.Info("applied change", fields...)
}

func jsonRaw(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return b, nil
}
