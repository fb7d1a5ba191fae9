//! `GET /api/me`: who the token speaks for, as the API sees it.

use actix_web::HttpResponse;
use serde_json::json;

use crate::auth::AuthenticatedUser;

/// The caller's user id, `sub` and granted permissions.
pub(crate) async fn me(user: AuthenticatedUser) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "id": user.id,
        "sub": user.sub(),
        "permissions": user.principal().permissions,
    }))
}
