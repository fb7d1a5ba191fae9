//! Guarding routes. actix-web-httpauth's middleware runs our strict bearer
//! extractor ([`BearerToken`]) and then a validator made for one permission
//! class: it validates the token, applies the class, and asks the users
//! store for the caller's row. Only then does the handler run, with the
//! caller at hand as an [`AuthenticatedUser`].
//!
//! ```
//! use actix_auth0_api::auth::{HasPermission, IsAuthenticated, Permission, require};
//! use actix_web::web;
//!
//! async fn admin() -> &'static str {
//!     "This is an admin message."
//! }
//!
//! // Wrapping the route (not the resource) answers another method 405
//! // before anything is authenticated or written.
//! let admin_only = web::resource("/admin")
//!     .route(web::get().to(admin).wrap(require(HasPermission::new("read:admin-messages"))));
//! let readers = web::resource("/inbox").route(web::get().to(admin).wrap(require(
//!     IsAuthenticated.and(HasPermission::new("read:messages").or(HasPermission::new("read:all"))),
//! )));
//! ```

use std::rc::Rc;
use std::sync::Arc;

use actix_web::dev::{Payload, ServiceRequest};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use actix_web_httpauth::middleware::HttpAuthentication;
use futures_util::future::LocalBoxFuture;

use crate::auth::bearer::{BearerToken, bearer_token};
use crate::auth::cache::VerifiedToken;
use crate::auth::error::AuthError;
use crate::auth::permission::{IsAuthenticated, Permission};
use crate::auth::token::Principal;
use crate::auth::validator::TokenValidator;
use crate::metrics::{METRICS, Outcome};
use crate::telemetry::RequestId;
use crate::users::UserStore;

/// The caller of an authenticated request, as handlers receive it.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser {
    /// The `users.id` of the token's `sub`.
    pub id: i32,
    /// The verified token: who it speaks for and what it grants.
    pub token: Arc<VerifiedToken>,
}

impl AuthenticatedUser {
    /// The token's `sub`.
    pub fn sub(&self) -> &str {
        &self.token.principal.sub
    }

    /// The verified claim `name` as a `T` (namespaced custom claims such as
    /// `https://example.com/roles` included); `None` when absent or of
    /// another shape.
    pub fn claim<T: serde::de::DeserializeOwned>(&self, name: &str) -> Option<T> {
        self.token.principal.claim(name)
    }

    /// Who the token speaks for and what it grants.
    pub fn principal(&self) -> &Principal {
        &self.token.principal
    }
}

/// Why a user token has no permissions under `PERMISSIONS_FROM=auto`, in
/// words that say what to change.
const SCOPE_IGNORED: &str = "this user token has no permissions claim and its scope is not trusted: \
    enable RBAC and \"Add Permissions in the Access Token\" for the API in Auth0, or set PERMISSIONS_FROM";

/// What a validator answers actix-web-httpauth: the request to pass on, or
/// the refusal with the request it refuses.
type Admission = Result<ServiceRequest, (actix_web::Error, ServiceRequest)>;

/// The middleware that guards a route (or a resource, or a scope) with
/// `permission`: a valid bearer token that satisfies it, whose user is
/// recorded before the handler runs.
pub fn require<P: Permission + 'static>(
    permission: P,
) -> HttpAuthentication<BearerToken, impl Fn(ServiceRequest, BearerToken) -> LocalBoxFuture<'static, Admission>>
{
    let permission = Rc::new(permission);
    HttpAuthentication::with_fn(move |req: ServiceRequest, bearer: BearerToken| {
        let permission = Rc::clone(&permission);
        Box::pin(async move {
            match authenticate(req.request(), bearer.token(), &*permission).await {
                Ok(user) => {
                    req.extensions_mut().insert(user);
                    Ok(req)
                }
                Err(refusal) => Err((refusal.into(), req)),
            }
        }) as LocalBoxFuture<'static, Admission>
    })
}

/// Validates `token`, applies `permission`, then records the user: a
/// refused request never reaches the users store. Refusals are logged at
/// debug level, without the token.
async fn authenticate(
    req: &HttpRequest,
    token: &str,
    permission: &dyn Permission,
) -> Result<AuthenticatedUser, AuthError> {
    let outcome: Result<AuthenticatedUser, AuthError> = async {
        let validator = req
            .app_data::<web::Data<TokenValidator>>()
            .ok_or(AuthError::Misconfigured("no TokenValidator in the app data"))?;
        let users = req
            .app_data::<web::Data<UserStore>>()
            .ok_or(AuthError::Misconfigured("no UserStore in the app data"))?;
        let token = validator.validate(token).await?;
        permission
            .check(&token.principal)
            .map_err(|denied| AuthError::InsufficientScope {
                advice: (token.principal.user_scope_ignored && !denied.required.is_empty())
                    .then_some(SCOPE_IGNORED),
                required: denied.required.join(" "),
                conditions: denied.conditions,
            })?;
        let id = users.id_of(&token.principal.sub).await.map_err(|err| {
            let request_id = RequestId::of(req);
            log::error!(request_id = request_id.as_str(); "cannot record user: {err}");
            AuthError::DatabaseUnavailable
        })?;
        Ok(AuthenticatedUser { id, token })
    }
    .await;
    if outcome.is_ok() {
        METRICS.auth_decision(Outcome::accepted);
    }
    if let Err(refusal) = &outcome {
        refusal.log(req);
    }
    outcome
}

/// The caller when the request says who it is, for routes that serve
/// everyone but answer a known caller differently. No `Authorization`
/// header gives `None`; a valid token gives the user (recorded as on any
/// guarded route); an invalid token is refused (401), never treated as
/// anonymous.
///
/// Take this, not `Option<AuthenticatedUser>`: actix-web's extractor for
/// `Option<T>` turns every refusal into `None`, so an invalid or expired
/// token would pass as anonymous.
#[derive(Debug, Clone)]
pub struct MaybeAuthenticated(pub Option<AuthenticatedUser>);

impl FromRequest for MaybeAuthenticated {
    type Error = AuthError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if req.headers().contains_key(actix_web::http::header::AUTHORIZATION) {
            let user = AuthenticatedUser::from_request(req, payload);
            Box::pin(async move { user.await.map(|user| Self(Some(user))) })
        } else {
            Box::pin(std::future::ready(Ok(Self(None))))
        }
    }
}

/// In a route guarded by [`require`], the user it recorded; elsewhere the
/// extractor authenticates by itself, as [`IsAuthenticated`] would.
impl FromRequest for AuthenticatedUser {
    type Error = AuthError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let recorded = req.extensions().get::<AuthenticatedUser>().cloned();
        let req = req.clone();
        Box::pin(async move {
            if let Some(user) = recorded {
                return Ok(user);
            }
            let bearer = bearer_token(req.headers()).inspect_err(|refusal| refusal.log(&req))?;
            let user = authenticate(&req, bearer.token(), &IsAuthenticated).await?;
            // Marks the response private, as on a guarded route.
            req.extensions_mut().insert(user.clone());
            Ok(user)
        })
    }
}
