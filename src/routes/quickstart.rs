//! The three routes of Auth0's Django REST Framework quickstart, with its
//! wording so that its clients work unchanged.

use actix_web::HttpResponse;

use crate::routes::static_json::static_json;

/// `GET /api/public`: anyone.
pub(crate) async fn public() -> HttpResponse {
    static_json(
        r#"{"message":"Hello from a public endpoint! You don't need to be authenticated to see this."}"#,
    )
}

/// `GET /api/private`: any valid token.
pub(crate) async fn private() -> HttpResponse {
    static_json(r#"{"message":"Hello from a private endpoint! You need to be authenticated to see this."}"#)
}

/// `GET /api/private-scoped`: a token granting `read:messages`.
pub(crate) async fn private_scoped() -> HttpResponse {
    static_json(
        r#"{"message":"Hello from a private endpoint! You need to be authenticated and have a scope of read:messages to see this."}"#,
    )
}
