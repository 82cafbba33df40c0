package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/notify"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/target"
)

// Between runs, serve sends pushes that stayed pending again, backing off
// while a target keeps failing, and runs `targets verify --fix` on each
// target's verify_schedule. Both take the daemon's busy flag and the
// store's run lock, like a sync, so nothing pushes beside a sync.

// Retry backoff: the first retry comes RetryFirst after the push that
// left pushes pending, then twice as long each time, up to RetryMax.
const (
	RetryFirst = 30 * time.Second
	RetryMax   = 15 * time.Minute
)

// retryDelay is the wait before retry number attempt (0 first), the
// first being first.
func retryDelay(first time.Duration, attempt int) time.Duration {
	d := first
	for range attempt {
		d *= 2
		if d >= RetryMax {
			return RetryMax
		}
	}
	return d
}

// pushesLeft reports whether a run left pushes pending on some target.
func pushesLeft(results []target.Result) bool {
	for _, r := range results {
		if r.Pending > 0 || r.Error != "" {
			return true
		}
	}
	return false
}

// afterPush schedules a retry when pushes were left pending, and forgets
// the backoff when none were.
func (d *Daemon) afterPush(results []target.Result) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.retry != nil {
		d.retry.Stop()
		d.retry = nil
	}
	if !pushesLeft(results) {
		d.retryAttempt = 0
		return
	}
	if d.stopping || !d.isLeader {
		return // the leader, or the next one, sends them
	}
	first := d.RetryFirst
	if first <= 0 {
		first = RetryFirst
	}
	wait := retryDelay(first, d.retryAttempt)
	d.retryAttempt++
	d.Log.Info("pushes stay pending; sending them again later", zap.Duration("in", wait), zap.Int("attempt", d.retryAttempt))
	d.retry = time.AfterFunc(wait, func() { d.exclusive("push retry", d.retryPushes) })
}

// retryLeftover schedules a retry of the pushes an earlier process left
// pending, so they do not wait for the next sync.
func (d *Daemon) retryLeftover(ctx context.Context) {
	var left []target.Result
	for _, t := range target.Configs(d.Config().Targets) {
		st, err := target.StatusOf(ctx, d.Store, t)
		if err == nil && st.Pending > 0 {
			left = append(left, target.Result{Name: t.Name, Pending: st.Pending})
		}
	}
	if len(left) > 0 {
		d.afterPush(left)
	}
}

// exclusive runs job in the background unless a run (sync or job) is in
// flight or the daemon is stopping; then it is dropped, and logged.
func (d *Daemon) exclusive(what string, job func(ctx context.Context, log *zap.Logger)) {
	d.mu.Lock()
	if !d.isLeader {
		leader := d.leader
		d.mu.Unlock()
		d.Log.Debug(what+" left to the leader", zap.String("leader", leader))
		return
	}
	if d.stopping || d.running != "" {
		busy := d.running
		d.mu.Unlock()
		d.Log.Info(what+" skipped: a run is in flight", zap.String("running", busy))
		if what == "push retry" {
			d.afterPush([]target.Result{{Error: "busy"}})
		}
		return
	}
	d.running = what
	d.runs.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.runs.Done()
		defer func() {
			d.mu.Lock()
			d.running = ""
			d.mu.Unlock()
		}()
		defer func() {
			if v := recover(); v != nil {
				d.Log.Error(what+" panicked", zap.Any("panic", v), zap.Stack("stack"))
			}
		}()
		job(d.runCtx, d.Log.With(zap.String("trigger", what)))
	}()
}

// retryPushes sends every target's pending pushes.
func (d *Daemon) retryPushes(ctx context.Context, log *zap.Logger) {
	cfg := d.Config()
	var results []target.Result
	err := reconcile.WithLock(ctx, d.Store, log, "push-retry", func() error {
		for _, t := range cfg.Targets {
			res, err := d.pushTarget(ctx, log, t)
			results = append(results, res)
			if err != nil {
				log.Warn("push retry: target failed", zap.String("target", t.Name), zap.Error(err))
			}
		}
		return nil
	})
	if err != nil {
		log.Info("push retry: the run lock is taken; trying later", zap.Error(err))
		results = append(results, target.Result{Error: err.Error()})
	}
	d.notifyTargets(ctx, results)
	d.afterPush(results)
}

// pushTarget sends one target's pending pushes and counts them.
func (d *Daemon) pushTarget(ctx context.Context, log *zap.Logger, t config.Target) (target.Result, error) {
	res, err := d.TargetTypes.Push(ctx, d.Store, log, t, false)
	d.metrics.ObservePush(res, d.now())
	return res, err
}

// notifyTargets hands a push's target states to the notifier, so that a
// target_failed episode starts, or ends when the target is back.
func (d *Daemon) notifyTargets(ctx context.Context, results []target.Result) {
	rn, ok := d.notifier().(notify.RunNotifier)
	if !ok {
		return
	}
	run := notify.Run{RunID: "push-" + reconcile.NewRunID(d.now())}
	for _, r := range results {
		if r.Name == "" {
			continue
		}
		run.Targets = append(run.Targets, notify.TargetState{Name: r.Name, OK: r.Error == ""})
		if r.Error != "" {
			run.Events = append(run.Events, notify.Event{Kind: notify.TargetFailed, RunID: run.RunID, Target: r.Name,
				Message: fmt.Sprintf("Target %s failed: %s. Its %d pushes stay pending and are sent again later.", r.Name, r.Error, r.Pending+r.Failed)})
		}
	}
	if len(run.Targets) > 0 {
		rn.NotifyRun(ctx, run)
	}
}

// scheduleVerify adds each target's verify_schedule to c.
func (d *Daemon) scheduleVerify(c *cron.Cron, cfg *config.Config) {
	for _, t := range cfg.Targets {
		sched, err := config.ParseSchedule(t.VerifySchedule)
		if err != nil { // validated already
			d.Log.Error("verify_schedule", zap.String("target", t.Name), zap.Error(err))
			continue
		}
		name := t.Name
		c.Schedule(sched, cron.FuncJob(func() {
			d.exclusive("verify "+name, func(ctx context.Context, log *zap.Logger) { d.verify(ctx, log, name) })
		}))
		d.Log.Info("target verify scheduled", zap.String("target", name), zap.String("schedule", t.VerifySchedule),
			zap.Time("next", sched.Next(d.now())))
	}
}

// verify is `targets verify --fix` for one target, under the deprovision
// guard: a fix that would deactivate more than safety.max_deprovision
// allows is not made, and logged for an admin to check.
func (d *Daemon) verify(ctx context.Context, log *zap.Logger, name string) {
	cfg := d.Config()
	t := cfg.Target(name)
	if t == nil {
		return // removed by a reload
	}
	log = log.With(zap.String("target", name))
	client, err := d.TargetTypes.Open(*t, log)
	if err != nil {
		log.Error("verify: open the target", zap.Error(err))
		return
	}
	tc := target.ConfigOf(*t)
	v := &target.Verifier{Store: d.Store}
	err = reconcile.WithLock(ctx, d.Store, log, "verify", func() error {
		drift, err := v.Verify(ctx, tc, client)
		if err != nil {
			return err
		}
		if drift.Count() == 0 {
			log.Info("verify: no drift", zap.Int("users", drift.Users), zap.Int("unmanaged", drift.Unmanaged))
			return nil
		}
		limit := cfg.Safety.MaxDeprovision.Of(drift.Managed)
		if n := drift.Deprovisions(); n > limit {
			log.Warn("verify: drift not fixed: the fix would deactivate more users than safety.max_deprovision allows; run `seatsync targets verify --fix --allow-deprovision` after checking",
				zap.Int("deactivations", n), zap.Int("limit", limit), zap.Strings("seat_leaks", notify.Cap(drift.SeatLeaks, 50)))
			return nil
		}
		log.Warn("verify: drift found; fixing", zap.Int("missing", len(drift.Missing)), zap.Int("seat_leaks", len(drift.SeatLeaks)),
			zap.Int("inactive", len(drift.Inactive)), zap.Int("changed", len(drift.Changed)), zap.Int("unlinked", len(drift.Unlinked)))
		if err := v.Fix(ctx, tc, drift); err != nil {
			return err
		}
		res, err := (&target.Pusher{Store: d.Store, Log: log}).Push(ctx, tc, client, true)
		d.metrics.ObservePush(res, d.now())
		d.afterPush([]target.Result{res})
		return err
	})
	if err != nil {
		log.Error("verify failed", zap.Error(err))
	}
}
