package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/seatsync/seatsync/store"
)

// Episodes returns the open notification episodes by key.
func (s *Store) Episodes(ctx context.Context) (map[string]store.Episode, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, started_at, run_id, sent_at FROM notify_episodes`)
	if err != nil {
		return nil, fmt.Errorf("postgres: read notification episodes: %w", err)
	}
	defer rows.Close()
	out := map[string]store.Episode{}
	for rows.Next() {
		var key string
		var e store.Episode
		var started, sent pgtype.Timestamptz
		if err := rows.Scan(&key, &started, &e.RunID, &sent); err != nil {
			return nil, fmt.Errorf("postgres: read notification episodes: %w", err)
		}
		e.StartedAt, e.SentAt = timeOf(started), timeOf(sent)
		out[key] = e
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read notification episodes: %w", err)
	}
	return out, nil
}

// SetEpisode opens the episode key or replaces it.
func (s *Store) SetEpisode(ctx context.Context, key string, e store.Episode) error {
	wrap := func(err error) error { return fmt.Errorf("postgres: set notification episode %s: %w", key, err) }
	if key == "" {
		return wrap(errors.New("empty key"))
	}
	if err := checkTime("started_at", e.StartedAt); err != nil {
		return wrap(err)
	}
	if err := checkTime("sent_at", e.SentAt); err != nil {
		return wrap(err)
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO notify_episodes (key, started_at, run_id, sent_at)
			VALUES ($1, $2, $3, $4)
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
	return s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM notify_episodes WHERE key = $1`, key); err != nil {
			return fmt.Errorf("postgres: end notification episode %s: %w", key, err)
		}
		return nil
	})
}

// Value returns what SetValue last kept under key, and when.
func (s *Store) Value(ctx context.Context, key string) (string, time.Time, error) {
	var value string
	var at pgtype.Timestamptz
	err := s.pool.QueryRow(ctx, `SELECT value, at FROM kept_values WHERE key = $1`, key).Scan(&value, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("postgres: read kept value %s: %w", key, err)
	}
	return value, timeOf(at), nil
}

// SetValue keeps value under key.
func (s *Store) SetValue(ctx context.Context, key, value string) error {
	if err := store.CheckValue(key, value); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO kept_values (key, value, at) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, at = excluded.at`,
			key, value, time.Now())
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: keep value %s: %w", key, err)
	}
	return nil
}
