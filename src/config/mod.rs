//! Settings read from the environment (and `.env`, loaded by `main`).
//!
//! Every setting is validated here, once, at start: a bad value stops the
//! server with one line naming the variable, instead of failing later on a
//! request. [`VARIABLES`] lists them all, for `--help` and `.env.example`.

mod error;
#[cfg(test)]
mod tests;
mod values;
mod variables;

use std::time::Duration;

use url::Url;

use crate::auth::{
    DpopSettings, KeyStoreSettings, NonceSecret, PermissionsFrom, TokenProfile, ValidationSettings,
};
use crate::connection::ConnectionSettings;
use crate::db::DbSettings;

pub use self::error::ConfigError;
use self::values::{
    MAX_LEEWAY, audiences, issuer_from_domain, issuer_url, list, number_in, origin, positive_secs,
    public_base_url, secs, trusted_url,
};
pub use self::variables::VARIABLES;
use self::variables::Variables;

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
    /// The URL clients reach this server at (`PUBLIC_BASE_URL`); `None`:
    /// taken from each request's `Host`.
    pub public_base_url: Option<Url>,
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
                 (its .well-known/jwks.json, or its OpenID or RFC 8414 metadata)"
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
            profile: vars.get("TOKEN_PROFILE", TokenProfile::Any, str::parse)?,
            token_cache_size: vars.get("TOKEN_CACHE_SIZE", 10_000, |raw| {
                raw.parse().map_err(|_| format!("expected a number of tokens, got {raw:?}"))
            })?,
        };
        let public_base_url = vars.get("PUBLIC_BASE_URL", None, |raw| public_base_url(raw).map(Some))?;
        Ok(Self {
            validation,
            jwks_url,
            keys: key_store_settings(&vars)?,
            dpop: dpop_settings(&vars)?,
            database: database_settings(&vars)?,
            host: vars.get("HOST", "127.0.0.1".to_owned(), |raw| Ok(raw.to_owned()))?,
            port: vars.get("PORT", 6060, |raw| {
                raw.parse()
                    .map_err(|_| format!("expected a port number 0-65535, got {raw:?}"))
            })?,
            client_origin_url: vars.get("CLIENT_ORIGIN_URL", "http://localhost:4040".to_owned(), origin)?,
            public_base_url,
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
        shutdown_grace: vars.get("SHUTDOWN_GRACE_SECS", defaults.shutdown_grace, seconds(3600))?,
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

fn dpop_settings<F: Fn(&str) -> Option<String>>(vars: &Variables<F>) -> Result<DpopSettings, ConfigError> {
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
        nonce_secret: vars.get("DPOP_NONCE_SECRET", None, |raw| {
            if raw.len() < 32 {
                Err("expected a secret of at least 32 bytes (e.g. `openssl rand -base64 32`)".into())
            } else {
                Ok(Some(NonceSecret(raw.to_owned())))
            }
        })?,
    })
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
