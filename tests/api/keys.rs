//! The key store as a client sees it, over real HTTP: rotation, unknown
//! kids, outages, slow tenants, bad documents, readiness. The timing of
//! refreshes, cooldowns and staleness is tested on a paused clock beside the
//! store (`src/auth/keys/store/tests.rs`).

use std::time::Duration;

use actix_auth0_api::dev::{SigningKey, jwks};
use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{Backend, TestApp, TestIssuer, eventually, shared_key, sign_with};

/// Waits up to five seconds for `path` to answer `status` to `token`.
async fn answers(app: &TestApp, path: &str, token: &str, status: u16) -> bool {
    eventually(Duration::from_secs(5), async || {
        app.get_as(path, token).await.status == status
    })
    .await
}

/// Waits up to two seconds for the issuer to have been asked `fetches` times.
async fn fetched(app: &TestApp, fetches: usize) -> bool {
    eventually(Duration::from_secs(2), async || app.issuer.fetches() == fetches).await
}

#[actix_web::test]
async fn a_key_published_after_start_is_accepted_on_first_use() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    assert!(fetched(&app, 1).await, "keys load at start");
    let main = app.token("auth0|kim", json!({}));
    assert_eq!(app.get_as("/api/private", &main).await.status, 200);

    let rotated = shared_key("rotated");
    app.issuer.publish(&[&shared_key("main"), &rotated]);
    let token = sign_with(&rotated, app.issuer.claims("auth0|kim"), json!({}));
    assert_eq!(app.get_as("/api/private", &token).await.status, 200);
    assert_eq!(app.issuer.fetches(), 2, "one refetch for the new kid");
    assert_eq!(
        app.get_as("/api/private", &main).await.status,
        200,
        "old key still published"
    );
}

#[actix_web::test]
async fn a_storm_of_random_kids_causes_at_most_one_fetch_per_cooldown() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    assert!(fetched(&app, 1).await);
    let main = shared_key("main");
    let claims = app.issuer.claims("auth0|eve");
    let tokens: Vec<String> = (0..100)
        .map(|i| SigningKey::from_pem(format!("random-kid-{i}-{}", i * 7919), main.pem()).unwrap())
        .map(|key| key.sign(&claims).unwrap())
        .collect();
    let replies = join_all(tokens.iter().map(|token| app.get_as("/api/private", token))).await;
    for reply in &replies {
        assert_eq!(reply.status, 401);
        assert!(
            reply.json["error_description"].as_str().unwrap().contains("kid"),
            "{reply:?}"
        );
    }
    assert_eq!(app.issuer.fetches(), 2, "a single refetch for the whole storm");
    let again = join_all(
        tokens
            .iter()
            .take(10)
            .map(|token| app.get_as("/api/private", token)),
    )
    .await;
    assert!(again.iter().all(|r| r.status == 401));
    assert_eq!(app.issuer.fetches(), 2, "none within the cooldown");
}

#[actix_web::test]
async fn an_outage_at_start_answers_503_then_recovers_by_itself() {
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    issuer.set_status(500);
    let app = TestApp::builder(Backend::Sqlite)
        .issuer(issuer)
        .env(&[("JWKS_REFETCH_COOLDOWN_SECS", "1")])
        .spawn()
        .await;
    assert!(eventually(Duration::from_secs(2), async || app.issuer.fetches() >= 1).await);
    let token = app.token("auth0|liam", json!({}));

    let reply = app.get_as("/api/private", &token).await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(reply.header("www-authenticate"), "");
    assert_eq!(reply.json["error"], "temporarily_unavailable");
    assert_eq!(
        app.get_with("/api/public", &[]).await.status,
        200,
        "public routes unaffected"
    );
    let ready = app.get_with("/readyz", &[]).await;
    assert_eq!(
        (ready.status, &ready.json["signing_keys"]),
        (503, &json!("unavailable"))
    );
    assert_eq!(app.get_with("/healthz", &[]).await.status, 200);
    assert!(app.users().is_empty());

    app.issuer.set_status(200);
    assert!(
        answers(&app, "/readyz", "", 200).await,
        "retried without any request"
    );
    assert_eq!(app.get_as("/api/private", &token).await.status, 200);
}

#[actix_web::test]
async fn during_an_outage_known_keys_work_and_new_kids_are_unavailable() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    assert!(fetched(&app, 1).await);
    app.issuer.set_status(503);
    let token = app.token("auth0|mia", json!({}));
    assert_eq!(app.get_as("/api/private", &token).await.status, 200);
    let stranger = sign_with(
        &shared_key("stranger-0"),
        app.issuer.claims("auth0|mia"),
        json!({}),
    );
    let reply = app.get_as("/api/private", &stranger).await;
    assert_eq!(reply.status, 503, "cannot be checked: unavailable, not invalid");
    assert!(reply.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(
        app.get_as("/api/private", &token).await.status,
        200,
        "last good keys kept"
    );
}

#[actix_web::test]
async fn a_cached_token_of_a_key_replaced_under_its_kid_is_refused() {
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    issuer.set_cache_control("max-age=1");
    let app = TestApp::builder(Backend::Sqlite)
        .issuer(issuer)
        .env(&[("JWKS_MIN_TTL_SECS", "1")])
        .spawn()
        .await;
    let old = app.token("auth0|swap", json!({}));
    assert!(answers(&app, "/api/private", &old, 200).await);

    let impostor = SigningKey::from_pem("main", shared_key("rotated").pem()).unwrap();
    app.issuer.publish(&[&impostor]);
    assert!(
        answers(&app, "/api/private", &old, 401).await,
        "the token of the replaced key is refused, though it was in the token cache"
    );
    let new = sign_with(&impostor, app.issuer.claims("auth0|swap"), json!({}));
    assert_eq!(app.get_as("/api/private", &new).await.status, 200);
}

#[actix_web::test]
async fn a_slow_tenant_never_hangs_requests_or_start_up() {
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    issuer.set_delay(Duration::from_secs(4));
    let app = TestApp::builder(Backend::Sqlite)
        .issuer(issuer)
        .env(&[("JWKS_FETCH_TIMEOUT_SECS", "1")])
        .spawn()
        .await;
    assert_eq!(app.get_with("/api/public", &[]).await.status, 200);
    let reply = app
        .get_as("/api/private", &app.token("auth0|olga", json!({})))
        .await;
    // Had the request waited for the tenant, it would have got the keys
    // (and a 200): the 503 is the fetch timeout at work.
    assert_eq!(reply.status, 503, "{reply:?}");
}

#[actix_web::test]
async fn malformed_and_duplicate_keys_are_skipped_not_fatal() {
    let main = shared_key("main");
    let impostor = SigningKey::from_pem("main", shared_key("stranger-0").pem()).unwrap();
    let body = json!({"keys": [
        {"kty": "RSA", "kid": "broken", "n": "%%%", "e": "AQAB"},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": main.public_jwk()["n"], "e": "AQAB"},
        main.public_jwk(),
        impostor.public_jwk(),
        42,
    ]});
    let issuer = TestIssuer::start(&[]).await;
    issuer.serve_body(body.to_string());
    let app = TestApp::builder(Backend::Sqlite).issuer(issuer).spawn().await;
    assert_eq!(
        app.get_as("/api/private", &app.token("auth0|pia", json!({})))
            .await
            .status,
        200
    );
    let forged = impostor.sign(&app.issuer.claims("auth0|pia")).unwrap();
    assert_eq!(
        app.get_as("/api/private", &forged).await.status,
        401,
        "the first of two duplicate kids wins"
    );
}

#[actix_web::test]
async fn documents_that_are_not_key_sets_are_refused() {
    // A good key set padded past 1 MiB: only its size is wrong. (A chunked
    // one is refused too: see the HTTP source's own tests.)
    let mut padded = jwks([&*shared_key("main")]);
    padded["padding"] = json!("x".repeat(1024 * 1024));
    let bodies = [
        "<html>maintenance</html>".to_owned(),
        "{\"keys\": []}".to_owned(),
        padded.to_string(),
    ];
    for body in bodies {
        let issuer = TestIssuer::start(&[]).await;
        issuer.serve_body(body.clone());
        let app = TestApp::builder(Backend::Sqlite).issuer(issuer).spawn().await;
        let reply = app
            .get_as("/api/private", &app.token("auth0|quinn", json!({})))
            .await;
        assert_eq!(reply.status, 503, "{}", &body[..body.len().min(40)]);
    }
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    issuer.set_status(404);
    let app = TestApp::builder(Backend::Sqlite).issuer(issuer).spawn().await;
    assert_eq!(
        app.get_as("/api/private", &app.token("auth0|quinn", json!({})))
            .await
            .status,
        503
    );
}
