//! What an operator scrapes: Prometheus metrics (OpenMetrics text) of the
//! requests, the authentication decisions, the key stores, the token cache
//! and the users table.
//!
//! One registry per process, filled as the server works; label values come
//! from closed sets (route patterns, outcomes, configured issuers), so the
//! number of series stays bounded whatever clients send (a method is named
//! only when HTTP defines it). Recording is an atomic add, or, for a
//! request, a lookup in a per-thread map of the series' handles: the hot
//! path pays next to nothing. The registry is served only on its own
//! listener (`METRICS_ADDR`), never on the API's port.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use foldhash::fast::FixedState;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The metrics of this process.
pub(crate) static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// How an authentication attempt ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub(crate) enum Outcome {
    /// Admitted.
    accepted,
    /// No credentials.
    unauthorized,
    /// A malformed `Authorization` header.
    invalid_request,
    /// A token that failed validation.
    invalid_token,
    /// A DPoP proof that failed its checks.
    invalid_dpop_proof,
    /// A DPoP proof without the current server nonce.
    use_dpop_nonce,
    /// A valid token without what the route needs.
    insufficient_scope,
    /// A valid token from a login that falls short of what the route needs.
    insufficient_user_authentication,
    /// A DPoP key over its share of the replay cache (429).
    too_many_requests,
    /// Keys or the users table unavailable (503), or a misconfigured route.
    unavailable,
}

/// Which of a connection's deadlines passed.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub(crate) enum Deadline {
    /// A request not received in full in time.
    request,
    /// A response the client did not read in time.
    send,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeadlineLabels {
    deadline: Deadline,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: Outcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    /// One of [`METHODS`], or `other`.
    method: &'static str,
    route: String,
    status: u16,
}

/// The methods counted by name. Any other is an extension method a client
/// made up, counted as `other`: a label value a client chooses would let it
/// create series without end.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

fn method_label(method: &str) -> &'static str {
    METHODS
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("other")
}

thread_local! {
    /// This thread's handles on the request series it has recorded (of
    /// [`METRICS`], the only registry): recording a request is then a
    /// lookup in a small map, with a fast hash and no lock. A handle shares
    /// its value with the registry's series.
    static HTTP_SERIES: RefCell<HashMap<HttpLabels, (Counter, Histogram), FixedState>> =
        RefCell::default();
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssuerLabels {
    issuer: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchLabels {
    issuer: String,
    result: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric family, registered once.
pub(crate) struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<HttpLabels>,
    auth_decisions: Family<OutcomeLabels, Counter>,
    jwks_fetches: Family<FetchLabels, Counter>,
    jwks_fetch_duration: HistogramFamily<IssuerLabels>,
    jwks_keys: Family<IssuerLabels, Gauge>,
    jwks_last_success: Family<IssuerLabels, Gauge>,
    token_cache_lookups: Family<ResultLabels, Counter>,
    users_created: Counter,
    db_wait: Histogram,
    users_batch_rows: Histogram,
    connections_timed_out: Family<DeadlineLabels, Counter>,
    /// The counters of the hot path, resolved once: an increment is then
    /// one atomic add, with no label lookup.
    decisions: [Counter; OUTCOMES.len()],
    cache_hits: Counter,
    cache_misses: Counter,
}

/// Every outcome, in the order of `Metrics::decisions` (and of [`Outcome`],
/// whose value indexes it).
const OUTCOMES: [Outcome; 10] = [
    Outcome::accepted,
    Outcome::unauthorized,
    Outcome::invalid_request,
    Outcome::invalid_token,
    Outcome::invalid_dpop_proof,
    Outcome::use_dpop_nonce,
    Outcome::insufficient_scope,
    Outcome::insufficient_user_authentication,
    Outcome::too_many_requests,
    Outcome::unavailable,
];

/// Buckets from 100 µs to about 26 s: request and database latencies.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 19))
}

impl Metrics {
    fn new() -> Self {
        let auth_decisions = Family::<OutcomeLabels, Counter>::default();
        let token_cache_lookups = Family::<ResultLabels, Counter>::default();
        let lookup = |result| token_cache_lookups.get_or_create_owned(&ResultLabels { result });
        let metrics = Self {
            registry: Registry::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            decisions: OUTCOMES.map(|outcome| auth_decisions.get_or_create_owned(&OutcomeLabels { outcome })),
            cache_hits: lookup("hit"),
            cache_misses: lookup("miss"),
            auth_decisions,
            jwks_fetches: Family::default(),
            jwks_fetch_duration: Family::new_with_constructor(latency_histogram),
            jwks_keys: Family::default(),
            jwks_last_success: Family::default(),
            token_cache_lookups,
            users_created: Counter::default(),
            db_wait: latency_histogram(),
            users_batch_rows: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            connections_timed_out: Family::default(),
        };
        let mut registry = Registry::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status",
            metrics.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            metrics.http_duration.clone(),
        );
        registry.register(
            "auth_decisions",
            "Authentication attempts on guarded routes, by outcome",
            metrics.auth_decisions.clone(),
        );
        registry.register(
            "jwks_fetches",
            "JWKS fetches, by issuer and result (ok, error)",
            metrics.jwks_fetches.clone(),
        );
        registry.register(
            "jwks_fetch_duration_seconds",
            "Time a JWKS fetch took",
            metrics.jwks_fetch_duration.clone(),
        );
        registry.register(
            "jwks_keys",
            "Signing keys held now, by issuer",
            metrics.jwks_keys.clone(),
        );
        registry.register(
            "jwks_last_success_timestamp_seconds",
            "When the keys were last fetched successfully (Unix time), by issuer",
            metrics.jwks_last_success.clone(),
        );
        registry.register(
            "token_cache_lookups",
            "Verified-token cache lookups, by result (hit, miss)",
            metrics.token_cache_lookups.clone(),
        );
        registry.register(
            "users_created",
            "Users rows created (first sight of a sub)",
            metrics.users_created.clone(),
        );
        registry.register(
            "db_wait_duration_seconds",
            "Time a request waited for its users row to be written",
            metrics.db_wait.clone(),
        );
        registry.register(
            "users_write_batch_rows",
            "Users rows written by one transaction (group commit)",
            metrics.users_batch_rows.clone(),
        );
        registry.register(
            "connections_timed_out",
            "Connections closed because a request did not arrive, or a response was not read, in time",
            metrics.connections_timed_out.clone(),
        );
        Self { registry, ..metrics }
    }

    /// The registry in the OpenMetrics text format.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// An answered request: `route` is the pattern it matched (`None`:
    /// no route, counted as one value).
    pub(crate) fn http_request(&self, method: &str, route: Option<String>, status: u16, took: Duration) {
        debug_assert!(std::ptr::eq(self, &*METRICS), "HTTP_SERIES holds METRICS' series");
        let labels = HttpLabels {
            method: method_label(method),
            route: route.unwrap_or_else(|| "unmatched".to_owned()),
            status,
        };
        HTTP_SERIES.with_borrow_mut(|series| {
            let (requests, duration) = series.entry(labels).or_insert_with_key(|labels| {
                (
                    self.http_requests.get_or_create_owned(labels),
                    self.http_duration.get_or_create_owned(labels),
                )
            });
            requests.inc();
            duration.observe(took.as_secs_f64());
        });
    }

    /// An authentication attempt's outcome.
    pub(crate) fn auth_decision(&self, outcome: Outcome) {
        self.decisions[outcome as usize].inc();
    }

    /// A JWKS fetch of `issuer`'s keys that took `took`; `keys` held after it
    /// when it succeeded.
    pub(crate) fn jwks_fetch(&self, issuer: &str, took: Duration, keys: Option<usize>) {
        let result = if keys.is_some() { "ok" } else { "error" };
        let issuer = IssuerLabels {
            issuer: issuer.to_owned(),
        };
        self.jwks_fetches
            .get_or_create(&FetchLabels {
                issuer: issuer.issuer.clone(),
                result,
            })
            .inc();
        self.jwks_fetch_duration
            .get_or_create(&issuer)
            .observe(took.as_secs_f64());
        if let Some(keys) = keys {
            self.jwks_keys.get_or_create(&issuer).set(keys as i64);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            self.jwks_last_success
                .get_or_create(&issuer)
                .set(now.as_secs() as i64);
        }
    }

    /// A verified-token cache lookup.
    pub(crate) fn token_cache_lookup(&self, hit: bool) {
        if hit {
            self.cache_hits.inc();
        } else {
            self.cache_misses.inc();
        }
    }

    /// Users rows created by one transaction.
    pub(crate) fn users_created(&self, rows: u64) {
        self.users_created.inc_by(rows);
    }

    /// How many rows one users transaction wrote.
    pub(crate) fn users_batch(&self, rows: usize) {
        self.users_batch_rows.observe(rows as f64);
    }

    /// A connection closed because `deadline` passed.
    pub(crate) fn connection_timed_out(&self, deadline: Deadline) {
        self.connections_timed_out
            .get_or_create(&DeadlineLabels { deadline })
            .inc();
    }

    /// How long a request waited for its users row.
    pub(crate) fn db_wait(&self, took: Duration) {
        self.db_wait.observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_is_counted_under_its_own_label() {
        let metrics = Metrics::new();
        for (n, outcome) in OUTCOMES.into_iter().enumerate() {
            for _ in 0..=n {
                metrics.auth_decision(outcome);
            }
        }
        let text = metrics.encode();
        for (n, outcome) in OUTCOMES.into_iter().enumerate() {
            let series = format!("auth_decisions_total{{outcome=\"{outcome:?}\"}} {}\n", n + 1);
            assert!(text.contains(&series), "{series} in:\n{text}");
        }
    }
}
