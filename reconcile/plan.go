// Package reconcile turns what the sources report into a plan of profile
// changes (Calculate, which is pure), checks it against the safety guards,
// and applies it to a store (Runner).
package reconcile

import (
	"strconv"
	"time"

	"github.com/seatsync/seatsync/internal/jsontext"
	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// Action is what a change does to a profile.
type Action string

const (
	ActionCreate   Action = "create"
	ActionUpdate   Action = "update"
	ActionMove     Action = "move"
	ActionActivate Action = "activate"
	ActionBlock    Action = "block"
	ActionDelete   Action = "delete"
)

// Activation reasons, reported in Change.Reason.
const (
	ReasonSeatFreed     = "seat_freed"
	ReasonSourceEnabled = "source_enabled"
)

// Plan is the result of Calculate: plain data that can be counted, capped
// and printed before anything is written.
type Plan struct {
	Now     time.Time
	Sources []SourceResult
	Changes []Change
	Skipped []Skipped
	Pools   []PoolResult
	// Products are the product licences before and after the plan.
	Products []ProductResult
	Guard    Guard
	Summary  Summary
	// Wanted are, per source (by pull index), the usernames (folded) of
	// the entries skipped because another profile holds the name: a run
	// that frees one of them has a read of changes of that source read
	// in full next, as a full run would give the name at once.
	Wanted [][]string
}

// SourceResult is what one source gave this run.
type SourceResult struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Identities int    `json:"identities"`
	Skipped    int    `json:"skipped"`
	// Full is set when the source was read in full: whoever it did not
	// return has left. Incremental is set when the source was asked for
	// what changed since its last run (incremental: true, or a csv file);
	// both are set when that read fell back to a full one, and
	// IncrementalFallback says why.
	Full                bool   `json:"full"`
	Incremental         bool   `json:"incremental"`
	IncrementalFallback string `json:"incremental_fallback,omitempty"`
	// Deletes counts the delete notices an incremental read gave;
	// NoDeletes says the read could not see deletions (they wait for the
	// next full read).
	Deletes   int  `json:"deletes,omitempty"`
	NoDeletes bool `json:"no_deletes,omitempty"`
	// LeavesSuspended says why this run blocks and deletes nobody of the
	// source for leaving: an entry was skipped whose external id could not
	// be read. Empty when leavers are handled as usual.
	LeavesSuspended string `json:"leaves_suspended,omitempty"`
}

// Change is one profile change.
type Change struct {
	Action     Action `json:"action"`
	Username   string `json:"username"`
	Source     string `json:"source"`
	ExternalID string `json:"external_id"`
	Area       string `json:"area"`
	Pool       string `json:"pool,omitempty"`
	// Product is the product licence a grant or recall is of.
	Product       string      `json:"product,omitempty"`
	State         model.State `json:"state"`
	Reason        string      `json:"reason,omitempty"`
	QueuePosition int         `json:"queue_position,omitempty"`
	// Result is filled in by the apply: "" in a plan, then "applied",
	// "no_seat" (the seat re-check in the transaction found the pool full,
	// so the profile was written blocked for license instead) or
	// "conflict" (the profile changed since the plan; the next run redoes
	// it).
	Result string `json:"result,omitempty"`

	// Before is the stored profile (nil for a create); After is the profile
	// to write (nil for a delete).
	Before *model.Profile `json:"-"`
	After  *model.Profile `json:"-"`
	// TakesSeat is set when the change makes the profile hold a seat in a
	// pool it did not hold one in before; the apply re-checks it.
	TakesSeat bool `json:"-"`
	// Deprovision is set for blocks for left_source and deletes, which the
	// guard counts.
	Deprovision bool `json:"-"`

	// A grant or recall has no Before or After: ProfileID is its profile
	// (0 for one this plan creates: the apply finds it by username),
	// PrevGrant the stored grant (nil for none) and Grant the grant to
	// write (nil for a recall).
	ProfileID int64        `json:"-"`
	PrevGrant *store.Grant `json:"-"`
	Grant     *store.Grant `json:"-"`
	// id is the profile's ID once the apply wrote it.
	id int64
}

// IsProduct reports whether the change is a grant or recall of a product
// licence rather than a change of the profile.
func (c *Change) IsProduct() bool { return c.Product != "" }

// FieldChanges lists the data fields the change sets, derived from Before
// and After (Old is nil on create); a delete has none.
func (c *Change) FieldChanges() Fields { return fieldChanges(c.Before, c.After) }

// MarshalJSON writes the change with its "fields", which are not stored
// but derived: a first sync reports every field of every new profile.
func (c Change) MarshalJSON() ([]byte, error) {
	return c.appendJSON(make([]byte, 0, 512)), nil
}

// appendJSON appends the change as JSON without reflection: byte for byte
// what encoding/json writes for Change's tags, followed by "fields"
// (omitted when empty), as it would for a Fields map. A test holds it to
// that; a new tagged field must be added here too.
func (c *Change) appendJSON(b []byte) []byte {
	b = append(b, `{"action":`...)
	b = jsontext.AppendString(b, string(c.Action), true)
	b = append(b, `,"username":`...)
	b = jsontext.AppendString(b, c.Username, true)
	b = append(b, `,"source":`...)
	b = jsontext.AppendString(b, c.Source, true)
	b = append(b, `,"external_id":`...)
	b = jsontext.AppendString(b, c.ExternalID, true)
	b = append(b, `,"area":`...)
	b = jsontext.AppendString(b, c.Area, true)
	if c.Pool != "" {
		b = append(b, `,"pool":`...)
		b = jsontext.AppendString(b, c.Pool, true)
	}
	if c.Product != "" {
		b = append(b, `,"product":`...)
		b = jsontext.AppendString(b, c.Product, true)
	}
	b = append(b, `,"state":`...)
	b = jsontext.AppendString(b, string(c.State), true)
	if c.Reason != "" {
		b = append(b, `,"reason":`...)
		b = jsontext.AppendString(b, c.Reason, true)
	}
	if c.QueuePosition != 0 {
		b = append(b, `,"queue_position":`...)
		b = strconv.AppendInt(b, int64(c.QueuePosition), 10)
	}
	if c.Result != "" {
		b = append(b, `,"result":`...)
		b = jsontext.AppendString(b, c.Result, true)
	}
	b = appendFieldsJSON(b, c.Before, c.After)
	return append(b, '}')
}

// FieldChange is one changed field; Old is nil on create.
type FieldChange struct {
	Old any `json:"old"`
	New any `json:"new"`
}

// Skipped is one identity the run could not map.
type Skipped struct {
	Source     string `json:"source"`
	ExternalID string `json:"external_id"`
	Where      string `json:"where,omitempty"`
	Reason     string `json:"reason"`
}

// PoolResult is a pool's seats before and after the plan.
type PoolResult struct {
	Name           string `json:"name"`
	Limit          int    `json:"limit"`
	Unlimited      bool   `json:"unlimited"`
	Reserve        int    `json:"reserve"`
	UsedBefore     int    `json:"used_before"`
	UsedAfter      int    `json:"used_after"`
	RemainingAfter int    `json:"remaining_after"`
	QueuedAfter    int    `json:"queued_after"`
	Overage        int    `json:"overage"`
	// LimitFrom is the licence key the limit came from; Frozen a pool
	// that gives no new seat and blocks nobody, because its licence
	// expired or none is in force.
	LimitFrom string `json:"limit_from,omitempty"`
	Frozen    bool   `json:"frozen,omitempty"`
	// Forecast is when the pool fills at the rate of the last 30 days
	// (a sync's report only; nil when it is not filling).
	Forecast *licensing.FillForecast `json:"forecast,omitempty"`
}

// Guard is the deprovision guard's verdict.
type Guard struct {
	Tripped      bool          `json:"tripped"`
	Overridden   bool          `json:"overridden,omitempty"`
	Deprovisions int           `json:"deprovisions"`
	Limit        int           `json:"limit"`
	Sources      []SourceGuard `json:"sources,omitempty"`
}

// SourceGuard is the guard's verdict for one source.
type SourceGuard struct {
	Name         string `json:"name"`
	Owned        int    `json:"owned"`
	Deprovisions int    `json:"deprovisions"`
	Limit        int    `json:"limit"`
	Tripped      bool   `json:"tripped"`
	Why          string `json:"why,omitempty"`
}

// Summary counts changes by action.
type Summary struct {
	Create   int `json:"create"`
	Update   int `json:"update"`
	Move     int `json:"move"`
	Activate int `json:"activate"`
	Block    int `json:"block"`
	Delete   int `json:"delete"`
	// Grant and Recall count product licence changes.
	Grant     int `json:"grant"`
	Recall    int `json:"recall"`
	Unchanged int `json:"unchanged"`
	Skipped   int `json:"skipped"`
}

// Total is the number of changes.
func (s Summary) Total() int {
	return s.Create + s.Update + s.Move + s.Activate + s.Block + s.Delete + s.Grant + s.Recall
}

func (s *Summary) add(a Action) { s.addN(a, 1) }

func (s *Summary) addN(a Action, n int) {
	switch a {
	case ActionCreate:
		s.Create += n
	case ActionUpdate:
		s.Update += n
	case ActionMove:
		s.Move += n
	case ActionActivate:
		s.Activate += n
	case ActionBlock:
		s.Block += n
	case ActionDelete:
		s.Delete += n
	case ActionGrant:
		s.Grant += n
	case ActionRecall:
		s.Recall += n
	}
}
