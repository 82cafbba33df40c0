package server

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/target"
)

// The status page is rendered on the server, with its styles inline and
// no script, so it reads the same with JavaScript off. Element ids and
// classes are stable (tests and scrapers read them):
//
//	section.pool#pool-NAME[data-pool]  .pool-limit .pool-used .pool-remaining .pool-queued .pool-reserve
//	table#queue tr.queue-entry         .queue-pool .queue-position .queue-username .queue-since
//	table#runs tr.run[data-run-id]     .run-result .run-started a.run-report
//	table#targets tr.target[data-target] .target-health .target-linked .target-pending .target-failed
//	.banner#banner-pool-full-NAME, #banner-pool-over-NAME, #banner-last-run-failed
var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="60">
<title>seatsync status</title>
<style>
body{font:15px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:60em;padding:0 1em;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em}
.banner{padding:.6em .9em;margin:.5em 0;border-radius:4px;font-weight:600}
.banner.warn{background:#fff3cd;border:1px solid #e0b600}
.banner.bad{background:#f8d7da;border:1px solid #c0392b}
.pool{margin:1em 0}
.bar{display:flex;height:1.4em;border:1px solid #888;border-radius:3px;overflow:hidden;background:#fff}
.bar span{display:block;height:100%}
.bar .used{background:#3b7dd8}.bar .reserve{background:#a0a0a0}.bar .free{background:#dff0d8}
.bar .over{background:#c0392b}
dl.numbers{display:flex;gap:1.5em;margin:.4em 0} dl.numbers dt{color:#555} dl.numbers dd{margin:0;font-weight:600}
table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #ddd}
.result-failed,.result-guard_tripped,.result-interrupted{color:#c0392b;font-weight:600}.result-ok{color:#2e7d32}
.legend span{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 1em;vertical-align:middle}
</style>
</head>
<body>
<h1>seatsync status</h1>
<p id="generated">Generated {{time .Now}}{{if .Status.Running}}; sync <span id="running">{{.Status.Running}}</span> is running{{end}}.</p>
{{range .Pools}}{{if .Over}}<p class="banner bad" id="banner-pool-over-{{.Name}}">Pool {{.Name}} is over its limit: {{.Active}} seats used of {{.Limit}}. Block or delete profiles, or buy more seats.</p>
{{else if .Full}}<p class="banner warn" id="banner-pool-full-{{.Name}}">Pool {{.Name}} is full{{if .Queued}}: {{.Queued}} waiting for a seat{{end}}. Free seats by blocking or deleting profiles, or buy more.</p>
{{end}}{{end}}{{with .LastRun}}{{if eq .Result "failed" "guard_tripped" "interrupted"}}<p class="banner bad" id="banner-last-run-failed">The last sync ({{.ID}}, {{time .StartedAt}}) {{if eq .Result "guard_tripped"}}was refused by a safety guard{{else if eq .Result "interrupted"}}was interrupted{{else}}failed{{end}}{{if .Error}}: {{.Error}}{{end}}</p>
{{end}}{{end}}
<h2>Seats</h2>
<p class="legend"><span class="used" style="background:#3b7dd8"></span>used<span style="background:#a0a0a0"></span>reserve<span style="background:#dff0d8"></span>free</p>
{{range .Pools}}<section class="pool" id="pool-{{.Name}}" data-pool="{{.Name}}">
<h3>{{.Name}}</h3>
{{if .Unlimited}}<p>Unlimited: nobody waits for a seat.</p>{{else}}<div class="bar" role="img" aria-label="{{.Active}} used, {{.Reserve}} reserved, {{.Remaining}} free of {{.Limit}}">{{if .UsedPct}}<span class="used" style="width:{{.UsedPct}}%"></span>{{end}}{{if .OverPct}}<span class="over" style="width:{{.OverPct}}%"></span>{{end}}{{if .ReservePct}}<span class="reserve" style="width:{{.ReservePct}}%"></span>{{end}}{{if .FreePct}}<span class="free" style="width:{{.FreePct}}%"></span>{{end}}</div>{{end}}
<dl class="numbers">
<div><dt>limit</dt><dd class="pool-limit">{{if .Unlimited}}unlimited{{else}}{{.Limit}}{{end}}</dd></div>
<div><dt>used</dt><dd class="pool-used">{{.Active}}</dd></div>
<div><dt>reserve</dt><dd class="pool-reserve">{{.Reserve}}</dd></div>
<div><dt>remaining</dt><dd class="pool-remaining">{{if .Unlimited}}unlimited{{else}}{{.Remaining}}{{end}}</dd></div>
<div><dt>queued</dt><dd class="pool-queued">{{.Queued}}</dd></div>
</dl>
</section>
{{else}}<p>No pools are configured.</p>
{{end}}
<h2>Licence queue</h2>
{{if .Status.Queue}}<table id="queue">
<thead><tr><th>pool</th><th>#</th><th>username</th><th>waiting since</th></tr></thead>
<tbody>
{{range .Status.Queue}}<tr class="queue-entry" data-pool="{{.Pool}}"><td class="queue-pool">{{.Pool}}</td><td class="queue-position">{{.Position}}</td><td class="queue-username">{{.Username}}</td><td class="queue-since">{{time .QueuedAt}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p id="queue-empty">Nobody is waiting for a seat.</p>{{end}}
{{if .Targets}}<h2>Targets</h2>
<table id="targets">
<thead><tr><th>target</th><th>type</th><th>health</th><th>linked</th><th>pending</th><th>refused</th></tr></thead>
<tbody>
{{range .Targets}}<tr class="target" data-target="{{.Name}}"><td>{{.Name}}</td><td>{{.Type}}</td><td class="target-health {{if .Healthy}}result-ok{{else}}result-failed{{end}}">{{if .Healthy}}in step{{else if .Failed}}users refused{{else}}pushes pending{{end}}</td><td class="target-linked">{{.Linked}}</td><td class="target-pending">{{.Pending}}</td><td class="target-failed">{{.Failed}}</td></tr>
{{range .Failures}}<tr class="target-failure"><td></td><td colspan="5">{{.Username}}: {{.Error}}</td></tr>
{{end}}{{end}}</tbody>
</table>{{end}}
<h2>Last runs</h2>
{{if .Runs}}<table id="runs">
<thead><tr><th>started</th><th>result</th><th>changes</th><th>report</th></tr></thead>
<tbody>
{{range .Runs}}<tr class="run" data-run-id="{{.ID}}"><td class="run-started">{{time .StartedAt}}</td><td class="run-result result-{{.Result}}">{{.Result}}</td><td class="run-counts">{{.Counts}}</td><td><a class="run-report" href="/api/v1/runs/{{.ID}}">{{.ID}}</a></td></tr>
{{end}}</tbody>
</table>{{else}}<p id="runs-empty">No sync has run yet.</p>{{end}}
</body>
</html>
`))

// poolView is one pool as the page draws it.
type poolView struct {
	Name                                  string
	Limit, Reserve, Active, Remaining     int
	Queued                                int
	Unlimited, Full, Over                 bool
	UsedPct, OverPct, ReservePct, FreePct float64
}

type runView struct {
	store.Run
	Counts string
}

type targetView struct {
	target.Status
	Healthy bool
}

type pageData struct {
	Now     time.Time
	Status  *Status
	Pools   []poolView
	Runs    []runView
	Targets []targetView
	LastRun *store.Run
}

func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	st, err := s.status(r.Context())
	if err != nil {
		s.Log.Error("http: status page", zap.Error(err))
		http.Error(w, "seatsync: "+err.Error(), http.StatusInternalServerError)
		return
	}
	data := pageData{Now: s.now(), Status: st}
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
		v := poolView{Name: p.Name, Limit: p.Limit, Reserve: p.Reserve, Active: p.Active, Remaining: p.Remaining,
			Queued: p.Queued, Unlimited: p.Unlimited}
		if !p.Unlimited {
			v.Over = p.Active > p.Limit
			v.Full = !v.Over && p.Remaining == 0
			total := float64(max(p.Limit, p.Active+p.Reserve, 1))
			inLimit := min(p.Active, p.Limit)
			v.UsedPct = pct(inLimit, total)
			v.OverPct = pct(p.Active-inLimit, total)
			v.ReservePct = pct(min(p.Reserve, max(0, p.Limit-inLimit)), total)
			v.FreePct = pct(p.Remaining, total)
		}
		data.Pools = append(data.Pools, v)
	}
	for i, run := range st.Runs {
		data.Runs = append(data.Runs, runView{Run: run, Counts: counts(run.Summary)})
		if data.LastRun == nil && run.Mode == reconcile.ModeSync && run.Result != reconcile.ResultSkipped && run.Result != reconcile.ResultRunning {
			data.LastRun = &st.Runs[i]
		}
	}
	var buf bytes.Buffer
	if err := statusTemplate.Execute(&buf, data); err != nil {
		s.internal(w, "render the status page", err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_, _ = buf.WriteTo(w)
}

func pct(n int, total float64) float64 {
	if n <= 0 {
		return 0
	}
	return float64(int(float64(n)/total*1000)) / 10
}

// counts renders a run's summary as "3 create, 1 block".
func counts(raw json.RawMessage) string {
	var sum reconcile.Summary
	if len(raw) == 0 || json.Unmarshal(raw, &sum) != nil {
		return ""
	}
	var out []byte
	add := func(n int, what string) {
		if n == 0 {
			return
		}
		if len(out) > 0 {
			out = append(out, ", "...)
		}
		out = append(out, strconv.Itoa(n)+" "+what...)
	}
	add(sum.Create, "create")
	add(sum.Update, "update")
	add(sum.Move, "move")
	add(sum.Activate, "activate")
	add(sum.Block, "block")
	add(sum.Delete, "delete")
	add(sum.Skipped, "skipped")
	if len(out) == 0 {
		return "no changes"
	}
	return string(out)
}
