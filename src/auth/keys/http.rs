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

use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::header::CACHE_CONTROL;
use url::{Host, Url};

use crate::auth::keys::jwks::parse_key_set;
use crate::auth::keys::spelling::{Excerpt, differ_by_trailing_slash};
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

/// Where an issuer says its keys are, asked when their URL answers 404.
struct Discovery {
    /// The documents to ask, in order, each only if the one before answered
    /// 404: OpenID discovery, then RFC 8414 metadata.
    documents: Vec<Url>,
    /// The issuer as configured: what a document's `issuer` must be.
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
    /// document or RFC 8414 metadata says when that answers 404.
    pub(crate) fn for_issuer(issuer: &str) -> Result<Self, reqwest::Error> {
        let parsed = Url::parse(issuer).expect("issuers are validated URLs");
        let appended = |suffix: &str| {
            let base = parsed.as_str().trim_end_matches('/');
            Url::parse(&format!("{base}/.well-known/{suffix}")).expect("an issuer URL with a path")
        };
        // RFC 8414 3.1: any terminating "/" removed, then the well-known
        // segment between the host and the path.
        let mut inserted = parsed.clone();
        inserted.set_path(&format!(
            "/.well-known/oauth-authorization-server{}",
            parsed.path().trim_end_matches('/')
        ));
        let discovery = Discovery {
            documents: vec![appended("openid-configuration"), inserted],
            issuer: issuer.to_owned(),
            issuer_is_local_http: parsed.scheme() == "http" && is_loopback(&parsed),
        };
        Self::with_discovery(appended("jwks.json"), Some(discovery))
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

impl Discovery {
    /// The `jwks_uri` of a discovery document, OpenID's (Connect Discovery
    /// 4.3) or RFC 8414's (3.3): the document must name the configured
    /// issuer exactly, and its `jwks_uri` be https, or http to this machine
    /// for an issuer that is itself http on this machine.
    fn jwks_uri(&self, document: &Url, body: &[u8]) -> Result<Url, FetchError> {
        #[derive(serde::Deserialize)]
        struct Document {
            issuer: Option<String>,
            jwks_uri: Option<String>,
        }
        let refused = |why: String| FetchError::Discovery {
            document: document.to_string(),
            why,
        };
        let Ok(Document { issuer, jwks_uri }) = serde_json::from_slice(body) else {
            return Err(refused(
                "not a JSON object with a string issuer and jwks_uri".into(),
            ));
        };
        match issuer.as_deref() {
            Some(issuer) if issuer == self.issuer => {}
            Some(issuer) if differ_by_trailing_slash(issuer, &self.issuer) => {
                return Err(FetchError::IssuerSpelling {
                    document: document.to_string(),
                    published: issuer.to_owned(),
                    configured: self.issuer.clone(),
                });
            }
            Some(issuer) => {
                return Err(refused(format!(
                    "its issuer is {}, not the configured {:?}",
                    Excerpt(issuer),
                    self.issuer
                )));
            }
            None => return Err(refused("it names no issuer".into())),
        }
        let jwks_uri = jwks_uri.ok_or_else(|| refused("it has no jwks_uri".into()))?;
        let url = Url::parse(&jwks_uri)
            .map_err(|_| refused(format!("jwks_uri {} is not a URL", Excerpt(&jwks_uri))))?;
        let trusted = match url.scheme() {
            "https" => true,
            "http" => self.issuer_is_local_http && is_loopback(&url),
            _ => false,
        };
        if !trusted || !url.username().is_empty() || url.password().is_some() {
            return Err(refused(format!(
                "jwks_uri {} is not an https URL without credentials",
                Excerpt(&jwks_uri)
            )));
        }
        Ok(url)
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

    /// What a discovery document at `https://tenant.example.com/doc` makes
    /// of the configured `issuer`.
    fn jwks_uri(
        issuer: &str,
        issuer_is_local_http: bool,
        document: serde_json::Value,
    ) -> Result<Url, FetchError> {
        let discovery = Discovery {
            documents: Vec::new(),
            issuer: issuer.to_owned(),
            issuer_is_local_http,
        };
        let url = Url::parse("https://tenant.example.com/doc").unwrap();
        discovery.jwks_uri(&url, document.to_string().as_bytes())
    }

    #[test]
    fn a_discovery_document_must_name_the_configured_issuer() {
        let issuer = "https://tenant.example.com/";
        let keys = "https://tenant.example.com/keys";
        let found = jwks_uri(
            issuer,
            false,
            serde_json::json!({"issuer": issuer, "jwks_uri": keys}),
        );
        assert_eq!(found.unwrap().as_str(), keys);

        for document in [
            serde_json::json!({"issuer": "https://attacker.example.com/", "jwks_uri": keys}),
            serde_json::json!({"issuer": "https://TENANT.example.com/", "jwks_uri": keys}),
            serde_json::json!({"issuer": "https://tenant.example.com//", "jwks_uri": keys}),
            serde_json::json!({"issuer": "https://tenant.example.com/x", "jwks_uri": keys}),
            serde_json::json!({"jwks_uri": keys}),
            serde_json::json!({"issuer": 1, "jwks_uri": keys}),
            serde_json::json!({"issuer": issuer}),
        ] {
            let refused = jwks_uri(issuer, false, document.clone());
            assert!(
                matches!(refused, Err(FetchError::Discovery { .. })),
                "{document}: {refused:?}"
            );
        }
    }

    #[test]
    fn an_issuer_a_trailing_slash_apart_is_a_configuration_error_naming_both_spellings() {
        let keys = "https://tenant.example.com/keys";
        for (configured, published) in [
            ("https://tenant.example.com/", "https://tenant.example.com"),
            ("https://tenant.example.com", "https://tenant.example.com/"),
            ("https://tenant.example.com/t/", "https://tenant.example.com/t"),
            ("https://tenant.example.com/t", "https://tenant.example.com/t/"),
        ] {
            let document = serde_json::json!({"issuer": published, "jwks_uri": keys});
            let refused = jwks_uri(configured, false, document);
            let Err(error @ FetchError::IssuerSpelling { .. }) = refused else {
                panic!("{configured} and {published}: {refused:?}");
            };
            let said = error.to_string();
            assert!(
                said.contains("https://tenant.example.com/doc names the issuer")
                    && said.contains(&format!("AUTH0_ISSUER {configured:?}"))
                    && said.contains(&format!("write it as {published:?} in AUTH0_ISSUER")),
                "the document, both spellings and the fix: {said}"
            );
        }
    }

    #[test]
    fn what_a_document_says_reaches_the_log_escaped_and_cut() {
        let issuer = "https://tenant.example.com/";
        let hostile = |scheme: &str| format!("{scheme}://evil.example/\n[WARN] forged{}", "x".repeat(10_000));
        for document in [
            serde_json::json!({"issuer": hostile("https"), "jwks_uri": "https://tenant.example.com/keys"}),
            serde_json::json!({"issuer": issuer, "jwks_uri": hostile("ftp")}),
        ] {
            let said = jwks_uri(issuer, false, document).unwrap_err().to_string();
            assert!(
                !said.contains('\n') && said.contains("\\n[WARN]") && said.len() < 400,
                "one line of bounded length: {}",
                &said[..said.len().min(400)]
            );
        }
    }

    #[test]
    fn an_http_jwks_uri_is_trusted_only_for_a_local_http_issuer() {
        let local = "http://127.0.0.1:9/";
        let document = |jwks_uri: &str| serde_json::json!({"issuer": local, "jwks_uri": jwks_uri});
        assert!(jwks_uri(local, true, document("http://127.0.0.1:9/keys")).is_ok());
        let https_issuer = "https://tenant.example.com/";
        let plain = serde_json::json!({"issuer": https_issuer, "jwks_uri": "http://127.0.0.1:9/keys"});
        assert!(matches!(
            jwks_uri(https_issuer, false, plain),
            Err(FetchError::Discovery { .. })
        ));
        for uri in [
            "http://keys.example.com/keys",
            "https://user:pw@keys.example.com/",
            "ftp://127.0.0.1/keys",
            "not a url",
        ] {
            assert!(
                matches!(
                    jwks_uri(local, true, document(uri)),
                    Err(FetchError::Discovery { .. })
                ),
                "{uri}"
            );
        }
    }

    /// A local issuer: answers each request whose path `answers` lists with
    /// that status and JSON body, any other with 404, and records the paths
    /// asked, in order.
    struct LocalIssuer {
        /// `http://127.0.0.1:PORT`.
        origin: String,
        asked: std::sync::Arc<Mutex<Vec<String>>>,
    }

    impl LocalIssuer {
        /// Starts it; `answers` gets its origin.
        async fn start(answers: impl FnOnce(&str) -> Vec<(String, u16, serde_json::Value)>) -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let origin = format!("http://{}", listener.local_addr().unwrap());
            let answers = answers(&origin);
            let asked = std::sync::Arc::new(Mutex::new(Vec::new()));
            let record = std::sync::Arc::clone(&asked);
            tokio::spawn(async move {
                loop {
                    let (mut socket, _) = listener.accept().await.unwrap();
                    let mut request = Vec::new();
                    let mut buf = [0; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let request = String::from_utf8_lossy(&request);
                    let path = request.split(' ').nth(1).unwrap_or_default().to_owned();
                    let (status, body) = answers
                        .iter()
                        .find(|(at, _, _)| *at == path)
                        .map_or((404, String::new()), |(_, status, body)| {
                            (*status, body.to_string())
                        });
                    record.lock().unwrap().push(path);
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                }
            });
            Self { origin, asked }
        }

        fn asked(&self) -> Vec<String> {
            self.asked.lock().unwrap().clone()
        }
    }

    /// A key set of one usable key.
    fn key_set() -> serde_json::Value {
        use base64::Engine;
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xab; 256]);
        serde_json::json!({"keys": [{"kty": "RSA", "kid": "k", "n": n, "e": "AQAB"}]})
    }

    /// A discovery document for `issuer` whose keys are at `{origin}{keys}`.
    fn document(issuer: &str, origin: &str, keys: &str) -> serde_json::Value {
        serde_json::json!({"issuer": issuer, "jwks_uri": format!("{origin}{keys}")})
    }

    #[tokio::test]
    async fn rfc_8414_metadata_is_asked_after_openid_answers_404_with_the_suffix_inserted() {
        for (path, jwks, openid, metadata) in [
            (
                "/",
                "/.well-known/jwks.json",
                "/.well-known/openid-configuration",
                "/.well-known/oauth-authorization-server",
            ),
            (
                "",
                "/.well-known/jwks.json",
                "/.well-known/openid-configuration",
                "/.well-known/oauth-authorization-server",
            ),
            (
                "/tenant",
                "/tenant/.well-known/jwks.json",
                "/tenant/.well-known/openid-configuration",
                "/.well-known/oauth-authorization-server/tenant",
            ),
            (
                "/tenant/",
                "/tenant/.well-known/jwks.json",
                "/tenant/.well-known/openid-configuration",
                "/.well-known/oauth-authorization-server/tenant",
            ),
            (
                "/a/b",
                "/a/b/.well-known/jwks.json",
                "/a/b/.well-known/openid-configuration",
                "/.well-known/oauth-authorization-server/a/b",
            ),
        ] {
            let local = LocalIssuer::start(|origin| {
                let issuer = format!("{origin}{path}");
                vec![
                    (metadata.to_owned(), 200, document(&issuer, origin, "/oauth/keys")),
                    ("/oauth/keys".to_owned(), 200, key_set()),
                ]
            })
            .await;
            let issuer = format!("{}{path}", local.origin);
            let source = HttpSource::for_issuer(&issuer).unwrap();
            let fetched = source.get().await;
            assert!(fetched.is_ok_and(|f| f.keys.len() == 1), "{issuer}");
            assert_eq!(local.asked(), [jwks, openid, metadata, "/oauth/keys"], "{issuer}");
        }
    }

    /// An issuer at `{origin}/` publishing both documents, OpenID's
    /// answering `openid_status`, each pointing at keys of its own.
    async fn publishing_both(openid_status: u16) -> LocalIssuer {
        LocalIssuer::start(|origin| {
            let issuer = format!("{origin}/");
            let openid = document(&issuer, origin, "/openid/keys");
            let metadata = document(&issuer, origin, "/oauth/keys");
            vec![
                ("/.well-known/openid-configuration".into(), openid_status, openid),
                ("/.well-known/oauth-authorization-server".into(), 200, metadata),
                ("/openid/keys".into(), 200, key_set()),
                ("/oauth/keys".into(), 200, key_set()),
            ]
        })
        .await
    }

    #[tokio::test]
    async fn openid_discovery_is_asked_first_and_rfc_8414_only_after_its_404() {
        let local = publishing_both(200).await;
        let source = HttpSource::for_issuer(&format!("{}/", local.origin)).unwrap();
        assert!(source.get().await.is_ok());
        let openid = [
            "/.well-known/jwks.json",
            "/.well-known/openid-configuration",
            "/openid/keys",
        ];
        assert_eq!(local.asked(), openid);
        // Once found, the keys are fetched where they are.
        assert!(source.get().await.is_ok());
        assert_eq!(local.asked(), [&openid[..], &["/openid/keys"]].concat());
    }

    #[tokio::test]
    async fn only_a_404_moves_on_to_the_next_document() {
        let local = publishing_both(503).await;
        let source = HttpSource::for_issuer(&format!("{}/", local.origin)).unwrap();
        let Err(FetchError::Discovery { document, why }) = source.get().await else {
            panic!("a 503 ends the fetch");
        };
        assert!(
            document.ends_with("/.well-known/openid-configuration") && why == "HTTP 503",
            "{document}: {why}"
        );
        let openid = ["/.well-known/jwks.json", "/.well-known/openid-configuration"];
        assert_eq!(local.asked(), openid);
    }

    #[tokio::test]
    async fn nothing_published_anywhere_says_where_it_looked() {
        let local = LocalIssuer::start(|_| Vec::new()).await;
        let source = HttpSource::for_issuer(&format!("{}/t", local.origin)).unwrap();
        let Err(error @ FetchError::Discovery { .. }) = source.get().await else {
            panic!("nothing found is a failure");
        };
        let said = error.to_string();
        assert!(
            said.contains("/t/.well-known/openid-configuration and")
                && said.contains("/.well-known/oauth-authorization-server/t:")
                && said.contains("HTTP 404"),
            "{said}"
        );
        assert_eq!(local.asked().len(), 3);
    }

    #[tokio::test]
    async fn rfc_8414_metadata_must_name_the_configured_issuer_too() {
        for (configured, published, slash_apart) in
            [("/t", "/t/", true), ("/t/", "/t", true), ("/t", "/other", false)]
        {
            let local = LocalIssuer::start(|origin| {
                let document = document(&format!("{origin}{published}"), origin, "/oauth/keys");
                vec![
                    ("/.well-known/oauth-authorization-server/t".into(), 200, document),
                    ("/oauth/keys".into(), 200, key_set()),
                ]
            })
            .await;
            let source = HttpSource::for_issuer(&format!("{}{configured}", local.origin)).unwrap();
            let refused = source.get().await.err();
            if slash_apart {
                assert!(
                    matches!(refused, Some(FetchError::IssuerSpelling { .. })),
                    "{configured}: {refused:?}"
                );
            } else {
                assert!(
                    matches!(refused, Some(FetchError::Discovery { .. })),
                    "{configured}: {refused:?}"
                );
            }
            assert!(
                !local.asked().contains(&"/oauth/keys".to_owned()),
                "its keys are never fetched"
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
