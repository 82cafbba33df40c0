-- The profiles counted by area, owner source and whether they are active
-- (store.CountKey), so that a seat count reads a few rows whatever the
-- number of profiles: an incremental run at a million profiles must not
-- count them. The write transactions keep it (tx.counts), in the same
-- commit as the profiles; recountSQL rebuilds it from them.
CREATE TABLE profile_counts (
	area   text    NOT NULL,
	source text    NOT NULL,
	active boolean NOT NULL,
	n      bigint  NOT NULL,
	PRIMARY KEY (area, source, active)
);
INSERT INTO profile_counts (area, source, active, n)
	SELECT area, source, state = 'active', count(*) FROM profiles GROUP BY area, source, state = 'active';
