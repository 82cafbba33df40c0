package server

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/seatsync/seatsync/reconcile"
)

// The pages for people (the status page and a run's report) are rendered
// on the server and read the same with JavaScript off. One small inline
// script, allowed by a nonce that changes with every response, turns the
// times into the browser's time zone; without it they stay in UTC. Every
// time is a <time> element whose title is the UTC time, so it shows on
// hover either way. No page loads anything from elsewhere.

// pageStyle is the style sheet both pages share. Tables sit in a .scroll
// box, so a narrow screen scrolls a wide table inside its box and never
// the page.
const pageStyle = `<style>
body{font:15px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:60em;padding:0 1em;color:#222;overflow-wrap:break-word}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em}
a{color:#1a5fb4}
.banner{padding:.6em .9em;margin:.5em 0;border-radius:4px;font-weight:600}
.banner.warn{background:#fff3cd;border:1px solid #e0b600}
.banner.bad{background:#f8d7da;border:1px solid #c0392b}
.pool{margin:1em 0}
.bar{position:relative;display:flex;height:1.4em;border:1px solid #888;border-radius:3px;overflow:hidden;background:#fff}
.bar span{display:block;height:100%}
.bar .used{background:#3b7dd8}.bar .reserve{background:#a0a0a0}.bar .free{background:#dff0d8}
.bar .over{background:#c0392b}
.bar .pool-percent{position:absolute;left:50%;top:50%;transform:translate(-50%,-50%);height:auto;padding:0 .35em;border-radius:2px;
background:rgba(255,255,255,.88);font-size:.85em;font-weight:600;line-height:1.3;white-space:nowrap}
.chart{margin:.5em 0 0} .chart svg{display:block;width:100%;height:4.5em;border:1px solid #ddd;border-radius:3px;background:#fafafa}
.chart figcaption{font-size:.85em;color:#555}
.chart .chart-used{stroke:#3b7dd8}.chart .chart-limit{stroke:#c0392b}
.pool-forecast{margin:.3em 0;font-style:italic}
dl.numbers{display:flex;flex-wrap:wrap;gap:.3em 1.5em;margin:.4em 0} dl.numbers dt{color:#555} dl.numbers dd{margin:0;font-weight:600}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #ddd;vertical-align:top}
td.num,th.num{text-align:right}
.result-failed,.result-guard_tripped,.result-interrupted{color:#c0392b;font-weight:600}.result-ok{color:#2e7d32}
.legend span{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 1em;vertical-align:middle}
.note{color:#555}
time{white-space:nowrap}
code{font-size:.92em;background:#f3f3f3;padding:0 .2em;border-radius:2px}
ul.fields{margin:0;padding-left:1.1em}
@media (max-width:32em){body{font-size:14px;margin:1em auto;padding:0 .6em} th,td{padding:.2em .4em}}
</style>`

// pageScript shows every <time datetime> in the browser's time zone,
// "2026-01-02 04:04:05 GMT+1"; the title keeps the UTC time. It is inline
// (a page needs nothing else from the server) and runs under the
// response's nonce only.
const pageScript = `(function () {
  "use strict";
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function zone(d) {
    try {
      var parts = new Intl.DateTimeFormat(undefined, {timeZoneName: "short"}).formatToParts(d);
      for (var i = 0; i < parts.length; i++) {
        if (parts[i].type === "timeZoneName") { return parts[i].value; }
      }
    } catch (e) {}
    var off = -d.getTimezoneOffset(), sign = off < 0 ? "-" : "+";
    off = Math.abs(off);
    return "UTC" + sign + pad(Math.floor(off / 60)) + ":" + pad(off % 60);
  }
  var times = document.querySelectorAll("time[datetime]");
  for (var i = 0; i < times.length; i++) {
    var el = times[i], d = new Date(el.getAttribute("datetime"));
    if (isNaN(d.getTime())) { continue; }
    el.textContent = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + " " + zone(d);
    el.className = "local";
  }
})();`

// pageTemplates are both pages and the parts they share.
var pageTemplates = template.Must(template.New("pages").Funcs(template.FuncMap{
	"rfc3339":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"utc":       func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"thousands": thousands,
}).Parse(`{{define "time"}}{{if not .IsZero}}<time datetime="{{rfc3339 .}}" title="{{utc .}}">{{utc .}}</time>{{end}}{{end}}
{{define "style"}}` + pageStyle + `{{end}}
{{define "script"}}<script nonce="{{.}}">` + pageScript + `</script>{{end}}
` + statusPageTemplate + runPageTemplate))

// newNonce is a fresh script nonce: 128 random bits.
func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// writePage renders one of pageTemplates with the security headers of a
// page: its script runs under nonce, and nothing else runs or loads
// except the inline styles.
func (s *Server) writePage(w http.ResponseWriter, code int, name, nonce string, data any) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		s.internal(w, "render the "+name+" page", err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-"+nonce+"'")
	w.WriteHeader(code)
	_, _ = buf.WriteTo(w)
}

// Trigger names as the pages show them.
var triggerNames = map[string]string{
	reconcile.TriggerSchedule: "schedule",
	reconcile.TriggerStart:    "start-up",
	reconcile.TriggerAPI:      "API",
	reconcile.TriggerCLI:      "CLI",
}

// triggerName is how a page names what started a run ("" when the run's
// record does not say, as for runs of an older seatsync).
func triggerName(t string) string {
	if n, ok := triggerNames[t]; ok {
		return n
	}
	return t
}

// changeCounts says what a run changed, "3 create, 1 block", or "no
// changes". Skipped entries are not changes: the pages name them apart.
func changeCounts(sum reconcile.Summary) string {
	var out []byte
	add := func(n int, what string) {
		if n == 0 {
			return
		}
		if len(out) > 0 {
			out = append(out, ", "...)
		}
		out = append(out, thousands(n)+" "+what...)
	}
	add(sum.Create, "create")
	add(sum.Update, "update")
	add(sum.Move, "move")
	add(sum.Activate, "activate")
	add(sum.Block, "block")
	add(sum.Delete, "delete")
	add(sum.Grant, "grant")
	add(sum.Recall, "recall")
	if len(out) == 0 {
		return "no changes"
	}
	return string(out)
}

// skippedText says how many entries a run skipped, "" for none.
func skippedText(n int) string {
	switch n {
	case 0:
		return ""
	case 1:
		return "1 entry skipped"
	}
	return thousands(n) + " entries skipped"
}

// runDuration is how long a run took, to a precision that suits its
// length: "412ms", "4.2s", "3m5s". "" when it has not finished.
func runDuration(started, finished time.Time) string {
	if started.IsZero() || finished.IsZero() || finished.Before(started) {
		return ""
	}
	d := finished.Sub(started)
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// span says a stretch of time as people do: "less than a minute",
// "5 min", "3 h 20 min", "4 days".
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%d h", h)
		}
		return fmt.Sprintf("%d h %d min", h, m)
	}
	return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
}

// ago is "5 min ago" for a time before now.
func ago(now, t time.Time) string { return span(max(0, now.Sub(t))) + " ago" }

// until is "in 5 min" for a time after now.
func until(now, t time.Time) string { return "in " + span(max(0, t.Sub(now))) }

// thousands writes n with a comma between groups of three digits.
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := ""
	if n < 0 {
		neg, s = "-", s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return neg + s
}
