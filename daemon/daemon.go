// Package daemon is `seatsync serve`: it runs syncs on the configured
// schedules, one at a time (in this process by a busy flag and cron's
// SkipIfStillRunning, across processes by the store's run lock), serves
// the HTTP API of package server, reloads its configuration on SIGHUP and
// shuts down gracefully. Replicas sharing a store elect one leader to run
// the schedules (leader.go).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/licensing/licensefile"
	"github.com/seatsync/seatsync/notify"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/server"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/target"
)

// DefaultSchedule is used for sources when neither they nor the top level
// set a schedule.
const DefaultSchedule = "@every 15m"

// Run-on-start modes (server.run_on_start).
const (
	RunOnStartAuto   = "auto"
	RunOnStartAlways = "always"
	RunOnStartNever  = "never"
)

// Daemon is one serve process.
type Daemon struct {
	// Load reads the configuration file again on SIGHUP. It returns
	// config.Problems (every problem) when the file does not validate.
	Load func() (*config.Config, error)
	// Store is the open profile store. A changed store section is only
	// taken into account on restart.
	Store      store.Store
	Connectors connector.Registry
	// TargetTypes opens the configured targets' clients for each run.
	TargetTypes target.Registry
	// Notifier receives every sync's events. This is the seam for the
	// email and webhook senders; notify.Log when nil.
	Notifier notify.Notifier
	Log      *zap.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// RetryFirst is the wait before pending pushes are sent again the
	// first time (RetryFirst when 0).
	RetryFirst time.Duration
	// ID names this process to the other replicas of a shared store
	// (DefaultID when "").
	ID string

	cfg     atomic.Pointer[config.Config]
	metrics *server.Metrics

	mu       sync.Mutex
	running  string // run ID in flight ("" idle, "starting" before the ID is known)
	stopping bool
	runs     sync.WaitGroup
	// runCtx is the context of every sync: it outlives SIGTERM until the
	// shutdown timeout, then it is cancelled and the runner rolls back.
	runCtx    context.Context
	cancelRun context.CancelFunc

	// retry sends pending pushes again (afterPush); retryAttempt is how
	// many retries in a row left pushes pending. Both under mu.
	retry        *time.Timer
	retryAttempt int

	// isLeader is set while this process runs the schedules; leader
	// names who does ("" when unknown); elected is set when the store is
	// a store.Elector. All under mu. electDone is closed when the
	// election ends at shutdown (nil without one).
	isLeader  bool
	leader    string
	elected   bool
	electDone chan struct{}

	cron *cron.Cron
	http *http.Server
	ln   net.Listener
}

// New makes a daemon with the loaded configuration.
func New(cfg *config.Config, st store.Store, reg connector.Registry, n notify.Notifier, load func() (*config.Config, error), log *zap.Logger) *Daemon {
	d := &Daemon{Load: load, Store: st, Connectors: reg, Notifier: n, Log: log, metrics: server.NewMetrics()}
	d.cfg.Store(cfg)
	// A store of its own: this process leads from the start. A shared
	// one: it leads once it wins a campaign (Serve).
	_, shared := st.(store.Elector)
	d.isLeader = !shared
	return d
}

// Metrics are the daemon's Prometheus metrics.
func (d *Daemon) Metrics() *server.Metrics { return d.metrics }

// Config is the configuration in force.
func (d *Daemon) Config() *config.Config { return d.cfg.Load() }

func (d *Daemon) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Serve runs until ctx is cancelled (SIGTERM, SIGINT), reloading the
// configuration whenever hup receives. It returns nil after a clean
// shutdown.
func (d *Daemon) Serve(ctx context.Context, hup <-chan struct{}) error {
	d.runCtx, d.cancelRun = context.WithCancel(context.WithoutCancel(ctx))
	defer d.cancelRun()
	cfg := d.Config()
	d.refresh(ctx) // the gauges are right from the first scrape
	if err := d.listen(cfg); err != nil {
		return err
	}
	d.cron = d.startCron(cfg)
	d.Log.Info("serving", zap.String("listen", d.ln.Addr().String()), zap.Int("sources", len(cfg.Sources)))
	if el, ok := d.Store.(store.Elector); ok {
		d.mu.Lock()
		d.elected = true
		d.electDone = make(chan struct{})
		d.mu.Unlock()
		d.Log.Info("the store is shared: campaigning for the leadership", zap.String("id", d.id()), zap.Duration("leader_check", d.leaderCheck()))
		go d.elect(ctx, el, d.electDone)
	} else {
		d.lead(ctx) // the only process on its store
	}
	for {
		select {
		case <-ctx.Done():
			return d.shutdown()
		case <-hup:
			d.reload()
		}
	}
}

// listen opens the HTTP listener of cfg and serves on it.
func (d *Daemon) listen(cfg *config.Config) error {
	ln, err := server.Listen(cfg.Server.Listen, cfg.Server.Token.IsSet())
	if err != nil {
		return err
	}
	srv := &server.Server{Backend: backend{d}, Metrics: d.metrics, Log: d.Log, Now: d.Now}
	hs := server.NewHTTPServer(srv.Handler(), d.Log)
	old, oldLn := d.http, d.ln
	d.http, d.ln = hs, ln
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.Log.Error("http server stopped", zap.Error(err))
		}
	}()
	if old != nil {
		d.Log.Info("listening on a new address", zap.String("old", oldLn.Addr().String()), zap.String("new", ln.Addr().String()))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = old.Shutdown(ctx)
	}
	return nil
}

// Addr is the address the HTTP server listens on.
func (d *Daemon) Addr() net.Addr { return d.ln.Addr() }

// groups maps each distinct schedule to the sources that follow it, in
// configuration order.
func groups(cfg *config.Config) (specs []string, sources map[string][]string) {
	sources = map[string][]string{}
	for _, s := range cfg.Sources {
		spec := cfg.ScheduleOf(s.Name)
		if spec == "" {
			spec = DefaultSchedule
		}
		if _, ok := sources[spec]; !ok {
			specs = append(specs, spec)
		}
		sources[spec] = append(sources[spec], s.Name)
	}
	return specs, sources
}

// cronLogger adapts zap to cron.Logger.
type cronLogger struct{ log *zap.Logger }

func (l cronLogger) Info(msg string, kv ...any) {
	if msg == "skip" {
		l.log.Info("tick skipped: the previous sync of this schedule is still running", fields(kv)...)
		return
	}
	// cron logs every schedule and wake-up at Info; that is debug for us.
	l.log.Debug(msg, fields(kv)...)
}

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error(msg, append(fields(kv), zap.Error(err))...)
}

func fields(kv []any) []zap.Field {
	out := make([]zap.Field, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, zap.Any(fmt.Sprint(kv[i]), kv[i+1]))
	}
	return out
}

func (d *Daemon) startCron(cfg *config.Config) *cron.Cron {
	cl := cronLogger{d.Log.Named("cron")}
	c := cron.New(cron.WithLogger(cl), cron.WithChain(cron.SkipIfStillRunning(cl), cron.Recover(cl)))
	specs, srcs := groups(cfg)
	periods := map[string]time.Duration{}
	for _, spec := range specs {
		sched, err := config.ParseSchedule(spec)
		if err != nil { // validated already
			d.Log.Error("schedule", zap.String("schedule", spec), zap.Error(err))
			continue
		}
		names := srcs[spec]
		for _, n := range names {
			periods[n] = Period(sched, d.now())
		}
		c.Schedule(sched, cron.FuncJob(func() { d.scheduled(names, spec) }))
		d.Log.Info("scheduled", zap.String("schedule", spec), zap.Strings("sources", names),
			zap.Time("next", sched.Next(d.now())))
	}
	d.metrics.SetSchedules(periods)
	d.scheduleVerify(c, cfg)
	c.Start()
	return c
}

// scheduled is one tick of one schedule. It waits for its own run, so
// SkipIfStillRunning skips the ticks that come while it lasts.
func (d *Daemon) scheduled(sources []string, spec string) {
	if !d.leading() {
		d.Log.Debug("scheduled sync left to the leader", zap.String("schedule", spec), zap.String("leader", d.Leadership().Leader))
		return
	}
	done, _, err := d.start(reconcile.Options{Mode: reconcile.ModeSync, Sources: sources, Trigger: reconcile.TriggerSchedule}, "schedule "+spec)
	if err != nil {
		d.Log.Info("scheduled sync skipped", zap.String("schedule", spec), zap.Strings("sources", sources), zap.String("why", err.Error()))
		return
	}
	<-done
}

// Period is the time between two runs of a schedule after from:
// next(next(from)) - next(from).
func Period(sched cron.Schedule, from time.Time) time.Duration {
	n1 := sched.Next(from)
	return sched.Next(n1).Sub(n1)
}

// runOnStart starts the first sync at once when server.run_on_start asks
// for it: always, or (auto) when the last successful sync of a schedule's
// sources is older than one period of that schedule.
func (d *Daemon) runOnStart(cfg *config.Config) {
	mode := cfg.Server.RunOnStart
	var due []string
	switch mode {
	case RunOnStartNever:
		return
	case RunOnStartAlways:
	default:
		var err error
		if due, err = d.due(cfg); err != nil {
			d.Log.Warn("read the run history; syncing at once", zap.Error(err))
			due = nil
		} else if len(due) == 0 {
			d.Log.Info("the last sync is recent: waiting for the schedule")
			return
		}
	}
	if len(due) == len(cfg.Sources) {
		due = nil // all of them
	}
	if _, _, err := d.start(reconcile.Options{Mode: reconcile.ModeSync, Sources: due, Trigger: reconcile.TriggerStart}, "start ("+mode+")"); err != nil {
		d.Log.Info("start-up sync skipped", zap.String("why", err.Error()))
	}
}

// due lists the sources whose last successful sync is older than one
// period of their schedule.
func (d *Daemon) due(cfg *config.Config) ([]string, error) {
	runs, err := d.Store.Runs(d.runCtx, 500)
	if err != nil {
		return nil, err
	}
	// A sync that never finished (its process was killed) left the store
	// half-synced: finish the job now rather than at the next tick.
	for _, r := range runs {
		if r.Mode != reconcile.ModeSync || r.Result == reconcile.ResultSkipped {
			continue
		}
		if r.Result == reconcile.ResultRunning || r.Result == reconcile.ResultInterrupted {
			d.Log.Info("the last sync did not finish; syncing at once", zap.String("run_id", r.ID))
			return sourceNames(cfg), nil
		}
		break
	}
	now := d.now()
	lastOK := map[string]time.Time{}
	for _, r := range runs {
		if r.Mode != reconcile.ModeSync || r.Result != reconcile.ResultOK {
			continue
		}
		names := r.Sources
		if len(names) == 0 {
			names = sourceNames(cfg)
		}
		for _, n := range names {
			if r.FinishedAt.After(lastOK[n]) {
				lastOK[n] = r.FinishedAt
			}
		}
	}
	var due []string
	specs, srcs := groups(cfg)
	for _, spec := range specs {
		sched, err := config.ParseSchedule(spec)
		if err != nil {
			continue
		}
		period := Period(sched, now)
		for _, n := range srcs[spec] {
			if last, ok := lastOK[n]; !ok || now.Sub(last) > period {
				due = append(due, n)
			}
		}
	}
	return due, nil
}

func sourceNames(cfg *config.Config) []string {
	out := make([]string, len(cfg.Sources))
	for i, s := range cfg.Sources {
		out[i] = s.Name
	}
	return out
}

// start starts a sync in the background unless one is running, the
// daemon is stopping or another replica leads. It returns the run's ID
// and a channel closed when the run is over. trigger says what started it
// for the log, in more words than opt.Trigger, which the run's record
// keeps ("schedule */15 * * * *" for "schedule").
func (d *Daemon) start(opt reconcile.Options, trigger string) (done <-chan struct{}, runID string, err error) {
	d.mu.Lock()
	if d.stopping {
		d.mu.Unlock()
		return nil, "", server.ErrStopping
	}
	if !d.isLeader {
		leader := d.leader
		d.mu.Unlock()
		return nil, "", &server.NotLeaderError{Leader: leader}
	}
	if d.running != "" {
		id := d.running
		d.mu.Unlock()
		return nil, id, fmt.Errorf("%w (run %s)", server.ErrBusy, id)
	}
	id := reconcile.NewRunID(d.now())
	opt.RunID = id
	d.running = id
	d.runs.Add(1)
	d.mu.Unlock()

	finished := make(chan struct{})
	cfg := d.Config()
	log := d.Log.With(zap.String("trigger", trigger))
	runner := &reconcile.Runner{
		Config:      cfg,
		Store:       d.Store,
		Connectors:  d.Connectors,
		TargetTypes: d.TargetTypes,
		Notifier:    d.notifier(),
		Log:         log,
		Now:         d.Now,
	}
	go func() {
		defer d.runs.Done()
		defer close(finished)
		defer func() {
			d.mu.Lock()
			d.running = ""
			d.mu.Unlock()
		}()
		var rep *reconcile.Report
		err := func() (err error) {
			defer func() {
				if v := recover(); v != nil {
					err = fmt.Errorf("sync panicked: %v", v)
					log.Error("sync panicked", zap.Any("panic", v), zap.Stack("stack"))
				}
			}()
			rep, err = runner.Run(d.runCtx, opt)
			return err
		}()
		if rep == nil {
			rep = &reconcile.Report{RunID: id, Mode: reconcile.ModeSync, Result: reconcile.ResultFailed, Error: err.Error()}
		}
		d.finished(rep, err, log)
	}()
	return finished, id, nil
}

// finished records what a sync did in the metrics and the log.
func (d *Daemon) finished(rep *reconcile.Report, err error, log *zap.Logger) {
	switch {
	case rep.Result == reconcile.ResultSkipped:
		log.Info("sync skipped: another process holds the store's run lock", zap.String("run_id", rep.RunID))
	case err != nil:
		log.Warn("sync did not complete; the next tick retries", zap.Error(err))
	}
	d.metrics.ObserveRun(rep)
	d.refresh(context.WithoutCancel(d.runCtx))
	if rep.Mode == reconcile.ModeSync && rep.Result == reconcile.ResultOK && len(rep.Targets) > 0 {
		d.afterPush(rep.Targets)
	}
}

// refresh recomputes the pool gauges from the store, so they agree with
// `seatsync seats`.
func (d *Daemon) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	profiles, err := d.Store.Profiles(ctx)
	if err != nil {
		d.Log.Warn("read profiles for the pool metrics", zap.Error(err))
		return
	}
	pol, _, err := licensefile.Policy(ctx, d.Config().Licensing, d.Store, d.now(), nil)
	if err != nil {
		d.Log.Warn("read the licence for the pool metrics", zap.Error(err))
		return
	}
	d.metrics.SetPools(pol.Count(profiles))
	var statuses []target.Status
	for _, t := range target.Configs(d.Config().Targets) {
		st, err := target.StatusOf(ctx, d.Store, t)
		if err != nil {
			d.Log.Warn("read pending pushes for the target metrics", zap.String("target", t.Name), zap.Error(err))
			return
		}
		statuses = append(statuses, st)
	}
	d.metrics.SetTargets(statuses)
}

func (d *Daemon) notifier() notify.Notifier {
	if d.Notifier != nil {
		return d.Notifier
	}
	return notify.Log{Logger: d.Log}
}

// plan does a dry run with the configuration in force.
func (d *Daemon) plan(ctx context.Context, opt reconcile.Options) (*reconcile.Report, error) {
	cfg := d.Config()
	r := &reconcile.Runner{Config: cfg, Store: d.Store, Connectors: d.Connectors, TargetTypes: d.TargetTypes,
		Log: d.Log.With(zap.String("trigger", "api")), Now: d.Now}
	return r.Run(ctx, opt)
}

// reload reads the configuration file again. An invalid file is logged,
// every problem, and the configuration in force is kept.
func (d *Daemon) reload() {
	old := d.Config()
	cfg, err := d.Load()
	if err != nil {
		var problems config.Problems
		if errors.As(err, &problems) {
			for _, p := range problems {
				d.Log.Error("reload: configuration problem", zap.String("path", p.Path), zap.Int("line", p.Line), zap.String("problem", p.Message))
			}
		}
		d.Log.Error("reload refused: keeping the configuration in force", zap.Error(err))
		return
	}
	if cfg.Store.Driver != old.Store.Driver || cfg.Store.Path != old.Store.Path || !cfg.Store.DSN.Equal(old.Store.DSN) {
		d.Log.Warn("reload: a changed store section takes effect only on restart")
	}
	if cfg.Log != old.Log {
		d.Log.Warn("reload: a changed log section takes effect only on restart")
	}
	if !reflect.DeepEqual(cfg.Notify.Email, old.Notify.Email) || !reflect.DeepEqual(cfg.Notify.Webhooks, old.Notify.Webhooks) {
		d.Log.Warn("reload: changed mail or webhook settings take effect only on restart (notify.warn_at_percent applies at once)")
	}
	if cfg.Server.Listen != old.Server.Listen {
		if err := d.listen(cfg); err != nil {
			d.Log.Error("reload refused: cannot listen on the new address; keeping the configuration in force", zap.Error(err))
			return
		}
	} else if !cfg.Server.Token.IsSet() {
		if tcp, ok := d.ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
			d.Log.Error("reload refused: without server.token the server listens on loopback only")
			return
		}
	}
	d.cfg.Store(cfg)
	// A sync in flight goes on; the busy flag keeps the new schedules
	// from starting another until it is over.
	if d.cron != nil {
		d.cron.Stop()
	}
	d.cron = d.startCron(cfg)
	d.refresh(d.runCtx)
	d.Log.Info("configuration reloaded")
}

// shutdown stops taking runs, lets a run in flight finish within
// server.shutdown_timeout (then cancels it: the runner rolls back the
// batch it was writing) and stops the HTTP server.
func (d *Daemon) shutdown() error {
	d.mu.Lock()
	d.stopping = true
	running := d.running
	if d.retry != nil {
		d.retry.Stop()
	}
	d.mu.Unlock()
	timeout := d.Config().Server.ShutdownTimeout.Duration
	if timeout <= 0 {
		timeout = config.DefaultShutdownTimeout
	}
	d.Log.Info("shutting down", zap.String("running", running), zap.Duration("shutdown_timeout", timeout))
	if d.cron != nil {
		d.cron.Stop()
	}
	if d.electDone != nil {
		// Serve's context is done: the election resigns, so another
		// replica takes over while a run in flight here finishes.
		<-d.electDone
	}
	idle := make(chan struct{})
	go func() { d.runs.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-time.After(timeout):
		d.Log.Warn("shutdown timeout: cancelling the sync in flight; its open batch is rolled back and the next sync finishes the job")
		d.cancelRun()
		<-idle
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.http.Shutdown(ctx); err != nil {
		d.Log.Warn("http shutdown", zap.Error(err))
	}
	d.Log.Info("stopped")
	return nil
}

// backend is the daemon as server.Backend.
type backend struct{ d *Daemon }

func (b backend) Config() *config.Config { return b.d.Config() }
func (b backend) Store() store.Store     { return b.d.Store }
func (b backend) Running() string {
	b.d.mu.Lock()
	defer b.d.mu.Unlock()
	if b.d.running == "starting" {
		return ""
	}
	return b.d.running
}

func (b backend) StartSync(opt reconcile.Options) (string, error) {
	if opt.Trigger == "" {
		opt.Trigger = reconcile.TriggerAPI
	}
	_, id, err := b.d.start(opt, "api")
	return id, err
}

func (b backend) Plan(ctx context.Context, opt reconcile.Options) (*reconcile.Report, error) {
	return b.d.plan(ctx, opt)
}

func (b backend) Changed(ctx context.Context) { b.d.refresh(ctx) }

func (b backend) NextRuns() []server.ScheduledRun { return b.d.NextRuns() }

func (b backend) Leadership() server.Leadership { return b.d.Leadership() }

// NextRuns are the schedules of the configuration in force (those the
// cron has), each with its next run after now, in configuration order:
// the syncs, then the verifies of the targets. None once shutting down.
func (d *Daemon) NextRuns() []server.ScheduledRun {
	d.mu.Lock()
	stopping := d.stopping
	d.mu.Unlock()
	if stopping {
		return nil
	}
	cfg := d.Config()
	now := d.now()
	var out []server.ScheduledRun
	specs, srcs := groups(cfg)
	for _, spec := range specs {
		if sched, err := config.ParseSchedule(spec); err == nil { // validated already
			out = append(out, server.ScheduledRun{Kind: "sync", Schedule: spec, Sources: srcs[spec], NextRun: sched.Next(now)})
		}
	}
	for _, t := range cfg.Targets {
		if sched, err := config.ParseSchedule(t.VerifySchedule); err == nil {
			out = append(out, server.ScheduledRun{Kind: "verify", Schedule: t.VerifySchedule, Target: t.Name, NextRun: sched.Next(now)})
		}
	}
	return out
}
