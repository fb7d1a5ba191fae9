//! PostgreSQL as a deployment uses it: several instances sharing one
//! database, and a database that goes away and comes back.

use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{
    ServeProcess, TestDatabase, TestIssuer, eventually_for, postgres, postgres_admin, shared_key, sign_with,
    spawn_app_with, users_in,
};

#[actix_web::test]
async fn two_instances_racing_on_first_sight_create_one_row_per_sub() {
    let Some(_) = postgres() else { return };
    let database = TestDatabase::create(crate::helpers::Backend::Postgres);
    let issuer = TestIssuer::start(&[&shared_key("main")]);
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

    let users = users_in(&database.url());
    assert_eq!(users.len(), 20, "{users:?}");
}

#[actix_web::test]
async fn killed_connections_are_replaced_without_a_restart() {
    let Some(backend) = postgres() else { return };
    let app = spawn_app_with(backend, TestIssuer::start(&[&shared_key("main")]), &[]).await;
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
async fn a_lost_database_answers_503_keeps_public_routes_and_recovers() {
    let Some(backend) = postgres() else { return };
    let issuer = TestIssuer::start(&[&shared_key("main")]);
    let app = spawn_app_with(backend, issuer, &[("DATABASE_TIMEOUT_SECS", "1")]).await;
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
    let mut recovered = false;
    for _ in 0..50 {
        if app.get_as("/api/private", &token).await.status == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "requests recover once the database is back");
    assert!(eventually_for(Duration::from_secs(5), || app.users().len() == 2).await);
}

#[test]
fn an_unreachable_database_at_start_is_one_line_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_actix-auth0-api"))
        .current_dir(dir.path())
        .env_clear()
        .env("AUTH0_DOMAIN", "t.example.com")
        .env("AUTH0_AUDIENCE", "a")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:9/absent")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: DATABASE_URL: database connection"),
        "{stderr}"
    );
}

#[test]
fn migrate_runs_the_postgres_migrations() {
    let Some(backend) = postgres() else { return };
    let database = TestDatabase::create(backend);
    let run = || {
        let output = Command::new(env!("CARGO_BIN_EXE_actix-auth0-api"))
            .arg("migrate")
            .env_clear()
            .env("DATABASE_URL", database.url())
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    assert!(run().contains("applied 20261123000000"));
    assert!(run().contains("no pending migrations"));
}

#[actix_web::test]
async fn users_lists_the_postgres_table() {
    let Some(backend) = postgres() else { return };
    let app = crate::helpers::spawn_app(backend).await;
    for sub in ["auth0|pg-1", "auth0|pg-2"] {
        let token = app.token(sub, json!({}));
        assert_eq!(app.get_as("/api/private", &token).await.status, 200);
    }
    let users = || {
        Command::new(env!("CARGO_BIN_EXE_actix-auth0-api"))
            .args(["users", "--json"])
            .env_clear()
            .env("DATABASE_URL", app.database.url())
            .output()
            .unwrap()
    };
    // Twenty runs: exiting while a pool thread still opened a connection
    // once crashed one run in four (SIGSEGV in OpenSSL's exit handler).
    for _ in 0..19 {
        let output = users();
        assert!(output.status.success(), "{output:?}");
    }
    let output = users();
    assert!(output.status.success(), "{output:?}");
    let subs: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["sub"].to_string())
        .collect();
    assert_eq!(subs, [r#""auth0|pg-1""#, r#""auth0|pg-2""#]);
}
