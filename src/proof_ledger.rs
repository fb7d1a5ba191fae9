//! DPoP proofs recorded in PostgreSQL, so that every instance sharing the
//! database refuses a proof another has accepted. Each instance's replay
//! cache still answers first, in memory; a proof new to it is then
//! recorded here, in the group-commit manner of the users writer: what
//! requests queue while a batch commits is written together in one
//! statement, and a request is answered only once its proof is recorded.
//! The table is `UNLOGGED` (no write-ahead log: a proof lives a minute)
//! and swept of expired proofs in the background.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Binary};
use futures_util::future::BoxFuture;
use tokio::sync::oneshot;

use crate::auth::dpop::{ProofId, SharedProofs, Unrecorded};
use crate::auth::unix_now;
use crate::db::{DbError, DbSettings, PgSession};

/// Most proofs in one statement.
const MAX_BATCH: usize = 1000;

/// How often expired proofs are deleted.
const SWEEP: Duration = Duration::from_secs(10);

/// Records a batch; returns the ids that were new (or whose earlier record
/// had expired). `$3` is now: an expired record is taken over, not a replay.
const RECORD: &str = "INSERT INTO dpop_proofs (id, expires) \
     SELECT * FROM unnest($1::bytea[], $2::bigint[]) \
     ON CONFLICT (id) DO UPDATE SET expires = EXCLUDED.expires WHERE dpop_proofs.expires < $3 \
     RETURNING id";

/// One proof waiting to be recorded.
struct Job {
    id: ProofId,
    expires: u64,
    recorded: oneshot::Sender<Result<bool, Unrecorded>>,
}

/// The queue of proofs to record, and the threads that record them.
pub(crate) struct ProofLedger {
    jobs: Sender<Job>,
    /// How long a request waits for its proof's record before it answers 503.
    timeout: Duration,
}

impl ProofLedger {
    /// Starts `pool_size` recording threads on the PostgreSQL database of
    /// `settings`. Fails when it cannot be reached now.
    pub(crate) fn start(settings: &DbSettings) -> Result<Self, DbError> {
        let (jobs, queue) = std::sync::mpsc::channel();
        let queue = Arc::new(Mutex::new(queue));
        let mut first = Some(settings.connect_postgres()?);
        for n in 0..settings.pool_size.max(1) {
            let mut db = PgSession::new(settings.clone(), first.take());
            let queue = Arc::clone(&queue);
            crate::background::spawn(&format!("proof-ledger-{n}"), move || {
                let mut swept = Instant::now();
                while let Some(batch) = take_batch(&queue.lock().unwrap_or_else(PoisonError::into_inner)) {
                    if !batch.is_empty() {
                        record(&mut db, batch);
                    }
                    // One thread sweeps, between batches.
                    if n == 0 && swept.elapsed() >= SWEEP {
                        swept = Instant::now();
                        if let Err(err) = db.with_retry(|conn| {
                            diesel::sql_query("DELETE FROM dpop_proofs WHERE expires < $1")
                                .bind::<BigInt, _>(unix_now() as i64)
                                .execute(conn)
                        }) {
                            log::warn!("cannot delete expired DPoP proofs: {err}");
                        }
                    }
                }
            });
        }
        Ok(Self {
            jobs,
            timeout: settings.connect_timeout * 2,
        })
    }
}

impl SharedProofs for ProofLedger {
    fn record(&self, id: ProofId, expires: u64) -> BoxFuture<'static, Result<bool, Unrecorded>> {
        let (recorded, answer) = oneshot::channel();
        // A closed queue (shutdown) drops the job: the request learns it.
        let _ = self.jobs.send(Job {
            id,
            expires,
            recorded,
        });
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, answer).await {
                Ok(Ok(recorded)) => recorded,
                Ok(Err(_)) | Err(_) => Err(Unrecorded),
            }
        })
    }
}

/// Waits for a proof (or a sweep's turn), then takes every proof queued
/// behind it; `None` once the queue has closed.
fn take_batch(queue: &Receiver<Job>) -> Option<Vec<Job>> {
    let first = match queue.recv_timeout(SWEEP) {
        Ok(job) => job,
        Err(RecvTimeoutError::Timeout) => return Some(Vec::new()),
        Err(RecvTimeoutError::Disconnected) => return None,
    };
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    Some(batch)
}

#[derive(QueryableByName)]
struct Recorded {
    #[diesel(sql_type = Binary)]
    id: Vec<u8>,
}

/// Records `batch` in one statement and tells each request whether its
/// proof was new to every instance.
fn record(db: &mut PgSession, mut batch: Vec<Job>) {
    // The same proof twice in one batch: the second is a replay (and one
    // statement may not touch a row twice).
    batch.sort_unstable_by_key(|job| job.id);
    let mut replays = Vec::new();
    let mut unique: Vec<Job> = Vec::with_capacity(batch.len());
    for job in batch {
        match unique.last() {
            Some(last) if last.id == job.id => replays.push(job),
            _ => unique.push(job),
        }
    }
    for replay in replays {
        let _ = replay.recorded.send(Ok(false));
    }
    let ids: Vec<Vec<u8>> = unique.iter().map(|job| job.id.to_vec()).collect();
    let expires: Vec<i64> = unique.iter().map(|job| job.expires as i64).collect();
    let now = unix_now() as i64;
    let recorded = db.with_retry(|conn| {
        diesel::sql_query(RECORD)
            .bind::<Array<Binary>, _>(&ids)
            .bind::<Array<BigInt>, _>(&expires)
            .bind::<BigInt, _>(now)
            .load::<Recorded>(conn)
    });
    match recorded {
        Ok(new) => {
            let new: std::collections::HashSet<Vec<u8>> = new.into_iter().map(|row| row.id).collect();
            for job in unique {
                let _ = job.recorded.send(Ok(new.contains(job.id.as_slice())));
            }
        }
        Err(err) => {
            log::error!("cannot record DPoP proofs: {err}");
            for job in unique {
                let _ = job.recorded.send(Err(Unrecorded));
            }
        }
    }
}
