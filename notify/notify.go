// Package notify tells people what a run did (SPEC section 8). The runner
// hands every run's events to a Notifier; senders (email, webhooks) and
// episode tracking plug in behind that interface.
package notify

import (
	"context"

	"go.uber.org/zap"
)

// Kind is a notification event kind.
type Kind string

const (
	SeatsLow       Kind = "seats_low"
	SeatsExhausted Kind = "seats_exhausted"
	SeatsAvailable Kind = "seats_available"
	Overage        Kind = "overage"
	RunFailed      Kind = "run_failed"
	GuardTripped   Kind = "guard_tripped"
	// TargetFailed is a target that refused seatsync's credentials or
	// could not be reached: its pushes stay pending.
	TargetFailed Kind = "target_failed"
	// LicenseExpiring is sent 30, 7 and 1 days before the vendor licence
	// lapses (Event.Days says which); LicenseExpired once it has;
	// LicenseInvalid while the licence file is refused.
	LicenseExpiring Kind = "license_expiring"
	LicenseExpired  Kind = "license_expired"
	LicenseInvalid  Kind = "license_invalid"
	// SeatsChanged is a pool's limit that changed (the configuration, or a
	// new licence file): Event.OldLimit is the one before, Limit the new
	// one. Each change has its own episode, so it is sent once.
	SeatsChanged Kind = "seats_changed"
)

// Event is one thing worth telling an admin about.
type Event struct {
	Kind  Kind   `json:"kind"`
	RunID string `json:"run_id"`
	// Pool is the pool concerned ("" for run-level events).
	Pool string `json:"pool,omitempty"`
	// Target is the target concerned, for target_failed.
	Target string `json:"target,omitempty"`
	// Limit, Used, Remaining and Queued are the pool's numbers after the run.
	Limit     int  `json:"limit,omitempty"`
	Unlimited bool `json:"unlimited,omitempty"`
	Used      int  `json:"used,omitempty"`
	Remaining int  `json:"remaining,omitempty"`
	Queued    int  `json:"queued,omitempty"`
	// OldLimit and OldUnlimited are, for seats_changed, the limit before.
	OldLimit     int  `json:"old_limit,omitempty"`
	OldUnlimited bool `json:"old_unlimited,omitempty"`
	// Days is, for license_expiring, the warning it is: 30, 7 or 1 days
	// before the licence lapses. Each has its own episode.
	Days int `json:"days,omitempty"`
	// People are the usernames affected.
	People []string `json:"people,omitempty"`
	// Message says what happened and what to do, in a sentence or two.
	Message string `json:"message"`
}

// Notifier receives the events of every run. It must not fail or block a
// run: implementations log and retry on their own.
type Notifier interface {
	Notify(ctx context.Context, events []Event)
}

// Log is the Notifier used when no sender is configured: it writes each
// event to the log, so the operator still sees it.
type Log struct{ Logger *zap.Logger }

// Notify logs every event at warn level (info for seats_available).
func (l Log) Notify(_ context.Context, events []Event) {
	for _, e := range events {
		fields := []zap.Field{zap.String("event", string(e.Kind)), zap.String("run_id", e.RunID)}
		if e.Target != "" {
			fields = append(fields, zap.String("target", e.Target))
		}
		if e.Pool != "" {
			fields = append(fields, zap.String("pool", e.Pool), zap.Int("used", e.Used), zap.Int("limit", e.Limit),
				zap.Int("remaining", e.Remaining), zap.Int("queued", e.Queued))
		}
		if len(e.People) > 0 {
			fields = append(fields, zap.Strings("people", Cap(e.People, 50)), zap.Int("people_count", len(e.People)))
		}
		if e.Kind == SeatsAvailable {
			l.Logger.Info(e.Message, fields...)
		} else {
			l.Logger.Warn(e.Message, fields...)
		}
	}
}

// Cap returns at most n of people; a message adds "and N more".
func Cap(people []string, n int) []string {
	if len(people) <= n {
		return people
	}
	return people[:n]
}
