//! Mapping a token's `sub` to its row.
//!
//! First sight is one upsert, so concurrent first requests (from one
//! instance or several) create exactly one row. After that the user is
//! known in memory: repeat visits touch the database at most once per
//! `last_seen_interval`, in the background, never holding the request.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::web;
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use quick_cache::sync::Cache;
use serde::Serialize;

use crate::db::{DbError, DbPool};
use crate::schema::users;
use crate::with_connection;

/// Most users remembered in memory per instance.
const KNOWN_USERS_CAPACITY: usize = 100_000;

/// One row of the users table.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = users)]
pub struct User {
    /// Surrogate key.
    pub id: i32,
    /// The token `sub` this row belongs to.
    pub sub: String,
    /// When the `sub` was first accepted (UTC).
    pub created_at: NaiveDateTime,
    /// When the `sub` was last accepted (UTC), to within `last_seen_interval`.
    pub last_seen_at: NaiveDateTime,
}

/// A user whose row exists, as remembered in memory.
#[derive(Debug)]
pub struct KnownUser {
    /// The row's `id`, as last written (a refresh that had to recreate a
    /// deleted row brings the new one).
    id: AtomicI32,
    /// The database generation the row was written in; see [`DbPool::generation`].
    generation: u64,
    /// Milliseconds after `UserStore::epoch` of the last `last_seen_at` write.
    last_written_ms: AtomicU64,
}

impl KnownUser {
    /// The row's `id`.
    pub fn id(&self) -> i32 {
        self.id.load(Ordering::Relaxed)
    }
}

/// The users table, used from async handlers.
pub struct UserStore {
    pool: DbPool,
    known: Cache<String, Arc<KnownUser>>,
    last_seen_interval: Duration,
    epoch: Instant,
}

impl UserStore {
    /// Users stored through `pool`; `last_seen_at` written at most every 5 minutes.
    pub fn new(pool: DbPool) -> Self {
        Self {
            pool,
            known: Cache::new(KNOWN_USERS_CAPACITY),
            last_seen_interval: Duration::from_secs(300),
            epoch: Instant::now(),
        }
    }

    /// Writes a known user's `last_seen_at` at most once per `interval`.
    pub fn with_last_seen_interval(mut self, interval: Duration) -> Self {
        self.last_seen_interval = interval;
        self
    }

    /// Records an accepted request of `sub` and returns its user: the row
    /// is created on first sight; afterwards `last_seen_at` is refreshed in
    /// the background once per interval.
    pub async fn record_visit(&self, sub: &str) -> Result<Arc<KnownUser>, DbError> {
        if let Some(known) = self.known.get(sub)
            && self.is_current(&known)
        {
            self.touch_if_due(sub, &known);
            return Ok(known);
        }
        let generation = self.pool.generation();
        let pool = self.pool.clone();
        let owned_sub = sub.to_owned();
        let user = web::block(move || upsert(&pool, &owned_sub))
            .await
            .map_err(|_| DbError::Cancelled)??;
        let known = Arc::new(KnownUser {
            id: AtomicI32::new(user.id),
            generation,
            last_written_ms: AtomicU64::new(self.millis_since_epoch()),
        });
        self.known.insert(user.sub, Arc::clone(&known));
        Ok(known)
    }

    /// True while `known` was written to the database now open: a SQLite file
    /// replaced under the server (a restored backup) may lack its row.
    pub fn is_current(&self, known: &KnownUser) -> bool {
        known.generation == self.pool.generation()
    }

    /// Starts a background `last_seen_at` write for a repeat visit of a known
    /// user when the interval has passed; of concurrent requests, only one
    /// wins the right to write. Never waits.
    pub fn touch_if_due(&self, sub: &str, known: &Arc<KnownUser>) {
        let now_ms = self.millis_since_epoch();
        let last = known.last_written_ms.load(Ordering::Relaxed);
        let due = now_ms.saturating_sub(last) >= self.last_seen_interval.as_millis() as u64;
        if !due
            || known
                .last_written_ms
                .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let pool = self.pool.clone();
        let sub = sub.to_owned();
        let known = Arc::clone(known);
        actix_web::rt::spawn(async move {
            match web::block(move || upsert(&pool, &sub)).await {
                // Another instance or an operator may have deleted the row,
                // which the upsert has just recreated.
                Ok(Ok(user)) => known.id.store(user.id, Ordering::Relaxed),
                Ok(Err(err)) => log::warn!("cannot refresh last_seen_at: {err}"),
                Err(_) => log::warn!("cannot refresh last_seen_at: blocking pool gone"),
            }
        });
    }

    fn millis_since_epoch(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), DbError> {
        let pool = self.pool.clone();
        web::block(move || -> Result<(), DbError> {
            with_connection!(&pool, |conn| diesel::sql_query("SELECT 1").execute(conn)?);
            Ok(())
        })
        .await
        .map_err(|_| DbError::Cancelled)?
    }

    /// Every user, oldest first.
    pub fn list(&self) -> Result<Vec<User>, DbError> {
        Ok(with_connection!(&self.pool, |conn| {
            users::table
                .order(users::id)
                .select(User::as_select())
                .load(conn)?
        }))
    }
}

/// Inserts the row of `sub`, or refreshes its `last_seen_at`: one statement
/// (`INSERT ... ON CONFLICT (sub) DO UPDATE ... RETURNING`) on both backends.
///
/// It runs in an explicit transaction: SQLite hands out a `RETURNING` row
/// before its autocommit commits, and a failed commit (read-only file, full
/// disk) would otherwise be lost, answering 200 for a row that never landed.
fn upsert(pool: &DbPool, sub: &str) -> Result<User, DbError> {
    let now = Utc::now().naive_utc();
    Ok(with_connection!(pool, |conn| {
        conn.transaction(|conn| {
            diesel::insert_into(users::table)
                .values((
                    users::sub.eq(sub),
                    users::created_at.eq(now),
                    users::last_seen_at.eq(now),
                ))
                .on_conflict(users::sub)
                .do_update()
                .set(users::last_seen_at.eq(excluded(users::last_seen_at)))
                .returning(User::as_returning())
                .get_result(conn)
        })?
    }))
}
