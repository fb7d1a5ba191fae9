//! The users table as the server uses it. A user is the pair (issuer,
//! `sub`): two tenants may issue the same `sub`. The store remembers the users it
//! has written, so that a repeat visit costs a lookup in memory and no
//! database work; `last_seen_at` is refreshed in the background at most once
//! per interval, never holding the request. What it remembers of one SQLite
//! file is not trusted for another (a restored backup may lack the row).

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use quick_cache::Equivalent;
use quick_cache::sync::Cache;

use crate::db::{DbError, DbSettings, with_connection};
use crate::metrics::METRICS;
use crate::schema::users;
use crate::users::revocation::Revocations;
use crate::users::row::User;
use crate::users::writer::{Notify, Writer, WritersClosed};

/// Most users remembered in memory per instance.
const KNOWN_USERS_CAPACITY: usize = 100_000;

/// How long a `/readyz` database check is reused: a flood of probes costs
/// the database one query a second.
const READINESS_TTL: Duration = Duration::from_secs(1);

/// A user whose row exists, as remembered in memory.
#[derive(Debug)]
struct KnownUser {
    /// The row's `id`, as last written (a refresh that had to recreate a
    /// deleted row brings the new one).
    id: AtomicI32,
    /// The database file the row was written to (see [`Writer::epoch`]).
    epoch: u64,
    /// Milliseconds after `UserStore::started` of the last `last_seen_at` write.
    last_written_ms: AtomicU64,
}

/// A known user's key: its issuer and `sub`.
type UserKey = (Arc<str>, String);

/// A [`UserKey`] borrowed from a request, to look one up without copying:
/// it hashes as the tuple does, field by field.
struct UserRef<'a>(&'a str, &'a str);

impl Hash for UserRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
        self.1.hash(state);
    }
}

impl Equivalent<UserKey> for UserRef<'_> {
    fn equivalent(&self, key: &UserKey) -> bool {
        *key.0 == *self.0 && key.1 == self.1
    }
}

/// The users table as the server uses it.
pub struct UserStore {
    writer: Writer,
    revocations: Arc<Revocations>,
    known: Cache<UserKey, Arc<KnownUser>>,
    last_seen_interval: Duration,
    /// How long a request waits for its row before answering 503.
    timeout: Duration,
    started: Instant,
    /// The last readiness check and when it ran; its lock lets one run at a time.
    readiness: tokio::sync::Mutex<Option<(Instant, bool)>>,
    /// How many readiness checks reached the database.
    readiness_checks: AtomicU64,
}

impl UserStore {
    /// Opens the users table at `settings` (already migrated). Fails when the
    /// database cannot be reached now.
    pub fn open(settings: &DbSettings, last_seen_interval: Duration) -> Result<Self, DbError> {
        Self::open_until_closed(settings, last_seen_interval).map(|(store, _)| store)
    }

    /// Opens as [`open`](Self::open), and tells when the store, once dropped,
    /// has written what it had queued and closed the database.
    pub(crate) fn open_until_closed(
        settings: &DbSettings,
        last_seen_interval: Duration,
    ) -> Result<(Self, WritersClosed), DbError> {
        let (writer, closed) = Writer::start(settings)?;
        let revocations = Arc::new(Revocations::default());
        Revocations::keep_current(&revocations, settings);
        let store = Self {
            writer,
            revocations,
            known: Cache::new(KNOWN_USERS_CAPACITY),
            last_seen_interval,
            // The writer's own limits (SQLite's busy timeout, PostgreSQL's
            // connect timeout) answer first; this is the backstop.
            timeout: settings.connect_timeout * 2,
            started: Instant::now(),
            readiness: tokio::sync::Mutex::new(None),
            readiness_checks: AtomicU64::new(0),
        };
        Ok((store, closed))
    }

    /// The `users.id` of the user `sub` of `issuer`, writing its row on
    /// first sight. A known user costs no database work; its `last_seen_at`
    /// is refreshed in the background once per interval.
    pub async fn id_of(&self, issuer: &Arc<str>, sub: &str) -> Result<i32, DbError> {
        if let Some(known) = self.known.get(&UserRef(issuer, sub))
            && known.epoch == self.writer.epoch()
        {
            self.refresh_if_due(issuer, sub, &known);
            return Ok(known.id.load(Ordering::Relaxed));
        }
        // Boxed so that the future of every request stays small: only a
        // first sight carries the wait for the writer.
        Box::pin(self.record(issuer, sub)).await
    }

    /// True when a token of `sub` of `issuer` issued at `issued_at` (seconds
    /// since 1970, if it says) is revoked (`users revoke`): as of the
    /// revoked rows read at most about a second ago.
    pub fn is_revoked(&self, issuer: &str, sub: &str, issued_at: Option<u64>) -> bool {
        self.revocations.refuses(issuer, sub, issued_at)
    }

    /// Writes the user's row (or finds it) through the writer, and
    /// remembers the user.
    async fn record(&self, issuer: &Arc<str>, sub: &str) -> Result<i32, DbError> {
        let (reply, written) = tokio::sync::oneshot::channel();
        let queued = Instant::now();
        self.writer.upsert(issuer, sub, Notify::Request(reply));
        let written = tokio::time::timeout(self.timeout, written).await;
        METRICS.db_wait(queued.elapsed());
        let written = match written {
            Ok(Ok(Ok(written))) => written,
            Ok(Ok(Err(failure))) => return Err(unshare(failure)),
            Ok(Err(_)) => return Err(DbError::WriterGone),
            Err(_) => return Err(DbError::TimedOut),
        };
        let known = Arc::new(KnownUser {
            id: AtomicI32::new(written.row.id),
            epoch: written.epoch,
            last_written_ms: AtomicU64::new(self.millis()),
        });
        self.known.insert((Arc::clone(issuer), written.row.sub), known);
        Ok(written.row.id)
    }

    /// Queues a `last_seen_at` write for a known user once the interval has
    /// passed; of concurrent requests, only one wins the right to. Never waits.
    fn refresh_if_due(&self, issuer: &Arc<str>, sub: &str, known: &Arc<KnownUser>) {
        let now_ms = self.millis();
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
        let known = Arc::clone(known);
        // Another instance or an operator may have deleted the row, which
        // the upsert has just recreated under a new id.
        let refreshed = move |id| known.id.store(id, Ordering::Relaxed);
        self.writer
            .upsert(issuer, sub, Notify::Refresh(Box::new(refreshed)));
    }

    fn millis(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// True when the database answered a check within the last second. At
    /// most one check runs at a time; callers meanwhile share its answer.
    pub async fn is_ready(&self) -> bool {
        let mut last = self.readiness.lock().await;
        if let Some((at, ready)) = *last
            && at.elapsed() < READINESS_TTL
        {
            return ready;
        }
        self.readiness_checks.fetch_add(1, Ordering::Relaxed);
        let ready = matches!(
            tokio::time::timeout(self.timeout, self.writer.ping()).await,
            Ok(Ok(Ok(())))
        );
        *last = Some((Instant::now(), ready));
        ready
    }
}

/// The error itself when this was its only holder, else its description.
fn unshare(failure: Arc<DbError>) -> DbError {
    Arc::try_unwrap(failure).unwrap_or_else(|shared| match &*shared {
        DbError::FileMissing(path) => DbError::FileMissing(path.clone()),
        DbError::TimedOut => DbError::TimedOut,
        DbError::WriterGone => DbError::WriterGone,
        other => DbError::Shared(other.to_string()),
    })
}

/// Every user in the database at `settings`, oldest first (for `users` and
/// tests: it opens a connection of its own).
pub fn list(settings: &DbSettings) -> Result<Vec<User>, DbError> {
    Ok(with_connection!(settings, |conn| users::table
        .order(users::id)
        .select(User::as_select())
        .load(conn)?))
}

/// Gives the rows written before users had an issuer (issuer `''`) to
/// `issuer`, the first configured one: a single-issuer deployment keeps
/// every user and every id. A row whose user already has a row of that
/// issuer is left as it is (and listed with an empty issuer). How many
/// rows were adopted.
pub fn adopt_rows_without_issuer(settings: &DbSettings, issuer: &str) -> Result<usize, DbError> {
    // The one parameter, named twice (`?1` on SQLite, `$1` on PostgreSQL).
    let adopt = |parameter: &str| {
        diesel::sql_query(format!(
            "UPDATE users SET issuer = {parameter} WHERE issuer = '' \
             AND sub NOT IN (SELECT sub FROM users WHERE issuer = {parameter})"
        ))
        .bind::<diesel::sql_types::Text, _>(issuer)
    };
    let parameter = if settings.is_postgres() { "$1" } else { "?1" };
    Ok(with_connection!(settings, |conn| adopt(parameter).execute(conn)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::migrate;
    use futures_util::future::join_all;

    const ISSUER: &str = "https://a.example.com/";

    fn store(dir: &std::path::Path) -> UserStore {
        let settings = DbSettings::new(dir.join("users.db").to_string_lossy());
        migrate(&settings).unwrap();
        UserStore::open(&settings, Duration::from_secs(300)).unwrap()
    }

    #[tokio::test]
    async fn a_flood_of_readiness_probes_costs_one_check_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let answers = join_all((0..200).map(|_| store.is_ready())).await;
        assert!(answers.iter().all(|ready| *ready));
        assert_eq!(store.readiness_checks.load(Ordering::Relaxed), 1);
        tokio::time::sleep(READINESS_TTL).await;
        assert!(store.is_ready().await);
        assert_eq!(
            store.readiness_checks.load(Ordering::Relaxed),
            2,
            "a second later, one more"
        );
    }

    #[tokio::test]
    async fn a_storm_of_first_sights_writes_every_row_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let issuer: Arc<str> = ISSUER.into();
        let subs: Vec<String> = (0..2500).map(|i| format!("auth0|storm-{i}")).collect();
        let ids = join_all(subs.iter().map(|sub| store.id_of(&issuer, sub))).await;
        let mut ids: Vec<i32> = ids.into_iter().map(Result::unwrap).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), subs.len(), "one id per sub");
        let rows = list(&DbSettings::new(dir.path().join("users.db").to_string_lossy())).unwrap();
        let mut written: Vec<String> = rows.into_iter().map(|user| user.sub).collect();
        written.sort();
        let mut expected = subs.clone();
        expected.sort();
        assert_eq!(written, expected);
    }

    #[tokio::test]
    async fn concurrent_first_sights_of_one_sub_make_one_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let issuer: Arc<str> = ISSUER.into();
        let ids = join_all((0..50).map(|_| store.id_of(&issuer, "auth0|same"))).await;
        let ids: Vec<i32> = ids.into_iter().map(Result::unwrap).collect();
        assert!(ids.windows(2).all(|pair| pair[0] == pair[1]), "{ids:?}");
        let rows = list(&DbSettings::new(dir.path().join("users.db").to_string_lossy())).unwrap();
        assert_eq!(rows.len(), 1);
    }

    #[tokio::test]
    async fn the_same_sub_from_two_issuers_is_two_users() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let (a, b): (Arc<str>, Arc<str>) = (ISSUER.into(), "https://b.example.com/".into());
        let of_a = store.id_of(&a, "auth0|victim").await.unwrap();
        let of_b = store.id_of(&b, "auth0|victim").await.unwrap();
        assert_ne!(of_a, of_b);
        // Remembered apart too.
        assert_eq!(store.id_of(&a, "auth0|victim").await.unwrap(), of_a);
        assert_eq!(store.id_of(&b, "auth0|victim").await.unwrap(), of_b);
        let rows = list(&DbSettings::new(dir.path().join("users.db").to_string_lossy())).unwrap();
        let rows: Vec<(i32, &str, &str)> = rows
            .iter()
            .map(|row| (row.id, row.issuer.as_str(), row.sub.as_str()))
            .collect();
        assert_eq!(rows, [(of_a, &*a, "auth0|victim"), (of_b, &*b, "auth0|victim")]);
    }
}
