//! Fetching a JWK Set over HTTP: the one place that talks to the tenant.
//!
//! Only a 200 with a body of at most 1 MiB is read (whether its length is
//! announced or not), redirects are not followed, and the response's
//! `Cache-Control` says how long its keys may be kept. Every URL fetched
//! comes from the configuration or from the issuer itself, never from a token.
//!
//! An issuer's keys are found, in this order, at:
//! 1. `{issuer}.well-known/jwks.json` (where Auth0 publishes them);
//! 2. on a 404, the `jwks_uri` of its OpenID discovery document,
//!    `{issuer}/.well-known/openid-configuration` (the suffix appended to
//!    the issuer, OpenID Connect Discovery 4);
//! 3. on a 404 of that, the `jwks_uri` of its OAuth 2.0 authorization server
//!    metadata (RFC 8414 3.1: the suffix inserted between host and path,
//!    `https://h/tenant` at `https://h/.well-known/oauth-authorization-server/tenant`).
//!
//! Only a 404 moves on to the next; any other failure ends the fetch, which
//! the key store retries with its backoff, from the keys' URL known so far.
//! Discovery is asked at each fetch that needs it (when the URL known so far
//! answers 404), so a failed one is retried like any fetch and a moved
//! `jwks_uri` is found again. Either document must name the configured issuer
//! exactly (OpenID Connect Discovery 4.3, RFC 8414 3.3): one spelled with or
//! without a trailing slash where the configuration is not is a configuration
//! error of its own ([`FetchError::IssuerSpelling`]), which says the fix.

mod discovery;

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::header::CACHE_CONTROL;
use url::Url;

use crate::auth::keys::http::discovery::Discovery;
use crate::auth::keys::jwks::parse_key_set;
use crate::auth::keys::loopback::is_loopback;
use crate::auth::keys::source::{FetchError, Fetched, KeySource};

/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// A JWKS published at a URL.
pub(crate) struct HttpSource {
    /// Where the keys are fetched from (the discovered URL once known).
    url: Mutex<Url>,
    /// Where the keys may be found instead, when their URL was not configured.
    discovery: Option<Discovery>,
    /// The configured URL, for log lines.
    location: String,
    client: reqwest::Client,
}

impl HttpSource {
    /// A source for the keys at `url`; fetch deadlines are the key store's.
    pub(crate) fn new(url: Url) -> Result<Self, reqwest::Error> {
        Self::with_discovery(url, None)
    }

    /// A source for `issuer`'s keys (a validated URL, as configured):
    /// `{issuer}.well-known/jwks.json`, or where its OpenID discovery
    /// document or RFC 8414 metadata says when that answers 404.
    pub(crate) fn for_issuer(issuer: &str) -> Result<Self, reqwest::Error> {
        let (url, discovery) = Discovery::for_issuer(issuer);
        Self::with_discovery(url, Some(discovery))
    }

    fn with_discovery(url: Url, discovery: Option<Discovery>) -> Result<Self, reqwest::Error> {
        let mut client = reqwest::Client::builder();
        if is_loopback(&url) {
            // This machine (the development issuer, a local tenant stub) is
            // never reached through an HTTP(S)_PROXY.
            client = client.no_proxy();
        }
        let client = client
            .redirect(reqwest::redirect::Policy::none())
            // Workers run separate runtimes; an idle pooled connection must
            // not outlive the runtime that opened it.
            .pool_max_idle_per_host(0)
            .user_agent(concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            location: url.to_string(),
            url: Mutex::new(url),
            discovery,
            client,
        })
    }

    /// The keys at the URL known so far; on a 404, asks the discovery
    /// documents again (they are never forgotten: a failed discovery is
    /// retried at the next fetch, and a moved `jwks_uri` is found again).
    async fn get(&self) -> Result<Fetched, FetchError> {
        let url = self.url.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match self.get_keys(url.clone()).await {
            Err(FetchError::Status(404)) => {
                let Some(discovery) = &self.discovery else {
                    return Err(FetchError::Status(404));
                };
                let discovered = self.discover(discovery).await?;
                if discovered == url {
                    return Err(FetchError::Status(404));
                }
                log::info!("signing keys of {} are published at {discovered}", self.location);
                *self.url.lock().unwrap_or_else(PoisonError::into_inner) = discovered.clone();
                self.get_keys(discovered).await
            }
            outcome => outcome,
        }
    }

    async fn get_keys(&self, url: Url) -> Result<Fetched, FetchError> {
        let (body, max_age) = self.get_body(url).await?;
        Ok(Fetched {
            keys: parse_key_set(&body)?,
            max_age,
        })
    }

    /// The `jwks_uri` of the first of the issuer's discovery documents that
    /// does not answer 404.
    async fn discover(&self, discovery: &Discovery) -> Result<Url, FetchError> {
        for document in &discovery.documents {
            match self.get_body(document.clone()).await {
                Ok((body, _)) => return discovery.jwks_uri(document, &body),
                Err(FetchError::Status(404)) => {}
                Err(why) => {
                    return Err(FetchError::Discovery {
                        document: document.to_string(),
                        why: why.to_string(),
                    });
                }
            }
        }
        Err(FetchError::Discovery {
            document: discovery
                .documents
                .iter()
                .map(Url::as_str)
                .collect::<Vec<_>>()
                .join(" and "),
            why: "HTTP 404, as the key set's URL: nowhere to find the issuer's keys".into(),
        })
    }

    /// A 200's body of at most 1 MiB, and its `Cache-Control: max-age`.
    async fn get_body(&self, url: Url) -> Result<(Vec<u8>, Option<Duration>), FetchError> {
        let mut response = self.client.get(url).send().await.map_err(FetchError::from_http)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let max_age = response
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|value| value.to_str().ok())
            .and_then(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(FetchError::from_http)? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, max_age))
    }
}

impl KeySource for HttpSource {
    fn fetch(&self) -> BoxFuture<'_, Result<Fetched, FetchError>> {
        Box::pin(self.get())
    }

    fn location(&self) -> &str {
        &self.location
    }
}

impl FetchError {
    fn from_http(err: reqwest::Error) -> Self {
        if err.is_timeout() {
            FetchError::TimedOut
        } else if err.is_connect() {
            FetchError::CannotConnect
        } else {
            FetchError::Http(err.without_url().to_string())
        }
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

#[cfg(test)]
mod tests;
