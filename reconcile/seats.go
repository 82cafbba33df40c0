package reconcile

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/store"
)

// LimitsKey is the store value (Store.Value) under which the runner
// remembers the limits the last sync saw, to tell when one changes: a
// JSON object from "pool/NAME" (a seat kind and a name, so products fit
// beside pools) to the limit, a number or "unlimited".
const LimitsKey = "seats/limits"

// LimitChange is a pool's limit that changed since the last sync: a new
// number in the configuration or a new licence file.
type LimitChange struct {
	Kind         string `json:"kind"` // store.SeatKindPool
	Name         string `json:"name"`
	OldLimit     int    `json:"old_limit"`
	OldUnlimited bool   `json:"old_unlimited,omitempty"`
	NewLimit     int    `json:"new_limit"`
	NewUnlimited bool   `json:"new_unlimited,omitempty"`
	// LimitFrom is the licence key the new limit came from, "" for the
	// configuration.
	LimitFrom string `json:"limit_from,omitempty"`
}

// Limits are the limits of a run's pools as LimitsKey keeps them. Frozen
// pools are left out: their licence lapsed or is missing, which is told
// by its own events, and the limit they come back with is compared with
// the one before.
func Limits(pools []PoolResult) map[string]string {
	out := make(map[string]string, len(pools))
	for _, p := range pools {
		if !p.Frozen {
			out[store.SeatKindPool+"/"+p.Name] = limitText(p.Limit, p.Unlimited)
		}
	}
	return out
}

// LimitChanges compares the limits of a run's pools with those remembered
// (prev, as Limits gives them). A pool not remembered (the first run, or
// a pool just added) has no change: there is nothing to compare with.
func LimitChanges(prev map[string]string, pools []PoolResult) []LimitChange {
	var out []LimitChange
	for _, p := range pools {
		old, known := prev[store.SeatKindPool+"/"+p.Name]
		if !known || p.Frozen || old == limitText(p.Limit, p.Unlimited) {
			continue
		}
		ch := LimitChange{Kind: store.SeatKindPool, Name: p.Name, NewLimit: p.Limit, NewUnlimited: p.Unlimited, LimitFrom: p.LimitFrom}
		if old == "unlimited" {
			ch.OldUnlimited = true
		} else if n, err := strconv.Atoi(old); err == nil {
			ch.OldLimit = n
		} else {
			continue // not a limit this binary wrote
		}
		out = append(out, ch)
	}
	return out
}

// SeatRows are a run's pools as rows of the seat history.
func SeatRows(pools []PoolResult) []store.SeatRow {
	rows := make([]store.SeatRow, 0, len(pools))
	for _, p := range pools {
		r := store.SeatRow{Kind: store.SeatKindPool, Name: p.Name, Limit: p.Limit, Unlimited: p.Unlimited,
			Used: p.UsedAfter, Queued: p.QueuedAfter, Remaining: p.RemainingAfter, Overage: p.Overage}
		if r.Unlimited {
			r.Limit, r.Remaining = 0, 0
		}
		rows = append(rows, r)
	}
	return rows
}

// Points picks one pool's (or product's) used seats out of a seat
// history, in its order.
func Points(rows []store.SeatRow, kind, name string) []licensing.Point {
	var out []licensing.Point
	for _, r := range rows {
		if r.Kind == kind && r.Name == name {
			out = append(out, licensing.Point{At: r.At, Used: r.Used})
		}
	}
	return out
}

// ForecastPool forecasts a pool from a seat history; nil when there is
// none (unlimited, frozen, not growing, too little history). It fills when
// its used seats reach limit − reserve.
func ForecastPool(history []store.SeatRow, name string, limit, reserve int, unlimited, frozen bool, now time.Time) *licensing.FillForecast {
	if unlimited || frozen {
		return nil
	}
	return licensing.Fill(name, Points(history, store.SeatKindPool, name), max(0, limit-reserve), now)
}

// ForecastStatus sets the Forecast of each of seats from history.
func ForecastStatus(seats []licensing.Status, history []store.SeatRow, now time.Time) {
	for i := range seats {
		s := &seats[i]
		s.Forecast = ForecastPool(history, s.Name, s.Limit, s.Reserve, s.Unlimited, s.Frozen, now)
	}
}

// seats runs after a sync that succeeded: it compares the pools' limits
// with those the last sync saw (rep.LimitChanges, for seats_changed),
// records the pools in the seat history and forecasts each from it. A
// store failure is logged: the run's work is done. It returns the limits
// to remember once the run's notifications are handed over
// (rememberLimits).
func (r *Runner) seats(ctx context.Context, log *zap.Logger, rep *Report) map[string]string {
	limits := Limits(rep.Pools)
	raw, _, err := r.Store.Value(ctx, LimitsKey)
	switch {
	case err != nil:
		log.Warn("read the pools' last limits: limit changes are told at the next run", zap.Error(err))
		limits = nil
	case raw != "":
		prev := map[string]string{}
		if err := json.Unmarshal([]byte(raw), &prev); err != nil {
			log.Warn("the pools' last limits are unreadable: they are replaced", zap.Error(err))
		}
		rep.LimitChanges = LimitChanges(prev, rep.Pools)
		// A pool frozen now keeps the limit it had.
		for k, v := range prev {
			if _, ok := limits[k]; !ok {
				limits[k] = v
			}
		}
	}
	if err := r.Store.SaveSeats(ctx, rep.RunID, rep.FinishedAt, SeatRows(rep.Pools)); err != nil {
		log.Warn("record the seat history", zap.Error(err))
		return limits
	}
	history, err := r.Store.SeatHistory(ctx, rep.FinishedAt.Add(-licensing.ForecastWindow))
	if err != nil {
		log.Warn("read the seat history for the forecast", zap.Error(err))
		return limits
	}
	for i := range rep.Pools {
		p := &rep.Pools[i]
		p.Forecast = ForecastPool(history, p.Name, p.Limit, p.Reserve, p.Unlimited, p.Frozen, rep.FinishedAt)
	}
	return limits
}

// rememberLimits keeps the limits this run saw, for the next run to
// compare with.
func (r *Runner) rememberLimits(ctx context.Context, log *zap.Logger, limits map[string]string) {
	if limits == nil {
		return
	}
	b, err := json.Marshal(limits)
	if err == nil {
		err = r.Store.SetValue(ctx, LimitsKey, string(b))
	}
	if err != nil {
		log.Warn("remember the pools' limits", zap.Error(err))
	}
}
