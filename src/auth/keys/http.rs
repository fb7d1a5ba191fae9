//! Fetching a JWK Set over HTTP: the one place that talks to the tenant.
//!
//! Only a 200 with a body of at most 1 MiB is read (whether its length is
//! announced or not), redirects are not followed, and the response's
//! `Cache-Control` says how long its keys may be kept. An issuer whose
//! `{issuer}.well-known/jwks.json` answers 404 is asked where its keys are,
//! through its OpenID discovery document, once. Every URL fetched comes from
//! the configuration or from the issuer itself, never from a token.

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
    /// The issuer's OpenID discovery document, when the keys' URL was not
    /// configured and may be found there; `None` once used.
    discovery: Mutex<Option<Url>>,
    /// The configured URL, for log lines.
    location: String,
    client: reqwest::Client,
}

impl HttpSource {
    /// A source for the keys at `url`; fetch deadlines are the key store's.
    pub(crate) fn new(url: Url) -> Result<Self, reqwest::Error> {
        Self::with_discovery(url, None)
    }

    /// A source for `issuer`'s keys: `{issuer}.well-known/jwks.json`, or
    /// where its OpenID discovery document says when that answers 404.
    pub(crate) fn for_issuer(issuer: &Url) -> Result<Self, reqwest::Error> {
        let base = issuer.as_str().trim_end_matches('/');
        let jwks = Url::parse(&format!("{base}/.well-known/jwks.json")).expect("an issuer URL with a path");
        let discovery = Url::parse(&format!("{base}/.well-known/openid-configuration"))
            .expect("an issuer URL with a path");
        Self::with_discovery(jwks, Some(discovery))
    }

    fn with_discovery(url: Url, discovery: Option<Url>) -> Result<Self, reqwest::Error> {
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
            discovery: Mutex::new(discovery),
            client,
        })
    }

    async fn get(&self) -> Result<Fetched, FetchError> {
        let url = self.url.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match self.get_keys(url).await {
            Err(FetchError::Status(404)) => {
                let discovery = self
                    .discovery
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                let Some(discovery) = discovery else {
                    return Err(FetchError::Status(404));
                };
                let url = self.discover(discovery).await?;
                log::info!("signing keys of {} are published at {url}", self.location);
                *self.url.lock().unwrap_or_else(PoisonError::into_inner) = url.clone();
                self.get_keys(url).await
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

    /// The `jwks_uri` of an OpenID discovery document, held to the same
    /// rules as a configured URL: https, or http to this machine only.
    async fn discover(&self, discovery: Url) -> Result<Url, FetchError> {
        #[derive(serde::Deserialize)]
        struct Discovery {
            jwks_uri: String,
        }
        let (body, _) = self.get_body(discovery).await?;
        let document: Discovery =
            serde_json::from_slice(&body).map_err(|_| FetchError::Discovery("no jwks_uri in it".into()))?;
        let url = Url::parse(&document.jwks_uri)
            .map_err(|_| FetchError::Discovery(format!("jwks_uri {:?} is not a URL", document.jwks_uri)))?;
        let trusted = match url.scheme() {
            "https" => true,
            "http" => is_loopback(&url),
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
