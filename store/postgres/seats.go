package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/seatsync/seatsync/store"
)

// SaveSeats records a run's seats, replacing what was recorded for runID.
func (s *Store) SaveSeats(ctx context.Context, runID string, at time.Time, rows []store.SeatRow) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM seat_history WHERE run_id = $1`, runID); err != nil {
			return err
		}
		for _, r := range rows {
			r.RunID, r.At = runID, at
			if err := insertSeatRow(ctx, tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: record the seats of run %s: %w", runID, err)
	}
	return nil
}

func insertSeatRow(ctx context.Context, tx pgx.Tx, r store.SeatRow) error {
	var limit any = r.Limit
	if r.Unlimited {
		limit = nil
	}
	if err := checkTime("seat history time", r.At); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO seat_history
		(run_id, at, kind, name, limit_n, used, queued, remaining, overage) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		r.RunID, r.At, r.Kind, r.Name, limit, r.Used, r.Queued, r.Remaining, r.Overage)
	if err != nil {
		return fmt.Errorf("%s %s: %w", r.Kind, r.Name, err)
	}
	return nil
}

// SeatHistory returns the seat rows recorded at or after since, oldest
// first.
func (s *Store) SeatHistory(ctx context.Context, since time.Time) ([]store.SeatRow, error) {
	rows, err := s.pool.Query(ctx, `SELECT run_id, at, kind, name, limit_n, used, queued, remaining, overage
		FROM seat_history WHERE $1::timestamptz IS NULL OR at >= $1 ORDER BY at, kind, name`, timeArg(since))
	if err != nil {
		return nil, fmt.Errorf("postgres: read the seat history: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.SeatRow, error) {
		var r store.SeatRow
		var at pgtype.Timestamptz
		var limit pgtype.Int4
		err := row.Scan(&r.RunID, &at, &r.Kind, &r.Name, &limit, &r.Used, &r.Queued, &r.Remaining, &r.Overage)
		r.At = timeOf(at)
		r.Limit, r.Unlimited = int(limit.Int32), !limit.Valid
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: read the seat history: %w", err)
	}
	if out == nil {
		out = []store.SeatRow{}
	}
	return out, nil
}
