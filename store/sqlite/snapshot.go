package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// Export reads the whole store (but its run lock) as a snapshot; see
// store.ExportWith.
func (s *Store) Export(ctx context.Context) (*store.Snapshot, error) {
	snap, err := store.ExportWith(ctx, s, store.ExportParts{
		NextProfileID: func() (int64, error) {
			// AUTOINCREMENT's counter: the highest ID ever given.
			var last sql.NullInt64
			err := s.db.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'profiles'`).Scan(&last)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return 0, err
			}
			return last.Int64 + 1, nil
		},
		Values:      func() ([]store.KeptValue, error) { return s.keptValues(ctx) },
		Targets:     func() ([]store.TargetState, error) { return s.targetStates(ctx) },
		RunsByStart: func() ([]store.Run, error) { return s.queryRuns(ctx, "list runs", `ORDER BY started_at, id`) },
		AuditAfter: func(after int64, n int) ([]store.AuditEntry, error) {
			return s.queryAudit(ctx, `SELECT seq, run_id, at, actor, action, username, reason, before, after
				FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`, after, n)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: export: %w", err)
	}
	return snap, nil
}

func (s *Store) keptValues(ctx context.Context) ([]store.KeptValue, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key, value, at FROM kept_values ORDER BY key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.KeptValue
	for rows.Next() {
		var v store.KeptValue
		var at sql.NullInt64
		if err := rows.Scan(&v.Key, &v.Value, &at); err != nil {
			return nil, err
		}
		v.At = timeOf(at)
		out = append(out, v)
	}
	return out, rows.Err()
}

// targetStates names every target the store knows of (seeded ones, and
// those with pending pushes or links), with its seeding and memory.
func (s *Store) targetStates(ctx context.Context) ([]store.TargetState, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT n.name, t.seeded_at, ifnull(t.memory, ''), t.memory_at
		FROM (SELECT name FROM targets UNION SELECT target FROM target_pending UNION SELECT target FROM target_links) n
		LEFT JOIN targets t ON t.name = n.name ORDER BY n.name`)
	if err != nil {
		return nil, err
	}
	var out []store.TargetState
	for rows.Next() {
		var t store.TargetState
		var seeded, memoryAt sql.NullInt64
		if err := rows.Scan(&t.Name, &seeded, &t.Memory, &memoryAt); err != nil {
			rows.Close()
			return nil, err
		}
		t.SeededAt, t.MemoryAt = timeOf(seeded), timeOf(memoryAt)
		out = append(out, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Import fills an empty store from snap in one transaction.
func (s *Store) Import(ctx context.Context, snap *store.Snapshot) error {
	err := s.write(ctx, func(sqlTx *sql.Tx) error {
		var n int
		if err := sqlTx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM profiles) + (SELECT count(*) FROM runs)
			+ (SELECT count(*) FROM audit) + (SELECT count(*) FROM seat_history)`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return store.ErrNotEmpty
		}
		t := &tx{tx: sqlTx}
		for i := range snap.Profiles {
			if err := t.importProfile(ctx, &snap.Profiles[i]); err != nil {
				return err
			}
		}
		if _, err := sqlTx.ExecContext(ctx, recountSQL); err != nil {
			return fmt.Errorf("count the profiles: %w", err)
		}
		var maxID int64
		for _, p := range snap.Profiles {
			maxID = max(maxID, p.ID)
		}
		if next := max(maxID, snap.NextProfileID-1); next > 0 {
			if _, err := sqlTx.ExecContext(ctx, `DELETE FROM sqlite_sequence WHERE name = 'profiles'`); err != nil {
				return err
			}
			if _, err := sqlTx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) VALUES ('profiles', ?)`, next); err != nil {
				return err
			}
		}
		for _, g := range snap.Grants {
			if err := t.importGrant(ctx, g); err != nil {
				return err
			}
		}
		for key, e := range snap.Episodes {
			if _, err := sqlTx.ExecContext(ctx, `INSERT INTO notify_episodes (key, started_at, run_id, sent_at) VALUES (?, ?, ?, ?)`,
				key, timeArg(e.StartedAt), e.RunID, timeArg(e.SentAt)); err != nil {
				return fmt.Errorf("episode %s: %w", key, err)
			}
		}
		for _, v := range snap.Values {
			if err := store.CheckValue(v.Key, v.Value); err != nil {
				return err
			}
			if _, err := sqlTx.ExecContext(ctx, `INSERT INTO kept_values (key, value, at) VALUES (?, ?, ?)`,
				v.Key, v.Value, timeArg(v.At)); err != nil {
				return fmt.Errorf("value %s: %w", v.Key, err)
			}
		}
		for _, r := range snap.Seats {
			if err := insertSeatRow(ctx, sqlTx, r); err != nil {
				return fmt.Errorf("seat history of run %s: %w", r.RunID, err)
			}
		}
		for _, ts := range snap.Targets {
			if err := t.importTarget(ctx, ts); err != nil {
				return fmt.Errorf("target %s: %w", ts.Name, err)
			}
		}
		for e, err := range snap.Audit {
			if err != nil {
				return err
			}
			if err := t.importAudit(ctx, e); err != nil {
				return err
			}
		}
		for r, err := range snap.Runs {
			if err != nil {
				return err
			}
			if err := importRun(ctx, sqlTx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: import: %w", err)
	}
	return nil
}

func (t *tx) importProfile(ctx context.Context, p *model.Profile) error {
	if p.ID <= 0 || p.Version <= 0 {
		return fmt.Errorf("profile %s: no ID or version", p.Username)
	}
	args, err := t.profileArgs(p)
	if err != nil {
		return fmt.Errorf("profile %s: %w", p.Username, err)
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO profiles (id, version, username, username_fold, email, given_name,
		family_name, display_name, title, department, groups, attributes, area, state,
		block_reason, source, external_id, queued_at, activated_at, blocked_at, created_at,
		updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		append([]any{p.ID, p.Version}, args...)...)
	if err != nil {
		return fmt.Errorf("profile %s: %w", p.Username, duplicate(err, p))
	}
	return nil
}

func (t *tx) importAudit(ctx context.Context, e store.AuditEntry) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO audit (seq, run_id, at, actor, action, username, reason, before, after)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, e.RunID, timeArg(e.At), e.Actor, e.Action, e.Username, e.Reason, jsonArg(e.Before), jsonArg(e.After))
	if err != nil {
		return fmt.Errorf("audit entry %d: %w", e.Seq, err)
	}
	return nil
}

func (t *tx) importTarget(ctx context.Context, ts store.TargetState) error {
	if !ts.SeededAt.IsZero() || ts.Memory != "" || !ts.MemoryAt.IsZero() {
		if _, err := t.tx.ExecContext(ctx, `INSERT INTO targets (name, seeded_at, memory, memory_at) VALUES (?, ?, ?, ?)`,
			ts.Name, timeArg(ts.SeededAt), ts.Memory, timeArg(ts.MemoryAt)); err != nil {
			return err
		}
	}
	for _, p := range ts.Pending {
		var gone any
		if p.Gone != nil {
			gone = t.json(func(b []byte) []byte { return store.AppendProfileJSON(b, p.Gone) })
		}
		if _, err := t.tx.ExecContext(ctx, `INSERT INTO target_pending
			(target, profile_id, seq, gone, marked_at, attempts, last_status, last_error, failed)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, ts.Name, p.ProfileID, p.Seq, gone, timeArg(p.MarkedAt),
			p.Attempts, p.LastStatus, p.LastError, p.Failed); err != nil {
			return fmt.Errorf("pending push of profile %d: %w", p.ProfileID, err)
		}
		if _, err := t.tx.ExecContext(ctx, `UPDATE target_seq SET seq = max(seq, ?) WHERE id = 1`, p.Seq); err != nil {
			return err
		}
	}
	ls, err := prepareLinks(ctx, t.tx)
	if err != nil {
		return err
	}
	for id, l := range ts.Links {
		if err := ls.write(ctx, ts.Name, id, &l); err != nil {
			return fmt.Errorf("link of profile %d: %w", id, err)
		}
	}
	return nil
}

func importRun(ctx context.Context, sqlTx *sql.Tx, r store.Run) error {
	summary, err := rawJSONArg("summary", r.Summary)
	if err != nil {
		return fmt.Errorf("run %s: %w", r.ID, err)
	}
	report, err := store.GzipReport(&r)
	if err != nil {
		return fmt.Errorf("run %s: %w", r.ID, err)
	}
	_, err = sqlTx.ExecContext(ctx, `INSERT INTO runs
		(id, mode, result, error, started_at, finished_at, sources, summary, report, report_gzip)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)`,
		r.ID, r.Mode, r.Result, r.Error, timeArg(r.StartedAt), timeArg(r.FinishedAt),
		groupsArg(r.Sources), summary, report)
	if err != nil {
		return fmt.Errorf("run %s: %w", r.ID, err)
	}
	return nil
}
