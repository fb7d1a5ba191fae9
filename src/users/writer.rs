//! Writing users rows with group commit. Requests that meet a user at the
//! same moment have their rows written together, in one transaction (one
//! upsert of them all, see [`upsert`](crate::users::upsert)), by a writer
//! thread that owns its connection: on SQLite one writer (SQLite has one
//! write lock; connections racing for it only wait on each other), on
//! PostgreSQL `pool_size` writers.
//!
//! A request is answered only after the transaction holding its row has
//! committed, so a 200 never stands for a row that is not there. Writing
//! the same user (issuer and `sub`) again only refreshes `last_seen_at`, so
//! concurrent first requests (from one instance or several) make one row.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, Timelike, Utc};
use diesel::PgConnection;
use diesel::prelude::*;
use tokio::sync::oneshot;

use crate::db::{CHECKPOINT_PACE, Checkpointer, DbError, DbSettings, FileChange, SqliteFile};
use crate::metrics::METRICS;
use crate::users::upsert::{Upserted, upsert_postgres, upsert_sqlite};

/// Most rows in one transaction: a storm's backlog is written in steps, so
/// that no one commit holds thousands of requests.
const MAX_BATCH: usize = 1000;

/// How often an idle writer looks at its database (the SQLite file).
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// A commit this recent means rows are arriving in a storm.
const STORM: Duration = Duration::from_millis(2);

/// In a storm, batches smaller than this wait [`GATHER`] for more rows.
const LONE_ROWS: usize = 4;

/// How long a storm's small batch waits: a few requests' signature checks.
const GATHER: Duration = Duration::from_micros(200);

/// [`Database::probe_write`]'s statement, the same on both databases. An
/// empty table has no row to rewrite, and the probe then writes nothing.
const PROBE_WRITE: &str =
    "UPDATE users SET last_seen_at = last_seen_at WHERE id = (SELECT max(id) FROM users)";

/// A row as written, and which database file it was written to.
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) row: Upserted,
    pub(crate) epoch: u64,
}

/// Why a batch failed, shared by every job in it.
pub(crate) type Failure = Arc<DbError>;

/// Who learns of a written row.
pub(crate) enum Notify {
    /// A request waiting for its row.
    Request(oneshot::Sender<Result<Written, Failure>>),
    /// A background refresh of `last_seen_at`, which hands back the row's
    /// id (a row deleted meanwhile has just been recreated under a new one).
    Refresh(Box<dyn FnOnce(i32) + Send>),
}

enum Job {
    Upsert {
        issuer: Arc<str>,
        sub: String,
        notify: Notify,
    },
    Ping(oneshot::Sender<Result<(), Failure>>),
}

/// The sending side: queues jobs for the writer threads.
pub(crate) struct Writer {
    jobs: Sender<Job>,
    epoch: Arc<AtomicU64>,
}

impl Writer {
    /// Starts the writer threads for `settings`, and what learns when they
    /// have all ended. Fails when the database cannot be reached now.
    pub(crate) fn start(settings: &DbSettings) -> Result<(Self, WritersClosed), DbError> {
        let (jobs, queue) = std::sync::mpsc::channel();
        let epoch = Arc::new(AtomicU64::new(0));
        let writes_failing = Arc::new(AtomicBool::new(false));
        // Each thread holds a sender, never used: all dropped, the thread ended.
        let (running, closed) = std::sync::mpsc::channel::<()>();
        if settings.is_postgres() {
            let queue = Arc::new(Mutex::new(queue));
            // One connection now: a wrong URL or a server that is down fails
            // the start, with its own message.
            let mut first = Some(settings.connect_postgres()?);
            for n in 0..settings.pool_size.max(1) {
                let mut db = Postgres {
                    settings: settings.clone(),
                    conn: first.take(),
                };
                let queue = Arc::clone(&queue);
                let writes_failing = Arc::clone(&writes_failing);
                let running = running.clone();
                crate::background::spawn(&format!("users-writer-{n}"), move || {
                    write_until_closed(&mut db, &writes_failing, |storm| {
                        take_batch(
                            &queue.lock().unwrap_or_else(PoisonError::into_inner),
                            storm,
                            GATHER,
                        )
                    });
                    drop(db);
                    drop(running);
                });
            }
        } else {
            let mut db = Sqlite {
                file: SqliteFile::new(&settings.url, settings.connect_timeout),
                epoch: Arc::clone(&epoch),
                checkpointer: Checkpointer::start(
                    settings.url.clone().into(),
                    settings.connect_timeout,
                    CHECKPOINT_PACE,
                ),
            };
            db.check()?;
            crate::background::spawn("users-writer", move || {
                write_until_closed(&mut db, &writes_failing, |storm| {
                    take_batch(&queue, storm, GATHER)
                });
                // The last commits checkpointed, then the file closed.
                db.checkpointer.stop();
                drop(db.file);
                drop(running);
            });
        }
        Ok((Self { jobs, epoch }, WritersClosed(closed)))
    }

    /// Writes the row of the user (`issuer`, `sub`), or refreshes its
    /// `last_seen_at`; `notify` learns the outcome once it is committed.
    pub(crate) fn upsert(&self, issuer: &Arc<str>, sub: &str, notify: Notify) {
        let job = Job::Upsert {
            issuer: Arc::clone(issuer),
            sub: sub.to_owned(),
            notify,
        };
        // A closed queue (shutdown) drops the job, and with it the reply
        // channel: the waiting request learns that the writer has gone.
        let _ = self.jobs.send(job);
    }

    /// Checks that the database answers.
    pub(crate) fn ping(&self) -> oneshot::Receiver<Result<(), Failure>> {
        let (reply, answer) = oneshot::channel();
        let _ = self.jobs.send(Job::Ping(reply));
        answer
    }

    /// Changes each time the SQLite file leaves its path and each time one is
    /// opened, so that what was remembered of one file is not trusted for
    /// another. Always 0 on PostgreSQL.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }
}

/// Learns when every writer thread has ended: the queue closed (the last
/// [`Writer`] dropped), every job in it written, the database closed.
pub(crate) struct WritersClosed(Receiver<()>);

impl WritersClosed {
    /// Waits up to `limit` for the writer threads to end; whether they have.
    pub(crate) fn wait(self, limit: Duration) -> bool {
        matches!(self.0.recv_timeout(limit), Err(RecvTimeoutError::Disconnected))
    }
}

/// Runs the batches `take` hands out until it hands out none; `take` is
/// told whether a storm is on (see [`take_batch`]).
fn write_until_closed(
    db: &mut impl Database,
    writes_failing: &AtomicBool,
    mut take: impl FnMut(bool) -> Option<Vec<Job>>,
) {
    let mut last_commit: Option<Instant> = None;
    while let Some(batch) = take(last_commit.is_some_and(|at| at.elapsed() < STORM)) {
        // An empty batch (an idle second) runs too: it looks at the database.
        let writes = !batch.is_empty();
        run(db, writes_failing, batch);
        if writes {
            last_commit = Some(Instant::now());
        }
    }
}

/// Waits for a job, then takes every job already queued behind it (up to
/// the batch limit): what arrived while the last batch was committing is
/// written together. In a `storm`, a batch of fewer than [`LONE_ROWS`]
/// waits `gather` for company first: its rows come from requests read one
/// at a time, and the requests still being read would otherwise each pay a
/// commit of their own (where the writer shares a core with them, those
/// commits slow down the very reading that would have filled the batch).
/// Idle, it lets the database be looked at once a second. `None` once the
/// queue has closed.
fn take_batch(queue: &Receiver<Job>, storm: bool, gather: Duration) -> Option<Vec<Job>> {
    let first = match queue.recv_timeout(IDLE_CHECK) {
        Ok(job) => job,
        Err(RecvTimeoutError::Timeout) => return Some(Vec::new()),
        Err(RecvTimeoutError::Disconnected) => return None,
    };
    let mut batch = vec![first];
    take_queued(queue, &mut batch);
    if storm && batch.len() < LONE_ROWS {
        std::thread::sleep(gather);
        take_queued(queue, &mut batch);
    }
    Some(batch)
}

/// Adds the jobs queued now to `batch`, up to the batch limit.
fn take_queued(queue: &Receiver<Job>, batch: &mut Vec<Job>) {
    while batch.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// A database a writer owns a connection to.
trait Database {
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
    /// Which file rows go to now (see [`Writer::epoch`]).
    fn epoch(&self) -> u64;
}

/// Runs one batch and tells everyone in it how it went. `writes_failing`
/// holds whether the last rows written failed to commit: while it does, a
/// readiness ping is a write, not a read, so that an instance whose every
/// write fails (a full disk) is not ready, and is ready again as soon as a
/// write succeeds.
fn run(db: &mut impl Database, writes_failing: &AtomicBool, batch: Vec<Job>) {
    let checked = db.check().map_err(Arc::new);
    let epoch = db.epoch();
    let mut users: Vec<(&str, &str)> = Vec::new();
    let mut pinged_by_any = false;
    for job in &batch {
        match job {
            // A request that has stopped waiting wants nothing written.
            Job::Upsert {
                notify: Notify::Request(reply),
                ..
            } if reply.is_closed() => {}
            Job::Upsert { issuer, sub, .. } => users.push((issuer, sub)),
            Job::Ping(_) => pinged_by_any = true,
        }
    }
    users.sort_unstable();
    users.dedup();
    let written: Result<HashMap<(String, String), Upserted>, Failure> = match &checked {
        Err(err) => Err(Arc::clone(err)),
        Ok(()) if users.is_empty() => Ok(HashMap::new()),
        Ok(()) => {
            // Microseconds, as PostgreSQL keeps them, so that SQLite's rows
            // hold the same moments (diesel would write nanoseconds there).
            let now = Utc::now().naive_utc();
            let now = now.with_nanosecond(now.nanosecond() / 1000 * 1000).unwrap_or(now);
            db.upsert_all(&users, now)
                .inspect(|rows| {
                    METRICS.users_batch(rows.len());
                    METRICS.users_created(rows.iter().filter(|row| row.created).count() as u64);
                })
                .map(|rows| {
                    rows.into_iter()
                        .map(|row| ((row.issuer.clone(), row.sub.clone()), row))
                        .collect()
                })
                .map_err(Arc::new)
        }
    };
    if let Err(err) = &written {
        log::warn!("cannot write {} users row(s): {err}", users.len());
    }
    if !users.is_empty() || checked.is_err() {
        writes_failing.store(written.is_err(), Ordering::Release);
    }
    let pinged = if !pinged_by_any {
        Ok(())
    } else {
        checked.and_then(|()| {
            if !writes_failing.load(Ordering::Acquire) {
                return db.ping().map_err(Arc::new);
            }
            let probed = db.probe_write().map_err(Arc::new);
            if probed.is_ok() {
                writes_failing.store(false, Ordering::Release);
            }
            probed
        })
    };
    for job in batch {
        match job {
            Job::Upsert { issuer, sub, notify } => {
                let outcome = match &written {
                    // Rows of requests that stopped waiting were not written.
                    Ok(rows) => rows
                        .get(&(issuer.to_string(), sub))
                        .cloned()
                        .ok_or_else(|| Arc::new(DbError::WriterGone)),
                    Err(err) => Err(Arc::clone(err)),
                };
                match (notify, outcome) {
                    (Notify::Request(reply), outcome) => {
                        let _ = reply.send(outcome.map(|row| Written { row, epoch }));
                    }
                    (Notify::Refresh(done), Ok(row)) => done(row.id),
                    (Notify::Refresh(_), Err(_)) => {}
                }
            }
            Job::Ping(reply) => {
                let _ = reply.send(pinged.clone());
            }
        }
    }
}

/// The server's SQLite file.
struct Sqlite {
    file: SqliteFile,
    /// Shared with [`Writer::epoch`].
    epoch: Arc<AtomicU64>,
    checkpointer: Checkpointer,
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
struct Postgres {
    settings: DbSettings,
    conn: Option<PgConnection>,
}

impl Postgres {
    /// Runs `work` on the connection; a failure may be a connection that the
    /// server closed (restart, failover, an administrator), so it is retried
    /// once on a new connection.
    fn with_retry<T>(&mut self, work: impl Fn(&mut PgConnection) -> QueryResult<T>) -> Result<T, DbError> {
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
        Err(DbError::WriterGone)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::migrate;
    use crate::users::store::list;
    use chrono::TimeDelta;

    fn sqlite(settings: &DbSettings) -> Sqlite {
        migrate(settings).unwrap();
        Sqlite {
            file: SqliteFile::new(&settings.url, settings.connect_timeout),
            epoch: Arc::new(AtomicU64::new(0)),
            checkpointer: Checkpointer::start(
                settings.url.clone().into(),
                settings.connect_timeout,
                CHECKPOINT_PACE,
            ),
        }
    }

    fn moment(text: &str) -> NaiveDateTime {
        text.parse().unwrap()
    }

    #[test]
    fn a_sqlite_batch_writes_every_sub_as_given_and_tells_new_rows_from_found_ones() {
        let dir = tempfile::tempdir().unwrap();
        let settings = DbSettings::new(dir.path().join("users.db").to_string_lossy());
        let mut db = sqlite(&settings);
        // The subs travel as a JSON array: quotes, escapes and JSON of their own stay text.
        let long = "x".repeat(255);
        let subs = [
            "auth0|plain",
            "quote\"d",
            "back\\slash",
            "it's",
            "ünïcödé 🙂",
            "[\"an array\"]",
            "{\"an\":\"object\"}",
            "null",
            "?1",
            " padded ",
            long.as_str(),
        ];
        let first_seen = moment("2026-11-26T01:02:03.456789");
        let users: Vec<(&str, &str)> = subs.iter().map(|sub| (ISSUER, *sub)).collect();
        let rows = db.upsert_all(&users, first_seen).unwrap();
        assert!(rows.iter().all(|row| row.issuer == ISSUER), "{rows:?}");
        assert!(rows.iter().all(|row| row.created), "{rows:?}");
        let mut written: Vec<&str> = rows.iter().map(|row| row.sub.as_str()).collect();
        written.sort_unstable();
        let mut expected = subs.to_vec();
        expected.sort_unstable();
        assert_eq!(written, expected);

        let later = first_seen + TimeDelta::seconds(300);
        let again = db
            .upsert_all(
                &[
                    (ISSUER, "auth0|new"),
                    (ISSUER, "quote\"d"),
                    (ISSUER, "ünïcödé 🙂"),
                ],
                later,
            )
            .unwrap();
        let created: Vec<&str> = again
            .iter()
            .filter(|row| row.created)
            .map(|row| row.sub.as_str())
            .collect();
        assert_eq!(created, ["auth0|new"]);
        for row in again.iter().filter(|row| !row.created) {
            let before = rows.iter().find(|first| first.sub == row.sub).unwrap();
            assert_eq!(row.id, before.id, "a found row keeps its id");
        }

        let table = list(&settings).unwrap();
        assert_eq!(table.len(), subs.len() + 1);
        let quoted = table.iter().find(|user| user.sub == "quote\"d").unwrap();
        assert_eq!((quoted.created_at, quoted.last_seen_at), (first_seen, later));
        let plain = table.iter().find(|user| user.sub == "auth0|plain").unwrap();
        assert_eq!((plain.created_at, plain.last_seen_at), (first_seen, first_seen));
        let new = table.iter().find(|user| user.sub == "auth0|new").unwrap();
        assert_eq!((new.created_at, new.last_seen_at), (later, later));
    }

    const ISSUER: &str = "https://tenant.example.com/";

    fn refresh(sub: &str) -> Job {
        Job::Upsert {
            issuer: ISSUER.into(),
            sub: sub.to_owned(),
            notify: Notify::Refresh(Box::new(|_| {})),
        }
    }

    /// The size of the batch taken when one job is queued and a second
    /// follows 10 ms later.
    fn batch_of_two_arriving_apart(storm: bool) -> usize {
        let (jobs, queue) = std::sync::mpsc::channel();
        jobs.send(refresh("auth0|first")).unwrap();
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            jobs.send(refresh("auth0|second")).unwrap();
        });
        let batch = take_batch(&queue, storm, Duration::from_millis(500)).unwrap();
        late.join().unwrap();
        batch.len()
    }

    #[test]
    fn a_lone_row_waits_for_company_in_a_storm_only() {
        assert_eq!(batch_of_two_arriving_apart(true), 2);
        assert_eq!(batch_of_two_arriving_apart(false), 1, "no storm: written at once");
    }
}
