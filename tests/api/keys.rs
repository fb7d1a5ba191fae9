//! The key store as seen from outside: rotation, removal, unknown kids,
//! outages, slow tenants, bad documents, Cache-Control, readiness.
//! Durations are configured short so the suite stays fast.

use std::time::{Duration, Instant};

use actix_auth0_api::signing::SigningKey;
use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{
    Backend, TestApp, TestIssuer, eventually, eventually_for, shared_key, sign_with, spawn_app,
    spawn_app_with,
};

/// Polls `path` until it answers `status`, for up to `limit`.
async fn wait_for_status(app: &TestApp, path: &str, token: &str, status: u16, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if app.get_as(path, token).await.status == status {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn a_key_published_after_start_is_accepted_on_first_use(backend: Backend) {
    let app = spawn_app(backend).await;
    assert!(
        eventually(|| app.issuer.fetches() == 1).await,
        "keys load at start"
    );
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

async fn a_removed_key_stops_working_after_the_next_refresh(backend: Backend) {
    let issuer = TestIssuer::start(&[&shared_key("main")]);
    issuer.set_cache_control("max-age=1");
    let app = spawn_app_with(backend, issuer, &[("JWKS_MIN_TTL_SECS", "1")]).await;
    let old = app.token("auth0|noah", json!({}));
    assert!(wait_for_status(&app, "/api/private", &old, 200, Duration::from_secs(5)).await);

    let rotated = shared_key("rotated");
    app.issuer.publish(&[&rotated]);
    assert!(
        wait_for_status(&app, "/api/private", &old, 401, Duration::from_secs(5)).await,
        "old key dropped"
    );
    let reply = app.get_as("/api/private", &old).await;
    assert!(
        reply.json["error_description"].as_str().unwrap().contains("kid"),
        "{reply:?}"
    );
    let new = sign_with(&rotated, app.issuer.claims("auth0|noah"), json!({}));
    assert_eq!(app.get_as("/api/private", &new).await.status, 200);
}

async fn a_storm_of_random_kids_causes_at_most_one_fetch_per_cooldown(backend: Backend) {
    let app = spawn_app(backend).await;
    assert!(eventually(|| app.issuer.fetches() == 1).await);
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

async fn an_outage_at_start_answers_503_then_recovers_by_itself(backend: Backend) {
    let issuer = TestIssuer::start(&[&shared_key("main")]);
    issuer.set_status(500);
    let app = spawn_app_with(backend, issuer, &[("JWKS_REFETCH_COOLDOWN_SECS", "1")]).await;
    assert!(eventually(|| app.issuer.fetches() >= 1).await);
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
    let fetches = app.issuer.fetches();
    assert!(
        eventually_for(Duration::from_secs(5), || app.issuer.fetches() > fetches).await,
        "the background task retries without any request"
    );
    assert!(wait_for_status(&app, "/readyz", "", 200, Duration::from_secs(5)).await);
    assert_eq!(app.get_as("/api/private", &token).await.status, 200);
}

async fn cached_keys_keep_working_during_an_outage_until_max_stale(backend: Backend) {
    let issuer = TestIssuer::start(&[&shared_key("main")]);
    let app = spawn_app_with(backend, issuer, &[("JWKS_MAX_STALE_SECS", "2")]).await;
    assert!(eventually(|| app.issuer.fetches() == 1).await);
    app.issuer.set_status(503);
    let token = app.token("auth0|mia", json!({}));
    assert_eq!(app.get_as("/api/private", &token).await.status, 200);
    // An unknown kid during the outage cannot be checked: unavailable, not "invalid".
    let stranger = sign_with(
        &shared_key("stranger-0"),
        app.issuer.claims("auth0|mia"),
        json!({}),
    );
    assert_eq!(app.get_as("/api/private", &stranger).await.status, 503);
    assert_eq!(
        app.get_as("/api/private", &token).await.status,
        200,
        "last good keys kept"
    );

    assert!(
        wait_for_status(&app, "/api/private", &token, 503, Duration::from_secs(5)).await,
        "too stale"
    );
    assert_eq!(app.get_with("/readyz", &[]).await.status, 503);
}

async fn a_key_replaced_under_the_same_kid_no_longer_verifies_its_tokens(backend: Backend) {
    let issuer = TestIssuer::start(&[&shared_key("main")]);
    issuer.set_cache_control("max-age=1");
    let app = spawn_app_with(backend, issuer, &[("JWKS_MIN_TTL_SECS", "1")]).await;
    let old = app.token("auth0|swap", json!({}));
    assert!(wait_for_status(&app, "/api/private", &old, 200, Duration::from_secs(5)).await);

    // Another key under the same kid: the cached token must not outlive its key.
    let impostor = SigningKey::from_pem("main", shared_key("rotated").pem()).unwrap();
    app.issuer.publish(&[&impostor]);
    assert!(
        wait_for_status(&app, "/api/private", &old, 401, Duration::from_secs(5)).await,
        "the token of the replaced key is refused"
    );
    let new = sign_with(&impostor, app.issuer.claims("auth0|swap"), json!({}));
    assert_eq!(app.get_as("/api/private", &new).await.status, 200);
}

async fn a_new_key_passes_even_while_a_background_refresh_is_in_flight(backend: Backend) {
    let issuer = TestIssuer::start(&[&shared_key("main")]);
    issuer.set_cache_control("max-age=2");
    let app = spawn_app_with(backend, issuer, &[("JWKS_MIN_TTL_SECS", "1")]).await;
    assert!(eventually(|| app.issuer.fetches() == 1).await);
    // The background refresh (at 80% of 2 s) takes 1.5 s and reads the old set.
    app.issuer.set_delay(Duration::from_millis(1500));
    assert!(eventually_for(Duration::from_secs(5), || app.issuer.fetches() == 2).await);
    app.issuer.set_delay(Duration::ZERO);
    let rotated = shared_key("rotated");
    app.issuer.publish(&[&shared_key("main"), &rotated]);

    let token = sign_with(&rotated, app.issuer.claims("auth0|rotor"), json!({}));
    let reply = app.get_as("/api/private", &token).await;
    assert_eq!(reply.status, 200, "the first token of the new key: {reply:?}");
    assert_eq!(app.issuer.fetches(), 3, "its own refetch, after the stale one");
}

async fn keys_go_stale_only_after_fetches_fail(backend: Backend) {
    let issuer = TestIssuer::start(&[&shared_key("main")]);
    issuer.set_cache_control("max-age=600");
    let app = spawn_app_with(backend, issuer, &[("JWKS_MAX_STALE_SECS", "1")]).await;
    let token = app.token("auth0|patient", json!({}));
    assert!(wait_for_status(&app, "/api/private", &token, 200, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(2500)).await;

    assert_eq!(app.get_as("/api/private", &token).await.status, 200);
    assert_eq!(app.get_with("/readyz", &[]).await.status, 200);
    assert_eq!(
        app.issuer.fetches(),
        1,
        "a healthy tenant's keys are good for their max-age"
    );
}

async fn a_slow_tenant_never_hangs_requests_or_start_up(backend: Backend) {
    let issuer = TestIssuer::start(&[&shared_key("main")]);
    issuer.set_delay(Duration::from_secs(4));
    let app = spawn_app_with(backend, issuer, &[("JWKS_FETCH_TIMEOUT_SECS", "1")]).await;
    assert_eq!(app.get_with("/api/public", &[]).await.status, 200);
    let reply = app
        .get_as("/api/private", &app.token("auth0|olga", json!({})))
        .await;
    // Had the request waited for the tenant, it would have got the keys
    // (and a 200): the 503 is the fetch timeout at work.
    assert_eq!(reply.status, 503, "{reply:?}");
}

async fn malformed_and_duplicate_keys_are_skipped_not_fatal(backend: Backend) {
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
    let issuer = TestIssuer::start(&[]);
    issuer.serve_body(body.to_string());
    let app = spawn_app_with(backend, issuer, &[]).await;
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

async fn documents_that_are_not_key_sets_are_refused(backend: Backend) {
    // A good key set padded past 1 MiB: only its size is wrong.
    let mut padded = actix_auth0_api::signing::jwks([&*shared_key("main")]);
    padded["padding"] = json!("x".repeat(1024 * 1024));
    let oversized = padded.to_string();
    let bodies = [
        ("<html>maintenance</html>".to_owned(), false),
        ("{\"keys\": []}".to_owned(), false),
        (oversized.clone(), false),
        (oversized, true),
    ];
    for (body, chunked) in bodies {
        let issuer = TestIssuer::start(&[]);
        issuer.serve_body(body.clone());
        issuer.set_chunked(chunked);
        let app = spawn_app_with(backend, issuer, &[]).await;
        let reply = app
            .get_as("/api/private", &app.token("auth0|quinn", json!({})))
            .await;
        assert_eq!(
            reply.status,
            503,
            "{} (chunked: {chunked})",
            &body[..body.len().min(40)]
        );
    }
    let issuer = TestIssuer::start(&[&shared_key("main")]);
    issuer.set_status(404);
    let app = spawn_app_with(backend, issuer, &[]).await;
    assert_eq!(
        app.get_as("/api/private", &app.token("auth0|quinn", json!({})))
            .await
            .status,
        503
    );
}

async fn cache_control_max_age_sets_the_refresh_time(backend: Backend) {
    let issuer = TestIssuer::start(&[&shared_key("main")]);
    issuer.set_cache_control("public, max-age=1");
    let app = spawn_app_with(backend, issuer, &[("JWKS_MIN_TTL_SECS", "1")]).await;
    assert!(
        eventually_for(Duration::from_secs(5), || app.issuer.fetches() >= 3).await,
        "refreshed every ~0.8 s"
    );

    let issuer = TestIssuer::start(&[&shared_key("main")]);
    issuer.set_cache_control("max-age=3600");
    let app = spawn_app_with(
        backend,
        issuer,
        &[("JWKS_MIN_TTL_SECS", "1"), ("JWKS_CACHE_TTL_SECS", "1")],
    )
    .await;
    assert!(eventually(|| app.issuer.fetches() == 1).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.issuer.fetches(), 1, "max-age=3600 wins over the 1 s default");
}

on_both_backends!(
    a_key_published_after_start_is_accepted_on_first_use,
    a_removed_key_stops_working_after_the_next_refresh,
    a_storm_of_random_kids_causes_at_most_one_fetch_per_cooldown,
    an_outage_at_start_answers_503_then_recovers_by_itself,
    cached_keys_keep_working_during_an_outage_until_max_stale,
    a_key_replaced_under_the_same_kid_no_longer_verifies_its_tokens,
    a_new_key_passes_even_while_a_background_refresh_is_in_flight,
    keys_go_stale_only_after_fetches_fail,
    a_slow_tenant_never_hangs_requests_or_start_up,
    malformed_and_duplicate_keys_are_skipped_not_fatal,
    documents_that_are_not_key_sets_are_refused,
    cache_control_max_age_sets_the_refresh_time,
);
