// Package postgres is the shared store: one PostgreSQL database that
// several seatsync processes (replicas) use at once, through
// github.com/jackc/pgx/v5 and its pool.
//
// Write transactions are serialised across processes by a
// transaction-level advisory lock that each takes first (see write), which
// is what makes a seat check inside WithTx race-free. Large applies write
// through COPY in the background while the transaction goes on (see tx).
//
// The connection string is a libpq one (URL or key=value), so its TLS
// settings are libpq's: sslmode (verify-full in production), sslrootcert,
// sslcert and sslkey. It is a secret: this package never puts it, or its
// password, in an error.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/seatsync/seatsync/model"
	"github.com/seatsync/seatsync/store"
)

// Store is a store.Store on one PostgreSQL database. It is safe for
// concurrent use.
type Store struct {
	// Elector elects the one serve process of those sharing the
	// database that runs the schedules (leader.go).
	*Elector

	pool *pgxpool.Pool
	// writer is a one-slot semaphore held for the whole of a write
	// transaction, so this process's writers queue in Go and hold one
	// connection between them, not one each, while they wait.
	writer chan struct{}
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Elector = (*Store)(nil)
)

// Open connects to the database dsn names and brings its schema up to
// date. It fails if the schema is newer than this binary knows. log (nil
// for none) hears of the leader election.
func Open(ctx context.Context, dsn string, log *zap.Logger) (*Store, error) {
	ms, err := migrations()
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	s, err := open(ctx, dsn, ms)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	s.Elector = NewElectorConfig(s.pool.Config().ConnConfig, log)
	return s, nil
}

func open(ctx context.Context, dsn string, ms []migration) (*Store, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, errors.New("postgres: open: no connection string (store.dsn) given")
	}
	// pgx's own errors redact the password of a connection string they
	// cannot parse, and name only host, user and database otherwise.
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	where := fmt.Sprintf("%s/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Database)
	// Every value seatsync writes and reads is UTC.
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	s := &Store{pool: pool, writer: make(chan struct{}, 1)}
	if err := migrate(ctx, pool, ms); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	return s, nil
}

// Close closes the pool's connections.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// profileCols are the columns every profile read selects, in the order
// profileScanner scans them.
const profileCols = `id, version, username, email, given_name, family_name, display_name, title,
	department, groups, attributes, area, state, block_reason, source, external_id, queued_at,
	activated_at, blocked_at, created_at, updated_at`

// profileScanner scans profileCols into one profile, reusing its
// destinations from row to row.
type profileScanner struct {
	p             model.Profile
	attrs         []byte
	state, reason string
	times         [5]pgtype.Timestamptz
	dest          []any
}

func newProfileScanner() *profileScanner {
	s := &profileScanner{}
	p := &s.p
	s.dest = []any{&p.ID, &p.Version, &p.Username, &p.Email, &p.GivenName, &p.FamilyName,
		&p.DisplayName, &p.Title, &p.Department, &p.Groups, &s.attrs, &p.Area, &s.state, &s.reason,
		&p.Source, &p.ExternalID, &s.times[0], &s.times[1], &s.times[2], &s.times[3], &s.times[4]}
	return s
}

func (s *profileScanner) scan(row pgx.Row) (model.Profile, error) {
	s.p.Groups, s.attrs = nil, nil
	if err := row.Scan(s.dest...); err != nil {
		return model.Profile{}, err
	}
	p := s.p
	p.State, p.BlockReason = model.State(s.state), model.Reason(s.reason)
	p.QueuedAt, p.ActivatedAt, p.BlockedAt = timeOf(s.times[0]), timeOf(s.times[1]), timeOf(s.times[2])
	p.CreatedAt, p.UpdatedAt = timeOf(s.times[3]), timeOf(s.times[4])
	var err error
	if p.Attributes, err = decodeAttributes(s.attrs); err != nil {
		return model.Profile{}, fmt.Errorf("profile %s: %w", p.Username, err)
	}
	return p, nil
}

// queryProfiles reads the profiles q selects (profileCols).
func queryProfiles(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, out []model.Profile, sql string, args ...any) ([]model.Profile, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ps := newProfileScanner()
	for rows.Next() {
		p, err := ps.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Profiles returns every profile, ordered by username compared
// case-insensitively: by username_fold, model.FoldUsername's output, in
// byte order (COLLATE "C").
func (s *Store) Profiles(ctx context.Context) ([]model.Profile, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM profiles`).Scan(&n); err != nil {
		return nil, fmt.Errorf("postgres: list profiles: %w", err)
	}
	out, err := queryProfiles(ctx, s.pool, make([]model.Profile, 0, n),
		`SELECT `+profileCols+` FROM profiles ORDER BY username_fold`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list profiles: %w", err)
	}
	return out, nil
}

// Profile returns one profile by username, compared case-insensitively.
func (s *Store) Profile(ctx context.Context, username string) (model.Profile, error) {
	row := s.pool.QueryRow(ctx, `SELECT `+profileCols+` FROM profiles WHERE username_fold = $1`,
		model.FoldUsername(username))
	p, err := newProfileScanner().scan(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return model.Profile{}, fmt.Errorf("postgres: profile %s: %w", username, store.ErrNotFound)
	}
	if err != nil {
		return model.Profile{}, fmt.Errorf("postgres: profile %s: %w", username, err)
	}
	return p, nil
}

// Queue returns the profiles of areas blocked for license, in queue order:
// QueuedAt (a zero QueuedAt first), then username.
func (s *Store) Queue(ctx context.Context, areas []string) ([]model.Profile, error) {
	out, err := queryProfiles(ctx, s.pool, nil, `SELECT `+profileCols+` FROM profiles
		WHERE area = ANY($1) AND state = $2 AND block_reason = $3
		ORDER BY queued_at NULLS FIRST, username_fold`,
		nonNil(areas), string(model.Blocked), string(model.ReasonLicense))
	if err != nil {
		return nil, fmt.Errorf("postgres: read queue: %w", err)
	}
	return out, nil
}

// nonNil makes a nil list an empty array rather than NULL, so that
// `= ANY` finds nothing instead of NULL.
func nonNil(vs []string) []string {
	if vs == nil {
		return []string{}
	}
	return vs
}

// AcquireLock takes the run lock for holder until now+ttl, or renews it if
// holder has it already.
func (s *Store) AcquireLock(ctx context.Context, holder string, ttl time.Duration) error {
	return s.takeLock(ctx, "", holder, ttl)
}

// TakeOverLock gives the run lock to holder if from holds it, expired or
// not; see store.Store.
func (s *Store) TakeOverLock(ctx context.Context, from, holder string, ttl time.Duration) error {
	if from == "" {
		return fmt.Errorf("postgres: take over run lock for %s: empty previous holder", holder)
	}
	return s.takeLock(ctx, from, holder, ttl)
}

// takeLock takes the lock for holder when it is free, expired, holder's
// own, or (with from set) from's. Expiry is judged by the database's
// clock, which every replica shares.
func (s *Store) takeLock(ctx context.Context, from, holder string, ttl time.Duration) error {
	if holder == "" {
		return errors.New("postgres: acquire run lock: empty holder")
	}
	if ttl <= 0 {
		return fmt.Errorf("postgres: acquire run lock for %s: ttl %s is not positive", holder, ttl)
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		var other string
		var expires time.Time
		var live bool
		err := tx.QueryRow(ctx, `SELECT holder, expires_at, expires_at > clock_timestamp() FROM run_lock WHERE id = 1`).
			Scan(&other, &expires, &live)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return fmt.Errorf("postgres: acquire run lock for %s: %w", holder, err)
		case other != holder && other != from && live:
			return fmt.Errorf("postgres: acquire run lock for %s: %w", holder,
				&store.LockedError{Holder: other, Expires: expires.UTC()})
		}
		if _, err := tx.Exec(ctx, `INSERT INTO run_lock (id, holder, expires_at)
			VALUES (1, $1, clock_timestamp() + $2 * interval '1 microsecond')
			ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at`,
			holder, ttl.Microseconds()); err != nil {
			return fmt.Errorf("postgres: acquire run lock for %s: %w", holder, err)
		}
		return nil
	})
}

// ReleaseLock gives the run lock up if holder has it.
func (s *Store) ReleaseLock(ctx context.Context, holder string) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM run_lock WHERE id = 1 AND holder = $1`, holder); err != nil {
			return fmt.Errorf("postgres: release run lock for %s: %w", holder, err)
		}
		return nil
	})
}
