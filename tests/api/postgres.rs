//! PostgreSQL as a deployment uses it: several instances sharing one
//! database, and a database that goes away and comes back.

use std::process::Stdio;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{
    Backend, ServeProcess, TestApp, TestDatabase, TestIssuer, binary, eventually, postgres_admin, shared_key,
    sign_with,
};

#[actix_web::test]
#[ignore = "needs PostgreSQL at 127.0.0.1:5432 (TEST_POSTGRES_URL)"]
async fn two_instances_racing_on_first_sight_create_one_row_per_sub() {
    let database = TestDatabase::create(Backend::Postgres);
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    // Started together: their migrations race too.
    let instances = [
        ServeProcess::start(&issuer, &database.url(), Stdio::inherit(), "warn"),
        ServeProcess::start(&issuer, &database.url(), Stdio::inherit(), "warn"),
    ];
    let client = reqwest::Client::new();
    for instance in &instances {
        instance.wait_ready(&client).await;
    }

    let tokens: Vec<String> = (0..20)
        .map(|i| {
            sign_with(
                &shared_key("main"),
                issuer.claims(&format!("auth0|racer-{i}")),
                json!({}),
            )
        })
        .collect();
    // Every sub goes to both instances: request i carries sub i % 20 to
    // instance (i / 20) % 2.
    let requests = (0..200).map(|i| {
        let request = client
            .get(format!("{}/api/private", instances[(i / 20) % 2].address))
            .bearer_auth(&tokens[i % 20])
            .send();
        async move { request.await.map(|r| r.status().as_u16()).unwrap_or(0) }
    });
    let statuses = join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    let users = database.users();
    assert_eq!(users.len(), 20, "{users:?}");
}

#[actix_web::test]
#[ignore = "needs PostgreSQL at 127.0.0.1:5432 (TEST_POSTGRES_URL)"]
async fn killed_connections_are_replaced_without_a_restart() {
    let app = TestApp::builder(Backend::Postgres).spawn().await;
    assert_eq!(
        app.get_as("/api/private", &app.token("auth0|before", json!({})))
            .await
            .status,
        200
    );

    let name = app.database.postgres_name().to_owned();
    postgres_admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ));
    let reply = app
        .get_as("/api/private", &app.token("auth0|after", json!({})))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(app.users().len(), 2);
}

#[actix_web::test]
#[ignore = "needs PostgreSQL at 127.0.0.1:5432 (TEST_POSTGRES_URL)"]
async fn a_lost_database_answers_503_keeps_public_routes_and_recovers() {
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    let app = TestApp::builder(Backend::Postgres)
        .issuer(issuer)
        .env(&[("DATABASE_TIMEOUT_SECS", "1")])
        .spawn()
        .await;
    let known = app.token("auth0|known", json!({}));
    assert_eq!(app.get_as("/api/private", &known).await.status, 200);

    let name = app.database.postgres_name().to_owned();
    postgres_admin(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"));
    postgres_admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ));

    let reply = app
        .get_as("/api/private", &app.token("auth0|during", json!({})))
        .await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(reply.json["error"], "temporarily_unavailable");
    assert!(!reply.header("retry-after").is_empty());
    assert_eq!(app.get_with("/api/public", &[]).await.status, 200);
    let ready = app.get_with("/readyz", &[]).await;
    assert_eq!(
        (ready.status, &ready.json["database"]),
        (503, &json!("unavailable"))
    );

    postgres_admin(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"));
    let token = app.token("auth0|after", json!({}));
    let recovered = eventually(Duration::from_secs(5), async || {
        app.get_as("/api/private", &token).await.status == 200
    });
    assert!(recovered.await, "requests recover once the database is back");
    assert_eq!(app.users().len(), 2);
}

#[test]
fn an_unreachable_database_at_start_is_one_line_and_a_non_zero_exit() {
    let (code, stderr) = binary()
        .envs([
            ("AUTH0_DOMAIN", "t.example.com"),
            ("AUTH0_AUDIENCE", "a"),
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:9/absent"),
        ])
        .code_and_stderr();
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: DATABASE_URL: database connection"),
        "{stderr}"
    );
}

#[test]
#[ignore = "needs PostgreSQL at 127.0.0.1:5432 (TEST_POSTGRES_URL)"]
fn migrate_runs_the_postgres_migrations() {
    let database = TestDatabase::create(Backend::Postgres);
    let run = || {
        binary()
            .args(&["migrate"])
            .envs([("DATABASE_URL", database.url())])
            .stdout()
    };
    assert!(run().contains("applied 20261123000000"));
    assert!(run().contains("no pending migrations"));
}

#[actix_web::test]
#[ignore = "needs PostgreSQL at 127.0.0.1:5432 (TEST_POSTGRES_URL)"]
async fn users_lists_the_postgres_table() {
    let app = TestApp::builder(Backend::Postgres).spawn().await;
    for sub in ["auth0|pg-1", "auth0|pg-2"] {
        let token = app.token(sub, json!({}));
        assert_eq!(app.get_as("/api/private", &token).await.status, 200);
    }
    let users = || {
        binary()
            .args(&["users", "--json"])
            .envs([("DATABASE_URL", app.database.url())])
            .stdout()
    };
    // Twenty runs: a process that exits while libpq is still in use must
    // not crash in OpenSSL's clean-up at exit.
    for _ in 0..19 {
        users();
    }
    let subs: Vec<String> = users()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["sub"].to_string())
        .collect();
    assert_eq!(subs, [r#""auth0|pg-1""#, r#""auth0|pg-2""#]);
}
