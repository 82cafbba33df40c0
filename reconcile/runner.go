package reconcile

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/connector"
	"github.com/seatsync/seatsync/internal/lockholder"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/notify"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/target"
)

var (
	// ErrGuardTripped is returned when a safety guard refused the run;
	// nothing was written.
	ErrGuardTripped = errors.New("refused by a safety guard, nothing written")
	// ErrPull wraps every failure to pull a source in full.
	ErrPull = errors.New("pull failed")
	// ErrPushes is returned when the store was updated but pushes to a
	// target failed or are still pending; they are sent again later.
	ErrPushes = errors.New("pushes to a target failed or are still pending")
)

// Modes of a run.
const (
	ModePlan = "plan"
	ModeSync = "sync"
)

// Options select what one run does.
type Options struct {
	Mode             string   // plan | sync
	Sources          []string // names; empty means every source
	AllowDeprovision bool
	// Full makes every source of the run read in full, also those whose
	// reads are incremental (plan --full, sync --full); their cursors
	// start again from this read.
	Full bool
	// RunID names the run; NewRunID makes one when it is empty. A caller
	// that must answer with the ID before the run ends (the API's POST
	// sync) makes it first.
	RunID string
	// Trigger says what started the run (one of the Trigger constants),
	// for the report and the run's record; "" when nobody said.
	Trigger string
}

// Triggers: what started a run.
const (
	TriggerSchedule = "schedule" // a schedule of serve
	TriggerStart    = "start"    // serve at start-up (server.run_on_start)
	TriggerAPI      = "api"      // POST /api/v1/sync or /api/v1/plan
	TriggerCLI      = "cli"      // seatsync sync or plan
)

// NewRunID returns a new run ID: a ULID, so IDs sort by time.
func NewRunID(now time.Time) string {
	return ulid.MustNew(ulid.Timestamp(now), rand.Reader).String()
}

// Runner pulls, plans and (in sync mode) applies. It is the one place that
// knows about dry runs: connectors and stores never do.
type Runner struct {
	Config     *config.Config
	Store      store.Store
	Connectors connector.Registry
	// TargetTypes opens the clients of the configured targets
	// (Config.Targets), which every applied change is marked pending for,
	// and pushed to after the apply.
	TargetTypes target.Registry
	Notifier    notify.Notifier
	Log         *zap.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// BatchSize is the number of writes per store transaction (default 5000).
	BatchSize int
	// LockTTL is how long the run lock lasts between renewals (default 2m).
	LockTTL time.Duration
	// LicenseClient fetches licensing.license_url; nil builds one from
	// licensing.license_tls.
	LicenseClient *http.Client
	// Progress, when set, hears how far each source's pull has got: every
	// 1,000 identities, after every page and at the end. It is called from
	// the pulling goroutines (one per source), so it must be safe for
	// concurrent use.
	Progress func(source string, identities, pages int)
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

// Run does one run and returns its report. The error is nil on success,
// wraps ErrGuardTripped when a guard refused it, and is anything else when
// the run failed; the report is filled in as far as the run got.
func (r *Runner) Run(ctx context.Context, opt Options) (*Report, error) {
	if opt.RunID == "" {
		opt.RunID = NewRunID(r.now())
	}
	rep := &Report{
		RunID:     opt.RunID,
		Mode:      opt.Mode,
		Trigger:   opt.Trigger,
		StartedAt: r.now(),
		Changes:   []Change{},
		Skipped:   []Skipped{},
		Targets:   []target.Result{},
	}
	log := r.Log.With(zap.String("run_id", rep.RunID), zap.String("mode", opt.Mode))
	if _, err := r.selectSources(opt.Sources); err != nil {
		return rep, err // a wrong --source is not a run: nothing to record
	}
	err := r.run(ctx, log, opt, rep)
	rep.FinishedAt = r.now()
	switch {
	case err == nil:
	case errors.Is(err, ErrPushes):
		rep.Error = err.Error() // the store's part is done: the result stays ok
	case errors.Is(err, ErrGuardTripped):
		rep.Result = ResultGuardTripped
	case errors.Is(err, store.ErrLocked):
		// Another process is doing the work: nothing failed.
		rep.Result = ResultSkipped
		rep.Error = err.Error()
	default:
		rep.Result = ResultFailed
		rep.Error = err.Error()
	}
	var limits map[string]string
	if opt.Mode == ModeSync && rep.Result == ResultOK {
		limits = r.seats(context.WithoutCancel(ctx), log, rep)
	}
	if opt.Mode == ModeSync {
		// The run's record survives a cancelled context: it says what happened.
		if serr := r.saveRun(context.WithoutCancel(ctx), rep); serr != nil {
			log.Error("record run", zap.Error(serr))
			if err == nil {
				err = serr
			}
		}
		if rep.Result != ResultSkipped {
			r.prune(context.WithoutCancel(ctx), log)
		}
	}
	r.notify(ctx, rep)
	// Remembered once told: a run that dies before announces the change
	// at the next (its episode keeps it to once).
	r.rememberLimits(context.WithoutCancel(ctx), log, limits)
	log.Info("run finished", zap.String("result", rep.Result), zap.Duration("duration", rep.FinishedAt.Sub(rep.StartedAt)),
		zap.Int("create", rep.Summary.Create), zap.Int("update", rep.Summary.Update), zap.Int("move", rep.Summary.Move),
		zap.Int("activate", rep.Summary.Activate), zap.Int("block", rep.Summary.Block), zap.Int("delete", rep.Summary.Delete),
		zap.Int("unchanged", rep.Summary.Unchanged), zap.Int("skipped", rep.Summary.Skipped))
	return rep, err
}

func (r *Runner) run(ctx context.Context, log *zap.Logger, opt Options, rep *Report) error {
	sources, err := r.selectSources(opt.Sources)
	if err != nil {
		return err
	}
	// The licence is read at every run (so a renewed one frees the queue
	// at the next), before the pull: a licence problem shows even when a
	// source fails.
	policy, err := r.license(ctx, log, opt, rep)
	if err != nil {
		return err
	}
	pulls, reads, results, err := r.pullAll(ctx, log, sources, opt.Full, rep.StartedAt)
	if err != nil && opt.Mode == ModeSync {
		r.askFullReads(context.WithoutCancel(ctx), log, reads, sources)
	}
	if err != nil {
		for _, s := range sources {
			rep.Sources = append(rep.Sources, SourceResult{Name: s.Name, Type: s.Type})
		}
		return err
	}
	for i := range pulls {
		res := pulls[i].result()
		res.Skipped = len(pulls[i].Skipped)
		rep.Sources = append(rep.Sources, res)
	}
	if opt.Mode == ModeSync {
		unlock, err := r.lock(ctx, log, lockholder.Self(rep.RunID))
		if err != nil {
			return err
		}
		defer unlock()
		if err := r.startRun(ctx, log, rep); err != nil {
			return err
		}
		if err := r.seedTargets(ctx, log); err != nil {
			return err
		}
	}
	grants, err := r.Store.Grants(ctx)
	if err != nil {
		return fmt.Errorf("read product grants: %w", err)
	}
	var profiles []model.Profile
	var tally *store.Tally
	if len(grants) == 0 {
		// Reads of changes plan on the profiles they touch.
		if profiles, tally, err = r.touchedProfiles(ctx, opt.Mode, pulls, policy, rep.StartedAt); err != nil {
			return err
		}
	}
	if tally == nil {
		if profiles, err = r.Store.Profiles(ctx); err != nil {
			return fmt.Errorf("read profiles: %w", err)
		}
	}
	plan := Calculate(Input{
		Now:              rep.StartedAt,
		Pulls:            pulls,
		Profiles:         profiles,
		Grants:           grants,
		Policy:           policy,
		MaxDeprovision:   r.Config.Safety.MaxDeprovision.Of,
		AllowDeprovision: opt.AllowDeprovision,
		Tally:            tally,
	})
	rep.fill(plan)
	if plan.Guard.Tripped {
		return fmt.Errorf("%w: %s", ErrGuardTripped, guardWhy(plan.Guard))
	}
	if opt.Mode != ModeSync {
		rep.Result = ResultNoChanges
		if len(plan.Changes) > 0 {
			rep.Result = ResultChanges
		}
		return r.planTargets(ctx, rep, profiles)
	}
	if len(plan.Changes) >= collectBeforeApply {
		// Planning is over: the pulled identities and the planner's
		// indexes are garbage, but the collector's heap goal is still
		// twice what they took. The apply makes garbage fast, a few KB a
		// change, and would grow the heap to that goal before the next
		// collection. Collected now, the heap stays sized by what the
		// apply keeps: a first sync of 100,000 peaks about 30 MB lower.
		runtime.GC()
	}
	if err := r.apply(ctx, log, rep, policy, plan.Now); err != nil {
		return err
	}
	// Committed: the sources' incremental reads go on from here next time.
	if err := r.saveCursors(ctx, log, rep, plan, reads, results, sources); err != nil {
		return err
	}
	rep.Result = ResultOK
	return r.push(ctx, log, rep)
}

// targets are the configured targets, as the target package needs them.
func (r *Runner) targets() []target.Config { return target.Configs(r.Config.Targets) }

// seedTargets gives a target configured for the first time every profile
// of its areas.
func (r *Runner) seedTargets(ctx context.Context, log *zap.Logger) error {
	for _, t := range r.targets() {
		seeded, err := r.Store.SeedTarget(ctx, t.Name, t.Areas)
		if err != nil {
			return fmt.Errorf("target %s: %w", t.Name, err)
		}
		if seeded {
			log.Info("new target: every profile of its areas will be pushed", zap.String("target", t.Name))
		}
	}
	return nil
}

// push sends every target its pending pushes, after the apply. A target
// that fails does not undo the store's changes: its pushes stay pending
// for the next run.
func (r *Runner) push(ctx context.Context, log *zap.Logger, rep *Report) error {
	var left []string
	for _, t := range r.Config.Targets {
		res, err := r.TargetTypes.Push(ctx, r.Store, log, t, false)
		rep.Targets = append(rep.Targets, res)
		switch {
		case err != nil:
			left = append(left, fmt.Sprintf("target %s: %v", t.Name, err))
		case res.Pending+res.Failed > 0:
			left = append(left, fmt.Sprintf("target %s: %d pending, %d failed", t.Name, res.Pending, res.Failed))
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("%w: %s", ErrPushes, strings.Join(left, "; "))
	}
	return nil
}

// planTargets says, for a dry run, how many profiles each target would be
// sent: those pending already, those a new target is seeded with (a
// profile of its areas with neither a user nor a pending push there; once
// seeded, a target has one or the other for each), and those the plan
// changes.
func (r *Runner) planTargets(ctx context.Context, rep *Report, profiles []model.Profile) error {
	for _, t := range r.targets() {
		pending, err := r.Store.Pending(ctx, t.Name)
		if err != nil {
			return fmt.Errorf("target %s: %w", t.Name, err)
		}
		links, err := r.Store.Links(ctx, t.Name)
		if err != nil {
			return fmt.Errorf("target %s: %w", t.Name, err)
		}
		ids := make(map[int64]bool, len(pending))
		res := target.Result{Name: t.Name, Type: t.Type, Failures: []target.Failure{}}
		failed := make(map[int64]bool)
		for _, p := range pending {
			if p.Failed {
				res.Failed++
				failed[p.ProfileID] = true
				continue
			}
			ids[p.ProfileID] = true
		}
		for i := range profiles {
			p := &profiles[i]
			if _, linked := links[p.ID]; !linked && !failed[p.ID] && t.Covers(p.Area) {
				ids[p.ID] = true
			}
		}
		for i := range rep.Changes {
			ch := &rep.Changes[i]
			if ch.IsProduct() {
				continue // targets are sent profiles, not product licences
			}
			if !slices.Contains(target.Concerned([]target.Config{t}, ch.Before, ch.After), t.Name) {
				continue
			}
			if ch.Before == nil {
				res.Pending++
			} else if !ids[ch.Before.ID] {
				ids[ch.Before.ID] = true
			}
		}
		res.Pending += len(ids)
		rep.Targets = append(rep.Targets, res)
	}
	return nil
}

// collectBeforeApply is how many changes make a garbage collection between
// plan and apply worth its cost (tens of milliseconds for a large
// directory): fewer would not make enough garbage to matter.
const collectBeforeApply = 10_000

func (rep *Report) fill(plan *Plan) {
	rep.Sources = plan.Sources
	rep.Summary = plan.Summary
	rep.Pools = plan.Pools
	rep.Products = plan.Products
	if rep.Products == nil {
		rep.Products = []ProductResult{}
	}
	rep.Changes = plan.Changes
	if rep.Changes == nil {
		rep.Changes = []Change{}
	}
	rep.Skipped = plan.Skipped
	if rep.Skipped == nil {
		rep.Skipped = []Skipped{}
	}
	rep.Guard = plan.Guard
}

func guardWhy(g Guard) string {
	for _, s := range g.Sources {
		if s.Tripped {
			return s.Why
		}
	}
	return ""
}

// selectSources returns the configured sources a run covers.
func (r *Runner) selectSources(names []string) ([]config.Source, error) {
	if len(names) == 0 {
		return r.Config.Sources, nil
	}
	var out []config.Source
	for _, s := range r.Config.Sources {
		if slices.Contains(names, s.Name) {
			out = append(out, s)
		}
	}
	for _, n := range names {
		if r.Config.Source(n) == nil {
			return nil, fmt.Errorf("%w: no source named %q in the configuration", ErrUsage, n)
		}
	}
	return out, nil
}

// ErrUsage marks errors in how seatsync was called.
var ErrUsage = errors.New("usage")

// pullAll pulls every source, concurrently: in full, or what changed
// since its last run for a source that reads incrementally (planRead;
// full reads them all in full). If any pull fails the run stops: a
// partial read must never look like people leaving. It returns, per
// source, how it was read and, for an incremental read, how that went.
func (r *Runner) pullAll(ctx context.Context, log *zap.Logger, sources []config.Source, full bool, now time.Time) ([]Pull, []readPlan, []connector.Result, error) {
	pulls := make([]Pull, len(sources))
	reads := make([]readPlan, len(sources))
	results := make([]connector.Result, len(sources))
	errs := make([]error, len(sources))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for i, sc := range sources {
		pulls[i].Rules = RulesOf(sc)
		srcLog := log.With(zap.String("source", sc.Name))
		src, err := r.Connectors.Open(sc, srcLog)
		if err == nil {
			reads[i], err = r.planRead(ctx, sc, src, full, now)
		}
		if err != nil {
			errs[i] = fmt.Errorf("%w: %s: %w", ErrPull, sc.Name, err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			started := time.Now()
			p := &pulls[i]
			var ids identityList
			pages := 0
			progress := func() {
				if r.Progress != nil {
					r.Progress(sc.Name, ids.n, pages)
				}
			}
			pctx := connector.WithPageHook(ctx, func() { pages++; progress() })
			emit := func(id model.Identity) error {
				ids.add(id)
				if ids.n%1000 == 0 {
					progress()
				}
				return nil
			}
			skip := func(s connector.Skip) {
				p.Skipped = append(p.Skipped, Skipped{Source: sc.Name, ExternalID: s.ExternalID, Where: s.Where, Reason: s.Reason})
			}
			var err error
			if rp := reads[i]; rp.inc != nil {
				results[i], err = readChanges(pctx, rp, p, emit, skip)
				if errors.Is(err, connector.ErrCursor) {
					reads[i].broken = err
				}
			} else {
				err = src.Pull(pctx, emit, skip)
			}
			if err != nil {
				errs[i] = fmt.Errorf("%w: %s: %w", ErrPull, sc.Name, err)
				cancel()
				return
			}
			p.Identities = ids.all()
			progress()
			fields := []zap.Field{zap.Int("identities", len(p.Identities)), zap.Int("skipped", len(p.Skipped)),
				zap.Bool("full", !p.Changes), zap.Duration("duration", time.Since(started))}
			if p.Changes {
				fields = append(fields, zap.Int("deletes", len(p.Deletes)))
			}
			if p.Fallback != "" {
				fields = append(fields, zap.String("incremental_fallback", p.Fallback))
			}
			srcLog.Info("pulled source", fields...)
			if p.NoDeletes {
				srcLog.Info("this read cannot see deletions: people who left are found by the next full read (full_schedule)")
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, reads, nil, err
	}
	return pulls, reads, results, nil
}

// identityList collects a source's identities as they are pulled, in
// chunks of a fixed size: one slice grown by append would be copied over
// and over, through ever larger fresh memory, for a directory of 100,000.
type identityList struct {
	chunks [][]model.Identity
	n      int
}

const identityChunk = 4096

func (l *identityList) add(id model.Identity) {
	if k := len(l.chunks); k == 0 || len(l.chunks[k-1]) == identityChunk {
		l.chunks = append(l.chunks, make([]model.Identity, 0, identityChunk))
	}
	last := &l.chunks[len(l.chunks)-1]
	*last = append(*last, id)
	l.n++
}

// all returns the identities in the order they came, in one slice of the
// right size (nil when there are none).
func (l *identityList) all() []model.Identity {
	if l.n == 0 {
		return nil
	}
	out := make([]model.Identity, 0, l.n)
	for _, c := range l.chunks {
		out = append(out, c...)
	}
	return out
}

// RulesOf converts a source's configuration into the planner's rules.
func RulesOf(sc config.Source) SourceRules {
	rules := SourceRules{
		Name:          sc.Name,
		Type:          sc.Type,
		UsernameCase:  sc.UsernameCase,
		Area:          sc.Area,
		OnLeave:       sc.OnLeave,
		DeleteAfter:   sc.DeleteAfter.Duration,
		Adopt:         sc.Adopt,
		MaxFieldBytes: sc.MaxFieldBytes,
	}
	for _, ar := range sc.AreaRules {
		rule := AreaRule{Group: ar.Group, Area: ar.Area}
		if ar.Attribute != nil {
			rule.Attribute, rule.Equals = ar.Attribute.Name, ar.Attribute.Equals
		}
		rules.AreaRules = append(rules.AreaRules, rule)
	}
	return rules
}

// lock takes the store's run lock and keeps renewing it until unlock. A
// lock whose holder is a process on this host that no longer exists (a
// run killed, a machine that lost power) is taken over at once; any other
// holder's lock stands until its TTL runs out.
func (r *Runner) lock(ctx context.Context, log *zap.Logger, self lockholder.Holder) (unlock func(), err error) {
	return Lock(ctx, r.Store, log, self, r.LockTTL)
}

// Lock takes st's run lock for self, for anything that must not run
// beside a sync (targets push, verify --fix), and keeps renewing it until
// unlock. ttl is 2 minutes when 0.
func Lock(ctx context.Context, st store.Store, log *zap.Logger, self lockholder.Holder, ttl time.Duration) (unlock func(), err error) {
	if ttl <= 0 {
		ttl = 2 * time.Minute
	}
	holder := self.String()
	err = st.AcquireLock(ctx, holder, ttl)
	var le *store.LockedError
	if errors.As(err, &le) {
		if prev, ok := lockholder.Parse(le.Holder); ok {
			if gone, why := prev.Gone(); gone {
				err = st.TakeOverLock(ctx, le.Holder, holder, ttl)
				if err == nil {
					log.Warn("took over the run lock: its holder is gone", zap.String("previous_holder", le.Holder),
						zap.String("why", why), zap.Time("would_have_expired", le.Expires))
				}
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("take the run lock: %w", err)
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := st.AcquireLock(context.WithoutCancel(ctx), holder, ttl); err != nil {
					log.Error("renew the run lock", zap.Error(err))
				}
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		if err := st.ReleaseLock(context.WithoutCancel(ctx), holder); err != nil {
			log.Error("release the run lock", zap.Error(err))
		}
	}, nil
}

// prune applies store.retention: runs and audit entries older than their
// period go. A failure is logged; the run's own work is done.
func (r *Runner) prune(ctx context.Context, log *zap.Logger) {
	ret := r.Config.Store.Retention
	if ret.Runs.Duration == 0 && ret.Audit.Duration == 0 {
		return
	}
	now := r.now()
	var runsBefore, auditBefore time.Time
	if d := ret.Runs.Duration; d > 0 {
		runsBefore = now.Add(-d)
	}
	if d := ret.Audit.Duration; d > 0 {
		auditBefore = now.Add(-d)
	}
	runs, audit, err := r.Store.Prune(ctx, runsBefore, auditBefore)
	switch {
	case err != nil:
		log.Warn("prune old runs and audit entries (store.retention)", zap.Error(err))
	case runs+audit > 0:
		log.Info("pruned old runs and audit entries (store.retention)", zap.Int("runs", runs), zap.Int("audit_entries", audit))
	}
}

// WithLock runs fn holding st's run lock, for what must not run beside a
// sync (pushes, verify --fix): what names the holder in the lock.
func WithLock(ctx context.Context, st store.Store, log *zap.Logger, what string, fn func() error) error {
	unlock, err := Lock(ctx, st, log, lockholder.Self(what+"-"+NewRunID(time.Now())), 0)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer unlock()
	return fn()
}

// startRun records the run as running, so that a run killed from here on
// leaves a record, and ends the records that earlier runs left so: this
// run holds the lock, so none of them is still going.
func (r *Runner) startRun(ctx context.Context, log *zap.Logger, rep *Report) error {
	left, err := r.Store.UnfinishedRuns(ctx)
	if err != nil {
		return fmt.Errorf("read unfinished runs: %w", err)
	}
	for _, run := range left {
		if run.ID == rep.RunID {
			continue
		}
		ended, err := r.interrupted(ctx, run, rep.RunID)
		if err != nil {
			return err
		}
		if err := r.saveRun(ctx, ended); err != nil {
			return fmt.Errorf("record interrupted run %s: %w", run.ID, err)
		}
		log.Warn("an earlier run was interrupted before it finished; this run completes it",
			zap.String("interrupted_run", run.ID), zap.Time("started_at", run.StartedAt),
			zap.Int("changes_committed", ended.Summary.Total()))
	}
	started := *rep
	started.Result = ResultRunning
	started.FinishedAt = time.Time{}
	if err := r.saveRun(ctx, &started); err != nil {
		return fmt.Errorf("record the run: %w", err)
	}
	return nil
}

// interrupted is the report of a run that its process left running: what
// its audit entries say it committed.
func (r *Runner) interrupted(ctx context.Context, run store.Run, next string) (*Report, error) {
	counts, last, err := r.Store.AuditCounts(ctx, run.ID)
	if err != nil {
		return nil, fmt.Errorf("read what interrupted run %s wrote: %w", run.ID, err)
	}
	rep := &Report{
		RunID: run.ID, Mode: run.Mode, Result: ResultInterrupted, StartedAt: run.StartedAt, FinishedAt: run.StartedAt,
		Changes: []Change{}, Skipped: []Skipped{},
	}
	if sum, err := ParseRunSummary(run.Summary); err == nil {
		rep.Trigger = sum.Trigger // the counts come from the audit log below
	}
	if last.After(rep.FinishedAt) {
		rep.FinishedAt = last
	}
	for _, name := range run.Sources {
		rep.Sources = append(rep.Sources, SourceResult{Name: name, Type: r.sourceType(name)})
	}
	for action, n := range counts {
		rep.Summary.addN(Action(action), n)
	}
	rep.Error = fmt.Sprintf("the process stopped before the run finished (killed, or its machine went down); "+
		"the %d changes it committed stay, and run %s carries on from there", rep.Summary.Total(), next)
	return rep, nil
}

func (r *Runner) sourceType(name string) string {
	if s := r.Config.Source(name); s != nil {
		return s.Type
	}
	return ""
}

// RunSummary is the summary a run's record keeps (store.Run.Summary): the
// report's counts and what started the run. Stores keep the summary as
// JSON they do not read, so the trigger needs nothing of them.
type RunSummary struct {
	Summary
	Trigger string `json:"trigger,omitempty"`
}

// ParseRunSummary reads a run record's summary; an empty one is all zero
// (a run recorded before it had one).
func ParseRunSummary(raw json.RawMessage) (RunSummary, error) {
	var s RunSummary
	if len(raw) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("run summary: %w", err)
	}
	return s, nil
}

// RunRecord is a run's record as clients read it (GET /api/v1/runs and
// status, runs list --format json): the store's record, with the trigger
// its summary keeps (RunSummary) as a field of its own, so that the
// summary holds counts only, as it always has.
type RunRecord struct {
	ID         string          `json:"run_id"`
	Mode       string          `json:"mode"`
	Trigger    string          `json:"trigger,omitempty"`
	Result     string          `json:"result"`
	Error      string          `json:"error,omitempty"`
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt time.Time       `json:"finished_at"`
	Sources    []string        `json:"sources"`
	Summary    json.RawMessage `json:"summary,omitempty"`
}

// Record is the record of a run as clients read it. A summary that does
// not decode is passed on as it is.
func Record(r store.Run) RunRecord {
	rec := RunRecord{ID: r.ID, Mode: r.Mode, Result: r.Result, Error: r.Error, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
		Sources: r.Sources, Summary: r.Summary}
	if sum, err := ParseRunSummary(r.Summary); err == nil && len(r.Summary) > 0 {
		rec.Trigger = sum.Trigger
		if b, err := json.Marshal(sum.Summary); err == nil {
			rec.Summary = b
		}
	}
	return rec
}

// Records are the records of runs as clients read them (never nil).
func Records(runs []store.Run) []RunRecord {
	out := make([]RunRecord, len(runs))
	for i, r := range runs {
		out[i] = Record(r)
	}
	return out
}

func (r *Runner) saveRun(ctx context.Context, rep *Report) error {
	summary, err := jsonRaw(RunSummary{Summary: rep.Summary, Trigger: rep.Trigger})
	if err != nil {
		return err
	}
	var names []string
	for _, s := range rep.Sources {
		names = append(names, s.Name)
	}
	// The report goes to the store as it is encoded, never whole: a first
	// sync's runs to tens of megabytes.
	return r.Store.SaveRun(ctx, store.Run{
		ID: rep.RunID, Mode: rep.Mode, Result: rep.Result, Error: rep.Error,
		StartedAt: rep.StartedAt, FinishedAt: rep.FinishedAt, Sources: names,
		Summary: summary, WriteReport: rep.WriteJSON, WriteReportGzip: rep.gzipWriter(),
	})
}
