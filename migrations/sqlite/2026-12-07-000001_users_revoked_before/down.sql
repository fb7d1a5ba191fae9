DROP INDEX users_revoked;
ALTER TABLE users DROP COLUMN revoked_before;
