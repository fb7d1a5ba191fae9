//! The users table: one row per accepted user (issuer and `sub`), created
//! on first sight.

use futures_util::future::join_all;
use serde_json::json;

use std::time::Duration;

use crate::helpers::{Backend, TestApp, TestDatabase, TestIssuer, eventually, shared_key, sign_with};

async fn first_sight_creates_the_row_and_repeat_visits_update_it(backend: Backend) {
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    let app = TestApp::builder(backend)
        .issuer(issuer)
        .env(&[("LAST_SEEN_INTERVAL_SECS", "0")])
        .spawn()
        .await;
    assert!(app.users().is_empty());
    let token = app.token("auth0|grace", json!({}));

    assert_eq!(app.get_as("/api/private", &token).await.status, 200);
    let first = app.users();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].sub, "auth0|grace");
    assert_eq!(first[0].created_at, first[0].last_seen_at);

    // Visits until one is recorded later than the first (the clock may
    // not have moved between the first two).
    let refreshed = eventually(Duration::from_secs(5), async || {
        assert_eq!(app.get_as("/api/messages/protected", &token).await.status, 200);
        app.users()
            .first()
            .is_some_and(|row| row.last_seen_at > first[0].last_seen_at)
    });
    assert!(refreshed.await, "last_seen_at refreshed in the background");
    let again = app.users();
    assert_eq!(again.len(), 1, "a repeat visit adds no row");
    assert_eq!(
        (again[0].id, again[0].created_at),
        (first[0].id, first[0].created_at)
    );

    assert_eq!(
        app.get_as("/api/private", &app.token("auth0|heidi", json!({})))
            .await
            .status,
        200
    );
    let subs: Vec<String> = app.users().into_iter().map(|u| u.sub).collect();
    assert_eq!(subs, vec!["auth0|grace", "auth0|heidi"]);
}

async fn repeat_visits_within_the_interval_do_not_write(backend: Backend) {
    let app = TestApp::builder(backend).spawn().await;
    let token = app.token("auth0|ivy", json!({}));
    assert_eq!(app.get_as("/api/private", &token).await.status, 200);
    let first = app.users();
    // Later than the row's time, so that a write would show.
    assert!(
        eventually(Duration::from_secs(5), async || {
            chrono::Utc::now().naive_utc() > first[0].last_seen_at + chrono::Duration::milliseconds(1)
        })
        .await
    );
    for _ in 0..5 {
        assert_eq!(app.get_as("/api/private", &token).await.status, 200);
    }
    // A new user's row goes through the same writer, after any write the
    // visits above asked for: once it is there, those would be too.
    assert_eq!(
        app.get_as("/api/private", &app.token("auth0|barrier", json!({})))
            .await
            .status,
        200
    );
    assert!(eventually(Duration::from_secs(5), async || app.users().len() == 2).await);
    assert_eq!(
        app.users()[..1],
        first[..],
        "the default 5-minute interval has not passed"
    );
}

async fn fifty_concurrent_first_requests_make_one_row(backend: Backend) {
    let app = TestApp::builder(backend).spawn().await;
    // Fifty distinct tokens of one user, so that no request is served by
    // another's verified-token cache entry.
    let tokens: Vec<String> = (0..50)
        .map(|i| app.token("auth0|ivan", json!({"jti": format!("request-{i}")})))
        .collect();
    let replies = join_all(tokens.iter().map(|token| app.get_as("/api/private", token))).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let users = app.users();
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0].sub, "auth0|ivan");
}

async fn refused_requests_never_write(backend: Backend) {
    let app = TestApp::builder(backend).spawn().await;
    let refused = [
        app.token("auth0|judy", json!({"exp": 1})),
        app.token("auth0|judy", json!({"aud": "nope"})),
        app.token("auth0|judy", json!({})) + "x",
    ];
    for token in &refused {
        assert_eq!(app.get_as("/api/private", token).await.status, 401);
    }
    assert_eq!(
        app.get_as("/api/private-scoped", &app.token("auth0|judy", json!({})))
            .await
            .status,
        403
    );
    let valid = app.token("auth0|judy", json!({"scope": "read:messages"}));
    for path in ["/api/private", "/api/private-scoped", "/api/me"] {
        let reply = app
            .client
            .post(format!("{}{path}", app.address))
            .bearer_auth(&valid)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 405, "POST {path}");
    }
    assert!(app.users().is_empty());
}

/// A database made before users had an issuer, with ids 1 and 3 left of 4
/// given: after the upgrade every row keeps its id and belongs to the first
/// configured issuer, no id is given twice, and the same `sub` from a second
/// tenant is a second user, never the first one's row.
async fn an_earlier_database_keeps_its_ids_and_the_same_sub_of_another_issuer_is_another_user(
    backend: Backend,
) {
    let database = TestDatabase::create(backend);
    let folder = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let create = std::fs::read_to_string(format!(
        "{}/migrations/{folder}/2026-11-23-000000_create_users/up.sql",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    database.execute(&create);
    database.execute(
        "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, \
         run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    );
    database.execute("INSERT INTO __diesel_schema_migrations (version) VALUES ('20261123000000')");
    for sub in ["auth0|victim", "auth0|gone", "auth0|bob", "auth0|last"] {
        database.execute(&format!(
            "INSERT INTO users (sub, created_at, last_seen_at) \
             VALUES ('{sub}', '2026-11-01 00:00:00', '2026-11-01 00:00:00')"
        ));
    }
    database.execute("DELETE FROM users WHERE sub IN ('auth0|gone', 'auth0|last')");

    let tenant_a = TestIssuer::start(&[&shared_key("main")]).await;
    let tenant_b = TestIssuer::start(&[&shared_key("tenant-b")]).await;
    let (a, b) = (tenant_a.issuer.clone(), tenant_b.issuer.clone());
    let app = TestApp::builder(Backend::Sqlite)
        .database(database)
        .issuer(tenant_a)
        .trusting(&[&a, &b])
        .spawn()
        .await;
    let rows = |app: &crate::helpers::TestApp| -> Vec<(i32, String, String)> {
        app.users()
            .into_iter()
            .map(|user| (user.id, user.issuer, user.sub))
            .collect()
    };
    assert_eq!(
        rows(&app),
        [
            (1, a.clone(), "auth0|victim".to_owned()),
            (3, a.clone(), "auth0|bob".to_owned())
        ],
        "ids kept, rows adopted by the first issuer"
    );

    let victim = app.get_as("/api/me", &app.token("auth0|victim", json!({}))).await;
    assert_eq!(
        (victim.status, &victim.json["id"], &victim.json["issuer"]),
        (200, &json!(1), &json!(a))
    );
    let impostor = sign_with(
        &shared_key("tenant-b"),
        tenant_b.claims("auth0|victim"),
        json!({}),
    );
    let impostor = app.get_as("/api/me", &impostor).await;
    assert_eq!(impostor.status, 200, "{impostor:?}");
    assert_eq!(impostor.json["issuer"], json!(b));
    let new_id = impostor.json["id"].as_i64().unwrap();
    // Above every id given before (an upsert that finds its row may use up
    // a number of the sequence, so not necessarily 5).
    assert!(new_id > 4, "a new id, none given before: {new_id}");
    assert_eq!(rows(&app).len(), 3);
    assert_eq!(
        app.get_as("/api/me", &app.token("auth0|victim", json!({})))
            .await
            .json["id"],
        json!(1),
        "tenant A's user still has its own row"
    );
}

on_both_backends!(
    first_sight_creates_the_row_and_repeat_visits_update_it,
    repeat_visits_within_the_interval_do_not_write,
    fifty_concurrent_first_requests_make_one_row,
    refused_requests_never_write,
    an_earlier_database_keeps_its_ids_and_the_same_sub_of_another_issuer_is_another_user,
);
