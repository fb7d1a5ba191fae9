//! Settings read from the environment (and `.env`, loaded by `main`).
//!
//! Every setting is validated here, once, at start: a bad value stops the
//! server with one line naming the variable, instead of failing later on a
//! request. [`VARIABLES`] lists them all, for `--help` and `.env.example`.

use std::time::Duration;

use url::Url;

use crate::auth::keys::is_loopback;
use crate::auth::{DpopSettings, KeyStoreSettings, NonceSecret, PermissionsFrom, ValidationSettings};
use crate::connection::ConnectionSettings;
use crate::db::DbSettings;

/// Everything the server needs to start, already validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// What a token must say to be accepted.
    pub validation: ValidationSettings,
    /// Where the signing keys (JWKS) are published, when configured (one
    /// issuer only); else each issuer's are found from the issuer itself.
    pub jwks_url: Option<Url>,
    /// Timing of the signing-key cache.
    pub keys: KeyStoreSettings,
    /// Which schemes are accepted, and how DPoP proofs are checked.
    pub dpop: DpopSettings,
    /// The users database.
    pub database: DbSettings,
    /// Address to bind.
    pub host: String,
    /// Port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// The one browser origin CORS allows.
    pub client_origin_url: String,
    /// The URL clients reach this server at (`PUBLIC_BASE_URL`), without a
    /// trailing slash; `None`: taken from each request's `Host`.
    pub public_base_url: Option<String>,
    /// How often a known user's `last_seen_at` is written, at most.
    pub last_seen_interval: Duration,
    /// HTTP worker threads; `None`: one per CPU core, as actix-web counts them
    /// (which ignores a container's CPU quota: set it there).
    pub workers: Option<usize>,
    /// Where `GET /metrics` is served (`host:port`); `None`: nowhere.
    pub metrics_addr: Option<String>,
    /// The limits a slow or idle client meets.
    pub connections: ConnectionSettings,
}

/// A setting that is missing or malformed; its `Display` is the one line
/// printed before the server exits.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration error: {variable}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What it must look like.
    pub problem: String,
}

/// Every variable `serve` reads: name, meaning, default (Markdown code
/// spans allowed). `--help` prints them, and docs/configuration.md's table is
/// made from them (a unit test says when it differs).
#[rustfmt::skip]
pub const VARIABLES: &[(&str, &str, &str)] = &[
    ("AUTH0_DOMAIN", "tenant domain, e.g. `dev-abc.us.auth0.com`; comma-separated for several (a custom domain beside the canonical one)", "required unless `AUTH0_ISSUER` is set"),
    ("AUTH0_AUDIENCE", "API identifier; a comma-separated list accepts any of them", "required"),
    ("AUTH0_ISSUER", "the exact `iss` values accepted, comma-separated (https, or http on loopback; no user name, password, query or fragment; Auth0's end with `/`, and one without is warned about at start)", "`https://{AUTH0_DOMAIN}/` for each domain"),
    ("AUTH0_JWKS_URL", "where the signing keys are published, for a single issuer only (https; http only for a loopback host; no user name, password or fragment)", "`{AUTH0_ISSUER}.well-known/jwks.json`, or where its OpenID discovery document says"),
    ("AUTH0_LEEWAY_SECS", "clock skew tolerated on `exp`, `nbf` and `iat` (at most 300)", "60"),
    ("PERMISSIONS_FROM", "which claims grant permissions: `auto`, `permissions`, `scope` or `both` (see the README, \"Using your own Auth0 tenant\")", "auto"),
    ("JWKS_FETCH_TIMEOUT_SECS", "limit for one JWKS fetch, connect to last byte", "5"),
    ("JWKS_REFETCH_COOLDOWN_SECS", "minimum time between fetches triggered by unknown `kid`s; retry interval while fetches fail", "30"),
    ("JWKS_CACHE_TTL_SECS", "key cache lifetime when the JWKS has no `Cache-Control: max-age` (within the min/max below)", "600"),
    ("JWKS_MIN_TTL_SECS", "lower clamp of a JWKS response's `max-age`", "60"),
    ("JWKS_MAX_TTL_SECS", "upper clamp of a JWKS response's `max-age`", "86400"),
    ("JWKS_MAX_STALE_SECS", "how long the last good keys stay usable after refreshes start failing", "86400"),
    ("DATABASE_URL", "a SQLite file, or a `postgres://` / `postgresql://` URL", "app.db"),
    ("DATABASE_POOL_SIZE", "PostgreSQL: connections writing users rows per instance (SQLite always writes through one)", "4"),
    ("DATABASE_TIMEOUT_SECS", "how long a database operation may wait (for the SQLite write lock, for a PostgreSQL connection) before the request answers 503; also the limit for reaching the database at start", "5"),
    ("TOKEN_CACHE_SIZE", "most verified tokens kept in memory (0 turns the cache off)", "10000"),
    ("DPOP_MODE", "which schemes are accepted: `allowed` (Bearer and DPoP), `required` (DPoP only), `disabled` (Bearer only); see docs/dpop.md", "allowed"),
    ("DPOP_IAT_WINDOW_SECS", "how far behind the server's clock a DPoP proof's `iat` may lie (1-300); a proof is remembered until its `iat` plus this; also the step of server nonces", "60"),
    ("DPOP_IAT_AHEAD_SECS", "how far ahead of the server's clock a DPoP proof's `iat` may lie (0 to `DPOP_IAT_WINDOW_SECS`)", "5"),
    ("DPOP_REPLAY_CACHE_SIZE", "most DPoP proofs remembered at once to refuse their replay (when full: 503)", "1000000"),
    ("DPOP_REPLAY_PER_KEY", "most of those proofs one DPoP key may have (1 to `DPOP_REPLAY_CACHE_SIZE`); a key over it gets 429, the others keep working", "`10000`, or `DPOP_REPLAY_CACHE_SIZE` when smaller"),
    ("PUBLIC_BASE_URL", "the URL clients reach the API at (absolute http or https; a path prefix is kept; no user name, password, query or fragment): DPoP proofs must name it plus the request's path, and the links the API publishes (challenges' `resource_metadata`, the metadata's `resource_documentation`) start with it. Set it behind a proxy or TLS terminator", "`http://` and the request's `Host` (a plain `host[:port]`; else `HOST:PORT`)"),
    ("DPOP_NONCE_SECRET", "when set (at least 32 bytes, the same on every instance), DPoP proofs must carry a nonce the API issued (`DPoP-Nonce`); see docs/dpop.md", "unset: no nonces"),
    ("LAST_SEEN_INTERVAL_SECS", "a known user's `last_seen_at` is written at most this often", "300"),
    ("HOST", "address to bind", "127.0.0.1"),
    ("PORT", "port to bind (0: any free port)", "6060"),
    ("WORKERS", "HTTP worker threads, 1-512 (actix-web counts the host's cores, not a container's CPU quota: set it there)", "one per core"),
    ("REQUEST_HEAD_TIMEOUT_SECS", "how long a request may take to arrive, from its first byte to its last (a connection's first request: from the connection), 1-300; a late one's connection is closed (see docs/operations.md)", "5"),
    ("SEND_TIMEOUT_SECS", "how long a response may wait for the client to read it before the connection is closed, 1-3600", "30"),
    ("KEEP_ALIVE_SECS", "how long an idle connection stays open between requests, 1-3600", "5"),
    ("MAX_CONNECTIONS", "most open connections per worker; more wait in the listen backlog until one closes (each may hold up to 128 KiB of request buffer)", "1024"),
    ("CLIENT_ORIGIN_URL", "the browser origin CORS allows", "http://localhost:4040"),
    ("METRICS_ADDR", "address of the Prometheus metrics listener (`GET /metrics`), e.g. `127.0.0.1:9464`; never the API's port", "none (no metrics listener)"),
    ("RUST_LOG", "log filter; `debug` logs each refusal with its reason, `info,access=debug` adds an access log", "info"),
    ("LOG_FORMAT", "`text`, or `json` for one JSON object per line (`timestamp`, `level`, `target`, `message`, `request_id`)", "text"),
];

/// Reads variables through a lookup, each with its parser: one place that
/// turns "missing", "empty" and "malformed" into a [`ConfigError`].
struct Variables<F> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Variables<F> {
    /// The trimmed value; empty counts as unset.
    fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// `name` parsed, or `default` when unset.
    fn get<T>(
        &self,
        name: &'static str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.raw(name) {
            Some(raw) => parse(&raw).map_err(|problem| ConfigError::new(name, problem)),
            None => Ok(default),
        }
    }

    /// `name` parsed, or the error `missing` when unset.
    fn required<T>(
        &self,
        name: &'static str,
        missing: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let raw = self.raw(name).ok_or_else(|| ConfigError::new(name, missing))?;
        parse(&raw).map_err(|problem| ConfigError::new(name, problem))
    }
}

impl ConfigError {
    fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

impl Settings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests).
    /// Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Variables { lookup };
        let issuers = vars.get("AUTH0_ISSUER", None, |raw| list(raw, issuer_url).map(Some))?;
        let issuers = match issuers {
            Some(issuers) => issuers,
            None => vars.required(
                "AUTH0_DOMAIN",
                "required (your tenant domain, e.g. dev-abc.us.auth0.com), unless AUTH0_ISSUER is set",
                |raw| list(raw, issuer_from_domain),
            )?,
        };
        let single = issuers.len() == 1;
        let jwks_url = vars.get("AUTH0_JWKS_URL", None, |raw| match single {
            true => trusted_url(raw).map(Some),
            false => Err(
                "only with a single issuer: with several, each issuer's keys are found from the issuer \
                 (its .well-known/jwks.json, or its OpenID discovery document)"
                    .into(),
            ),
        })?;
        let validation = ValidationSettings {
            issuers,
            audiences: vars.required(
                "AUTH0_AUDIENCE",
                "required (your API identifier, e.g. https://hello-world.example.com; comma-separated for several)",
                audiences,
            )?,
            leeway: vars.get("AUTH0_LEEWAY_SECS", Duration::from_secs(60), |raw| {
                let leeway = secs(raw)?;
                if leeway > MAX_LEEWAY {
                    Err(format!("expected at most {} seconds, got {raw}", MAX_LEEWAY.as_secs()))
                } else {
                    Ok(leeway)
                }
            })?,
            permissions_from: vars.get("PERMISSIONS_FROM", PermissionsFrom::Auto, str::parse)?,
            token_cache_size: vars.get("TOKEN_CACHE_SIZE", 10_000, |raw| {
                raw.parse().map_err(|_| format!("expected a number of tokens, got {raw:?}"))
            })?,
        };
        let public_base_url = vars.get("PUBLIC_BASE_URL", None, |raw| public_base_url(raw).map(Some))?;
        Ok(Self {
            validation,
            jwks_url,
            keys: key_store_settings(&vars)?,
            dpop: dpop_settings(&vars, public_base_url.clone())?,
            database: database_settings(&vars)?,
            host: vars.get("HOST", "127.0.0.1".to_owned(), |raw| Ok(raw.to_owned()))?,
            port: vars.get("PORT", 6060, |raw| {
                raw.parse()
                    .map_err(|_| format!("expected a port number 0-65535, got {raw:?}"))
            })?,
            client_origin_url: vars.get("CLIENT_ORIGIN_URL", "http://localhost:4040".to_owned(), origin)?,
            // Route paths are appended to it: kept without its trailing slash.
            public_base_url: public_base_url.map(|url| url.as_str().trim_end_matches('/').to_owned()),
            last_seen_interval: vars.get("LAST_SEEN_INTERVAL_SECS", Duration::from_secs(300), secs)?,
            // actix-server refuses (panics on) more than 512 workers.
            workers: vars.get("WORKERS", None, |raw| {
                number_in(raw, 1..=512, "a number of threads").map(Some)
            })?,
            metrics_addr: vars.get("METRICS_ADDR", None, |raw| {
                raw.parse::<std::net::SocketAddr>()
                    .map(|_| Some(raw.to_owned()))
                    .map_err(|_| {
                        format!("expected an IP address and port such as 127.0.0.1:9464, got {raw:?}")
                    })
            })?,
            connections: connection_settings(&vars)?,
        })
    }
}

fn connection_settings<F: Fn(&str) -> Option<String>>(
    vars: &Variables<F>,
) -> Result<ConnectionSettings, ConfigError> {
    let defaults = ConnectionSettings::default();
    let seconds =
        |max| move |raw: &str| number_in(raw, 1..=max, "a number of seconds").map(Duration::from_secs);
    Ok(ConnectionSettings {
        request_timeout: vars.get(
            "REQUEST_HEAD_TIMEOUT_SECS",
            defaults.request_timeout,
            seconds(300),
        )?,
        send_timeout: vars.get("SEND_TIMEOUT_SECS", defaults.send_timeout, seconds(3600))?,
        keep_alive: vars.get("KEEP_ALIVE_SECS", defaults.keep_alive, seconds(3600))?,
        max_connections: vars.get("MAX_CONNECTIONS", defaults.max_connections, |raw| {
            number_in(raw, 1..=1_000_000, "a number of connections")
        })?,
    })
}

fn key_store_settings<F: Fn(&str) -> Option<String>>(
    vars: &Variables<F>,
) -> Result<KeyStoreSettings, ConfigError> {
    let defaults = KeyStoreSettings::default();
    let settings = KeyStoreSettings {
        fetch_timeout: vars.get("JWKS_FETCH_TIMEOUT_SECS", defaults.fetch_timeout, positive_secs)?,
        refetch_cooldown: vars.get(
            "JWKS_REFETCH_COOLDOWN_SECS",
            defaults.refetch_cooldown,
            positive_secs,
        )?,
        default_ttl: vars.get("JWKS_CACHE_TTL_SECS", defaults.default_ttl, positive_secs)?,
        min_ttl: vars.get("JWKS_MIN_TTL_SECS", defaults.min_ttl, positive_secs)?,
        max_ttl: vars.get("JWKS_MAX_TTL_SECS", defaults.max_ttl, positive_secs)?,
        max_stale: vars.get("JWKS_MAX_STALE_SECS", defaults.max_stale, positive_secs)?,
    };
    if settings.min_ttl > settings.max_ttl {
        return Err(ConfigError::new(
            "JWKS_MIN_TTL_SECS",
            "must not exceed JWKS_MAX_TTL_SECS",
        ));
    }
    if !(settings.min_ttl..=settings.max_ttl).contains(&settings.default_ttl) {
        return Err(ConfigError::new(
            "JWKS_CACHE_TTL_SECS",
            format!(
                "must lie between JWKS_MIN_TTL_SECS and JWKS_MAX_TTL_SECS ({}-{} s)",
                settings.min_ttl.as_secs(),
                settings.max_ttl.as_secs()
            ),
        ));
    }
    Ok(settings)
}

fn dpop_settings<F: Fn(&str) -> Option<String>>(
    vars: &Variables<F>,
    public_base_url: Option<Url>,
) -> Result<DpopSettings, ConfigError> {
    let defaults = DpopSettings::default();
    let iat_window = vars.get("DPOP_IAT_WINDOW_SECS", defaults.iat_window, |raw| {
        number_in(raw, 1..=MAX_LEEWAY.as_secs(), "a number of seconds").map(Duration::from_secs)
    })?;
    let replay_cache_size = vars.get("DPOP_REPLAY_CACHE_SIZE", defaults.replay_cache_size, |raw| {
        number_in(raw, 1..=100_000_000, "a number of proofs")
    })?;
    Ok(DpopSettings {
        mode: vars.get("DPOP_MODE", defaults.mode, str::parse)?,
        iat_window,
        // More ahead than behind would let a proof outlive its window.
        iat_ahead: vars.get("DPOP_IAT_AHEAD_SECS", defaults.iat_ahead.min(iat_window), |raw| {
            let most = iat_window.as_secs();
            raw.parse()
                .ok()
                .filter(|ahead| *ahead <= most)
                .map(Duration::from_secs)
                .ok_or_else(|| {
                    format!(
                        "expected a number of seconds from 0 to DPOP_IAT_WINDOW_SECS ({most}), got {raw:?}"
                    )
                })
        })?,
        replay_cache_size,
        // Unset, it follows a cache smaller than its default.
        replay_per_key: vars.get(
            "DPOP_REPLAY_PER_KEY",
            defaults.replay_per_key.min(replay_cache_size),
            |raw| {
                raw.parse()
                    .ok()
                    .filter(|share| (1..=replay_cache_size).contains(share))
                    .ok_or_else(|| {
                        format!(
                            "expected a number of proofs from 1 to DPOP_REPLAY_CACHE_SIZE ({replay_cache_size}), got {raw:?}"
                        )
                    })
            },
        )?,
        public_base_url,
        nonce_secret: vars.get("DPOP_NONCE_SECRET", None, |raw| {
            if raw.len() < 32 {
                Err("expected a secret of at least 32 bytes (e.g. `openssl rand -base64 32`)".into())
            } else {
                Ok(Some(NonceSecret(raw.to_owned())))
            }
        })?,
    })
}

/// Where clients reach the API: an absolute http(s) URL, perhaps with a
/// path prefix, without user name, password, query or fragment (a proof's
/// `htu` has none of them).
fn public_base_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("expected an absolute URL, got {raw:?} ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("expected an http or https URL, got {raw:?}"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("expected a URL without user name or password".into());
    }
    if url.query().is_some() || url.fragment().is_some() || raw.contains(['?', '#']) {
        return Err(format!(
            "expected a URL without query (?...) or fragment (#...), got {raw:?}"
        ));
    }
    Ok(url)
}

/// `DATABASE_URL` (default `app.db`), `DATABASE_POOL_SIZE` and
/// `DATABASE_TIMEOUT_SECS`; also what `users` and `migrate` read.
pub fn database_settings_from_env() -> Result<DbSettings, ConfigError> {
    database_settings(&Variables {
        lookup: |name: &str| std::env::var(name).ok(),
    })
}

fn database_settings<F: Fn(&str) -> Option<String>>(vars: &Variables<F>) -> Result<DbSettings, ConfigError> {
    let url = vars.get("DATABASE_URL", "app.db".to_owned(), |raw| {
        // Diesel's CLI accepts `sqlite://path`; the path is what SQLite opens.
        let url = raw.strip_prefix("sqlite://").unwrap_or(raw);
        if url.starts_with("file:") || url == ":memory:" {
            Err(format!(
                "expected a SQLite file path or a postgres:// URL, got {url:?}"
            ))
        } else {
            Ok(url.to_owned())
        }
    })?;
    let defaults = DbSettings::new(url);
    Ok(DbSettings {
        pool_size: vars.get("DATABASE_POOL_SIZE", defaults.pool_size, |raw| {
            number_in(raw, 1..=1000, "a number")
        })?,
        connect_timeout: vars.get("DATABASE_TIMEOUT_SECS", defaults.connect_timeout, positive_secs)?,
        ..defaults
    })
}

fn issuer_from_domain(domain: &str) -> Result<String, String> {
    let looks_like_host = !domain.contains("://")
        && !domain.contains('/')
        && Url::parse(&format!("https://{domain}/")).is_ok_and(|u| u.host_str().is_some());
    if looks_like_host {
        Ok(format!("https://{domain}/"))
    } else {
        Err(format!(
            "expected a bare domain such as dev-abc.us.auth0.com (no scheme, no path), got {domain:?}"
        ))
    }
}

/// A comma-separated list, each entry parsed, duplicates dropped.
fn list(raw: &str, parse: impl Fn(&str) -> Result<String, String>) -> Result<Vec<String>, String> {
    let mut entries: Vec<String> = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
        let entry = parse(entry)?;
        if !entries.contains(&entry) {
            entries.push(entry);
        }
    }
    if entries.is_empty() {
        Err("expected at least one value".into())
    } else {
        Ok(entries)
    }
}

fn audiences(raw: &str) -> Result<Vec<String>, String> {
    let audiences: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if audiences.is_empty() {
        Err("expected at least one audience".into())
    } else {
        Ok(audiences)
    }
}

/// The most clock skew tolerated: more would accept long-expired tokens.
const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// The issuer and its keys are trusted over https only; plain http is
/// allowed only to this machine. No user-info (it would be sent, and
/// logged, with every fetch) and no fragment.
fn trusted_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("expected an absolute URL, got {raw:?} ({e})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("expected a URL without user name or password".into());
    }
    if url.fragment().is_some() {
        return Err(format!("expected a URL without a fragment (#...), got {raw:?}"));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        _ => Err(format!(
            "expected an https URL (http only for a loopback host), got {raw:?}"
        )),
    }
}

/// An issuer identifier (RFC 8414 section 2): a trusted URL without a query
/// either, kept as written, since `iss` is compared with it byte for byte.
fn issuer_url(raw: &str) -> Result<String, String> {
    let url = trusted_url(raw)?;
    if url.query().is_some() || raw.contains('?') {
        return Err(format!(
            "expected an issuer URL without a query (?...), got {raw:?}"
        ));
    }
    Ok(raw.to_owned())
}

/// The browser origin, as browsers send it: scheme, host and port only
/// (`http://localhost:4040/` becomes `http://localhost:4040`).
fn origin(raw: &str) -> Result<String, String> {
    Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .filter(|u| u.path() == "/" && u.query().is_none() && u.fragment().is_none())
        .map(|u| u.origin().ascii_serialization())
        .ok_or_else(|| format!("expected an origin such as http://localhost:4040 (no path), got {raw:?}"))
}

fn number_in<T>(raw: &str, range: std::ops::RangeInclusive<T>, what: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    raw.parse().ok().filter(|n| range.contains(n)).ok_or_else(|| {
        format!(
            "expected {what} from {} to {}, got {raw:?}",
            range.start(),
            range.end()
        )
    })
}

fn secs(raw: &str) -> Result<Duration, String> {
    raw.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("expected a whole number of seconds, got {raw:?}"))
}

fn positive_secs(raw: &str) -> Result<Duration, String> {
    match secs(raw)? {
        d if d.is_zero() => Err("expected at least 1 second, got 0".into()),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn domain_gives_issuer_and_jwks_url() {
        let s = settings(&[
            ("AUTH0_DOMAIN", "dev-abc.us.auth0.com"),
            ("AUTH0_AUDIENCE", "https://api"),
        ])
        .unwrap();
        assert_eq!(s.validation.issuers, ["https://dev-abc.us.auth0.com/"]);
        assert_eq!(s.jwks_url, None, "found from the issuer");
        assert_eq!(s.validation.audiences, vec!["https://api"]);
        assert_eq!(
            (s.host.as_str(), s.port, s.database.url.as_str()),
            ("127.0.0.1", 6060, "app.db")
        );
    }

    #[test]
    fn several_issuers_are_a_comma_separated_list() {
        let s = settings(&[
            (
                "AUTH0_DOMAIN",
                "dev-abc.us.auth0.com, login.example.com,dev-abc.us.auth0.com",
            ),
            ("AUTH0_AUDIENCE", "a"),
        ])
        .unwrap();
        assert_eq!(
            s.validation.issuers,
            ["https://dev-abc.us.auth0.com/", "https://login.example.com/"]
        );
        let s = settings(&[
            (
                "AUTH0_ISSUER",
                "https://login.example.com/,https://dev-abc.us.auth0.com/",
            ),
            ("AUTH0_AUDIENCE", "a"),
        ])
        .unwrap();
        assert_eq!(s.validation.issuers.len(), 2);
        let with_jwks_url = settings(&[
            (
                "AUTH0_ISSUER",
                "https://login.example.com/,https://dev-abc.us.auth0.com/",
            ),
            ("AUTH0_AUDIENCE", "a"),
            (
                "AUTH0_JWKS_URL",
                "https://login.example.com/.well-known/jwks.json",
            ),
        ]);
        let error = with_jwks_url.unwrap_err();
        assert_eq!(error.variable, "AUTH0_JWKS_URL");
        assert!(error.problem.contains("single issuer"), "{error}");
        for bad in ["https://a.example.com/, http://10.0.0.1/", " , "] {
            let error = settings(&[("AUTH0_ISSUER", bad), ("AUTH0_AUDIENCE", "a")]).unwrap_err();
            assert_eq!(error.variable, "AUTH0_ISSUER", "{bad}");
        }
    }

    #[test]
    fn audience_list_is_split_on_commas() {
        let s = settings(&[("AUTH0_DOMAIN", "t.auth0.com"), ("AUTH0_AUDIENCE", " a , b,,c ")]).unwrap();
        assert_eq!(s.validation.audiences, vec!["a", "b", "c"]);
    }

    #[test]
    fn missing_required_values_name_the_variable() {
        assert_eq!(
            settings(&[("AUTH0_AUDIENCE", "a")]).unwrap_err().variable,
            "AUTH0_DOMAIN"
        );
        assert_eq!(
            settings(&[("AUTH0_DOMAIN", "t.auth0.com")]).unwrap_err().variable,
            "AUTH0_AUDIENCE"
        );
        let issuer_over_http = [("AUTH0_ISSUER", "http://10.0.0.1/"), ("AUTH0_AUDIENCE", "a")];
        assert_eq!(settings(&issuer_over_http).unwrap_err().variable, "AUTH0_ISSUER");
        let keys_over_http = [
            ("AUTH0_ISSUER", "https://t.example.com/"),
            ("AUTH0_AUDIENCE", "a"),
            ("AUTH0_JWKS_URL", "http://10.0.0.1/jwks.json"),
        ];
        assert_eq!(settings(&keys_over_http).unwrap_err().variable, "AUTH0_JWKS_URL");
    }

    #[test]
    fn malformed_values_name_the_variable() {
        let cases = [
            ("AUTH0_DOMAIN", "https://t.auth0.com/"),
            ("AUTH0_AUDIENCE", " , "),
            ("PORT", "http"),
            ("PORT", "70000"),
            ("CLIENT_ORIGIN_URL", "*"),
            ("AUTH0_LEEWAY_SECS", "-1"),
            ("AUTH0_LEEWAY_SECS", "301"),
            ("AUTH0_LEEWAY_SECS", "18446744073709551615"),
            ("PERMISSIONS_FROM", "all"),
            ("PERMISSIONS_FROM", "Scope"),
            ("AUTH0_ISSUER", "https://user:pass@t.example.com/"),
            ("AUTH0_ISSUER", "https://t.example.com/?a=b"),
            ("AUTH0_ISSUER", "https://t.example.com/#x"),
            ("AUTH0_ISSUER", "https://t.example.com/?"),
            ("AUTH0_JWKS_URL", "https://user@t.example.com/jwks.json"),
            ("AUTH0_JWKS_URL", "https://t.example.com/jwks.json#k"),
            ("JWKS_FETCH_TIMEOUT_SECS", "0"),
            ("JWKS_REFETCH_COOLDOWN_SECS", "soon"),
            ("JWKS_CACHE_TTL_SECS", "0"),
            ("JWKS_CACHE_TTL_SECS", "30"),
            ("JWKS_MAX_STALE_SECS", "1d"),
            ("JWKS_MIN_TTL_SECS", "90000"),
            ("DATABASE_URL", ":memory:"),
            ("DATABASE_POOL_SIZE", "0"),
            ("DATABASE_TIMEOUT_SECS", "0"),
            ("TOKEN_CACHE_SIZE", "many"),
            ("LAST_SEEN_INTERVAL_SECS", "5m"),
            ("WORKERS", "0"),
            ("WORKERS", "513"),
            ("REQUEST_HEAD_TIMEOUT_SECS", "0"),
            ("REQUEST_HEAD_TIMEOUT_SECS", "301"),
            ("REQUEST_HEAD_TIMEOUT_SECS", "5s"),
            ("SEND_TIMEOUT_SECS", "0"),
            ("KEEP_ALIVE_SECS", "0"),
            ("KEEP_ALIVE_SECS", "3601"),
            ("MAX_CONNECTIONS", "0"),
            ("MAX_CONNECTIONS", "lots"),
            ("METRICS_ADDR", "9464"),
            ("METRICS_ADDR", "localhost"),
            ("DPOP_MODE", "on"),
            ("DPOP_MODE", "Required"),
            ("DPOP_IAT_WINDOW_SECS", "0"),
            ("DPOP_IAT_WINDOW_SECS", "301"),
            ("DPOP_IAT_AHEAD_SECS", "-1"),
            ("DPOP_IAT_AHEAD_SECS", "61"),
            ("DPOP_IAT_AHEAD_SECS", "5s"),
            ("DPOP_REPLAY_CACHE_SIZE", "0"),
            ("DPOP_REPLAY_PER_KEY", "0"),
            ("DPOP_REPLAY_PER_KEY", "1000001"),
            ("DPOP_REPLAY_PER_KEY", "-1"),
            ("DPOP_REPLAY_PER_KEY", "ten"),
            ("PUBLIC_BASE_URL", "api.example.com"),
            ("PUBLIC_BASE_URL", "ftp://api.example.com/"),
            ("PUBLIC_BASE_URL", "https://user:pass@api.example.com/"),
            ("PUBLIC_BASE_URL", "https://api.example.com/?a=b"),
            ("PUBLIC_BASE_URL", "https://api.example.com/#top"),
            ("DPOP_NONCE_SECRET", "too short"),
        ];
        for (variable, value) in cases {
            let vars = [
                ("AUTH0_DOMAIN", "t.auth0.com"),
                ("AUTH0_AUDIENCE", "a"),
                (variable, value),
            ];
            let error = settings(&vars).unwrap_err();
            assert_eq!(error.variable, variable, "{variable}={value}");
            assert!(error.to_string().contains(variable), "{error}");
        }
    }

    #[test]
    fn connection_limits_have_defaults_and_can_be_set() {
        let base = [("AUTH0_DOMAIN", "t.auth0.com"), ("AUTH0_AUDIENCE", "a")];
        let defaults = settings(&base).unwrap().connections;
        assert_eq!(defaults, ConnectionSettings::default());
        assert_eq!(defaults.request_timeout, Duration::from_secs(5));
        let set = settings(
            &[
                &base[..],
                &[
                    ("REQUEST_HEAD_TIMEOUT_SECS", "2"),
                    ("SEND_TIMEOUT_SECS", "60"),
                    ("KEEP_ALIVE_SECS", "75"),
                    ("MAX_CONNECTIONS", "100"),
                ],
            ]
            .concat(),
        )
        .unwrap()
        .connections;
        assert_eq!(
            set,
            ConnectionSettings {
                request_timeout: Duration::from_secs(2),
                send_timeout: Duration::from_secs(60),
                keep_alive: Duration::from_secs(75),
                max_connections: 100,
            }
        );
    }

    /// docs/configuration.md's table, as [`VARIABLES`] make it.
    fn configuration_table() -> String {
        let mut table = String::from("| variable | meaning | default |\n|---|---|---|\n");
        for (name, meaning, default) in VARIABLES {
            // One code span when it is a literal value, as written.
            let default = if default.contains([' ', '`']) || *default == "required" {
                default.to_string()
            } else {
                format!("`{default}`")
            };
            table.push_str(&format!("| `{name}` | {meaning} | {default} |\n"));
        }
        table
    }

    /// The configuration page lists exactly [`VARIABLES`]: its table is
    /// generated (`UPDATE_DOCS=1 cargo test configuration_page` rewrites it).
    #[test]
    fn the_configuration_page_is_made_from_the_variables() {
        const START: &str = "<!-- configuration table: generated from config::VARIABLES -->\n";
        const END: &str = "<!-- end of configuration table -->";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
        let page = std::fs::read_to_string(path).unwrap();
        let start = page.find(START).expect("the page has the table's start marker") + START.len();
        let end = page.find(END).expect("the page has the table's end marker");
        let expected = configuration_table();
        if page[start..end] == expected {
            return;
        }
        assert!(
            std::env::var_os("UPDATE_DOCS").is_some(),
            "docs/configuration.md's table differs from config::VARIABLES: run `UPDATE_DOCS=1 cargo test configuration_page`"
        );
        std::fs::write(path, format!("{}{expected}{}", &page[..start], &page[end..])).unwrap();
    }

    /// The defaults the code applies are the ones [`VARIABLES`] (and so
    /// `--help` and docs/configuration.md) state: every variable set to its
    /// listed default gives the same settings as none set.
    #[test]
    fn listed_defaults_are_the_defaults_applied() {
        let required = [("AUTH0_DOMAIN", "t.auth0.com"), ("AUTH0_AUDIENCE", "a")];
        let literal = |default: &str| !default.contains([' ', '`', '{']) && default != "required";
        let listed: HashMap<&str, &str> = VARIABLES
            .iter()
            .filter(|(_, _, default)| literal(default))
            .map(|(name, _, default)| (*name, *default))
            .collect();
        assert!(listed.len() >= 25, "{listed:?}");
        let lookup = |name: &str| {
            required
                .iter()
                .find(|(required, _)| *required == name)
                .map(|(_, value)| value.to_string())
        };
        let unset = Settings::from_lookup(lookup).unwrap();
        let set =
            Settings::from_lookup(|name| lookup(name).or_else(|| listed.get(name).map(|v| v.to_string())))
                .unwrap();
        assert_eq!(format!("{set:?}"), format!("{unset:?}"));
    }

    #[test]
    fn every_variable_read_is_listed() {
        let read = std::cell::RefCell::new(Vec::new());
        let _ = Settings::from_lookup(|name| {
            read.borrow_mut().push(name.to_owned());
            match name {
                "AUTH0_DOMAIN" => Some("t.auth0.com".into()),
                "AUTH0_AUDIENCE" => Some("a".into()),
                _ => None,
            }
        })
        .unwrap();
        for name in read.into_inner() {
            assert!(VARIABLES.iter().any(|(listed, ..)| *listed == name), "{name}");
        }
    }

    #[test]
    fn dpop_settings_default_to_allowed_and_read_a_base_url() {
        let base = |vars: &[(&str, &str)]| {
            let mut all = vec![("AUTH0_DOMAIN", "t.auth0.com"), ("AUTH0_AUDIENCE", "a")];
            all.extend_from_slice(vars);
            settings(&all).unwrap().dpop
        };
        let defaults = base(&[]);
        assert_eq!(defaults, DpopSettings::default());
        assert_eq!(defaults.mode, crate::auth::DpopMode::Allowed);
        let set = base(&[
            ("DPOP_MODE", "required"),
            ("DPOP_IAT_WINDOW_SECS", "30"),
            ("PUBLIC_BASE_URL", "https://api.example.com/v1/"),
        ]);
        assert_eq!(set.mode, crate::auth::DpopMode::Required);
        assert_eq!(set.iat_window, Duration::from_secs(30));
        assert_eq!(
            set.public_base_url.map(String::from).as_deref(),
            Some("https://api.example.com/v1/")
        );
        assert_eq!(defaults.iat_ahead, Duration::from_secs(5));
        let ahead = base(&[("DPOP_IAT_WINDOW_SECS", "30"), ("DPOP_IAT_AHEAD_SECS", "30")]);
        assert_eq!(ahead.iat_ahead, Duration::from_secs(30));
        assert_eq!(base(&[("DPOP_IAT_AHEAD_SECS", "0")]).iat_ahead, Duration::ZERO);
        // Unset, it follows a window shorter than its default.
        let short = base(&[("DPOP_IAT_WINDOW_SECS", "2")]);
        assert_eq!(short.iat_ahead, Duration::from_secs(2));
        assert_eq!(defaults.replay_per_key, 10_000);
        let shared = base(&[("DPOP_REPLAY_CACHE_SIZE", "50"), ("DPOP_REPLAY_PER_KEY", "50")]);
        assert_eq!((shared.replay_cache_size, shared.replay_per_key), (50, 50));
        assert_eq!(base(&[("DPOP_REPLAY_PER_KEY", "1")]).replay_per_key, 1);
        // Unset, it follows a cache smaller than its default.
        let small = base(&[("DPOP_REPLAY_CACHE_SIZE", "500")]);
        assert_eq!(small.replay_per_key, 500);
        let secret = "s".repeat(32);
        let with_nonces = base(&[("DPOP_NONCE_SECRET", &secret)]);
        assert_eq!(with_nonces.nonce_secret, Some(NonceSecret(secret)));
        assert!(
            !format!("{with_nonces:?}").contains("sss"),
            "the secret is never printed"
        );
    }

    #[test]
    fn dpop_bounds_are_checked_against_each_other_in_one_line() {
        let error = |vars: &[(&str, &str)]| {
            let mut all = vec![("AUTH0_DOMAIN", "t.auth0.com"), ("AUTH0_AUDIENCE", "a")];
            all.extend_from_slice(vars);
            settings(&all).unwrap_err()
        };
        let ahead = error(&[("DPOP_IAT_WINDOW_SECS", "10"), ("DPOP_IAT_AHEAD_SECS", "11")]);
        assert_eq!(ahead.variable, "DPOP_IAT_AHEAD_SECS");
        assert_eq!(
            ahead.to_string(),
            r#"configuration error: DPOP_IAT_AHEAD_SECS: expected a number of seconds from 0 to DPOP_IAT_WINDOW_SECS (10), got "11""#
        );
        let share = error(&[("DPOP_REPLAY_CACHE_SIZE", "100"), ("DPOP_REPLAY_PER_KEY", "101")]);
        assert_eq!(share.variable, "DPOP_REPLAY_PER_KEY");
        assert_eq!(
            share.to_string(),
            r#"configuration error: DPOP_REPLAY_PER_KEY: expected a number of proofs from 1 to DPOP_REPLAY_CACHE_SIZE (100), got "101""#
        );
    }

    #[test]
    fn http_key_url_is_allowed_only_on_loopback() {
        for host in ["127.0.0.1:9", "localhost:9", "[::1]:9", "127.8.9.10"] {
            let url = format!("http://{host}/jwks.json");
            let s = settings(&[
                ("AUTH0_ISSUER", "https://t.example.com/"),
                ("AUTH0_AUDIENCE", "a"),
                ("AUTH0_JWKS_URL", &url),
            ]);
            assert!(s.is_ok(), "{url}");
        }
    }

    #[test]
    fn the_client_origin_is_kept_as_browsers_send_it() {
        let origin = |raw: &str| {
            settings(&[
                ("AUTH0_DOMAIN", "t.auth0.com"),
                ("AUTH0_AUDIENCE", "a"),
                ("CLIENT_ORIGIN_URL", raw),
            ])
            .map(|s| s.client_origin_url)
        };
        assert_eq!(origin("http://localhost:4040/").unwrap(), "http://localhost:4040");
        assert_eq!(
            origin("https://App.Example.com:443").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            origin("http://localhost:4040/app").unwrap_err().variable,
            "CLIENT_ORIGIN_URL"
        );
    }

    #[test]
    fn the_public_base_url_is_kept_without_its_trailing_slash() {
        let base = |raw: &str| {
            settings(&[
                ("AUTH0_DOMAIN", "t.auth0.com"),
                ("AUTH0_AUDIENCE", "a"),
                ("PUBLIC_BASE_URL", raw),
            ])
            .unwrap()
            .public_base_url
        };
        assert_eq!(
            base("https://API.example.com/").as_deref(),
            Some("https://api.example.com")
        );
        assert_eq!(
            base("https://gw.example.com/hello/").as_deref(),
            Some("https://gw.example.com/hello")
        );
        assert_eq!(
            base("http://127.0.0.1:6060").as_deref(),
            Some("http://127.0.0.1:6060")
        );
        assert_eq!(base(" ").as_deref(), None);
    }
}
