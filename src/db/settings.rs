//! Where the users table lives and how the server uses it.

use std::fmt;
use std::time::Duration;

use diesel::{Connection, ConnectionError, PgConnection};

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
        self.redact(&self.url)
    }

    /// `text` (an error about the URL, say) with the URL's password replaced
    /// by `***` wherever it shows, as written or percent-decoded: libpq
    /// quotes a malformed password, or the whole URL, in its errors.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut secrets = self.secrets();
        // The longest first, so that none leaves a piece of another.
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        secrets.iter().fold(text.to_owned(), |text, secret| {
            text.replace(secret.as_str(), "***")
        })
    }

    /// The password of a PostgreSQL URL's user info and of any `password=`
    /// parameter, read as text: a URL malformed enough to be refused is
    /// still redacted.
    fn secrets(&self) -> Vec<String> {
        if !self.is_postgres() {
            return Vec::new();
        }
        let rest = self.url.split_once("://").map_or("", |(_, rest)| rest);
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        let user_info_password = authority
            .rsplit_once('@')
            .and_then(|(user_info, _)| user_info.split_once(':'))
            .map(|(_, password)| password);
        let query = self.url.split_once('?').map_or("", |(_, query)| query);
        let query_passwords = query.split('&').filter_map(|pair| pair.strip_prefix("password="));
        let mut secrets = Vec::new();
        for raw in user_info_password.into_iter().chain(query_passwords) {
            let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
            secrets.push(decoded.into_owned());
            secrets.push(raw.to_owned());
        }
        secrets.retain(|secret| !secret.is_empty());
        secrets
    }

    /// A new PostgreSQL connection, giving up after the connect timeout.
    pub(crate) fn connect_postgres(&self) -> Result<PgConnection, DbError> {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        let url = format!(
            "{}{separator}connect_timeout={}",
            self.url,
            self.connect_timeout.as_secs().max(1)
        );
        PgConnection::establish(&url)
            .map_err(|err| DbError::Connect(ConnectionError::BadConnection(self.redact(&err.to_string()))))
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

    #[test]
    fn passwords_are_redacted_however_malformed_the_url() {
        let cases = [
            ("postgres://api:SeC%zzrEt2@db/api", "SeC%zzrEt2", "SeC%zzrEt2"),
            (
                "postgresql://api:p%40ss%2Fword@db/api",
                "p%40ss%2Fword",
                "p@ss/word",
            ),
            ("postgres://api:two@at@db/api", "two@at", "two@at"),
            (
                "postgres://api@db/api?sslmode=require&password=q%zzpw",
                "q%zzpw",
                "q%zzpw",
            ),
        ];
        for (url, written, shown) in cases {
            let settings = DbSettings::new(url);
            let message = format!("invalid percent-encoded token: \"{written}\" in {url}; {shown}");
            let redacted = settings.redact(&message);
            assert!(!redacted.contains(written), "{url}: {redacted}");
            assert!(!redacted.contains(shown), "{url}: {redacted}");
            assert!(!settings.redacted_url().contains(shown), "{url}");
            assert!(redacted.contains("***"), "{redacted}");
        }
        let no_password = DbSettings::new("postgres://api@db:5432/api");
        assert_eq!(no_password.redact("api at db"), "api at db");
    }
}
