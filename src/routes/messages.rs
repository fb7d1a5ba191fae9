//! The routes of Auth0's "Hello World" API sample.

use actix_web::HttpResponse;

use crate::routes::static_json::static_json;

/// `GET /api/messages/public`: anyone.
pub(crate) async fn public() -> HttpResponse {
    static_json(r#"{"text":"This is a public message."}"#)
}

/// `GET /api/messages/protected`: any valid token.
pub(crate) async fn protected() -> HttpResponse {
    static_json(r#"{"text":"This is a protected message."}"#)
}

/// `GET /api/messages/admin`: a token granting `read:admin-messages`.
pub(crate) async fn admin() -> HttpResponse {
    static_json(r#"{"text":"This is an admin message."}"#)
}
