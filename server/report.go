package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/target"
)

// DefaultReportRows is how many changes, and how many skipped entries, a
// run's page shows. A first sync of a large directory reports hundreds of
// thousands: the page says how many more there are and where to read
// them all (the JSON report, `seatsync runs show`), so it stays a page a
// browser opens at once, whatever the run: about 500 KB for the first
// 1,000 creates of a CSV export, a few MB at worst with the caps below.
const DefaultReportRows = 1000

// Caps on one change's changed fields as the page lists them: at most
// maxFields fields, a value cut after maxFieldChars characters, a list
// after maxListItems items.
const (
	maxFields     = 30
	maxFieldChars = 200
	maxListItems  = 10
)

// The page of one run's report, GET /runs/{id}. Ids and classes:
//
//	#run[data-run-id]  .run-mode .run-trigger .run-result .run-started .run-finished .run-duration .run-counts
//	table#run-pools tr.pool[data-pool], table#run-products tr.product[data-product], table#run-sources tr.source[data-source], table#run-targets tr.target
//	table#changes tr.change  .change-action .change-username .change-source .change-area .change-state .change-reason .change-queue .change-fields
//	#changes-more      how many changes the page leaves out
//	table#skipped tr.skipped-entry  .skipped-source .skipped-external-id .skipped-where .skipped-reason
//	#skipped-more, a#report-json
const runPageTemplate = `{{define "run"}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>seatsync run {{.Run.ID}}</title>
{{template "style"}}
</head>
<body>
<p><a href="/" id="back">seatsync status</a></p>
<h1>Run {{.Run.ID}}</h1>
{{$r := .Report}}<section id="run" data-run-id="{{.Run.ID}}">
<dl class="numbers">
<div><dt>mode</dt><dd class="run-mode">{{.Run.Mode}}</dd></div>
{{if .Trigger}}<div><dt>trigger</dt><dd class="run-trigger">{{.Trigger}}</dd></div>{{end}}
<div><dt>result</dt><dd class="run-result result-{{.Run.Result}}">{{.Run.Result}}</dd></div>
<div><dt>started</dt><dd class="run-started">{{template "time" .Run.StartedAt}}</dd></div>
{{if not .Run.FinishedAt.IsZero}}<div><dt>finished</dt><dd class="run-finished">{{template "time" .Run.FinishedAt}}</dd></div>{{end}}
{{if .Duration}}<div><dt>took</dt><dd class="run-duration">{{.Duration}}</dd></div>{{end}}
</dl>
{{if .Run.Error}}<p class="banner bad" id="run-error">{{.Run.Error}}</p>{{end}}
{{with $r}}{{if .Guard.Tripped}}{{range .Guard.Sources}}{{if .Tripped}}<p class="banner bad">Safety guard: {{.Why}}. Nothing was written; run <code>seatsync sync --allow-deprovision</code> once if this is intended.</p>{{end}}{{end}}{{else if .Guard.Overridden}}<p class="banner warn">The safety guard was overridden for this run (allow deprovision).</p>{{end}}
{{range .Sources}}{{if .LeavesSuspended}}<p class="banner warn">Leavers of {{.Name}} not handled: {{.LeavesSuspended}}</p>{{end}}{{if .IncrementalFallback}}<p class="banner">Source {{.Name}} was read in full: {{.IncrementalFallback}}</p>{{end}}{{end}}{{end}}
{{if .Counts}}<p><span class="run-counts">{{.Counts}}</span>{{if and .Summary (ne .Run.Result "running")}}; {{thousands .Summary.Unchanged}} unchanged{{if .Summary.Skipped}}, {{thousands .Summary.Skipped}} skipped{{end}}{{end}}.</p>{{end}}
</section>
{{with $r}}
{{if .Pools}}<h2>Pools</h2>
<div class="scroll"><table id="run-pools">
<thead><tr><th>pool</th><th class="num">limit</th><th class="num">reserve</th><th class="num">used before</th><th class="num">used after</th><th class="num">remaining</th><th class="num">queued</th><th class="num">overage</th></tr></thead>
<tbody>
{{range .Pools}}<tr class="pool" data-pool="{{.Name}}"><td>{{.Name}}</td><td class="num">{{if .Unlimited}}unlimited{{else}}{{.Limit}}{{end}}</td><td class="num">{{.Reserve}}</td><td class="num">{{.UsedBefore}}</td><td class="num">{{.UsedAfter}}</td><td class="num">{{if .Unlimited}}-{{else}}{{.RemainingAfter}}{{end}}</td><td class="num">{{.QueuedAfter}}</td><td class="num">{{.Overage}}</td></tr>
{{end}}</tbody>
</table></div>{{end}}
{{if .Products}}<h2>Product licences</h2>
<div class="scroll"><table id="run-products">
<thead><tr><th>product</th><th class="num">limit</th><th class="num">used before</th><th class="num">used after</th><th class="num">remaining</th><th class="num">queued</th><th class="num">overage</th></tr></thead>
<tbody>
{{range .Products}}<tr class="product" data-product="{{.Name}}"><td>{{.Name}}</td><td class="num">{{if .Unlimited}}unlimited{{else}}{{.Limit}}{{end}}</td><td class="num">{{.UsedBefore}}</td><td class="num">{{.UsedAfter}}</td><td class="num">{{if .Unlimited}}-{{else}}{{.RemainingAfter}}{{end}}</td><td class="num">{{.QueuedAfter}}</td><td class="num">{{.Overage}}</td></tr>
{{end}}</tbody>
</table></div>{{end}}
{{if .Sources}}<h2>Sources</h2>
<div class="scroll"><table id="run-sources">
<thead><tr><th>source</th><th>type</th><th>read</th><th class="num">identities</th><th class="num">skipped</th></tr></thead>
<tbody>
{{range .Sources}}<tr class="source" data-source="{{.Name}}"><td>{{.Name}}</td><td>{{.Type}}</td><td>{{.Read}}</td><td class="num">{{thousands .Identities}}</td><td class="num">{{thousands .Skipped}}</td></tr>
{{end}}</tbody>
</table></div>{{end}}
{{if .Targets}}<h2>Targets</h2>
<div class="scroll"><table id="run-targets">
<thead><tr><th>target</th><th>type</th><th class="num">{{if eq .Mode "plan"}}would send{{else}}sent{{end}}</th><th class="num">pending</th><th class="num">failed</th><th>error</th></tr></thead>
<tbody>
{{range .Targets}}<tr class="target" data-target="{{.Name}}"><td>{{.Name}}</td><td>{{.Type}}</td><td class="num">{{.Sent}}</td><td class="num">{{.Pending}}</td><td class="num">{{.Failed}}</td><td>{{.Error}}</td></tr>
{{$t := .Name}}{{range .Failures}}<tr class="target-failure"><td></td><td colspan="5">{{$t}} refused {{.Username}}{{if .Status}} (HTTP {{.Status}}){{end}}: {{.Error}}</td></tr>
{{end}}{{end}}</tbody>
</table></div>{{end}}
<h2>Changes</h2>
{{if .Changes.Rows}}<div class="scroll"><table id="changes">
<thead><tr><th>action</th><th>username</th><th>source</th><th>area</th><th>state</th><th>reason</th><th class="num">queue</th><th>changed</th></tr></thead>
<tbody>
{{range .Changes.Rows}}<tr class="change"><td class="change-action">{{.Action}}{{with .Product}} {{.}}{{end}}{{if and .Result (ne .Result "applied")}} ({{.Result}}){{end}}</td><td class="change-username">{{.Username}}</td><td class="change-source">{{.Source}}</td><td class="change-area">{{.Area}}</td><td class="change-state">{{.State}}</td><td class="change-reason">{{.Reason}}</td><td class="change-queue num">{{if .QueuePosition}}#{{.QueuePosition}}{{end}}</td><td class="change-fields">{{with .FieldList}}<ul class="fields">{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}</td></tr>
{{end}}</tbody>
</table></div>
{{if .Changes.More}}<p class="banner warn" id="changes-more">This page shows the first {{thousands (len .Changes.Rows)}} of {{thousands .Changes.Total}} changes; {{thousands .Changes.More}} more are not shown. Read them all in the <a href="/api/v1/runs/{{.RunID}}">JSON report</a>, or with <code>seatsync runs show -c FILE {{.RunID}}</code>.</p>{{end}}
{{else}}<p id="changes-none">No changes.</p>{{end}}
{{if .Skipped.Rows}}<h2>Skipped</h2>
<p class="note">Entries the run could not map to a profile. A skipped person's profile is left as it is.</p>
<div class="scroll"><table id="skipped">
<thead><tr><th>source</th><th>external id</th><th>where</th><th>why</th></tr></thead>
<tbody>
{{range .Skipped.Rows}}<tr class="skipped-entry"><td class="skipped-source">{{.Source}}</td><td class="skipped-external-id">{{.ExternalID}}</td><td class="skipped-where">{{.Where}}</td><td class="skipped-reason">{{.Reason}}</td></tr>
{{end}}</tbody>
</table></div>
{{if .Skipped.More}}<p class="banner warn" id="skipped-more">This page shows the first {{thousands (len .Skipped.Rows)}} of {{thousands .Skipped.Total}} skipped entries; {{thousands .Skipped.More}} more are not shown. Read them all in the <a href="/api/v1/runs/{{.RunID}}">JSON report</a>, or with <code>seatsync runs show -c FILE {{.RunID}}</code>.</p>{{end}}
{{end}}
{{else}}<p id="report-none">This run has no stored report: its record above is all there is.</p>
{{end}}
<p>The whole report as JSON: <a id="report-json" href="/api/v1/runs/{{.Run.ID}}">/api/v1/runs/{{.Run.ID}}</a>; on the command line: <code>seatsync runs show -c FILE {{.Run.ID}}</code>.</p>
{{template "script" .Nonce}}
</body>
</html>
{{end}}`

// capped is a JSON array read up to a number of rows: the rest are only
// counted.
type capped[T any] struct {
	Rows  []T
	Total int
	max   int
}

// More is how many rows were left out.
func (c *capped[T]) More() int { return c.Total - len(c.Rows) }

// read decodes the first rows of the array b and counts them all.
func (c *capped[T]) read(b []byte) error {
	c.Rows, c.Total = nil, 0 // a key given twice: the last counts, as in encoding/json
	return jsonElements(b, func(raw []byte) error {
		c.Total++
		if len(c.Rows) == c.max {
			return nil
		}
		var row T
		if err := json.Unmarshal(raw, &row); err != nil {
			return err
		}
		c.Rows = append(c.Rows, row)
		return nil
	})
}

// changeRow is one change of a stored report, its changed fields included
// (reconcile.Change derives them from profiles a stored report no longer
// has).
type changeRow struct {
	Action        string                 `json:"action"`
	Product       string                 `json:"product"`
	Username      string                 `json:"username"`
	Source        string                 `json:"source"`
	ExternalID    string                 `json:"external_id"`
	Area          string                 `json:"area"`
	State         string                 `json:"state"`
	Reason        string                 `json:"reason"`
	QueuePosition int                    `json:"queue_position"`
	Result        string                 `json:"result"`
	Fields        map[string]fieldChange `json:"fields"`
}

type fieldChange struct {
	Old any `json:"old"`
	New any `json:"new"`
}

// FieldList says each changed field, in name order: "email: a → b", or
// "email: b" for a new profile.
func (c *changeRow) FieldList() []string {
	names := make([]string, 0, len(c.Fields))
	for k := range c.Fields {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make([]string, 0, min(len(names), maxFields+1))
	for i, k := range names {
		if i == maxFields {
			out = append(out, fmt.Sprintf("and %d more fields", len(names)-maxFields))
			break
		}
		f := c.Fields[k]
		if c.Action == string(reconcile.ActionCreate) && f.Old == nil {
			out = append(out, k+": "+fieldValue(f.New))
			continue
		}
		out = append(out, k+": "+fieldValue(f.Old)+" → "+fieldValue(f.New))
	}
	return out
}

// fieldValue shows one side of a changed field: (none), "" for an empty
// string, a list joined with commas; long values are cut.
func fieldValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "(none)"
	case string:
		if v == "" {
			return `""`
		}
		return cut(v, maxFieldChars)
	case []any:
		if len(v) == 0 {
			return "(none)"
		}
		items := make([]string, 0, min(len(v), maxListItems))
		for i, item := range v {
			if i == maxListItems {
				break
			}
			items = append(items, cut(fmt.Sprint(item), maxFieldChars))
		}
		s := strings.Join(items, ", ")
		if len(v) > maxListItems {
			s += fmt.Sprintf(" and %d more", len(v)-maxListItems)
		}
		return s
	}
	return cut(fmt.Sprint(v), maxFieldChars)
}

// cut shortens s to n characters, marking the cut with "…".
func cut(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// storedReport is a stored report as the page reads it (readReport): the
// first rows of its changes and skipped entries, and the count of all of
// them.
type storedReport struct {
	RunID    string                    `json:"run_id"`
	Mode     string                    `json:"mode"`
	Sources  []reconcile.SourceResult  `json:"sources"`
	Pools    []reconcile.PoolResult    `json:"pools"`
	Products []reconcile.ProductResult `json:"products"`
	Changes  capped[changeRow]         `json:"changes"`
	Skipped  capped[reconcile.Skipped] `json:"skipped"`
	Guard    reconcile.Guard           `json:"guard"`
	Targets  []target.Result           `json:"targets"`
}

// readReport reads a stored report for its page: the first rows of its
// changes and skipped entries, and how many there are. Only those rows
// and the report's small members are decoded; the other rows are only
// counted (jsonElements), so a report of 100,000 changes costs about
// what reading its bytes once does.
func readReport(raw []byte, rows int) (*storedReport, error) {
	rep := &storedReport{Changes: capped[changeRow]{max: rows}, Skipped: capped[reconcile.Skipped]{max: rows}}
	members := map[string]any{"run_id": &rep.RunID, "mode": &rep.Mode, "sources": &rep.Sources, "pools": &rep.Pools,
		"products": &rep.Products, "guard": &rep.Guard, "targets": &rep.Targets}
	err := jsonMembers(raw, func(key string, value []byte) error {
		switch key {
		case "changes":
			return rep.Changes.read(value)
		case "skipped":
			return rep.Skipped.read(value)
		}
		if v, ok := members[key]; ok {
			if err := json.Unmarshal(value, v); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

type runPageData struct {
	Nonce    string
	Run      store.Run
	Trigger  string
	Duration string
	Counts   string
	Summary  *reconcile.Summary // nil when the record has none
	Report   *storedReport      // nil when the run has no stored report
}

// runPage is GET /runs/{id}: a run's report for people. The JSON report
// stays at /api/v1/runs/{id}.
func (s *Server) runPage(w http.ResponseWriter, r *http.Request) {
	run, ok := s.readRun(w, r)
	if !ok {
		return
	}
	data := runPageData{Nonce: newNonce(), Run: run, Duration: runDuration(run.StartedAt, run.FinishedAt)}
	sum, err := reconcile.ParseRunSummary(run.Summary)
	if err != nil {
		s.internal(w, "read run", err)
		return
	}
	data.Trigger = triggerName(sum.Trigger)
	if len(run.Summary) > 0 {
		data.Summary = &sum.Summary
		data.Counts = changeCounts(sum.Summary)
	}
	if len(run.Report) > 0 {
		rows := s.ReportRows
		if rows <= 0 {
			rows = DefaultReportRows
		}
		rep, err := readReport(run.Report, rows)
		if err != nil {
			s.internal(w, "read the report of run "+run.ID, err)
			return
		}
		data.Report = rep
	}
	if run.Result == reconcile.ResultRunning {
		data.Counts = "still running"
	}
	s.writePage(w, http.StatusOK, "run", data.Nonce, data)
}
