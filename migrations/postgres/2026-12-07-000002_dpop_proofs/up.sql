-- The DPoP proofs accepted by any instance, until their `iat` window
-- closes, so that a proof one instance admitted is refused by the others.
-- `id` is the first 16 bytes of SHA-256 of the key thumbprint, a dot and
-- the proof's `jti`; `expires` its last acceptable second (Unix time).
-- UNLOGGED: no write-ahead log for rows that live a minute (a crash of the
-- database server empties the table). Not in src/schema.rs: the server
-- reaches it with SQL of its own (src/proof_ledger.rs), on PostgreSQL only.
CREATE UNLOGGED TABLE dpop_proofs (
    id BYTEA PRIMARY KEY,
    expires BIGINT NOT NULL
);
CREATE INDEX dpop_proofs_expires ON dpop_proofs (expires);
