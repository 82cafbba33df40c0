package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The schema's history is the files in migrations/, NNNN_name.sql, applied
// in order. A released file is never edited: a schema change is a new file
// at the end.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations reads the embedded schema history.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		base := strings.TrimSuffix(e.Name(), ".sql")
		num, name, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v != len(out)+1 {
			return nil, fmt.Errorf("migration file %s: want the number %04d", e.Name(), len(out)+1)
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: strings.ReplaceAll(name, "_", " "), sql: string(b)})
	}
	return out, nil
}

// Advisory lock keys. PostgreSQL's advisory locks are one namespace per
// database, so seatsync's all use the two-key form with lockClass first.
const (
	lockClass = 0x5ea75 // "seatsync"
	// lockWrite is held (transaction-level) by every write transaction:
	// see Store.write.
	lockWrite = 1
	// lockMigrate is held (session-level) while the schema is brought up
	// to date, so replicas that start together migrate one at a time.
	lockMigrate = 2
)

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    int         PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// migrate brings the database up to the last of ms, under the migration
// lock: a replica that starts while another migrates waits, then finds
// the work done. It refuses a schema newer than ms knows.
func migrate(ctx context.Context, pool *pgxpool.Pool, ms []migration) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, lockClass, lockMigrate); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	defer func() {
		// A session lock outlives a failed statement; give it back on a
		// context of its own, so a cancelled open does not keep it.
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, $2)`, lockClass, lockMigrate); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) // closing the session frees it
		}
	}()
	if _, err := conn.Exec(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var current int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].version
	}
	if current > latest {
		return fmt.Errorf("the database schema is version %d, newer than this seatsync knows (%d): upgrade seatsync, or restore a backup made for this version", current, latest)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate schema to version %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}
