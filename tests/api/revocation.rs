//! Revoking a user (`users revoke`): its tokens issued until then are
//! refused by every instance within about a second, the verified-token
//! cache included; a token issued after it works; `users unrevoke` lets the
//! old ones in again.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{Backend, TestApp, binary, eventually, now};

/// How long a revocation may take to reach an instance before a test gives
/// up: each instance reads the revoked users every second.
const REACH: Duration = Duration::from_secs(5);

/// `users ARGS` against `database_url`: (exit code, stdout, stderr).
fn users(database_url: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let output = binary()
        .envs([("DATABASE_URL", database_url)])
        .args(&[&["users"], args].concat())
        .output();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Waits until `app` answers `token` on `/api/private` with `status`; how long it took.
async fn answers(app: &TestApp, token: &str, status: u16) -> Option<Duration> {
    let start = Instant::now();
    let reached = eventually(REACH, async || {
        app.get_as("/api/private", token).await.status == status
    });
    reached.await.then(|| start.elapsed())
}

async fn a_revoked_user_is_refused_until_it_logs_in_again(backend: Backend) {
    let app = TestApp::builder(backend).spawn().await;
    let url = app.database.url();
    let issuer = app.issuer.issuer.clone();
    let old = app.token("auth0|leaver", json!({}));
    let bystander = app.token("auth0|stayer", json!({}));
    assert_eq!(
        app.get_as("/api/private", &old).await.status,
        200,
        "verified and cached"
    );
    assert_eq!(app.get_as("/api/private", &bystander).await.status, 200);

    // Hostile and mistaken input first: one clear line, nothing revoked.
    // (Exit 2: a malformed argument; 1: no such user.)
    for (args, exit) in [
        (&["revoke", "auth0|nobody"][..], 1),
        (&["revoke", ""], 2),
        (&["revoke", "auth0|x\u{1b}[2J"], 2),
        (&["unrevoke", "auth0|nobody"], 1),
    ] {
        let (code, _, stderr) = users(&url, args);
        assert_eq!(code, Some(exit), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    }
    assert!(app.users().iter().all(|user| user.revoked_before.is_none()));
    // A user of another issuer not seen yet: its row is made to hold it.
    let (code, stdout, _) = users(
        &url,
        &["revoke", "auth0|leaver", "--issuer", "https://other.example/"],
    );
    assert_eq!(code, Some(0));
    assert!(stdout.contains("not seen yet"), "{stdout}");
    assert_eq!(
        app.get_as("/api/private", &old).await.status,
        200,
        "another issuer's user"
    );

    let (code, stdout, stderr) = users(&url, &["revoke", "auth0|leaver", "--issuer", &issuer]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("revoked auth0|leaver of "), "{stdout}");
    let reached = answers(&app, &old, 401)
        .await
        .expect("the revocation reaches the instance");
    let reply = app.get_as("/api/private", &old).await;
    assert_eq!(reply.json["error"], "invalid_token");
    assert_eq!(reply.json["error_description"], "token revoked");
    assert_eq!(
        app.get_as("/api/private", &bystander).await.status,
        200,
        "others unaffected"
    );
    // Issued after the revocation (a new login): accepted.
    let fresh = app.token("auth0|leaver", json!({"iat": now() + 2}));
    assert_eq!(app.get_as("/api/private", &fresh).await.status, 200);
    // `users` shows when.
    let (_, listing, _) = users(&url, &["--json"]);
    let leaver: serde_json::Value = listing
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .find(|row: &serde_json::Value| row["sub"] == "auth0|leaver")
        .unwrap();
    assert!(leaver["revoked_before"].is_string(), "{leaver}");

    let (code, stdout, _) = users(&url, &["unrevoke", "auth0|leaver"]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("no longer revoked"), "{stdout}");
    answers(&app, &old, 200).await.expect("the old token works again");
    println!("revocation reached the instance in {reached:?}");
}

on_both_backends!(a_revoked_user_is_refused_until_it_logs_in_again);

/// Two instances on one PostgreSQL database: one revocation, both refuse.
#[actix_web::test]
#[ignore = "needs PostgreSQL at 127.0.0.1:5432 (TEST_POSTGRES_URL)"]
async fn a_revocation_reaches_every_instance() {
    let first = TestApp::builder(Backend::Postgres).spawn().await;
    let url = first.database.url();
    let second = TestApp::builder(Backend::Postgres)
        .trusting(&[&first.issuer.issuer])
        .env(&[("DATABASE_URL", &url)])
        .spawn()
        .await;
    let token = first.token("auth0|everywhere", json!({}));
    for app in [&first, &second] {
        answers(app, &token, 200)
            .await
            .expect("keys loaded, token accepted");
    }
    let (code, _, stderr) = users(&url, &["revoke", "auth0|everywhere"]);
    assert_eq!(code, Some(0), "{stderr}");
    for app in [&first, &second] {
        let took = answers(app, &token, 401)
            .await
            .expect("refused by every instance");
        println!("revocation reached an instance in {took:?}");
    }
}
