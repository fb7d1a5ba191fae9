-- A user is the pair (issuer, sub): two tenants may issue the same sub.
-- SQLite cannot drop the column's own UNIQUE, so the table is rebuilt; every
-- row keeps its id, and AUTOINCREMENT keeps its high-water mark (no id of a
-- deleted row is ever handed out again). Rows written before this have no
-- issuer (''): the server gives them its first configured issuer at start.
CREATE TABLE users_by_issuer (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    issuer TEXT NOT NULL DEFAULT '',
    sub TEXT NOT NULL CHECK (length(sub) > 0),
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    UNIQUE (issuer, sub)
);
INSERT INTO users_by_issuer (id, issuer, sub, created_at, last_seen_at)
    SELECT id, '', sub, created_at, last_seen_at FROM users ORDER BY id;
UPDATE sqlite_sequence
    SET seq = max(seq, (SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'users'))
    WHERE name = 'users_by_issuer';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'users_by_issuer', seq FROM sqlite_sequence
    WHERE name = 'users' AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'users_by_issuer');
DROP TABLE users;
ALTER TABLE users_by_issuer RENAME TO users;
