-- Product grants (store.Grant): one row per profile and product, held
-- (granted) or waiting (queued). The profiles table is left as it is;
-- Tx.Delete deletes a profile's grants with it.
CREATE TABLE product_grants (
	profile_id bigint      NOT NULL,
	product    text        NOT NULL CHECK (product <> ''),
	state      text        NOT NULL CHECK (state IN ('granted', 'queued')),
	since      timestamptz,
	manual     boolean     NOT NULL DEFAULT false,
	PRIMARY KEY (profile_id, product)
);
CREATE INDEX product_grants_product ON product_grants (product, state);
