package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

const grantColumns = `profile_id, product, state, since, manual`

func scanGrants(rows *sql.Rows) ([]store.Grant, error) {
	defer rows.Close()
	var out []store.Grant
	for rows.Next() {
		var g store.Grant
		var since sql.NullInt64
		if err := rows.Scan(&g.ProfileID, &g.Product, &g.State, &since, &g.Manual); err != nil {
			return nil, err
		}
		g.Since = timeOf(since)
		out = append(out, g)
	}
	return out, rows.Err()
}

// Grants returns every product grant, by product, then profile ID.
func (s *Store) Grants(ctx context.Context) ([]store.Grant, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+grantColumns+` FROM product_grants ORDER BY product, profile_id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read product grants: %w", err)
	}
	out, err := scanGrants(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read product grants: %w", err)
	}
	return out, nil
}

// CountGrants counts the holders of product.
func (t *tx) CountGrants(ctx context.Context, product string) (int, error) {
	ctx, err := t.lock(ctx)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count grants of %s: %w", product, err)
	}
	defer t.mu.Unlock()
	var n int
	if err := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM product_grants WHERE product = ? AND state = 'granted'`,
		product).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count grants of %s: %w", product, err)
	}
	return n, nil
}

// ProfileGrants returns one profile's grants, by product.
func (t *tx) ProfileGrants(ctx context.Context, profileID int64) ([]store.Grant, error) {
	ctx, err := t.lock(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read grants of profile %d: %w", profileID, err)
	}
	defer t.mu.Unlock()
	rows, err := t.tx.QueryContext(ctx, `SELECT `+grantColumns+` FROM product_grants WHERE profile_id = ? ORDER BY product`, profileID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read grants of profile %d: %w", profileID, err)
	}
	out, err := scanGrants(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read grants of profile %d: %w", profileID, err)
	}
	return out, nil
}

// SetGrant writes g over the profile's grant of the same product, if the
// profile exists and is active.
func (t *tx) SetGrant(ctx context.Context, g store.Grant) error {
	wrap := func(err error) error {
		return fmt.Errorf("sqlite: grant %s to profile %d: %w", g.Product, g.ProfileID, err)
	}
	if err := store.CheckGrant(g); err != nil {
		return wrap(err)
	}
	if err := checkTime("since", g.Since); err != nil {
		return wrap(err)
	}
	ctx, err := t.lock(ctx)
	if err != nil {
		return wrap(err)
	}
	defer t.mu.Unlock()
	exists, err := t.stmt(ctx, stmtGrantProfile, `SELECT state FROM profiles WHERE id = ?`)
	if err != nil {
		return wrap(err)
	}
	var state string
	err = exists.QueryRowContext(ctx, g.ProfileID).Scan(&state)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return wrap(store.ErrNotFound)
	case err != nil:
		return wrap(err)
	case state != string(model.Active):
		return wrap(store.ErrNotActive)
	}
	set, err := t.stmt(ctx, stmtGrantSet, `INSERT INTO product_grants (`+grantColumns+`) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (profile_id, product) DO UPDATE SET state = excluded.state, since = excluded.since,
		manual = excluded.manual`)
	if err == nil {
		_, err = set.ExecContext(ctx, g.ProfileID, g.Product, g.State, timeArg(g.Since), g.Manual)
	}
	if err != nil {
		return wrap(err)
	}
	return nil
}

// DeleteGrant removes the profile's grant of product.
func (t *tx) DeleteGrant(ctx context.Context, profileID int64, product string) error {
	ctx, err := t.lock(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: recall %s from profile %d: %w", product, profileID, err)
	}
	defer t.mu.Unlock()
	del, err := t.stmt(ctx, stmtGrantDelete, `DELETE FROM product_grants WHERE profile_id = ? AND product = ?`)
	if err == nil {
		_, err = del.ExecContext(ctx, profileID, product)
	}
	if err != nil {
		return fmt.Errorf("sqlite: recall %s from profile %d: %w", product, profileID, err)
	}
	return nil
}

// importGrant writes one grant of a snapshot.
func (t *tx) importGrant(ctx context.Context, g store.Grant) error {
	if err := store.CheckGrant(g); err != nil {
		return err
	}
	_, err := t.tx.ExecContext(ctx, `INSERT INTO product_grants (`+grantColumns+`) VALUES (?, ?, ?, ?, ?)`,
		g.ProfileID, g.Product, g.State, timeArg(g.Since), g.Manual)
	if err != nil {
		return fmt.Errorf("grant %s to profile %d: %w", g.Product, g.ProfileID, err)
	}
	return nil
}
