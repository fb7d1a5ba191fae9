-- Back to one row per sub: fails if two issuers share a sub.
ALTER TABLE users DROP CONSTRAINT users_issuer_sub_key;
ALTER TABLE users ADD CONSTRAINT users_sub_key UNIQUE (sub);
ALTER TABLE users DROP COLUMN issuer;
