-- A user is the pair (issuer, sub): two tenants may issue the same sub.
-- Every row keeps its id. Rows written before this have no issuer (''): the
-- server gives them its first configured issuer at start.
ALTER TABLE users ADD COLUMN issuer TEXT NOT NULL DEFAULT '';
ALTER TABLE users DROP CONSTRAINT users_sub_key;
ALTER TABLE users ADD CONSTRAINT users_issuer_sub_key UNIQUE (issuer, sub);
