//! A long-lived connection to the shared PostgreSQL database, as the
//! background threads (users writers, the DPoP proof ledger, the revocation
//! reader) hold one: opened when first needed, replaced when broken.

use diesel::{PgConnection, QueryResult};

use crate::db::error::DbError;
use crate::db::settings::DbSettings;

/// One connection to the database of its settings, replaced when broken.
pub(crate) struct PgSession {
    settings: DbSettings,
    conn: Option<PgConnection>,
}

impl PgSession {
    /// A session on the database of `settings`: `conn` when one is open
    /// already, else one opened at the first use.
    pub(crate) fn new(settings: DbSettings, conn: Option<PgConnection>) -> Self {
        Self { settings, conn }
    }

    /// Runs `work` on the connection; a failure may be a connection that the
    /// server closed (restart, failover, an administrator), so it is retried
    /// once on a new connection.
    pub(crate) fn with_retry<T>(
        &mut self,
        work: impl Fn(&mut PgConnection) -> QueryResult<T>,
    ) -> Result<T, DbError> {
        for attempt in 0..2 {
            let conn = match &mut self.conn {
                Some(conn) => conn,
                None => self.conn.insert(self.settings.connect_postgres()?),
            };
            match work(conn) {
                Ok(done) => return Ok(done),
                Err(err) if attempt == 0 => {
                    log::debug!("PostgreSQL statement failed, retrying on a new connection: {err}");
                    self.conn = None;
                }
                Err(err) => {
                    self.conn = None;
                    return Err(err.into());
                }
            }
        }
        // Not reached: the second attempt returns either way.
        Err(DbError::WriterGone)
    }
}
