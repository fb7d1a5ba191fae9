//! The statement that writes a batch of users rows, as a query diesel
//! prepares once per connection and then reuses.
//!
//! diesel caches no upsert it builds (`ON CONFLICT ... DO UPDATE` marks
//! itself unsafe to cache, and a multi-row `VALUES` changes with the
//! batch), so the database used to parse and plan the statement for every
//! batch: on SQLite a sixth of the writer's time. These have the same text
//! for any batch: the users of one issuer at a time, their issuer bound as
//! one value and their subs as another (a JSON array on SQLite, a `text[]`
//! on PostgreSQL), and a static query id, which is what diesel's statement
//! cache keys on. A batch of several issuers runs it once per issuer, in
//! one transaction; most batches have one.
//!
//! Each user, the pair (issuer, sub), is inserted, or the row already there
//! is given the new `last_seen_at`; every row comes back as
//! `(id, issuer, sub, created)`, `created` when first and last seen at this
//! same moment.

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, Bool, Integer, Text, Timestamp};
use diesel::sqlite::Sqlite;

/// What follows the rows to write, on either database.
const ON_CONFLICT_RETURNING: &str = " ON CONFLICT (issuer, sub) DO UPDATE SET last_seen_at = excluded.last_seen_at \
     RETURNING id, issuer, sub, created_at = last_seen_at";

/// A row as the upsert hands it back: only what the server keeps of it.
#[derive(Debug, Clone, Queryable)]
pub(crate) struct Upserted {
    pub(crate) id: i32,
    pub(crate) issuer: String,
    pub(crate) sub: String,
    /// Created by this transaction, not found: first and last seen at the
    /// same moment.
    pub(crate) created: bool,
}

/// Upserts `users`, `(issuer, sub)` pairs sorted by issuer, on SQLite: one
/// statement per issuer, in the caller's transaction.
pub(crate) fn upsert_sqlite(
    conn: &mut SqliteConnection,
    users: &[(&str, &str)],
    now: NaiveDateTime,
) -> QueryResult<Vec<Upserted>> {
    let mut rows = Vec::with_capacity(users.len());
    for group in users.chunk_by(|a, b| a.0 == b.0) {
        let subs: Vec<&str> = group.iter().map(|(_, sub)| *sub).collect();
        let subs = serde_json::to_string(&subs)
            .map_err(|err| diesel::result::Error::SerializationError(Box::new(err)))?;
        let upsert = SqliteUpsert {
            issuer: group[0].0,
            subs: &subs,
            now,
        };
        rows.extend(upsert.load::<Upserted>(conn)?);
    }
    Ok(rows)
}

/// Upserts `users`, `(issuer, sub)` pairs sorted by issuer, on PostgreSQL:
/// one statement per issuer, in a transaction of their own when there are
/// several (one statement is atomic by itself).
pub(crate) fn upsert_postgres(
    conn: &mut PgConnection,
    users: &[(&str, &str)],
    now: NaiveDateTime,
) -> QueryResult<Vec<Upserted>> {
    let groups: Vec<&[(&str, &str)]> = users.chunk_by(|a, b| a.0 == b.0).collect();
    let run = |conn: &mut PgConnection| {
        let mut rows = Vec::with_capacity(users.len());
        for group in &groups {
            let subs: Vec<&str> = group.iter().map(|(_, sub)| *sub).collect();
            let upsert = PgUpsert {
                issuer: group[0].0,
                subs: &subs,
                now,
            };
            rows.extend(upsert.load::<Upserted>(conn)?);
        }
        Ok(rows)
    };
    if groups.len() > 1 {
        conn.transaction(run)
    } else {
        run(conn)
    }
}

/// The statement for one issuer's users on SQLite.
#[derive(Debug, Clone, Copy)]
struct SqliteUpsert<'a> {
    issuer: &'a str,
    /// The subs, as a JSON array of strings.
    subs: &'a str,
    now: NaiveDateTime,
}

/// The statement for one issuer's users on PostgreSQL.
#[derive(Debug, Clone, Copy)]
struct PgUpsert<'a> {
    issuer: &'a str,
    subs: &'a [&'a str],
    now: NaiveDateTime,
}

/// A query diesel can run and cache: rows of `(id, issuer, sub, created)`,
/// and a query id that is the same for every batch, which diesel's
/// statement cache keys on.
macro_rules! batch_query {
    ($statement:ident, $connection:ty) => {
        impl QueryId for $statement<'_> {
            type QueryId = $statement<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl Query for $statement<'_> {
            type SqlType = (Integer, Text, Text, Bool);
        }

        impl RunQueryDsl<$connection> for $statement<'_> {}
    };
}

batch_query!(SqliteUpsert, SqliteConnection);
batch_query!(PgUpsert, PgConnection);

impl QueryFragment<Sqlite> for SqliteUpsert<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql("INSERT INTO users (issuer, sub, created_at, last_seen_at) SELECT ");
        out.push_bind_param::<Text, _>(&self.issuer)?;
        out.push_sql(", value, ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(" FROM json_each(");
        out.push_bind_param::<Text, _>(&self.subs)?;
        // `WHERE true` tells SQLite's parser that `ON CONFLICT` is the
        // upsert's, not a join constraint of the SELECT.
        out.push_sql(") WHERE true");
        out.push_sql(ON_CONFLICT_RETURNING);
        Ok(())
    }
}

impl QueryFragment<Pg> for PgUpsert<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("INSERT INTO users (issuer, sub, created_at, last_seen_at) SELECT ");
        out.push_bind_param::<Text, _>(&self.issuer)?;
        out.push_sql(", sub, ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(" FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(&self.subs)?;
        out.push_sql(") AS batch(sub)");
        out.push_sql(ON_CONFLICT_RETURNING);
        Ok(())
    }
}

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

    const A: &str = "https://a.example.com/";
    const B: &str = "https://b.example.com/";

    /// A batch of `(issuer, sub)` pairs, and which of them it creates.
    type Batch = (Vec<(&'static str, &'static str)>, Vec<bool>);

    /// The batches of both tests, and the rows each one creates: the same
    /// sub from another issuer is another user.
    fn batches() -> Vec<Batch> {
        vec![
            (vec![(A, "auth0|a")], vec![true]),
            (vec![(A, "auth0|b"), (A, "auth0|c\"quoted\\")], vec![true, true]),
            (
                vec![(A, "auth0|a"), (B, "auth0|a"), (A, "{\"e\":[1]}")],
                vec![false, true, true],
            ),
        ]
    }

    type Row = (i32, String, String, bool);

    fn rows(upserted: Vec<Upserted>) -> Vec<Row> {
        upserted
            .into_iter()
            .map(|row| (row.id, row.issuer, row.sub, row.created))
            .collect()
    }

    /// Runs `batches()` through `load`, a second later each; checks the
    /// rows and that one statement was prepared for them all.
    fn check_batches<C: Connection>(
        conn: &mut C,
        mut load: impl FnMut(&mut C, &[(&str, &str)], NaiveDateTime) -> Vec<Row>,
    ) {
        let prepared = Arc::new(AtomicUsize::new(0));
        conn.set_instrumentation(Prepared(Arc::clone(&prepared)));
        let start: NaiveDateTime = "2026-11-26T02:00:00".parse().unwrap();
        for (n, (batch, expected_created)) in batches().into_iter().enumerate() {
            let now = start + chrono::TimeDelta::seconds(n as i64);
            let rows = load(conn, &batch, now);
            let mut expected: Vec<(&str, &str, bool)> = batch
                .into_iter()
                .zip(expected_created)
                .map(|((issuer, sub), created)| (issuer, sub, created))
                .collect();
            expected.sort();
            let mut got: Vec<(&str, &str, bool)> = rows
                .iter()
                .map(|row| (row.1.as_str(), row.2.as_str(), row.3))
                .collect();
            got.sort();
            assert_eq!(got, expected);
        }
        assert_eq!(prepared.load(Ordering::Relaxed), 1, "prepared once, then reused");
    }

    #[test]
    fn batches_of_any_size_share_one_prepared_statement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.db");
        migrate(&DbSettings::new(path.to_string_lossy())).unwrap();
        let mut conn = SqliteConnection::establish(&path.to_string_lossy()).unwrap();
        check_batches(&mut conn, |conn, batch, now| {
            rows(
                conn.immediate_transaction(|conn| upsert_sqlite(conn, batch, now))
                    .unwrap(),
            )
        });
    }

    #[test]
    #[ignore = "needs PostgreSQL at 127.0.0.1:5432 (TEST_POSTGRES_URL)"]
    fn batches_of_any_size_share_one_prepared_statement_on_postgres() {
        let server = std::env::var("TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let name = format!("actix_auth0_api_upsert_{}", std::process::id());
        let mut admin = PgConnection::establish(&format!("{server}/postgres")).unwrap();
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&mut admin)
            .unwrap();
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .unwrap();
        let url = format!("{server}/{name}");
        migrate(&DbSettings::new(url.as_str())).unwrap();
        let mut conn = PgConnection::establish(&url).unwrap();
        check_batches(&mut conn, |conn, batch, now| {
            rows(upsert_postgres(conn, batch, now).unwrap())
        });
        drop(conn);
        diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut admin)
            .unwrap();
    }
}
