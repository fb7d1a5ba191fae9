//! Settings read from the environment (and `.env`, loaded by `main`).
//!
//! Every setting is validated here, once, at start: a bad value stops the
//! server with one line naming the variable, instead of failing later on a
//! request.

use std::net::IpAddr;
use std::time::Duration;

use url::{Host, Url};

use crate::db::DbSettings;

/// Everything the server needs to start, already validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The exact `iss` a token must carry.
    pub issuer: String,
    /// Accepted `aud` values; a token must name at least one of them.
    pub audiences: Vec<String>,
    /// Where the signing keys (JWKS) are published.
    pub jwks_url: Url,
    /// The users database.
    pub database: DbSettings,
    /// Address to bind.
    pub host: String,
    /// Port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// The one browser origin CORS allows.
    pub client_origin_url: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Timing of the signing-key cache.
    pub keys: KeyStoreSettings,
    /// Most verified tokens kept in memory (0: no token cache).
    pub token_cache_size: u64,
    /// How often a known user's `last_seen_at` is written, at most.
    pub last_seen_interval: Duration,
    /// HTTP worker threads; `None`: one per CPU core, as actix-web counts them
    /// (which ignores a container's CPU quota: set it there).
    pub workers: Option<usize>,
}

/// How the signing-key store fetches, caches and refreshes keys.
#[derive(Debug, Clone)]
pub struct KeyStoreSettings {
    /// Limit for one JWKS request, connect to last byte.
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

impl KeyStoreSettings {
    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let secs = |variable: &'static str, default: Duration| match get(variable) {
            Some(raw) => positive_secs(variable, &raw),
            None => Ok(default),
        };
        let settings = Self {
            fetch_timeout: secs("JWKS_FETCH_TIMEOUT_SECS", defaults.fetch_timeout)?,
            refetch_cooldown: secs("JWKS_REFETCH_COOLDOWN_SECS", defaults.refetch_cooldown)?,
            default_ttl: secs("JWKS_CACHE_TTL_SECS", defaults.default_ttl)?,
            min_ttl: secs("JWKS_MIN_TTL_SECS", defaults.min_ttl)?,
            max_ttl: secs("JWKS_MAX_TTL_SECS", defaults.max_ttl)?,
            max_stale: secs("JWKS_MAX_STALE_SECS", defaults.max_stale)?,
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

impl ConfigError {
    fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

impl DbSettings {
    /// Reads `DATABASE_URL` (default `app.db`), `DATABASE_POOL_SIZE` and
    /// `DATABASE_TIMEOUT_SECS`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let url = get("DATABASE_URL").unwrap_or_else(|| "app.db".into());
        // Diesel's CLI accepts `sqlite://path`; the path is what SQLite opens.
        let url = match url.strip_prefix("sqlite://") {
            Some(path) => path.to_owned(),
            None => url,
        };
        if url.starts_with("file:") || url == ":memory:" {
            return Err(ConfigError::new(
                "DATABASE_URL",
                format!("expected a SQLite file path or a postgres:// URL, got {url:?}"),
            ));
        }
        let mut settings = DbSettings::new(url);
        if let Some(raw) = get("DATABASE_POOL_SIZE") {
            settings.pool_size = raw
                .parse()
                .ok()
                .filter(|size| (1..=1000).contains(size))
                .ok_or_else(|| {
                    ConfigError::new(
                        "DATABASE_POOL_SIZE",
                        format!("expected a number from 1 to 1000, got {raw:?}"),
                    )
                })?;
        }
        if let Some(raw) = get("DATABASE_TIMEOUT_SECS") {
            settings.connect_timeout = positive_secs("DATABASE_TIMEOUT_SECS", &raw)?;
        }
        Ok(settings)
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
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let issuer = match (get("AUTH0_ISSUER"), get("AUTH0_DOMAIN")) {
            (Some(issuer), _) => {
                parse_trusted_url("AUTH0_ISSUER", &issuer)?;
                issuer
            }
            (None, Some(domain)) => issuer_from_domain(&domain)?,
            (None, None) => {
                return Err(ConfigError::new(
                    "AUTH0_DOMAIN",
                    "required (your tenant domain, e.g. dev-abc.us.auth0.com), unless AUTH0_ISSUER is set",
                ));
            }
        };
        let audiences = parse_audiences(get("AUTH0_AUDIENCE"))?;
        let jwks_url = match get("AUTH0_JWKS_URL") {
            Some(url) => url,
            None => format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')),
        };
        let jwks_url = parse_trusted_url("AUTH0_JWKS_URL", &jwks_url)?;
        let port = match get("PORT") {
            Some(port) => port.parse().map_err(|_| {
                ConfigError::new("PORT", format!("expected a port number 0-65535, got {port:?}"))
            })?,
            None => 6060,
        };
        let leeway = match get("AUTH0_LEEWAY_SECS") {
            Some(secs) => parse_secs("AUTH0_LEEWAY_SECS", &secs)?,
            None => Duration::from_secs(60),
        };
        let keys = KeyStoreSettings::from_lookup(get)?;
        let client_origin_url =
            parse_origin(&get("CLIENT_ORIGIN_URL").unwrap_or_else(|| "http://localhost:4040".into()))?;

        let token_cache_size = match get("TOKEN_CACHE_SIZE") {
            Some(raw) => raw.parse().map_err(|_| {
                ConfigError::new(
                    "TOKEN_CACHE_SIZE",
                    format!("expected a number of tokens, got {raw:?}"),
                )
            })?,
            None => 10_000,
        };
        let last_seen_interval = match get("LAST_SEEN_INTERVAL_SECS") {
            Some(raw) => parse_secs("LAST_SEEN_INTERVAL_SECS", &raw)?,
            None => Duration::from_secs(300),
        };
        let workers = match get("WORKERS") {
            Some(raw) => Some(
                raw.parse()
                    .ok()
                    .filter(|n| (1..=1024).contains(n))
                    .ok_or_else(|| {
                        ConfigError::new(
                            "WORKERS",
                            format!("expected a number of threads from 1 to 1024, got {raw:?}"),
                        )
                    })?,
            ),
            None => None,
        };
        Ok(Self {
            issuer,
            audiences,
            jwks_url,
            database: DbSettings::from_lookup(get)?,
            host: get("HOST").unwrap_or_else(|| "127.0.0.1".into()),
            port,
            client_origin_url,
            leeway,
            keys,
            token_cache_size,
            last_seen_interval,
            workers,
        })
    }
}

fn issuer_from_domain(domain: &str) -> Result<String, ConfigError> {
    let looks_like_host = !domain.contains("://")
        && !domain.contains('/')
        && Url::parse(&format!("https://{domain}/")).is_ok_and(|u| u.host_str().is_some());
    if !looks_like_host {
        return Err(ConfigError::new(
            "AUTH0_DOMAIN",
            format!(
                "expected a bare domain such as dev-abc.us.auth0.com (no scheme, no path), got {domain:?}"
            ),
        ));
    }
    Ok(format!("https://{domain}/"))
}

fn parse_audiences(raw: Option<String>) -> Result<Vec<String>, ConfigError> {
    let audiences: Vec<String> = raw
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if audiences.is_empty() {
        return Err(ConfigError::new(
            "AUTH0_AUDIENCE",
            "required (your API identifier, e.g. https://hello-world.example.com; comma-separated for several)",
        ));
    }
    Ok(audiences)
}

/// The issuer and its keys are trusted over https only; plain http is
/// allowed only to this machine.
fn parse_trusted_url(variable: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw)
        .map_err(|e| ConfigError::new(variable, format!("expected an absolute URL, got {raw:?} ({e})")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        _ => Err(ConfigError::new(
            variable,
            format!("expected an https URL (http only for a loopback host), got {raw:?}"),
        )),
    }
}

/// True for `localhost`, 127.0.0.0/8 and `::1`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The browser origin, as browsers send it: scheme, host and port only
/// (`http://localhost:4040/` becomes `http://localhost:4040`).
fn parse_origin(raw: &str) -> Result<String, ConfigError> {
    Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .filter(|u| u.path() == "/" && u.query().is_none() && u.fragment().is_none())
        .map(|u| u.origin().ascii_serialization())
        .ok_or_else(|| {
            ConfigError::new(
                "CLIENT_ORIGIN_URL",
                format!("expected an origin such as http://localhost:4040 (no path), got {raw:?}"),
            )
        })
}

fn parse_secs(variable: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    raw.parse::<u64>().map(Duration::from_secs).map_err(|_| {
        ConfigError::new(
            variable,
            format!("expected a whole number of seconds, got {raw:?}"),
        )
    })
}

fn positive_secs(variable: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    match parse_secs(variable, raw)? {
        d if d.is_zero() => Err(ConfigError::new(variable, "expected at least 1 second, got 0")),
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
        assert_eq!(s.issuer, "https://dev-abc.us.auth0.com/");
        assert_eq!(
            s.jwks_url.as_str(),
            "https://dev-abc.us.auth0.com/.well-known/jwks.json"
        );
        assert_eq!(s.audiences, vec!["https://api"]);
        assert_eq!(
            (s.host.as_str(), s.port, s.database.url.as_str()),
            ("127.0.0.1", 6060, "app.db")
        );
    }

    #[test]
    fn audience_list_is_split_on_commas() {
        let s = settings(&[("AUTH0_DOMAIN", "t.auth0.com"), ("AUTH0_AUDIENCE", " a , b,,c ")]).unwrap();
        assert_eq!(s.audiences, vec!["a", "b", "c"]);
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
            ("PORT", "http"),
            ("PORT", "70000"),
            ("CLIENT_ORIGIN_URL", "*"),
            ("AUTH0_LEEWAY_SECS", "-1"),
            ("JWKS_FETCH_TIMEOUT_SECS", "0"),
            ("JWKS_REFETCH_COOLDOWN_SECS", "soon"),
            ("JWKS_CACHE_TTL_SECS", "0"),
            ("JWKS_CACHE_TTL_SECS", "30"),
            ("JWKS_MAX_STALE_SECS", "1d"),
            ("JWKS_MIN_TTL_SECS", "90000"),
            ("DATABASE_POOL_SIZE", "0"),
            ("DATABASE_TIMEOUT_SECS", "0"),
            ("TOKEN_CACHE_SIZE", "many"),
            ("LAST_SEEN_INTERVAL_SECS", "5m"),
            ("WORKERS", "0"),
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
}
