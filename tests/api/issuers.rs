//! Several issuers (an Auth0 tenant's canonical and custom domains, or
//! several tenants): each with its own keys, a token checked only against
//! the keys of the issuer its `iss` names.

use std::time::Duration;

use actix_auth0_api::dev::{SigningKey, jwks};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{AUDIENCE, Backend, TestApp, TestIssuer, eventually, read, shared_key, sign_with};

/// The app trusting `issuers` (a comma-separated `AUTH0_ISSUER`), keys found
/// from each issuer, with `more` settings; its address.
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

/// An issuer on a mock server whose keys (`/oauth/keys`) are found only
/// through its discovery document; the server, for more mocks, and the issuer.
async fn issuer_found_by_discovery(key: &SigningKey) -> (MockServer, String) {
    let server = MockServer::start().await;
    let issuer = format!("{}/", server.uri());
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
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

/// Whether the app at `address` accepts a token of `issuer` signed by `key`
/// within `within`.
async fn accepted_within(address: &str, issuer: &str, key: &SigningKey, within: Duration) -> bool {
    let now = crate::helpers::now();
    let claims = json!({"iss": issuer, "aud": AUDIENCE, "sub": "auth0|d", "iat": now, "exp": now + 60});
    let token = sign_with(key, claims, json!({}));
    eventually(within, async || {
        status(address, "/api/private", &token).await.0 == 200
    })
    .await
}

#[actix_web::test]
async fn keys_are_found_through_openid_discovery_when_jwks_json_is_absent() {
    let key = shared_key("discovered");
    let (_server, issuer) = issuer_found_by_discovery(&key).await;
    let app = TestApp::builder(Backend::Sqlite)
        .trusting(&[&issuer])
        .spawn()
        .await;
    let address = &app.address;
    assert!(
        accepted_within(address, &issuer, &key, Duration::from_secs(5)).await,
        "keys found where the discovery document says"
    );
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
        .and(path("/.well-known/openid-configuration"))
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
    let discoveries = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|request| request.url.path() == "/.well-known/openid-configuration")
        .count();
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
        .and(path("/.well-known/openid-configuration"))
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
    let asked = eventually(Duration::from_secs(5), async || {
        server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .any(|request| request.url.path() == "/.well-known/openid-configuration")
    });
    assert!(asked.await, "discovery was asked");
    let now = crate::helpers::now();
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
