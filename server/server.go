// Package server is the HTTP side of `seatsync serve` (SPEC section 10):
// health and readiness probes, Prometheus metrics, the status page and the
// JSON API under /api/v1. It does no scheduling: the daemon package owns
// the runs and hands them to the server through the Backend interface.
package server

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/reconcile"
	"github.com/seatsync/seatsync/store"
)

var (
	// ErrBusy is returned by Backend.StartSync while a sync is running.
	ErrBusy = errors.New("a sync is already running")
	// ErrStopping is returned by Backend.StartSync once the process is
	// shutting down.
	ErrStopping = errors.New("seatsync is shutting down and takes no new runs")
	// ErrNotLeader is returned by Backend.StartSync on a replica that
	// does not lead; the error is a *NotLeaderError.
	ErrNotLeader = errors.New("this replica does not lead: the leader runs the syncs")
)

// NotLeaderError names the leader, for a caller that was refused a run by
// another replica. It matches ErrNotLeader with errors.Is.
type NotLeaderError struct {
	Leader string // "" while none is known
}

func (e *NotLeaderError) Error() string {
	if e.Leader == "" {
		return ErrNotLeader.Error() + "; no leader is known right now, try again shortly"
	}
	return fmt.Sprintf("%s; the leader is %s", ErrNotLeader, e.Leader)
}

func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

// Leadership says who runs the schedules among the serve processes that
// share a store.
type Leadership struct {
	// ID is this process's name among them.
	ID string `json:"id"`
	// Leader is the leader's ID ("" while none is known); this process's
	// own when Leading.
	Leader  string `json:"leader"`
	Leading bool   `json:"leading"`
	// Elected is set when the store is shared and the leader elected;
	// without it (sqlite) the one serve process always leads.
	Elected bool `json:"elected"`
}

// Backend is what the server needs from the daemon. Config is read on
// every request, so a reloaded configuration (token included) applies at
// once.
type Backend interface {
	// Config is the configuration in force (nil before one is loaded).
	Config() *config.Config
	// Store is the profile store.
	Store() store.Store
	// StartSync starts a sync in the background and returns its run ID as
	// soon as it is known. It returns ErrBusy (with the running run's ID)
	// while another sync runs, and ErrStopping during shutdown.
	StartSync(opt reconcile.Options) (runID string, err error)
	// Running is the ID of the sync in flight, "" when there is none.
	Running() string
	// Plan does a dry run and returns its report.
	Plan(ctx context.Context, opt reconcile.Options) (*reconcile.Report, error)
	// Changed tells the daemon that an admin changed profiles, so the pool
	// gauges are recomputed.
	Changed(ctx context.Context)
	// NextRuns are the schedules in force, each with its next run, in
	// configuration order (none once shutting down).
	NextRuns() []ScheduledRun
	// Leadership says whether this process leads, and who does.
	Leadership() Leadership
}

// ScheduledRun is one schedule of the daemon: a sync of some sources, or
// the verify of a target.
type ScheduledRun struct {
	Kind     string    `json:"kind"` // "sync" or "verify"
	Schedule string    `json:"schedule"`
	Sources  []string  `json:"sources,omitempty"` // kind sync
	Target   string    `json:"target,omitempty"`  // kind verify
	NextRun  time.Time `json:"next_run"`
}

// DefaultMaxBody is the largest request body the API reads.
const DefaultMaxBody = 64 << 10

// Timeouts of the HTTP server. WriteTimeout is long because POST
// /api/v1/plan pulls every source before it answers.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 10 * time.Minute
	IdleTimeout       = 2 * time.Minute
)

// Server serves the HTTP API, the status page and the probes.
type Server struct {
	Backend Backend
	Metrics *Metrics
	Log     *zap.Logger
	// MaxBody caps request bodies (DefaultMaxBody when 0).
	MaxBody int64
	// Now is the clock of the status page and of the log of refused
	// requests; time.Now when nil.
	Now func() time.Time
	// ReportRows is how many changes (and skipped entries) a run's page
	// shows; DefaultReportRows when 0.
	ReportRows int
}

// Handler returns the routes. Each handler it returns keeps its own log
// of refused requests.
func (s *Server) Handler() http.Handler {
	refused := newRefusalLog(s.Log, refusalWindow, maxRefusalClients)
	auth := func(basic bool, h http.HandlerFunc) http.Handler { return s.auth(refused, basic, h) }
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{}))
	}
	mux.Handle("GET /{$}", auth(true, s.statusPage))
	mux.Handle("GET /runs/{id}", auth(true, s.runPage))
	mux.Handle("GET /api/v1/status", auth(true, s.apiStatus))
	mux.Handle("GET /api/v1/runs", auth(true, s.apiRuns))
	mux.Handle("GET /api/v1/runs/{id}", auth(true, s.apiRun))
	mux.Handle("GET /api/v1/profiles", auth(true, s.apiProfiles))
	mux.Handle("GET /api/v1/targets", auth(true, s.apiTargets))
	mux.Handle("POST /api/v1/sync", auth(false, s.apiSync))
	mux.Handle("POST /api/v1/plan", auth(false, s.apiPlan))
	mux.Handle("POST /api/v1/profiles/{username}/block", auth(false, s.apiAdmin("block")))
	mux.Handle("POST /api/v1/profiles/{username}/unblock", auth(false, s.apiAdmin("unblock")))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// Every pattern above names its method, so a known path with
		// another method lands here too: tell the two apart.
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s is not allowed; use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")))
			return
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such page: %s %s", r.Method, r.URL.Path))
	})
	return s.limitBody(mux)
}

// NewHTTPServer wraps a handler in an http.Server with seatsync's timeouts.
func NewHTTPServer(h http.Handler, log *zap.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
}

// ErrNotLoopback is returned by Listen for an address that is not a
// loopback address when no token is configured.
var ErrNotLoopback = errors.New("without server.token the server listens on loopback addresses only")

// Listen opens the listener. Without a token it refuses anything but a
// loopback address, whatever the configuration check said: the check is
// made again on the address actually bound.
func Listen(addr string, tokenSet bool) (net.Listener, error) {
	if !tokenSet {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		if !strings.EqualFold(host, "localhost") {
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return nil, fmt.Errorf("listen %s: %w; set server.token or listen on 127.0.0.1", addr, ErrNotLoopback)
			}
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tokenSet && !tcp.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("listen %s (bound %s): %w", addr, tcp, ErrNotLoopback)
	}
	return ln, nil
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// limitBody caps every request body.
func (s *Server) limitBody(h http.Handler) http.Handler {
	limit := s.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		h.ServeHTTP(w, r)
	})
}

// auth lets a request through when it carries the token: as a bearer
// token, or (basic set, GET pages a browser opens) as the password of HTTP
// Basic auth, any user name. Writes (POST) take the bearer token only, so
// a browser's remembered Basic credentials cannot be used to forge one
// from another site. Without a configured token the server listens on
// loopback only and lets everyone in. A refused request is counted and
// goes to the refused log, without the token it presented.
func (s *Server) auth(refused *refusalLog, basic bool, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg := s.Backend.Config()
		if cfg == nil {
			writeError(w, http.StatusServiceUnavailable, "no configuration loaded yet")
			return
		}
		token := cfg.Server.Token.Reveal()
		if token == "" {
			h(w, r)
			return
		}
		why := authorized(r, token, basic)
		if why == "" {
			h(w, r)
			return
		}
		if s.Metrics != nil {
			s.Metrics.unauthorized.Inc()
		}
		refused.refused(r, why, s.now())
		w.Header().Add("WWW-Authenticate", `Bearer realm="seatsync"`)
		if basic {
			w.Header().Add("WWW-Authenticate", `Basic realm="seatsync", charset="UTF-8"`)
		}
		msg := "missing or wrong token: send Authorization: Bearer <server.token>"
		if basic {
			msg += ", or the token as the password of HTTP Basic auth"
		}
		writeError(w, http.StatusUnauthorized, msg)
	})
}

// authorized returns "" when the request carries the token, or else why
// it is refused, for the log: "no token", "wrong token", or "basic auth on
// a write".
func authorized(r *http.Request, token string, basic bool) string {
	h := r.Header.Get("Authorization")
	if scheme, rest, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		return verdict(equal(strings.TrimSpace(rest), token))
	}
	if _, pw, ok := r.BasicAuth(); ok {
		if !basic {
			return "basic auth on a write"
		}
		return verdict(equal(pw, token))
	}
	if h == "" {
		return "no token"
	}
	return "wrong token"
}

func verdict(ok bool) string {
	if ok {
		return ""
	}
	return "wrong token"
}

// equal compares in constant time (for equal lengths; the length of the
// token is not a secret worth hiding).
func equal(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// errorBody is every error's JSON.
type errorBody struct {
	Error  string `json:"error"`
	RunID  string `json:"run_id,omitempty"`
	Leader string `json:"leader,omitempty"` // 409 on a replica that does not lead
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encode the response"}`)
	}
	writeRaw(w, code, b)
}

func writeRaw(w http.ResponseWriter, code int, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(b)
	_, _ = w.Write([]byte("\n"))
}

// decodeBody reads an optional JSON body into v. An empty body leaves v
// as it is. It writes the error response itself and returns false on a
// bad body.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", tooBig.Limit))
			return false
		}
		writeError(w, http.StatusBadRequest, "read the request body: "+err.Error())
		return false
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "the request body is not valid JSON for this call: "+err.Error())
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "the request body has more than one JSON value")
		return false
	}
	return true
}

func (s *Server) internal(w http.ResponseWriter, what string, err error) {
	s.Log.Error("http: "+what, zap.Error(err))
	writeError(w, http.StatusInternalServerError, what+": "+err.Error())
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.Backend.Config() == nil {
		writeError(w, http.StatusServiceUnavailable, "no configuration loaded")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if _, err := s.Backend.Store().Runs(ctx, 1); err != nil {
		writeError(w, http.StatusServiceUnavailable, "store unreachable: "+err.Error())
		return
	}
	// A follower is ready too: it serves reads and the admin calls.
	writeJSON(w, http.StatusOK, readiness{Status: "ready", Leadership: s.Backend.Leadership()})
}

// readiness is the body of a ready /readyz.
type readiness struct {
	Status string `json:"status"`
	Leadership
}
