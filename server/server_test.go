package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/seatsync/seatsync/config"
	csvsource "github.com/seatsync/seatsync/connector/csv"
	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/store/sqlite"
)

const testToken = "t0ken-for-tests"

// fakeBackend serves a real SQLite store and records sync requests.
type fakeBackend struct {
	cfg     *config.Config
	st      store.Store
	busy    bool
	started []reconcile.Options
	changed int
	lead    Leadership
}

func (b *fakeBackend) Config() *config.Config { return b.cfg }
func (b *fakeBackend) Store() store.Store     { return b.st }
func (b *fakeBackend) Running() string {
	if b.busy {
		return "RUN1"
	}
	return ""
}
func (b *fakeBackend) StartSync(opt reconcile.Options) (string, error) {
	if !b.lead.Leading {
		return "", &NotLeaderError{Leader: b.lead.Leader}
	}
	if b.busy {
		return "RUN1", ErrBusy
	}
	b.started = append(b.started, opt)
	return "RUN2", nil
}
func (b *fakeBackend) Plan(context.Context, reconcile.Options) (*reconcile.Report, error) {
	return &reconcile.Report{RunID: "PLAN1", Mode: reconcile.ModePlan, Result: reconcile.ResultNoChanges}, nil
}
func (b *fakeBackend) Changed(context.Context) { b.changed++ }
func (b *fakeBackend) Leadership() Leadership  { return b.lead }
func (b *fakeBackend) NextRuns() []ScheduledRun {
	return []ScheduledRun{{Kind: "sync", Schedule: "@every 15m", Sources: []string{"hr"}, NextRun: time.Date(2026, 1, 2, 3, 15, 0, 0, time.UTC)}}
}

func newTest(t *testing.T, token string) (*fakeBackend, http.Handler) {
	t.Helper()
	return newTestIn(t, t.TempDir(), token, `licensing:
  pools:
    - {name: primary, limit: 2, areas: [primary]}
    - {name: extranet, limit: unlimited, areas: [partners]}
`)
}

// newTestIn is newTest with its own licensing section, in dir.
func newTestIn(t *testing.T, dir, token, licensing string) (*fakeBackend, http.Handler) {
	t.Helper()
	srv := "server: {listen: 127.0.0.1:8080}\n"
	if token != "" {
		srv = "server: {listen: 127.0.0.1:8080, token: " + token + "}\n"
	}
	cfg, err := config.ParseWith([]byte("version: 1\n"+licensing+`sources:
  - {name: hr, type: csv, path: hr.csv}
`+srv), filepath.Join(dir, "seatsync.yaml"), func(string) (string, bool) { return "", false },
		config.Plugins{Sources: config.Kinds{"csv": csvsource.NewSettings}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "seatsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	err = st.WithTx(context.Background(), func(tx store.Tx) error {
		for i, p := range []model.Profile{
			{Username: "alice", Area: "primary", State: model.Active, Source: "hr", ExternalID: "E1"},
			{Username: "bob", Area: "primary", State: model.Active, Source: "hr", ExternalID: "E2"},
			{Username: "carol", Area: "primary", State: model.Blocked, BlockReason: model.ReasonLicense, QueuedAt: now.Add(time.Minute), Source: "hr", ExternalID: "E3"},
			{Username: "dave", Area: "primary", State: model.Blocked, BlockReason: model.ReasonLicense, QueuedAt: now, Source: "hr", ExternalID: "E4"},
			{Username: "erin", Area: "primary", State: model.Blocked, BlockReason: model.ReasonAdmin, Source: "hr", ExternalID: "E5"},
		} {
			p.Email = p.Username + "@example.com"
			p.CreatedAt, p.UpdatedAt = now, now.Add(time.Duration(i))
			if err := tx.Insert(context.Background(), &p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rep := &reconcile.Report{RunID: "RUN0", Mode: reconcile.ModeSync, Result: reconcile.ResultOK, StartedAt: now, FinishedAt: now}
	body, _ := rep.EncodeJSON()
	if err := st.SaveRun(context.Background(), store.Run{ID: "RUN0", Mode: "sync", Result: "ok", StartedAt: now, FinishedAt: now,
		Sources: []string{"hr"}, Summary: json.RawMessage(`{"create":2}`), Report: body}); err != nil {
		t.Fatal(err)
	}
	b := &fakeBackend{cfg: cfg, st: st, lead: Leadership{ID: "pod-a/1", Leader: "pod-a/1", Leading: true}}
	s := &Server{Backend: b, Metrics: NewMetrics(), Log: zap.NewNop(), MaxBody: 1024}
	return b, s.Handler()
}

type call struct {
	method, path, body string
	auth               string // full Authorization header
}

func do(t *testing.T, h http.Handler, c call) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func bearer(tok string) string { return "Bearer " + tok }

func basic(user, pw string) string {
	req := httptest.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pw)
	return req.Header.Get("Authorization")
}

// jsonError decodes an error body and fails unless it is {"error": "..."}.
func jsonError(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type %q, want application/json", ct)
	}
	var e struct{ Error string }
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
		t.Fatalf("not a JSON error: %q (%v)", rec.Body.String(), err)
	}
	return e.Error
}

func TestAuth(t *testing.T) {
	_, h := newTest(t, testToken)
	tests := []struct {
		name string
		call call
		want int
	}{
		{"status without token", call{method: "GET", path: "/api/v1/status"}, 401},
		{"status with a wrong token", call{method: "GET", path: "/api/v1/status", auth: bearer("wrong")}, 401},
		{"status with a token prefix", call{method: "GET", path: "/api/v1/status", auth: bearer(testToken[:5])}, 401},
		{"status with the token", call{method: "GET", path: "/api/v1/status", auth: bearer(testToken)}, 200},
		{"bearer scheme is case-insensitive", call{method: "GET", path: "/api/v1/status", auth: "bearer " + testToken}, 200},
		{"page without token", call{method: "GET", path: "/"}, 401},
		{"page with basic auth", call{method: "GET", path: "/", auth: basic("admin", testToken)}, 200},
		{"page with wrong basic auth", call{method: "GET", path: "/", auth: basic("admin", "nope")}, 401},
		{"run report with basic auth", call{method: "GET", path: "/api/v1/runs/RUN0", auth: basic("", testToken)}, 200},
		{"sync refuses basic auth", call{method: "POST", path: "/api/v1/sync", auth: basic("admin", testToken)}, 401},
		{"sync with the token", call{method: "POST", path: "/api/v1/sync", auth: bearer(testToken)}, 202},
		{"block without token", call{method: "POST", path: "/api/v1/profiles/alice/block"}, 401},
		{"healthz needs no token", call{method: "GET", path: "/healthz"}, 200},
		{"readyz needs no token", call{method: "GET", path: "/readyz"}, 200},
		{"metrics need no token", call{method: "GET", path: "/metrics"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, h, tt.call)
			if rec.Code != tt.want {
				t.Fatalf("%s %s: %d, want %d: %s", tt.call.method, tt.call.path, rec.Code, tt.want, rec.Body)
			}
			if rec.Code == 401 {
				jsonError(t, rec)
				challenges := strings.Join(rec.Header().Values("WWW-Authenticate"), "; ")
				if !strings.Contains(challenges, "Bearer") {
					t.Errorf("WWW-Authenticate %q has no Bearer challenge", challenges)
				}
				if tt.call.method == "GET" && !strings.Contains(challenges, "Basic") {
					t.Errorf("WWW-Authenticate %q has no Basic challenge for a browser", challenges)
				}
			}
		})
	}
}

func TestNoTokenIsOpen(t *testing.T) {
	_, h := newTest(t, "")
	if rec := do(t, h, call{method: "GET", path: "/api/v1/status"}); rec.Code != 200 {
		t.Fatalf("without a configured token (loopback only): %d %s", rec.Code, rec.Body)
	}
}

func TestListenRefusesNonLoopbackWithoutToken(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0"} {
		if ln, err := Listen(addr, false); !errors.Is(err, ErrNotLoopback) {
			if ln != nil {
				ln.Close()
			}
			t.Errorf("Listen(%q) without a token: %v, want ErrNotLoopback", addr, err)
		}
	}
	ln, err := Listen("127.0.0.1:0", false)
	if err != nil {
		t.Fatalf("loopback without a token: %v", err)
	}
	ln.Close()
}

func TestErrors(t *testing.T) {
	b, h := newTest(t, testToken)
	auth := bearer(testToken)
	tests := []struct {
		name string
		call call
		want int
		msg  string
	}{
		{"unknown route", call{method: "GET", path: "/api/v1/nope", auth: auth}, 404, "no such page"},
		{"unknown top route", call{method: "GET", path: "/favicon.ico"}, 404, "no such page"},
		{"wrong method", call{method: "DELETE", path: "/api/v1/runs", auth: auth}, 405, "not allowed"},
		{"GET on sync", call{method: "GET", path: "/api/v1/sync", auth: auth}, 405, "use POST"},
		{"unknown run", call{method: "GET", path: "/api/v1/runs/NOPE", auth: auth}, 404, `no run with ID "NOPE"`},
		{"bad limit", call{method: "GET", path: "/api/v1/runs?limit=zero", auth: auth}, 400, "limit"},
		{"limit too high", call{method: "GET", path: "/api/v1/runs?limit=100000", auth: auth}, 400, "limit"},
		{"bad state", call{method: "GET", path: "/api/v1/profiles?state=sleeping", auth: auth}, 400, "state"},
		{"bad reason", call{method: "GET", path: "/api/v1/profiles?reason=bored", auth: auth}, 400, "reason"},
		{"bad field", call{method: "GET", path: "/api/v1/profiles?fields=username,shoe_size", auth: auth}, 400, "fields"},
		{"bad format", call{method: "GET", path: "/api/v1/profiles?format=xml", auth: auth}, 400, "format"},
		{"unknown profiles parameter", call{method: "GET", path: "/api/v1/profiles?pools=extranet", auth: auth}, 400, `unknown parameter "pools" (one of state, reason, area, pool,`},
		{"repeated parameter", call{method: "GET", path: "/api/v1/profiles?state=active&state=blocked", auth: auth}, 400, `"state" is given 2 times`},
		{"bad pool", call{method: "GET", path: "/api/v1/profiles?pool=intranet", auth: auth}, 400, `pool "intranet" is not one of the configured pools: primary, extranet`},
		{"bad updated_since", call{method: "GET", path: "/api/v1/profiles?updated_since=yesterday", auth: auth}, 400, `updated_since "yesterday" is not an RFC 3339 time`},
		{"profiles limit 0", call{method: "GET", path: "/api/v1/profiles?limit=0", auth: auth}, 400, `limit "0" is not a number from 1 to 5000`},
		{"profiles limit too high", call{method: "GET", path: "/api/v1/profiles?limit=9999", auth: auth}, 400, `limit "9999" is not a number from 1 to 5000`},
		{"bad cursor", call{method: "GET", path: "/api/v1/profiles?cursor=***", auth: auth}, 400, "cursor"},
		{"bad JSON body", call{method: "POST", path: "/api/v1/sync", body: "{", auth: auth}, 400, "not valid JSON"},
		{"unknown body field", call{method: "POST", path: "/api/v1/sync", body: `{"force":true}`, auth: auth}, 400, "force"},
		{"unknown source", call{method: "POST", path: "/api/v1/sync?source=ad", auth: auth}, 400, `no source named "ad"`},
		{"body too large", call{method: "POST", path: "/api/v1/sync", body: `{"sources":["` + strings.Repeat("x", 2000) + `"]}`, auth: auth}, 413, "larger than 1024 bytes"},
		{"unknown profile", call{method: "POST", path: "/api/v1/profiles/zed/block", auth: auth}, 404, `no profile with username "zed"`},
		{"bad queue", call{method: "POST", path: "/api/v1/profiles/carol/unblock?queue=maybe", auth: auth}, 400, "queue"},
		{"no free seat", call{method: "POST", path: "/api/v1/profiles/carol/unblock", auth: auth}, 409, "no free seat in pool primary"},
		// The API has no --queue flag: the answer names its own way to queue.
		{"no free seat says how to queue", call{method: "POST", path: "/api/v1/profiles/carol/unblock", auth: auth}, 409, "or use ?queue=true to put carol in the licence queue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, h, tt.call)
			if rec.Code != tt.want {
				t.Fatalf("%d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if msg := jsonError(t, rec); !strings.Contains(msg, tt.msg) {
				t.Errorf("error %q does not say %q", msg, tt.msg)
			}
		})
	}
	if len(b.started) != 0 {
		t.Errorf("bad requests started syncs: %+v", b.started)
	}
}

func TestSync(t *testing.T) {
	b, h := newTest(t, testToken)
	rec := do(t, h, call{method: "POST", path: "/api/v1/sync?source=hr", body: `{"allow_deprovision":true,"full":true}`, auth: bearer(testToken)})
	if rec.Code != 202 || !strings.Contains(rec.Body.String(), `"run_id":"RUN2"`) {
		t.Fatalf("sync: %d %s", rec.Code, rec.Body)
	}
	if len(b.started) != 1 || b.started[0].Sources[0] != "hr" || !b.started[0].AllowDeprovision || !b.started[0].Full || b.started[0].Mode != reconcile.ModeSync {
		t.Errorf("started %+v", b.started)
	}
	b.busy = true
	rec = do(t, h, call{method: "POST", path: "/api/v1/sync", auth: bearer(testToken)})
	if rec.Code != 409 {
		t.Fatalf("sync while busy: %d %s", rec.Code, rec.Body)
	}
	if msg := jsonError(t, rec); !strings.Contains(msg, "already running (run RUN1)") {
		t.Errorf("409 message %q", msg)
	}
}

// TestFollower: a replica that does not lead is ready, says who leads
// (readyz, status), refuses POST sync with 409 naming the leader, and
// still plans and blocks (the store serialises the seat check).
func TestFollower(t *testing.T) {
	b, h := newTest(t, testToken)
	b.lead = Leadership{ID: "pod-b/1", Leader: "pod-a/1", Elected: true}
	auth := bearer(testToken)

	rec := do(t, h, call{method: "GET", path: "/readyz"})
	var ready struct {
		Status, ID, Leader string
		Leading, Elected   bool
	}
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &ready) != nil ||
		ready.Status != "ready" || ready.Leader != "pod-a/1" || ready.ID != "pod-b/1" || ready.Leading || !ready.Elected {
		t.Errorf("readyz on a follower: %d %s", rec.Code, rec.Body)
	}
	rec = do(t, h, call{method: "GET", path: "/api/v1/status", auth: auth})
	var st Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.Leadership != b.lead {
		t.Errorf("status leadership: %v %s", err, rec.Body)
	}

	rec = do(t, h, call{method: "POST", path: "/api/v1/sync", auth: auth})
	var refused errorBody
	if rec.Code != 409 || json.Unmarshal(rec.Body.Bytes(), &refused) != nil || refused.Leader != "pod-a/1" ||
		!strings.Contains(refused.Error, "the leader is pod-a/1") {
		t.Errorf("sync on a follower: %d %s", rec.Code, rec.Body)
	}
	if len(b.started) != 0 {
		t.Errorf("a follower started %+v", b.started)
	}
	b.lead.Leader = "" // between two leaders
	rec = do(t, h, call{method: "POST", path: "/api/v1/sync", auth: auth})
	if rec.Code != 409 || !strings.Contains(jsonError(t, rec), "no leader is known right now") {
		t.Errorf("sync with no leader known: %d %s", rec.Code, rec.Body)
	}

	if rec := do(t, h, call{method: "POST", path: "/api/v1/plan", auth: auth}); rec.Code != 200 {
		t.Errorf("plan on a follower: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, h, call{method: "POST", path: "/api/v1/profiles/alice/block", auth: auth}); rec.Code != 200 {
		t.Errorf("block on a follower: %d %s", rec.Code, rec.Body)
	}
}

func TestMetricsLeader(t *testing.T) {
	m := NewMetrics()
	b, _ := newTest(t, testToken)
	h := (&Server{Backend: b, Metrics: m, Log: zap.NewNop()}).Handler()
	for _, leading := range []bool{true, false} {
		m.SetLeader(leading)
		want := "seatsync_leader 0"
		if leading {
			want = "seatsync_leader 1"
		}
		if rec := do(t, h, call{method: "GET", path: "/metrics"}); !strings.Contains(rec.Body.String(), want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestPlan(t *testing.T) {
	_, h := newTest(t, testToken)
	rec := do(t, h, call{method: "POST", path: "/api/v1/plan", auth: bearer(testToken)})
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"run_id":"PLAN1"`) {
		t.Fatalf("plan: %d %s", rec.Code, rec.Body)
	}
	rec = do(t, h, call{method: "POST", path: "/api/v1/plan", body: `{"allow_deprovision":true}`, auth: bearer(testToken)})
	if rec.Code != 400 {
		t.Fatalf("plan with allow_deprovision: %d %s", rec.Code, rec.Body)
	}
}

func TestBlockUnblock(t *testing.T) {
	b, h := newTest(t, testToken)
	auth := bearer(testToken)
	rec := do(t, h, call{method: "POST", path: "/api/v1/profiles/ALICE/block", auth: auth})
	var out struct {
		Username, Action, State, Message string
		Reason                           string `json:"block_reason"`
	}
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.Action != "block" || out.Reason != "admin" {
		t.Fatalf("block: %d %s", rec.Code, rec.Body)
	}
	// alice's seat is free now: dave (queued first) is not touched by an
	// admin unblock of erin, who takes it.
	rec = do(t, h, call{method: "POST", path: "/api/v1/profiles/erin/unblock", auth: auth})
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.State != "active" {
		t.Fatalf("unblock: %d %s", rec.Code, rec.Body)
	}
	rec = do(t, h, call{method: "POST", path: "/api/v1/profiles/alice/unblock?queue=true", auth: auth})
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.Action != "queue" || out.Reason != "license" {
		t.Fatalf("unblock --queue: %d %s", rec.Code, rec.Body)
	}
	if b.changed != 3 {
		t.Errorf("the backend was told of %d changes, want 3", b.changed)
	}
}

// TestLicensedPools: a pool whose limit comes from the vendor licence
// has that limit in the status, and an unblock through the API takes one
// of its seats.
func TestLicensedPools(t *testing.T) {
	dir := t.TempDir()
	lic := "registered_to: Example Ltd\nissued: 2026-01-15\nexpires: never\nlimits:\n  MAX_USERS: 3\n"
	if err := os.WriteFile(filepath.Join(dir, "license.yaml"), []byte(lic), 0o600); err != nil {
		t.Fatal(err)
	}
	_, h := newTestIn(t, dir, testToken, `licensing:
  license_file: license.yaml
  pools:
    - {name: primary, limit_from: MAX_USERS, areas: [primary]}
`)
	auth := bearer(testToken)
	rec := do(t, h, call{method: "GET", path: "/api/v1/status", auth: auth})
	var st struct {
		Pools []struct {
			Name  string
			Limit int
		}
	}
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &st) != nil || len(st.Pools) != 1 || st.Pools[0].Limit != 3 {
		t.Fatalf("status: %d %s; want primary with the licence's limit, 3", rec.Code, rec.Body)
	}
	rec = do(t, h, call{method: "POST", path: "/api/v1/profiles/erin/unblock", auth: auth})
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"state":"active"`) {
		t.Fatalf("unblock in a licensed pool with a free seat: %d %s", rec.Code, rec.Body)
	}
	rec = do(t, h, call{method: "POST", path: "/api/v1/profiles/carol/unblock", auth: auth})
	if rec.Code != 409 {
		t.Fatalf("unblock in the full licensed pool: %d %s, want 409", rec.Code, rec.Body)
	}
}

func TestStatusAndLists(t *testing.T) {
	_, h := newTest(t, testToken)
	auth := bearer(testToken)
	rec := do(t, h, call{method: "GET", path: "/api/v1/status", auth: auth})
	var st Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if p := st.Pools[0]; p.Name != "primary" || p.Active != 2 || p.Remaining != 0 || p.Queued != 2 {
		t.Errorf("pool %+v", p)
	}
	if len(st.Queue) != 2 || st.Queue[0].Username != "dave" || st.Queue[1].Username != "carol" || st.Queue[0].Position != 1 {
		t.Errorf("queue %+v, want dave then carol", st.Queue)
	}
	if len(st.Runs) != 1 || st.Runs[0].ID != "RUN0" {
		t.Errorf("runs %+v", st.Runs)
	}
	if len(st.Schedules) != 1 || st.Schedules[0].Schedule != "@every 15m" || !st.Schedules[0].NextRun.Equal(time.Date(2026, 1, 2, 3, 15, 0, 0, time.UTC)) {
		t.Errorf("schedules %+v", st.Schedules)
	}
	// Keys a client reads are there even when empty or zero.
	var raw struct {
		Running *string
		Queue   []map[string]any
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil || raw.Running == nil || *raw.Running != "" || len(raw.Queue) == 0 || raw.Queue[0]["weight"] != 0.0 {
		t.Errorf("status without \"running\": \"\" or a queue entry's \"weight\": 0: %v %s", err, rec.Body)
	}

	rec = do(t, h, call{method: "GET", path: "/api/v1/profiles?format=csv&state=blocked&fields=username,block_reason", auth: auth})
	want := "username,block_reason\ncarol,license\ndave,license\nerin,admin\n"
	if rec.Code != 200 || rec.Body.String() != want || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/csv") {
		t.Errorf("profiles csv: %d %q, want %q", rec.Code, rec.Body, want)
	}
	for _, reason := range []string{"license", "licence"} { // the docs' spelling is accepted
		rec = do(t, h, call{method: "GET", path: "/api/v1/profiles?reason=" + reason, auth: auth})
		var rows []map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &rows); err != nil || len(rows) != 2 || rows[0]["email"] != "carol@example.com" {
			t.Errorf("profiles json, reason=%s: %v %s", reason, err, rec.Body)
		}
	}
	rec = do(t, h, call{method: "GET", path: "/api/v1/runs?limit=1", auth: auth})
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"run_id":"RUN0"`) || strings.Contains(rec.Body.String(), `"report"`) {
		t.Errorf("runs: %d %s", rec.Code, rec.Body)
	}
	rec = do(t, h, call{method: "GET", path: "/api/v1/runs/RUN0", auth: auth})
	var rep reconcile.Report
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &rep) != nil || rep.RunID != "RUN0" {
		t.Errorf("run report: %d %s", rec.Code, rec.Body)
	}
}

func TestStatusPage(t *testing.T) {
	_, h := newTest(t, testToken)
	rec := do(t, h, call{method: "GET", path: "/", auth: basic("admin", testToken)})
	body, _ := io.ReadAll(rec.Body)
	page := string(body)
	for _, want := range []string{
		`id="pool-primary"`, `<dd class="pool-used">2</dd>`, `<dd class="pool-limit">2</dd>`,
		`<dd class="pool-remaining">0</dd>`, `<dd class="pool-queued">2</dd>`,
		`id="banner-pool-full-primary"`, `<td class="queue-username">dave</td>`, `<td class="queue-email">dave@example.com</td>`,
		`href="/runs/RUN0"`, `<dd class="pool-limit">unlimited</dd>`, `<span class="pool-percent">100% used</span>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the status page lacks %s", want)
		}
	}
	onlyOwnScript(t, rec, page)
	if strings.Index(page, ">dave<") > strings.Index(page, ">carol<") {
		t.Error("the queue is not in queue order")
	}
}

func TestMetricsPools(t *testing.T) {
	m := NewMetrics()
	b, h := newTest(t, testToken)
	profiles, _ := b.st.Profiles(context.Background())
	_ = h
	pol := licensing.FromConfig(b.cfg.Licensing)
	m.SetPools(pol.Count(profiles))
	srv := &Server{Backend: b, Metrics: m, Log: zap.NewNop()}
	rec := do(t, srv.Handler(), call{method: "GET", path: "/metrics"})
	for _, want := range []string{
		`seatsync_pool_seats_limit{pool="primary"} 2`, `seatsync_pool_seats_used{pool="primary"} 2`,
		`seatsync_pool_seats_remaining{pool="primary"} 0`, `seatsync_pool_seats_queued{pool="primary"} 2`,
		`seatsync_pool_seats_limit{pool="extranet"} +Inf`, `seatsync_runs_total{result="failed"} 0`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// The identities gauge counts a source's people: a read of changes,
// which counts changes, leaves what the last full read set.
func TestMetricsIdentitiesFromFullReads(t *testing.T) {
	m := NewMetrics()
	now := time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC)
	observe := func(full bool, n int) {
		m.ObserveRun(&reconcile.Report{Result: reconcile.ResultOK, StartedAt: now, FinishedAt: now,
			Sources: []reconcile.SourceResult{{Name: "hr", Identities: n, Full: full, Incremental: true}}})
	}
	srv := &Server{Metrics: m, Log: zap.NewNop()}
	observe(true, 1200)
	observe(false, 3)
	rec := do(t, srv.Handler(), call{method: "GET", path: "/metrics"})
	if want := `seatsync_source_identities{source="hr"} 1200`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("/metrics lacks %s after a full read and a read of 3 changes:\n%s", want, rec.Body)
	}
}

func TestStatusPageLastRunFailed(t *testing.T) {
	b, h := newTest(t, testToken)
	now := time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC)
	if err := b.st.SaveRun(context.Background(), store.Run{ID: "RUN9", Mode: "sync", Result: "failed", Error: "pull failed: hr: no such file",
		StartedAt: now, FinishedAt: now}); err != nil {
		t.Fatal(err)
	}
	rec := do(t, h, call{method: "GET", path: "/", auth: bearer(testToken)})
	page := rec.Body.String()
	if !strings.Contains(page, `id="banner-last-run-failed"`) || !strings.Contains(page, "pull failed: hr: no such file") {
		t.Errorf("no banner for the failed last run:\n%s", page)
	}
	if !strings.Contains(page, `class="run-result result-failed"`) {
		t.Error("the failed run is not marked in the runs table")
	}
}

// refusedServer is a server with the test token, a clock the test moves,
// and a log the test reads.
func refusedServer(t *testing.T) (h http.Handler, logs *observer.ObservedLogs, clock *time.Time) {
	t.Helper()
	b, _ := newTest(t, testToken)
	core, logs := observer.New(zap.WarnLevel)
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	s := &Server{Backend: b, Metrics: NewMetrics(), Log: zap.New(core), Now: func() time.Time { return now }}
	return s.Handler(), logs, &now
}

// from sends a request from the given remote address.
func from(t *testing.T, h http.Handler, addr string, c call, header ...string) int {
	t.Helper()
	req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	req.RemoteAddr = addr
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

// refusedLines returns the refused-request lines: client and count.
func refusedLines(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.TakeAll() {
		f := e.ContextMap()
		out = append(out, fmt.Sprintf("%s %v refused=%v why=%v", e.Level, f["client"], f["refused"], f["why"]))
	}
	return out
}

// TestUnauthorizedCountedAndLogged: every refused request is counted; the
// log has a warn line per client address at most once a minute, saying
// how many were refused since its last line, and never the token.
func TestUnauthorizedCountedAndLogged(t *testing.T) {
	h, logs, clock := refusedServer(t)
	wrong := call{method: "GET", path: "/api/v1/status", auth: bearer("wrong-" + testToken)}
	for _, port := range []string{"1111", "2222", "3333"} { // a new connection each time
		if code := from(t, h, "192.0.2.1:"+port, wrong); code != 401 {
			t.Fatalf("wrong token: %d", code)
		}
	}
	// X-Forwarded-For is not believed: the connection's address is logged.
	from(t, h, "198.51.100.7:4444", call{method: "POST", path: "/api/v1/sync"}, "X-Forwarded-For", "203.0.113.9")
	from(t, h, "198.51.100.7:4444", call{method: "POST", path: "/api/v1/sync", auth: basic("admin", testToken)})
	if code := from(t, h, "192.0.2.1:5555", call{method: "GET", path: "/api/v1/status", auth: bearer(testToken)}); code != 200 {
		t.Fatalf("right token: %d", code)
	}
	want := []string{
		"warn 192.0.2.1 refused=1 why=wrong token",
		"warn 198.51.100.7 refused=1 why=no token",
	}
	if diff := cmp.Diff(want, refusedLines(logs)); diff != "" {
		t.Errorf("log lines within the first minute (-want +got):\n%s", diff)
	}

	// A minute later: one line per address, with the count since its
	// last. 192.0.2.1 sends nothing more: its 2 held back get their line
	// when the next refusal comes, from any address.
	*clock = clock.Add(time.Minute)
	from(t, h, "198.51.100.7:7777", call{method: "GET", path: "/"})
	from(t, h, "192.0.2.1:6666", wrong) // its line was just written: held back
	want = []string{
		"warn 192.0.2.1 refused=2 why=wrong token",
		"warn 198.51.100.7 refused=2 why=no token", // the basic auth on a write, and this one
	}
	if diff := cmp.Diff(want, refusedLines(logs)); diff != "" {
		t.Errorf("log lines a minute later (-want +got):\n%s", diff)
	}

	rec := do(t, h, call{method: "GET", path: "/metrics"})
	if !strings.Contains(rec.Body.String(), "\nseatsync_http_unauthorized_total 7\n") {
		t.Errorf("/metrics does not count the 7 refused requests:\n%s", grepLines(rec.Body.String(), "unauthorized"))
	}
}

// TestUnauthorizedLogNeverShowsTheToken: neither the configured token nor
// a presented one is in the log.
func TestUnauthorizedLogNeverShowsTheToken(t *testing.T) {
	h, logs, _ := refusedServer(t)
	from(t, h, "192.0.2.1:1", call{method: "GET", path: "/api/v1/status", auth: bearer("presented-SECRET")})
	from(t, h, "192.0.2.2:1", call{method: "GET", path: "/", auth: basic("admin", "presented-SECRET")})
	from(t, h, "192.0.2.3:1", call{method: "POST", path: "/api/v1/sync", auth: basic("admin", testToken)})
	entries := logs.All()
	if len(entries) != 3 {
		t.Fatalf("%d log lines, want 3", len(entries))
	}
	for _, e := range entries {
		line := fmt.Sprint(e.Message, e.ContextMap())
		if strings.Contains(line, "SECRET") || strings.Contains(line, testToken) {
			t.Errorf("the log shows a token: %s", line)
		}
	}
}

// TestRefusalLogBounded: a flood of addresses does not grow the log's
// memory past its bound; the addresses beyond it share one line a window,
// and once the window has passed, old addresses are forgotten.
func TestRefusalLogBounded(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	l := newRefusalLog(zap.New(core), time.Minute, 3)
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	req := func(addr string) *http.Request {
		r := httptest.NewRequest("GET", "/api/v1/status", nil)
		r.RemoteAddr = addr + ":1234"
		return r
	}
	for i := range 1000 {
		l.refused(req(fmt.Sprintf("10.0.%d.%d", i/256, i%256)), "no token", now)
	}
	if len(l.clients) != 3 {
		t.Errorf("%d addresses remembered, want at most 3", len(l.clients))
	}
	var lines []string
	for _, e := range logs.TakeAll() {
		lines = append(lines, fmt.Sprintf("%v %v", e.ContextMap()["client"], e.ContextMap()["refused"]))
	}
	want := []string{"10.0.0.0 1", "10.0.0.1 1", "10.0.0.2 1", "<nil> 1"}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("log lines of a flood (-want +got):\n%s", diff)
	}

	now = now.Add(time.Minute)
	l.refused(req("10.9.9.9"), "no token", now)
	lines = nil
	for _, e := range logs.TakeAll() {
		lines = append(lines, fmt.Sprintf("%v %v", e.ContextMap()["client"], e.ContextMap()["refused"]))
	}
	// The 996 from untracked addresses held back get their line too.
	if diff := cmp.Diff([]string{"<nil> 996", "10.9.9.9 1"}, lines); diff != "" {
		t.Errorf("a minute later, a new address (-want +got):\n%s", diff)
	}
	if len(l.clients) != 1 {
		t.Errorf("a minute later %d addresses remembered, want only the new one", len(l.clients))
	}
}

func grepLines(s, word string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, word) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestAPIActor: the audit log records an API admin action as
// api:<address the request came from>; a client cannot choose it with
// X-Forwarded-For.
func TestAPIActor(t *testing.T) {
	b, h := newTest(t, testToken)
	auth := bearer(testToken)
	if code := from(t, h, "192.0.2.9:5555", call{method: "POST", path: "/api/v1/profiles/alice/block", auth: auth}, "X-Forwarded-For", "203.0.113.1"); code != 200 {
		t.Fatalf("block: %d", code)
	}
	if code := from(t, h, "[2001:db8::7]:443", call{method: "POST", path: "/api/v1/profiles/erin/unblock", auth: auth}); code != 200 {
		t.Fatalf("unblock: %d", code)
	}
	entries, err := b.st.Audit(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Actor+" "+e.Action+" "+e.Username)
	}
	want := []string{"api:2001:db8::7 unblock erin", "api:192.0.2.9 block alice"} // newest first
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit log (-want +got):\n%s", diff)
	}
}

// TestAPITargets: GET /api/v1/targets gives each target's pending and
// refused pushes, as targets status --format json does, and the status
// page shows the target's health.
func TestAPITargets(t *testing.T) {
	b, h := newTest(t, testToken)
	b.cfg.Targets = []config.Target{{Name: "intranet", Type: "scim", Areas: []string{"primary"}}}
	ctx := context.Background()
	profiles, err := b.st.Profiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = b.st.WithTx(ctx, func(tx store.Tx) error {
		for _, p := range profiles[:2] {
			if err := tx.MarkPending(ctx, "intranet", p.ID, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := b.st.Pending(ctx, "intranet")
	if err := b.st.PushFailed(ctx, "intranet", ps[0].ProfileID, ps[0].Seq, 400, "invalidValue: no", true, nil); err != nil {
		t.Fatal(err)
	}
	rec := do(t, h, call{method: "GET", path: "/api/v1/targets", auth: "Bearer " + testToken})
	if rec.Code != 200 {
		t.Fatalf("GET /api/v1/targets: %d %s", rec.Code, rec.Body)
	}
	var got []struct {
		Name     string `json:"name"`
		Pending  int    `json:"pending"`
		Failed   int    `json:"failed"`
		Failures []struct {
			Username string `json:"username"`
			Status   int    `json:"status"`
			Error    string `json:"error"`
		} `json:"failures"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "intranet" || got[0].Pending != 1 || got[0].Failed != 1 ||
		len(got[0].Failures) != 1 || got[0].Failures[0].Username != profiles[0].Username || got[0].Failures[0].Error != "invalidValue: no" {
		t.Errorf("GET /api/v1/targets = %s", rec.Body)
	}
	if rec := do(t, h, call{method: "GET", path: "/api/v1/targets"}); rec.Code != 401 {
		t.Errorf("GET /api/v1/targets without the token: %d", rec.Code)
	}
	page := do(t, h, call{method: "GET", path: "/", auth: "Bearer " + testToken})
	if body := page.Body.String(); !strings.Contains(body, `data-target="intranet"`) || !strings.Contains(body, "users refused") {
		t.Errorf("the status page does not show the target's health:\n%s", body)
	}
}

// TestProfilesFiltersAndPages: each filter narrows the list, and a poller
// that follows the next cursor sees every profile once, in username order,
// in any format.
func TestProfilesFiltersAndPages(t *testing.T) {
	b, h := newTest(t, testToken)
	auth := bearer(testToken)
	usernames := func(path string) ([]string, *httptest.ResponseRecorder) {
		t.Helper()
		rec := do(t, h, call{method: "GET", path: path, auth: auth})
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		var rows []map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &rows); err != nil {
			t.Fatalf("%s: %v %s", path, err, rec.Body)
		}
		out := []string{}
		for _, r := range rows {
			out = append(out, r["username"].(string))
		}
		return out, rec
	}
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"", []string{"alice", "bob", "carol", "dave", "erin"}},
		{"?pool=extranet", []string{}},
		{"?pool=primary&state=active", []string{"alice", "bob"}},
		{"?area=partners", []string{}},
		{"?state=blocked&reason=admin", []string{"erin"}},
		{"?updated_since=2026-01-02T03:04:05Z", []string{"alice", "bob", "carol", "dave", "erin"}},
		{"?updated_since=2026-01-02T04:04:05%2B01:00", []string{"alice", "bob", "carol", "dave", "erin"}},
		{"?updated_since=2026-01-02T03:04:06Z", []string{}},
	} {
		got, rec := usernames("/api/v1/profiles" + tt.query)
		if !slices.Equal(got, tt.want) {
			t.Errorf("profiles%s: %v, want %v", tt.query, got, tt.want)
		}
		if c := rec.Header().Get("X-Next-Cursor"); c != "" {
			t.Errorf("profiles%s: a next cursor %q on the only page", tt.query, c)
		}
	}

	// Pages of two, following the Link header.
	var seen []string
	path := "/api/v1/profiles?limit=2&fields=username,state"
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatalf("paging does not end: %v", seen)
		}
		got, rec := usernames(path)
		seen = append(seen, got...)
		link, cursor := rec.Header().Get("Link"), rec.Header().Get("X-Next-Cursor")
		path = ""
		if cursor != "" {
			target, ok := strings.CutPrefix(link, "<")
			target, rest, ok2 := strings.Cut(target, ">")
			if !ok || !ok2 || rest != `; rel="next"` || !strings.Contains(target, "cursor="+cursor) || !strings.Contains(target, "limit=2") {
				t.Fatalf("Link %q with X-Next-Cursor %q", link, cursor)
			}
			path = target
		} else if link != "" {
			t.Errorf("Link %q on the last page", link)
		}
	}
	if want := []string{"alice", "bob", "carol", "dave", "erin"}; !slices.Equal(seen, want) {
		t.Errorf("paged: %v, want %v", seen, want)
	}

	// A profile added before the page boundary does not shift the next page.
	rec := do(t, h, call{method: "GET", path: "/api/v1/profiles?format=csv&state=blocked&fields=username&limit=2", auth: auth})
	if want := "username\ncarol\ndave\n"; rec.Code != 200 || rec.Body.String() != want {
		t.Fatalf("csv page 1: %d %q, want %q", rec.Code, rec.Body, want)
	}
	cursor := rec.Header().Get("X-Next-Cursor")
	err := b.st.WithTx(context.Background(), func(tx store.Tx) error {
		return tx.Insert(context.Background(), &model.Profile{Username: "Aaron", Email: "aaron@example.com", Area: "primary",
			State: model.Blocked, BlockReason: model.ReasonAdmin, Source: "hr", ExternalID: "E0"})
	})
	if err != nil {
		t.Fatal(err)
	}
	rec = do(t, h, call{method: "GET", path: "/api/v1/profiles?format=csv&state=blocked&fields=username&limit=2&cursor=" + cursor, auth: auth})
	if want := "username\nerin\n"; rec.Code != 200 || rec.Body.String() != want || rec.Header().Get("X-Next-Cursor") != "" {
		t.Errorf("csv page 2: %d %q (next %q), want %q", rec.Code, rec.Body, rec.Header().Get("X-Next-Cursor"), want)
	}
}
