//! Step-up authentication (RFC 9470): `/api/messages/sensitive` needs a
//! multi-factor login (`acr`) within the last five minutes (`auth_time`).
//! A token that falls short is refused 401 `insufficient_user_authentication`
//! with the `acr_values` and `max_age` a new login must bring.

use serde_json::{Value, json};

use crate::helpers::{Backend, Reply, TestApp, now};

const MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
const SENSITIVE: &str = "/api/messages/sensitive";

fn assert_step_up(reply: &Reply, why: &str) {
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(
        reply.json["error"], "insufficient_user_authentication",
        "{reply:?}"
    );
    assert_eq!(reply.json["message"], "Requires authentication");
    let description = reply.json["error_description"].as_str().unwrap();
    assert!(description.contains(why), "{why}: {description}");
    assert!(
        reply.challenges().starts_with(&format!(
            r#"Bearer realm="api", error="insufficient_user_authentication", error_description="{description}", acr_values="{MFA}", max_age="300""#
        )),
        "{reply:?}"
    );
    assert_eq!(reply.header("cache-control"), "no-store");
}

async fn get_with_claims(app: &TestApp, claims: Value) -> Reply {
    app.get_as(SENSITIVE, &app.token("auth0|stepper", claims)).await
}

#[actix_web::test]
async fn a_login_that_falls_short_is_asked_to_step_up() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let now = now();
    let hostile = [
        (json!({"acr": 1, "auth_time": now}), "not a string"),
        (json!({"acr": [MFA], "auth_time": now}), "not a string"),
        (json!({"acr": "pwd", "auth_time": now}), "class"),
        (json!({"auth_time": now}), "no acr claim"),
        (json!({"acr": MFA, "auth_time": now.to_string()}), "not a time"),
        (json!({"acr": MFA, "auth_time": now + 3600}), "in the future"),
        (json!({"acr": MFA}), "no auth_time claim"),
        (
            json!({"acr": MFA, "auth_time": now - 600}),
            "within the last 300 seconds",
        ),
    ];
    for (claims, why) in hostile {
        assert_step_up(&get_with_claims(&app, claims).await, why);
    }
    assert!(app.users().is_empty(), "a refused request writes nothing");

    let reply = get_with_claims(&app, json!({"acr": MFA, "auth_time": now - 10})).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json, json!({"text": "This is a sensitive message."}));
    // Without a token it is a plain 401: any login is a start.
    let anonymous = app.get_with(SENSITIVE, &[]).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.json["error"], "unauthorized");
}

#[actix_web::test]
async fn a_missing_permission_is_403_whatever_the_login() {
    use actix_auth0_api::auth::{HasPermission, Permission, RequireAuthentication, require};
    use actix_web::{HttpResponse, web};
    let app = TestApp::builder(Backend::Sqlite)
        .routes(|cfg| {
            let rule = RequireAuthentication::acr([MFA])
                .max_age(300)
                .and(HasPermission::new("transfer:funds"));
            let done = || async { HttpResponse::Ok().json(json!({"text": "done"})) };
            cfg.route("/transfers", web::get().to(done).wrap(require(rule)));
        })
        .spawn()
        .await;
    let get = async |claims: Value| app.get_as("/transfers", &app.token("auth0|payer", claims)).await;
    // A new login would not bring the permission: 403, not a step-up.
    let neither = get(json!({})).await;
    assert_eq!(neither.status, 403, "{neither:?}");
    assert_eq!(neither.json["error"], "insufficient_scope");
    let login_only = get(json!({"permissions": ["transfer:funds"]})).await;
    assert_eq!(login_only.json["error"], "insufficient_user_authentication");
    assert!(
        login_only.challenges().contains(r#", scope="transfer:funds""#),
        "{login_only:?}"
    );
    let both = get(json!({"permissions": ["transfer:funds"], "acr": MFA, "auth_time": now()})).await;
    assert_eq!(both.status, 200, "{both:?}");
}
