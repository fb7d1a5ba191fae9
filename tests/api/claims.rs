//! Optional authentication and claim guards, on routes the tests register
//! (they are not routes of the API).

use actix_auth0_api::auth::{
    AuthenticatedUser, ClaimCheck, ClaimEquals, ClaimIncludes, HasPermission, MaybeAuthenticated, Permission,
    require,
};
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestIssuer, now, shared_key};

const ROLES: &str = "https://example.com/roles";

/// A greeting that names the caller when there is one.
async fn greeting(caller: MaybeAuthenticated) -> HttpResponse {
    let user = caller.0.as_ref().map(AuthenticatedUser::sub);
    HttpResponse::Ok().json(json!({ "user": user }))
}

/// The caller's roles, read as a typed custom claim.
async fn roles(user: AuthenticatedUser) -> HttpResponse {
    let roles: Option<Vec<String>> = user.claim(ROLES);
    HttpResponse::Ok().json(json!({ "roles": roles }))
}

fn test_routes(cfg: &mut web::ServiceConfig) {
    let finance = ClaimIncludes::new(ROLES, ["finance"]).and(ClaimEquals::new("org_id", "org_acme"));
    let verified = ClaimCheck::new("a verified email", |claims: &actix_auth0_api::auth::Claims| {
        claims.get("email_verified") == Some(&Value::Bool(true))
    });
    cfg.route("/test/greeting", web::get().to(greeting))
        .route("/test/finance", web::get().to(roles).wrap(require(finance)))
        .route(
            "/test/verified",
            web::get()
                .to(roles)
                .wrap(require(verified.or(HasPermission::new("read:everything")))),
        );
}

async fn app() -> TestApp {
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    TestApp::builder(Backend::Sqlite)
        .issuer(issuer)
        .routes(test_routes)
        .spawn()
        .await
}

#[actix_web::test]
async fn optional_authentication_is_anonymous_only_without_credentials() {
    let app = app().await;
    let anonymous = app.get_with("/test/greeting", &[]).await;
    assert_eq!((anonymous.status, &anonymous.json), (200, &json!({"user": null})));

    let token = app.token("auth0|olivia", json!({}));
    let known = app.get_as("/test/greeting", &token).await;
    assert_eq!(
        (known.status, &known.json),
        (200, &json!({"user": "auth0|olivia"}))
    );
    assert_eq!(known.header("cache-control"), "no-store");
    assert_eq!(
        app.database.subs(),
        ["auth0|olivia"],
        "recorded as on any guarded route"
    );

    // Never silently anonymous: a bad token or header is refused.
    let expired = app.token("auth0|olivia", json!({"exp": now() - 3600}));
    let refused = app.get_as("/test/greeting", &expired).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json["error"], "invalid_token");
    let basic = app.get_with("/test/greeting", &["Basic dXNlcjpwYXNz"]).await;
    assert_eq!(
        (basic.status, basic.json["error"].as_str()),
        (401, Some("invalid_request"))
    );
}

#[actix_web::test]
async fn claim_guards_admit_the_right_claims_and_refuse_with_403() {
    let app = app().await;
    let finance = app.token(
        "auth0|fin",
        json!({ROLES: ["finance", "staff"], "org_id": "org_acme"}),
    );
    let reply = app.get_as("/test/finance", &finance).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.json,
        json!({"roles": ["finance", "staff"]}),
        "typed custom claim"
    );

    let cases = [
        (
            json!({ROLES: ["staff"], "org_id": "org_acme"}),
            "claim https://example.com/roles to include finance",
        ),
        (
            json!({ROLES: "finance", "org_id": "org_other"}),
            "claim org_id equal to \"org_acme\"",
        ),
        (json!({"org_id": "org_acme"}), "to include finance"),
    ];
    for (claims, failed) in cases {
        let reply = app
            .get_as("/test/finance", &app.token("auth0|fin", claims.clone()))
            .await;
        assert_eq!(reply.status, 403, "{claims}");
        assert_eq!(reply.json["error"], "insufficient_scope");
        let description = reply.json["error_description"].as_str().unwrap();
        assert!(description.contains(failed), "{claims}: {description}");
        assert!(
            !reply.header("www-authenticate").contains("scope="),
            "no scope to ask for"
        );
    }

    let verified = app.token("auth0|v", json!({"email_verified": true}));
    assert_eq!(app.get_as("/test/verified", &verified).await.status, 200);
    let unverified = app.token("auth0|v", json!({"email_verified": "true"}));
    let reply = app.get_as("/test/verified", &unverified).await;
    assert_eq!(reply.status, 403);
    assert!(
        reply.json["error_description"]
            .as_str()
            .unwrap()
            .contains("a verified email")
    );
    let admin = app.token("auth0|v", json!({"permissions": ["read:everything"]}));
    assert_eq!(
        app.get_as("/test/verified", &admin).await.status,
        200,
        "or a permission"
    );
}
