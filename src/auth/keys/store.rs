//! The signing-key store: fetches the tenant's JWKS, caches it in memory,
//! refreshes it ahead of expiry and survives outages.
//!
//! - Keys load in the background at start; nothing waits for the tenant.
//! - The cache lifetime comes from `Cache-Control: max-age` (clamped); a
//!   background task refreshes at 80% of it, so requests never pay for it.
//! - A token naming an unknown `kid` waits for one refetch, so the first
//!   token signed by a rotated-in key passes. Such refetches start at most
//!   once per cooldown, counted from when they start, and run in a task of
//!   their own that every waiter shares: a client that drops its request
//!   cannot cancel a fetch, so a flood of forged kids costs the tenant one
//!   request per cooldown.
//! - A failed refresh keeps the last good keys (for `max_stale` after the
//!   first failure); a failed first load answers "unavailable" (503), never
//!   "invalid token".
//! - A cached token stays trusted only while the very key that verified it
//!   (same `kid`, same components) is published.
//!
//! Time is tokio's, so that the tests run on a paused clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::auth::keys::jwks::{KeySet, PublishedKey};
use crate::auth::keys::source::{FetchError, Fetched, KeySource};
use crate::metrics::METRICS;

/// Share of the cache lifetime after which the background refresh runs.
const REFRESH_AHEAD: f64 = 0.8;

/// How the key store fetches, caches and refreshes keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStoreSettings {
    /// Limit for one JWKS fetch, connect to last byte.
    pub fetch_timeout: Duration,
    /// Minimum time between two fetches triggered by unknown `kid`s; also
    /// the retry interval while fetches fail.
    pub refetch_cooldown: Duration,
    /// Cache lifetime when the JWKS response has no `Cache-Control: max-age`.
    pub default_ttl: Duration,
    /// Lower clamp of a `max-age`.
    pub min_ttl: Duration,
    /// Upper clamp of a `max-age`.
    pub max_ttl: Duration,
    /// How long the last good keys stay usable while refreshes fail.
    pub max_stale: Duration,
}

impl Default for KeyStoreSettings {
    fn default() -> Self {
        Self {
            fetch_timeout: Duration::from_secs(5),
            refetch_cooldown: Duration::from_secs(30),
            default_ttl: Duration::from_secs(600),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            max_stale: Duration::from_secs(24 * 3600),
        }
    }
}

/// Why no key could be handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyError {
    /// The published set, freshly fetched, has no such `kid`.
    UnknownKid,
    /// The keys cannot be fetched right now; retry after the given time.
    Unavailable(Duration),
}

#[derive(Default)]
struct State {
    keys: Arc<KeySet>,
    /// When the current keys were fetched; `None` until the first success.
    fetched_at: Option<Instant>,
    /// Their cache lifetime.
    ttl: Duration,
    /// Whether the latest fetch failed.
    failing: bool,
    /// When the latest fetch started for a request (the cooldown runs from there).
    last_on_demand: Option<Instant>,
    /// When the latest fetch, of any kind, ended.
    last_fetch_ended: Option<Instant>,
    /// The configuration error logged (at error level) since the last
    /// success: the same one again is only a debug line.
    reported: Option<String>,
}

impl State {
    /// How loud a failed fetch is: a warning, but a configuration error
    /// (an issuer spelled a trailing slash away) is one error line, then
    /// debug lines while it repeats, so that it is neither lost among nor
    /// repeated by the retries.
    fn failure_level(&mut self, why: &FetchError) -> log::Level {
        if !matches!(why, FetchError::IssuerSpelling { .. }) {
            return log::Level::Warn;
        }
        let why = why.to_string();
        if self.reported.as_ref() == Some(&why) {
            return log::Level::Debug;
        }
        self.reported = Some(why);
        log::Level::Error
    }
}

/// Cached verification keys of one issuer.
pub(crate) struct KeyStore {
    source: Box<dyn KeySource>,
    settings: KeyStoreSettings,
    state: RwLock<State>,
    /// True while a fetch task runs: there is never more than one.
    fetching: Mutex<bool>,
    /// Counts finished fetches; waiters watch it to learn that theirs ended.
    fetches_done: watch::Sender<u64>,
    /// Bumped each time a new key set is stored.
    generation: AtomicU64,
    /// Until when (ms after `epoch`) the stored keys may be used: forever
    /// while fetches succeed, `max_stale` after the first failure otherwise.
    usable_until_ms: AtomicU64,
    epoch: Instant,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("location", &self.source.location())
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

/// Whether a request waits for a fetch.
enum Flight {
    /// One was started now, for this request.
    Started,
    /// One was already running.
    Joined,
    /// None runs, and the cooldown forbids starting one.
    CoolingDown,
}

impl KeyStore {
    /// A store for the keys `source` publishes; nothing is fetched yet.
    pub(crate) fn new(source: Box<dyn KeySource>, settings: KeyStoreSettings) -> Self {
        Self {
            source,
            settings,
            state: RwLock::default(),
            fetching: Mutex::new(false),
            fetches_done: watch::Sender::new(0),
            generation: AtomicU64::new(0),
            usable_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// The key for `kid`, refetching the set once (within the cooldown) when
    /// the kid is unknown.
    pub(crate) async fn key_for(self: &Arc<Self>, kid: &str) -> Result<Arc<PublishedKey>, KeyError> {
        // A fetch that was already running may bring the kid; if it does not
        // (a background refresh can have read the set before the key was
        // published), one more, unless the cooldown forbids it.
        for _ in 0..2 {
            if let Some(key) = self.cached(kid) {
                return Ok(key);
            }
            let mut done = self.fetches_done.subscribe();
            let flight = self.join_or_start_fetch(true);
            if matches!(flight, Flight::CoolingDown) {
                break;
            }
            // The fetch task runs on whatever happens to this request.
            let _ = done.changed().await;
            if matches!(flight, Flight::Started) {
                break;
            }
        }
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        if self.is_ready() && !self.read().failing {
            Err(KeyError::UnknownKid)
        } else {
            Err(KeyError::Unavailable(self.next_attempt_in()))
        }
    }

    /// Joins the running fetch, or starts one: for a request (`on_demand`)
    /// only outside the cooldown, which then starts.
    fn join_or_start_fetch(self: &Arc<Self>, on_demand: bool) -> Flight {
        let mut fetching = self.fetching.lock().unwrap_or_else(PoisonError::into_inner);
        if *fetching {
            return Flight::Joined;
        }
        if on_demand {
            if !self.cooldown_remaining().is_zero() {
                return Flight::CoolingDown;
            }
            self.write().last_on_demand = Some(Instant::now());
        }
        *fetching = true;
        let store = Arc::clone(self);
        tokio::spawn(async move {
            let finished = FetchFinished(Arc::clone(&store));
            let started = Instant::now();
            let outcome = match tokio::time::timeout(store.settings.fetch_timeout, store.source.fetch()).await
            {
                Ok(outcome) => outcome,
                Err(_) => Err(FetchError::TimedOut),
            };
            let held = store.store(outcome);
            METRICS.jwks_fetch(store.source.location(), started.elapsed(), held);
            drop(finished);
        });
        Flight::Started
    }

    /// Fetches the set now, or waits for the fetch already running.
    pub(crate) async fn refresh(self: &Arc<Self>) {
        let mut done = self.fetches_done.subscribe();
        self.join_or_start_fetch(false);
        let _ = done.changed().await;
    }

    /// Loads the keys, then keeps them fresh: refreshes at 80% of their
    /// lifetime, and retries every cooldown while fetches fail. Runs until
    /// the task is dropped.
    pub(crate) async fn keep_fresh(self: Arc<Self>) {
        self.refresh().await;
        let mut done = self.fetches_done.subscribe();
        loop {
            // A fetch made for a request meanwhile resets the plan.
            tokio::select! {
                () = tokio::time::sleep(self.next_refresh_in()) => self.refresh().await,
                _ = done.changed() => {}
            }
            done.borrow_and_update();
        }
    }

    /// Stores keys obtained some other way (keys shipped with a deployment,
    /// benchmarks), as a fetch with the default lifetime would.
    #[cfg(any(test, feature = "test-support"))]
    pub(crate) fn load(&self, keys: KeySet) {
        let _ = self.store(Ok(Fetched { keys, max_age: None }));
    }

    /// How long until keys are fetched again while fetches fail: the end of
    /// the cooldown or the background retry, whichever is later; at least 1 s.
    fn next_attempt_in(&self) -> Duration {
        let retry = self.settings.refetch_cooldown;
        let background = match self.read().last_fetch_ended {
            Some(ended) => retry.saturating_sub(ended.elapsed()),
            None => Duration::ZERO,
        };
        background
            .max(self.cooldown_remaining())
            .max(Duration::from_secs(1))
    }

    /// True while `key` is still published as `kid` among the usable keys:
    /// the check a cached token makes on every hit. `seen` is the key-set
    /// generation the token last checked against; while no new set has been
    /// stored since, the answer is two atomic loads and no lock.
    pub(crate) fn still_trusts(&self, kid: &str, key: &PublishedKey, seen: &AtomicU64) -> bool {
        if self.millis() > self.usable_until_ms.load(Ordering::Acquire) {
            return false;
        }
        let current = self.generation.load(Ordering::Acquire);
        if seen.load(Ordering::Relaxed) == current {
            return true;
        }
        let present = self.read().keys.get(kid).is_some_and(|current| **current == *key);
        if present {
            seen.store(current, Ordering::Relaxed);
        }
        present
    }

    fn millis(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// True while usable keys are held (loaded, and not failing for longer
    /// than `max_stale`).
    pub(crate) fn is_ready(&self) -> bool {
        self.read().fetched_at.is_some() && self.millis() <= self.usable_until_ms.load(Ordering::Acquire)
    }

    fn next_refresh_in(&self) -> Duration {
        let state = self.read();
        match state.fetched_at {
            Some(at) if !state.failing => state.ttl.mul_f64(REFRESH_AHEAD).saturating_sub(at.elapsed()),
            _ => self.settings.refetch_cooldown,
        }
    }

    fn cached(&self, kid: &str) -> Option<Arc<PublishedKey>> {
        if !self.is_ready() {
            return None;
        }
        self.read().keys.get(kid).cloned()
    }

    fn cooldown_remaining(&self) -> Duration {
        match self.read().last_on_demand {
            Some(at) => self.settings.refetch_cooldown.saturating_sub(at.elapsed()),
            None => Duration::ZERO,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the outcome of a fetch: new keys, or a failure that keeps the
    /// old ones. Returns how many keys it brought, when it succeeded.
    fn store(&self, outcome: Result<Fetched, FetchError>) -> Option<usize> {
        let outcome = outcome.and_then(|fetched| {
            if fetched.keys.is_empty() {
                Err(FetchError::NoUsableKey)
            } else {
                Ok(fetched)
            }
        });
        let location = self.source.location();
        let mut state = self.write();
        match outcome {
            Ok(Fetched { keys, max_age }) => {
                if !state.failing
                    && state.keys.len() == keys.len()
                    && keys.iter().all(|(kid, key)| state.keys.get(kid) == Some(key))
                {
                    log::debug!("JWKS from {location} unchanged ({} key(s))", keys.len());
                } else {
                    log::info!("loaded {} signing key(s) from {location}", keys.len());
                }
                state.keys = Arc::new(keys);
                state.fetched_at = Some(Instant::now());
                state.ttl = max_age.map_or(self.settings.default_ttl, |ttl| {
                    ttl.clamp(self.settings.min_ttl, self.settings.max_ttl)
                });
                state.failing = false;
                state.reported = None;
                self.usable_until_ms.store(u64::MAX, Ordering::Release);
                self.generation.fetch_add(1, Ordering::AcqRel);
                Some(state.keys.len())
            }
            Err(why) => {
                let kept = match state.fetched_at {
                    Some(at) => format!(
                        "JWKS refresh from {location} failed, keeping the last good keys (fetched {}s ago)",
                        at.elapsed().as_secs()
                    ),
                    None => format!("JWKS fetch from {location} failed"),
                };
                match state.failure_level(&why) {
                    log::Level::Error => log::error!(
                        "{kept}: {why} (retried every {}s; logged again only if it changes)",
                        self.settings.refetch_cooldown.as_secs()
                    ),
                    level => log::log!(level, "{kept}: {why}"),
                }
                if !state.failing {
                    // The last good keys last `max_stale` from the first failure.
                    let usable_until = self
                        .millis()
                        .saturating_add(self.settings.max_stale.as_millis() as u64);
                    self.usable_until_ms.store(usable_until, Ordering::Release);
                }
                state.failing = true;
                None
            }
        }
    }
}

/// Ends a fetch, however its task ends (finished, or dropped with its
/// runtime): the next fetch may start, and waiters wake.
struct FetchFinished(Arc<KeyStore>);

impl Drop for FetchFinished {
    fn drop(&mut self) {
        let store = &self.0;
        store.write().last_fetch_ended = Some(Instant::now());
        *store.fetching.lock().unwrap_or_else(PoisonError::into_inner) = false;
        store.fetches_done.send_modify(|done| *done += 1);
    }
}

#[cfg(test)]
mod tests;
