//! The variables `serve` reads: their list (for `--help` and the
//! configuration page) and the reader that turns each into a value or a
//! [`ConfigError`].

use crate::config::error::ConfigError;

/// Every variable `serve` reads: name, meaning, default (Markdown code
/// spans allowed). `--help` prints them, and docs/configuration.md's table is
/// made from them (a unit test says when it differs).
#[rustfmt::skip]
pub const VARIABLES: &[(&str, &str, &str)] = &[
    ("AUTH0_DOMAIN", "tenant domain, e.g. `dev-abc.us.auth0.com`; comma-separated for several (a custom domain beside the canonical one)", "required unless `AUTH0_ISSUER` is set"),
    ("AUTH0_AUDIENCE", "API identifier; a comma-separated list accepts any of them", "required"),
    ("AUTH0_ISSUER", "the exact `iss` values accepted, comma-separated (https, or http on loopback; no user name, password, query or fragment; Auth0's end with `/`, and one without is warned about at start)", "`https://{AUTH0_DOMAIN}/` for each domain"),
    ("AUTH0_JWKS_URL", "where the signing keys are published, for a single issuer only (https; http only for a loopback host; no user name, password or fragment)", "`{AUTH0_ISSUER}.well-known/jwks.json`, or where its OpenID discovery document (or RFC 8414 metadata) says"),
    ("AUTH0_LEEWAY_SECS", "clock skew tolerated on `exp`, `nbf` and `iat` (at most 300)", "60"),
    ("PERMISSIONS_FROM", "which claims grant permissions: `auto` (the `permissions` claim, else a machine token's `scope`: Auth0's `gty` `client-credentials`, or `sub` equal to `client_id` as RFC 9068 has it), `permissions`, `scope` or `both` (see the README, \"Using your own Auth0 tenant\")", "auto"),
    ("TOKEN_PROFILE", "`rfc9068`: only RFC 9068 access tokens (`typ` `at+jwt`; `client_id`, `jti` and `iat` present), as Auth0's \"RFC 9068\" token dialect and standard issuers make them; `any`: those and Auth0's default tokens", "any"),
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
    ("PUBLIC_BASE_URL", "the URL clients reach the API at (absolute http or https; a path prefix is kept; no user name, password, query or fragment): DPoP proofs must name it plus the request's path, and the links the API publishes (challenges' `resource_metadata`, the metadata's `resource_documentation`) start with it; with a path, the metadata is also served at `/.well-known/oauth-protected-resource{path}` (RFC 9728 section 3.1), where challenges point. Set it behind a proxy or TLS terminator; MCP clients want it to be `AUTH0_AUDIENCE`", "`http://` and the request's `Host` (a plain `host[:port]`; else `HOST:PORT`)"),
    ("DPOP_NONCE_SECRET", "when set (at least 32 bytes, the same on every instance), DPoP proofs must carry a nonce the API issued (`DPoP-Nonce`); see docs/dpop.md", "unset: no nonces"),
    ("LAST_SEEN_INTERVAL_SECS", "a known user's `last_seen_at` is written at most this often", "300"),
    ("HOST", "address to bind", "127.0.0.1"),
    ("PORT", "port to bind (0: any free port)", "6060"),
    ("WORKERS", "HTTP worker threads, 1-512 (actix-web counts the host's cores, not a container's CPU quota: set it there)", "one per core"),
    ("REQUEST_HEAD_TIMEOUT_SECS", "how long a request may take to arrive, from its first byte to its last (a connection's first request: from the connection), 1-300; a late one's connection is closed (see docs/operations.md)", "5"),
    ("SEND_TIMEOUT_SECS", "how long a response may wait for the client to read it before the connection is closed, 1-3600", "30"),
    ("KEEP_ALIVE_SECS", "how long an idle connection stays open between requests, 1-3600", "5"),
    ("MAX_CONNECTIONS", "most open connections per worker; more wait in the listen backlog until one closes (each may hold up to 128 KiB of request buffer)", "1024"),
    ("SHUTDOWN_GRACE_SECS", "how long a stop (SIGTERM or SIGINT) may take, 1-3600: for its first third `/readyz` answers 503 while requests are still served (none under `dev`), then the listener closes and the requests in flight are finished; what is left at the end is cut off (see docs/deployment.md)", "30"),
    ("CLIENT_ORIGIN_URL", "the browser origin CORS allows", "http://localhost:4040"),
    ("METRICS_ADDR", "address of the Prometheus metrics listener (`GET /metrics`), e.g. `127.0.0.1:9464`; never the API's port", "none (no metrics listener)"),
    ("RUST_LOG", "log filter; `debug` logs each refusal with its reason, `info,access=debug` adds an access log", "info"),
    ("LOG_FORMAT", "`text`, or `json` for one JSON object per line (`timestamp`, `level`, `target`, `message`, `request_id`)", "text"),
];

/// Reads variables through a lookup, each with its parser: one place that
/// turns "missing", "empty" and "malformed" into a [`ConfigError`].
pub(super) struct Variables<F> {
    pub(super) lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Variables<F> {
    /// The trimmed value; empty counts as unset.
    pub(super) fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// `name` parsed, or `default` when unset.
    pub(super) fn get<T>(
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
    pub(super) fn required<T>(
        &self,
        name: &'static str,
        missing: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let raw = self.raw(name).ok_or_else(|| ConfigError::new(name, missing))?;
        parse(&raw).map_err(|problem| ConfigError::new(name, problem))
    }
}
