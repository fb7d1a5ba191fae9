-- A revoked user: its tokens issued at or before this time (UTC) are
-- refused, on every instance (`users revoke`). NULL: not revoked.
ALTER TABLE users ADD COLUMN revoked_before TIMESTAMP;
CREATE INDEX users_revoked ON users (revoked_before) WHERE revoked_before IS NOT NULL;
