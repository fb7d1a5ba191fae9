//! The databases a users writer owns a connection to, behind one trait:
//! the server's SQLite file (one writer, which also checkpoints it) and
//! the shared PostgreSQL database (a connection per writer, replaced when
//! the server closed it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDateTime;
use diesel::PgConnection;
use diesel::prelude::*;

use crate::db::{CHECKPOINT_PACE, Checkpointer, DbError, DbSettings, FileChange, PgSession, SqliteFile};
use crate::users::upsert::{Upserted, upsert_postgres, upsert_sqlite};

/// [`Database::probe_write`]'s statement, the same on both databases. An
/// empty table has no row to rewrite, and the probe then writes nothing.
const PROBE_WRITE: &str =
    "UPDATE users SET last_seen_at = last_seen_at WHERE id = (SELECT max(id) FROM users)";

/// A database a writer owns a connection to.
pub(super) trait Database {
    /// Looks at the database before a batch, and when idle.
    fn check(&mut self) -> Result<(), DbError>;
    /// Upserts each distinct user, an `(issuer, sub)` pair, in one
    /// transaction; returns their rows.
    fn upsert_all(&mut self, users: &[(&str, &str)], now: NaiveDateTime) -> Result<Vec<Upserted>, DbError>;
    /// A statement that touches nothing.
    fn ping(&mut self) -> Result<(), DbError>;
    /// A write that changes nothing (the newest row rewritten as it is):
    /// it fails where rows cannot be written, as on a full disk, which a
    /// read does not see.
    fn probe_write(&mut self) -> Result<(), DbError>;
    /// Which file rows go to now (see [`Writer::epoch`](crate::users::writer::Writer::epoch)).
    fn epoch(&self) -> u64;
}

/// Runs one batch and tells everyone in it how it went. `writes_failing`
/// holds whether the last rows written failed to commit: while it does, a
/// readiness ping is a write, not a read, so that an instance whose every
/// write fails (a full disk) is not ready, and is ready again as soon as a
/// The server's SQLite file.
pub(super) struct Sqlite {
    file: SqliteFile,
    /// Shared with [`Writer::epoch`](crate::users::writer::Writer::epoch).
    epoch: Arc<AtomicU64>,
    checkpointer: Checkpointer,
}

impl Sqlite {
    /// The SQLite file of `settings`, opened at the first batch; `epoch`
    /// is [`Writer::epoch`](crate::users::writer::Writer::epoch)'s.
    pub(super) fn new(settings: &DbSettings, epoch: Arc<AtomicU64>) -> Self {
        Self {
            file: SqliteFile::new(&settings.url, settings.connect_timeout),
            epoch,
            checkpointer: Checkpointer::start(
                settings.url.clone().into(),
                settings.connect_timeout,
                CHECKPOINT_PACE,
            ),
        }
    }

    /// The last commits checkpointed, then the file closed.
    pub(super) fn close(self) {
        self.checkpointer.stop();
        drop(self.file);
    }
}

impl Database for Sqlite {
    fn check(&mut self) -> Result<(), DbError> {
        let change = self.file.check();
        if !matches!(change, Ok(FileChange::Unchanged)) {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
        match change? {
            FileChange::Missing => Err(DbError::FileMissing(self.file.path().to_owned())),
            FileChange::Unchanged | FileChange::Opened => Ok(()),
        }
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn upsert_all(&mut self, users: &[(&str, &str)], now: NaiveDateTime) -> Result<Vec<Upserted>, DbError> {
        let conn = self.file.connection()?;
        // An explicit transaction: SQLite hands out a `RETURNING` row before
        // an autocommit commits, and a failed commit (read-only file, full
        // disk) would otherwise answer 200 for a row that never landed.
        let written = conn.immediate_transaction(|conn| upsert_sqlite(conn, users, now))?;
        self.checkpointer.committed();
        Ok(written)
    }

    fn ping(&mut self) -> Result<(), DbError> {
        diesel::sql_query("SELECT 1").execute(self.file.connection()?)?;
        Ok(())
    }

    fn probe_write(&mut self) -> Result<(), DbError> {
        let probe = diesel::sql_query(PROBE_WRITE);
        self.file
            .connection()?
            .immediate_transaction(|conn| probe.execute(conn))?;
        Ok(())
    }
}

/// One connection to the shared PostgreSQL database, replaced when broken.
pub(super) struct Postgres(PgSession);

impl Postgres {
    /// A writer's connection to the database of `settings`: `conn` when one
    /// is open already, else one opened at the first batch.
    pub(super) fn new(settings: DbSettings, conn: Option<PgConnection>) -> Self {
        Self(PgSession::new(settings, conn))
    }

    fn with_retry<T>(&mut self, work: impl Fn(&mut PgConnection) -> QueryResult<T>) -> Result<T, DbError> {
        self.0.with_retry(work)
    }
}

impl Database for Postgres {
    fn check(&mut self) -> Result<(), DbError> {
        Ok(())
    }

    fn upsert_all(&mut self, users: &[(&str, &str)], now: NaiveDateTime) -> Result<Vec<Upserted>, DbError> {
        // Committed before its rows come back: one statement, or one
        // transaction of one statement per issuer.
        self.with_retry(|conn| upsert_postgres(conn, users, now))
    }

    fn ping(&mut self) -> Result<(), DbError> {
        self.with_retry(|conn| diesel::sql_query("SELECT 1").execute(conn).map(drop))
    }

    fn probe_write(&mut self) -> Result<(), DbError> {
        self.with_retry(|conn| diesel::sql_query(PROBE_WRITE).execute(conn).map(drop))
    }

    fn epoch(&self) -> u64 {
        0
    }
}
