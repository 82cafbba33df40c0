package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// What the store keeps of targets (store.TargetStore): the outbox of
// pending pushes and the links to the applications' users. See schemaV4.

// nextSeq hands out the next pending push sequence number inside q's
// write transaction.
func nextSeq(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int64, error) {
	var seq int64
	err := q.QueryRowContext(ctx, `UPDATE target_seq SET seq = seq + 1 WHERE id = 1 RETURNING seq`).Scan(&seq)
	return seq, err
}

const markSQL = `INSERT INTO target_pending (target, profile_id, seq, gone, marked_at)
	VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (target, profile_id) DO UPDATE SET seq = excluded.seq, gone = excluded.gone,
		failed = 0`

// MarkPending records a push for target in the transaction.
func (t *tx) MarkPending(ctx context.Context, target string, profileID int64, gone *model.Profile) error {
	wrap := func(err error) error {
		return fmt.Errorf("sqlite: mark profile %d pending for target %s: %w", profileID, target, err)
	}
	if target == "" || profileID <= 0 {
		return wrap(errors.New("no target or no profile id"))
	}
	ctx, err := t.lock(ctx)
	if err != nil {
		return wrap(err)
	}
	defer t.mu.Unlock()
	seq, err := nextSeq(ctx, t.tx)
	if err != nil {
		return wrap(err)
	}
	var g any
	if gone != nil {
		g = t.json(func(b []byte) []byte { return store.AppendProfileJSON(b, gone) })
	}
	st, err := t.stmt(ctx, stmtMark, markSQL)
	if err != nil {
		return wrap(err)
	}
	if _, err := st.ExecContext(ctx, target, profileID, seq, g, timeArg(time.Now())); err != nil {
		return wrap(err)
	}
	return nil
}

// SeedTarget marks every profile of areas pending for a target seen for
// the first time.
func (s *Store) SeedTarget(ctx context.Context, target string, areas []string) (bool, error) {
	seeded := false
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO targets (name, seeded_at) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET seeded_at = excluded.seeded_at WHERE targets.seeded_at IS NULL`,
			target, timeArg(time.Now()))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		seeded = true
		seq, err := nextSeq(ctx, tx)
		if err != nil {
			return err
		}
		// Numbered from seq on, in profile ID order; the counter then
		// moves past them.
		_, err = tx.ExecContext(ctx, `INSERT INTO target_pending (target, profile_id, seq, marked_at)
			SELECT ?1, id, ?2 + row_number() OVER (ORDER BY id), ?3 FROM profiles
			WHERE ?4 = '[]' OR area IN (SELECT value FROM json_each(?4))
			ON CONFLICT (target, profile_id) DO NOTHING`, target, seq, timeArg(time.Now()), jsonList(areas))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE target_seq SET seq = seq + (SELECT count(*) FROM profiles) + 1 WHERE id = 1`)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: seed target %s: %w", target, err)
	}
	return seeded, nil
}

// pendingSQL reads the profile with a subquery: NULL once it is deleted.
const pendingSQL = `SELECT p.profile_id, p.seq, p.gone, p.marked_at, p.attempts, p.last_status, p.last_error, p.failed,
		l.app_id, l.etag, l.active, l.hash, l.username, l.gone,
		(SELECT ` + profileRecord + ` FROM profiles WHERE id = p.profile_id)
	FROM target_pending p
	LEFT JOIN target_links l ON l.target = p.target AND l.profile_id = p.profile_id
	WHERE p.target = ? ORDER BY p.seq`

// Pending returns target's pending pushes in the order they were marked.
func (s *Store) Pending(ctx context.Context, target string) ([]store.Pending, error) {
	wrap := func(err error) error { return fmt.Errorf("sqlite: read pending pushes of target %s: %w", target, err) }
	rows, err := s.db.QueryContext(ctx, pendingSQL, target)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []store.Pending
	for rows.Next() {
		var p store.Pending
		var gone sql.NullString
		var marked sql.NullInt64
		var failed bool
		var appID, etag, hash, username sql.NullString
		var active, linkGone sql.NullBool
		var record sql.NullString
		if err := rows.Scan(&p.ProfileID, &p.Seq, &gone, &marked, &p.Attempts, &p.LastStatus, &p.LastError, &failed,
			&appID, &etag, &active, &hash, &username, &linkGone, &record); err != nil {
			return nil, wrap(err)
		}
		p.MarkedAt, p.Failed = timeOf(marked), failed
		if p.Gone, err = profileFromJSON(gone); err != nil {
			return nil, wrap(fmt.Errorf("profile %d: %w", p.ProfileID, err))
		}
		if record.Valid {
			pr, err := parseProfile(record.String)
			if err != nil {
				return nil, wrap(fmt.Errorf("profile %d: %w", p.ProfileID, err))
			}
			p.Profile = &pr
		}
		if appID.Valid {
			p.Link = &store.Link{AppID: appID.String, ETag: etag.String, Active: active.Bool, Hash: hash.String,
				Username: username.String, Gone: linkGone.Bool}
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err)
	}
	return out, nil
}

// linkStmts are the statements that write links, prepared once for a
// transaction that writes many.
type linkStmts struct {
	del, move, upsert *sql.Stmt
}

func prepareLinks(ctx context.Context, tx *sql.Tx) (*linkStmts, error) {
	var ls linkStmts
	var err error
	if ls.del, err = tx.PrepareContext(ctx, `DELETE FROM target_links WHERE target = ? AND profile_id = ?`); err != nil {
		return nil, err
	}
	// An application id belongs to one profile: a user linked anew (found
	// again after its profile was recreated) leaves the old link.
	if ls.move, err = tx.PrepareContext(ctx, `DELETE FROM target_links WHERE target = ? AND app_id = ? AND profile_id <> ?`); err != nil {
		return nil, err
	}
	ls.upsert, err = tx.PrepareContext(ctx, `INSERT INTO target_links (target, profile_id, app_id, etag, active, hash, username, gone)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (target, profile_id) DO UPDATE SET app_id = excluded.app_id, etag = excluded.etag,
			active = excluded.active, hash = excluded.hash, username = excluded.username, gone = excluded.gone`)
	return &ls, err
}

// write sets (or with link nil removes) one link.
func (ls *linkStmts) write(ctx context.Context, target string, profileID int64, link *store.Link) error {
	if link == nil {
		_, err := ls.del.ExecContext(ctx, target, profileID)
		return err
	}
	if link.AppID == "" {
		return errors.New("a link needs the application's id of the user")
	}
	if _, err := ls.move.ExecContext(ctx, target, link.AppID, profileID); err != nil {
		return err
	}
	_, err := ls.upsert.ExecContext(ctx, target, profileID, link.AppID, link.ETag, link.Active, link.Hash, link.Username, link.Gone)
	return err
}

// writeLink writes one link in tx.
func writeLink(ctx context.Context, tx *sql.Tx, target string, profileID int64, link *store.Link) error {
	ls, err := prepareLinks(ctx, tx)
	if err != nil {
		return err
	}
	return ls.write(ctx, target, profileID, link)
}

// PushesDone records accepted pushes in one transaction: a first push of
// thousands would otherwise pay a write transaction for each.
func (s *Store) PushesDone(ctx context.Context, target string, done []store.Done) error {
	if len(done) == 0 {
		return nil
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		del, err := tx.PrepareContext(ctx, `DELETE FROM target_pending WHERE target = ? AND profile_id = ? AND seq = ?`)
		if err != nil {
			return err
		}
		ls, err := prepareLinks(ctx, tx)
		if err != nil {
			return err
		}
		for _, d := range done {
			if err := ls.write(ctx, target, d.ProfileID, d.Link); err != nil {
				return fmt.Errorf("profile %d: %w", d.ProfileID, err)
			}
			if _, err := del.ExecContext(ctx, target, d.ProfileID, d.Seq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: record %d pushes to target %s: %w", len(done), target, err)
	}
	return nil
}

// PushFailed records a push that did not go through.
func (s *Store) PushFailed(ctx context.Context, target string, profileID, seq int64, status int, message string, permanent bool, link *store.Link) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if link != nil {
			if err := writeLink(ctx, tx, target, profileID, link); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE target_pending SET attempts = attempts + 1, last_status = ?, last_error = ?,
			failed = ? WHERE target = ? AND profile_id = ? AND seq = ?`,
			status, message, permanent, target, profileID, seq)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: record failed push of profile %d to target %s: %w", profileID, target, err)
	}
	return nil
}

// RetryFailed makes target's failed pushes pending again.
func (s *Store) RetryFailed(ctx context.Context, target string) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE target_pending SET failed = 0 WHERE target = ? AND failed <> 0`, target)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: retry failed pushes of target %s: %w", target, err)
	}
	return int(n), nil
}

// Links returns target's links by profile ID.
func (s *Store) Links(ctx context.Context, target string) (map[int64]store.Link, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT profile_id, app_id, etag, active, hash, username, gone
		FROM target_links WHERE target = ?`, target)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read links of target %s: %w", target, err)
	}
	defer rows.Close()
	out := map[int64]store.Link{}
	for rows.Next() {
		var id int64
		var l store.Link
		if err := rows.Scan(&id, &l.AppID, &l.ETag, &l.Active, &l.Hash, &l.Username, &l.Gone); err != nil {
			return nil, fmt.Errorf("sqlite: read links of target %s: %w", target, err)
		}
		out[id] = l
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: read links of target %s: %w", target, err)
	}
	return out, nil
}

// SetLink writes one link.
func (s *Store) SetLink(ctx context.Context, target string, profileID int64, link store.Link) error {
	err := s.write(ctx, func(tx *sql.Tx) error { return writeLink(ctx, tx, target, profileID, &link) })
	if err != nil {
		return fmt.Errorf("sqlite: link profile %d to user %s of target %s: %w", profileID, link.AppID, target, err)
	}
	return nil
}

// TargetCounts counts target's pending and failed pushes.
func (s *Store) TargetCounts(ctx context.Context, target string) (pending, failed int, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT count(*), COALESCE(sum(failed <> 0), 0) FROM target_pending WHERE target = ?`, target).
		Scan(&pending, &failed)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: count pending pushes of target %s: %w", target, err)
	}
	return pending, failed, nil
}

// PushDone records an accepted push.
func (s *Store) PushDone(ctx context.Context, target string, profileID, seq int64, link *store.Link) error {
	return s.PushesDone(ctx, target, []store.Done{{ProfileID: profileID, Seq: seq, Link: link}})
}

// TargetMemory reads what a target's client learnt of its application.
func (s *Store) TargetMemory(ctx context.Context, target string) (string, time.Time, error) {
	var memory string
	var at sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT memory, memory_at FROM targets WHERE name = ?`, target).Scan(&memory, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sqlite: read what target %s is known to support: %w", target, err)
	}
	return memory, timeOf(at), nil
}

// SetTargetMemory keeps what a target's client learnt of its application.
func (s *Store) SetTargetMemory(ctx context.Context, target, memory string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO targets (name, memory, memory_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET memory = excluded.memory, memory_at = excluded.memory_at`,
			target, memory, timeArg(time.Now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: keep what target %s is known to support: %w", target, err)
	}
	return nil
}
