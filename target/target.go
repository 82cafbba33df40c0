// Package target provisions the applications seatsync keeps in step with
// its profiles. A target type (package scim) is a Client: it talks to one
// application and knows nothing of pools, sources or the store. This
// package decides what each pending push must do, orders the pushes so
// the application never holds more active users than the seats allow,
// sends them through a bounded, rate-limited pool of workers, and records
// every outcome in the store's outbox.
package target

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// Errors a Client returns, told apart with errors.Is.
var (
	// ErrUnauthorized is a 401 or 403: the whole target fails, and every
	// push stays pending.
	ErrUnauthorized = errors.New("the application refused seatsync's credentials")
	// ErrNotFound is a user that is not (or no longer) in the
	// application.
	ErrNotFound = errors.New("no such user in the application")
	// ErrUniqueness is a 409 with scimType uniqueness: the userName is
	// taken.
	ErrUniqueness = errors.New("the application already has a user with this userName")
)

// Error is the application's answer to one request that did not succeed.
// A Client wraps the sentinels above in it where one applies.
type Error struct {
	Status  int    // HTTP status; 0 when no answer came
	Message string // the application's own words
	Err     error  // a sentinel above, or the transport error
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return e.Message
	}
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether err refuses this one user (a 4xx other than
// 401, 403, 408 and 429): sending it again unchanged cannot succeed.
func Permanent(err error) bool {
	var e *Error
	if !errors.As(err, &e) || errors.Is(err, ErrUnauthorized) {
		return false
	}
	return e.Status >= 400 && e.Status < 500 && e.Status != 408 && e.Status != 429
}

// User is one user as the application holds it.
type User struct {
	ID         string
	ETag       string // "" when the application keeps none
	UserName   string
	ExternalID string
	Active     bool
	// Attributes are the managed attributes as the application holds
	// them, keyed by the target's attribute names; verify compares them.
	Attributes map[string]string
}

// Client is one target type's connection to one application. Its methods
// are safe for concurrent use; they wait out a 429 (Retry-After) up to the
// target's timeout, and answer *Error otherwise.
type Client interface {
	// Render is what the Client would send for p with the given active
	// flag: the managed attributes by name, the same keys as
	// User.Attributes. Two equal renderings need no second request.
	Render(p *model.Profile, active bool) map[string]string
	// Find looks users up by userName, compared case-insensitively; the
	// map is keyed by model.FoldUsername. A Client may answer many names
	// with one listing of every user rather than a request each.
	Find(ctx context.Context, usernames []string) (map[string]User, error)
	// Create creates a user for p.
	Create(ctx context.Context, p *model.Profile, active bool) (User, error)
	// Update makes user u hold p and the active flag, by PATCH or PUT as
	// the application supports, with If-Match when it keeps ETags (on a
	// 412 it reads the user again and retries once).
	Update(ctx context.Context, u User, p *model.Profile, active bool) (User, error)
	// Deactivate sets only active false on user u.
	Deactivate(ctx context.Context, u User) (User, error)
	// Delete deletes user u; a user already gone is not an error.
	Delete(ctx context.Context, u User) error
	// List reads every user of the application, for verify.
	List(ctx context.Context, each func(User) error) error
}

// Remembering is an optional Client capability: what it learnt of the
// application (the features it supports) as a string that the store
// keeps between runs, so that a run need not ask again.
type Remembering interface {
	// Memory is what the Client knows; "" while it knows nothing.
	Memory() string
	// Remember gives it what an earlier run's Memory was.
	Remember(memory string)
}

// MemoryLasts is how long what a Client learnt is trusted: an
// application upgraded in the meantime is asked again after a day.
const MemoryLasts = 24 * time.Hour

// recall hands c what the store remembers of target, when it is fresh,
// and returns a function that keeps what c knows after its work.
func recall(ctx context.Context, st store.TargetStore, target string, c Client) (keep func()) {
	r, ok := c.(Remembering)
	if !ok {
		return func() {}
	}
	memory, at, err := st.TargetMemory(ctx, target)
	if err == nil && memory != "" && time.Since(at) < MemoryLasts {
		r.Remember(memory)
	} else {
		memory = ""
	}
	return func() {
		if m := r.Memory(); m != "" && m != memory {
			_ = st.SetTargetMemory(context.WithoutCancel(ctx), target, m) // only a saving: asked again next run
		}
	}
}

// Config is what every target type's configuration shares.
type Config struct {
	Name string
	Type string
	// Areas are the areas whose profiles go to this target; empty means
	// every area.
	Areas []string
	// OnDelete is what a deleted profile's user becomes: deactivate
	// (default) or delete.
	OnDelete string
	// Adopt links an application user that has the profile's userName
	// (case-insensitively) instead of reporting a conflict.
	Adopt bool
	// Workers bounds the requests in flight. (Timeouts and pacing are the
	// Client's: it reads them from the target's configuration.)
	Workers int
}

// On-delete policies.
const (
	OnDeleteDeactivate = "deactivate"
	OnDeleteDelete     = "delete"
)

// Covers reports whether profiles of area go to the target.
func (c *Config) Covers(area string) bool {
	return len(c.Areas) == 0 || slices.Contains(c.Areas, area)
}

// Concerned returns the targets that must be told of a change from before
// to after (nil for a create's before or a delete's after): those that
// cover either area.
func Concerned(targets []Config, before, after *model.Profile) []string {
	var out []string
	for i := range targets {
		t := &targets[i]
		if (before != nil && t.Covers(before.Area)) || (after != nil && t.Covers(after.Area)) {
			out = append(out, t.Name)
		}
	}
	return out
}

// Opener builds a target's Client from its configuration.
type Opener func(name string, log *zap.Logger) (Client, error)

// MarkPending records, in tx, a push of the change from before to after
// (a written profile, with its ID) for every target it concerns. Every
// writer of profiles calls it: the runner's apply and an admin's block,
// unblock and delete.
func MarkPending(ctx context.Context, tx store.Tx, targets []Config, before, after *model.Profile) error {
	if len(targets) == 0 {
		return nil
	}
	id, gone := int64(0), (*model.Profile)(nil)
	switch {
	case after != nil:
		id = after.ID
	case before != nil:
		id, gone = before.ID, before
	}
	for _, name := range Concerned(targets, before, after) {
		if err := tx.MarkPending(ctx, name, id, gone); err != nil {
			return err
		}
	}
	return nil
}
