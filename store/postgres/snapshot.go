package postgres

import (
	"context"
	"fmt"
	"iter"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// Export reads the whole store (but its run lock) as a snapshot; see
// store.ExportWith.
func (s *Store) Export(ctx context.Context) (*store.Snapshot, error) {
	snap, err := store.ExportWith(ctx, s, store.ExportParts{
		NextProfileID: func() (int64, error) {
			var last int64
			var called bool
			if err := s.pool.QueryRow(ctx, `SELECT last_value, is_called FROM profiles_id_seq`).Scan(&last, &called); err != nil {
				return 0, err
			}
			if called {
				return last + 1, nil
			}
			return last, nil
		},
		Values:      func() ([]store.KeptValue, error) { return s.keptValues(ctx) },
		Targets:     func() ([]store.TargetState, error) { return s.targetStates(ctx) },
		RunsByStart: func() ([]store.Run, error) { return s.queryRuns(ctx, "list runs", `ORDER BY started_at, id`) },
		AuditAfter: func(after int64, n int) ([]store.AuditEntry, error) {
			return s.queryAudit(ctx, auditCols+` WHERE seq > $1 ORDER BY seq LIMIT $2`, after, n)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: export: %w", err)
	}
	return snap, nil
}

func (s *Store) keptValues(ctx context.Context) ([]store.KeptValue, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, value, at FROM kept_values ORDER BY key`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.KeptValue, error) {
		var v store.KeptValue
		var at pgtype.Timestamptz
		err := row.Scan(&v.Key, &v.Value, &at)
		v.At = timeOf(at)
		return v, err
	})
}

// targetStates names every target the store knows of (seeded ones, and
// those with pending pushes or links), with its seeding and memory.
func (s *Store) targetStates(ctx context.Context) ([]store.TargetState, error) {
	rows, err := s.pool.Query(ctx, `SELECT n.name, t.seeded_at, coalesce(t.memory, ''), t.memory_at
		FROM (SELECT name FROM targets UNION SELECT target FROM target_pending UNION SELECT target FROM target_links) n
		LEFT JOIN targets t ON t.name = n.name ORDER BY n.name`)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.TargetState, error) {
		var t store.TargetState
		var seeded, memoryAt pgtype.Timestamptz
		err := row.Scan(&t.Name, &seeded, &t.Memory, &memoryAt)
		t.SeededAt, t.MemoryAt = timeOf(seeded), timeOf(memoryAt)
		return t, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Import fills an empty store from snap in one transaction: profiles and
// audit entries with COPY, the sequences moved past what was copied.
func (s *Store) Import(ctx context.Context, snap *store.Snapshot) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM profiles) + (SELECT count(*) FROM runs)
			+ (SELECT count(*) FROM audit) + (SELECT count(*) FROM seat_history)`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return store.ErrNotEmpty
		}
		if err := importProfiles(ctx, tx, snap); err != nil {
			return err
		}
		if err := importGrants(ctx, tx, snap.Grants); err != nil {
			return err
		}
		for key, e := range snap.Episodes {
			if _, err := tx.Exec(ctx, `INSERT INTO notify_episodes (key, started_at, run_id, sent_at) VALUES ($1, $2, $3, $4)`,
				key, timeArg(e.StartedAt), e.RunID, timeArg(e.SentAt)); err != nil {
				return fmt.Errorf("episode %s: %w", key, err)
			}
		}
		for _, v := range snap.Values {
			if err := store.CheckValue(v.Key, v.Value); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO kept_values (key, value, at) VALUES ($1, $2, $3)`,
				v.Key, v.Value, timeArg(v.At)); err != nil {
				return fmt.Errorf("value %s: %w", v.Key, err)
			}
		}
		for _, r := range snap.Seats {
			if err := insertSeatRow(ctx, tx, r); err != nil {
				return fmt.Errorf("seat history of run %s: %w", r.RunID, err)
			}
		}
		for _, ts := range snap.Targets {
			if err := importTarget(ctx, tx, ts); err != nil {
				return fmt.Errorf("target %s: %w", ts.Name, err)
			}
		}
		if err := importAudit(ctx, tx, snap.Audit); err != nil {
			return err
		}
		for r, err := range snap.Runs {
			if err != nil {
				return err
			}
			if err := importRun(ctx, tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: import: %w", err)
	}
	return nil
}

func importProfiles(ctx context.Context, tx pgx.Tx, snap *store.Snapshot) error {
	rows := make([][]any, 0, len(snap.Profiles))
	maxID := snap.NextProfileID - 1
	for i := range snap.Profiles {
		p := &snap.Profiles[i]
		if p.ID <= 0 || p.Version <= 0 {
			return fmt.Errorf("profile %s: no ID or version", p.Username)
		}
		args, err := profileArgs(p, model.FoldUsername(p.Username))
		if err != nil {
			return fmt.Errorf("profile %s: %w", p.Username, err)
		}
		rows = append(rows, append([]any{p.ID, p.Version}, args...))
		maxID = max(maxID, p.ID)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"profiles"}, profileCopyCols, pgx.CopyFromRows(rows)); err != nil {
		return copyError(err, &flushBuf{profiles: rows})
	}
	if _, err := tx.Exec(ctx, recountSQL); err != nil {
		return fmt.Errorf("count the profiles: %w", err)
	}
	if maxID > 0 {
		if _, err := tx.Exec(ctx, `SELECT setval('profiles_id_seq', $1)`, maxID); err != nil {
			return err
		}
	}
	return nil
}

// importPage is how many audit entries an import sends in one COPY.
const importPage = 2000

// importAudit copies the audit log a page at a time, its numbers kept.
func importAudit(ctx context.Context, tx pgx.Tx, entries iter.Seq2[store.AuditEntry, error]) error {
	cols := append([]string{"seq"}, auditCopyCols...)
	var page [][]any
	var last int64
	flush := func() error {
		if len(page) == 0 {
			return nil
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit"}, cols, pgx.CopyFromRows(page)); err != nil {
			return fmt.Errorf("write %d audit entries: %w", len(page), err)
		}
		page = page[:0]
		return nil
	}
	for e, err := range entries {
		if err != nil {
			return err
		}
		page = append(page, []any{e.Seq, e.RunID, timeArg(e.At), e.Actor, e.Action, e.Username,
			model.FoldUsername(e.Username), e.Reason, jsonArg(e.Before), jsonArg(e.After)})
		last = max(last, e.Seq)
		if len(page) == importPage {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if last > 0 {
		if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence('audit', 'seq'), $1)`, last); err != nil {
			return err
		}
	}
	return nil
}

func importTarget(ctx context.Context, tx pgx.Tx, ts store.TargetState) error {
	if !ts.SeededAt.IsZero() || ts.Memory != "" || !ts.MemoryAt.IsZero() {
		if _, err := tx.Exec(ctx, `INSERT INTO targets (name, seeded_at, memory, memory_at) VALUES ($1, $2, $3, $4)`,
			ts.Name, timeArg(ts.SeededAt), ts.Memory, timeArg(ts.MemoryAt)); err != nil {
			return err
		}
	}
	var last int64
	for _, p := range ts.Pending {
		gone, err := profileJSON(p.Gone)
		if err != nil {
			return fmt.Errorf("pending push of profile %d: %w", p.ProfileID, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO target_pending
			(target, profile_id, seq, gone, marked_at, attempts, last_status, last_error, failed)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, ts.Name, p.ProfileID, p.Seq, gone, timeArg(p.MarkedAt),
			p.Attempts, p.LastStatus, p.LastError, p.Failed); err != nil {
			return fmt.Errorf("pending push of profile %d: %w", p.ProfileID, err)
		}
		last = max(last, p.Seq)
	}
	if last > 0 {
		// Never moved back: another target's pushes may be numbered higher.
		if _, err := tx.Exec(ctx, `SELECT setval('target_seq', greatest($1, (SELECT last_value FROM target_seq)))`, last); err != nil {
			return err
		}
	}
	for id, l := range ts.Links {
		if err := writeLink(ctx, tx, ts.Name, id, &l); err != nil {
			return fmt.Errorf("link of profile %d: %w", id, err)
		}
	}
	return nil
}

func importRun(ctx context.Context, tx pgx.Tx, r store.Run) error {
	summary, err := rawJSONArg("summary", r.Summary)
	if err != nil {
		return fmt.Errorf("run %s: %w", r.ID, err)
	}
	report, err := store.GzipReport(&r)
	if err != nil {
		return fmt.Errorf("run %s: %w", r.ID, err)
	}
	var sources any
	if r.Sources != nil {
		sources = r.Sources
	}
	_, err = tx.Exec(ctx, `INSERT INTO runs
		(id, mode, result, error, started_at, finished_at, sources, summary, report_gzip)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		r.ID, r.Mode, r.Result, r.Error, timeArg(r.StartedAt), timeArg(r.FinishedAt), sources, summary, report)
	if err != nil {
		return fmt.Errorf("run %s: %w", r.ID, err)
	}
	return nil
}
