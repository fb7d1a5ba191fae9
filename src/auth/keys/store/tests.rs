//! The key store's timing, on tokio's paused clock: refreshes, cooldowns,
//! outages and slow tenants, with a stand-in tenant instead of HTTP.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::BoxFuture;
use futures_util::future::join_all;

use super::*;
use crate::auth::keys::jwks::parse_key_set;

/// A key whose modulus is `byte` repeated: distinct bytes, distinct keys.
fn key(byte: u8) -> Arc<PublishedKey> {
    let n = URL_SAFE_NO_PAD.encode([byte; 256]);
    let body = serde_json::json!({"keys": [{"kty": "RSA", "kid": "k", "n": n, "e": "AQAB"}]});
    parse_key_set(body.to_string().as_bytes())
        .unwrap()
        .remove("k")
        .unwrap()
}

/// What the stand-in tenant answers.
struct Published {
    keys: Result<KeySet, u16>,
    max_age: Option<Duration>,
    delay: Duration,
}

/// A tenant whose answers the test sets, counting fetches.
#[derive(Clone)]
struct Tenant {
    published: Arc<Mutex<Published>>,
    fetches: Arc<AtomicUsize>,
}

impl Tenant {
    fn new() -> Self {
        Self {
            published: Arc::new(Mutex::new(Published {
                keys: Ok(KeySet::new()),
                max_age: None,
                delay: Duration::ZERO,
            })),
            fetches: Arc::default(),
        }
    }

    fn publish(&self, keys: &[(&str, &Arc<PublishedKey>)]) {
        let set: HashMap<_, _> = keys
            .iter()
            .map(|(kid, key)| (kid.to_string(), Arc::clone(key)))
            .collect();
        self.published.lock().unwrap().keys = Ok(set);
    }

    fn fail_with(&self, status: u16) {
        self.published.lock().unwrap().keys = Err(status);
    }

    fn set_max_age(&self, max_age: Duration) {
        self.published.lock().unwrap().max_age = Some(max_age);
    }

    fn set_delay(&self, delay: Duration) {
        self.published.lock().unwrap().delay = delay;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl KeySource for Tenant {
    /// Answers what was published when the request arrived, after the delay.
    fn fetch(&self) -> BoxFuture<'_, Result<Fetched, FetchError>> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let (answer, delay) = {
            let published = self.published.lock().unwrap();
            let answer = match &published.keys {
                Ok(keys) => Ok(Fetched {
                    keys: keys.clone(),
                    max_age: published.max_age,
                }),
                Err(status) => Err(FetchError::Status(*status)),
            };
            (answer, published.delay)
        };
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            answer
        })
    }

    fn location(&self) -> &str {
        "https://tenant.test/.well-known/jwks.json"
    }
}

fn settings() -> KeyStoreSettings {
    KeyStoreSettings {
        min_ttl: Duration::from_secs(1),
        ..KeyStoreSettings::default()
    }
}

/// A store of `tenant`'s keys, loaded, with its refresh loop running.
async fn running_store(tenant: &Tenant, settings: KeyStoreSettings) -> Arc<KeyStore> {
    let store = Arc::new(KeyStore::new(Box::new(tenant.clone()), settings));
    tokio::spawn(Arc::clone(&store).keep_fresh());
    wait_for(|| tenant.fetches() >= 1 && !*store.fetching.lock().unwrap()).await;
    store
}

/// Lets time pass on the paused clock until `done` holds (at most a minute).
async fn wait_for(mut done: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within a minute of paused time");
}

#[tokio::test(start_paused = true)]
async fn an_unknown_kid_is_fetched_once_and_then_known() {
    let tenant = Tenant::new();
    let (a, b) = (key(0xC3), key(0xC5));
    tenant.publish(&[("a", &a)]);
    let store = running_store(&tenant, settings()).await;
    assert_eq!(store.key_for("a").await.unwrap(), a);

    tenant.publish(&[("a", &a), ("b", &b)]);
    assert_eq!(store.key_for("b").await.unwrap(), b);
    assert_eq!(tenant.fetches(), 2, "one refetch for the new kid");
}

#[tokio::test(start_paused = true)]
async fn a_storm_of_unknown_kids_costs_one_fetch_per_cooldown() {
    let tenant = Tenant::new();
    tenant.publish(&[("a", &key(0xC3))]);
    let store = running_store(&tenant, settings()).await;
    let kids: Vec<String> = (0..100).map(|i| format!("forged-{i}")).collect();
    let answers = join_all(kids.iter().map(|kid| store.key_for(kid))).await;
    assert!(answers.iter().all(|a| *a == Err(KeyError::UnknownKid)));
    assert_eq!(tenant.fetches(), 2, "a single refetch for the whole storm");

    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(store.key_for("forged-again").await, Err(KeyError::UnknownKid));
    assert_eq!(tenant.fetches(), 2, "none within the cooldown");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(store.key_for("forged-later").await, Err(KeyError::UnknownKid));
    assert_eq!(tenant.fetches(), 3, "one more once it has passed");
}

#[tokio::test(start_paused = true)]
async fn requests_cancelled_mid_fetch_cannot_bypass_the_cooldown() {
    let tenant = Tenant::new();
    tenant.publish(&[("a", &key(0xC3))]);
    let store = running_store(&tenant, settings()).await;
    // A slow tenant, and clients that give up (drop the request) 10 ms
    // after sending it, fifty times over five seconds.
    tenant.set_delay(Duration::from_secs(2));
    let mut cancelled = 0;
    for i in 0..50 {
        let kid = format!("random-{i}");
        if tokio::time::timeout(Duration::from_millis(10), store.key_for(&kid))
            .await
            .is_err()
        {
            cancelled += 1;
        }
        tokio::time::sleep(Duration::from_millis(90)).await;
    }
    assert!(cancelled >= 20, "requests were cancelled mid-fetch ({cancelled})");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        tenant.fetches(),
        2,
        "one fetch for the cooldown, not one per request"
    );
    assert!(
        !*store.fetching.lock().unwrap(),
        "the shared fetch ran to its end"
    );
}

#[tokio::test(start_paused = true)]
async fn a_new_key_passes_while_a_background_refresh_reads_the_old_set() {
    let tenant = Tenant::new();
    let (a, b) = (key(0xC3), key(0xC5));
    tenant.publish(&[("a", &a)]);
    tenant.set_max_age(Duration::from_secs(2));
    let store = running_store(&tenant, settings()).await;
    // The refresh at 80% of 2 s takes 1.5 s and reads the set of its start.
    tenant.set_delay(Duration::from_millis(1500));
    wait_for(|| tenant.fetches() == 2).await;
    tenant.set_delay(Duration::ZERO);
    tenant.publish(&[("a", &a), ("b", &b)]);

    assert_eq!(store.key_for("b").await.unwrap(), b);
    assert_eq!(tenant.fetches(), 3, "its own refetch, after the stale one");
}

#[tokio::test(start_paused = true)]
async fn a_removed_or_replaced_key_is_untrusted_after_the_next_refresh() {
    let tenant = Tenant::new();
    let (a, impostor) = (key(0xC3), key(0xC5));
    tenant.publish(&[("a", &a)]);
    tenant.set_max_age(Duration::from_secs(1));
    let store = running_store(&tenant, settings()).await;
    let seen = AtomicU64::new(u64::MAX);
    assert!(store.still_trusts("a", &a, &seen));

    tenant.publish(&[("a", &impostor)]);
    wait_for(|| tenant.fetches() >= 2).await;
    assert!(
        !store.still_trusts("a", &a, &seen),
        "another key under the same kid"
    );

    tenant.publish(&[("b", &a)]);
    wait_for(|| tenant.fetches() >= 3).await;
    assert!(
        !store.still_trusts("a", &impostor, &seen),
        "a kid no longer published"
    );
    assert_eq!(store.key_for("a").await, Err(KeyError::UnknownKid));
}

#[tokio::test(start_paused = true)]
async fn during_an_outage_the_last_good_keys_last_max_stale() {
    let tenant = Tenant::new();
    let a = key(0xC3);
    tenant.publish(&[("a", &a)]);
    tenant.set_max_age(Duration::from_secs(1));
    let settings = KeyStoreSettings {
        max_stale: Duration::from_secs(2),
        refetch_cooldown: Duration::from_secs(1),
        ..settings()
    };
    let store = running_store(&tenant, settings).await;
    tenant.fail_with(503);
    wait_for(|| store.read().failing).await;
    let failed_at = Instant::now();
    assert_eq!(store.key_for("a").await.unwrap(), a, "last good keys kept");
    assert!(
        matches!(store.key_for("new").await, Err(KeyError::Unavailable(_))),
        "a kid that cannot be checked is unavailable, not invalid"
    );

    wait_for(|| !store.is_ready()).await;
    let stale_after = failed_at.elapsed();
    assert!(
        stale_after >= Duration::from_millis(1900) && stale_after <= Duration::from_millis(2100),
        "{stale_after:?}"
    );
    assert!(matches!(store.key_for("a").await, Err(KeyError::Unavailable(_))));
}

#[tokio::test(start_paused = true)]
async fn a_healthy_tenants_keys_never_go_stale() {
    let tenant = Tenant::new();
    tenant.publish(&[("a", &key(0xC3))]);
    tenant.set_max_age(Duration::from_secs(600));
    let settings = KeyStoreSettings {
        max_stale: Duration::from_secs(1),
        ..settings()
    };
    let store = running_store(&tenant, settings).await;
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert!(store.is_ready());
    assert_eq!(tenant.fetches(), 1, "keys are good for their max-age");
}

#[tokio::test(start_paused = true)]
async fn max_age_sets_the_refresh_time_within_its_clamp() {
    let tenant = Tenant::new();
    tenant.publish(&[("a", &key(0xC3))]);
    tenant.set_max_age(Duration::from_secs(10));
    let _store = running_store(&tenant, settings()).await;
    tokio::time::sleep(Duration::from_millis(7900)).await;
    assert_eq!(tenant.fetches(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(tenant.fetches(), 2, "refreshed at 80% of max-age");

    let tenant = Tenant::new();
    tenant.publish(&[("a", &key(0xC3))]);
    tenant.set_max_age(Duration::ZERO);
    let _store = running_store(&tenant, settings()).await;
    tokio::time::sleep(Duration::from_millis(4100)).await;
    assert_eq!(
        tenant.fetches(),
        6,
        "max-age 0 is clamped to JWKS_MIN_TTL_SECS (1 s)"
    );

    let tenant = Tenant::new();
    tenant.publish(&[("a", &key(0xC3))]);
    let default_ttl = KeyStoreSettings {
        default_ttl: Duration::from_secs(100),
        ..settings()
    };
    let _store = running_store(&tenant, default_ttl).await;
    tokio::time::sleep(Duration::from_secs(81)).await;
    assert_eq!(tenant.fetches(), 2, "no max-age: the default lifetime");
}

#[tokio::test(start_paused = true)]
async fn an_outage_at_start_is_unavailable_then_recovers_by_itself() {
    let tenant = Tenant::new();
    let a = key(0xC3);
    tenant.publish(&[("a", &a)]);
    tenant.fail_with(500);
    let store = running_store(&tenant, settings()).await;
    match store.key_for("a").await {
        Err(KeyError::Unavailable(retry)) => assert!(retry >= Duration::from_secs(1), "{retry:?}"),
        other => panic!("{other:?}"),
    }
    assert!(!store.is_ready());

    tenant.publish(&[("a", &a)]);
    wait_for(|| store.is_ready()).await;
    assert_eq!(store.key_for("a").await.unwrap(), a);
}

#[tokio::test(start_paused = true)]
async fn a_slow_tenant_is_abandoned_at_the_fetch_timeout() {
    let tenant = Tenant::new();
    tenant.publish(&[("a", &key(0xC3))]);
    tenant.set_delay(Duration::from_secs(4));
    let settings = KeyStoreSettings {
        fetch_timeout: Duration::from_secs(1),
        ..settings()
    };
    let store = Arc::new(KeyStore::new(Box::new(tenant.clone()), settings));
    let started = Instant::now();
    assert!(matches!(store.key_for("a").await, Err(KeyError::Unavailable(_))));
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_key_set_without_usable_keys_is_a_failed_fetch() {
    let tenant = Tenant::new();
    let store = running_store(&tenant, settings()).await;
    assert!(!store.is_ready());
    assert!(matches!(store.key_for("a").await, Err(KeyError::Unavailable(_))));
}

#[test]
fn an_issuer_spelling_error_is_logged_once_as_an_error_until_keys_load() {
    let spelling = |published: &str| FetchError::IssuerSpelling {
        document: "https://h/.well-known/openid-configuration".into(),
        published: published.into(),
        configured: "https://h/t".into(),
    };
    let mut state = State::default();
    assert_eq!(state.failure_level(&FetchError::TimedOut), log::Level::Warn);
    assert_eq!(state.failure_level(&spelling("https://h/t/")), log::Level::Error);
    assert_eq!(state.failure_level(&spelling("https://h/t/")), log::Level::Debug);
    assert_eq!(state.failure_level(&FetchError::Status(503)), log::Level::Warn);
    assert_eq!(state.failure_level(&spelling("https://h/t/")), log::Level::Debug);
    // Another error of the kind, or the same after a success, is news.
    assert_eq!(state.failure_level(&spelling("https://h/t//")), log::Level::Error);
    state.reported = None;
    assert_eq!(state.failure_level(&spelling("https://h/t//")), log::Level::Error);
}
