package daemon

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/server"
	"github.com/seatsync/seatsync/store"
)

// Several serve processes may share one store (postgres). Then the store
// is a store.Elector and one of them, the leader, does the work that must
// happen once: the scheduled syncs, run_on_start, the push retries and the
// verifies. The others (followers) serve the read API, the status page and
// the admin calls, and campaign every server.leader_check to take over. A
// store of one process (sqlite) is no Elector, and its process always
// leads.
//
// Losing the leadership stops new work from starting, not the run in
// flight: that one finishes or fails on its own, fenced by the store's
// run lock, which no other run can take while it holds it.

// DefaultID names this process to the other replicas: its host name (a
// pod's name on Kubernetes) and process ID.
func DefaultID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// leaderCheck is server.leader_check of the configuration in force.
func (d *Daemon) leaderCheck() time.Duration {
	if c := d.Config().Server.LeaderCheck.Duration; c > 0 {
		return c
	}
	return config.DefaultLeaderCheck
}

// id is the name this process campaigns under.
func (d *Daemon) id() string {
	if d.ID != "" {
		return d.ID
	}
	return DefaultID()
}

// leading reports whether this process may start scheduled work now.
func (d *Daemon) leading() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.isLeader
}

// Leadership is who leads, as GET /readyz and /api/v1/status show it.
func (d *Daemon) Leadership() server.Leadership {
	d.mu.Lock()
	defer d.mu.Unlock()
	return server.Leadership{ID: d.id(), Leader: d.leader, Leading: d.isLeader, Elected: d.elected}
}

// lead starts leading: the gauge, the log, and the work that waited for
// a leader (run_on_start, pushes left pending).
func (d *Daemon) lead(ctx context.Context) {
	d.mu.Lock()
	if d.stopping {
		d.mu.Unlock()
		return
	}
	d.isLeader, d.leader = true, d.id()
	elected := d.elected
	d.mu.Unlock()
	d.metrics.SetLeader(true)
	if elected {
		d.Log.Info("became the leader: running the schedules", zap.String("leader", d.id()))
	}
	d.runOnStart(d.Config())
	d.retryLeftover(ctx)
}

// follow stops leading (or never started): no new scheduled work, no
// push retry waiting. leader is who leads now, "" when unknown.
func (d *Daemon) follow(leader string) {
	d.mu.Lock()
	was := d.isLeader
	changed := d.leader != leader
	d.isLeader, d.leader = false, leader
	if d.retry != nil {
		d.retry.Stop()
		d.retry = nil
	}
	d.retryAttempt = 0
	running := d.running
	d.mu.Unlock()
	d.metrics.SetLeader(false)
	switch {
	case was:
		d.Log.Info("lost the leadership: no new runs here until it is won again; a run in flight finishes, fenced by the store's run lock",
			zap.String("id", d.id()), zap.String("running", running))
	case changed && leader != "":
		d.Log.Info("following the leader", zap.String("leader", leader), zap.String("id", d.id()))
	}
}

// elect campaigns every server.leader_check until ctx ends (SIGTERM),
// leading while it holds a won campaign; then it resigns, so another
// replica takes over at its next campaign. It closes done when it
// returns.
func (d *Daemon) elect(ctx context.Context, el store.Elector, done chan<- struct{}) {
	defer close(done)
	lastErr := ""
	for {
		check := d.leaderCheck()
		l, err := el.Campaign(ctx, d.id(), check)
		switch {
		case ctx.Err() != nil:
			if l != nil {
				l.Resign()
			}
			return
		case err != nil:
			// Logged when it changes, not every check while the
			// database is away.
			if err.Error() != lastErr {
				d.Log.Warn("leader election: campaign failed; trying again every leader_check", zap.Error(err), zap.Duration("leader_check", check))
				lastErr = err.Error()
			}
			d.follow("")
		case l != nil:
			lastErr = ""
			d.lead(ctx)
			select {
			case <-l.Lost():
				d.follow("")
				continue // the lock may be free already: campaign again at once
			case <-ctx.Done():
				l.Resign()
				d.mu.Lock()
				d.isLeader, d.leader = false, ""
				d.mu.Unlock()
				d.metrics.SetLeader(false)
				d.Log.Info("resigned the leadership: shutting down", zap.String("id", d.id()))
				return
			}
		default:
			lastErr = ""
			lctx, cancel := context.WithTimeout(ctx, check)
			leader, err := el.Leader(lctx)
			cancel()
			if err != nil {
				d.Log.Debug("leader election: read the leader", zap.Error(err))
			}
			d.follow(leader)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(check):
		}
	}
}
