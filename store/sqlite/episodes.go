package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

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

// Value returns what SetValue last kept under key, and when.
func (s *Store) Value(ctx context.Context, key string) (string, time.Time, error) {
	var value string
	var at sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT value, at FROM kept_values WHERE key = ?`, key).Scan(&value, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sqlite: read kept value %s: %w", key, err)
	}
	return value, timeOf(at), nil
}

// SetValue keeps value under key.
func (s *Store) SetValue(ctx context.Context, key, value string) error {
	if err := store.CheckValue(key, value); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO kept_values (key, value, at) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, at = excluded.at`,
			key, value, timeArg(time.Now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: keep value %s: %w", key, err)
	}
	return nil
}
