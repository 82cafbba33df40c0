package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/admin"
	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store"
)

// pageNow is the clock of pageServer: six minutes after RUN0 started,
// five before the next scheduled sync (fakeBackend.NextRuns).
var pageNow = time.Date(2026, 1, 2, 3, 10, 5, 0, time.UTC)

// pageServer is newTest's store and configuration served with a fixed
// clock.
func pageServer(t *testing.T) (*fakeBackend, *Server) {
	t.Helper()
	b, _ := newTest(t, testToken)
	return b, &Server{Backend: b, Metrics: NewMetrics(), Log: zap.NewNop(), Now: func() time.Time { return pageNow }}
}

func get(t *testing.T, h http.Handler, path string) (*httptest.ResponseRecorder, string) {
	t.Helper()
	rec := do(t, h, call{method: "GET", path: path, auth: bearer(testToken)})
	if rec.Code != 200 {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	return rec, rec.Body.String()
}

var nonceAttr = regexp.MustCompile(`<script nonce="([A-Za-z0-9_-]{22})">`)

// onlyOwnScript fails unless the page's one script is inline and allowed
// by the nonce of the response's CSP, which allows nothing else: no
// script file, no other inline script, nothing from another site.
func onlyOwnScript(t *testing.T, rec *httptest.ResponseRecorder, page string) {
	t.Helper()
	m := nonceAttr.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no <script nonce> in the page")
	}
	want := "default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-" + m[1] + "'"
	if got := rec.Header().Get("Content-Security-Policy"); got != want {
		t.Errorf("Content-Security-Policy %q, want %q", got, want)
	}
	if n := strings.Count(page, "<script"); n != 1 {
		t.Errorf("%d script elements, want 1", n)
	}
	if strings.Contains(page, " src=") || strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Error("the page loads files or names other sites")
	}
	if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no X-Content-Type-Options: nosniff")
	}
}

// section returns the part of page from the element with the id to the
// end of that element's closing tag name (the first one after it).
func section(t *testing.T, page, id, end string) string {
	t.Helper()
	i := strings.Index(page, `id="`+id+`"`)
	if i < 0 {
		t.Fatalf("no element #%s in the page", id)
	}
	j := strings.Index(page[i:], end)
	if j < 0 {
		t.Fatalf("#%s has no %s", id, end)
	}
	return page[i : i+j]
}

// classText is the text of the first element with the class in s (tags
// inside it removed).
func classText(s, class string) string {
	re := regexp.MustCompile(`class="[^"]*\b` + regexp.QuoteMeta(class) + `\b[^"]*"[^>]*>(.*?)</(?:td|dd|span|p)>`)
	m := re.FindStringSubmatch(s)
	if m == nil {
		return "(missing)"
	}
	return regexp.MustCompile(`<[^>]*>`).ReplaceAllString(m[1], "")
}

// The pool panel shows the numbers `seatsync seats` prints: blocked,
// exempt and overage included, and the percentage used on the bar.
func TestStatusPageCountsAsSeats(t *testing.T) {
	b, s := pageServer(t)
	b.cfg.Licensing.Exempt = []string{"root"}
	b.cfg.Licensing.Pools[0].Limit.N = 1 // two active: one over
	err := b.st.WithTx(context.Background(), func(tx store.Tx) error {
		for _, p := range []model.Profile{
			{Username: "root", Area: "primary", State: model.Active},
			{Username: "gina", Area: "partners", State: model.Blocked, BlockReason: model.ReasonAdmin, Source: "hr", ExternalID: "E7"},
			{Username: "hal", Area: "partners", State: model.Active, Source: "hr", ExternalID: "E8"},
		} {
			if err := tx.Insert(context.Background(), &p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	profiles, err := b.st.Profiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pol := licensing.FromConfig(b.cfg.Licensing)
	var out bytes.Buffer
	if err := admin.WriteSeats(&out, pol.Count(profiles), pol.Queue(profiles), nil, "json"); err != nil {
		t.Fatal(err)
	}
	var seats struct{ Pools []admin.SeatsPool }
	if err := json.Unmarshal(out.Bytes(), &seats); err != nil {
		t.Fatal(err)
	}
	_, page := get(t, s.Handler(), "/")
	for _, p := range seats.Pools {
		panel := section(t, page, "pool-"+p.Name, "</section>")
		got := fmt.Sprintf("used %s blocked %s exempt %s overage %s queued %s", classText(panel, "pool-used"), classText(panel, "pool-blocked"),
			classText(panel, "pool-exempt"), classText(panel, "pool-overage"), classText(panel, "pool-queued"))
		want := fmt.Sprintf("used %d blocked %d exempt %d overage %d queued %d", p.Active, p.Blocked, p.Exempt, p.Overage, p.Queued)
		if got != want {
			t.Errorf("pool %s on the page: %s; seats says %s", p.Name, got, want)
		}
	}
	primary := section(t, page, "pool-primary", "</section>")
	if got := classText(primary, "pool-percent"); got != "200% used" {
		t.Errorf("primary's bar says %q, want 200%% used (2 of 1)", got)
	}
	if !strings.Contains(page, `id="banner-pool-over-primary"`) {
		t.Error("no banner for the pool over its limit")
	}
	if strings.Contains(section(t, page, "pool-extranet", "</section>"), "pool-percent") {
		t.Error("an unlimited pool shows a percentage")
	}
}

// The runs table says what started each run, how long it took and what
// it changed: a run that changed nothing reads "no changes", whatever it
// skipped. Above it: the next scheduled sync and the age of the last
// successful one.
func TestStatusPageRuns(t *testing.T) {
	b, s := pageServer(t)
	at := time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC)
	for _, r := range []store.Run{
		{ID: "RUN1", Mode: "sync", Result: "ok", StartedAt: at, FinishedAt: at.Add(4200 * time.Millisecond),
			Summary: json.RawMessage(`{"create":0,"unchanged":5,"skipped":1,"trigger":"schedule"}`)},
		{ID: "RUN2", Mode: "sync", Result: "failed", Error: "pull failed", StartedAt: at.Add(2 * time.Minute), FinishedAt: at.Add(2*time.Minute + 90*time.Second),
			Summary: json.RawMessage(`{"create":0,"trigger":"api"}`)},
		{ID: "RUN3", Mode: "sync", Result: "ok", StartedAt: at.Add(3 * time.Minute), FinishedAt: at.Add(3*time.Minute + 300*time.Millisecond),
			Summary: json.RawMessage(`{"create":1200,"block":2,"trigger":"cli"}`)},
		{ID: "RUN4", Mode: "sync", Result: "running", StartedAt: at.Add(4 * time.Minute),
			Summary: json.RawMessage(`{"create":0,"trigger":"start"}`)},
	} {
		if err := b.st.SaveRun(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	_, page := get(t, s.Handler(), "/")
	for _, c := range []struct{ id, want string }{
		{"RUN1", "trigger=schedule counts=no changes skipped=1 entry skipped took=4.2s"},
		{"RUN2", "trigger=API counts=no changes skipped=(missing) took=1m30s"},
		{"RUN3", "trigger=CLI counts=1,200 create, 2 block skipped=(missing) took=300ms"},
		{"RUN4", "trigger=start-up counts= skipped=(missing) took="},
		{"RUN0", "trigger= counts=2 create skipped=(missing) took=0s"},
	} {
		i := strings.Index(page, `<tr class="run" data-run-id="`+c.id+`">`)
		if i < 0 {
			t.Errorf("no row for %s", c.id)
			continue
		}
		tr := page[i : i+strings.Index(page[i:], "</tr>")]
		got := fmt.Sprintf("trigger=%s counts=%s skipped=%s took=%s", classText(tr, "run-trigger"), classText(tr, "run-counts"),
			classText(tr, "run-skipped"), classText(tr, "run-duration"))
		if got != c.want {
			t.Errorf("run %s: %s, want %s", c.id, got, c.want)
		}
		if !strings.Contains(tr, `href="/runs/`+c.id+`"`) {
			t.Errorf("run %s does not link to its page", c.id)
		}
	}
	// The API has each run's trigger beside its summary, which stays all
	// counts.
	rec := do(t, s.Handler(), call{method: "GET", path: "/api/v1/runs", auth: bearer(testToken)})
	var api struct {
		Runs []struct {
			ID      string         `json:"run_id"`
			Trigger string         `json:"trigger"`
			Summary map[string]int `json:"summary"`
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &api); err != nil {
		t.Fatalf("GET /api/v1/runs: %v\n%s", err, rec.Body)
	}
	var triggers []string
	for _, r := range api.Runs {
		triggers = append(triggers, r.ID+":"+r.Trigger)
	}
	if got, want := strings.Join(triggers, " "), "RUN4:start RUN3:cli RUN2:api RUN1:schedule RUN0:"; got != want || api.Runs[1].Summary["create"] != 1200 {
		t.Errorf("GET /api/v1/runs: triggers %s, want %s; %s", got, want, rec.Body)
	}
	if got := section(t, page, "next-run", "</p>"); !strings.Contains(got, `datetime="2026-01-02T03:15:00Z"`) || !strings.Contains(got, "in 4 min") ||
		!strings.Contains(got, "@every 15m") {
		t.Errorf("next run: %s", got)
	}
	if got := section(t, page, "last-success", "</p>"); !strings.Contains(got, `datetime="2026-01-02T03:08:00Z"`) || !strings.Contains(got, "2 min ago") ||
		!strings.Contains(got, `href="/runs/RUN3"`) {
		t.Errorf("last successful sync: %s", got)
	}
}

// Every time on a page is a <time> with the UTC time as its text (until
// the script shows it in the browser's time zone) and as its title.
func TestPageTimesAreUTCWithoutScript(t *testing.T) {
	_, s := pageServer(t)
	for _, path := range []string{"/", "/runs/RUN0"} {
		_, page := get(t, s.Handler(), path)
		want := `<time datetime="2026-01-02T03:04:05Z" title="2026-01-02 03:04:05 UTC">2026-01-02 03:04:05 UTC</time>`
		if !strings.Contains(page, want) {
			t.Errorf("%s has no %s", path, want)
		}
		if n := len(regexp.MustCompile(`<time [^>]*>`).FindAllString(page, -1)); n != strings.Count(page, `title="2026-`) {
			t.Errorf("%s: %d times, not all with a UTC title", path, n)
		}
	}
}

// Names and addresses come from directories and CSV exports: a page
// shows them as text, never as markup.
func TestPagesEscapeUserData(t *testing.T) {
	b, s := pageServer(t)
	evil := `<script>alert("x")</script>`
	err := b.st.WithTx(context.Background(), func(tx store.Tx) error {
		return tx.Insert(context.Background(), &model.Profile{Username: "mallory", DisplayName: evil, Email: `m"><img src=x onerror=alert(1)>@example.com`,
			Area: "primary", State: model.Blocked, BlockReason: model.ReasonLicense, QueuedAt: pageNow, Source: "hr", ExternalID: "E9"})
	})
	if err != nil {
		t.Fatal(err)
	}
	report := `{"run_id":"RUN5","mode":"sync","result":"ok","started_at":"2026-01-02T03:05:00Z","finished_at":"2026-01-02T03:05:01Z",
		"sources":[{"name":"hr","type":"csv","identities":1,"skipped":1,"full":true}],"summary":{"update":1,"skipped":1},
		"changes":[{"action":"update","username":"mallory","source":"hr","external_id":"E9","area":"primary","state":"blocked",
			"fields":{"display_name":{"old":"Mallory","new":` + jsonString(evil) + `}}}],
		"skipped":[{"source":"hr","external_id":"<b>E10</b>","reason":` + jsonString(evil) + `}],"guard":{"tripped":false,"deprovisions":0,"limit":1}}`
	if err := b.st.SaveRun(context.Background(), store.Run{ID: "RUN5", Mode: "sync", Result: "ok", StartedAt: pageNow, FinishedAt: pageNow,
		Summary: json.RawMessage(`{"update":1,"skipped":1}`), Report: json.RawMessage(report)}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/runs/RUN5"} {
		_, page := get(t, s.Handler(), path)
		if strings.Contains(page, "<script>alert") || strings.Contains(page, "<img") || strings.Contains(page, "<b>") {
			t.Errorf("%s puts user data into the page as markup", path)
		}
		if !strings.Contains(page, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
			t.Errorf("%s does not show the display name as text", path)
		}
	}
	_, page := get(t, s.Handler(), "/")
	if want := `<td class="queue-email">m&#34;&gt;&lt;img src=x onerror=alert(1)&gt;@example.com</td>`; !strings.Contains(page, want) {
		t.Errorf("the queue lacks %s", want)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// A run's page shows its report for people: the counts, pools, sources,
// targets, every change with its changed fields, and the skipped entries.
func TestRunPage(t *testing.T) {
	b, s := pageServer(t)
	report := `{"run_id":"RUN6","mode":"sync","trigger":"api","result":"ok","started_at":"2026-01-02T03:05:00Z","finished_at":"2026-01-02T03:05:02.5Z",
		"sources":[{"name":"hr","type":"csv","identities":1500,"skipped":1,"full":true}],
		"summary":{"create":1,"update":1,"unchanged":1497,"skipped":1},
		"pools":[{"name":"primary","limit":2,"unlimited":false,"reserve":0,"used_before":1,"used_after":2,"remaining_after":0,"queued_after":1,"overage":0}],
		"changes":[
			{"action":"create","username":"ivy","source":"hr","external_id":"E11","area":"primary","state":"blocked","reason":"license","queue_position":1,"result":"applied",
				"fields":{"email":{"old":null,"new":"ivy@example.com"},"groups":{"old":null,"new":["Staff","Sales"]}}},
			{"action":"update","username":"alice","source":"hr","external_id":"E1","area":"primary","state":"active","result":"conflict",
				"fields":{"email":{"old":"alice@example.com","new":"alice@corp.example"},"title":{"old":"","new":"Boss"}}}],
		"skipped":[{"source":"hr","external_id":"E12","where":"line 7","reason":"no username"}],
		"guard":{"tripped":false,"deprovisions":0,"limit":150},
		"targets":[{"name":"crm","type":"scim","sent":1,"pending":0,"failed":1,"failures":[{"username":"ivy","status":400,"error":"bad email"}]}]}`
	if err := b.st.SaveRun(context.Background(), store.Run{ID: "RUN6", Mode: "sync", Result: "ok",
		StartedAt: time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC), FinishedAt: time.Date(2026, 1, 2, 3, 5, 2, 500e6, time.UTC),
		Summary: json.RawMessage(`{"create":1,"update":1,"unchanged":1497,"skipped":1,"trigger":"api"}`), Report: json.RawMessage(report)}); err != nil {
		t.Fatal(err)
	}
	rec, page := get(t, s.Handler(), "/runs/RUN6")
	onlyOwnScript(t, rec, page)
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	head := section(t, page, "run", "</section>")
	got := fmt.Sprintf("%s %s %s %s %s", classText(head, "run-mode"), classText(head, "run-trigger"), classText(head, "run-result"),
		classText(head, "run-duration"), classText(head, "run-counts"))
	if want := "sync API ok 2.5s 1 create, 1 update"; got != want {
		t.Errorf("run head: %q, want %q", got, want)
	}
	for _, want := range []string{
		"1,497 unchanged, 1 skipped",
		`<td class="change-username">ivy</td>`, `<li>email: ivy@example.com</li>`, `<li>groups: Staff, Sales</li>`,
		`<td class="change-action">update (conflict)</td>`, `<li>email: alice@example.com → alice@corp.example</li>`, `<li>title: &#34;&#34; → Boss</li>`,
		`<td class="change-queue num">#1</td>`,
		`<td class="skipped-reason">no username</td>`, `<td class="skipped-where">line 7</td>`,
		`<tr class="pool" data-pool="primary">`, `<td class="num">1,500</td>`,
		`crm refused ivy (HTTP 400): bad email`,
		`<a id="report-json" href="/api/v1/runs/RUN6">`, `seatsync runs show -c FILE RUN6`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the run page lacks %s", want)
		}
	}
	if strings.Contains(page, `id="changes-more"`) || strings.Contains(page, `id="skipped-more"`) {
		t.Error("the run page says rows are left out of a small report")
	}

	// The status page links each run here; the JSON stays where it was.
	if rec := do(t, s.Handler(), call{method: "GET", path: "/api/v1/runs/RUN6", auth: bearer(testToken)}); rec.Code != 200 ||
		!strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") || !strings.Contains(rec.Body.String(), `"run_id":"RUN6"`) {
		t.Errorf("the JSON report: %d %s", rec.Code, rec.Body)
	}
	// A run that changed nothing says so.
	if err := b.st.SaveRun(context.Background(), store.Run{ID: "RUN7", Mode: "sync", Result: "ok", StartedAt: pageNow, FinishedAt: pageNow,
		Summary: json.RawMessage(`{"unchanged":5,"skipped":1}`), Report: json.RawMessage(`{"run_id":"RUN7","mode":"sync","summary":{"unchanged":5,"skipped":1},"changes":[],"skipped":[]}`)}); err != nil {
		t.Fatal(err)
	}
	_, page = get(t, s.Handler(), "/runs/RUN7")
	if got := classText(page, "run-counts"); got != "no changes" || !strings.Contains(page, `id="changes-none"`) {
		t.Errorf("a run without changes: %q", got)
	}
}

// The run page is guarded like the status page: the bearer token, or the
// token as the Basic auth password.
func TestRunPageAuthAndErrors(t *testing.T) {
	_, s := pageServer(t)
	h := s.Handler()
	for _, c := range []struct {
		auth string
		code int
	}{{"", 401}, {bearer("wrong"), 401}, {bearer(testToken), 200}, {basic("admin", testToken), 200}} {
		if rec := do(t, h, call{method: "GET", path: "/runs/RUN0", auth: c.auth}); rec.Code != c.code {
			t.Errorf("GET /runs/RUN0 with %q: %d, want %d", c.auth, rec.Code, c.code)
		}
	}
	rec := do(t, h, call{method: "GET", path: "/runs/NOPE", auth: bearer(testToken)})
	if msg := jsonError(t, rec); rec.Code != 404 || msg != `no run with ID "NOPE"` {
		t.Errorf("unknown run: %d %s", rec.Code, msg)
	}
	if rec := do(t, h, call{method: "POST", path: "/runs/RUN0", auth: bearer(testToken)}); rec.Code != 405 {
		t.Errorf("POST /runs/RUN0: %d", rec.Code)
	}
	// Each response has its own nonce.
	r1, p1 := get(t, h, "/runs/RUN0")
	r2, p2 := get(t, h, "/runs/RUN0")
	if nonceAttr.FindString(p1) == nonceAttr.FindString(p2) || r1.Header().Get("Content-Security-Policy") == r2.Header().Get("Content-Security-Policy") {
		t.Error("two responses share a script nonce")
	}
}

// A run recorded without a report (one that was interrupted) shows its
// record.
func TestRunPageWithoutReport(t *testing.T) {
	b, s := pageServer(t)
	if err := b.st.SaveRun(context.Background(), store.Run{ID: "RUN8", Mode: "sync", Result: "interrupted", Error: "the process stopped",
		StartedAt: pageNow, FinishedAt: pageNow.Add(time.Minute), Summary: json.RawMessage(`{"create":3,"trigger":"schedule"}`)}); err != nil {
		t.Fatal(err)
	}
	_, page := get(t, s.Handler(), "/runs/RUN8")
	for _, want := range []string{`id="report-none"`, `<span class="run-counts">3 create</span>`, `<dd class="run-trigger">schedule</dd>`,
		`<p class="banner bad" id="run-error">the process stopped</p>`, `<dd class="run-duration">1m0s</dd>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page of a run without a report lacks %s", want)
		}
	}
}

// A first sync of a large directory reports 100,000 changes: its page
// shows the first DefaultReportRows, says how many more there are and
// where to read them, and stays small.
func TestRunPageHugeReport(t *testing.T) {
	b, s := pageServer(t)
	const n = 100_000
	rep := hugeReport("BIG", n, 2*DefaultReportRows, 3)
	if err := b.st.SaveRun(context.Background(), store.Run{ID: "BIG", Mode: "sync", Result: "ok", StartedAt: pageNow, FinishedAt: pageNow,
		Summary: json.RawMessage(`{"create":100000}`), Report: rep}); err != nil {
		t.Fatal(err)
	}
	_, page := get(t, s.Handler(), "/runs/BIG")
	if len(page) > 2<<20 {
		t.Errorf("the page of a report of %d changes (%d MB of JSON) is %d KB", n, len(rep)>>20, len(page)>>10)
	}
	if got := strings.Count(page, `<tr class="change">`); got != DefaultReportRows {
		t.Errorf("%d changes on the page, want %d", got, DefaultReportRows)
	}
	more := section(t, page, "changes-more", "</p>")
	for _, want := range []string{"first 1,000 of 100,000 changes", "99,000 more", `href="/api/v1/runs/BIG"`, "seatsync runs show -c FILE BIG"} {
		if !strings.Contains(more, want) {
			t.Errorf("#changes-more lacks %q: %s", want, more)
		}
	}
	if !strings.Contains(page, "user999<") || strings.Contains(page, "user1000<") {
		t.Error("the page does not show the first changes in the report's order")
	}
	if strings.Count(page, `<tr class="skipped-entry">`) != 3 || strings.Contains(page, `id="skipped-more"`) {
		t.Error("the skipped entries of a report are not all shown")
	}

	// Skipped entries are capped the same way.
	if err := b.st.SaveRun(context.Background(), store.Run{ID: "SKIPS", Mode: "sync", Result: "ok", StartedAt: pageNow, FinishedAt: pageNow,
		Summary: json.RawMessage(`{"skipped":3}`), Report: hugeReport("SKIPS", 0, 0, 3)}); err != nil {
		t.Fatal(err)
	}
	s.ReportRows = 2
	_, page = get(t, s.Handler(), "/runs/SKIPS")
	if strings.Count(page, `<tr class="skipped-entry">`) != 2 || !strings.Contains(page, "first 2 of 3 skipped entries") {
		t.Errorf("skipped entries with ReportRows 2: %s", section(t, page, "skipped", "</table>"))
	}
}

// hugeReport is a report of a first sync: n creates, the first full of
// them with the fields a CSV export gives (the others with none, to spare
// the test's time), and skipped entries.
func hugeReport(id string, n, full, skipped int) []byte {
	var rep bytes.Buffer
	fmt.Fprintf(&rep, `{"run_id":%q,"mode":"sync","result":"ok","summary":{"create":%d,"skipped":%d},"changes":[`, id, n, skipped)
	for i := range n {
		if i > 0 {
			rep.WriteByte(',')
		}
		fmt.Fprintf(&rep, `{"action":"create","username":"user%d","source":"hr","external_id":"E%d","area":"primary","state":"active","result":"applied"`, i, i)
		if i < full {
			fmt.Fprintf(&rep, `,"fields":{"email":{"old":null,"new":"user%d@example.com"},"given_name":{"old":null,"new":"Given%d"},"family_name":{"old":null,"new":"Family%d"},`+
				`"department":{"old":null,"new":"Department %d"},"groups":{"old":null,"new":["Staff","Team %d"]}}`, i, i, i, i%20, i%50)
		}
		rep.WriteByte('}')
	}
	rep.WriteString(`],"skipped":[`)
	for i := range skipped {
		if i > 0 {
			rep.WriteByte(',')
		}
		fmt.Fprintf(&rep, `{"source":"hr","external_id":"X%d","reason":"no username"}`, i)
	}
	rep.WriteString(`],"guard":{"tripped":false,"deprovisions":0,"limit":0},"targets":[]}`)
	return rep.Bytes()
}

func TestPageWords(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{span(30 * time.Second), "less than a minute"},
		{span(5*time.Minute + 59*time.Second), "5 min"},
		{span(3 * time.Hour), "3 h"},
		{span(3*time.Hour + 20*time.Minute), "3 h 20 min"},
		{span(50 * time.Hour), "2 days"},
		{ago(pageNow, pageNow.Add(time.Minute)), "less than a minute ago"},
		{until(pageNow, pageNow.Add(90*time.Minute)), "in 1 h 30 min"},
		{runDuration(pageNow, pageNow.Add(412345*time.Microsecond)), "412ms"},
		{runDuration(pageNow, pageNow.Add(4249*time.Millisecond)), "4.2s"},
		{runDuration(pageNow, pageNow.Add(185400*time.Millisecond)), "3m5s"},
		{runDuration(pageNow, time.Time{}), ""},
		{thousands(0), "0"}, {thousands(999), "999"}, {thousands(1000), "1,000"}, {thousands(1234567), "1,234,567"}, {thousands(-1000), "-1,000"},
		{triggerName("start"), "start-up"}, {triggerName(""), ""},
		{fieldValue([]any{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"}), "a, b, c, d, e, f, g, h, i, j and 2 more"},
		{fieldValue(strings.Repeat("x", 300)), strings.Repeat("x", 199) + "…"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestStatusPageProducts: each product's licences under the pools, as
// "issued N of LIMIT", the same numbers as the status API.
func TestStatusPageProducts(t *testing.T) {
	b, s := pageServer(t)
	b.cfg.Licensing.Products = []config.Product{{Name: "crm", Limit: config.Limit{N: 5}, Grant: []config.GrantRule{{Area: "primary"}}}}
	ctx := context.Background()
	err := b.st.WithTx(ctx, func(tx store.Tx) error {
		for i, u := range []string{"ann", "bea", "cy", "dot"} {
			p := model.Profile{Username: u, Area: "primary", State: model.Active}
			if err := tx.Insert(ctx, &p); err != nil {
				return err
			}
			g := store.Grant{ProfileID: p.ID, Product: "crm", State: store.GrantGranted}
			if i == 3 {
				g.State = store.GrantQueued
			}
			if err := tx.SetGrant(ctx, g); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, page := get(t, s.Handler(), "/")
	panel := section(t, page, "product-crm", "</section>")
	if got := classText(panel, "product-issued"); got != "issued 3 of 5" {
		t.Errorf("product crm on the page: %q, want issued 3 of 5", got)
	}
	if got := classText(panel, "product-queued"); got != "1" {
		t.Errorf("product crm queued on the page: %q, want 1", got)
	}
	st, err := s.status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Products) != 1 || st.Products[0].Issued != 3 || st.Products[0].Queued != 1 {
		t.Errorf("status products = %+v", st.Products)
	}
}

// A stored report's product licences and grants are read for the run
// page, and the counts name grants and recalls.
func TestRunPageProducts(t *testing.T) {
	raw := []byte(`{"run_id":"R1","mode":"sync","products":[{"name":"crm","limit":5,"unlimited":false,"used_before":1,"used_after":3,"remaining_after":2,"queued_after":1,"overage":0}],
		"changes":[{"action":"grant","username":"ann","source":"hr","external_id":"E1","area":"primary","product":"crm","state":"active","reason":"rule","result":"applied"}]}`)
	rep, err := readReport(raw, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Products) != 1 || rep.Products[0].UsedAfter != 3 || len(rep.Changes.Rows) != 1 || rep.Changes.Rows[0].Product != "crm" {
		t.Errorf("readReport = %+v", rep)
	}
	if got := changeCounts(reconcile.Summary{Create: 1, Grant: 2, Recall: 1}); got != "1 create, 2 grant, 1 recall" {
		t.Errorf("changeCounts = %q", got)
	}
}
