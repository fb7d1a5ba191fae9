//! The three routes of Auth0's Django REST Framework quickstart, with its
//! wording so that its clients work unchanged.

use actix_web::HttpResponse;

use crate::routes::route_info::Doc;
use crate::routes::static_json::static_json;

const PUBLIC_BODY: &str =
    r#"{"message":"Hello from a public endpoint! You don't need to be authenticated to see this."}"#;
const PRIVATE_BODY: &str =
    r#"{"message":"Hello from a private endpoint! You need to be authenticated to see this."}"#;
const PRIVATE_SCOPED_BODY: &str = r#"{"message":"Hello from a private endpoint! You need to be authenticated and have a scope of read:messages to see this."}"#;

/// `GET /api/public`: anyone.
pub(crate) async fn public() -> HttpResponse {
    static_json(PUBLIC_BODY)
}

/// `GET /api/private`: any valid token.
pub(crate) async fn private() -> HttpResponse {
    static_json(PRIVATE_BODY)
}

/// `GET /api/private-scoped`: a token granting `read:messages`.
pub(crate) async fn private_scoped() -> HttpResponse {
    static_json(PRIVATE_SCOPED_BODY)
}

const TAG: &str = "quickstart";

/// How the OpenAPI document describes [`public`].
pub(crate) const PUBLIC: Doc = Doc::fixed("getPublic", TAG, "The public greeting", PUBLIC_BODY);

/// How the OpenAPI document describes [`private`].
pub(crate) const PRIVATE: Doc = Doc::fixed("getPrivate", TAG, "The private greeting", PRIVATE_BODY);

/// How the OpenAPI document describes [`private_scoped`].
pub(crate) const PRIVATE_SCOPED: Doc = Doc::fixed(
    "getPrivateScoped",
    TAG,
    "The scoped private greeting",
    PRIVATE_SCOPED_BODY,
);
