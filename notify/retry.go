package notify

import (
	"context"
	"errors"
	"time"
)

// errPermanent marks a send error that a retry cannot fix.
var errPermanent = errors.New("not retried")

// Retry is how a sender retries a failed send: at most Attempts tries in
// all, waiting Backoff before the second, twice that before the third,
// and so on.
type Retry struct {
	Attempts int
	Backoff  time.Duration
}

// The retry of senders that are not given one: 4 tries over about 14s.
const (
	DefaultAttempts = 4
	DefaultBackoff  = 2 * time.Second
)

func (r Retry) orDefault() Retry {
	if r.Attempts <= 0 {
		r.Attempts = DefaultAttempts
	}
	if r.Backoff <= 0 {
		r.Backoff = DefaultBackoff
	}
	return r
}

// do calls try until it succeeds, returns an error wrapping errPermanent,
// the attempts are used up or ctx is done; it returns try's last error.
func (r Retry) do(ctx context.Context, try func(ctx context.Context) error) error {
	r = r.orDefault()
	wait := r.Backoff
	var err error
	for i := 0; i < r.Attempts; i++ {
		if i > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(err, ctx.Err())
			case <-t.C:
			}
			wait *= 2
		}
		if err = try(ctx); err == nil || errors.Is(err, errPermanent) {
			return err
		}
	}
	return err
}
