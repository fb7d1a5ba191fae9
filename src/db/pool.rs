//! Connection pools for the two backends, and their embedded migrations.
//!
//! `DATABASE_URL` starting with `postgres://` or `postgresql://` selects
//! PostgreSQL (several instances share one database); anything else is a
//! SQLite file (the embedded default). The rest of the code does not know
//! which runs: it goes through [`with_connection!`](crate::with_connection).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
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
    /// The blocking thread pool is gone (shutdown).
    #[error("database task cancelled")]
    Cancelled,
}

/// Runs `$body` with `$conn` bound to a pooled connection of whichever
/// backend `$pool` holds; the body is compiled once per backend.
#[macro_export]
macro_rules! with_connection {
    ($pool:expr, |$conn:ident| $body:expr) => {
        match $pool {
            $crate::db::DbPool::Sqlite(pool) => {
                let $conn = &mut *pool.get()?;
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
/// accepted after a deletion would vanish with the process; worse, a file
/// restored while old connections live would share its `-wal` and `-shm`
/// names with them. So every checkout first looks at the file: gone means
/// the old connections are dropped and the caller gets
/// [`DbError::FileMissing`] (503) at once; a different file at the path (a
/// restored backup, `migrate` after a loss) gets a fresh pool.
pub struct SqliteFilePool {
    settings: DbSettings,
    open: Mutex<Option<OpenFile>>,
}

/// The pool of the file currently open, and which file that is.
struct OpenFile {
    file: FileIdentity,
    pool: Pool<ConnectionManager<SqliteConnection>>,
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
    /// A pooled connection to the file now at the configured path.
    pub fn get(
        &self,
    ) -> Result<diesel::r2d2::PooledConnection<ConnectionManager<SqliteConnection>>, DbError> {
        Ok(self.current_pool()?.get()?)
    }

    fn current_pool(&self) -> Result<Pool<ConnectionManager<SqliteConnection>>, DbError> {
        let path = Path::new(&self.settings.url);
        let file = FileIdentity::of(path);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(file) = file else {
            if open.take().is_some() {
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
                *open = None;
            }
            None => {}
        }
        let pool = Pool::builder()
            .max_size(self.settings.pool_size)
            .min_idle(Some(1))
            .connection_timeout(self.settings.connect_timeout)
            .connection_customizer(Box::new(SqlitePragmas {
                busy_timeout: self.settings.connect_timeout,
            }))
            .build(ConnectionManager::<SqliteConnection>::new(&self.settings.url))?;
        *open = Some(OpenFile {
            file,
            pool: pool.clone(),
        });
        Ok(pool)
    }
}

/// Sets WAL mode and a busy timeout on every new SQLite connection, so
/// concurrent writers queue instead of failing with "database is locked".
#[derive(Debug)]
struct SqlitePragmas {
    busy_timeout: Duration,
}

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
            self.busy_timeout.as_millis()
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Opens the pool (creating a SQLite file if needed). Fails when the
/// database cannot be reached within the connect timeout.
pub fn connect(settings: &DbSettings) -> Result<DbPool, DbError> {
    if settings.is_postgres() {
        let pool = Pool::builder()
            .max_size(settings.pool_size)
            .min_idle(Some(1))
            .connection_timeout(settings.connect_timeout)
            .build(ConnectionManager::<PgConnection>::new(&settings.url))?;
        Ok(DbPool::Postgres(pool))
    } else {
        // Creates the file on first run; afterwards a missing file is a fault.
        SqliteConnection::establish(&settings.url)?;
        let pool = SqliteFilePool {
            settings: settings.clone(),
            open: Mutex::new(None),
        };
        pool.get()?;
        Ok(DbPool::Sqlite(Arc::new(pool)))
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
            conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
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
