//! The embedded migrations, run at start and by `migrate`.

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::db::error::DbError;
use crate::db::settings::DbSettings;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Key of the PostgreSQL advisory lock that serialises migrations, so that
/// instances starting together do not race to create the same table.
const MIGRATION_LOCK: i64 = 0x6175_7468_3061_7069; // "auth0api"

/// Applies the backend's pending migrations (creating a SQLite file if
/// there is none); returns the versions that ran.
pub fn migrate(settings: &DbSettings) -> Result<Vec<String>, DbError> {
    let applied = if settings.is_postgres() {
        let mut conn = settings.connect_postgres()?;
        // An instance stuck while holding the lock must not block every
        // other start for ever: give up after a minute, with an error.
        conn.batch_execute(&format!(
            "SET lock_timeout = '60s'; SELECT pg_advisory_lock({MIGRATION_LOCK}); SET lock_timeout = 0"
        ))?;
        let applied = conn.run_pending_migrations(POSTGRES_MIGRATIONS).map(versions);
        conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
        applied
    } else {
        let mut conn = SqliteConnection::establish(&settings.url)?;
        conn.batch_execute("PRAGMA journal_mode = WAL;")?;
        conn.run_pending_migrations(SQLITE_MIGRATIONS).map(versions)
    };
    applied.map_err(|e| DbError::Migration(e.to_string()))
}

fn versions(applied: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    applied.iter().map(ToString::to_string).collect()
}
