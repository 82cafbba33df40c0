package sqlite

import (
	"context"
	"fmt"

	"github.com/seatsync/seatsync/internal/jsontext"
	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// selectSQL reads the profiles a store.Selection names. Each part is a
// lookup in an index (the json list drives the loop: CROSS JOIN keeps
// SQLite from turning it around into a scan of profiles).
const selectSQL = `SELECT ` + profileRecord + ` FROM profiles WHERE id IN (
	SELECT p.id FROM json_each(?1) AS k CROSS JOIN profiles AS p
		WHERE p.source = k.value ->> 0 AND p.external_id = k.value ->> 1 AND p.source <> ''
	UNION ALL
	SELECT p.id FROM json_each(?2) AS u CROSS JOIN profiles AS p WHERE p.username_fold = u.value
	UNION ALL
	SELECT id FROM profiles
		WHERE area IN (SELECT value FROM json_each(?3)) AND state = 'blocked' AND block_reason = 'license'
	UNION ALL
	SELECT p.id FROM json_each(?4) AS l CROSS JOIN profiles AS p
		WHERE p.area IN (SELECT value FROM json_each(?3)) AND p.state = 'blocked' AND p.block_reason = 'left_source'
		AND p.source = l.key AND p.blocked_at <= l.value
) ORDER BY username_fold`

// Select returns the profiles sel names; see store.Store.
func (s *Store) Select(ctx context.Context, sel store.Selection) ([]model.Profile, error) {
	keys := []byte{'['}
	for i, k := range sel.Keys {
		if i > 0 {
			keys = append(keys, ',')
		}
		keys = jsontext.AppendStrings(keys, []string{k.Source, k.ExternalID}, false)
	}
	keys = append(keys, ']')
	folded := make([]string, len(sel.Usernames))
	for i, u := range sel.Usernames {
		folded[i] = model.FoldUsername(u)
	}
	left := []byte{'{'}
	first := true
	for src, before := range sel.Left {
		if !first {
			left = append(left, ',')
		}
		first = false
		left = jsontext.AppendString(left, src, false)
		left = fmt.Appendf(left, ":%d", before.UnixNano())
	}
	left = append(left, '}')
	rows, err := s.db.QueryContext(ctx, selectSQL, string(keys), jsonList(folded), jsonList(sel.Areas), string(left))
	if err != nil {
		return nil, fmt.Errorf("sqlite: select profiles: %w", err)
	}
	out, err := scanProfiles(rows, make([]model.Profile, 0, len(sel.Keys)+len(sel.Usernames)))
	if err != nil {
		return nil, fmt.Errorf("sqlite: select profiles: %w", err)
	}
	return out, nil
}

// Tally counts what req asks for; see store.Store.
func (s *Store) Tally(ctx context.Context, req store.TallyRequest) (store.Tally, error) {
	t, err := store.TallyWith(req, func(areas, exempt []string) (n int, err error) {
		err = s.db.QueryRowContext(ctx, countSQL, jsonList(areas), jsonList(exempt)).Scan(&n)
		return n, err
	}, func(source string) (n int, err error) {
		err = s.db.QueryRowContext(ctx, `SELECT ifnull(sum(n), 0) FROM profile_counts WHERE source = ? AND source <> ''`, source).Scan(&n)
		return n, err
	})
	if err != nil {
		return store.Tally{}, fmt.Errorf("sqlite: %w", err)
	}
	return t, nil
}
