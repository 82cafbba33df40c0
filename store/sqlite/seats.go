package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/seatsync/seatsync/store"
)

// SaveSeats records a run's seats, replacing what was recorded for runID.
func (s *Store) SaveSeats(ctx context.Context, runID string, at time.Time, rows []store.SeatRow) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM seat_history WHERE run_id = ?`, runID); err != nil {
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
		return fmt.Errorf("sqlite: record the seats of run %s: %w", runID, err)
	}
	return nil
}

func insertSeatRow(ctx context.Context, tx *sql.Tx, r store.SeatRow) error {
	var limit any = r.Limit
	if r.Unlimited {
		limit = nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO seat_history
		(run_id, at, kind, name, limit_n, used, queued, remaining, overage) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.RunID, r.At.UnixNano(), r.Kind, r.Name, limit, r.Used, r.Queued, r.Remaining, r.Overage)
	if err != nil {
		return fmt.Errorf("%s %s: %w", r.Kind, r.Name, err)
	}
	return nil
}

// SeatHistory returns the seat rows recorded at or after since, oldest
// first.
func (s *Store) SeatHistory(ctx context.Context, since time.Time) ([]store.SeatRow, error) {
	var from int64 // every row for a zero since
	if !since.IsZero() {
		from = since.UnixNano()
	}
	rows, err := s.db.QueryContext(ctx, `SELECT run_id, at, kind, name, limit_n, used, queued, remaining, overage
		FROM seat_history WHERE at >= ? ORDER BY at, kind, name`, from)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read the seat history: %w", err)
	}
	defer rows.Close()
	out := []store.SeatRow{}
	for rows.Next() {
		var r store.SeatRow
		var at int64
		var limit sql.NullInt64
		if err := rows.Scan(&r.RunID, &at, &r.Kind, &r.Name, &limit, &r.Used, &r.Queued, &r.Remaining, &r.Overage); err != nil {
			return nil, fmt.Errorf("sqlite: read the seat history: %w", err)
		}
		r.At = time.Unix(0, at).UTC()
		r.Limit, r.Unlimited = int(limit.Int64), !limit.Valid
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: read the seat history: %w", err)
	}
	return out, nil
}
