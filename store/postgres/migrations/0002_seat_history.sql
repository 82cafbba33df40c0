-- The seat history (Store.SaveSeats): one row per run and pool (kind
-- 'pool'; other kinds, such as products, fit beside them). limit_n is
-- NULL for an unlimited pool.
CREATE TABLE seat_history (
	run_id    text        NOT NULL,
	at        timestamptz NOT NULL,
	kind      text        NOT NULL CHECK (kind <> ''),
	name      text        NOT NULL,
	limit_n   int,
	used      int         NOT NULL,
	queued    int         NOT NULL,
	remaining int         NOT NULL,
	overage   int         NOT NULL,
	PRIMARY KEY (run_id, kind, name)
);
CREATE INDEX seat_history_at ON seat_history (at);
