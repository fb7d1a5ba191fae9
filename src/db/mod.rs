//! The database behind the users table: which backend a URL selects, how a
//! connection to it is opened, and its embedded migrations.
//!
//! `DATABASE_URL` starting with `postgres://` or `postgresql://` selects
//! PostgreSQL (several instances share one database); anything else is a
//! SQLite file (the embedded default).

mod checkpoint;
mod error;
mod migrate;
mod settings;
mod sqlite;

pub(crate) use checkpoint::{CHECKPOINT_PACE, Checkpointer};
pub use error::DbError;
pub use migrate::migrate;
pub use settings::DbSettings;
pub(crate) use sqlite::{FileChange, SqliteFile};
