package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/seatsync/seatsync/store"
)

// Episodes returns the open notification episodes by key.
func (s *Store) Episodes(ctx context.Context) (map[string]store.Episode, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key, started_at, run_id, sent_at FROM notify_episodes`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read notification episodes: %w", err)
	}
	defer rows.Close()
	out := map[string]store.Episode{}
	for rows.Next() {
		var key string
		var e store.Episode
		var started, sent sql.NullInt64
		if err := rows.Scan(&key, &started, &e.RunID, &sent); err != nil {
			return nil, fmt.Errorf("sqlite: read notification episodes: %w", err)
		}
		e.StartedAt, e.SentAt = timeOf(started), timeOf(sent)
		out[key] = e
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: read notification episodes: %w", err)
	}
	return out, nil
}

// SetEpisode opens the episode key or replaces it.
func (s *Store) SetEpisode(ctx context.Context, key string, e store.Episode) error {
	wrap := func(err error) error { return fmt.Errorf("sqlite: set notification episode %s: %w", key, err) }
	if key == "" {
		return wrap(errors.New("empty key"))
	}
	if err := checkTime("started_at", e.StartedAt); err != nil {
		return wrap(err)
	}
	if err := checkTime("sent_at", e.SentAt); err != nil {
		return wrap(err)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO notify_episodes (key, started_at, run_id, sent_at)
			VALUES (?, ?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET started_at = excluded.started_at,
				run_id = excluded.run_id, sent_at = excluded.sent_at`,
			key, timeArg(e.StartedAt), e.RunID, timeArg(e.SentAt)); err != nil {
			return wrap(err)
		}
		return nil
	})
}

// EndEpisode closes the episode key, if it is open.
func (s *Store) EndEpisode(ctx context.Context, key string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM notify_episodes WHERE key = ?`, key); err != nil {
			return fmt.Errorf("sqlite: end notification episode %s: %w", key, err)
		}
		return nil
	})
}
