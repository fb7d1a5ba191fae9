//! Fetching over HTTP (size, redirects, `Cache-Control`) and finding the
//! keys through discovery, against local servers.

use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

use crate::auth::keys::http::discovery::Discovery;
use crate::auth::keys::http::{HttpSource, max_age};
use crate::auth::keys::source::FetchError;

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
