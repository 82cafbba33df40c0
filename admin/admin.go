// Package admin holds what an admin does by hand: block, unblock (which
// takes a seat) and delete profiles, grant and recall product licences,
// and list profiles and seats. Every
// write is one store transaction with its audit entry, and an unblock
// re-checks the pool inside that transaction, like a sync does.
package admin

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/target"
)

// ErrNoSeat is returned by Unblock when the profile's pool is full.
var ErrNoSeat = errors.New("no free seat")

// ErrNoActor is returned by every action of an Admin without an Actor.
var ErrNoActor = errors.New("admin: no actor: the audit log must say who acted")

// Admin performs admin actions on a store.
type Admin struct {
	Store  store.Store
	Policy *licensing.Policy
	// Actor is who acts, as the audit log records it: "cli:alice" for
	// the command line run by the OS user alice, "api:192.0.2.7" for the
	// API called from that address. Required.
	Actor string
	// Targets are the applications that must be told of each change; the
	// change is marked pending for them in its own transaction.
	Targets []target.Config
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// QueueHint is how the caller asks Unblock to queue, for the message
	// of ErrNoSeat: "--queue" (the command line) when empty, "?queue=true"
	// for the API.
	QueueHint string
}

// Outcome says what one action did to one profile.
type Outcome struct {
	Username string        `json:"username"`
	Action   string        `json:"action"`            // block | unblock | queue | delete | grant | recall | none
	Product  string        `json:"product,omitempty"` // of a grant or recall
	State    model.State   `json:"state"`
	Reason   model.Reason  `json:"block_reason"`
	Message  string        `json:"message"`
	Profile  model.Profile `json:"-"`
}

func (a *Admin) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

// Block blocks a profile with reason admin. A sync never clears it.
func (a *Admin) Block(ctx context.Context, username string) (Outcome, error) {
	return a.change(ctx, username, "block", func(tx store.Tx, p *model.Profile, now time.Time) (string, error) {
		if p.State == model.Blocked && p.BlockReason == model.ReasonAdmin {
			return "", nil
		}
		p.State, p.BlockReason = model.Blocked, model.ReasonAdmin
		p.QueuedAt, p.BlockedAt = time.Time{}, now
		// Only active profiles hold product licences.
		recalled, err := recallAll(ctx, tx, p)
		if err != nil {
			return "", fmt.Errorf("recall its product licences: %w", err)
		}
		if len(recalled) > 0 {
			return "blocked by an admin; a sync will not unblock it; product licences recalled: " + strings.Join(recalled, " "), nil
		}
		return "blocked by an admin; a sync will not unblock it", nil
	})
}

// Unblock activates a blocked profile, taking a seat in its pool. When the
// pool is full it fails with ErrNoSeat, unless queue is set: then the
// profile joins the licence queue (blocked, reason license) and a later
// run activates it in queue order.
func (a *Admin) Unblock(ctx context.Context, username string, queue bool) (Outcome, error) {
	action := "unblock"
	out, err := a.change(ctx, username, action, func(tx store.Tx, p *model.Profile, now time.Time) (string, error) {
		if p.State == model.Active {
			return "", nil
		}
		pi := a.Policy.PoolIndex(p.Area)
		if pi >= 0 && !a.Policy.IsExempt(p.Username) {
			pool := &a.Policy.Pools[pi]
			used, err := tx.CountActive(ctx, pool.Areas, a.Policy.Exempt())
			if err != nil {
				return "", fmt.Errorf("count seats of pool %s: %w", pool.Name, err)
			}
			if !pool.HasRoom(used) {
				if !queue && pool.Frozen {
					hint := cmp.Or(a.QueueHint, "--queue")
					return "", fmt.Errorf("%w in pool %s: it takes its limit from the licence (%s), which has expired or is not valid, so nobody new gets a seat; install a valid licence, or use %s to put %s in the licence queue",
						ErrNoSeat, pool.Name, pool.LimitFrom, hint, p.Username)
				}
				if !queue {
					hint := cmp.Or(a.QueueHint, "--queue")
					return "", fmt.Errorf("%w in pool %s (%d of %d seats used, %d reserved): block or delete another profile first, buy more seats, or use %s to put %s in the licence queue",
						ErrNoSeat, pool.Name, used, pool.Limit, pool.Reserve, hint, p.Username)
				}
				if p.BlockReason == model.ReasonLicense {
					return "", nil
				}
				action = "queue"
				p.BlockReason, p.BlockedAt, p.QueuedAt = model.ReasonLicense, now, now
				return fmt.Sprintf("pool %s is full: queued for a seat; a later sync activates it in queue order", pool.Name), nil
			}
		}
		msg := "activated"
		if p.BlockReason == model.ReasonSourceDisabled || p.BlockReason == model.ReasonLeftSource {
			msg = fmt.Sprintf("activated; note that its source still reports it as %s, so the next sync blocks it again", p.BlockReason)
		}
		p.State, p.BlockReason = model.Active, model.ReasonNone
		p.QueuedAt, p.BlockedAt, p.ActivatedAt = time.Time{}, time.Time{}, now
		return msg, nil
	})
	if out.Action != "none" {
		out.Action = action
	}
	return out, err
}

// Delete deletes a profile. Deletion is permanent; its audit entry keeps
// the last state.
func (a *Admin) Delete(ctx context.Context, username string) (Outcome, error) {
	if a.Actor == "" {
		return Outcome{}, ErrNoActor
	}
	now := a.now()
	var out Outcome
	err := a.Store.WithTx(ctx, func(tx store.Tx) error {
		p, err := a.find(ctx, tx, username)
		if err != nil {
			return err
		}
		if err := tx.Delete(ctx, p); err != nil {
			return err
		}
		out = Outcome{Username: p.Username, Action: "delete", State: p.State, Reason: p.BlockReason, Message: "deleted", Profile: p}
		if err := target.MarkPending(ctx, tx, a.Targets, &p, nil); err != nil {
			return err
		}
		return tx.Audit(ctx, store.AuditEntry{RunID: newID(now), At: now, Actor: a.Actor, Action: "delete", Username: p.Username}.Changed(&p, nil))
	})
	if err == nil && out.Profile.Source != "" {
		// A source that reads only what changed would not bring the person
		// back while they are still in it: its next run reads it in full,
		// as a full run brings them back.
		why := fmt.Sprintf("profile %s was deleted by %s while its person may still be in the source", out.Username, a.Actor)
		if err := a.Store.SetValue(ctx, store.FullReadKey(out.Profile.Source), why); err != nil {
			return out, fmt.Errorf("deleted %s, but could not ask for a full read of source %s (run sync --full): %w", out.Username, out.Profile.Source, err)
		}
	}
	return out, err
}

func (a *Admin) find(ctx context.Context, tx store.Tx, username string) (model.Profile, error) {
	p, err := a.Store.Profile(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		return p, fmt.Errorf("no profile with username %q", username)
	}
	if err != nil {
		return p, err
	}
	// Re-read inside the transaction so the version is current.
	return tx.Get(ctx, p.ID)
}

func (a *Admin) change(ctx context.Context, username, action string, fn func(store.Tx, *model.Profile, time.Time) (string, error)) (Outcome, error) {
	if a.Actor == "" {
		return Outcome{}, ErrNoActor
	}
	now := a.now()
	var out Outcome
	err := a.Store.WithTx(ctx, func(tx store.Tx) error {
		before, err := a.find(ctx, tx, username)
		if err != nil {
			return err
		}
		after := before.Clone()
		msg, err := fn(tx, &after, now)
		if err != nil {
			return err
		}
		out = Outcome{Username: before.Username, Action: action, State: after.State, Reason: after.BlockReason, Message: msg, Profile: after}
		if msg == "" {
			out.Action, out.Message = "none", "nothing to do: already "+describeState(&before)
			return nil
		}
		after.UpdatedAt = now
		if err := tx.Update(ctx, &after); err != nil {
			return err
		}
		out.Profile = after
		if err := target.MarkPending(ctx, tx, a.Targets, &before, &after); err != nil {
			return err
		}
		return tx.Audit(ctx, store.AuditEntry{RunID: newID(now), At: now, Actor: a.Actor, Action: action,
			Username: after.Username, Reason: string(after.BlockReason)}.Changed(&before, &after))
	})
	return out, err
}

func describeState(p *model.Profile) string {
	if p.State == model.Active {
		return "active"
	}
	return fmt.Sprintf("blocked (%s)", p.BlockReason)
}

func newID(now time.Time) string {
	return "admin-" + ulid.MustNew(ulid.Timestamp(now), rand.Reader).String()
}
