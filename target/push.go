package target

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// Result is what one push run did for one target: the report's targets[]
// entry.
type Result struct {
	Name     string    `json:"name"`
	Type     string    `json:"type"`
	Sent     int       `json:"sent"`
	Pending  int       `json:"pending"`
	Failed   int       `json:"failed"`
	Failures []Failure `json:"failures"`
	// Error is why the target as a whole failed (bad credentials, not
	// reachable); empty when it did not.
	Error string `json:"error,omitempty"`
	// HeldBack counts activations not sent because a deactivation before
	// them did not go through: sending them could have put more users
	// than seats in the application.
	HeldBack int `json:"held_back,omitempty"`
}

// Failure is one user's push the application refused.
type Failure struct {
	Username string `json:"username"`
	Status   int    `json:"status"`
	Error    string `json:"error"`
}

// Pushes run in three classes, one after the other, so the application
// never holds more active users than the store: first what takes users
// out (deactivations, deletes), then what changes no seat (updates,
// users created inactive), then what makes users active (activations and
// active creates), in the order their profiles got their seats.
const (
	classRelease = iota
	classUpdate
	classTake
	numClasses
)

// push is one pending push with what it must do.
type push struct {
	p      store.Pending
	want   *model.Profile // the profile to send; nil when the user must go
	active bool
	class  int
	// link is the user the profile is linked to, or found for it (found:
	// a user seatsync did not create or lost track of).
	link  *store.Link
	found bool
}

func (x *push) username() string {
	if x.p.Profile != nil {
		return x.p.Profile.Username
	}
	if x.p.Gone != nil {
		return x.p.Gone.Username
	}
	if x.link != nil && x.link.Username != "" {
		return x.link.Username
	}
	return fmt.Sprintf("profile %d", x.p.ProfileID)
}

// Pusher sends a target's pending pushes and records what happened.
type Pusher struct {
	Store store.Store
	Log   *zap.Logger
}

// Push sends target's pending pushes through c. With retryFailed, pushes
// the application refused before are sent again too (targets push);
// otherwise they wait for their profile to change. The error is not nil
// when the target as a whole failed (ErrUnauthorized, the store); the
// Result says what got through either way.
func (ps *Pusher) Push(ctx context.Context, cfg Config, c Client, retryFailed bool) (Result, error) {
	res := Result{Name: cfg.Name, Type: cfg.Type, Failures: []Failure{}}
	log := ps.Log.With(zap.String("target", cfg.Name))
	defer recall(ctx, ps.Store, cfg.Name, c)()
	if retryFailed {
		if _, err := ps.Store.RetryFailed(ctx, cfg.Name); err != nil {
			return res, err
		}
	}
	pending, err := ps.Store.Pending(ctx, cfg.Name)
	if err != nil {
		return res, err
	}
	var classes [numClasses][]*push
	var unlinked []*push
	var nothing []store.Done // the application holds these already
	for _, p := range pending {
		if p.Failed {
			continue
		}
		x := plan(&cfg, c, p)
		if x == nil {
			nothing = append(nothing, store.Done{ProfileID: p.ProfileID, Seq: p.Seq, Link: p.Link})
			continue
		}
		if x.link == nil && x.want != nil {
			unlinked = append(unlinked, x)
		}
		classes[x.class] = append(classes[x.class], x)
	}
	slices.SortStableFunc(classes[classTake], func(a, b *push) int {
		if c := a.want.ActivatedAt.Compare(b.want.ActivatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.want.Username, b.want.Username)
	})

	if err := ps.Store.PushesDone(ctx, cfg.Name, nothing); err != nil {
		return res, err
	}
	run := &pushRun{cfg: &cfg, c: c, st: ps.Store, log: log, res: &res}
	if err := run.find(ctx, unlinked); err != nil {
		if errors.Is(err, ErrUnauthorized) || ctx.Err() != nil {
			return run.finish(ctx, err)
		}
		// A lookup that failed for a passing reason (a 5xx, a 429) holds
		// back only the users it was for: they stay pending, with why,
		// and the linked users' pushes (deactivations first) go on.
		if err := run.holdBack(ctx, unlinked, err); err != nil {
			return run.finish(ctx, err)
		}
		held := make(map[*push]bool, len(unlinked))
		for _, x := range unlinked {
			held[x] = true
		}
		for class := range classes {
			classes[class] = slices.DeleteFunc(classes[class], func(x *push) bool { return held[x] })
		}
	}
	for class := range numClasses {
		todo := classes[class]
		if class == classTake && run.releasesFailed > 0 {
			res.HeldBack = len(todo)
			log.Warn("activations held back: deactivations before them did not go through, and the application could hold more active users than seats",
				zap.Int("held_back", len(todo)), zap.Int("failed_deactivations", run.releasesFailed))
			break
		}
		if err := run.send(ctx, todo); err != nil {
			return run.finish(ctx, err)
		}
	}
	return run.finish(ctx, nil)
}

// plan decides what pending push p must do; nil when nothing.
func plan(cfg *Config, c Client, p store.Pending) *push {
	x := &push{p: p, link: p.Link}
	prof := p.Profile
	if prof == nil || !cfg.Covers(prof.Area) {
		// Deleted, or moved out of the target's areas: its user goes.
		switch {
		case p.Link == nil:
			return nil
		case cfg.OnDelete != OnDeleteDelete && p.Link.Gone && !p.Link.Active:
			return nil
		}
		x.class = classRelease
		return x
	}
	x.want = prof
	x.active = prof.State == model.Active
	if l := p.Link; l != nil {
		if !l.Gone && l.Active == x.active && l.Hash == Digest(c.Render(prof, x.active)) {
			return nil
		}
		switch {
		case l.Active && !x.active:
			x.class = classRelease
		case x.active && !l.Active:
			x.class = classTake
		default:
			x.class = classUpdate
		}
		return x
	}
	x.class = classUpdate
	if x.active {
		x.class = classTake
	}
	return x
}

// Digest is the hash of a rendering kept in a link.
func Digest(r map[string]string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(r)) {
		fmt.Fprintf(h, "%q=%q\n", k, r[k])
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// pushRun is one Push call's state.
type pushRun struct {
	cfg *Config
	c   Client
	st  store.Store
	log *zap.Logger

	mu             sync.Mutex
	res            *Result
	releasesFailed int
	done           []store.Done // accepted, not recorded yet
}

// recordEvery is how many accepted pushes are recorded in one store
// transaction. Recorded one by one, a first push of 10,000 spent 0.45 ms
// of CPU a push in the store, a third of seatsync's whole cost; a crash
// loses at most this many records, and the next run finds those users
// again and links them.
const recordEvery = 200

// record writes the accepted pushes; with all, every one of them,
// otherwise only a full batch. r.mu must not be held.
func (r *pushRun) record(ctx context.Context, all bool) error {
	r.mu.Lock()
	if len(r.done) == 0 || (!all && len(r.done) < recordEvery) {
		r.mu.Unlock()
		return nil
	}
	batch := r.done
	r.done = nil
	r.mu.Unlock()
	return r.st.PushesDone(context.WithoutCancel(ctx), r.cfg.Name, batch)
}

// find looks up the users of unlinked profiles, in one go, so that a
// create whose answer was lost, or a user who was in the application
// before, is linked rather than created twice.
func (r *pushRun) find(ctx context.Context, unlinked []*push) error {
	if len(unlinked) == 0 {
		return nil
	}
	names := make([]string, len(unlinked))
	for i, x := range unlinked {
		names[i] = x.want.Username
	}
	found, err := r.c.Find(ctx, names)
	if err != nil {
		if errors.Is(err, ErrUnauthorized) {
			return err
		}
		return fmt.Errorf("look up %d users before creating them: %w", len(names), err)
	}
	for _, x := range unlinked {
		if u, ok := found[model.FoldUsername(x.want.Username)]; ok {
			x.link, x.found = linkOf(u, u.Active, ""), !ours(u, x.want)
		}
	}
	return nil
}

// holdBack records, for each of the pushes, that it was not sent because
// err stopped it first: it stays pending and is sent again next run.
func (r *pushRun) holdBack(ctx context.Context, pushes []*push, err error) error {
	status := 0
	var te *Error
	if errors.As(err, &te) {
		status = te.Status
	}
	for _, x := range pushes {
		if serr := r.st.PushFailed(ctx, r.cfg.Name, x.p.ProfileID, x.p.Seq, status, err.Error(), false, nil); serr != nil {
			return serr
		}
	}
	r.log.Warn("pushes held back: looking their users up failed", zap.Int("pushes", len(pushes)),
		zap.Bool("retried_next_run", true), zap.Error(err))
	return nil
}

// send sends one class of pushes through the target's workers and waits
// for them all.
func (r *pushRun) send(ctx context.Context, todo []*push) error {
	if len(todo) == 0 {
		return nil
	}
	workers := max(1, r.cfg.Workers)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan *push)
	var wg sync.WaitGroup
	for range min(workers, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for x := range jobs {
				if err := r.one(ctx, x); err != nil {
					cancel(err)
				}
			}
		}()
	}
feed:
	for _, x := range todo {
		select {
		case jobs <- x:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err := r.record(ctx, true); err != nil {
		return err
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// one sends one push and records its outcome. It returns an error only
// when the whole target must stop.
func (r *pushRun) one(ctx context.Context, x *push) error {
	link, err := r.deliver(ctx, x)
	if err == nil {
		r.mu.Lock()
		r.res.Sent++
		r.done = append(r.done, store.Done{ProfileID: x.p.ProfileID, Seq: x.p.Seq, Link: link})
		r.mu.Unlock()
		if ce := r.log.Check(zap.DebugLevel, "pushed"); ce != nil {
			ce.Write(zap.String("username", x.username()), zap.Int("class", x.class))
		}
		return r.record(ctx, false)
	}
	if errors.Is(err, ErrUnauthorized) || ctx.Err() != nil {
		return err
	}
	status := 0
	var te *Error
	if errors.As(err, &te) {
		status = te.Status
	}
	permanent := Permanent(err)
	if serr := r.st.PushFailed(context.WithoutCancel(ctx), r.cfg.Name, x.p.ProfileID, x.p.Seq, status, err.Error(), permanent, link); serr != nil {
		return serr
	}
	r.mu.Lock()
	if x.class == classRelease {
		r.releasesFailed++
	}
	if permanent {
		r.res.Failures = append(r.res.Failures, Failure{Username: x.username(), Status: status, Error: err.Error()})
	}
	r.mu.Unlock()
	r.log.Warn("push failed", zap.String("username", x.username()), zap.Int("status", status),
		zap.Bool("retried_next_run", !permanent), zap.Error(err))
	return nil
}

// deliver makes the application hold what x says. The link it returns is
// the user as it stands afterwards (nil once deleted); on an error it is
// what is known of the user (nil when nothing is).
func (r *pushRun) deliver(ctx context.Context, x *push) (*store.Link, error) {
	if x.want == nil {
		u := userOf(x.link)
		if r.cfg.OnDelete == OnDeleteDelete {
			err := r.c.Delete(ctx, u)
			if err == nil || errors.Is(err, ErrNotFound) {
				return nil, nil
			}
			return x.link, err
		}
		u, err := r.c.Deactivate(ctx, u)
		if errors.Is(err, ErrNotFound) {
			return nil, nil // gone from the application already
		}
		if err != nil {
			return x.link, err
		}
		l := linkOf(u, false, x.link.Hash)
		l.Gone = true
		return l, nil
	}
	rendered := Digest(r.c.Render(x.want, x.active))
	if x.link == nil {
		u, err := r.c.Create(ctx, x.want, x.active)
		if errors.Is(err, ErrUniqueness) {
			// Created by an earlier push whose answer was lost, or there
			// before seatsync: find it and link it, never a second user.
			found, ferr := r.c.Find(ctx, []string{x.want.Username})
			if ferr != nil {
				return nil, fmt.Errorf("%w; and looking the user up failed: %w", err, ferr)
			}
			fu, ok := found[model.FoldUsername(x.want.Username)]
			if !ok {
				// The holder's userName differs in case, and the server's
				// "userName eq" compares case-sensitively (SCIMMY does),
				// though RFC 7643 makes userName not case-exact: look
				// through every user.
				fu, ok, ferr = listFor(ctx, r.c, x.want.Username)
				if ferr != nil {
					return nil, fmt.Errorf("%w; and looking the user up failed: %w", err, ferr)
				}
			}
			if !ok {
				return nil, fmt.Errorf("%w, but no user with userName %q can be found", err, x.want.Username)
			}
			x.link, x.found = linkOf(fu, fu.Active, ""), !ours(fu, x.want)
			if x.found && !r.cfg.Adopt {
				return nil, notAdopted(fu)
			}
			return r.update(ctx, x, rendered)
		}
		if err != nil {
			return nil, err
		}
		return linkOf(u, x.active, rendered), nil
	}
	if x.found && !r.cfg.Adopt {
		return nil, notAdopted(userOf(x.link))
	}
	return r.update(ctx, x, rendered)
}

// listFor reads every user of the application for the one whose userName
// is username, ignoring case.
func listFor(ctx context.Context, c Client, username string) (User, bool, error) {
	key := model.FoldUsername(username)
	var found User
	ok := false
	err := c.List(ctx, func(u User) error {
		if !ok && model.FoldUsername(u.UserName) == key {
			found, ok = u, true
		}
		return nil
	})
	return found, ok, err
}

// ours reports whether u is a user seatsync created for p (one whose
// answer was lost): it carries p's external id.
func ours(u User, p *model.Profile) bool {
	return u.ExternalID != "" && u.ExternalID == p.ExternalID
}

func notAdopted(u User) error {
	return &Error{Status: 409, Err: ErrUniqueness, Message: fmt.Sprintf(
		"the application already has a user %q that seatsync did not create; set adopt: true on the target to link it", u.UserName)}
}

func (r *pushRun) update(ctx context.Context, x *push, rendered string) (*store.Link, error) {
	u, err := r.c.Update(ctx, userOf(x.link), x.want, x.active)
	if errors.Is(err, ErrNotFound) {
		// Deleted in the application behind seatsync's back: create it
		// again, as the profile says it should exist.
		u, err = r.c.Create(ctx, x.want, x.active)
	}
	if err != nil {
		return x.link, err
	}
	return linkOf(u, x.active, rendered), nil
}

func userOf(l *store.Link) User {
	return User{ID: l.AppID, ETag: l.ETag, UserName: l.Username, Active: l.Active}
}

func linkOf(u User, active bool, hash string) *store.Link {
	return &store.Link{AppID: u.ID, ETag: u.ETag, Active: active, Hash: hash, Username: u.UserName}
}

// finish counts what is left pending and ends the run.
func (r *pushRun) finish(ctx context.Context, err error) (Result, error) {
	if rerr := r.record(ctx, true); rerr != nil && err == nil {
		err = rerr
	}
	pending, failed, cerr := r.st.TargetCounts(context.WithoutCancel(ctx), r.cfg.Name)
	if cerr != nil && err == nil {
		err = cerr
	}
	r.res.Pending, r.res.Failed = pending-failed, failed
	if err != nil {
		r.res.Error = err.Error()
		r.log.Error("target failed", zap.Error(err), zap.Int("pending", pending))
	}
	r.log.Info("pushed to target", zap.Int("sent", r.res.Sent), zap.Int("pending", r.res.Pending),
		zap.Int("failed", r.res.Failed), zap.Int("held_back", r.res.HeldBack))
	return *r.res, err
}
