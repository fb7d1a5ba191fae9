//! The database behind the users table: which backend a URL selects, how a
//! connection to it is opened, and its embedded migrations.
//!
//! `DATABASE_URL` starting with `postgres://` or `postgresql://` selects
//! PostgreSQL (several instances share one database); anything else is a
//! SQLite file (the embedded default).

mod checkpoint;
mod error;
mod migrate;
mod postgres;
mod settings;
mod sqlite;

pub(crate) use checkpoint::{CHECKPOINT_PACE, Checkpointer};
pub use error::DbError;
pub use migrate::migrate;
pub(crate) use postgres::PgSession;
pub use settings::DbSettings;
pub(crate) use sqlite::{FileChange, SqliteFile};

/// Runs `$body` with `$conn` bound to a new connection of its own to the
/// database `$settings` names, PostgreSQL or SQLite: for commands and
/// tests, not requests (the body is compiled once for each backend).
macro_rules! with_connection {
    ($settings:expr, |$conn:ident| $body:expr) => {
        if $settings.is_postgres() {
            let $conn = &mut $settings.connect_postgres()?;
            $body
        } else {
            let mut file = $crate::db::SqliteFile::new(&$settings.url, $settings.connect_timeout);
            let $conn = file.connection()?;
            $body
        }
    };
}
pub(crate) use with_connection;
