//! Where the users table lives and how the server uses it.

use std::fmt;
use std::time::Duration;

use diesel::{Connection, PgConnection};

use crate::db::error::DbError;

/// Where the users table lives and how the server uses it.
#[derive(Clone, PartialEq, Eq)]
pub struct DbSettings {
    /// A SQLite file path, or a `postgres://` URL.
    pub url: String,
    /// PostgreSQL: how many connections write users rows at once. SQLite
    /// always writes through one connection (it has one writer anyway).
    pub pool_size: u32,
    /// How long a database operation may wait (for a connection, or on
    /// SQLite for the write lock) before the request answers 503.
    pub connect_timeout: Duration,
}

impl DbSettings {
    /// The defaults (4 connections, 5 s) for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 4,
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// True when the URL names a PostgreSQL server.
    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")
    }

    /// The URL with any password replaced by `***`, for printing and logs.
    pub fn redacted_url(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(mut parsed) if self.is_postgres() && parsed.password().is_some() => {
                let _ = parsed.set_password(Some("***"));
                parsed.to_string()
            }
            _ => self.url.clone(),
        }
    }

    /// A new PostgreSQL connection, giving up after the connect timeout.
    pub(crate) fn connect_postgres(&self) -> Result<PgConnection, DbError> {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        let url = format!(
            "{}{separator}connect_timeout={}",
            self.url,
            self.connect_timeout.as_secs().max(1)
        );
        Ok(PgConnection::establish(&url)?)
    }
}

/// The password never reaches a log line or a panic message.
impl fmt::Debug for DbSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbSettings")
            .field("url", &self.redacted_url())
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let settings = DbSettings::new("postgres://api:s3cret@db.internal:5432/api");
        assert_eq!(settings.redacted_url(), "postgres://api:***@db.internal:5432/api");
        assert!(!format!("{settings:?}").contains("s3cret"));
        let sqlite = DbSettings::new("data/app.db");
        assert_eq!(sqlite.redacted_url(), "data/app.db");
    }
}
