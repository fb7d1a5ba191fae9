//! Permissions come from both `scope` and Auth0's RBAC `permissions`, and the
//! handler sees the user the wrapper recorded.

use serde_json::json;

use crate::helpers::{Backend, spawn_app};

#[actix_web::test]
async fn scope_and_permissions_claims_both_grant() {
    let app = spawn_app(Backend::Sqlite).await;
    let grants = [
        json!({"scope": "openid read:messages"}),
        json!({"permissions": ["read:messages"]}),
        json!({"scope": "openid", "permissions": ["write:x", "read:messages"]}),
    ];
    for grant in grants {
        let reply = app
            .get_as("/api/private-scoped", &app.token("auth0|erin", grant.clone()))
            .await;
        assert_eq!(reply.status, 200, "{grant}");
        let reply = app
            .get_as("/api/messages/admin", &app.token("auth0|erin", grant.clone()))
            .await;
        assert_eq!(reply.status, 403, "{grant}");
    }
}

#[actix_web::test]
async fn handlers_receive_the_user_with_its_permissions() {
    let app = spawn_app(Backend::Sqlite).await;
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
        json!({"id": row.id, "sub": "auth0|frank", "permissions": ["openid", "read:admin-messages", "read:messages"]})
    );
}
