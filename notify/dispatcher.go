package notify

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/store"
)

// PoolState is a pool's numbers after a run.
type PoolState struct {
	Name      string `json:"name"`
	Limit     int    `json:"limit"`
	Unlimited bool   `json:"unlimited,omitempty"`
	Used      int    `json:"used"`
	Remaining int    `json:"remaining"`
	Queued    int    `json:"queued"`
}

// full says whether the pool has no free seat.
func (p PoolState) full() bool { return !p.Unlimited && p.Remaining <= 0 }

// Run is what a finished sync hands to a RunNotifier: its events and the
// state of every pool after it. Pools are only read when the run
// succeeded (no run_failed or guard_tripped event): a failed or refused
// run leaves pool episodes as they are.
type Run struct {
	RunID  string
	Events []Event
	Pools  []PoolState
	// Targets are the targets the run pushed to, and whether each took
	// every push (a target_failed episode ends then).
	Targets []TargetState
}

// TargetState is how a run's push to one target ended.
type TargetState struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
}

// RunNotifier is a Notifier that also takes the pool states of a run, so
// it can tell when a state has ended. The runner should call NotifyRun
// after every sync, with or without events.
type RunNotifier interface {
	Notifier
	NotifyRun(ctx context.Context, run Run)
}

// Sender delivers one event over one channel (a mail server, a webhook).
// It retries on its own within ctx and returns the last error.
type Sender interface {
	// Name names the channel in logs; it never contains a secret.
	Name() string
	Send(ctx context.Context, e Event) error
}

// EpisodeStore is the part of store.Store the Dispatcher uses.
type EpisodeStore interface {
	Episodes(ctx context.Context) (map[string]store.Episode, error)
	SetEpisode(ctx context.Context, key string, e store.Episode) error
	EndEpisode(ctx context.Context, key string) error
}

// DefaultQueueSize is the number of sends a Dispatcher holds before it
// drops new ones (with an error in the log).
const DefaultQueueSize = 256

// storeTimeout bounds each episode read or write, so a stuck store cannot
// hold a run.
const storeTimeout = 10 * time.Second

// Dispatcher is the Notifier that sends: it decides which events start a
// new episode (SPEC section 8: each is sent once per episode), keeps the
// episodes in the store, and hands new ones to its senders in the
// background. Notify and NotifyRun never block on a sender and never fail.
type Dispatcher struct {
	store   EpisodeStore
	senders []Sender
	log     *zap.Logger
	now     func() time.Time

	mu       sync.Mutex
	episodes map[string]store.Episode // the last known episodes (a fallback when the store fails)
	inFlight map[string]time.Time     // episodes queued or being sent: key to StartedAt
	pending  int                      // jobs queued or being sent
	closed   bool

	queue  chan job
	ctx    context.Context // cancelled by Close when its deadline passes
	cancel context.CancelFunc
	done   chan struct{}
}

type job struct {
	key     string
	started time.Time
	event   Event
}

// DispatcherOptions are the optional settings of NewDispatcher.
type DispatcherOptions struct {
	// QueueSize is the number of pending sends (DefaultQueueSize when 0).
	QueueSize int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// NewDispatcher returns a Dispatcher over st that sends through senders and
// starts its background sender; Close stops it.
func NewDispatcher(st EpisodeStore, senders []Sender, log *zap.Logger, opt DispatcherOptions) *Dispatcher {
	if opt.QueueSize <= 0 {
		opt.QueueSize = DefaultQueueSize
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if log == nil {
		log = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{
		store: st, senders: senders, log: log, now: opt.Now,
		episodes: map[string]store.Episode{}, inFlight: map[string]time.Time{},
		queue: make(chan job, opt.QueueSize), ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
	go d.work()
	return d
}

var (
	_ Notifier    = Log{}
	_ RunNotifier = (*Dispatcher)(nil)
)

// EpisodeKey is the store key of an event's episode: its kind, and its
// pool for pool events ("seats_exhausted/primary"), its target for
// target_failed, its warning for license_expiring ("license_expiring/7d"),
// its pool and change for seats_changed ("seats_changed/primary/50-60"),
// so that each change is an episode of its own.
func EpisodeKey(e Event) string {
	if e.Kind == LicenseExpiring {
		return fmt.Sprintf("%s/%dd", e.Kind, e.Days) // license_expiring/7d
	}
	if e.Kind == SeatsChanged {
		return fmt.Sprintf("%s/%s/%s-%s", e.Kind, e.Pool, limitWord(e.OldLimit, e.OldUnlimited), limitWord(e.Limit, e.Unlimited))
	}
	if e.Target != "" {
		return string(e.Kind) + "/" + e.Target
	}
	if e.Pool == "" {
		return string(e.Kind)
	}
	return string(e.Kind) + "/" + e.Pool
}

// Notify handles events without pool states: episodes of pools that have
// no event in this run are left open. Prefer NotifyRun.
func (d *Dispatcher) Notify(ctx context.Context, events []Event) {
	run := Run{Events: events}
	if len(events) > 0 {
		run.RunID = events[0].RunID
	}
	// The pools an event names are known from the event's numbers.
	seen := map[string]bool{}
	for _, e := range events {
		if e.Pool != "" && !seen[e.Pool] {
			seen[e.Pool] = true
			run.Pools = append(run.Pools, PoolState{Name: e.Pool, Limit: e.Limit, Unlimited: e.Unlimited,
				Used: e.Used, Remaining: e.Remaining, Queued: e.Queued})
		}
	}
	d.notify(ctx, run, false)
}

// NotifyRun handles one finished sync: it logs the events, opens and ends
// episodes, and queues the events whose episode has not been sent yet.
// It returns once the episodes are stored, without waiting for a send.
func (d *Dispatcher) NotifyRun(ctx context.Context, run Run) {
	d.notify(ctx, run, true)
}

func (d *Dispatcher) notify(ctx context.Context, run Run, allPools bool) {
	Log{Logger: d.log}.Notify(ctx, run.Events)
	ctx = context.WithoutCancel(ctx) // a run's episodes are recorded even if it was cancelled

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		d.log.Error("notification dispatcher is closed: events not sent", zap.String("run_id", run.RunID))
		return
	}
	rctx, cancel := context.WithTimeout(ctx, storeTimeout)
	eps, err := d.store.Episodes(rctx)
	cancel()
	if err != nil {
		d.log.Error("read notification episodes: using the last known ones", zap.Error(err))
		eps = d.episodes
	}
	d.episodes = eps
	now := d.now().UTC()

	current := map[string]Event{}
	var keys []string // in the run's order
	for _, e := range run.Events {
		key := EpisodeKey(e)
		if _, dup := current[key]; !dup {
			keys = append(keys, key)
		}
		current[key] = e
	}
	// Open or continue the episode of every event; queue it if it was
	// never delivered.
	for _, key := range keys {
		e := current[key]
		ep, open := eps[key]
		if !open {
			ep = store.Episode{StartedAt: now}
			d.log.Info("notification episode started", zap.String("episode", key), zap.String("run_id", run.RunID))
		}
		ep.RunID = run.RunID
		d.setEpisode(ctx, key, ep)
		if ep.SentAt.IsZero() && !d.inFlight[key].Equal(ep.StartedAt) {
			d.enqueue(job{key: key, started: ep.StartedAt, event: e})
		}
	}
	// End the episodes whose state is over.
	pools := map[string]PoolState{}
	for _, p := range run.Pools {
		pools[p.Name] = p
	}
	failed, refused := current[string(RunFailed)], current[string(GuardTripped)]
	succeeded := failed.Kind == "" && refused.Kind == ""
	targetOK := map[string]bool{}
	for _, t := range run.Targets {
		targetOK[t.Name] = t.OK
	}
	ended := make([]string, 0)
	for key := range eps {
		kind, pool := cutKey(key)
		_, seen := current[key]
		switch {
		case kind == TargetFailed:
			// Lasts until a push to the target goes through.
			if targetOK[pool] {
				ended = append(ended, key)
			}
		case kind == RunFailed || kind == GuardTripped:
			// Both last until a run succeeds: a failed pull says nothing
			// about the guard, and a refused run is no success.
			if succeeded {
				ended = append(ended, key)
			}
		case kind == LicenseExpiring || kind == LicenseExpired || kind == LicenseInvalid:
			// Last while the runs report them: a licence renewed (or
			// mended) ends them, and the next expiry warns again.
			if succeeded && !seen {
				ended = append(ended, key)
			}
		case kind == SeatsChanged:
			// Told by the one run that sees the change; the next run that
			// succeeds without it ends it, so a change back is news again.
			if succeeded && !seen {
				ended = append(ended, key)
			}
		case pool == "":
		case !succeeded:
			// A failed or refused run wrote nothing (or not all it
			// planned): its pool numbers say nothing about the store.
		default:
			p, known := pools[pool]
			if !known {
				if allPools {
					ended = append(ended, key) // the pool is gone from the configuration
				}
				continue
			}
			if poolEpisodeOver(kind, seen, p) {
				ended = append(ended, key)
			}
		}
	}
	sort.Strings(ended)
	for _, key := range ended {
		d.endEpisode(ctx, key, run.RunID)
	}
}

// poolEpisodeOver says whether a pool episode of kind ends with the pool in
// state p; seen says whether the run had the event.
func poolEpisodeOver(kind Kind, seen bool, p PoolState) bool {
	switch kind {
	case SeatsExhausted:
		// Lasts while the pool stays full with people queued.
		return !seen && (!p.full() || p.Queued == 0)
	case SeatsAvailable:
		// Lasts until the pool is full again (even in the run that
		// opened it, so the next freed seat is news again).
		return p.full()
	default: // seats_low, overage: last while the run reports them
		return !seen
	}
}

// limitWord is a limit in an episode key: "50" or "unlimited".
func limitWord(n int, unlimited bool) string {
	if unlimited {
		return "unlimited"
	}
	return fmt.Sprint(n)
}

// cutKey splits an episode key into its kind and pool ("" for run-level
// episodes). A kind never holds a slash; a pool name may.
func cutKey(key string) (Kind, string) {
	kind, pool, _ := strings.Cut(key, "/")
	return Kind(kind), pool
}

// setEpisode and endEpisode write through to the store and keep the
// in-memory copy; a store error is logged. Call with d.mu held.
func (d *Dispatcher) setEpisode(ctx context.Context, key string, ep store.Episode) {
	d.episodes[key] = ep
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := d.store.SetEpisode(ctx, key, ep); err != nil {
		d.log.Error("record notification episode", zap.String("episode", key), zap.Error(err))
	}
}

func (d *Dispatcher) endEpisode(ctx context.Context, key, runID string) {
	delete(d.episodes, key)
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := d.store.EndEpisode(ctx, key); err != nil {
		d.log.Error("end notification episode", zap.String("episode", key), zap.Error(err))
		return
	}
	d.log.Info("notification episode ended", zap.String("episode", key), zap.String("run_id", runID))
}

// enqueue hands j to the background sender without blocking. Call with
// d.mu held.
func (d *Dispatcher) enqueue(j job) {
	if len(d.senders) == 0 {
		return // nothing to send through: the log line is the notification
	}
	select {
	case d.queue <- j:
		d.inFlight[j.key] = j.started
		d.pending++
	default:
		d.log.Error("notification queue full: event dropped, it is retried after the next run",
			zap.String("episode", j.key), zap.String("run_id", j.event.RunID))
	}
}

func (d *Dispatcher) work() {
	defer close(d.done)
	for j := range d.queue {
		d.deliver(j)
	}
}

// deliver sends j through every sender and marks its episode sent if at
// least one of them delivered it.
func (d *Dispatcher) deliver(j job) {
	delivered := 0
	for _, s := range d.senders {
		if err := d.ctx.Err(); err != nil {
			break
		}
		if err := s.Send(d.ctx, j.event); err != nil {
			d.log.Error("send notification", zap.String("channel", s.Name()), zap.String("event", string(j.event.Kind)),
				zap.String("episode", j.key), zap.String("run_id", j.event.RunID), zap.Error(err))
			continue
		}
		delivered++
		d.log.Info("notification sent", zap.String("channel", s.Name()), zap.String("event", string(j.event.Kind)),
			zap.String("episode", j.key), zap.String("run_id", j.event.RunID))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending--
	if d.inFlight[j.key].Equal(j.started) {
		delete(d.inFlight, j.key)
	}
	if delivered == 0 {
		return // the next run queues it again
	}
	ep, open := d.episodes[j.key]
	if !open || !ep.StartedAt.Equal(j.started) {
		return // the episode ended (or a new one began) while it was being sent
	}
	ep.SentAt = d.now().UTC()
	d.setEpisode(context.Background(), j.key, ep)
}

// Flush waits until every queued send has been tried (delivered or given
// up) or ctx is done. The Dispatcher goes on taking events.
func (d *Dispatcher) Flush(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		d.mu.Lock()
		n := d.pending
		d.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("notify: flush: %d notifications not sent yet: %w", n, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// Close stops taking events and waits for the pending sends until ctx is
// done; sends still pending then are abandoned (their episodes stay unsent
// and are sent after the next run, by this or another process).
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.queue)
	}
	d.mu.Unlock()
	select {
	case <-d.done:
		d.cancel()
		return nil
	case <-ctx.Done():
		d.cancel() // senders watch it, so the worker ends promptly
		<-d.done
		return fmt.Errorf("notify: close: pending notifications not sent: %w", context.Cause(ctx))
	}
}
