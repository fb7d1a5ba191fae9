//! The signing-key store: fetches the tenant's JWKS, caches it in memory,
//! refreshes it ahead of expiry and survives outages.
//!
//! - Keys load in the background at start; nothing waits for the tenant.
//! - The cache lifetime comes from `Cache-Control: max-age` (clamped); a
//!   background task refreshes at 80% of it, so requests never pay for it.
//! - A token naming an unknown `kid` waits for one refetch, so the first
//!   token signed by a rotated-in key passes. Such refetches are single-flight
//!   and start at most once per cooldown, so a flood of forged kids costs the
//!   tenant one request per cooldown.
//! - A failed refresh keeps the last good keys (for `max_stale` after the
//!   first failure); a failed first load answers "unavailable" (503), never
//!   "invalid token".
//! - A cached token stays trusted only while the very key that verified it
//!   (same `kid`, same components) is published.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use reqwest::header::CACHE_CONTROL;
use tokio::sync::Notify;
use url::Url;

use crate::auth::jwks::{KeySet, PublishedKey, parse_key_set};
use crate::config::KeyStoreSettings;

/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Share of the cache lifetime after which the background refresh runs.
const REFRESH_AHEAD: f64 = 0.8;

/// Why no key could be handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
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
    /// When a request last triggered a fetch (the cooldown starts there).
    last_on_demand: Option<Instant>,
    /// When the latest fetch, of any kind, ended.
    last_fetch_ended: Option<Instant>,
}

/// Cached verification keys of one issuer.
pub struct KeyStore {
    url: Url,
    client: reqwest::Client,
    settings: KeyStoreSettings,
    state: RwLock<State>,
    /// Held while a fetch runs: the single flight.
    fetch_lock: tokio::sync::Mutex<()>,
    /// Completed fetches; lets a waiter see that a fetch ran meanwhile.
    fetches: AtomicU64,
    /// Bumped each time a new key set is stored.
    generation: AtomicU64,
    /// Until when (ms after `epoch`) the stored keys may be used: forever
    /// while fetches succeed, `max_stale` after the first failure otherwise.
    usable_until_ms: AtomicU64,
    epoch: Instant,
    /// Told whenever a fetch ends, so that the background loop plans its
    /// next refresh from the latest outcome.
    fetch_ended: Notify,
}

impl KeyStore {
    /// A store for the keys published at `url`; nothing is fetched yet.
    pub fn new(url: Url, settings: KeyStoreSettings) -> Result<Self, reqwest::Error> {
        let mut client = reqwest::Client::builder();
        if crate::config::is_loopback(&url) {
            // This machine (the development issuer, a local tenant stub) is
            // never reached through an HTTP(S)_PROXY.
            client = client.no_proxy();
        }
        let client = client
            .timeout(settings.fetch_timeout)
            .connect_timeout(settings.fetch_timeout)
            .redirect(reqwest::redirect::Policy::none())
            // Workers run separate runtimes; an idle pooled connection must
            // not outlive the runtime that opened it.
            .pool_max_idle_per_host(0)
            .user_agent(concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            url,
            client,
            settings,
            state: RwLock::default(),
            fetch_lock: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            usable_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            fetch_ended: Notify::new(),
        })
    }

    /// The key for `kid`, refetching the set once (within the cooldown) when
    /// the kid is unknown.
    pub async fn key_for(&self, kid: &str) -> Result<Arc<PublishedKey>, KeyError> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        {
            // Whoever held the flight before us may have brought the kid; if
            // not, one fetch per cooldown, even if a background refresh (which
            // may have started before the key was published) just ended.
            let _flight = self.fetch_lock.lock().await;
            if self.cached(kid).is_none() && self.cooldown_remaining().is_zero() {
                let started = Instant::now();
                self.fetch_locked().await;
                // Only a fetch that ran to its end starts the cooldown: if this
                // request is dropped mid-fetch, the next waiter fetches.
                self.write().last_on_demand = Some(started);
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

    /// Loads keys from a JWKS document obtained some other way (benchmarks,
    /// or keys shipped with the deployment), as a fetch with the default
    /// lifetime would. Returns how many usable keys it held.
    pub fn load_document(&self, body: &[u8]) -> Result<usize, String> {
        let keys = parse_key_set(body)?;
        let count = keys.len();
        self.store(Ok((keys, self.settings.default_ttl)));
        Ok(count)
    }

    /// Fetches the set now, or waits for the fetch already running.
    pub async fn refresh(&self) {
        let fetches_before = self.fetches.load(Ordering::Acquire);
        let _flight = self.fetch_lock.lock().await;
        if self.fetches.load(Ordering::Acquire) == fetches_before {
            self.fetch_locked().await;
        }
    }

    /// Loads the keys, then keeps them fresh: refreshes at 80% of their
    /// lifetime, and retries every cooldown while fetches fail. Runs until
    /// the task is dropped.
    pub async fn keep_fresh(self: Arc<Self>) {
        self.refresh().await;
        loop {
            // A fetch made for a request meanwhile resets the plan.
            let fetch_ended = self.fetch_ended.notified();
            tokio::select! {
                () = tokio::time::sleep(self.next_refresh_in()) => self.refresh().await,
                () = fetch_ended => {}
            }
        }
    }

    /// True while `key` is still published as `kid` among the usable keys:
    /// the check a cached token makes on every hit. `seen` is the key-set
    /// generation the token last checked against; while no new set has been
    /// stored since, the answer is two atomic loads and no lock.
    pub fn still_trusts(&self, kid: &str, key: &PublishedKey, seen: &AtomicU64) -> bool {
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
    pub fn is_ready(&self) -> bool {
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
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One fetch; the caller holds `fetch_lock`.
    async fn fetch_locked(&self) {
        let outcome = self.fetch().await;
        self.store(outcome);
        self.write().last_fetch_ended = Some(Instant::now());
        self.fetches.fetch_add(1, Ordering::AcqRel);
        self.fetch_ended.notify_waiters();
    }

    /// Records the outcome of a fetch: new keys, or a failure that keeps the old ones.
    fn store(&self, outcome: Result<(KeySet, Duration), String>) {
        let mut state = self.write();
        match outcome {
            Ok((keys, ttl)) => {
                if !state.failing
                    && state.keys.len() == keys.len()
                    && keys.iter().all(|(kid, key)| state.keys.get(kid) == Some(key))
                {
                    log::debug!("JWKS from {} unchanged ({} key(s))", self.url, keys.len());
                } else {
                    log::info!("loaded {} signing key(s) from {}", keys.len(), self.url);
                }
                state.keys = Arc::new(keys);
                state.fetched_at = Some(Instant::now());
                state.ttl = ttl;
                state.failing = false;
                self.usable_until_ms.store(u64::MAX, Ordering::Release);
                self.generation.fetch_add(1, Ordering::AcqRel);
            }
            Err(why) => {
                match state.fetched_at {
                    Some(at) => log::warn!(
                        "JWKS refresh from {} failed, keeping the last good keys (fetched {}s ago): {why}",
                        self.url,
                        at.elapsed().as_secs()
                    ),
                    None => log::warn!("JWKS fetch from {} failed: {why}", self.url),
                }
                if !state.failing {
                    // The last good keys last `max_stale` from the first failure.
                    let usable_until = self
                        .millis()
                        .saturating_add(self.settings.max_stale.as_millis() as u64);
                    self.usable_until_ms.store(usable_until, Ordering::Release);
                }
                state.failing = true;
            }
        }
    }

    async fn fetch(&self) -> Result<(KeySet, Duration), String> {
        let mut response = self
            .client
            .get(self.url.clone())
            .send()
            .await
            .map_err(describe_http_error)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("HTTP {}", response.status()));
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
        {
            return Err("response larger than 1 MiB".into());
        }
        let ttl = response
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|value| value.to_str().ok())
            .and_then(max_age)
            .map_or(self.settings.default_ttl, |ttl| {
                ttl.clamp(self.settings.min_ttl, self.settings.max_ttl)
            });
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe_http_error)? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err("response larger than 1 MiB".into());
            }
            body.extend_from_slice(&chunk);
        }
        let keys = parse_key_set(&body)?;
        if keys.is_empty() {
            return Err("the key set has no usable RS256 signing key".into());
        }
        Ok((keys, ttl))
    }
}

/// The `max-age` of a `Cache-Control` value; `no-store` or `no-cache`
/// anywhere in it count as 0, and an age too large to count as the largest.
fn max_age(cache_control: &str) -> Option<Duration> {
    let directives = || cache_control.split(',').map(str::trim);
    if directives().any(|d| d.eq_ignore_ascii_case("no-store") || d.eq_ignore_ascii_case("no-cache")) {
        return Some(Duration::ZERO);
    }
    directives().find_map(|directive| {
        let (name, value) = directive.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("max-age") {
            return None;
        }
        let digits = value.trim().trim_matches('"');
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Duration::from_secs(digits.parse().unwrap_or(u64::MAX)))
    })
}

fn describe_http_error(err: reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".into()
    } else if err.is_connect() {
        "cannot connect".into()
    } else {
        err.without_url().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age("public, max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(
            max_age("max-age=\"60\", must-revalidate"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }
}
