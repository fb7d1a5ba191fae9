//! `GET /api/me`: who the token speaks for, as the API sees it.

use std::collections::BTreeSet;

use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthenticatedUser;
use crate::routes::route_info::{Answer, Doc, named};

/// The caller as the API sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Me<'a> {
    /// The caller's row in the users table.
    id: i32,
    /// The token's issuer: with `sub`, who the caller is.
    #[schema(examples("https://tenant.auth0.com/"))]
    issuer: &'a str,
    /// The token's `sub`.
    #[schema(examples("auth0|64f1c2"))]
    sub: &'a str,
    /// The permissions the token grants, as `PERMISSIONS_FROM` reads them.
    #[schema(examples("read:messages"))]
    permissions: &'a BTreeSet<String>,
}

/// The caller's user id, issuer, `sub` and granted permissions.
pub(crate) async fn me(user: AuthenticatedUser) -> HttpResponse {
    HttpResponse::Ok().json(Me {
        id: user.id,
        issuer: user.issuer(),
        sub: user.sub(),
        permissions: &user.principal().permissions,
    })
}

/// How the OpenAPI document describes [`me`].
pub(crate) const ME: Doc = Doc {
    id: "getMe",
    tag: "users",
    summary: "The caller: users row id, issuer, sub and permissions",
    ok: Answer::Json(named::<Me>),
    other: None,
};
