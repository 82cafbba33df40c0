package oktatest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// listLogs is GET /api/v1/logs, the System Log (developer.okta.com/docs/
// reference/api/system-log/): events published from since (inclusive,
// default 7 days before until) to until (exclusive), that match filter,
// limit per page, oldest first unless sortOrder is DESCENDING. A request
// with until is bounded: its pages end. One without is a polling request:
// every answer has a next link, empty or not, which a client follows to
// wait for new events.
func (s *Server) listLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	bad := func(what string) {
		s.oktaError(w, http.StatusBadRequest, "E0000001", "Api validation failed: "+what)
	}
	now := s.now().UTC()
	until, bounded := now, q.Get("until") != ""
	if bounded {
		t, err := time.Parse(time.RFC3339Nano, q.Get("until"))
		if err != nil {
			bad("until: " + q.Get("until") + " is not an ISO 8601 date")
			return
		}
		until = t
	}
	since := until.Add(-7 * 24 * time.Hour)
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			bad("since: " + v + " is not an ISO 8601 date")
			return
		}
		since = t
	}
	if !since.Before(until) && bounded {
		bad("since must be before until")
		return
	}
	limit := DefaultLogLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			bad("limit: " + v)
			return
		}
		limit = min(n, MaxLogLimit)
	}
	var filter *expr
	if v := q.Get("filter"); v != "" {
		e, err := parse(logFilter, v)
		if err != nil {
			s.oktaError(w, http.StatusBadRequest, "E0000031", "Invalid search criteria. "+err.Error())
			return
		}
		filter = &e
	}
	desc := false
	switch q.Get("sortOrder") {
	case "", "ASCENDING":
	case "DESCENDING":
		desc = true
	default:
		bad("sortOrder: " + q.Get("sortOrder"))
		return
	}

	gone := now.Add(-LogRetention)
	s.mu.Lock()
	var evs []Event
	for _, e := range s.events {
		if e.Published.Before(gone) || e.Published.Before(since) || !e.Published.Before(until) {
			continue
		}
		if filter != nil && !filter.match(eventAttrs(e)) {
			continue
		}
		evs = append(evs, e)
	}
	s.mu.Unlock()
	if desc {
		slices.Reverse(evs)
	}
	start := 0
	if after := q.Get("after"); after != "" {
		start = slices.IndexFunc(evs, func(e Event) bool { return e.UUID == after }) + 1
		if start == 0 {
			bad("after: " + after)
			return
		}
	}
	end := min(start+limit, len(evs))
	last := q.Get("after")
	if end > start {
		last = evs[end-1].UUID
	}
	s.links(w, r, limit, last, end < len(evs) || !bounded)
	out := make([]map[string]any, 0, end-start)
	for _, e := range evs[start:end] {
		out = append(out, eventJSON(e))
	}
	writeJSON(w, out)
}

// eventAttrs gives an event's attributes to a filter.
func eventAttrs(e Event) func(string) []string {
	return func(attr string) []string {
		pick := func(f func(Target) string) []string {
			out := make([]string, 0, len(e.Targets))
			for _, t := range e.Targets {
				out = append(out, f(t))
			}
			return out
		}
		switch attr {
		case "eventType":
			return []string{e.EventType}
		case "uuid":
			return []string{e.UUID}
		case "severity":
			return []string{"INFO"}
		case "published":
			return []string{e.Published.Format(stampFormat)}
		case "outcome.result":
			return []string{"SUCCESS"}
		case "actor.id":
			return []string{adminID}
		case "actor.type":
			return []string{"User"}
		case "actor.alternateId":
			return []string{adminLogin}
		case "target.id":
			return pick(func(t Target) string { return t.ID })
		case "target.type":
			return pick(func(t Target) string { return t.Type })
		case "target.alternateId":
			return pick(func(t Target) string { return t.AlternateID })
		}
		return []string{""}
	}
}

// The admin every event is logged as done by.
const (
	adminID    = "00uadmin000000000000"
	adminLogin = "admin@example.com"
)

func eventJSON(e Event) map[string]any {
	targets := make([]map[string]any, 0, len(e.Targets))
	for _, t := range e.Targets {
		targets = append(targets, map[string]any{
			"id":          t.ID,
			"type":        t.Type,
			"alternateId": t.AlternateID,
			"displayName": t.DisplayName,
			"detailEntry": nil,
		})
	}
	return map[string]any{
		"uuid":            e.UUID,
		"published":       e.Published.Format(stampFormat),
		"eventType":       e.EventType,
		"version":         "0",
		"severity":        "INFO",
		"legacyEventType": nil,
		"displayMessage":  fmt.Sprintf("%s (fake org)", e.EventType),
		"actor": map[string]any{
			"id": adminID, "type": "User", "alternateId": adminLogin, "displayName": "Org Admin", "detailEntry": nil,
		},
		"client":      map[string]any{"ipAddress": "127.0.0.1"},
		"outcome":     map[string]any{"result": "SUCCESS", "reason": nil},
		"target":      targets,
		"transaction": map[string]any{"type": "WEB", "id": "fake" + e.UUID[3:10], "detail": map[string]any{}},
		"debugContext": map[string]any{
			"debugData": map[string]any{"requestUri": "/api/v1/users"},
		},
	}
}
