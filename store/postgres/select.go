package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// selectSQL reads the profiles a store.Selection names, each part a
// lookup in an index.
const selectSQL = `SELECT ` + profileCols + ` FROM profiles WHERE id IN (
	SELECT p.id FROM unnest($1::text[], $2::text[]) AS k(source, external_id)
		JOIN profiles AS p ON p.source = k.source AND p.external_id = k.external_id AND p.source <> ''
	UNION ALL
	SELECT id FROM profiles WHERE username_fold = ANY($3)
	UNION ALL
	SELECT id FROM profiles WHERE area = ANY($4) AND state = 'blocked' AND block_reason = 'license'
	UNION ALL
	SELECT p.id FROM unnest($5::text[], $6::timestamptz[]) AS l(source, before)
		JOIN profiles AS p ON p.source = l.source AND p.area = ANY($4) AND p.state = 'blocked'
		AND p.block_reason = 'left_source' AND p.blocked_at <= l.before
) ORDER BY username_fold`

// countActiveSQL counts the seats a pool's areas ($1) hold: their active
// profiles but the exempt ones ($2, folded).
// It reads a few rows of profile_counts, then looks up the few exempt
// usernames, so a seat check reads no more for a million profiles than
// for ten.
const countActiveSQL = `SELECT
	(SELECT coalesce(sum(n), 0) FROM profile_counts WHERE area = ANY($1) AND active)
	- (SELECT count(*) FROM profiles WHERE username_fold = ANY($2) AND area = ANY($1) AND state = 'active')`

// Select returns the profiles sel names; see store.Store.
func (s *Store) Select(ctx context.Context, sel store.Selection) ([]model.Profile, error) {
	sources, ids := make([]string, len(sel.Keys)), make([]string, len(sel.Keys))
	for i, k := range sel.Keys {
		sources[i], ids[i] = k.Source, k.ExternalID
	}
	folded := make([]string, len(sel.Usernames))
	for i, u := range sel.Usernames {
		folded[i] = model.FoldUsername(u)
	}
	leftSources, leftBefore := []string{}, []time.Time{}
	for src, before := range sel.Left {
		leftSources, leftBefore = append(leftSources, src), append(leftBefore, before)
	}
	out, err := queryProfiles(ctx, s.pool, make([]model.Profile, 0, len(sel.Keys)+len(sel.Usernames)), selectSQL,
		sources, ids, folded, nonNil(sel.Areas), leftSources, leftBefore)
	if err != nil {
		return nil, fmt.Errorf("postgres: select profiles: %w", err)
	}
	return out, nil
}

// Tally counts what req asks for; see store.Store.
func (s *Store) Tally(ctx context.Context, req store.TallyRequest) (store.Tally, error) {
	t, err := store.TallyWith(req, func(areas, exempt []string) (n int, err error) {
		err = s.pool.QueryRow(ctx, countActiveSQL, nonNil(areas), exempt).Scan(&n)
		return n, err
	}, func(source string) (n int, err error) {
		err = s.pool.QueryRow(ctx, `SELECT coalesce(sum(n), 0) FROM profile_counts WHERE source = $1 AND source <> ''`, source).Scan(&n)
		return n, err
	})
	if err != nil {
		return store.Tally{}, fmt.Errorf("postgres: %w", err)
	}
	return t, nil
}
