//! Connection pools for the two backends, and their embedded migrations.
//!
//! `DATABASE_URL` starting with `postgres://` or `postgresql://` selects
//! PostgreSQL (several instances share one database); anything else is a
//! SQLite file (the embedded default). The rest of the code does not know
//! which runs: it goes through [`with_connection!`](crate::with_connection).

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
// The pools' own error log is off: each failure reaches the request that met
// it, which answers 503 and logs one line.
use diesel::r2d2::{
    ConnectionManager, ManageConnection, NopErrorHandler, Pool, PooledConnection, R2D2Connection,
};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// SQLite migrations, compiled into the binary.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// PostgreSQL migrations, compiled into the binary.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Where the users table lives and how many connections to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbSettings {
    /// A SQLite file path, or a `postgres://` URL.
    pub url: String,
    /// Most connections the pool opens.
    pub pool_size: u32,
    /// How long a request waits for a connection (or, on SQLite, for the
    /// write lock) before answering 503.
    pub connect_timeout: Duration,
}

impl DbSettings {
    /// The defaults (8 connections, 5 s) for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// True when the URL names a PostgreSQL server.
    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")
    }
}

/// A pool of connections to one backend.
#[derive(Clone)]
pub enum DbPool {
    /// A SQLite file.
    Sqlite(Arc<SqliteFilePool>),
    /// A PostgreSQL database.
    Postgres(Pool<ConnectionManager<PgConnection>>),
}

/// A database failure: the pool, a query or a migration.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time.
    #[error("database connection: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
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
    /// The SQLite file was replaced while connections to the old one stayed open.
    #[error("database file {0} was replaced while connections to the old file are still open")]
    PreviousFileOpen(PathBuf),
    /// The blocking thread pool is gone (shutdown).
    #[error("database task cancelled")]
    Cancelled,
}

impl DbPool {
    /// Moves each time the SQLite file is found gone and each time a file is
    /// opened, so that what was remembered of one file is not trusted for
    /// another. Always 0 on PostgreSQL.
    pub fn generation(&self) -> u64 {
        match self {
            DbPool::Sqlite(pool) => pool.generation.load(Ordering::Acquire),
            DbPool::Postgres(_) => 0,
        }
    }
}

/// Runs `$body` with `$conn` bound to a pooled connection of whichever
/// backend `$pool` holds; the body is compiled once per backend.
#[macro_export]
macro_rules! with_connection {
    ($pool:expr, |$conn:ident| $body:expr) => {
        match $pool {
            $crate::db::DbPool::Sqlite(pool) => {
                let $conn = &mut **pool.get()?;
                $body
            }
            $crate::db::DbPool::Postgres(pool) => {
                let $conn = &mut *pool.get()?;
                $body
            }
        }
    };
}

/// The connections to one SQLite file, closed when the file disappears and
/// reopened when it is back.
///
/// An open SQLite connection keeps writing to a deleted file's inode, so rows
/// accepted after a deletion would vanish with the process. And the rows of
/// a moved file that are still in its write-ahead log stay behind at the old
/// path (`-wal`), where a new file at that path would read them as its own.
/// So every checkout first looks at the file. Gone or replaced: the old
/// file's log is checkpointed into it and emptied (a moved file then holds
/// all its rows, and the next file at the path finds an empty log), and its
/// connections are closed. Gone: the caller gets [`DbError::FileMissing`]
/// (503) at once. A file back at the path (a restored backup, `migrate`
/// after a loss) gets a fresh pool once every old connection has closed.
pub struct SqliteFilePool {
    settings: DbSettings,
    open: Mutex<Option<OpenFile>>,
    /// Connections this pool has opened and not yet closed, of any file.
    open_connections: Arc<AtomicUsize>,
    /// How many times a file has been opened; see [`DbPool::generation`].
    generation: AtomicU64,
}

/// The pool of the file currently open, and which file that is.
struct OpenFile {
    file: FileIdentity,
    pool: Pool<SqliteFileManager>,
}

/// What tells one file from another at the same path: device and inode on
/// Unix, creation time elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity(u64, u64);

impl FileIdentity {
    /// The identity of the file at `path`, or `None` when there is none.
    fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Some(Self(metadata.dev(), metadata.ino()))
        }
        #[cfg(not(unix))]
        {
            let created = metadata.created().ok()?;
            let since = created.duration_since(std::time::UNIX_EPOCH).ok()?;
            Some(Self(since.as_secs(), u64::from(since.subsec_nanos())))
        }
    }
}

impl SqliteFilePool {
    fn new(settings: &DbSettings) -> Self {
        Self {
            settings: settings.clone(),
            open: Mutex::new(None),
            open_connections: Arc::new(AtomicUsize::new(0)),
            generation: AtomicU64::new(0),
        }
    }

    /// A pooled connection to the file now at the configured path.
    pub fn get(&self) -> Result<PooledConnection<SqliteFileManager>, DbError> {
        Ok(self.current_pool()?.get()?)
    }

    fn current_pool(&self) -> Result<Pool<SqliteFileManager>, DbError> {
        let path = Path::new(&self.settings.url);
        let file = FileIdentity::of(path);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(file) = file else {
            if let Some(gone) = open.take() {
                self.generation.fetch_add(1, Ordering::AcqRel);
                self.close(gone);
                log::error!(
                    "database file {} was deleted while in use: its connections are closed; \
                     requests that need the users table answer 503 until it is restored \
                     or `actix-auth0-api migrate` creates an empty one",
                    path.display()
                );
            }
            return Err(DbError::FileMissing(path.to_path_buf()));
        };
        match open.as_ref() {
            Some(current) if current.file == file => return Ok(current.pool.clone()),
            Some(_) => {
                log::warn!("database file {} was replaced: reopening it", path.display());
                if let Some(replaced) = open.take() {
                    self.close(replaced);
                }
            }
            None => {}
        }
        self.wait_until_all_closed(path)?;
        let pool = Pool::builder()
            .error_handler(Box::new(NopErrorHandler))
            .max_size(self.settings.pool_size)
            .min_idle(Some(1))
            .connection_timeout(self.settings.connect_timeout)
            .build(SqliteFileManager {
                uri: existing_file_uri(&self.settings.url),
                busy_timeout: self.settings.connect_timeout,
                open_connections: Arc::clone(&self.open_connections),
            })?;
        *open = Some(OpenFile {
            file,
            pool: pool.clone(),
        });
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(pool)
    }

    /// Closes the connections to a file that has left the path, after
    /// writing its write-ahead log into it and emptying the log. Requests
    /// still using it are waited for (up to the connect timeout), so that
    /// nothing they commit is left in the log.
    fn close(&self, old: OpenFile) {
        wait_for(self.settings.connect_timeout, || {
            let state = old.pool.state();
            state.connections == state.idle_connections
        });
        // An idle connection, never a new one: that would open whatever is
        // at the path now, not the file that left.
        let Some(mut conn) = old.pool.try_get() else {
            log::error!(
                "cannot write the write-ahead log of the old {} into it: no idle connection to it",
                self.settings.url
            );
            return;
        };
        if let Err(err) = conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)") {
            log::error!(
                "cannot write the write-ahead log of the old {} into it: {err}",
                self.settings.url
            );
        }
    }

    /// Waits, up to the connect timeout, for the connections to a previous
    /// file (still serving a request, or being opened) to close.
    fn wait_until_all_closed(&self, path: &Path) -> Result<(), DbError> {
        let all_closed = wait_for(self.settings.connect_timeout, || {
            self.open_connections.load(Ordering::SeqCst) == 0
        });
        if all_closed {
            Ok(())
        } else {
            Err(DbError::PreviousFileOpen(path.to_path_buf()))
        }
    }
}

/// Polls `done` every 10 ms for up to `limit`; true as soon as it holds.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// The SQLite URI that opens `path` for reading and writing but never
/// creates it: only start-up (and `migrate`) may create the database file.
fn existing_file_uri(path: &str) -> String {
    let escaped = path.replace('%', "%25").replace('?', "%3f").replace('#', "%23");
    format!("file:{escaped}?mode=rw")
}

/// Looks at the file every second while the pool lives, so that a deleted
/// or replaced file is noticed (and logged) without waiting for a request
/// that needs the database.
fn watch_file(pool: std::sync::Weak<SqliteFilePool>) {
    std::thread::spawn(move || {
        while let Some(pool) = pool.upgrade() {
            // The outcome reaches requests through the pool; here it only
            // has to happen.
            let _ = pool.current_pool();
            drop(pool);
            std::thread::sleep(Duration::from_secs(1));
        }
    });
}

/// Opens connections to one SQLite file, with WAL mode and a busy timeout
/// (so concurrent writers queue instead of failing with "database is
/// locked"), and counts them until they close.
#[derive(Debug)]
pub struct SqliteFileManager {
    /// A `file:` URI that never creates the file.
    uri: String,
    busy_timeout: Duration,
    open_connections: Arc<AtomicUsize>,
}

/// A SQLite connection, counted as open until it has closed.
pub struct CountedConnection {
    // Fields drop in order: the connection closes before the count drops.
    conn: SqliteConnection,
    _counted: Counted,
}

/// One unit of a count, given back when dropped.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Deref for CountedConnection {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl DerefMut for CountedConnection {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

impl ManageConnection for SqliteFileManager {
    type Connection = CountedConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<CountedConnection, Self::Error> {
        // Counted first, so that on any early return the connection (a later
        // local, dropped first) has closed before the count drops.
        self.open_connections.fetch_add(1, Ordering::SeqCst);
        let counted = Counted(Arc::clone(&self.open_connections));
        let mut conn =
            SqliteConnection::establish(&self.uri).map_err(diesel::r2d2::Error::ConnectionError)?;
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
            self.busy_timeout.as_millis()
        ))
        .map_err(diesel::r2d2::Error::QueryError)?;
        Ok(CountedConnection {
            conn,
            _counted: counted,
        })
    }

    fn is_valid(&self, conn: &mut CountedConnection) -> Result<(), Self::Error> {
        conn.conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut CountedConnection) -> bool {
        std::thread::panicking() || conn.conn.is_broken()
    }
}

/// Opens the pool (creating a SQLite file if needed). Fails when the
/// database cannot be reached within the connect timeout.
pub fn connect(settings: &DbSettings) -> Result<DbPool, DbError> {
    if settings.is_postgres() {
        // One attempt first: a wrong URL or a server that is down fails at
        // once, with its own message, instead of after the pool's timeout.
        PgConnection::establish(&settings.url)?;
        let pool = Pool::builder()
            .error_handler(Box::new(NopErrorHandler))
            .max_size(settings.pool_size)
            .min_idle(Some(1))
            .connection_timeout(settings.connect_timeout)
            .build(ConnectionManager::<PgConnection>::new(&settings.url))?;
        Ok(DbPool::Postgres(pool))
    } else {
        // Creates the file on first run; afterwards a missing file is a fault.
        SqliteConnection::establish(&settings.url)?;
        let pool = Arc::new(SqliteFilePool::new(settings));
        pool.get()?;
        watch_file(Arc::downgrade(&pool));
        Ok(DbPool::Sqlite(pool))
    }
}

/// Key of the PostgreSQL advisory lock that serialises migrations, so that
/// instances starting together do not race to create the same table.
const MIGRATION_LOCK: i64 = 0x6175_7468_3061_7069; // "auth0api"

/// Applies the backend's pending migrations; returns the versions that ran.
pub fn run_migrations(pool: &DbPool) -> Result<Vec<String>, DbError> {
    let applied = match pool {
        DbPool::Sqlite(pool) => pool
            .get()?
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(versions),
        DbPool::Postgres(pool) => {
            let mut conn = pool.get()?;
            // An instance stuck while holding the lock must not block every
            // other start for ever: give up after a minute, with an error.
            conn.batch_execute(&format!(
                "SET lock_timeout = '60s'; SELECT pg_advisory_lock({MIGRATION_LOCK}); SET lock_timeout = 0"
            ))?;
            let applied = conn.run_pending_migrations(POSTGRES_MIGRATIONS).map(versions);
            conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
            applied
        }
    };
    applied.map_err(|e| DbError::Migration(e.to_string()))
}

fn versions(applied: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    applied.iter().map(ToString::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(pool: &DbPool, table: &str) -> Result<i64, DbError> {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let query = format!("SELECT count(*) AS n FROM {table}");
        let row: Count = crate::with_connection!(pool, |conn| {
            diesel::RunQueryDsl::get_result(diesel::sql_query(query), conn)?
        });
        Ok(row.n)
    }

    fn execute(pool: &DbPool, sql: &str) -> Result<(), DbError> {
        crate::with_connection!(pool, |conn| conn.batch_execute(sql)?);
        Ok(())
    }

    #[test]
    fn a_path_with_uri_characters_opens_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd ?name#with%25.db");
        let pool = connect(&DbSettings::new(path.to_string_lossy())).unwrap();
        run_migrations(&pool).unwrap();
        assert_eq!(count(&pool, "users").unwrap(), 0);
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            files
                .iter()
                .all(|f| f.to_string_lossy().starts_with("odd ?name#with%25.db")),
            "{files:?}"
        );
    }

    #[test]
    fn another_file_moved_to_the_path_is_opened_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.db");
        let pool = connect(&DbSettings::new(path.to_string_lossy())).unwrap();
        run_migrations(&pool).unwrap();
        assert_eq!(count(&pool, "users").unwrap(), 0);

        let other = dir.path().join("restored.db");
        SqliteConnection::establish(&other.to_string_lossy())
            .unwrap()
            .batch_execute("CREATE TABLE marker (x); INSERT INTO marker VALUES (1), (2);")
            .unwrap();
        std::fs::rename(&other, &path).unwrap();

        assert_eq!(
            count(&pool, "marker").unwrap(),
            2,
            "reads the file now at the path"
        );
    }

    #[test]
    fn a_deleted_file_is_missing_and_not_recreated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.db");
        let pool = connect(&DbSettings::new(path.to_string_lossy())).unwrap();
        run_migrations(&pool).unwrap();
        std::fs::remove_file(&path).unwrap();

        assert!(matches!(count(&pool, "users"), Err(DbError::FileMissing(p)) if p == path));
        assert!(!path.exists());
        let wal = std::fs::metadata(format!("{}-wal", path.display())).unwrap();
        assert_eq!(wal.len(), 0, "the old file's log is emptied");
    }

    #[test]
    fn a_file_moved_away_and_back_keeps_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.db");
        let pool = connect(&DbSettings::new(path.to_string_lossy())).unwrap();
        run_migrations(&pool).unwrap();
        let insert =
            "INSERT INTO users (sub, created_at, last_seen_at) VALUES ('a', '2026-01-01', '2026-01-01')";
        execute(&pool, insert).unwrap();
        let aside = dir.path().join("aside.db");
        std::fs::rename(&path, &aside).unwrap();
        assert!(matches!(count(&pool, "users"), Err(DbError::FileMissing(_))));

        std::fs::rename(&aside, &path).unwrap();
        assert_eq!(count(&pool, "users").unwrap(), 1, "the row that was in the log");
    }
}
