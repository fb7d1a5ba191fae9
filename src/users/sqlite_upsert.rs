//! The statement that writes a batch of users rows on SQLite, as a query
//! diesel prepares once per connection and then reuses.
//!
//! diesel caches no upsert it builds (`ON CONFLICT ... DO UPDATE` marks
//! itself unsafe to cache, and a multi-row `VALUES` changes with the
//! batch), so SQLite used to parse and compile the statement for every
//! batch: a sixth of the writer's time. This one has the same text for any
//! batch, the subs bound as one JSON array, and a static query id, which is
//! what diesel's statement cache keys on.

use chrono::NaiveDateTime;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Bool, Integer, Text, Timestamp};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, RunQueryDsl, SqliteConnection};

/// Each sub inserted, or the row already there given the new
/// `last_seen_at`; every row returned as `(id, sub, created)`, `created`
/// when first and last seen at this same moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SqliteUpsert<'a> {
    /// The subs, as a JSON array of strings.
    pub(crate) subs: &'a str,
    pub(crate) now: NaiveDateTime,
}

/// The same for every batch: diesel's statement cache keys on it.
impl QueryId for SqliteUpsert<'_> {
    type QueryId = SqliteUpsert<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for SqliteUpsert<'_> {
    type SqlType = (Integer, Text, Bool);
}

impl QueryFragment<Sqlite> for SqliteUpsert<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql("INSERT INTO users (sub, created_at, last_seen_at) SELECT value, ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(" FROM json_each(");
        out.push_bind_param::<Text, _>(&self.subs)?;
        // `WHERE true` tells SQLite's parser that `ON CONFLICT` is the
        // upsert's, not a join constraint of the SELECT.
        out.push_sql(
            ") WHERE true ON CONFLICT (sub) DO UPDATE SET last_seen_at = excluded.last_seen_at \
             RETURNING id, sub, created_at = last_seen_at",
        );
        Ok(())
    }
}

impl RunQueryDsl<SqliteConnection> for SqliteUpsert<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{DbSettings, migrate};
    use diesel::Connection;
    use diesel::connection::{Instrumentation, InstrumentationEvent};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the statements a connection prepares for its cache.
    struct Prepared(Arc<AtomicUsize>);

    impl Instrumentation for Prepared {
        fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
            if let InstrumentationEvent::CacheQuery { .. } = event {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    #[test]
    fn batches_of_any_size_share_one_prepared_statement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.db");
        migrate(&DbSettings::new(path.to_string_lossy())).unwrap();
        let mut conn = SqliteConnection::establish(&path.to_string_lossy()).unwrap();
        let prepared = Arc::new(AtomicUsize::new(0));
        conn.set_instrumentation(Prepared(Arc::clone(&prepared)));
        let now: NaiveDateTime = "2026-11-26T02:00:00".parse().unwrap();
        for (batch, expected_created) in [
            (vec!["auth0|a"], vec![true]),
            (vec!["auth0|b", "auth0|c"], vec![true, true]),
            (vec!["auth0|a", "auth0|d", "auth0|e"], vec![false, true, true]),
        ] {
            let subs = serde_json::to_string(&batch).unwrap();
            let later = now + chrono::TimeDelta::seconds(batch.len() as i64);
            let mut rows: Vec<(i32, String, bool)> = SqliteUpsert {
                subs: &subs,
                now: later,
            }
            .load(&mut conn)
            .unwrap();
            rows.sort_by(|a, b| a.1.cmp(&b.1));
            let subs: Vec<&str> = rows.iter().map(|row| row.1.as_str()).collect();
            let created: Vec<bool> = rows.iter().map(|row| row.2).collect();
            assert_eq!((subs, created), (batch, expected_created));
        }
        assert_eq!(prepared.load(Ordering::Relaxed), 1, "prepared once, then reused");
    }
}
