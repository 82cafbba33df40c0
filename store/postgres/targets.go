package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// What the store keeps of targets (store.TargetStore): the outbox of
// pending pushes and the links to the applications' users. Pending pushes
// are numbered by the sequence target_seq; Tx.MarkPending writes its
// pushes with the transaction's other buffered rows (see tx.flush).

// SeedTarget marks every profile of areas pending for a target seen for
// the first time.
func (s *Store) SeedTarget(ctx context.Context, target string, areas []string) (bool, error) {
	seeded := false
	err := s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO targets (name, seeded_at) VALUES ($1, now())
			ON CONFLICT (name) DO UPDATE SET seeded_at = excluded.seeded_at WHERE targets.seeded_at IS NULL`, target)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		seeded = true
		// nextval in a subquery ordered by id numbers the pushes in
		// profile ID order.
		_, err = tx.Exec(ctx, `INSERT INTO target_pending (target, profile_id, seq, marked_at)
			SELECT $1, id, nextval('target_seq'), now() FROM (
				SELECT id FROM profiles WHERE cardinality($2::text[]) = 0 OR area = ANY($2) ORDER BY id
			) p
			ON CONFLICT (target, profile_id) DO NOTHING`, target, nonNil(areas))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("postgres: seed target %s: %w", target, err)
	}
	return seeded, nil
}

const pendingSQL = `SELECT p.profile_id, p.seq, p.gone, p.marked_at, p.attempts, p.last_status, p.last_error, p.failed,
		l.app_id, l.etag, l.active, l.hash, l.username, l.gone
	FROM target_pending p
	LEFT JOIN target_links l ON l.target = p.target AND l.profile_id = p.profile_id
	WHERE p.target = $1 ORDER BY p.seq`

// Pending returns target's pending pushes in the order they were marked,
// with the profiles as they are now, read in one statement after.
func (s *Store) Pending(ctx context.Context, target string) ([]store.Pending, error) {
	wrap := func(err error) error {
		return fmt.Errorf("postgres: read pending pushes of target %s: %w", target, err)
	}
	// One snapshot for both reads: a profile changed in between would
	// otherwise be paired with a push of another moment.
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, wrap(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only
	rows, err := tx.Query(ctx, pendingSQL, target)
	if err != nil {
		return nil, wrap(err)
	}
	var out []store.Pending
	var ids []int64
	for rows.Next() {
		var p store.Pending
		var gone []byte
		var marked pgtype.Timestamptz
		var appID, etag, hash, username pgtype.Text
		var active, linkGone pgtype.Bool
		if err := rows.Scan(&p.ProfileID, &p.Seq, &gone, &marked, &p.Attempts, &p.LastStatus, &p.LastError, &p.Failed,
			&appID, &etag, &active, &hash, &username, &linkGone); err != nil {
			rows.Close()
			return nil, wrap(err)
		}
		p.MarkedAt = timeOf(marked)
		if p.Gone, err = profileFromJSON(gone); err != nil {
			rows.Close()
			return nil, wrap(fmt.Errorf("profile %d: %w", p.ProfileID, err))
		}
		if appID.Valid {
			p.Link = &store.Link{AppID: appID.String, ETag: etag.String, Active: active.Bool, Hash: hash.String,
				Username: username.String, Gone: linkGone.Bool}
		}
		out = append(out, p)
		ids = append(ids, p.ProfileID)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrap(err)
	}
	if len(ids) == 0 {
		return out, nil
	}
	profiles, err := queryProfiles(ctx, tx, make([]model.Profile, 0, len(ids)),
		`SELECT `+profileCols+` FROM profiles WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, wrap(err)
	}
	byID := make(map[int64]*model.Profile, len(profiles))
	for i := range profiles {
		byID[profiles[i].ID] = &profiles[i]
	}
	for i := range out {
		out[i].Profile = byID[out[i].ProfileID]
	}
	return out, nil
}

// writeLink sets (or with link nil removes) one link in tx. An
// application id belongs to one profile: a user linked anew (found again
// after its profile was recreated) leaves the old link.
func writeLink(ctx context.Context, tx pgx.Tx, target string, profileID int64, link *store.Link) error {
	if link == nil {
		_, err := tx.Exec(ctx, `DELETE FROM target_links WHERE target = $1 AND profile_id = $2`, target, profileID)
		return err
	}
	if link.AppID == "" {
		return errors.New("a link needs the application's id of the user")
	}
	if _, err := tx.Exec(ctx, `DELETE FROM target_links WHERE target = $1 AND app_id = $2 AND profile_id <> $3`,
		target, link.AppID, profileID); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO target_links (target, profile_id, app_id, etag, active, hash, username, gone)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (target, profile_id) DO UPDATE SET app_id = excluded.app_id, etag = excluded.etag,
			active = excluded.active, hash = excluded.hash, username = excluded.username, gone = excluded.gone`,
		target, profileID, link.AppID, link.ETag, link.Active, link.Hash, link.Username, link.Gone)
	return err
}

// PushesDone records accepted pushes in one transaction, its statements
// sent as one batch: a first push of thousands would otherwise pay a
// round trip for each.
func (s *Store) PushesDone(ctx context.Context, target string, done []store.Done) error {
	if len(done) == 0 {
		return nil
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		var b pgx.Batch
		for _, d := range done {
			if d.Link == nil {
				b.Queue(`DELETE FROM target_links WHERE target = $1 AND profile_id = $2`, target, d.ProfileID)
			} else {
				if d.Link.AppID == "" {
					return fmt.Errorf("profile %d: a link needs the application's id of the user", d.ProfileID)
				}
				l := d.Link
				b.Queue(`DELETE FROM target_links WHERE target = $1 AND app_id = $2 AND profile_id <> $3`,
					target, l.AppID, d.ProfileID)
				b.Queue(`INSERT INTO target_links (target, profile_id, app_id, etag, active, hash, username, gone)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
					ON CONFLICT (target, profile_id) DO UPDATE SET app_id = excluded.app_id, etag = excluded.etag,
						active = excluded.active, hash = excluded.hash, username = excluded.username, gone = excluded.gone`,
					target, d.ProfileID, l.AppID, l.ETag, l.Active, l.Hash, l.Username, l.Gone)
			}
			b.Queue(`DELETE FROM target_pending WHERE target = $1 AND profile_id = $2 AND seq = $3`, target, d.ProfileID, d.Seq)
		}
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return fmt.Errorf("postgres: record %d pushes to target %s: %w", len(done), target, err)
	}
	return nil
}

// PushDone records an accepted push.
func (s *Store) PushDone(ctx context.Context, target string, profileID, seq int64, link *store.Link) error {
	return s.PushesDone(ctx, target, []store.Done{{ProfileID: profileID, Seq: seq, Link: link}})
}

// PushFailed records a push that did not go through.
func (s *Store) PushFailed(ctx context.Context, target string, profileID, seq int64, status int, message string, permanent bool, link *store.Link) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		if link != nil {
			if err := writeLink(ctx, tx, target, profileID, link); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `UPDATE target_pending SET attempts = attempts + 1, last_status = $1, last_error = $2,
			failed = $3 WHERE target = $4 AND profile_id = $5 AND seq = $6`,
			status, message, permanent, target, profileID, seq)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: record failed push of profile %d to target %s: %w", profileID, target, err)
	}
	return nil
}

// RetryFailed makes target's failed pushes pending again.
func (s *Store) RetryFailed(ctx context.Context, target string) (int, error) {
	var n int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE target_pending SET failed = false WHERE target = $1 AND failed`, target)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: retry failed pushes of target %s: %w", target, err)
	}
	return int(n), nil
}

// Links returns target's links by profile ID.
func (s *Store) Links(ctx context.Context, target string) (map[int64]store.Link, error) {
	rows, err := s.pool.Query(ctx, `SELECT profile_id, app_id, etag, active, hash, username, gone
		FROM target_links WHERE target = $1`, target)
	if err != nil {
		return nil, fmt.Errorf("postgres: read links of target %s: %w", target, err)
	}
	defer rows.Close()
	out := map[int64]store.Link{}
	for rows.Next() {
		var id int64
		var l store.Link
		if err := rows.Scan(&id, &l.AppID, &l.ETag, &l.Active, &l.Hash, &l.Username, &l.Gone); err != nil {
			return nil, fmt.Errorf("postgres: read links of target %s: %w", target, err)
		}
		out[id] = l
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read links of target %s: %w", target, err)
	}
	return out, nil
}

// SetLink writes one link.
func (s *Store) SetLink(ctx context.Context, target string, profileID int64, link store.Link) error {
	err := s.write(ctx, func(tx pgx.Tx) error { return writeLink(ctx, tx, target, profileID, &link) })
	if err != nil {
		return fmt.Errorf("postgres: link profile %d to user %s of target %s: %w", profileID, link.AppID, target, err)
	}
	return nil
}

// TargetCounts counts target's pending and failed pushes.
func (s *Store) TargetCounts(ctx context.Context, target string) (pending, failed int, err error) {
	err = s.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE failed) FROM target_pending WHERE target = $1`, target).
		Scan(&pending, &failed)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: count pending pushes of target %s: %w", target, err)
	}
	return pending, failed, nil
}

// TargetMemory reads what a target's client learnt of its application.
func (s *Store) TargetMemory(ctx context.Context, target string) (string, time.Time, error) {
	var memory string
	var at pgtype.Timestamptz
	err := s.pool.QueryRow(ctx, `SELECT memory, memory_at FROM targets WHERE name = $1`, target).Scan(&memory, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("postgres: read what target %s is known to support: %w", target, err)
	}
	return memory, timeOf(at), nil
}

// SetTargetMemory keeps what a target's client learnt of its application.
func (s *Store) SetTargetMemory(ctx context.Context, target, memory string) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO targets (name, memory, memory_at) VALUES ($1, $2, now())
			ON CONFLICT (name) DO UPDATE SET memory = excluded.memory, memory_at = excluded.memory_at`,
			target, memory)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: keep what target %s is known to support: %w", target, err)
	}
	return nil
}
