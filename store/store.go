// Package store defines the profile store seatsync keeps: profiles, the
// run lock, the audit log and the run history. Implementations live in
// sub-packages (sqlite, later postgres) and all pass the conformance suite
// in storetest.
//
// The licence queue is part of the profiles: a profile waiting for a seat
// is blocked with reason license and keeps its QueuedAt across runs, so the
// queue survives restarts and is read back in order by Queue.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/seatsync/seatsync/model"
)

var (
	// ErrLocked is returned by AcquireLock while another holder has the
	// run lock; the error is a *LockedError.
	ErrLocked = errors.New("another run holds the store's run lock")
	// ErrConflict is returned by Tx.Update and Tx.Delete when the profile
	// changed (or vanished) since it was read: its Version no longer
	// matches.
	ErrConflict = errors.New("profile changed since it was read")
	// ErrNotFound is returned when a profile or run does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNotActive is returned by Tx.SetGrant for a profile that is
	// blocked: only active profiles hold product licences.
	ErrNotActive = errors.New("only active profiles hold product licences")
	// ErrDuplicate is returned by Insert and Update when the username (case
	// insensitive) or the (source, external_id) pair is already taken.
	ErrDuplicate = errors.New("username or external id already in use")
)

// LockedError is the error AcquireLock and TakeOverLock return while
// another holder has the run lock. It matches ErrLocked with errors.Is.
type LockedError struct {
	Holder  string
	Expires time.Time
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%s: %s holds it until %s", ErrLocked, e.Holder, e.Expires.UTC().Format(time.RFC3339))
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// RunRunning is the result of a run recorded when it starts to write and
// not yet finished. A run left so by a process that died is found by the
// next run that takes the lock (UnfinishedRuns) and ended as interrupted.
const RunRunning = "running"

// Store is the profile store.
type Store interface {
	// Profiles returns every profile, ordered by username compared
	// case-insensitively (the byte order of model.FoldUsername), so the
	// order does not depend on a database's collation.
	Profiles(ctx context.Context) ([]model.Profile, error)
	// Profile returns one profile by username (case insensitive).
	Profile(ctx context.Context, username string) (model.Profile, error)
	// Queue returns the blocked-for-license profiles of the given areas in
	// queue order: QueuedAt (a zero QueuedAt first), then username as in
	// Profiles. Priority weights come from the configuration and are
	// applied by the licensing package on top.
	Queue(ctx context.Context, areas []string) ([]model.Profile, error)

	// Select returns the profiles sel names, each once, ordered as
	// Profiles. It reads through the store's indexes, so that an
	// incremental run reads the profiles its changes touch, not every
	// profile.
	Select(ctx context.Context, sel Selection) ([]model.Profile, error)
	// Tally counts profiles without reading them (see Tally), through the
	// same indexes as Select.
	Tally(ctx context.Context, req TallyRequest) (Tally, error)

	// WithTx runs fn in one write transaction. Write transactions are
	// serialised across processes: a count read inside fn stays true until
	// fn returns, so a seat check inside fn cannot be raced. If fn returns
	// an error the transaction is rolled back and the error returned.
	WithTx(ctx context.Context, fn func(Tx) error) error

	// AcquireLock takes the store's run lock for holder, for ttl. It
	// returns ErrLocked while another holder's lock has not expired. The
	// same holder may take it again (that renews it).
	AcquireLock(ctx context.Context, holder string, ttl time.Duration) error
	// ReleaseLock gives the lock up; releasing a lock one does not hold is
	// not an error.
	ReleaseLock(ctx context.Context, holder string) error
	// TakeOverLock gives the lock to holder, for ttl, if from still holds
	// it (expired or not): the caller knows from is gone. It returns a
	// *LockedError when someone else holds it by then, and takes a free
	// lock as AcquireLock does.
	TakeOverLock(ctx context.Context, from, holder string, ttl time.Duration) error

	// SaveRun records a run (insert or replace by ID).
	SaveRun(ctx context.Context, r Run) error
	// Runs returns the most recent runs, newest first, without reports.
	Runs(ctx context.Context, limit int) ([]Run, error)
	// Run returns one run with its report.
	Run(ctx context.Context, id string) (Run, error)
	// Prune deletes the runs that started before runsBefore and the audit
	// entries written before auditBefore (a zero time keeps them all), and
	// says how many of each went. Runs still running are kept. The seat
	// history recorded before runsBefore goes with the runs (it is not
	// counted).
	Prune(ctx context.Context, runsBefore, auditBefore time.Time) (runs, audit int, err error)
	// UnfinishedRuns returns the runs recorded with result RunRunning,
	// oldest first, without reports.
	UnfinishedRuns(ctx context.Context) ([]Run, error)
	// AuditCounts counts a run's audit entries by action, and returns the
	// time of its last one (zero when it has none).
	AuditCounts(ctx context.Context, runID string) (map[string]int, time.Time, error)
	// Audit returns the audit entries of a run, in the order they were
	// written; with runID "" it returns the most recent entries (newest
	// first) up to limit.
	Audit(ctx context.Context, runID string, limit int) ([]AuditEntry, error)
	// AuditMatching returns the audit entries f selects, newest first.
	AuditMatching(ctx context.Context, f AuditFilter) ([]AuditEntry, error)

	// Episodes returns the open notification episodes by key (package
	// notify: an event kind and a pool, "seats_exhausted/primary", or a
	// kind alone for run-level events). An empty store returns an empty,
	// non-nil map.
	Episodes(ctx context.Context) (map[string]Episode, error)
	// SetEpisode opens the episode key, or replaces it if it is open.
	SetEpisode(ctx context.Context, key string, e Episode) error
	// EndEpisode closes the episode key; ending one that is not open is
	// not an error.
	EndEpisode(ctx context.Context, key string) error

	// Value returns what SetValue last kept under key, and when; "" and
	// a zero time when nothing was. Packages keep small state here that
	// must outlive a run: the last valid licence, a source's sync cursor.
	Value(ctx context.Context, key string) (string, time.Time, error)
	// SetValue keeps value under key, replacing what was there. The key
	// must not be empty, and the value is UTF-8 text without NUL (see
	// CheckValue): binary state is encoded by its owner.
	SetValue(ctx context.Context, key, value string) error

	// SaveSeats records the seats of a run: one row per pool (and, with
	// Kind, per product) as the run left it. at and runID are set on every
	// row; rows recorded before for runID are replaced, so a run saved
	// twice is counted once.
	SaveSeats(ctx context.Context, runID string, at time.Time, rows []SeatRow) error
	// SeatHistory returns the rows recorded at or after since (every row
	// for a zero since), oldest first, then by Kind and Name.
	SeatHistory(ctx context.Context, since time.Time) ([]SeatRow, error)
	// Grants returns every product grant (held or queued), ordered by
	// product, then profile ID.
	Grants(ctx context.Context) ([]Grant, error)

	TargetStore

	Close() error
}

// FullReadKey is the store value (Store.Value) that asks the next run to
// read a source in full although it reads incrementally, and says why:
// something happened that a read of changes would not bring in (an admin
// deleted a profile whose person is still in the source, say). The run
// that reads it in full clears it.
func FullReadKey(source string) string { return "full-read/" + source }

// Selection names the profiles an incremental run reads (Store.Select).
// A profile any part names is returned.
type Selection struct {
	// Keys are owned profiles by (source, external_id).
	Keys []Key
	// Usernames are profiles by username, compared case-insensitively.
	Usernames []string
	// Areas are the areas whose licence queue (the profiles blocked for
	// license) is read whole.
	Areas []string
	// Left are, per source, the profiles blocked for left_source at or
	// before the time given: those delete_after may delete.
	Left map[string]time.Time
}

// Key names an owned profile.
type Key struct {
	Source, ExternalID string
}

// TallyRequest says what Tally counts.
type TallyRequest struct {
	// Pools are lists of areas: each is counted as one.
	Pools [][]string
	// Exempt usernames hold no seat (compared case-insensitively).
	Exempt []string
	// Sources are counted by the profiles they own.
	Sources []string
}

// Tally is what Tally counted.
type Tally struct {
	// Active counts, per pool of the request, its active profiles that
	// are not exempt: the seats they hold (as Tx.CountActive).
	Active []int
	// Owned counts, per source of the request, the profiles it owns.
	Owned []int
}

// Kinds of SeatRow: what Name names. Products (per-product licences) are
// recorded with their own kind beside the pools.
const (
	SeatKindPool = "pool"
)

// SeatRow is one pool's seats after one run: the seat history that
// `seatsync seats --history`, the status page's chart and the forecast
// read.
type SeatRow struct {
	At    time.Time `json:"at"`
	RunID string    `json:"run_id"`
	// Kind says what Name is: SeatKindPool.
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Limit is the limit in force; 0 and Unlimited for unlimited pools.
	Limit     int  `json:"limit"`
	Unlimited bool `json:"unlimited"`
	// Used counts the active profiles holding a seat, Queued the people
	// blocked for license (waiting for one), Remaining the free seats and
	// Overage how many more are used than the limit allows.
	Used      int `json:"used"`
	Queued    int `json:"queued"`
	Remaining int `json:"remaining"`
	Overage   int `json:"overage"`
}

// Grant states.
const (
	GrantGranted = "granted" // the profile holds the product licence
	GrantQueued  = "queued"  // it waits for one, in queue order
)

// Grant is one profile's product licence (package licensing, Product):
// held, or waiting in the product's queue. Grants live beside the
// profiles, in their own table, and go with them: deleting a profile
// deletes its grants.
type Grant struct {
	ProfileID int64
	Product   string
	State     string // GrantGranted | GrantQueued
	// Since is when the licence was granted, or when the profile first
	// asked for it and did not get one (its queue time).
	Since time.Time
	// Manual is a grant an admin made by hand (seatsync profiles grant):
	// a sync keeps it while no rule matches, and recalls it only when the
	// profile is blocked or deleted.
	Manual bool
}

// TargetStore keeps what seatsync knows of each target (an application it
// provisions, package target): the pending pushes, an outbox written in
// the same transaction as the profile changes they carry (Tx.MarkPending),
// and the link from each profile to its user in the application.
type TargetStore interface {
	// SeedTarget marks every profile of areas (every area when areas is
	// empty) pending for target, the first time it is called for that
	// target, and reports whether it did: a target added to a running
	// installation receives everyone once.
	SeedTarget(ctx context.Context, target string, areas []string) (bool, error)
	// Pending returns target's pending pushes, in the order they were
	// marked.
	Pending(ctx context.Context, target string) ([]Pending, error)
	// PushDone records a push that the application accepted: link becomes
	// the profile's link (nil removes it), and the pending push is removed
	// unless it was marked again since it was read (seq differs).
	PushDone(ctx context.Context, target string, profileID, seq int64, link *Link) error
	// PushesDone records many accepted pushes in one transaction, each as
	// PushDone would.
	PushesDone(ctx context.Context, target string, done []Done) error
	// PushFailed records a push that did not go through. permanent is a
	// refusal of this one user (a 4xx); such a push is not sent again until
	// the profile changes or SendFailed is called. link, when not nil,
	// replaces the profile's link (a user found or created before the
	// failure).
	PushFailed(ctx context.Context, target string, profileID, seq int64, status int, message string, permanent bool, link *Link) error
	// RetryFailed makes target's failed pushes pending again.
	RetryFailed(ctx context.Context, target string) (int, error)
	// Links returns target's links by profile ID, deleted profiles'
	// included.
	Links(ctx context.Context, target string) (map[int64]Link, error)
	// SetLink writes one link (verify --fix links a user it found).
	SetLink(ctx context.Context, target string, profileID int64, link Link) error
	// TargetMemory is what a target's client learnt of its application
	// (package target, Remembering) and when; "" when nothing yet.
	TargetMemory(ctx context.Context, target string) (string, time.Time, error)
	// SetTargetMemory keeps it.
	SetTargetMemory(ctx context.Context, target, memory string) error
	// TargetCounts counts target's pushes that are pending and failed.
	TargetCounts(ctx context.Context, target string) (pending, failed int, err error)
}

// CheckValue says why SetValue must refuse key and value, or nil.
func CheckValue(key, value string) error {
	switch {
	case key == "":
		return errors.New("keep a value: empty key")
	case !utf8.ValidString(value):
		return fmt.Errorf("keep value %s: not UTF-8 text", key)
	case strings.IndexByte(value, 0) >= 0:
		return fmt.Errorf("keep value %s: it holds a NUL byte", key)
	}
	return nil
}

// CheckGrant says why SetGrant must refuse g, or nil.
func CheckGrant(g Grant) error {
	switch {
	case g.Product == "":
		return errors.New("no product")
	case g.State != GrantGranted && g.State != GrantQueued:
		return fmt.Errorf("state %q is not granted or queued", g.State)
	}
	return nil
}

// Pending is one profile that target must be brought in step with.
type Pending struct {
	ProfileID int64
	// Seq orders pending pushes; marking a pending push again gives it a
	// new one.
	Seq int64
	// Profile is the profile as it is now; nil once it was deleted, and
	// then Gone is its last state.
	Profile *model.Profile
	Gone    *model.Profile
	Link    *Link // nil while the profile has no user in the application
	// MarkedAt is when the push was first marked pending.
	MarkedAt time.Time
	Attempts int
	// LastStatus and LastError are the last failure's (0 and "" before).
	LastStatus int
	LastError  string
	Failed     bool // refused for this user; see PushFailed
}

// Done is one push the application accepted (see PushDone).
type Done struct {
	ProfileID, Seq int64
	Link           *Link
}

// Link ties a profile to its user in a target application.
type Link struct {
	AppID string // the application's id of the user
	ETag  string // its version as the application last gave it, "" when unknown
	// Active and Hash are what seatsync last sent: the user's active flag
	// and a digest of its attributes, so an unchanged user is not sent
	// again.
	Active bool
	Hash   string
	// Username is the userName the application knows the user by.
	Username string
	// Gone is set once the profile was deleted and its user deactivated:
	// the user is still seatsync's, and must stay inactive.
	Gone bool
}

// Tx is one write transaction. Its methods keep no pointer to the
// profiles they are given once they return, so a caller may reuse them.
type Tx interface {
	// CountActive counts active profiles in the given areas whose username
	// is not in exempt (compared case-insensitively).
	CountActive(ctx context.Context, areas []string, exempt []string) (int, error)
	// Get reads a profile by ID inside the transaction.
	Get(ctx context.Context, id int64) (model.Profile, error)
	// Insert stores a new profile and sets its ID and Version.
	Insert(ctx context.Context, p *model.Profile) error
	// Update writes p over the stored profile with the same ID, if its
	// stored Version still equals p.Version (ErrConflict otherwise), and
	// bumps p.Version.
	Update(ctx context.Context, p *model.Profile) error
	// Delete removes the profile with p.ID, and its grants, if its Version
	// still equals p.Version (ErrConflict otherwise).
	Delete(ctx context.Context, p model.Profile) error
	// Audit appends an audit entry.
	Audit(ctx context.Context, e AuditEntry) error
	// MarkPending records, in this transaction, that target must be sent
	// the profile with profileID as it is at commit. gone is the last
	// state of a profile this transaction deletes, nil otherwise. A push
	// already pending is marked again (a new Seq), and a failed one is
	// pending again.
	MarkPending(ctx context.Context, target string, profileID int64, gone *model.Profile) error

	// CountGrants counts the profiles that hold product (state granted),
	// for the seat check of a grant inside the transaction.
	CountGrants(ctx context.Context, product string) (int, error)
	// ProfileGrants returns one profile's grants, ordered by product.
	ProfileGrants(ctx context.Context, profileID int64) ([]Grant, error)
	// SetGrant writes g, replacing the profile's grant of the same
	// product. The profile must exist (ErrNotFound otherwise) and be
	// active (ErrNotActive otherwise), so that the store itself never
	// holds a product licence, nor a place in a product's queue, for a
	// blocked profile.
	SetGrant(ctx context.Context, g Grant) error
	// DeleteGrant removes the profile's grant of product; removing one
	// that does not exist is not an error.
	DeleteGrant(ctx context.Context, profileID int64, product string) error
}

// AuditEntry is one applied change: who ran it, what it was, and the
// fields of the profile it changed, with their values before and after.
// Changed fills in the last three from the profile before and after.
type AuditEntry struct {
	Seq      int64     `json:"seq"`
	RunID    string    `json:"run_id"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"` // "sync", "admin"
	Action   string    `json:"action"`
	Username string    `json:"username"`
	Reason   string    `json:"reason,omitempty"`
	// Fields names the profile fields the change set (see AuditFields);
	// nil when it changed no profile (a product grant of a sync).
	Fields []string `json:"fields"`
	// Before and After are JSON objects of the Fields' values before and
	// after the change, keyed by field name (model.Profile's JSON names,
	// and "id"); nil for a create's Before and a delete's After. Entries
	// recorded before the audit log kept changes hold two whole copies of
	// the profile here (with "id" and "version"), as they were stored.
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
}

// AuditFilter selects audit entries; its zero value selects them all.
type AuditFilter struct {
	RunID string // only this run's entries
	// Username keeps one user's entries, compared case-insensitively (as
	// model.FoldUsername does).
	Username string
	Since    time.Time // only entries at or after it
	Limit    int       // at most this many, the newest; <= 0 for no limit
}

// Run is one recorded run.
type Run struct {
	ID         string          `json:"run_id"`
	Mode       string          `json:"mode"`   // sync | plan | admin
	Result     string          `json:"result"` // ok | failed | guard_tripped | skipped | running | interrupted
	Error      string          `json:"error,omitempty"`
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt time.Time       `json:"finished_at"`
	Sources    []string        `json:"sources"`
	Summary    json.RawMessage `json:"summary,omitempty"`
	Report     json.RawMessage `json:"report,omitempty"`
	// WriteReport, when set, is what SaveRun stores as the report instead
	// of Report: it writes the report's JSON to w, in as many pieces as it
	// likes. A first sync of a large directory reports tens of megabytes;
	// this way a store can compress the report as it comes and never holds
	// it whole. It must write one JSON document, which the store takes as
	// it is. Runs read back carry their report in Report.
	WriteReport func(w io.Writer) error `json:"-"`
	// WriteReportGzip, when set, is what SaveRun stores instead of either:
	// the report's JSON gzip-compressed, as one or more gzip members whose
	// contents, joined, are the document. A large report's biggest part
	// can so be compressed ahead, while the run is still writing. A store
	// keeps the stream as it is (it reads back as the document).
	WriteReportGzip func(w io.Writer) error `json:"-"`
}

// Episode is one stretch of runs during which a notification-worthy state
// lasts (a pool full, runs failing). Package notify sends each event once
// per episode and keeps its episodes here, so a restart neither sends
// again nor forgets.
type Episode struct {
	// StartedAt is when the first run that saw the state finished.
	StartedAt time.Time `json:"started_at"`
	// RunID is the last run that saw the state.
	RunID string `json:"run_id"`
	// SentAt is when the notification was delivered by at least one
	// channel; zero until then.
	SentAt time.Time `json:"sent_at"`
}

// Elector is implemented by stores that several seatsync serve processes
// share (postgres): one of them at a time, the leader, runs the scheduled
// syncs, the target pushes and verify; the others serve reads. A store
// that only one process uses (sqlite) does not implement it, and its one
// serve process always leads.
type Elector interface {
	// Campaign tries once, without waiting, to become the leader as id
	// (shown to the others by Leader). It returns nil, nil when another
	// process leads. check is how often the leadership checks its hold;
	// it is lost within two checks of the database becoming unreachable,
	// on both sides: the leader stops leading, and the database lets the
	// lock go, so another process can take it over.
	Campaign(ctx context.Context, id string, check time.Duration) (Leadership, error)
	// Leader names the process that leads now, "" when none does.
	Leader(ctx context.Context) (string, error)
}

// Leadership is a won Campaign.
type Leadership interface {
	// Lost is closed once the leadership is lost (its hold on the
	// database failed a check) or resigned.
	Lost() <-chan struct{}
	// Resign gives the leadership up at once, so another process can
	// take it over without waiting.
	Resign()
}
