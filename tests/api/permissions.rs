//! Which claims grant permissions (`PERMISSIONS_FROM`), and the handler
//! seeing the user the guard recorded.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestIssuer, merged, shared_key, sign_raw};

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

/// A standard issuer's client-credentials token (RFC 9068 section 2.2):
/// the client is its own subject.
fn rfc9068_machine(scope: &str) -> Value {
    json!({"scope": scope, "sub": "app-1", "client_id": "app-1"})
}

#[actix_web::test]
async fn a_standard_issuers_machine_token_is_granted_its_scope_and_a_user_token_is_not() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    assert_eq!(scoped(&app, rfc9068_machine("read:messages")).await, 200);
    // A user token of the same issuer: its client asked for the scope.
    let user = json!({"scope": "read:messages", "client_id": "app-1"});
    let reply = app
        .get_as("/api/private-scoped", &app.token("auth0|erin", user))
        .await;
    assert_eq!(reply.status, 403, "{reply:?}");
    let description = reply.json["error_description"].as_str().unwrap();
    assert!(
        description.contains("this user token")
            && description.contains("its sub is not its client_id")
            && description.contains("PERMISSIONS_FROM"),
        "says why it counts as a user's, and what to change: {description}"
    );
    // A machine token without the scope is told to authorize the client.
    let reply = app
        .get_as(
            "/api/private-scoped",
            &app.token("app-1", rfc9068_machine("read:other")),
        )
        .await;
    assert_eq!(reply.status, 403, "{reply:?}");
    let description = reply.json["error_description"].as_str().unwrap();
    assert!(
        description.starts_with("requires permission: read:messages; this machine token's scope")
            && !description.contains("RBAC"),
        "{description}"
    );
}

/// A token signed by the app's issuer with `typ` (`None`: no `typ`) and
/// the standard claims for `sub`, merged with `extra`.
fn typed_token(app: &TestApp, typ: Option<&str>, extra: Value) -> String {
    let mut header = json!({"alg": "RS256", "kid": "main"});
    if let Some(typ) = typ {
        header["typ"] = json!(typ);
    }
    let claims = merged(app.issuer.claims("app-1"), extra);
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(shared_key("main").pem().as_bytes()).unwrap();
    sign_raw(&key, header, &claims)
}

#[actix_web::test]
async fn token_profile_rfc9068_admits_only_rfc_9068_tokens() {
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    let app = TestApp::builder(Backend::Sqlite)
        .issuer(issuer)
        .env(&[("TOKEN_PROFILE", "rfc9068")])
        .spawn()
        .await;
    let full = json!({"client_id": "app-1", "jti": "t-1", "scope": "read:messages"});
    let with = |name: &str, value: Value| {
        let mut claims = full.clone();
        claims[name] = value;
        claims
    };
    // Hostile and incomplete tokens first.
    let refused = [
        (typed_token(&app, None, full.clone()), "typ"),
        (typed_token(&app, Some("JWT"), full.clone()), "typ"),
        (typed_token(&app, Some("at+jwt+x"), full.clone()), "typ"),
        (
            typed_token(&app, Some("at+jwt"), with("client_id", Value::Null)),
            "client_id",
        ),
        (
            typed_token(&app, Some("at+jwt"), with("client_id", json!(""))),
            "client_id",
        ),
        (
            typed_token(&app, Some("at+jwt"), with("client_id", json!(7))),
            "client_id",
        ),
        (typed_token(&app, Some("at+jwt"), with("jti", Value::Null)), "jti"),
        (
            typed_token(&app, Some("at+jwt"), with("jti", json!(["t-1"]))),
            "jti",
        ),
        (typed_token(&app, Some("at+jwt"), with("iat", Value::Null)), "iat"),
    ];
    for (token, claim) in refused {
        let reply = app.get_as("/api/private", &token).await;
        assert_eq!(reply.status, 401, "{claim}: {reply:?}");
        assert_eq!(reply.json["error"], "invalid_token");
        let description = reply.json["error_description"].as_str().unwrap();
        assert!(
            description.contains(claim) && description.contains("TOKEN_PROFILE=rfc9068"),
            "{claim}: {description}"
        );
    }
    for typ in ["at+jwt", "application/at+jwt", "AT+JWT"] {
        let token = typed_token(&app, Some(typ), full.clone());
        assert_eq!(
            app.get_as("/api/private-scoped", &token).await.status,
            200,
            "{typ}"
        );
    }
}

#[actix_web::test]
async fn by_default_either_kind_of_token_is_admitted() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    for typ in [None, Some("JWT"), Some("at+jwt")] {
        let token = typed_token(&app, typ, json!({}));
        assert_eq!(app.get_as("/api/private", &token).await.status, 200, "{typ:?}");
    }
}
