//! The routes of Auth0's "Hello World" API sample.

use actix_web::HttpResponse;

use crate::routes::route_info::Doc;
use crate::routes::static_json::static_json;

const PUBLIC_BODY: &str = r#"{"text":"This is a public message."}"#;
const PROTECTED_BODY: &str = r#"{"text":"This is a protected message."}"#;
const ADMIN_BODY: &str = r#"{"text":"This is an admin message."}"#;
const SENSITIVE_BODY: &str = r#"{"text":"This is a sensitive message."}"#;

/// The multi-factor authentication policy of OpenID PAPE, the `acr` Auth0
/// (and most issuers) give a login with a second factor.
pub(crate) const MULTI_FACTOR: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

/// `GET /api/messages/public`: anyone.
pub(crate) async fn public() -> HttpResponse {
    static_json(PUBLIC_BODY)
}

/// `GET /api/messages/protected`: any valid token.
pub(crate) async fn protected() -> HttpResponse {
    static_json(PROTECTED_BODY)
}

/// `GET /api/messages/admin`: a token granting `read:admin-messages`.
pub(crate) async fn admin() -> HttpResponse {
    static_json(ADMIN_BODY)
}

/// `GET /api/messages/sensitive`: a token from a recent multi-factor login.
pub(crate) async fn sensitive() -> HttpResponse {
    static_json(SENSITIVE_BODY)
}

const TAG: &str = "messages";

/// How the OpenAPI document describes [`public`].
pub(crate) const PUBLIC: Doc = Doc::fixed("getPublicMessage", TAG, "The public message", PUBLIC_BODY);

/// How the OpenAPI document describes [`protected`].
pub(crate) const PROTECTED: Doc = Doc::fixed(
    "getProtectedMessage",
    TAG,
    "The protected message",
    PROTECTED_BODY,
);

/// How the OpenAPI document describes [`admin`].
pub(crate) const ADMIN: Doc = Doc::fixed("getAdminMessage", TAG, "The admin message", ADMIN_BODY);

/// How the OpenAPI document describes [`sensitive`].
pub(crate) const SENSITIVE: Doc = Doc::fixed(
    "getSensitiveMessage",
    TAG,
    "The sensitive message",
    SENSITIVE_BODY,
);
