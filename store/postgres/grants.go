package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/seatsync/seatsync/store"
)

const grantColumns = `profile_id, product, state, since, manual`

func scanGrants(rows pgx.Rows) ([]store.Grant, error) {
	defer rows.Close()
	var out []store.Grant
	for rows.Next() {
		var g store.Grant
		var since pgtype.Timestamptz
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
	rows, err := s.pool.Query(ctx, `SELECT `+grantColumns+` FROM product_grants ORDER BY product, profile_id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: read product grants: %w", err)
	}
	out, err := scanGrants(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: read product grants: %w", err)
	}
	return out, nil
}

// CountGrants counts the holders of product, seeing the transaction's
// writes.
func (t *tx) CountGrants(ctx context.Context, product string) (int, error) {
	wrap := func(err error) error { return fmt.Errorf("postgres: count grants of %s: %w", product, err) }
	if err := t.begin(ctx); err != nil {
		return 0, wrap(err)
	}
	defer t.mu.Unlock()
	if err := t.grantReady(ctx); err != nil {
		return 0, wrap(err)
	}
	var n int
	if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM product_grants WHERE product = $1 AND state = 'granted'`,
		product).Scan(&n); err != nil {
		t.err = err
		return 0, wrap(err)
	}
	return n, nil
}

// ProfileGrants returns one profile's grants, by product.
func (t *tx) ProfileGrants(ctx context.Context, profileID int64) ([]store.Grant, error) {
	wrap := func(err error) error { return fmt.Errorf("postgres: read grants of profile %d: %w", profileID, err) }
	if err := t.begin(ctx); err != nil {
		return nil, wrap(err)
	}
	defer t.mu.Unlock()
	if err := t.grantReady(ctx); err != nil {
		return nil, wrap(err)
	}
	rows, err := t.tx.Query(ctx, `SELECT `+grantColumns+` FROM product_grants WHERE profile_id = $1 ORDER BY product`, profileID)
	if err != nil {
		t.err = err
		return nil, wrap(err)
	}
	out, err := scanGrants(rows)
	if err != nil {
		t.err = err
		return nil, wrap(err)
	}
	return out, nil
}

// SetGrant writes g over the profile's grant of the same product, if the
// profile exists and is active: one statement, so a large apply's grants
// cost a round trip each. It waits for the buffered profiles only when
// there are some (the grant must see its profile); buffered audit entries
// and pushes go on waiting for the next flush.
func (t *tx) SetGrant(ctx context.Context, g store.Grant) error {
	wrap := func(err error) error {
		return fmt.Errorf("postgres: grant %s to profile %d: %w", g.Product, g.ProfileID, err)
	}
	if err := store.CheckGrant(g); err != nil {
		return wrap(err)
	}
	if err := checkTime("since", g.Since); err != nil {
		return wrap(err)
	}
	if err := t.begin(ctx); err != nil {
		return wrap(err)
	}
	defer t.mu.Unlock()
	if err := t.grantReady(ctx); err != nil {
		return wrap(err)
	}
	tag, err := t.tx.Exec(ctx, `INSERT INTO product_grants (`+grantColumns+`)
		SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM profiles WHERE id = $1 AND state = 'active')
		ON CONFLICT (profile_id, product) DO UPDATE SET state = excluded.state, since = excluded.since,
		manual = excluded.manual`, g.ProfileID, g.Product, g.State, timeArg(g.Since), g.Manual)
	if err != nil {
		t.err = err
		return wrap(err)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	var state string
	err = t.tx.QueryRow(ctx, `SELECT state FROM profiles WHERE id = $1`, g.ProfileID).Scan(&state)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return wrap(store.ErrNotFound)
	case err != nil:
		t.err = err
		return wrap(err)
	}
	return wrap(store.ErrNotActive)
}

// grantReady readies the connection for a grant statement: the
// background flush is done, and buffered profiles (which a grant may
// refer to) are sent. Grants themselves are never buffered.
func (t *tx) grantReady(ctx context.Context) error {
	if len(t.buf.profiles) > 0 {
		return t.syncLocked(ctx)
	}
	t.wait()
	return t.err
}

// DeleteGrant removes the profile's grant of product.
func (t *tx) DeleteGrant(ctx context.Context, profileID int64, product string) error {
	wrap := func(err error) error {
		return fmt.Errorf("postgres: recall %s from profile %d: %w", product, profileID, err)
	}
	if err := t.begin(ctx); err != nil {
		return wrap(err)
	}
	defer t.mu.Unlock()
	if err := t.grantReady(ctx); err != nil {
		return wrap(err)
	}
	if _, err := t.tx.Exec(ctx, `DELETE FROM product_grants WHERE profile_id = $1 AND product = $2`, profileID, product); err != nil {
		t.err = err
		return wrap(err)
	}
	return nil
}

// importGrants writes a snapshot's grants.
func importGrants(ctx context.Context, tx pgx.Tx, grants []store.Grant) error {
	for _, g := range grants {
		if err := store.CheckGrant(g); err != nil {
			return fmt.Errorf("grant %s to profile %d: %w", g.Product, g.ProfileID, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO product_grants (`+grantColumns+`) VALUES ($1, $2, $3, $4, $5)`,
			g.ProfileID, g.Product, g.State, timeArg(g.Since), g.Manual); err != nil {
			return fmt.Errorf("grant %s to profile %d: %w", g.Product, g.ProfileID, err)
		}
	}
	return nil
}
