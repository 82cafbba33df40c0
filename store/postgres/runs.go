package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// SaveRun inserts r, or replaces the run with the same ID.
func (s *Store) SaveRun(ctx context.Context, r store.Run) error {
	if r.ID == "" {
		return errors.New("postgres: save run: empty run ID")
	}
	wrap := func(err error) error { return fmt.Errorf("postgres: save run %s: %w", r.ID, err) }
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"started_at", r.StartedAt}, {"finished_at", r.FinishedAt}} {
		if err := checkTime(t.name, t.t); err != nil {
			return wrap(err)
		}
	}
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
	var sources any
	if r.Sources != nil {
		sources = r.Sources
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO runs
			(id, mode, result, error, started_at, finished_at, sources, summary, report_gzip)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (id) DO UPDATE SET mode = excluded.mode, result = excluded.result,
				error = excluded.error, started_at = excluded.started_at,
				finished_at = excluded.finished_at, sources = excluded.sources,
				summary = excluded.summary, report_gzip = excluded.report_gzip`,
			r.ID, r.Mode, r.Result, r.Error, timeArg(r.StartedAt), timeArg(r.FinishedAt),
			sources, summary, report)
		if err != nil {
			return wrap(err)
		}
		return nil
	})
}

const runCols = `id, mode, result, error, started_at, finished_at, sources, summary`

func scanRun(row pgx.Row, withReport bool) (store.Run, error) {
	var r store.Run
	var started, finished pgtype.Timestamptz
	var summary, report []byte
	dest := []any{&r.ID, &r.Mode, &r.Result, &r.Error, &started, &finished, &r.Sources, &summary}
	if withReport {
		dest = append(dest, &report)
	}
	if err := row.Scan(dest...); err != nil {
		return store.Run{}, err
	}
	r.StartedAt, r.FinishedAt = timeOf(started), timeOf(finished)
	if summary != nil {
		r.Summary = summary
	}
	if report != nil {
		var err error
		if r.Report, err = store.GunzipReport(report); err != nil {
			return store.Run{}, err
		}
	}
	return r, nil
}

// Runs returns the most recent limit runs (all if limit <= 0), newest
// first by StartedAt, without their reports.
func (s *Store) Runs(ctx context.Context, limit int) ([]store.Run, error) {
	var lim any // NULL: no limit
	if limit > 0 {
		lim = limit
	}
	return s.queryRuns(ctx, "list runs", `ORDER BY started_at DESC NULLS LAST, id DESC LIMIT $1`, lim)
}

func (s *Store) queryRuns(ctx context.Context, what, rest string, args ...any) ([]store.Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+runCols+` FROM runs `+rest, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	defer rows.Close()
	var out []store.Run
	for rows.Next() {
		r, err := scanRun(rows, false)
		if err != nil {
			return nil, fmt.Errorf("postgres: %s: %w", what, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	return out, nil
}

// Run returns one run with its report.
func (s *Store) Run(ctx context.Context, id string) (store.Run, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runCols+`, report_gzip FROM runs WHERE id = $1`, id), true)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Run{}, fmt.Errorf("postgres: run %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Run{}, fmt.Errorf("postgres: run %s: %w", id, err)
	}
	return r, nil
}

// Prune deletes old runs and audit entries.
func (s *Store) Prune(ctx context.Context, runsBefore, auditBefore time.Time) (runs, audit int, err error) {
	err = s.write(ctx, func(tx pgx.Tx) error {
		if !runsBefore.IsZero() {
			tag, err := tx.Exec(ctx, `DELETE FROM runs WHERE started_at < $1 AND result <> $2`, runsBefore, store.RunRunning)
			if err != nil {
				return err
			}
			runs = int(tag.RowsAffected())
			if _, err := tx.Exec(ctx, `DELETE FROM seat_history WHERE at < $1`, runsBefore); err != nil {
				return err
			}
		}
		if !auditBefore.IsZero() {
			tag, err := tx.Exec(ctx, `DELETE FROM audit WHERE at < $1`, auditBefore)
			if err != nil {
				return err
			}
			audit = int(tag.RowsAffected())
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: prune runs and audit entries: %w", err)
	}
	return runs, audit, nil
}

// UnfinishedRuns returns the runs still recorded as running, oldest first.
func (s *Store) UnfinishedRuns(ctx context.Context) ([]store.Run, error) {
	return s.queryRuns(ctx, "read unfinished runs", `WHERE result = $1 ORDER BY started_at, id`, store.RunRunning)
}

// AuditCounts counts the audit entries of runID by action.
func (s *Store) AuditCounts(ctx context.Context, runID string) (map[string]int, time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT action, count(*), max(at) FROM audit WHERE run_id = $1 GROUP BY action`, runID)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("postgres: count audit entries of run %s: %w", runID, err)
	}
	defer rows.Close()
	counts := map[string]int{}
	var last time.Time
	for rows.Next() {
		var action string
		var n int
		var at pgtype.Timestamptz
		if err := rows.Scan(&action, &n, &at); err != nil {
			return nil, time.Time{}, fmt.Errorf("postgres: count audit entries of run %s: %w", runID, err)
		}
		counts[action] = n
		if t := timeOf(at); t.After(last) {
			last = t
		}
	}
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, fmt.Errorf("postgres: count audit entries of run %s: %w", runID, err)
	}
	return counts, last, nil
}

const auditCols = `SELECT seq, run_id, at, actor, action, username, reason, before, after FROM audit`

// Audit returns the audit entries of run runID in the order they were
// written, or with runID "" the most recent entries, newest first. limit
// <= 0 means no limit.
func (s *Store) Audit(ctx context.Context, runID string, limit int) ([]store.AuditEntry, error) {
	var lim any
	if limit > 0 {
		lim = limit
	}
	var out []store.AuditEntry
	var err error
	if runID != "" {
		out, err = s.queryAudit(ctx, auditCols+` WHERE run_id = $1 ORDER BY seq LIMIT $2`, runID, lim)
	} else {
		out, err = s.queryAudit(ctx, auditCols+` ORDER BY seq DESC LIMIT $1`, lim)
	}
	if err != nil {
		if runID == "" {
			return nil, fmt.Errorf("postgres: read audit log: %w", err)
		}
		return nil, fmt.Errorf("postgres: read audit log of run %s: %w", runID, err)
	}
	return out, nil
}

func (s *Store) queryAudit(ctx context.Context, q string, args ...any) ([]store.AuditEntry, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var e store.AuditEntry
		var at pgtype.Timestamptz
		var before, after []byte
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
// Username is matched on username_fold, which the store fills with
// model.FoldUsername's output, so the match is seatsync's and not the
// database's idea of case.
func (s *Store) AuditMatching(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	var where []string
	var args []any
	arg := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.RunID != "" {
		arg(`run_id = ?`, f.RunID)
	}
	if !f.Since.IsZero() {
		arg(`at >= ?`, f.Since)
	}
	if f.Username != "" {
		arg(`username_fold = ?`, model.FoldUsername(f.Username))
	}
	q := auditCols
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY seq DESC`
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += ` LIMIT $` + strconv.Itoa(len(args))
	}
	es, err := s.queryAudit(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: read audit log: %w", err)
	}
	return es, nil
}
