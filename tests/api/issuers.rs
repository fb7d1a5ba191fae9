//! Several issuers (an Auth0 tenant's canonical and custom domains, or
//! several tenants): each with its own keys, a token checked only against
//! the keys of the issuer its `iss` names.

use std::time::Duration;

use actix_auth0_api::dev::{SigningKey, jwks};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    AUDIENCE, Backend, LogFile, ServeProcess, TestApp, TestDatabase, TestIssuer, eventually, now, read,
    shared_key, sign_with,
};

/// `GET path` at `address` with `token`: the status and the JSON body.
async fn status(address: &str, path: &str, token: &str) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .get(format!("{address}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let reply = read(response).await;
    (reply.status, reply.json)
}

#[actix_web::test]
async fn tokens_of_each_issuer_pass_with_that_issuers_keys_only() {
    // Both issuers publish a key under the kid "shared", each its own.
    let key_a = SigningKey::from_pem("shared", shared_key("issuer-a").pem()).unwrap();
    let key_b = SigningKey::from_pem("shared", shared_key("issuer-b").pem()).unwrap();
    let a = TestIssuer::start(&[&key_a]).await;
    let b = TestIssuer::start(&[&key_b]).await;
    let app = TestApp::builder(Backend::Sqlite)
        .trusting(&[&a.issuer, &b.issuer])
        .spawn()
        .await;
    let (address, database) = (&app.address, &app.database);

    let from_a = sign_with(&key_a, a.claims("auth0|a"), json!({}));
    let from_b = sign_with(&key_b, b.claims("auth0|b"), json!({}));
    assert_eq!(status(address, "/api/private", &from_a).await.0, 200);
    assert_eq!(status(address, "/api/private", &from_b).await.0, 200);

    // Issuer A's iss, signed by issuer B's key under the same kid.
    let crossed = sign_with(&key_b, a.claims("auth0|a"), json!({}));
    let (code, body) = status(address, "/api/private", &crossed).await;
    assert_eq!(code, 401, "{body}");
    assert_eq!(body["error_description"], "invalid signature");

    let ready = reqwest::get(format!("{address}/readyz")).await.unwrap();
    let ready = read(ready).await;
    assert_eq!(ready.status, 200, "{:?}", ready.json);
    assert_eq!(ready.json["issuers"][&a.issuer], "ok");
    assert_eq!(ready.json["issuers"][&b.issuer], "ok");
    assert_eq!(database.subs(), ["auth0|a", "auth0|b"]);
}

#[actix_web::test]
async fn an_unlisted_issuer_is_refused_before_any_key_is_fetched() {
    let a = TestIssuer::start(&[&shared_key("main")]).await;
    let stranger = TestIssuer::start(&[&shared_key("main")]).await;
    let app = TestApp::builder(Backend::Sqlite)
        .trusting(&[&a.issuer])
        .spawn()
        .await;
    let address = &app.address;
    assert!(eventually(Duration::from_secs(2), async || a.fetches() == 1).await);

    // An unknown kid too: had the key been looked up, it would be fetched.
    let key = SigningKey::from_pem("never-published", shared_key("main").pem()).unwrap();
    let token = sign_with(&key, stranger.claims("auth0|x"), json!({}));
    let (code, body) = status(address, "/api/private", &token).await;
    assert_eq!(
        (code, body["error_description"].as_str()),
        (401, Some("unexpected issuer"))
    );
    assert_eq!(a.fetches(), 1, "no fetch for a token of another issuer");
    assert_eq!(stranger.fetches(), 0, "no fetch to a URL named by a token");
}

/// OpenID discovery's document, its suffix appended to the issuer.
const OPENID: &str = "/.well-known/openid-configuration";
/// RFC 8414 metadata, its suffix inserted before the issuer's path.
const RFC_8414: &str = "/.well-known/oauth-authorization-server";

/// An issuer on a mock server, at `{server}{at}`, whose keys
/// (`/oauth/keys`) are found only through the document at `document`
/// (every other path answers 404); the server, for more mocks, and the
/// issuer.
async fn issuer_found_through(key: &SigningKey, at: &str, document: &str) -> (MockServer, String) {
    let server = MockServer::start().await;
    let issuer = format!("{}{at}", server.uri());
    Mock::given(method("GET"))
        .and(path(document))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"issuer": issuer, "jwks_uri": format!("{}/oauth/keys", server.uri())})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/oauth/keys"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks([key])))
        .mount(&server)
        .await;
    (server, issuer)
}

/// An issuer whose keys are found only through its OpenID discovery
/// document.
async fn issuer_found_by_discovery(key: &SigningKey) -> (MockServer, String) {
    issuer_found_through(key, "/", OPENID).await
}

/// How many times `server` was asked for `path`.
async fn asked(server: &MockServer, path: &str) -> usize {
    let requests = server.received_requests().await.unwrap();
    requests
        .iter()
        .filter(|request| request.url.path() == path)
        .count()
}

/// Whether the app at `address` accepts a token of `issuer` signed by `key`
/// within `within`.
async fn accepted_within(address: &str, issuer: &str, key: &SigningKey, within: Duration) -> bool {
    let now = now();
    let claims = json!({"iss": issuer, "aud": AUDIENCE, "sub": "auth0|d", "iat": now, "exp": now + 60});
    let token = sign_with(key, claims, json!({}));
    eventually(within, async || {
        status(address, "/api/private", &token).await.0 == 200
    })
    .await
}

/// An app trusting `issuer` alone accepts its tokens signed by `key` within
/// five seconds, and is ready.
async fn keys_found_and_ready(issuer: &str, key: &SigningKey) {
    let app = TestApp::builder(Backend::Sqlite)
        .trusting(&[issuer])
        .spawn()
        .await;
    let address = &app.address;
    assert!(
        accepted_within(address, issuer, key, Duration::from_secs(5)).await,
        "keys of {issuer} found where its document says"
    );
    let ready = read(reqwest::get(format!("{address}/readyz")).await.unwrap()).await;
    assert_eq!(ready.status, 200, "{:?}", ready.json);
    assert_eq!(ready.json["issuers"][issuer], "ok");
}

#[actix_web::test]
async fn keys_are_found_through_openid_discovery_when_jwks_json_is_absent() {
    let key = shared_key("discovered");
    let (_server, issuer) = issuer_found_by_discovery(&key).await;
    keys_found_and_ready(&issuer, &key).await;
}

/// A discovery document that fails (a 503 blip at start-up) is asked again
/// with the key store's retry interval, and the keys are found without a
/// restart.
#[actix_web::test]
async fn a_failed_discovery_is_retried_until_the_keys_are_found() {
    let key = shared_key("discovered");
    let (server, issuer) = issuer_found_by_discovery(&key).await;
    // Before the document: the first two asks get 503.
    Mock::given(method("GET"))
        .and(path(OPENID))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    let app = TestApp::builder(Backend::Sqlite)
        .trusting(&[&issuer])
        .env(&[("JWKS_REFETCH_COOLDOWN_SECS", "1")])
        .spawn()
        .await;
    let address = &app.address;
    assert!(
        accepted_within(address, &issuer, &key, Duration::from_secs(15)).await,
        "keys found once discovery answered"
    );
    let discoveries = asked(&server, OPENID).await;
    assert!(
        discoveries >= 3,
        "discovery asked again after failing ({discoveries})"
    );
    let ready = read(reqwest::get(format!("{address}/readyz")).await.unwrap()).await;
    assert_eq!(ready.status, 200, "{:?}", ready.json);
}

/// A discovery document that names another issuer (OpenID Connect
/// Discovery 4.3) is refused: its `jwks_uri`, the other issuer's keys, never
/// signs for this issuer.
#[actix_web::test]
async fn a_discovery_document_naming_another_issuer_is_refused() {
    let attacker_key = shared_key("attacker");
    let attacker = TestIssuer::start(&[&attacker_key]).await;
    let server = MockServer::start().await;
    let issuer = format!("{}/", server.uri());
    Mock::given(method("GET"))
        .and(path(OPENID))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": attacker.issuer,
            "jwks_uri": format!("{}.well-known/jwks.json", attacker.issuer),
        })))
        .mount(&server)
        .await;
    let app = TestApp::builder(Backend::Sqlite)
        .trusting(&[&issuer])
        .spawn()
        .await;
    let (address, database) = (&app.address, &app.database);
    let discovered = eventually(Duration::from_secs(5), async || asked(&server, OPENID).await > 0);
    assert!(discovered.await, "discovery was asked");
    let now = now();
    let claims = json!({"iss": issuer, "aud": AUDIENCE, "sub": "auth0|victim", "iat": now, "exp": now + 60});
    let token = sign_with(&attacker_key, claims, json!({}));
    let (code, body) = status(address, "/api/private", &token).await;
    assert_eq!(code, 503, "no keys: {body}");
    assert_eq!(
        attacker.fetches(),
        0,
        "the other issuer's keys were never fetched"
    );
    let ready = read(reqwest::get(format!("{address}/readyz")).await.unwrap()).await;
    assert_eq!(ready.status, 503, "{:?}", ready.json);
    assert!(database.subs().is_empty());
}

/// An issuer that publishes only RFC 8414 metadata (404 for its jwks.json
/// and its OpenID discovery document), and has a path: its metadata is at
/// the host's `/.well-known/oauth-authorization-server/tenant`.
#[actix_web::test]
async fn keys_are_found_through_rfc_8414_metadata_alone() {
    let key = shared_key("discovered");
    let metadata = format!("{RFC_8414}/tenant");
    let (server, issuer) = issuer_found_through(&key, "/tenant", &metadata).await;
    keys_found_and_ready(&issuer, &key).await;
    for asked_first in [
        "/tenant/.well-known/jwks.json",
        "/tenant/.well-known/openid-configuration",
    ] {
        assert!(asked(&server, asked_first).await >= 1, "{asked_first}");
    }
    assert!(asked(&server, &metadata).await >= 1);
}

/// The lines of `log` that hold `text`.
fn lines_with<'a>(log: &'a str, text: &str) -> Vec<&'a str> {
    log.lines().filter(|line| line.contains(text)).collect()
}

/// An issuer whose discovery document spells it with the trailing slash
/// that `AUTH0_ISSUER` lacks: its keys are not loaded, `/readyz` says so,
/// and the log says why once, as an error naming both spellings and the
/// fix, however often discovery is retried (every second here).
#[actix_web::test]
async fn a_discovery_document_a_trailing_slash_away_is_one_error_line_and_not_ready() {
    let key = shared_key("discovered");
    let (server, published) = issuer_found_by_discovery(&key).await;
    let configured = published.trim_end_matches('/');
    // Only its environment is used, with these over it.
    let stand_in = TestIssuer::start(&[]).await;
    let database = TestDatabase::create(Backend::Sqlite);
    let log = LogFile::new();
    let env = [
        ("AUTH0_ISSUER", configured),
        ("AUTH0_JWKS_URL", ""),
        ("JWKS_REFETCH_COOLDOWN_SECS", "1"),
    ];
    let serve = ServeProcess::start_with(&stand_in, &database.url(), log.stdio(), "info", &env);
    let retried = eventually(Duration::from_secs(10), async || {
        asked(&server, OPENID).await >= 3
    });
    assert!(retried.await, "discovery retried");
    assert_eq!(asked(&server, "/oauth/keys").await, 0, "keys never fetched");

    let ready = read(reqwest::get(format!("{}/readyz", serve.address)).await.unwrap()).await;
    assert_eq!(ready.status, 503, "{:?}", ready.json);
    assert_eq!(ready.json["issuers"][configured], "unavailable");
    assert_eq!(ready.json["signing_keys"], "unavailable");

    let log = log.read();
    let said = lines_with(&log, "differ only by a trailing slash");
    assert_eq!(said.len(), 1, "one line, not one per retry:\n{log}");
    for part in [
        " ERROR ",
        &format!(
            "{}.well-known/openid-configuration names the issuer {published:?}",
            published
        ),
        &format!("AUTH0_ISSUER {configured:?}"),
        &format!("write it as {published:?} in AUTH0_ISSUER"),
    ] {
        assert!(said[0].contains(part), "{part:?} in {}", said[0]);
    }
}

/// A token whose `iss` is the trusted issuer but for a trailing slash (here
/// `AUTH0_ISSUER` lacks the slash the issuer's tokens carry) is refused as
/// any unlisted issuer is, and the log warns once, naming both spellings
/// and the fix; other refused issuers get a debug line naming the issuer
/// expected.
///
/// What a sender controls is the `iss`: its length, its characters
/// (newlines to forge a log line, terminal escapes, NUL), how many distinct
/// ones it sends, and how often it sends the one a slash away. Those come
/// first: none may forge a line, reach the terminal, make a long line or
/// more than the one warning; then the issuer's own token, then the happy
/// path.
#[actix_web::test]
async fn a_token_a_trailing_slash_away_is_refused_as_before_and_warned_about_once() {
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    let configured = issuer.issuer.trim_end_matches('/').to_owned();
    let database = TestDatabase::create(Backend::Sqlite);
    let log = LogFile::new();
    let serve = ServeProcess::start_with(
        &issuer,
        &database.url(),
        log.stdio(),
        "info,actix_auth0_api::auth=debug",
        &[("AUTH0_ISSUER", &configured)],
    );
    let client = reqwest::Client::new();
    serve.wait_ready(&client).await;
    let answer = async |iss: &str| {
        let token = sign_with(&shared_key("main"), issuer.claims("auth0|s"), json!({"iss": iss}));
        status(&serve.address, "/api/private", &token).await
    };
    let stranger = answer("https://stranger.example/").await;
    assert_eq!(stranger.0, 401);
    assert_eq!(stranger.1["error_description"], "unexpected issuer");

    let forged = format!("{configured}\n[2030-01-01T00:00:00Z WARN  actix_auth0_api] forged");
    let long = format!("{configured}/{}", "i".repeat(5000));
    let escapes = format!("{configured}\u{1b}[2J\u{1b}]0;pwned\u{7}\u{0}\u{202e}");
    let flood = (0..50).map(|i| format!("https://flood-{i}.example/"));
    let slash_away = std::iter::repeat_n(issuer.issuer.clone(), 3);
    for iss in [forged, long, escapes].into_iter().chain(flood).chain(slash_away) {
        assert_eq!(answer(&iss).await, stranger, "{:?}", &iss[..iss.len().min(80)]);
    }
    assert_eq!(answer(&configured).await.0, 200, "the configured spelling passes");

    let warned = eventually(Duration::from_secs(2), async || {
        !lines_with(&log.read(), "refused a token whose iss").is_empty()
    });
    assert!(warned.await, "{}", log.read());
    let log = log.read();
    assert!(
        !log.lines().any(|line| line.starts_with("[2030")) && log.contains("\\n[2030-01-01"),
        "no line forged, the newline escaped"
    );
    assert!(
        !log.contains(['\u{1b}', '\u{7}', '\u{0}', '\u{202e}']) && log.contains("\\u{1b}[2J"),
        "nothing for the terminal"
    );
    assert!(
        !log.contains(&"i".repeat(200)) && log.contains("... (5"),
        "a long iss cut, its length said"
    );
    assert!(log.lines().all(|line| line.len() < 2000), "no long line");

    // Each line's head, `[time LEVEL target]`, is the server's own.
    let warnings: Vec<_> = log
        .lines()
        .filter(|line| line.split(']').next().is_some_and(|head| head.contains(" WARN ")))
        .filter(|line| !line.contains("has no trailing slash"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning: {warnings:#?}");
    for part in [
        format!(
            "whose iss {:?} differs from the trusted issuer {configured:?}",
            issuer.issuer
        ),
        format!("write it as {:?} in AUTH0_ISSUER", issuer.issuer),
    ] {
        assert!(warnings[0].contains(&part), "{part:?} in {}", warnings[0]);
    }
    let expected = lines_with(&log, &format!("is not a trusted issuer: expected {configured:?}"));
    assert!(
        expected.iter().filter(|line| line.contains(" DEBUG ")).count() >= 50 + 3 + 2,
        "each other refusal names the issuer expected: {}",
        expected.len()
    );
}
