//! What can go wrong with the database.

use std::path::PathBuf;

/// A database failure: a connection, a statement or a migration.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A connection could not be opened.
    #[error("database connection: {0}")]
    Connect(#[from] diesel::ConnectionError),
    /// A statement failed.
    #[error("database query: {0}")]
    Query(#[from] diesel::result::Error),
    /// A migration failed.
    #[error("database migration: {0}")]
    Migration(String),
    /// The SQLite file is gone (deleted or moved while the server ran).
    #[error(
        "database file {0} is missing: restore it, or run `actix-auth0-api migrate` to start an empty one"
    )]
    FileMissing(PathBuf),
    /// No answer within the database timeout.
    #[error("database timed out")]
    TimedOut,
    /// The thread that writes users rows has stopped (shutdown).
    #[error("database writer stopped")]
    WriterGone,
    /// The failure of a batch that this write shared with others.
    #[error("{0}")]
    Shared(String),
}
