//! Fetching a JWK Set over HTTP: the one place that talks to the tenant.
//!
//! Only a 200 with a body of at most 1 MiB is read (whether its length is
//! announced or not), redirects are not followed, and the response's
//! `Cache-Control` says how long its keys may be kept. An issuer whose
//! `{issuer}.well-known/jwks.json` answers 404 is asked where its keys are,
//! through its OpenID discovery document, at each fetch that needs it (a
//! failed discovery is retried with the key store's backoff, like any fetch).
//! The document must name the configured issuer, exactly. Every URL fetched
//! comes from the configuration or from the issuer itself, never from a token.

use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::header::CACHE_CONTROL;
use url::{Host, Url};

use crate::auth::keys::jwks::parse_key_set;
use crate::auth::keys::store::{FetchError, Fetched, KeySource};

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

/// An issuer's OpenID discovery document, asked when its keys' URL answers 404.
struct Discovery {
    /// `{issuer}.well-known/openid-configuration`.
    url: Url,
    /// The issuer as configured: what the document's `issuer` must be.
    issuer: String,
    /// An `http://` `jwks_uri` is trusted only for a loopback `http://` issuer.
    issuer_is_local_http: bool,
}

impl HttpSource {
    /// A source for the keys at `url`; fetch deadlines are the key store's.
    pub(crate) fn new(url: Url) -> Result<Self, reqwest::Error> {
        Self::with_discovery(url, None)
    }

    /// A source for `issuer`'s keys (a validated URL, as configured):
    /// `{issuer}.well-known/jwks.json`, or where its OpenID discovery
    /// document says when that answers 404.
    pub(crate) fn for_issuer(issuer: &str) -> Result<Self, reqwest::Error> {
        let parsed = Url::parse(issuer).expect("issuers are validated URLs");
        let base = parsed.as_str().trim_end_matches('/');
        let jwks = Url::parse(&format!("{base}/.well-known/jwks.json")).expect("an issuer URL with a path");
        let discovery = Discovery {
            url: Url::parse(&format!("{base}/.well-known/openid-configuration"))
                .expect("an issuer URL with a path"),
            issuer: issuer.to_owned(),
            issuer_is_local_http: parsed.scheme() == "http" && is_loopback(&parsed),
        };
        Self::with_discovery(jwks, Some(discovery))
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
    /// document again (it is never forgotten: a failed discovery is retried
    /// at the next fetch, and a moved `jwks_uri` is found again).
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

    /// The `jwks_uri` of an OpenID discovery document (OpenID Connect
    /// Discovery 4.3): the document must name the configured issuer exactly,
    /// and its `jwks_uri` be https, or http to this machine for an issuer
    /// that is itself http on this machine.
    async fn discover(&self, discovery: &Discovery) -> Result<Url, FetchError> {
        #[derive(serde::Deserialize)]
        struct Document {
            issuer: Option<String>,
            jwks_uri: String,
        }
        let (body, _) = self.get_body(discovery.url.clone()).await?;
        let document: Document = serde_json::from_slice(&body)
            .map_err(|_| FetchError::Discovery("no issuer and jwks_uri in it".into()))?;
        match document.issuer.as_deref() {
            Some(issuer) if issuer == discovery.issuer => {}
            Some(issuer) if issuer.trim_end_matches('/') == discovery.issuer.trim_end_matches('/') => {
                return Err(FetchError::Discovery(format!(
                    "the document's issuer is {issuer:?}, the configured one {:?}: they differ by a trailing slash; set AUTH0_ISSUER to the issuer's own spelling, which its tokens' iss carries",
                    discovery.issuer
                )));
            }
            issuer => {
                return Err(FetchError::Discovery(format!(
                    "the document's issuer is {issuer:?}, not the configured {:?}",
                    discovery.issuer
                )));
            }
        }
        let url = Url::parse(&document.jwks_uri)
            .map_err(|_| FetchError::Discovery(format!("jwks_uri {:?} is not a URL", document.jwks_uri)))?;
        let trusted = match url.scheme() {
            "https" => true,
            "http" => discovery.issuer_is_local_http && is_loopback(&url),
            _ => false,
        };
        if !trusted || !url.username().is_empty() || url.password().is_some() {
            return Err(FetchError::Discovery(format!(
                "jwks_uri {:?} is not an https URL without credentials",
                document.jwks_uri
            )));
        }
        Ok(url)
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

/// True for `localhost`, 127.0.0.0/8 and `::1`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age("public, max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(
            max_age("max-age=\"60\", must-revalidate"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("max-age=600, no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }

    /// Serves one raw HTTP response to the first connection.
    async fn serve_once(response: Vec<u8>) -> Url {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0; 4096];
            let _ = socket.read(&mut request).await;
            let _ = socket.write_all(&response).await;
            let _ = socket.shutdown().await;
        });
        url.parse().unwrap()
    }

    #[tokio::test]
    async fn a_body_over_1_mib_is_refused_even_when_chunked() {
        let chunk = vec![b' '; 64 * 1024];
        let mut response = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..17 {
            response.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            response.extend_from_slice(&chunk);
            response.extend_from_slice(b"\r\n");
        }
        response.extend_from_slice(b"0\r\n\r\n");
        let source = HttpSource::new(serve_once(response).await).unwrap();
        assert!(matches!(source.get().await, Err(FetchError::TooLarge)));
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let response = b"HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:9/\r\ncontent-length: 0\r\n\r\n";
        let source = HttpSource::new(serve_once(response.to_vec()).await).unwrap();
        assert!(matches!(source.get().await, Err(FetchError::Status(302))));
    }

    /// What `discover` makes of a discovery document served locally, for
    /// the configured `issuer`.
    async fn discover(
        issuer: &str,
        issuer_is_local_http: bool,
        document: serde_json::Value,
    ) -> Result<Url, FetchError> {
        let body = document.to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let url = serve_once(response.into_bytes()).await;
        let source = HttpSource::new(url.clone()).unwrap();
        let discovery = Discovery {
            url,
            issuer: issuer.to_owned(),
            issuer_is_local_http,
        };
        source.discover(&discovery).await
    }

    #[tokio::test]
    async fn a_discovery_document_must_name_the_configured_issuer() {
        let issuer = "https://tenant.example.com/";
        let keys = "https://tenant.example.com/keys";
        let found = discover(
            issuer,
            false,
            serde_json::json!({"issuer": issuer, "jwks_uri": keys}),
        )
        .await;
        assert_eq!(found.unwrap().as_str(), keys);

        for document in [
            serde_json::json!({"issuer": "https://attacker.example.com/", "jwks_uri": keys}),
            serde_json::json!({"issuer": "https://TENANT.example.com/", "jwks_uri": keys}),
            serde_json::json!({"jwks_uri": keys}),
            serde_json::json!({"issuer": 1, "jwks_uri": keys}),
        ] {
            let refused = discover(issuer, false, document.clone()).await;
            assert!(
                matches!(refused, Err(FetchError::Discovery(_))),
                "{document}: {refused:?}"
            );
        }
        let Err(FetchError::Discovery(why)) = discover(
            issuer,
            false,
            serde_json::json!({"issuer": "https://tenant.example.com", "jwks_uri": keys}),
        )
        .await
        else {
            panic!("a trailing slash apart is refused");
        };
        assert!(
            why.contains("\"https://tenant.example.com\"") && why.contains("trailing slash"),
            "both spellings named: {why}"
        );
    }

    #[tokio::test]
    async fn an_http_jwks_uri_is_trusted_only_for_a_local_http_issuer() {
        let local = "http://127.0.0.1:9/";
        let document = |jwks_uri: &str| serde_json::json!({"issuer": local, "jwks_uri": jwks_uri});
        assert!(
            discover(local, true, document("http://127.0.0.1:9/keys"))
                .await
                .is_ok()
        );
        let https_issuer = "https://tenant.example.com/";
        let plain = serde_json::json!({"issuer": https_issuer, "jwks_uri": "http://127.0.0.1:9/keys"});
        assert!(matches!(
            discover(https_issuer, false, plain).await,
            Err(FetchError::Discovery(_))
        ));
        for jwks_uri in [
            "http://keys.example.com/keys",
            "https://user:pw@keys.example.com/",
            "ftp://127.0.0.1/keys",
        ] {
            assert!(
                matches!(
                    discover(local, true, document(jwks_uri)).await,
                    Err(FetchError::Discovery(_))
                ),
                "{jwks_uri}"
            );
        }
    }

    #[test]
    fn loopback_hosts() {
        for url in [
            "http://127.0.0.1:9/",
            "http://localhost/",
            "http://[::1]/",
            "http://127.8.9.10/",
        ] {
            assert!(is_loopback(&url.parse().unwrap()), "{url}");
        }
        for url in [
            "http://10.0.0.1/",
            "http://localhost.example.com/",
            "http://[::2]/",
        ] {
            assert!(!is_loopback(&url.parse().unwrap()), "{url}");
        }
    }
}
