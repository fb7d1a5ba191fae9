//! Which claims grant permissions (`PERMISSIONS_FROM`), and the handler
//! seeing the user the guard recorded.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestIssuer, shared_key};

/// The status of `/api/private-scoped` (needs `read:messages`) for a token
/// with `claims`.
async fn scoped(app: &TestApp, claims: Value) -> u16 {
    let token = app.token("auth0|erin", claims);
    app.get_as("/api/private-scoped", &token).await.status
}

/// An app whose `PERMISSIONS_FROM` is `mode`.
async fn app_with(mode: &str) -> TestApp {
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    TestApp::builder(Backend::Sqlite)
        .issuer(issuer)
        .env(&[("PERMISSIONS_FROM", mode)])
        .spawn()
        .await
}

/// A user token whose client asked for the scope.
fn user_scope() -> Value {
    json!({"scope": "openid read:messages"})
}

/// A user token of an API with RBAC on.
fn rbac_permissions() -> Value {
    json!({"permissions": ["read:messages"]})
}

/// A machine-to-machine token whose scope an administrator granted.
fn client_credentials() -> Value {
    json!({"scope": "read:messages", "gty": "client-credentials", "sub": "client-1@clients"})
}

#[actix_web::test]
async fn by_default_a_user_token_cannot_grant_itself_a_scope() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    assert_eq!(scoped(&app, rbac_permissions()).await, 200, "RBAC permissions");
    assert_eq!(scoped(&app, client_credentials()).await, 200, "granted scopes");
    assert_eq!(scoped(&app, user_scope()).await, 403, "requested scopes");
    let reply = app
        .get_as("/api/private-scoped", &app.token("auth0|erin", user_scope()))
        .await;
    let description = reply.json["error_description"].as_str().unwrap();
    assert!(
        description.contains("enable RBAC") && description.contains("PERMISSIONS_FROM"),
        "says how to fix it: {description}"
    );
    assert!(reply.header("www-authenticate").contains("enable RBAC"));
    // With RBAC on, `permissions` alone decides: scope adds nothing.
    let both = json!({"scope": "read:messages", "permissions": ["read:other"]});
    assert_eq!(scoped(&app, both).await, 403);
    let both = json!({"scope": "read:messages", "permissions": ["read:other"], "gty": "client-credentials"});
    assert_eq!(
        scoped(&app, both).await,
        403,
        "a permissions claim wins over scope"
    );
}

#[actix_web::test]
async fn each_mode_reads_exactly_its_claims() {
    let cases = [
        ("permissions", [200, 403, 403]),
        ("scope", [403, 200, 200]),
        ("both", [200, 200, 200]),
        ("auto", [200, 200, 403]),
    ];
    for (mode, [by_permissions, by_client_credentials, by_user_scope]) in cases {
        let app = app_with(mode).await;
        let answers = [
            scoped(&app, rbac_permissions()).await,
            scoped(&app, client_credentials()).await,
            scoped(&app, user_scope()).await,
        ];
        assert_eq!(
            answers,
            [by_permissions, by_client_credentials, by_user_scope],
            "{mode}: permissions, client credentials, user scope"
        );
    }
}

#[actix_web::test]
async fn handlers_receive_the_user_with_its_permissions() {
    let app = app_with("both").await;
    let token = app.token(
        "auth0|frank",
        json!({"scope": "openid read:messages", "permissions": ["read:admin-messages"]}),
    );
    let reply = app.get_as("/api/me", &token).await;
    assert_eq!(reply.status, 200);
    let row = app
        .users()
        .into_iter()
        .find(|u| u.sub == "auth0|frank")
        .expect("row recorded");
    assert_eq!(
        reply.json,
        json!({
            "id": row.id,
            "issuer": app.issuer.issuer,
            "sub": "auth0|frank",
            "permissions": ["openid", "read:admin-messages", "read:messages"]
        })
    );
}
