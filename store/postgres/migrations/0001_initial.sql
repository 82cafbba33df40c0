-- Version 1: everything the sqlite store's versions 1 to 7 hold.
--
-- Times are timestamptz (microseconds, UTC), NULL for the zero time.
-- Folded usernames (model.FoldUsername, computed by seatsync, not by the
-- database) are COLLATE "C", so comparisons and ORDER BY are byte order
-- whatever the database's default collation. Profile IDs come from a
-- sequence, which never gives a number twice: a deleted profile's ID is
-- not reused (a stale plan could otherwise update the wrong profile).

CREATE SEQUENCE profiles_id_seq;
CREATE TABLE profiles (
	id            bigint      PRIMARY KEY DEFAULT nextval('profiles_id_seq'),
	version       bigint      NOT NULL,
	username      text        NOT NULL CHECK (username <> ''),
	username_fold text        COLLATE "C" NOT NULL,
	email         text        NOT NULL DEFAULT '',
	given_name    text        NOT NULL DEFAULT '',
	family_name   text        NOT NULL DEFAULT '',
	display_name  text        NOT NULL DEFAULT '',
	title         text        NOT NULL DEFAULT '',
	department    text        NOT NULL DEFAULT '',
	groups        text[],
	attributes    jsonb,
	area          text        NOT NULL,
	state         text        NOT NULL CHECK (state IN ('active', 'blocked')),
	block_reason  text        NOT NULL DEFAULT '',
	source        text        NOT NULL DEFAULT '',
	external_id   text        NOT NULL DEFAULT '',
	queued_at     timestamptz,
	activated_at  timestamptz,
	blocked_at    timestamptz,
	created_at    timestamptz,
	updated_at    timestamptz
);
ALTER SEQUENCE profiles_id_seq OWNED BY profiles.id;
CREATE UNIQUE INDEX profiles_username_fold ON profiles (username_fold);
CREATE UNIQUE INDEX profiles_source_external_id ON profiles (source, external_id) WHERE source <> '';
CREATE INDEX profiles_queue ON profiles (area, state, block_reason, queued_at);

CREATE TABLE run_lock (
	id         int         PRIMARY KEY CHECK (id = 1),
	holder     text        NOT NULL,
	expires_at timestamptz NOT NULL
);

-- before and after are the profiles as JSON (see auditProfile).
CREATE TABLE audit (
	seq           bigserial   PRIMARY KEY,
	run_id        text        NOT NULL,
	at            timestamptz,
	actor         text        NOT NULL,
	action        text        NOT NULL,
	username      text        NOT NULL,
	username_fold text        COLLATE "C" NOT NULL,
	reason        text        NOT NULL DEFAULT '',
	before        json,
	after         json
);
CREATE INDEX audit_run_id ON audit (run_id, seq);
CREATE INDEX audit_username_fold ON audit (username_fold, seq);
-- Entries are appended in time order, so a BRIN index finds the old ones
-- Prune deletes at a fraction of a btree's cost to a large first sync.
CREATE INDEX audit_at ON audit USING brin (at);

-- report_gzip is the run's report, gzip-compressed JSON.
CREATE TABLE runs (
	id          text        PRIMARY KEY,
	mode        text        NOT NULL,
	result      text        NOT NULL,
	error       text        NOT NULL DEFAULT '',
	started_at  timestamptz,
	finished_at timestamptz,
	sources     text[],
	summary     jsonb,
	report_gzip bytea
);
CREATE INDEX runs_started_at ON runs (started_at);
-- Compressed already: TOAST is not to try again (a first sync's 3 MB).
ALTER TABLE runs ALTER COLUMN report_gzip SET STORAGE EXTERNAL;

CREATE TABLE notify_episodes (
	key        text        PRIMARY KEY CHECK (key <> ''),
	started_at timestamptz,
	run_id     text        NOT NULL DEFAULT '',
	sent_at    timestamptz
);

-- The outbox of pushes to targets: one row per target and profile; gone
-- holds a deleted profile's last state. seq orders the pushes.
CREATE SEQUENCE target_seq;
CREATE TABLE target_pending (
	target      text        NOT NULL,
	profile_id  bigint      NOT NULL,
	seq         bigint      NOT NULL,
	gone        json,
	marked_at   timestamptz,
	attempts    int         NOT NULL DEFAULT 0,
	last_status int         NOT NULL DEFAULT 0,
	last_error  text        NOT NULL DEFAULT '',
	failed      boolean     NOT NULL DEFAULT false,
	PRIMARY KEY (target, profile_id)
);
CREATE INDEX target_pending_seq ON target_pending (target, seq);
CREATE TABLE target_links (
	target     text    NOT NULL,
	profile_id bigint  NOT NULL,
	app_id     text    NOT NULL CHECK (app_id <> ''),
	etag       text    NOT NULL DEFAULT '',
	active     boolean NOT NULL,
	hash       text    NOT NULL DEFAULT '',
	username   text    NOT NULL DEFAULT '',
	gone       boolean NOT NULL DEFAULT false,
	PRIMARY KEY (target, profile_id)
);
CREATE UNIQUE INDEX target_links_app_id ON target_links (target, app_id);
CREATE TABLE targets (
	name      text PRIMARY KEY,
	seeded_at timestamptz,
	memory    text NOT NULL DEFAULT '',
	memory_at timestamptz
);

CREATE TABLE kept_values (
	key   text        PRIMARY KEY CHECK (key <> ''),
	value text        NOT NULL,
	at    timestamptz NOT NULL
);
