package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/admin"
	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/licensing/licensefile"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store"
	"github.com/seatsync/seatsync/target"
)

// Status is the answer of GET /api/v1/status, and what the status page
// shows.
type Status struct {
	// Pools are the seats panel numbers, as `seatsync seats --format json`.
	Pools []licensing.Status `json:"pools"`
	// Products are each product licence's numbers, as `seatsync seats
	// --format json` gives them.
	Products []licensing.ProductStatus `json:"products"`
	// Queue is the licence queue of every pool, each in queue order.
	Queue []QueueEntry `json:"queue"`
	// Running is the ID of the sync in flight ("" when none). It is
	// always there, so a client can tell "none" from an older server.
	Running string `json:"running"`
	// Schedules are the daemon's schedules, each with its next run.
	Schedules []ScheduledRun `json:"schedules"`
	// Runs are the most recent runs, newest first, without their reports.
	Runs []reconcile.RunRecord `json:"runs"`
	// Leadership says whether this replica runs the schedules, and who
	// does.
	Leadership Leadership `json:"leadership"`
	// History is the seat history of the forecast window (the last 30
	// days), oldest first, for the status page's charts.
	History []store.SeatRow `json:"-"`
}

// QueueEntry is one profile waiting for a seat; licensing computes the
// queue for the status page and the command line alike.
type QueueEntry = licensing.QueueEntry

// statusRuns is how many runs the status shows.
const statusRuns = 20

func (s *Server) status(ctx context.Context) (*Status, error) {
	st, _, err := s.readStatus(ctx)
	return st, err
}

// policy is the seat policy in force: the configuration's pools, with
// the limits of the vendor licence in force when pools take them from
// one. A refused licence file is the run's to report, not every page
// load's, so nothing is logged here.
func (s *Server) policy(ctx context.Context) (*licensing.Policy, error) {
	pol, _, err := licensefile.Policy(ctx, s.Backend.Config().Licensing, s.Backend.Store(), time.Now(), nil)
	if err != nil {
		return nil, fmt.Errorf("licence: %w", err)
	}
	return pol, nil
}

// readStatus is the status, and the profiles it was computed from.
func (s *Server) readStatus(ctx context.Context) (*Status, []model.Profile, error) {
	st := s.Backend.Store()
	profiles, err := st.Profiles(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read profiles: %w", err)
	}
	pol, err := s.policy(ctx)
	if err != nil {
		return nil, nil, err
	}
	runs, err := st.Runs(ctx, statusRuns)
	if err != nil {
		return nil, nil, fmt.Errorf("read runs: %w", err)
	}
	next := s.Backend.NextRuns()
	if next == nil {
		next = []ScheduledRun{}
	}
	var grants []store.Grant
	if len(pol.Products) > 0 {
		if grants, err = st.Grants(ctx); err != nil {
			return nil, nil, fmt.Errorf("read product grants: %w", err)
		}
	}
	now := s.now()
	history, err := st.SeatHistory(ctx, now.Add(-licensing.ForecastWindow))
	if err != nil {
		return nil, nil, fmt.Errorf("read the seat history: %w", err)
	}
	pools := pol.Count(profiles)
	reconcile.ForecastStatus(pools, history, now)
	return &Status{Pools: pools, Products: pol.CountProducts(grants), Queue: pol.Queue(profiles), Running: s.Backend.Running(), Schedules: next,
		Runs: reconcile.Records(runs), Leadership: s.Backend.Leadership(), History: history}, profiles, nil
}

// targets reads every configured target's status.
func (s *Server) targets(ctx context.Context) ([]target.Status, error) {
	out := []target.Status{}
	for _, t := range target.Configs(s.Backend.Config().Targets) {
		st, err := target.StatusOf(ctx, s.Backend.Store(), t)
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Name, err)
		}
		out = append(out, st)
	}
	return out, nil
}

// apiTargets is GET /api/v1/targets: what `targets status --format json`
// prints.
func (s *Server) apiTargets(w http.ResponseWriter, r *http.Request) {
	ts, err := s.targets(r.Context())
	if err != nil {
		s.internal(w, "targets", err)
		return
	}
	writeJSON(w, http.StatusOK, ts)
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.status(r.Context())
	if err != nil {
		s.internal(w, "status", err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// maxRuns caps ?limit= of GET /api/v1/runs.
const maxRuns = 1000

func (s *Server) apiRuns(w http.ResponseWriter, r *http.Request) {
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxRuns {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q is not a number from 1 to %d", v, maxRuns))
			return
		}
		limit = n
	}
	runs, err := s.Backend.Store().Runs(r.Context(), limit)
	if err != nil {
		s.internal(w, "read runs", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": reconcile.Records(runs)})
}

// readRun reads the run the path's {id} names, or answers 404 (or 500)
// and reports false.
func (s *Server) readRun(w http.ResponseWriter, r *http.Request) (store.Run, bool) {
	id := r.PathValue("id")
	run, err := s.Backend.Store().Run(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no run with ID %q", id))
		return store.Run{}, false
	}
	if err != nil {
		s.internal(w, "read run", err)
		return store.Run{}, false
	}
	return run, true
}

func (s *Server) apiRun(w http.ResponseWriter, r *http.Request) {
	run, ok := s.readRun(w, r)
	if !ok {
		return
	}
	if len(run.Report) == 0 {
		// A run without a stored report: its record is all there is.
		writeJSON(w, http.StatusOK, run)
		return
	}
	writeRaw(w, http.StatusOK, run.Report)
}

// Paging of GET /api/v1/profiles.
const (
	DefaultProfilesLimit = 500
	MaxProfilesLimit     = 5000
)

// profilesParams are the query parameters GET /api/v1/profiles takes.
var profilesParams = []string{"state", "reason", "area", "pool", "updated_since", "limit", "cursor", "fields", "format", "delimiter"}

// profilesQuery is a checked query of GET /api/v1/profiles.
type profilesQuery struct {
	filter  admin.Filter
	limit   int
	after   string // folded username the page starts after
	options admin.ListOptions
}

// parseProfilesQuery checks every parameter; the error names the
// parameter and the values it takes.
func parseProfilesQuery(q url.Values, pol *licensing.Policy) (profilesQuery, error) {
	for k := range q {
		if !slices.Contains(profilesParams, k) {
			return profilesQuery{}, fmt.Errorf("unknown parameter %q (one of %s)", k, strings.Join(profilesParams, ", "))
		}
		if len(q[k]) > 1 {
			return profilesQuery{}, fmt.Errorf("parameter %q is given %d times; give it once", k, len(q[k]))
		}
	}
	pq := profilesQuery{limit: DefaultProfilesLimit, options: admin.ListOptions{Format: "json", Delimiter: ','}}
	f := admin.Filter{State: model.State(q.Get("state")), Reason: model.ParseReason(q.Get("reason")), Area: q.Get("area"), Pool: q.Get("pool")}
	if f.State != "" && f.State != model.Active && f.State != model.Blocked {
		return pq, fmt.Errorf("state %q is not one of active, blocked", f.State)
	}
	if f.Reason != "" && !f.Reason.Valid() {
		return pq, fmt.Errorf("reason %q is not one of license (or licence), admin, source_disabled, left_source", f.Reason)
	}
	if f.Pool != "" {
		var names []string
		for _, p := range pol.Pools {
			names = append(names, p.Name)
		}
		if !slices.Contains(names, f.Pool) {
			return pq, fmt.Errorf("pool %q is not one of the configured pools: %s", f.Pool, strings.Join(names, ", "))
		}
	}
	if v := q.Get("updated_since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return pq, fmt.Errorf("updated_since %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", v)
		}
		f.UpdatedSince = t
	}
	pq.filter = f
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxProfilesLimit {
			return pq, fmt.Errorf("limit %q is not a number from 1 to %d", v, MaxProfilesLimit)
		}
		pq.limit = n
	}
	if v := q.Get("cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(b) == 0 {
			return pq, fmt.Errorf("cursor %q is not a cursor this server gave (take it from the X-Next-Cursor header of the previous page)", v)
		}
		pq.after = string(b)
	}
	if v := q.Get("format"); v != "" {
		pq.options.Format = v
	}
	if !slices.Contains([]string{"json", "csv", "text"}, pq.options.Format) {
		return pq, fmt.Errorf("format %q is not one of json, csv, text", pq.options.Format)
	}
	fieldList := q.Get("fields")
	if fieldList == "" {
		fieldList = strings.Join(admin.DefaultFields, ",")
	}
	fields, err := admin.ParseFields(fieldList)
	if err != nil {
		return pq, fmt.Errorf("fields: %w", err)
	}
	pq.options.Fields = fields
	if v := q.Get("delimiter"); v != "" {
		if pq.options.Delimiter, err = admin.ParseDelimiter(v); err != nil {
			return pq, fmt.Errorf("delimiter: %w", err)
		}
	}
	return pq, nil
}

// apiProfiles is GET /api/v1/profiles: one page of the profiles that pass
// the filters, in the order of folded usernames. The body is what
// `profiles list` prints for that page (a JSON array by default, as
// before paging); the next page's cursor is in the X-Next-Cursor and Link
// headers, absent on the last page.
func (s *Server) apiProfiles(w http.ResponseWriter, r *http.Request) {
	pol, err := s.policy(r.Context())
	if err != nil {
		s.internal(w, "read the licence", err)
		return
	}
	q := r.URL.Query()
	pq, err := parseProfilesQuery(q, pol)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	all, err := s.Backend.Store().Profiles(r.Context())
	if err != nil {
		s.internal(w, "read profiles", err)
		return
	}
	list := []model.Profile{}
	for i := range all {
		if pq.filter.Match(&all[i], pol) {
			list = append(list, all[i])
		}
	}
	page, next := admin.Page(list, pq.after, pq.limit)
	pq.options.Queue = pol.Queue(all)
	if slices.Contains(pq.options.Fields, "products") {
		grants, err := s.Backend.Store().Grants(r.Context())
		if err != nil {
			s.internal(w, "read product grants", err)
			return
		}
		pq.options.Products = admin.Holdings(grants)
	}
	var buf bytes.Buffer
	if err := admin.WriteProfiles(&buf, page, pol, pq.options); err != nil {
		s.internal(w, "write profiles", err)
		return
	}
	switch pq.options.Format {
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="profiles.csv"`)
	case "text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	default:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	if next != "" {
		cursor := base64.RawURLEncoding.EncodeToString([]byte(next))
		q.Set("cursor", cursor)
		w.Header().Set("X-Next-Cursor", cursor)
		w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", r.URL.Path, q.Encode()))
	}
	w.Header().Set("Cache-Control", "no-store")
	_, _ = buf.WriteTo(w)
}

// runRequest is the optional body of POST sync and plan.
type runRequest struct {
	Sources          []string `json:"sources"`
	AllowDeprovision bool     `json:"allow_deprovision"`
	// Full reads every source in full, as plan --full and sync --full.
	Full bool `json:"full"`
}

// runOptions reads the sources (?source=, repeatable, or the body) and
// checks them against the configuration.
func runOptions(w http.ResponseWriter, r *http.Request, cfg *config.Config, mode string) (reconcile.Options, bool) {
	var req runRequest
	if !decodeBody(w, r, &req) {
		return reconcile.Options{}, false
	}
	req.Sources = append(req.Sources, r.URL.Query()["source"]...)
	for _, n := range req.Sources {
		if cfg.Source(n) == nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("no source named %q in the configuration", n))
			return reconcile.Options{}, false
		}
	}
	if mode == reconcile.ModePlan && req.AllowDeprovision {
		writeError(w, http.StatusBadRequest, "allow_deprovision applies to sync only")
		return reconcile.Options{}, false
	}
	return reconcile.Options{Mode: mode, Sources: req.Sources, AllowDeprovision: req.AllowDeprovision, Full: req.Full, Trigger: reconcile.TriggerAPI}, true
}

func (s *Server) apiSync(w http.ResponseWriter, r *http.Request) {
	opt, ok := runOptions(w, r, s.Backend.Config(), reconcile.ModeSync)
	if !ok {
		return
	}
	id, err := s.Backend.StartSync(opt)
	var notLeader *NotLeaderError
	switch {
	case errors.As(err, &notLeader):
		// The leader runs the syncs; a run here would only be skipped
		// by the store's run lock or race the leader's schedule.
		writeJSON(w, http.StatusConflict, errorBody{Error: err.Error(), Leader: notLeader.Leader})
	case errors.Is(err, ErrBusy):
		writeJSON(w, http.StatusConflict, errorBody{Error: fmt.Sprintf("a sync is already running (run %s); try again when it has finished", id), RunID: id})
	case errors.Is(err, ErrStopping):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case err != nil:
		s.internal(w, "start sync", err)
	default:
		w.Header().Set("Location", "/api/v1/runs/"+id)
		writeJSON(w, http.StatusAccepted, map[string]string{"run_id": id})
	}
}

func (s *Server) apiPlan(w http.ResponseWriter, r *http.Request) {
	opt, ok := runOptions(w, r, s.Backend.Config(), reconcile.ModePlan)
	if !ok {
		return
	}
	rep, err := s.Backend.Plan(r.Context(), opt)
	code := http.StatusOK
	switch {
	case err == nil, errors.Is(err, reconcile.ErrGuardTripped):
		// A tripped guard is part of what a plan tells.
	case errors.Is(err, reconcile.ErrUsage):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case rep == nil:
		s.internal(w, "plan", err)
		return
	default:
		// The report says what failed in its "error" field.
		code = http.StatusBadGateway
	}
	b, err := rep.EncodeJSON()
	if err != nil {
		s.internal(w, "encode the report", err)
		return
	}
	writeRaw(w, code, b)
}

// adminRequest is the optional body of POST .../unblock.
type adminRequest struct {
	Queue bool `json:"queue"`
}

func (s *Server) apiAdmin(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		username := r.PathValue("username")
		var req adminRequest
		if !decodeBody(w, r, &req) {
			return
		}
		if v := r.URL.Query().Get("queue"); v != "" {
			q, err := strconv.ParseBool(v)
			if err != nil {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("queue %q is not true or false", v))
				return
			}
			req.Queue = req.Queue || q
		}
		if action == "block" && req.Queue {
			writeError(w, http.StatusBadRequest, "queue applies to unblock only")
			return
		}
		st := s.Backend.Store()
		if _, err := st.Profile(r.Context(), username); errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no profile with username %q", username))
			return
		} else if err != nil {
			s.internal(w, "read profile", err)
			return
		}
		// The audit log records the address the request came from (never
		// a header a client can write, such as X-Forwarded-For).
		pol, err := s.policy(r.Context())
		if err != nil {
			s.internal(w, "read the licence", err)
			return
		}
		ad := &admin.Admin{Store: st, Policy: pol, Actor: "api:" + clientAddress(r),
			Targets: target.Configs(s.Backend.Config().Targets), QueueHint: "?queue=true"}
		var out admin.Outcome
		if action == "block" {
			out, err = ad.Block(r.Context(), username)
		} else {
			out, err = ad.Unblock(r.Context(), username, req.Queue)
		}
		switch {
		case errors.Is(err, admin.ErrNoSeat):
			writeError(w, http.StatusConflict, err.Error())
			return
		case errors.Is(err, store.ErrConflict):
			writeError(w, http.StatusConflict, "the profile changed while it was being "+action+"ed; try again")
			return
		case err != nil:
			s.internal(w, action, err)
			return
		}
		s.Log.Info("admin action", zap.String("actor", ad.Actor), zap.String("action", out.Action), zap.String("username", out.Username),
			zap.String("state", string(out.State)), zap.String("reason", string(out.Reason)))
		s.Backend.Changed(r.Context())
		writeJSON(w, http.StatusOK, out)
	}
}
