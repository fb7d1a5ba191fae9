//! Every route answers with the quickstarts' wording, as JSON, with the
//! security headers.

use serde_json::json;

use crate::helpers::{Backend, TestApp};

#[actix_web::test]
async fn public_routes_answer_anyone_and_ignore_any_authorization_header() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let cases = [
        (
            "/api/public",
            json!({"message": "Hello from a public endpoint! You don't need to be authenticated to see this."}),
        ),
        (
            "/api/messages/public",
            json!({"text": "This is a public message."}),
        ),
    ];
    for (path, body) in cases {
        for authorization in [&[][..], &["Bearer not-a-token"], &["Basic dXNlcjpwYXNz"]] {
            let reply = app.get_with(path, authorization).await;
            assert_eq!(
                (reply.status, &reply.json),
                (200, &body),
                "{path} {authorization:?}"
            );
            assert_eq!(reply.header("content-type"), "application/json");
        }
    }
    assert!(app.users().is_empty(), "public routes never write");
}

#[actix_web::test]
async fn protected_routes_answer_a_valid_token() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let token = app.token(
        "auth0|alice",
        json!({"permissions": ["read:messages", "read:admin-messages"]}),
    );
    let cases = [
        (
            "/api/private",
            json!({"message": "Hello from a private endpoint! You need to be authenticated to see this."}),
        ),
        (
            "/api/private-scoped",
            json!({"message": "Hello from a private endpoint! You need to be authenticated and have a scope of read:messages to see this."}),
        ),
        (
            "/api/messages/protected",
            json!({"text": "This is a protected message."}),
        ),
        (
            "/api/messages/admin",
            json!({"text": "This is an admin message."}),
        ),
    ];
    for (path, body) in cases {
        let reply = app.get_as(path, &token).await;
        assert_eq!((reply.status, &reply.json), (200, &body), "{path}");
        assert_eq!(reply.header("content-type"), "application/json");
        assert_eq!(reply.header("cache-control"), "no-store", "{path}");
    }
}

#[actix_web::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let token = app.token("auth0|alice", json!({}));
    let replies = [
        app.get_with("/api/public", &[]).await,
        app.get_as("/api/private", &token).await,
        app.get_with("/api/private", &[]).await,
        app.get_with("/nowhere", &[]).await,
    ];
    for reply in replies {
        assert_eq!(reply.header("x-content-type-options"), "nosniff");
        assert_eq!(reply.header("x-frame-options"), "deny");
        assert_eq!(
            reply.header("content-security-policy"),
            "default-src 'none'; frame-ancestors 'none'"
        );
    }
}

#[actix_web::test]
async fn unknown_paths_and_methods_answer_json() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let reply = app.get_with("/api/nope", &[]).await;
    assert_eq!((reply.status, reply.json), (404, json!({"message": "Not Found"})));

    let response = app
        .client
        .post(format!("{}/api/public", app.address))
        .send()
        .await
        .unwrap();
    let reply = crate::helpers::read(response).await;
    assert_eq!(
        (reply.status, &reply.json),
        (405, &json!({"message": "Method Not Allowed"}))
    );
    assert_eq!(reply.header("content-type"), "application/json");
}

#[actix_web::test]
async fn head_works_wherever_get_does() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let head = |path: &str, token: Option<&str>| {
        let mut request = app.client.head(format!("{}{path}", app.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let public = head("/api/public", None).await.unwrap();
    assert_eq!(public.status(), 200);
    assert_eq!(public.bytes().await.unwrap().len(), 0, "HEAD has no body");
    assert_eq!(head("/api/private", None).await.unwrap().status(), 401);
    let token = app.token("auth0|header", json!({}));
    assert_eq!(head("/api/private", Some(&token)).await.unwrap().status(), 200);
}

#[actix_web::test]
async fn cors_allows_only_the_client_origin() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/api/private", app.address))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            // A browser DPoP client sends its proof in a header of its own.
            .header("Access-Control-Request-Headers", "authorization, dpop")
            .send()
    };
    let allowed = preflight("http://localhost:4040").await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://localhost:4040"
    );
    let allowed_headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed_headers.contains("authorization"), "{allowed_headers}");
    assert!(allowed_headers.contains("dpop"), "{allowed_headers}");

    // A browser DPoP client reads the challenges and the next nonce.
    let simple_allowed = app
        .client
        .get(format!("{}/api/public", app.address))
        .header("Origin", "http://localhost:4040")
        .send()
        .await
        .unwrap();
    let exposed = simple_allowed.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        exposed.contains("www-authenticate") && exposed.contains("dpop-nonce"),
        "{exposed}"
    );

    let refused = crate::helpers::read(preflight("https://evil.example").await.unwrap()).await;
    assert!(refused.status >= 400, "{refused:?}");
    assert_eq!(refused.header("access-control-allow-origin"), "");

    let simple = app
        .client
        .get(format!("{}/api/public", app.address))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(simple.headers().get("access-control-allow-origin").is_none());
}
