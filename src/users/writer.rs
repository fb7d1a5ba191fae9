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
//!
//! Each writer drives its connection through the `Database` trait; the
//! SQLite and PostgreSQL sides are in `databases`.

mod databases;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use tokio::sync::oneshot;

use crate::db::{DbError, DbSettings};
use crate::metrics::METRICS;
use crate::users::upsert::Upserted;
use crate::users::writer::databases::{Database, Postgres, Sqlite};

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
                let mut db = Postgres::new(settings.clone(), first.take());
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
            let mut db = Sqlite::new(settings, Arc::clone(&epoch));
            db.check()?;
            crate::background::spawn("users-writer", move || {
                write_until_closed(&mut db, &writes_failing, |storm| {
                    take_batch(&queue, storm, GATHER)
                });
                db.close();
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

#[cfg(test)]
mod tests;
