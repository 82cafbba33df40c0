// Package sqlite is the embedded store: one SQLite file, opened with the
// pure-Go driver modernc.org/sqlite (no cgo).
//
// The file is in WAL mode, so reads run concurrently with the one writer.
// Every write transaction starts with BEGIN IMMEDIATE, which takes SQLite's
// write lock at once; that serialises writers across goroutines,
// processes and Store handles, and is what makes a seat check inside
// WithTx race-free. Writers inside one process also queue on a channel
// first, so they wait in order instead of polling SQLite's busy handler.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/seatsync/seatsync/internal/jsontext"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// busyTimeout is how long a write transaction waits for another process's
// write lock before it fails with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Store is a store.Store on one SQLite file. It is safe for concurrent use.
type Store struct {
	db   *sql.DB
	path string
	// writer is a one-slot semaphore held for the whole of a write
	// transaction, so this process's writers queue in Go.
	writer chan struct{}
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path and brings its
// schema up to date. The file's directory must exist. Open fails if the
// schema is newer than this binary knows.
func Open(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, migrations())
}

func open(ctx context.Context, path string, ms []migration) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: no database path (store.path) given")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := prepareFile(abs); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxIdleConns(4)
	s := &Store{db: db, path: path, writer: make(chan struct{}, 1)}
	if err := s.init(ctx, ms); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return s, nil
}

// prepareFile makes sure the database file exists before SQLite opens it,
// creating it 0600 (and its directory 0700, when that is missing but its
// parent exists) when it is new: it holds
// names, e-mail addresses and the audit log. SQLite gives the -wal and
// -shm files it makes the mode of the database file, so they are 0600
// too, whatever the umask.
func prepareFile(abs string) error {
	dir := filepath.Dir(abs)
	switch fi, err := os.Stat(dir); {
	case errors.Is(err, fs.ErrNotExist):
		// One level only: a store path with a typo high up should fail,
		// not grow a tree of directories.
		if err := os.Mkdir(dir, 0o700); err != nil {
			return fmt.Errorf("create directory %s: %w", dir, err)
		}
	case err != nil:
		return fmt.Errorf("directory %s: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil // an existing store keeps the mode its admin gave it
	case err != nil:
		return err
	}
	return f.Close()
}

// dsn is the modernc.org/sqlite data source name for the file at abs. The
// pragmas run on every new connection of the pool; _txlock makes every
// read-write BeginTx a BEGIN IMMEDIATE.
//
// page_size only takes effect while the file is new, and must come before
// journal_mode: the driver runs the _pragma list first. 32 KiB pages make
// the bulk writes of a large first sync about a third cheaper than the
// default 4 KiB (fewer pages, fewer write calls).
func dsn(abs string) string {
	q := url.Values{}
	q.Set("_txlock", "immediate")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "page_size(32768)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_journal_mode", "WAL")
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // file:///C:/dir/seatsync.db on Windows
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

func (s *Store) init(ctx context.Context, ms []migration) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal_mode is %q, not wal: put the database on a local filesystem", mode)
	}
	return migrate(ctx, s.db, ms)
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlite: close %s: %w", s.path, err)
	}
	return nil
}

func scanProfiles(rows *sql.Rows, out []model.Profile) ([]model.Profile, error) {
	defer rows.Close()
	var rec string
	for rows.Next() {
		if err := rows.Scan(&rec); err != nil {
			return nil, err
		}
		p, err := parseProfile(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func scanProfile(row *sql.Row) (model.Profile, error) {
	var rec string
	if err := row.Scan(&rec); err != nil {
		return model.Profile{}, err
	}
	return parseProfile(rec)
}

// Profiles returns every profile, ordered by username compared
// case-insensitively (the byte order of model.FoldUsername).
func (s *Store) Profiles(ctx context.Context) ([]model.Profile, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM profiles`).Scan(&n); err != nil {
		return nil, fmt.Errorf("sqlite: list profiles: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+profileRecord+` FROM profiles ORDER BY username_fold`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list profiles: %w", err)
	}
	out, err := scanProfiles(rows, make([]model.Profile, 0, n))
	if err != nil {
		return nil, fmt.Errorf("sqlite: list profiles: %w", err)
	}
	return out, nil
}

// Profile returns one profile by username, compared case-insensitively.
func (s *Store) Profile(ctx context.Context, username string) (model.Profile, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+profileRecord+` FROM profiles WHERE username_fold = ?`,
		model.FoldUsername(username))
	p, err := scanProfile(row)
	if errors.Is(err, sql.ErrNoRows) {
		return model.Profile{}, fmt.Errorf("sqlite: profile %s: %w", username, store.ErrNotFound)
	}
	if err != nil {
		return model.Profile{}, fmt.Errorf("sqlite: profile %s: %w", username, err)
	}
	return p, nil
}

// jsonList is a list argument for `IN (SELECT value FROM json_each(?))`,
// so one statement serves any number of values.
func jsonList(vs []string) string {
	return string(jsontext.AppendStrings(nil, vs, false))
}

// Queue returns the profiles of areas blocked for license, in queue order:
// QueuedAt (a zero QueuedAt first), then username.
func (s *Store) Queue(ctx context.Context, areas []string) ([]model.Profile, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+profileRecord+` FROM profiles
		WHERE area IN (SELECT value FROM json_each(?)) AND state = ? AND block_reason = ?
		ORDER BY queued_at NULLS FIRST, username_fold`,
		jsonList(areas), string(model.Blocked), string(model.ReasonLicense))
	if err != nil {
		return nil, fmt.Errorf("sqlite: read queue: %w", err)
	}
	out, err := scanProfiles(rows, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read queue: %w", err)
	}
	return out, nil
}

// AcquireLock takes the run lock for holder until now+ttl, or renews it if
// holder has it already. While another holder's lock has not expired it
// returns a *store.LockedError that names that holder.
func (s *Store) AcquireLock(ctx context.Context, holder string, ttl time.Duration) error {
	return s.takeLock(ctx, "", holder, ttl)
}

// TakeOverLock gives the run lock to holder if from holds it, expired or
// not; see store.Store.
func (s *Store) TakeOverLock(ctx context.Context, from, holder string, ttl time.Duration) error {
	if from == "" {
		return fmt.Errorf("sqlite: take over run lock for %s: empty previous holder", holder)
	}
	return s.takeLock(ctx, from, holder, ttl)
}

// takeLock takes the lock for holder when it is free, expired, holder's
// own, or (with from set) from's.
func (s *Store) takeLock(ctx context.Context, from, holder string, ttl time.Duration) error {
	if holder == "" {
		return errors.New("sqlite: acquire run lock: empty holder")
	}
	if ttl <= 0 {
		return fmt.Errorf("sqlite: acquire run lock for %s: ttl %s is not positive", holder, ttl)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		now := time.Now()
		var other string
		var expires int64
		err := tx.QueryRowContext(ctx, `SELECT holder, expires_at FROM run_lock WHERE id = 1`).Scan(&other, &expires)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("sqlite: acquire run lock for %s: %w", holder, err)
		case other != holder && other != from && expires > now.UnixNano():
			return fmt.Errorf("sqlite: acquire run lock for %s: %w", holder,
				&store.LockedError{Holder: other, Expires: time.Unix(0, expires).UTC()})
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO run_lock (id, holder, expires_at) VALUES (1, ?, ?)
			ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at`,
			holder, now.Add(ttl).UnixNano()); err != nil {
			return fmt.Errorf("sqlite: acquire run lock for %s: %w", holder, err)
		}
		return nil
	})
}

// ReleaseLock gives the run lock up if holder has it.
func (s *Store) ReleaseLock(ctx context.Context, holder string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM run_lock WHERE id = 1 AND holder = ?`, holder); err != nil {
			return fmt.Errorf("sqlite: release run lock for %s: %w", holder, err)
		}
		return nil
	})
}

// SaveRun inserts r, or replaces the run with the same ID.
func (s *Store) SaveRun(ctx context.Context, r store.Run) error {
	if r.ID == "" {
		return errors.New("sqlite: save run: empty run ID")
	}
	wrap := func(err error) error { return fmt.Errorf("sqlite: save run %s: %w", r.ID, err) }
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"started_at", r.StartedAt}, {"finished_at", r.FinishedAt}} {
		if err := checkTime(t.name, t.t); err != nil {
			return wrap(err)
		}
	}
	sources := groupsArg(r.Sources)
	summary, err := rawJSONArg("summary", r.Summary)
	if err != nil {
		return wrap(err)
	}
	// Compressed before the write transaction, which it would otherwise
	// hold up.
	report, err := store.GzipReport(&r)
	if err != nil {
		return wrap(err)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO runs
			(id, mode, result, error, started_at, finished_at, sources, summary, report, report_gzip)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)
			ON CONFLICT (id) DO UPDATE SET mode = excluded.mode, result = excluded.result,
				error = excluded.error, started_at = excluded.started_at,
				finished_at = excluded.finished_at, sources = excluded.sources,
				summary = excluded.summary, report = NULL, report_gzip = excluded.report_gzip`,
			r.ID, r.Mode, r.Result, r.Error, timeArg(r.StartedAt), timeArg(r.FinishedAt),
			sources, summary, report)
		if err != nil {
			return wrap(err)
		}
		return nil
	})
}

type runScanner struct {
	r                        store.Run
	started, finished        sql.NullInt64
	sources, summary, report sql.NullString
	reportGzip               []byte
	dest                     []any
}

// newRunScanner scans the columns of a run in the order runs are selected
// in: id to summary, then with withReport report and report_gzip.
func newRunScanner(withReport bool) *runScanner {
	rs := &runScanner{}
	rs.dest = []any{&rs.r.ID, &rs.r.Mode, &rs.r.Result, &rs.r.Error, &rs.started, &rs.finished,
		&rs.sources, &rs.summary}
	if withReport {
		rs.dest = append(rs.dest, &rs.report, &rs.reportGzip)
	}
	return rs
}

func (rs *runScanner) scan(row interface{ Scan(...any) error }) (store.Run, error) {
	rs.report, rs.reportGzip = sql.NullString{}, nil
	if err := row.Scan(rs.dest...); err != nil {
		return store.Run{}, err
	}
	r := rs.r
	r.StartedAt = timeOf(rs.started)
	r.FinishedAt = timeOf(rs.finished)
	var err error
	if r.Sources, err = decodeGroups(rs.sources); err != nil {
		return store.Run{}, fmt.Errorf("sources: %w", err)
	}
	r.Summary = rawJSONOf(rs.summary)
	r.Report = rawJSONOf(rs.report) // saved before schema version 3
	if rs.reportGzip != nil {
		if r.Report, err = store.GunzipReport(rs.reportGzip); err != nil {
			return store.Run{}, err
		}
	}
	return r, nil
}

// Runs returns the most recent limit runs (all if limit <= 0), newest
// first by StartedAt, without their reports.
func (s *Store) Runs(ctx context.Context, limit int) ([]store.Run, error) {
	if limit <= 0 {
		limit = -1 // no limit
	}
	return s.queryRuns(ctx, "list runs", `ORDER BY started_at DESC, id DESC LIMIT ?`, limit)
}

// queryRuns reads the runs that rest (the query's end: a WHERE, an ORDER
// BY) selects, without their reports.
func (s *Store) queryRuns(ctx context.Context, what, rest string, args ...any) ([]store.Run, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, mode, result, error, started_at, finished_at,
		sources, summary FROM runs `+rest, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	var out []store.Run
	rs := newRunScanner(false)
	for rows.Next() {
		r, err := rs.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}

// Run returns one run with its report.
func (s *Store) Run(ctx context.Context, id string) (store.Run, error) {
	row := s.db.QueryRowContext(ctx, `SELECT id, mode, result, error, started_at, finished_at,
		sources, summary, report, report_gzip FROM runs WHERE id = ?`, id)
	r, err := newRunScanner(true).scan(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Run{}, fmt.Errorf("sqlite: run %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Run{}, fmt.Errorf("sqlite: run %s: %w", id, err)
	}
	return r, nil
}

// Prune deletes old runs and audit entries.
func (s *Store) Prune(ctx context.Context, runsBefore, auditBefore time.Time) (runs, audit int, err error) {
	err = s.write(ctx, func(tx *sql.Tx) error {
		if !runsBefore.IsZero() {
			res, err := tx.ExecContext(ctx, `DELETE FROM runs WHERE started_at < ? AND result <> ?`, timeArg(runsBefore), store.RunRunning)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			runs = int(n)
			if _, err := tx.ExecContext(ctx, `DELETE FROM seat_history WHERE at < ?`, runsBefore.UnixNano()); err != nil {
				return err
			}
		}
		if !auditBefore.IsZero() {
			res, err := tx.ExecContext(ctx, `DELETE FROM audit WHERE at < ?`, timeArg(auditBefore))
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			audit = int(n)
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: prune runs and audit entries: %w", err)
	}
	return runs, audit, nil
}

// UnfinishedRuns returns the runs still recorded as running, oldest first.
func (s *Store) UnfinishedRuns(ctx context.Context) ([]store.Run, error) {
	return s.queryRuns(ctx, "read unfinished runs", `WHERE result = ? ORDER BY started_at, id`, store.RunRunning)
}

// AuditCounts counts the audit entries of runID by action.
func (s *Store) AuditCounts(ctx context.Context, runID string) (map[string]int, time.Time, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT action, count(*), max(at) FROM audit WHERE run_id = ? GROUP BY action`, runID)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("sqlite: count audit entries of run %s: %w", runID, err)
	}
	defer rows.Close()
	counts := map[string]int{}
	var last time.Time
	for rows.Next() {
		var action string
		var n int
		var at sql.NullInt64
		if err := rows.Scan(&action, &n, &at); err != nil {
			return nil, time.Time{}, fmt.Errorf("sqlite: count audit entries of run %s: %w", runID, err)
		}
		counts[action] = n
		if t := timeOf(at); t.After(last) {
			last = t
		}
	}
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, fmt.Errorf("sqlite: count audit entries of run %s: %w", runID, err)
	}
	return counts, last, nil
}

// Audit returns the audit entries of run runID in the order they were
// written, or with runID "" the most recent entries, newest first. limit
// <= 0 means no limit.
func (s *Store) Audit(ctx context.Context, runID string, limit int) ([]store.AuditEntry, error) {
	if limit <= 0 {
		limit = -1
	}
	const cols = `SELECT seq, run_id, at, actor, action, username, reason, before, after FROM audit`
	var out []store.AuditEntry
	var err error
	if runID != "" {
		out, err = s.queryAudit(ctx, cols+` WHERE run_id = ? ORDER BY seq LIMIT ?`, runID, limit)
	} else {
		out, err = s.queryAudit(ctx, cols+` ORDER BY seq DESC LIMIT ?`, limit)
	}
	if err != nil {
		if runID == "" {
			return nil, fmt.Errorf("sqlite: read audit log: %w", err)
		}
		return nil, fmt.Errorf("sqlite: read audit log of run %s: %w", runID, err)
	}
	return out, nil
}

// queryAudit reads the audit entries q selects; q selects the columns
// seq, run_id, at, actor, action, username, reason, before, after.
func (s *Store) queryAudit(ctx context.Context, q string, args ...any) ([]store.AuditEntry, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var e store.AuditEntry
		var at sql.NullInt64
		var before, after []byte // nil for NULL
		if err := rows.Scan(&e.Seq, &e.RunID, &at, &e.Actor, &e.Action, &e.Username, &e.Reason, &before, &after); err != nil {
			return nil, err
		}
		e.At, e.Before, e.After = timeOf(at), before, after
		if e.Fields, err = store.AuditFields(e.Before, e.After); err != nil {
			return nil, fmt.Errorf("entry %d: %w", e.Seq, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// AuditMatching returns the audit entries f selects, newest first. A
// Username is looked up through the audit_username index, which folds
// ASCII letters only (SQLite's NOCASE); for a username with other letters
// the index finds no more than the exact spelling, so those entries are
// read without it and kept in Go, folded as model.FoldUsername does.
func (s *Store) AuditMatching(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	var where []string
	var args []any
	if f.RunID != "" {
		where, args = append(where, `run_id = ?`), append(args, f.RunID)
	}
	if !f.Since.IsZero() {
		where, args = append(where, `at >= ?`), append(args, f.Since.UnixNano())
	}
	inGo := f.Username != "" && !isASCII(f.Username)
	if f.Username != "" && !inGo {
		where, args = append(where, `username = ? COLLATE NOCASE`), append(args, f.Username)
	}
	q := `SELECT seq, run_id, at, actor, action, username, reason, before, after FROM audit`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY seq DESC`
	limit := f.Limit
	if limit <= 0 || inGo {
		limit = -1
	}
	q += ` LIMIT ?`
	args = append(args, limit)
	es, err := s.queryAudit(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read audit log: %w", err)
	}
	if inGo {
		want := model.FoldUsername(f.Username)
		es = slices.DeleteFunc(es, func(e store.AuditEntry) bool { return model.FoldUsername(e.Username) != want })
		if f.Limit > 0 && len(es) > f.Limit {
			es = es[:f.Limit]
		}
	}
	return es, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
