package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/target"
)

// The status page. Element ids and classes are stable (tests and scrapers
// read them):
//
//	section.pool#pool-NAME[data-pool]  .pool-percent .pool-limit .pool-used .pool-remaining .pool-queued .pool-reserve
//	                                   .pool-blocked .pool-exempt .pool-overage
//	section.product#product-NAME[data-product] .product-issued .product-limit .product-used .product-queued .product-overage .product-disabled
//	table#queue tr.queue-entry         .queue-pool .queue-position .queue-name .queue-email .queue-username .queue-since
//	#next-run, #last-success           the next scheduled sync, the last successful one
//	table#runs tr.run[data-run-id]     .run-started .run-trigger .run-result .run-counts .run-skipped .run-duration a.run-report
//	table#targets tr.target[data-target] .target-health .target-linked .target-pending .target-failed
//	figure.chart#chart-NAME svg        polyline.chart-used, polyline.chart-limit (absent for unlimited pools)
//	.pool-forecast                     when the pool fills at the current rate
//	.banner#banner-pool-full-NAME, #banner-pool-over-NAME, #banner-last-run-failed
//
// Times are <time datetime="RFC 3339" title="UTC">.
const statusPageTemplate = `{{define "status"}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="60">
<title>seatsync status</title>
{{template "style"}}
</head>
<body>
<h1>seatsync status</h1>
<p id="generated">Generated {{template "time" .Now}}{{if .Status.Running}}; sync <span id="running">{{.Status.Running}}</span> is running{{end}}.</p>
{{range .Pools}}{{if .Over}}<p class="banner bad" id="banner-pool-over-{{.Name}}">Pool {{.Name}} is over its limit: {{.Active}} seats used of {{.Limit}}. Block or delete profiles, or buy more seats.</p>
{{else if .Full}}<p class="banner warn" id="banner-pool-full-{{.Name}}">Pool {{.Name}} is full{{if .Queued}}: {{.Queued}} waiting for a seat{{end}}. Free seats by blocking or deleting profiles, or buy more.</p>
{{end}}{{end}}{{with .LastRun}}{{if eq .Result "failed" "guard_tripped" "interrupted"}}<p class="banner bad" id="banner-last-run-failed">The last sync ({{.ID}}, {{template "time" .StartedAt}}) {{if eq .Result "guard_tripped"}}was refused by a safety guard{{else if eq .Result "interrupted"}}was interrupted{{else}}failed{{end}}{{if .Error}}: {{.Error}}{{end}}</p>
{{end}}{{end}}
<h2>Seats</h2>
<p class="legend"><span class="used" style="background:#3b7dd8"></span>used<span style="background:#a0a0a0"></span>reserve<span style="background:#dff0d8"></span>free</p>
{{range .Pools}}<section class="pool" id="pool-{{.Name}}" data-pool="{{.Name}}">
<h3>{{.Name}}</h3>
{{if .Unlimited}}<p>Unlimited: nobody waits for a seat.</p>{{else}}<div class="bar" role="img" aria-label="{{.Percent}} used: {{.Active}} used, {{.Reserve}} reserved, {{.Remaining}} free of {{.Limit}}">{{if .UsedPct}}<span class="used" style="width:{{.UsedPct}}%"></span>{{end}}{{if .OverPct}}<span class="over" style="width:{{.OverPct}}%"></span>{{end}}{{if .ReservePct}}<span class="reserve" style="width:{{.ReservePct}}%"></span>{{end}}{{if .FreePct}}<span class="free" style="width:{{.FreePct}}%"></span>{{end}}<span class="pool-percent">{{.Percent}} used</span></div>{{end}}
{{with .Chart}}<figure class="chart" id="chart-{{.Name}}"><svg viewBox="0 0 {{.W}} {{.H}}" preserveAspectRatio="none" role="img" aria-label="{{.Label}}">{{if .Limit}}<polyline class="chart-limit" points="{{.Limit}}" fill="none" stroke-width="1.5" stroke-dasharray="4 3" vector-effect="non-scaling-stroke"/>{{end}}<polyline class="chart-used" points="{{.Used}}" fill="none" stroke-width="2" vector-effect="non-scaling-stroke"/></svg>
<figcaption><span style="color:#3b7dd8">used</span>{{if .Limit}} and <span style="color:#c0392b">limit</span>{{end}}, 0 to {{.Max}} seats, {{template "time" .From}} to {{template "time" .To}} ({{.Points}} runs)</figcaption></figure>
{{end}}{{with .Forecast}}<p class="pool-forecast">{{.Text}}</p>
{{end}}<dl class="numbers">
<div><dt>limit</dt><dd class="pool-limit">{{if .Unlimited}}unlimited{{else}}{{.Limit}}{{end}}</dd></div>
<div><dt>used</dt><dd class="pool-used">{{.Active}}</dd></div>
<div><dt>reserve</dt><dd class="pool-reserve">{{.Reserve}}</dd></div>
<div><dt>remaining</dt><dd class="pool-remaining">{{if .Unlimited}}unlimited{{else}}{{.Remaining}}{{end}}</dd></div>
<div><dt>queued</dt><dd class="pool-queued">{{.Queued}}</dd></div>
<div><dt>blocked</dt><dd class="pool-blocked">{{.Blocked}}</dd></div>
<div><dt>exempt</dt><dd class="pool-exempt">{{.Exempt}}</dd></div>
<div><dt>overage</dt><dd class="pool-overage">{{.Overage}}</dd></div>
</dl>
</section>
{{else}}<p>No pools are configured.</p>
{{end}}
{{with .Status.Products}}<h2>Product licences</h2>
{{range .}}<section class="product" id="product-{{.Name}}" data-product="{{.Name}}">
<h3>{{.Name}}</h3>
<p class="product-issued">issued {{.Issued}} of {{if .Unlimited}}unlimited{{else}}{{.Limit}}{{end}}</p>
<dl class="numbers">
<div><dt>limit</dt><dd class="product-limit">{{if .Unlimited}}unlimited{{else}}{{.Limit}}{{end}}</dd></div>
<div><dt>issued</dt><dd class="product-used">{{.Issued}}</dd></div>
<div><dt>queued</dt><dd class="product-queued">{{.Queued}}</dd></div>
<div><dt>overage</dt><dd class="product-overage">{{.Overage}}</dd></div>
</dl>
{{if .Disabled}}<p class="product-disabled">Gives no new licence: the licence flag {{.EnabledBy}} is off, or no licence is in force.</p>{{end}}
</section>
{{end}}{{end}}
<h2>Licence queue</h2>
{{if .Queue}}<div class="scroll"><table id="queue">
<thead><tr><th>pool</th><th class="num">#</th><th>name</th><th>e-mail</th><th>username</th><th>waiting since</th></tr></thead>
<tbody>
{{range .Queue}}<tr class="queue-entry" data-pool="{{.Pool}}"><td class="queue-pool">{{.Pool}}</td><td class="queue-position num">{{.Position}}</td><td class="queue-name">{{.Name}}</td><td class="queue-email">{{.Email}}</td><td class="queue-username">{{.Username}}</td><td class="queue-since">{{template "time" .QueuedAt}}</td></tr>
{{end}}</tbody>
</table></div>{{else}}<p id="queue-empty">Nobody is waiting for a seat.</p>{{end}}
{{if .Targets}}<h2>Targets</h2>
<div class="scroll"><table id="targets">
<thead><tr><th>target</th><th>type</th><th>health</th><th class="num">linked</th><th class="num">pending</th><th class="num">refused</th></tr></thead>
<tbody>
{{range .Targets}}<tr class="target" data-target="{{.Name}}"><td>{{.Name}}</td><td>{{.Type}}</td><td class="target-health {{if .Healthy}}result-ok{{else}}result-failed{{end}}">{{if .Healthy}}in step{{else if .Failed}}users refused{{else}}pushes pending{{end}}</td><td class="target-linked num">{{.Linked}}</td><td class="target-pending num">{{.Pending}}</td><td class="target-failed num">{{.Failed}}</td></tr>
{{range .Failures}}<tr class="target-failure"><td></td><td colspan="5">{{.Username}}: {{.Error}}</td></tr>
{{end}}{{end}}</tbody>
</table></div>{{end}}
<h2>Runs</h2>
{{with .NextSync}}<p id="next-run">Next scheduled sync: {{template "time" .NextRun}} ({{.In}}; schedule <code>{{.Schedule}}</code>{{if .Sources}}, {{.Sources}}{{end}}).</p>
{{else}}<p id="next-run">No sync is scheduled{{if $.Status.Running}} while this one runs{{end}}.</p>
{{end}}{{with .LastOK}}<p id="last-success">Last successful sync: {{template "time" .FinishedAt}} (<span class="age">{{.Age}}</span>), run <a href="/runs/{{.ID}}">{{.ID}}</a>.</p>
{{else}}<p id="last-success">No sync has succeeded yet{{if .Runs}} (in the last {{.Searched}} runs){{end}}.</p>
{{end}}{{if gt (len .Schedules) 1}}<details><summary>All schedules</summary><div class="scroll"><table id="schedules">
<thead><tr><th>what</th><th>schedule</th><th>next run</th></tr></thead>
<tbody>
{{range .Schedules}}<tr class="schedule"><td>{{.What}}</td><td><code>{{.Schedule}}</code></td><td>{{template "time" .NextRun}} ({{.In}})</td></tr>
{{end}}</tbody>
</table></div></details>
{{end}}{{if .Runs}}<div class="scroll"><table id="runs">
<thead><tr><th>started</th><th>trigger</th><th>result</th><th>changes</th><th>took</th><th>report</th></tr></thead>
<tbody>
{{range .Runs}}<tr class="run" data-run-id="{{.ID}}"><td class="run-started">{{template "time" .StartedAt}}</td><td class="run-trigger">{{.Trigger}}</td><td class="run-result result-{{.Result}}">{{.Result}}</td><td><span class="run-counts">{{.Counts}}</span>{{with .Skipped}}<br><span class="run-skipped note">{{.}}</span>{{end}}</td><td class="run-duration">{{.Duration}}</td><td><a class="run-report" href="/runs/{{.ID}}">{{.ID}}</a></td></tr>
{{end}}</tbody>
</table></div>{{else}}<p id="runs-empty">No sync has run yet.</p>{{end}}
{{template "script" .Nonce}}
</body>
</html>
{{end}}`

// poolView is one pool as the page draws it.
type poolView struct {
	licensing.Status
	Full, Over                            bool
	Percent                               string // "66%"; "no seats" for a limit of 0
	UsedPct, OverPct, ReservePct, FreePct float64
	Chart                                 *chartView // nil without history
}

// queueView is one entry of the licence queue, with the person's name.
type queueView struct {
	licensing.QueueEntry
	Name string
}

type runView struct {
	reconcile.RunRecord
	Trigger  string // as the page names it
	Counts   string
	Skipped  string
	Duration string
}

// lastOKView is the last successful sync.
type lastOKView struct {
	reconcile.RunRecord
	Age string
}

// scheduleView is one schedule of the daemon with its next run.
type scheduleView struct {
	ScheduledRun
	What    string // "sync of hr, okta" or "verify of crm"
	Sources string // "source hr", "sources hr, okta"; "" for every source
	In      string // "in 5 min"
}

type targetView struct {
	target.Status
	Healthy bool
}

type statusPageData struct {
	Now      time.Time
	Nonce    string
	Status   *Status
	Pools    []poolView
	Queue    []queueView
	Runs     []runView
	Targets  []targetView
	LastRun  *reconcile.RunRecord // the last sync that finished, for the banner
	LastOK   *lastOKView
	Searched int // how many runs were searched for LastOK
	// NextSync is the first sync due of Schedules.
	NextSync  *scheduleView
	Schedules []scheduleView
}

func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	st, profiles, err := s.readStatus(r.Context())
	if err != nil {
		s.Log.Error("http: status page", zap.Error(err))
		http.Error(w, "seatsync: "+err.Error(), http.StatusInternalServerError)
		return
	}
	now := s.now()
	data := statusPageData{Now: now, Nonce: newNonce(), Status: st}
	targets, err := s.targets(r.Context())
	if err != nil {
		s.Log.Error("http: status page", zap.Error(err))
		http.Error(w, "seatsync: "+err.Error(), http.StatusInternalServerError)
		return
	}
	for _, t := range targets {
		data.Targets = append(data.Targets, targetView{Status: t, Healthy: t.Pending+t.Failed == 0})
	}
	for _, p := range st.Pools {
		v := newPoolView(p)
		v.Chart = newChart(st.History, p.Name)
		data.Pools = append(data.Pools, v)
	}
	data.Queue = queueViews(st.Queue, profiles)
	for i, run := range st.Runs {
		data.Runs = append(data.Runs, newRunView(run))
		if data.LastRun == nil && run.Mode == reconcile.ModeSync && run.Result != reconcile.ResultSkipped && run.Result != reconcile.ResultRunning {
			data.LastRun = &st.Runs[i]
		}
	}
	last, searched, err := s.lastOK(r.Context(), st.Runs)
	if err != nil {
		s.Log.Error("http: status page", zap.Error(err))
		http.Error(w, "seatsync: "+err.Error(), http.StatusInternalServerError)
		return
	}
	data.Searched = searched
	if last != nil {
		data.LastOK = &lastOKView{RunRecord: *last, Age: ago(now, last.FinishedAt)}
	}
	for _, sr := range st.Schedules {
		v := newScheduleView(sr, now)
		data.Schedules = append(data.Schedules, v)
		if sr.Kind == "sync" && (data.NextSync == nil || sr.NextRun.Before(data.NextSync.NextRun)) {
			data.NextSync = &v
		}
	}
	s.writePage(w, http.StatusOK, "status", data.Nonce, data)
}

func newPoolView(p licensing.Status) poolView {
	v := poolView{Status: p}
	if p.Unlimited {
		return v
	}
	v.Over = p.Active > p.Limit
	v.Full = !v.Over && p.Remaining == 0
	v.Percent = fmt.Sprintf("%d%%", licensing.UsedPercent(p.Active, p.Limit))
	if p.Limit == 0 {
		v.Percent = "no seats"
	}
	total := float64(max(p.Limit, p.Active+p.Reserve, 1))
	inLimit := min(p.Active, p.Limit)
	v.UsedPct = pct(inLimit, total)
	v.OverPct = pct(p.Active-inLimit, total)
	v.ReservePct = pct(min(p.Reserve, max(0, p.Limit-inLimit)), total)
	v.FreePct = pct(p.Remaining, total)
	return v
}

// queueViews names each queued person: their display name, or their given
// and family names when they have none.
func queueViews(queue []licensing.QueueEntry, profiles []model.Profile) []queueView {
	byName := make(map[string]*model.Profile, len(queue))
	for i := range profiles {
		if profiles[i].State == model.Blocked && profiles[i].BlockReason == model.ReasonLicense {
			byName[profiles[i].Username] = &profiles[i]
		}
	}
	out := make([]queueView, 0, len(queue))
	for _, q := range queue {
		v := queueView{QueueEntry: q, Name: q.DisplayName}
		if p := byName[q.Username]; v.Name == "" && p != nil {
			v.Name = strings.TrimSpace(p.GivenName + " " + p.FamilyName)
		}
		out = append(out, v)
	}
	return out
}

func newRunView(run reconcile.RunRecord) runView {
	v := runView{RunRecord: run, Trigger: triggerName(run.Trigger), Duration: runDuration(run.StartedAt, run.FinishedAt)}
	sum, err := reconcile.ParseRunSummary(run.Summary)
	if err != nil || len(run.Summary) == 0 || run.Result == reconcile.ResultRunning {
		return v
	}
	v.Counts = changeCounts(sum.Summary)
	v.Skipped = skippedText(sum.Skipped)
	return v
}

func newScheduleView(sr ScheduledRun, now time.Time) scheduleView {
	v := scheduleView{ScheduledRun: sr, In: until(now, sr.NextRun)}
	switch {
	case sr.Kind == "verify":
		v.What = "verify of " + sr.Target
	case len(sr.Sources) == 0:
		v.What = "sync of every source"
	default:
		v.What = "sync of " + strings.Join(sr.Sources, ", ")
		v.Sources = "source " + sr.Sources[0]
		if len(sr.Sources) > 1 {
			v.Sources = "sources " + strings.Join(sr.Sources, ", ")
		}
	}
	return v
}

// lastOK finds the last successful sync: in the runs the page shows, or
// else further back, up to maxRuns. It returns how many runs it searched.
func (s *Server) lastOK(ctx context.Context, runs []reconcile.RunRecord) (*reconcile.RunRecord, int, error) {
	ok := func(mode, result string) bool { return mode == reconcile.ModeSync && result == reconcile.ResultOK }
	for i := range runs {
		if ok(runs[i].Mode, runs[i].Result) {
			return &runs[i], len(runs), nil
		}
	}
	if len(runs) < statusRuns {
		return nil, len(runs), nil
	}
	more, err := s.Backend.Store().Runs(ctx, maxRuns)
	if err != nil {
		return nil, 0, fmt.Errorf("read runs: %w", err)
	}
	for _, r := range more {
		if ok(r.Mode, r.Result) {
			rec := reconcile.Record(r)
			return &rec, len(more), nil
		}
	}
	return nil, len(more), nil
}

func pct(n int, total float64) float64 {
	if n <= 0 {
		return 0
	}
	return float64(int(float64(n)/total*1000)) / 10
}
