//! What an operator sees: Prometheus metrics on their own listener, request
//! ids on every response and in the log, and JSON log lines.

use std::collections::HashMap;
use std::process::Stdio;

use serde_json::json;

use crate::helpers::{
    Backend, LogFile, ServeProcess, TestApp, TestDatabase, TestIssuer, free_port, now, read, shared_key,
    sign_with,
};

/// The samples of an OpenMetrics text, by series (`name{labels}`).
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[actix_web::test]
async fn metrics_count_requests_decisions_keys_cache_and_users_on_their_own_port() {
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    let database = TestDatabase::create(Backend::Sqlite);
    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let server = ServeProcess::start_with(
        &issuer,
        &database.url(),
        Stdio::null(),
        "warn",
        &[("METRICS_ADDR", &metrics_addr)],
    );
    let client = reqwest::Client::new();
    server.wait_ready(&client).await;

    let get = async |path: &str, token: Option<&str>| {
        let mut request = client.get(format!("{}{path}", server.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().status().as_u16()
    };
    let token = sign_with(&shared_key("main"), issuer.claims("auth0|metered"), json!({}));
    let expired = sign_with(
        &shared_key("main"),
        issuer.claims("auth0|metered"),
        json!({"exp": now() - 3600}),
    );
    assert_eq!(get("/api/public", None).await, 200);
    assert_eq!(get("/api/private", Some(&token)).await, 200);
    assert_eq!(get("/api/private", Some(&token)).await, 200, "a cache hit");
    assert_eq!(get("/api/private", Some(&expired)).await, 401);
    assert_eq!(get("/api/private", None).await, 401);
    assert_eq!(get("/api/private-scoped", Some(&token)).await, 403);
    assert_eq!(get("/no/such/path/42", None).await, 404);
    assert_eq!(get("/metrics", None).await, 404, "never on the API's port");
    for made_up in ["FOOBAR", "X-SERIES-1"] {
        let method = reqwest::Method::from_bytes(made_up.as_bytes()).unwrap();
        let reply = client
            .request(method, format!("{}/api/public", server.address))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 405, "{made_up}");
    }

    let response = client
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    let samples = samples(&text);
    let value = |series: &str| {
        samples
            .get(series)
            .copied()
            .unwrap_or_else(|| panic!("{series} in:\n{text}"))
    };
    assert_eq!(
        value(r#"http_requests_total{method="GET",route="/api/public",status="200"}"#),
        1.0
    );
    assert_eq!(
        value(r#"http_requests_total{method="GET",route="/api/private",status="200"}"#),
        2.0
    );
    assert_eq!(
        value(r#"http_requests_total{method="GET",route="/api/private",status="401"}"#),
        2.0
    );
    assert_eq!(
        value(r#"http_requests_total{method="GET",route="unmatched",status="404"}"#),
        2.0
    );
    assert!(
        !text.contains("/no/such/path"),
        "raw paths never become label values"
    );
    assert_eq!(
        value(r#"http_requests_total{method="other",route="/api/public",status="405"}"#),
        2.0
    );
    assert!(
        !text.contains("FOOBAR") && !text.contains("X-SERIES"),
        "made-up methods never become label values"
    );
    assert_eq!(
        value(r#"http_request_duration_seconds_count{method="GET",route="/api/public",status="200"}"#),
        1.0
    );
    assert_eq!(value(r#"auth_decisions_total{outcome="accepted"}"#), 2.0);
    assert_eq!(value(r#"auth_decisions_total{outcome="invalid_token"}"#), 1.0);
    assert_eq!(value(r#"auth_decisions_total{outcome="unauthorized"}"#), 1.0);
    assert_eq!(
        value(r#"auth_decisions_total{outcome="insufficient_scope"}"#),
        1.0
    );
    assert_eq!(value(r#"token_cache_lookups_total{result="hit"}"#), 2.0);
    assert_eq!(value(r#"token_cache_lookups_total{result="miss"}"#), 2.0);
    assert_eq!(value("users_created_total"), 1.0);
    assert_eq!(value("db_wait_duration_seconds_count"), 1.0);
    assert_eq!(value("users_write_batch_rows_count"), 1.0, "one transaction");
    assert_eq!(value("users_write_batch_rows_sum"), 1.0, "of one row");
    let jwks_url = format!("{}.well-known/jwks.json", issuer.issuer);
    assert!(
        value(&format!(
            r#"jwks_fetches_total{{issuer="{jwks_url}",result="ok"}}"#
        )) >= 1.0
    );
    assert_eq!(value(&format!(r#"jwks_keys{{issuer="{jwks_url}"}}"#)), 1.0);
    let last = value(&format!(
        r#"jwks_last_success_timestamp_seconds{{issuer="{jwks_url}"}}"#
    ));
    assert!((last - now() as f64).abs() < 60.0, "{last}");
    assert!(text.trim_end().ends_with("# EOF"));
}

#[actix_web::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let get = async |path: &str, id: Option<&str>| {
        let mut request = app.client.get(format!("{}{path}", app.address));
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        read(request.send().await.unwrap()).await
    };
    let first = get("/api/public", None).await;
    let second = get("/api/private", None).await;
    let (a, b) = (first.header("x-request-id"), second.header("x-request-id"));
    assert!(!a.is_empty() && a != b, "{a} {b}");
    assert_eq!(
        get("/nowhere", Some("trace-42.a_b")).await.header("x-request-id"),
        "trace-42.a_b"
    );
    for insane in ["a b", "<script>", &"x".repeat(65)] {
        let id = get("/api/public", Some(insane))
            .await
            .header("x-request-id")
            .to_owned();
        assert!(!id.is_empty() && id != insane, "{insane:?} -> {id:?}");
    }
}

#[actix_web::test]
async fn json_log_lines_carry_the_request_id_and_never_a_token() {
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    let database = TestDatabase::create(Backend::Sqlite);
    let log = LogFile::new();
    let mut server = ServeProcess::start_with(
        &issuer,
        &database.url(),
        log.stdio(),
        "info,actix_auth0_api=debug,access=debug",
        &[("LOG_FORMAT", "json")],
    );
    let client = reqwest::Client::new();
    server.wait_ready(&client).await;
    let expired = sign_with(
        &shared_key("main"),
        issuer.claims("auth0|logged"),
        json!({"exp": now() - 3600}),
    );
    let response = client
        .get(format!("{}/api/private", server.address))
        .header("x-request-id", "req-for-the-log")
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    server.kill();

    let text = log.read();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    for line in &lines {
        for field in ["timestamp", "level", "target", "message"] {
            assert!(line[field].is_string(), "{field} in {line}");
        }
    }
    let about_request: Vec<_> = lines
        .iter()
        .filter(|line| line["request_id"] == "req-for-the-log")
        .collect();
    assert!(
        about_request.iter().any(|line| line["message"]
            .as_str()
            .unwrap()
            .contains("refused GET /api/private: invalid token")),
        "the refusal names the request: {text}"
    );
    assert!(
        about_request.iter().any(|line| line["target"] == "access"),
        "{text}"
    );
    for segment in expired.split('.') {
        assert!(!text.contains(segment), "a token segment in the log");
    }
}

#[test]
fn an_unknown_log_format_is_one_line() {
    let (code, stderr) = crate::helpers::binary()
        .envs([
            ("LOG_FORMAT", "xml"),
            ("AUTH0_DOMAIN", "t.example.com"),
            ("AUTH0_AUDIENCE", "a"),
        ])
        .code_and_stderr();
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("LOG_FORMAT"), "{stderr}");
}
