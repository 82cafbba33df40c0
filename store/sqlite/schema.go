package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// A migration brings the schema from version-1 to version. Migrations run
// in order on Open, each in its own write transaction, and are never
// edited once released: a schema change is a new migration at the end.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations is the schema history this binary knows.
func migrations() []migration {
	return []migration{
		{version: 1, name: "profiles, run lock, audit log and runs", sql: schemaV1},
		{version: 2, name: "notification episodes", sql: schemaV2},
		{version: 3, name: "compressed run reports", sql: schemaV3},
		{version: 4, name: "targets: pending pushes and links", sql: schemaV4},
		{version: 5, name: "targets: what a client learnt of its application", sql: schemaV5},
		{version: 6, name: "audit log by username", sql: schemaV6},
		{version: 7, name: "values kept between runs", sql: schemaV7},
		{version: 8, name: "seat history", sql: schemaV8},
		{version: 9, name: "product grants", sql: schemaV9},
		{version: 10, name: "profile counts", sql: schemaV10},
	}
}

// Times are INTEGER unix nanoseconds (UTC), NULL for the zero time.
// groups and attributes are JSON text, NULL for nil. Profile IDs are
// AUTOINCREMENT so that a deleted profile's ID is never given to a new
// one (a stale plan could otherwise update the wrong profile); audit
// entries are never deleted from the end, so a plain rowid keeps them in
// order without that cost.
const schemaV1 = `
CREATE TABLE profiles (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	version       INTEGER NOT NULL,
	username      TEXT    NOT NULL CHECK (username <> ''),
	username_fold TEXT    NOT NULL,
	email         TEXT    NOT NULL DEFAULT '',
	given_name    TEXT    NOT NULL DEFAULT '',
	family_name   TEXT    NOT NULL DEFAULT '',
	display_name  TEXT    NOT NULL DEFAULT '',
	title         TEXT    NOT NULL DEFAULT '',
	department    TEXT    NOT NULL DEFAULT '',
	groups        TEXT,
	attributes    TEXT,
	area          TEXT    NOT NULL,
	state         TEXT    NOT NULL CHECK (state IN ('active', 'blocked')),
	block_reason  TEXT    NOT NULL DEFAULT '',
	source        TEXT    NOT NULL DEFAULT '',
	external_id   TEXT    NOT NULL DEFAULT '',
	queued_at     INTEGER,
	activated_at  INTEGER,
	blocked_at    INTEGER,
	created_at    INTEGER,
	updated_at    INTEGER
);
CREATE UNIQUE INDEX profiles_username_fold ON profiles (username_fold);
CREATE UNIQUE INDEX profiles_source_external_id ON profiles (source, external_id) WHERE source <> '';
CREATE INDEX profiles_queue ON profiles (area, state, block_reason, queued_at);

CREATE TABLE run_lock (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	holder     TEXT    NOT NULL,
	expires_at INTEGER NOT NULL
);

CREATE TABLE audit (
	seq      INTEGER PRIMARY KEY,
	run_id   TEXT    NOT NULL,
	at       INTEGER,
	actor    TEXT    NOT NULL,
	action   TEXT    NOT NULL,
	username TEXT    NOT NULL,
	reason   TEXT    NOT NULL DEFAULT '',
	before   TEXT,
	after    TEXT
);
CREATE INDEX audit_run_id ON audit (run_id, seq);

CREATE TABLE runs (
	id          TEXT PRIMARY KEY,
	mode        TEXT NOT NULL,
	result      TEXT NOT NULL,
	error       TEXT NOT NULL DEFAULT '',
	started_at  INTEGER,
	finished_at INTEGER,
	sources     TEXT,
	summary     TEXT,
	report      TEXT
);
CREATE INDEX runs_started_at ON runs (started_at);
`

// schemaV2 keeps the open notification episodes (store.Episode), one row
// per key; ending an episode deletes its row.
const schemaV2 = `
CREATE TABLE notify_episodes (
	key        TEXT PRIMARY KEY CHECK (key <> ''),
	started_at INTEGER,
	run_id     TEXT NOT NULL DEFAULT '',
	sent_at    INTEGER
);
`

// schemaV3 adds report_gzip, the run's report as gzip-compressed JSON
// (see gzipReport). SaveRun writes it and leaves report NULL; runs saved
// before keep their report as text in report, and read back as they are.
// A seatsync that predates this version refuses the file rather than show
// a compressed report as text.
const schemaV3 = `
ALTER TABLE runs ADD COLUMN report_gzip BLOB;
`

// schemaV4 holds what seatsync knows of its targets. target_pending is
// the outbox of pushes: one row per target and profile, whatever how many
// changes it carries, since a push sends the profile as it is; gone holds
// a deleted profile's last state. target_links ties profiles (deleted ones
// too) to their users in the application. targets lists the targets that
// were seeded with every profile once.
const schemaV4 = `
CREATE TABLE target_pending (
	target      TEXT    NOT NULL,
	profile_id  INTEGER NOT NULL,
	seq         INTEGER NOT NULL,
	gone        TEXT,
	marked_at   INTEGER,
	attempts    INTEGER NOT NULL DEFAULT 0,
	last_status INTEGER NOT NULL DEFAULT 0,
	last_error  TEXT    NOT NULL DEFAULT '',
	failed      INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (target, profile_id)
);
CREATE INDEX target_pending_seq ON target_pending (target, seq);
CREATE TABLE target_links (
	target     TEXT    NOT NULL,
	profile_id INTEGER NOT NULL,
	app_id     TEXT    NOT NULL CHECK (app_id <> ''),
	etag       TEXT    NOT NULL DEFAULT '',
	active     INTEGER NOT NULL,
	hash       TEXT    NOT NULL DEFAULT '',
	username   TEXT    NOT NULL DEFAULT '',
	gone       INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (target, profile_id)
);
CREATE UNIQUE INDEX target_links_app_id ON target_links (target, app_id);
CREATE TABLE targets (
	name      TEXT PRIMARY KEY,
	seeded_at INTEGER
);
CREATE TABLE target_seq (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	seq INTEGER NOT NULL
);
INSERT INTO target_seq (id, seq) VALUES (1, 0);
`

// schemaV5 keeps what a target's client learnt of its application (the
// features its /ServiceProviderConfig gave), so a run need not ask again.
const schemaV5 = `
ALTER TABLE targets ADD COLUMN memory TEXT NOT NULL DEFAULT '';
ALTER TABLE targets ADD COLUMN memory_at INTEGER;
`

// schemaV6 indexes the audit log by username, case-insensitively, for
// AuditMatching's Username (seatsync audit --user). NOCASE folds ASCII
// only; a non-ASCII username is matched in Go (see AuditMatching).
const schemaV6 = `
CREATE INDEX audit_username ON audit (username COLLATE NOCASE, seq);
`

// schemaV7 keeps small values by key between runs (Store.Value).
const schemaV7 = `
CREATE TABLE kept_values (
	key   TEXT PRIMARY KEY CHECK (key <> ''),
	value TEXT NOT NULL,
	at    INTEGER NOT NULL
);
`

// schemaV8 keeps the seat history (Store.SaveSeats): one row per run and
// pool (kind 'pool'; other kinds, such as products, fit beside them).
// limit_n is NULL for an unlimited pool.
const schemaV8 = `
CREATE TABLE seat_history (
	run_id    TEXT    NOT NULL,
	at        INTEGER NOT NULL,
	kind      TEXT    NOT NULL CHECK (kind <> ''),
	name      TEXT    NOT NULL,
	limit_n   INTEGER,
	used      INTEGER NOT NULL,
	queued    INTEGER NOT NULL,
	remaining INTEGER NOT NULL,
	overage   INTEGER NOT NULL,
	PRIMARY KEY (run_id, kind, name)
);
CREATE INDEX seat_history_at ON seat_history (at);
`

// schemaV9 keeps the product grants (store.Grant): one row per profile
// and product, held (granted) or waiting (queued). The profile row's
// format is left as it is; Tx.Delete deletes a profile's grants with it.
const schemaV9 = `
CREATE TABLE product_grants (
	profile_id INTEGER NOT NULL,
	product    TEXT    NOT NULL CHECK (product <> ''),
	state      TEXT    NOT NULL CHECK (state IN ('granted', 'queued')),
	since      INTEGER,
	manual     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (profile_id, product)
);
CREATE INDEX product_grants_product ON product_grants (product, state);
`

// schemaV10 keeps the profiles counted by area, owner source and whether
// they are active (store.CountKey), so that a seat count reads a few rows
// whatever the number of profiles: an incremental run at a million
// profiles must not count them. The transactions keep it (tx.counts), in
// the same commit as the profiles; recountSQL rebuilds it from them.
const schemaV10 = `
CREATE TABLE profile_counts (
	area   TEXT    NOT NULL,
	source TEXT    NOT NULL,
	active INTEGER NOT NULL,
	n      INTEGER NOT NULL,
	PRIMARY KEY (area, source, active)
) WITHOUT ROWID;
` + recountSQL

// recountSQL counts the profiles into profile_counts from scratch.
const recountSQL = `
DELETE FROM profile_counts;
INSERT INTO profile_counts (area, source, active, n)
	SELECT area, source, state = 'active', count(*) FROM profiles GROUP BY area, source, state = 'active';
`

const createMigrationsTable = `
CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TEXT NOT NULL
)`

func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// migrate brings the database up to the last of ms. It refuses a database
// whose schema is newer than ms knows. Two processes opening one database
// at once are fine: each migration re-reads the version inside its own
// write transaction.
func migrate(ctx context.Context, db *sql.DB, ms []migration) error {
	if _, err := db.ExecContext(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].version
	}
	current, err := schemaVersion(ctx, db)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > latest {
		return fmt.Errorf("the database schema is version %d, newer than this seatsync knows (%d): upgrade seatsync, or restore a backup made for this version", current, latest)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		if err := applyMigration(ctx, db, m); err != nil {
			return fmt.Errorf("migrate schema to version %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, m migration) error {
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	current, err := schemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	if current >= m.version {
		return nil // another process got here first
	}
	if current != m.version-1 {
		return fmt.Errorf("schema is at version %d, expected %d", current, m.version-1)
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	return tx.Commit()
}
