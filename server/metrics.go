package server

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/target"
)

// Metrics are the Prometheus metrics of one serve process. They live in a
// registry of their own, never the global one, so tests and embedders can
// make as many as they like.
type Metrics struct {
	Registry *prometheus.Registry

	poolLimit     *prometheus.GaugeVec
	poolUsed      *prometheus.GaugeVec
	poolRemaining *prometheus.GaugeVec
	poolQueued    *prometheus.GaugeVec
	identities    *prometheus.GaugeVec
	lastSuccess   *prometheus.GaugeVec
	period        *prometheus.GaugeVec
	duration      prometheus.Histogram
	runs          *prometheus.CounterVec
	changes       *prometheus.CounterVec
	unauthorized  prometheus.Counter
	leader        prometheus.Gauge

	targetPending     *prometheus.GaugeVec
	targetPushes      *prometheus.CounterVec
	targetLastSuccess *prometheus.GaugeVec
}

// NewMetrics makes the metrics and their registry (with the Go runtime
// and process collectors).
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		poolLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seatsync_pool_seats_limit",
			Help: "The pool's licence limit (+Inf for an unlimited pool).",
		}, []string{"pool"}),
		poolUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seatsync_pool_seats_used",
			Help: "Seats in use: the pool's active, non-exempt profiles.",
		}, []string{"pool"}),
		poolRemaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seatsync_pool_seats_remaining",
			Help: "Free seats: limit - reserve - used, never below 0 (+Inf for an unlimited pool).",
		}, []string{"pool"}),
		poolQueued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seatsync_pool_seats_queued",
			Help: "Profiles waiting in the licence queue (blocked, reason license).",
		}, []string{"pool"}),
		identities: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seatsync_source_identities",
			Help: "Identities the source reported in its last full pull.",
		}, []string{"source"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seatsync_last_success_timestamp_seconds",
			Help: "When the last successful sync covering the source finished (Unix time).",
		}, []string{"source"}),
		period: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seatsync_schedule_period_seconds",
			Help: "The time between two scheduled syncs of the source, from its schedule (for alerts on seatsync_last_success_timestamp_seconds).",
		}, []string{"source"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "seatsync_run_duration_seconds",
			Help:    "How long syncs take, from the start of the pull to the end of the apply.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2.5, 12),
		}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seatsync_runs_total",
			Help: "Syncs by result: ok, failed, guard_tripped, skipped (another process held the run lock).",
		}, []string{"result"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seatsync_changes_total",
			Help: "Changes applied by syncs, by action (create, update, move, activate, block, delete).",
		}, []string{"action"}),
		targetPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seatsync_target_pending",
			Help: "Pushes waiting to reach the target: pending and refused ones.",
		}, []string{"target"}),
		targetPushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seatsync_target_pushes_total",
			Help: "Pushes to targets by result: sent, failed (refused for one user) or error (the target failed as a whole).",
		}, []string{"target", "result"}),
		targetLastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seatsync_target_last_success_timestamp_seconds",
			Help: "When a push to the target last ended with nothing left pending (Unix time).",
		}, []string{"target"}),
		unauthorized: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seatsync_http_unauthorized_total",
			Help: "HTTP requests refused (401) for a missing or wrong server.token.",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "seatsync_leader",
			Help: "1 while this process leads (runs the schedules, pushes and verifies), 0 on a replica that follows; summed over the replicas of one store it is 1.",
		}),
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.poolLimit, m.poolUsed, m.poolRemaining, m.poolQueued,
		m.identities, m.lastSuccess, m.period, m.duration, m.runs, m.changes, m.unauthorized, m.leader,
		m.targetPending, m.targetPushes, m.targetLastSuccess,
	)
	// Show every result and action from the start, at 0, so rate() and
	// alerts work before the first of each happens.
	for _, r := range []string{reconcile.ResultOK, reconcile.ResultFailed, reconcile.ResultGuardTripped, reconcile.ResultSkipped} {
		m.runs.WithLabelValues(r)
	}
	for _, a := range []string{"create", "update", "move", "activate", "block", "delete"} {
		m.changes.WithLabelValues(a)
	}
	return m
}

// SetPools sets the pool gauges from the seats panel numbers (the same
// numbers `seatsync seats --format json` prints). Pools no longer
// configured are dropped.
func (m *Metrics) SetPools(seats []licensing.Status) {
	m.poolLimit.Reset()
	m.poolUsed.Reset()
	m.poolRemaining.Reset()
	m.poolQueued.Reset()
	for _, s := range seats {
		limit, remaining := float64(s.Limit), float64(s.Remaining)
		if s.Unlimited {
			limit, remaining = math.Inf(1), math.Inf(1)
		}
		m.poolLimit.WithLabelValues(s.Name).Set(limit)
		m.poolUsed.WithLabelValues(s.Name).Set(float64(s.Active))
		m.poolRemaining.WithLabelValues(s.Name).Set(remaining)
		m.poolQueued.WithLabelValues(s.Name).Set(float64(s.Queued))
	}
}

// SetLeader sets the leader gauge: 1 while this process leads.
func (m *Metrics) SetLeader(leading bool) {
	v := 0.0
	if leading {
		v = 1
	}
	m.leader.Set(v)
}

// SetSchedules sets each source's schedule period; sources no longer
// configured are dropped.
func (m *Metrics) SetSchedules(periods map[string]time.Duration) {
	m.period.Reset()
	for source, p := range periods {
		m.period.WithLabelValues(source).Set(p.Seconds())
	}
}

// SetTargets sets each target's pending gauge (pending plus refused
// pushes); targets no longer configured are dropped.
func (m *Metrics) SetTargets(statuses []target.Status) {
	m.targetPending.Reset()
	for _, s := range statuses {
		m.targetPending.WithLabelValues(s.Name).Set(float64(s.Pending + s.Failed))
		for _, r := range []string{"sent", "failed", "error"} {
			m.targetPushes.WithLabelValues(s.Name, r)
		}
	}
}

// ObservePush counts one push run to a target (after a sync, a retry or
// targets push) that ended at now.
func (m *Metrics) ObservePush(res target.Result, now time.Time) {
	m.targetPushes.WithLabelValues(res.Name, "sent").Add(float64(res.Sent))
	m.targetPushes.WithLabelValues(res.Name, "failed").Add(float64(len(res.Failures)))
	if res.Error != "" {
		m.targetPushes.WithLabelValues(res.Name, "error").Inc()
	}
	m.targetPending.WithLabelValues(res.Name).Set(float64(res.Pending + res.Failed))
	if res.Error == "" && res.Pending+res.Failed == 0 {
		m.targetLastSuccess.WithLabelValues(res.Name).Set(float64(now.UnixNano()) / 1e9)
	}
}

// ObserveRun counts one finished sync. A run turned away by another
// process's run lock (result skipped) is counted, and nothing else of it.
func (m *Metrics) ObserveRun(rep *reconcile.Report) {
	if rep == nil {
		return
	}
	result := rep.Result
	if result == reconcile.ResultSkipped {
		m.runs.WithLabelValues(result).Inc()
		return
	}
	if result == "" {
		result = reconcile.ResultFailed
	}
	m.runs.WithLabelValues(result).Inc()
	if !rep.FinishedAt.IsZero() && !rep.StartedAt.IsZero() {
		m.duration.Observe(rep.FinishedAt.Sub(rep.StartedAt).Seconds())
	}
	if result != reconcile.ResultOK {
		return
	}
	for _, s := range rep.Sources {
		if s.Full { // a read of changes counts the changes, not the people
			m.identities.WithLabelValues(s.Name).Set(float64(s.Identities))
		}
		m.lastSuccess.WithLabelValues(s.Name).Set(float64(rep.FinishedAt.UnixNano()) / 1e9)
	}
	for _, ch := range rep.Changes {
		if ch.Result == reconcile.ResultApplied || ch.Result == reconcile.ResultNoSeat {
			m.changes.WithLabelValues(string(ch.Action)).Inc()
		}
	}
	for _, t := range rep.Targets {
		m.ObservePush(t, rep.FinishedAt)
	}
}
