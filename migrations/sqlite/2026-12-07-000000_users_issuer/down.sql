-- Back to one row per sub: fails (UNIQUE) if two issuers share a sub.
CREATE TABLE users_by_sub (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    sub TEXT NOT NULL UNIQUE CHECK (length(sub) > 0),
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL
);
INSERT INTO users_by_sub (id, sub, created_at, last_seen_at)
    SELECT id, sub, created_at, last_seen_at FROM users ORDER BY id;
DROP TABLE users;
ALTER TABLE users_by_sub RENAME TO users;
