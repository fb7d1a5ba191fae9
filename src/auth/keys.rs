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
//! - A failed refresh keeps the last good keys (up to `max_stale`); a failed
//!   first load answers "unavailable" (503), never "invalid token".

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use reqwest::header::CACHE_CONTROL;
use url::Url;

use crate::auth::jwks::{KeySet, parse_key_set};
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
    /// Until when (ms after `epoch`) the stored keys may be used: `max_stale`
    /// after the last successful fetch.
    usable_until_ms: AtomicU64,
    epoch: Instant,
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
        })
    }

    /// The key for `kid`, refetching the set once (within the cooldown) when
    /// the kid is unknown.
    pub async fn key_for(&self, kid: &str) -> Result<Arc<DecodingKey>, KeyError> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let fetches_before = self.fetches.load(Ordering::Acquire);
        {
            let _flight = self.fetch_lock.lock().await;
            let fetched_meanwhile = self.fetches.load(Ordering::Acquire) != fetches_before;
            if !fetched_meanwhile && self.cooldown_remaining().is_zero() {
                self.write().last_on_demand = Some(Instant::now());
                self.fetch_locked().await;
            }
        }
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        if self.is_ready() && !self.read().failing {
            Err(KeyError::UnknownKid)
        } else {
            Err(KeyError::Unavailable(
                self.cooldown_remaining().max(Duration::from_secs(1)),
            ))
        }
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
        loop {
            self.refresh().await;
            tokio::time::sleep(self.next_refresh_in()).await;
        }
    }

    /// True while `kid` is still among the usable keys: the check a cached
    /// token makes on every hit. `seen` is the key-set generation the token
    /// last checked against; while no new set has been stored since, the
    /// answer is two atomic loads and no lock.
    pub fn still_trusts(&self, kid: &str, seen: &AtomicU64) -> bool {
        if self.millis() > self.usable_until_ms.load(Ordering::Acquire) {
            return false;
        }
        let current = self.generation.load(Ordering::Acquire);
        if seen.load(Ordering::Relaxed) == current {
            return true;
        }
        let present = self.read().keys.contains_key(kid);
        if present {
            seen.store(current, Ordering::Relaxed);
        }
        present
    }

    fn millis(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// True while usable keys are held (loaded, and not older than `max_stale`).
    pub fn is_ready(&self) -> bool {
        self.read()
            .fetched_at
            .is_some_and(|at| at.elapsed() <= self.settings.max_stale)
    }

    fn next_refresh_in(&self) -> Duration {
        let state = self.read();
        match state.fetched_at {
            Some(at) if !state.failing => state.ttl.mul_f64(REFRESH_AHEAD).saturating_sub(at.elapsed()),
            _ => self.settings.refetch_cooldown,
        }
    }

    fn cached(&self, kid: &str) -> Option<Arc<DecodingKey>> {
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
        self.fetches.fetch_add(1, Ordering::AcqRel);
    }

    /// Records the outcome of a fetch: new keys, or a failure that keeps the old ones.
    fn store(&self, outcome: Result<(KeySet, Duration), String>) {
        let mut state = self.write();
        match outcome {
            Ok((keys, ttl)) => {
                if !state.failing
                    && state.keys.len() == keys.len()
                    && keys.keys().all(|k| state.keys.contains_key(k))
                {
                    log::debug!("JWKS from {} unchanged ({} key(s))", self.url, keys.len());
                } else {
                    log::info!("loaded {} signing key(s) from {}", keys.len(), self.url);
                }
                state.keys = Arc::new(keys);
                state.fetched_at = Some(Instant::now());
                state.ttl = ttl;
                state.failing = false;
                let usable_until = self
                    .millis()
                    .saturating_add(self.settings.max_stale.as_millis() as u64);
                self.usable_until_ms.store(usable_until, Ordering::Release);
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

/// The `max-age` of a `Cache-Control` value (`no-store`/`no-cache` count as 0).
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').map(str::trim).find_map(|directive| {
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        let (name, value) = directive.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("max-age") {
            return None;
        }
        value
            .trim()
            .trim_matches('"')
            .parse()
            .ok()
            .map(Duration::from_secs)
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
