//! The database a test runs on: a temporary SQLite file or a fresh PostgreSQL database.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::now;
use actix_auth0_api::db::DbSettings;
use actix_auth0_api::users::{self, User};

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A fresh database on the machine's PostgreSQL.
    Postgres,
}

/// Where PostgreSQL tests create their databases (`TEST_POSTGRES_URL`).
fn postgres_server() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Runs `sql` on the PostgreSQL server's maintenance database.
pub fn postgres_admin(sql: &str) {
    use diesel::{Connection, RunQueryDsl};
    let url = format!("{}/postgres", postgres_server());
    let mut admin = diesel::PgConnection::establish(&url)
        .unwrap_or_else(|e| panic!("PostgreSQL tests need a server at {url}: {e}"));
    diesel::sql_query(sql).execute(&mut admin).unwrap();
}

/// A database that exists for one test and is dropped afterwards.
pub enum TestDatabase {
    /// A SQLite file in a temporary folder.
    Sqlite(tempfile::TempDir),
    /// A database on the PostgreSQL server.
    Postgres(String),
}

impl TestDatabase {
    /// Creates an empty database.
    pub fn create(backend: Backend) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        match backend {
            Backend::Sqlite => Self::Sqlite(tempfile::tempdir().unwrap()),
            Backend::Postgres => {
                let name = format!(
                    "actix_auth0_api_test_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst),
                    now() % 100_000
                );
                postgres_admin(&format!("CREATE DATABASE {name}"));
                Self::Postgres(name)
            }
        }
    }

    /// The PostgreSQL database's name.
    pub fn postgres_name(&self) -> &str {
        match self {
            Self::Postgres(name) => name,
            Self::Sqlite(_) => panic!("not a PostgreSQL database"),
        }
    }

    /// The `DATABASE_URL` of this database.
    pub fn url(&self) -> String {
        match self {
            Self::Sqlite(dir) => dir.path().join("users.db").to_string_lossy().into_owned(),
            Self::Postgres(name) => format!("{}/{name}", postgres_server()),
        }
    }

    /// Every row of its users table, oldest first.
    pub fn users(&self) -> Vec<User> {
        users::list(&DbSettings::new(self.url())).unwrap()
    }

    /// The `sub` of every row, oldest first.
    pub fn subs(&self) -> Vec<String> {
        self.users().into_iter().map(|u| u.sub).collect()
    }

    /// Runs `sql` (one statement) on this database, as an operator would.
    pub fn execute(&self, sql: &str) {
        use diesel::{Connection, RunQueryDsl};
        match self {
            Self::Sqlite(_) => {
                let mut conn = diesel::SqliteConnection::establish(&self.url()).unwrap();
                diesel::sql_query(sql).execute(&mut conn).unwrap();
            }
            Self::Postgres(_) => {
                let mut conn = diesel::PgConnection::establish(&self.url()).unwrap();
                diesel::sql_query(sql).execute(&mut conn).unwrap();
            }
        };
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Self::Postgres(name) = self {
            postgres_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}
