package notify

import (
	"context"
	"fmt"
	"sync"
)

// pool is a limited pool's state: limit seats, used of them, queued waiting.
func pool(name string, limit, used, queued int) PoolState {
	return PoolState{Name: name, Limit: limit, Used: used, Remaining: max(limit-used, 0), Queued: queued}
}

func poolEvent(kind Kind, run string, p PoolState, people []string, msg string) Event {
	return Event{Kind: kind, RunID: run, Pool: p.Name, Limit: p.Limit, Unlimited: p.Unlimited, Used: p.Used,
		Remaining: p.Remaining, Queued: p.Queued, People: people, Message: msg}
}

// The events as reconcile.Events words them.
func exhausted(run string, p PoolState, people ...string) Event {
	return poolEvent(SeatsExhausted, run, p, people, fmt.Sprintf(
		"Pool %s is full (%d of %d seats used, %d queued): %d people were blocked for license. Free seats by blocking or deleting profiles, or buy more seats.",
		p.Name, p.Used, p.Limit, p.Queued, len(people)))
}

func available(run string, p PoolState, people ...string) Event {
	return poolEvent(SeatsAvailable, run, p, people, fmt.Sprintf(
		"Pool %s had free seats: %d people were activated from the queue (%d of %d seats used, %d still queued).",
		p.Name, len(people), p.Used, p.Limit, p.Queued))
}

func low(run string, p PoolState) Event {
	return poolEvent(SeatsLow, run, p, nil, fmt.Sprintf("Pool %s is at %d%%.", p.Name, p.Used*100/p.Limit))
}

func overage(run string, p PoolState) Event {
	return poolEvent(Overage, run, p, nil, fmt.Sprintf("Pool %s is over its limit.", p.Name))
}

func failed(run string) Event {
	return Event{Kind: RunFailed, RunID: run, Message: "seatsync run failed, nothing was changed by the failed step: pull corp-ad: bind: connection refused"}
}

func targetDown(run, target string) Event {
	return Event{Kind: TargetFailed, RunID: run, Target: target, Message: "Target " + target + " failed: the application refused the token (HTTP 401)."}
}

func expiring(run string, days int) Event {
	return Event{Kind: LicenseExpiring, RunID: run, Days: days, Message: "The licence expires soon."}
}

func refused(run string) Event {
	return Event{Kind: GuardTripped, RunID: run, Message: "source corp-ad would deprovision 40 of 200 profiles (limit 10%). Nothing was written."}
}

// recorder is a Sender that keeps what it was given; fail makes it fail.
type recorder struct {
	mu   sync.Mutex
	sent []Event
	fail bool
}

func (r *recorder) Name() string { return "recorder" }

func (r *recorder) Send(_ context.Context, e Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return fmt.Errorf("recorder: down")
	}
	r.sent = append(r.sent, e)
	return nil
}

func (r *recorder) setFail(f bool) {
	r.mu.Lock()
	r.fail = f
	r.mu.Unlock()
}

// kinds lists what was sent as "kind/pool run".
func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []string{}
	for _, e := range r.sent {
		out = append(out, EpisodeKey(e)+" "+e.RunID)
	}
	return out
}
