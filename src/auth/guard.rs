//! Guarding routes. actix-web-httpauth's middleware runs our strict
//! `Authorization` extractor ([`Credentials`]) and then a validator made for
//! one permission class: it admits the scheme (`Bearer` or `DPoP`, as
//! `DPOP_MODE` allows), validates the token, checks a DPoP token's proof,
//! applies the class, and asks the users store for the caller's row. Only
//! then does the handler run, with the caller at hand as an
//! [`AuthenticatedUser`]. Every refusal is answered here, with the
//! challenges of the schemes the API accepts, each pointing to the
//! protected resource metadata.
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
use actix_web::http::header::HeaderValue;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use actix_web_httpauth::middleware::HttpAuthentication;
use futures_util::future::LocalBoxFuture;

use crate::auth::authorization::{Credentials, scheme_of, split_authorization};
use crate::auth::cache::VerifiedToken;
use crate::auth::challenge::Challenges;
use crate::auth::dpop::{self, DPOP, DpopMode, DpopVerifier, Target};
use crate::auth::error::{AuthError, Refusal};
use crate::auth::grants::GrantSource;
use crate::auth::permission::{Denied, InsufficientAuthentication, IsAuthenticated, Permission};
use crate::auth::public_url::PublicUrl;
use crate::auth::scheme_rules::{binding_matches, scheme_admitted};
use crate::auth::token::{Principal, Scheme};
use crate::auth::validator::TokenValidator;
use crate::metrics::{METRICS, Outcome};
use crate::telemetry::RequestId;
use crate::users::UserStore;

/// The caller of an authenticated request, as handlers receive it.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser {
    /// The `users.id` of the token's user: its issuer and `sub`.
    pub id: i32,
    /// The verified token: who it speaks for and what it grants.
    pub token: Arc<VerifiedToken>,
}

impl AuthenticatedUser {
    /// The token's `sub`.
    pub fn sub(&self) -> &str {
        &self.token.principal.sub
    }

    /// The token's issuer (`iss`), one of the trusted issuers: with `sub`,
    /// who the user is.
    pub fn issuer(&self) -> &str {
        &self.token.principal.issuer
    }

    /// Who the token speaks for and what it grants.
    pub fn principal(&self) -> &Principal {
        &self.token.principal
    }

    /// The verified claim `name` as a `T` (namespaced custom claims such as
    /// `https://example.com/roles` included); `None` when absent or of
    /// another shape.
    pub fn claim<T: serde::de::DeserializeOwned>(&self, name: &str) -> Option<T> {
        self.token.principal.claim(name)
    }
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
    type Error = Refusal;
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

/// What a refusal for a missing permission advises, from where the
/// token's permissions came: words that say what to change, and where.
fn advice(granted_by: GrantSource) -> Option<&'static str> {
    match granted_by {
        GrantSource::UserScopeIgnored => Some(
            "this user token (no client-credentials gty, and its sub is not its client_id) has no permissions \
             claim, and a user token's scope is not trusted under PERMISSIONS_FROM=auto: have the issuer add a \
             permissions claim (in Auth0, enable RBAC and \"Add Permissions in the Access Token\" for the API), \
             or set PERMISSIONS_FROM",
        ),
        GrantSource::MachineScope => Some(
            "this machine token's scope does not grant it: authorize the client for it at the issuer \
             (in Auth0, the API's Machine to Machine Applications tab)",
        ),
        GrantSource::PermissionsClaim | GrantSource::Configured => None,
    }
}

/// The refusal of a token `permission` denied: 403 for what it lacks, or,
/// when only its login falls short, 401 for a new login (RFC 9470: a new
/// login would not bring a permission the user lacks).
fn refusal_of(denied: Denied, principal: &Principal) -> AuthError {
    match denied.authentication {
        Some(InsufficientAuthentication { needed, why })
            if denied.required.is_empty() && denied.conditions.is_empty() =>
        {
            AuthError::InsufficientUserAuthentication {
                why,
                acr_values: needed.acr_values,
                max_age: needed.max_age,
            }
        }
        _ => AuthError::InsufficientScope {
            advice: advice(principal.granted_by).filter(|_| !denied.required.is_empty()),
            required: denied.required.join(" "),
            conditions: denied.conditions,
        },
    }
}

/// What a validator answers actix-web-httpauth: the request to pass on, or
/// the refusal with the request it refuses.
type Admission = Result<ServiceRequest, (actix_web::Error, ServiceRequest)>;

/// The middleware that guards a route (or a resource, or a scope) with
/// `permission`: a valid token, presented as `DPOP_MODE` allows, that
/// satisfies it, whose user is recorded before the handler runs.
pub fn require<P: Permission + 'static>(
    permission: P,
) -> HttpAuthentication<Credentials, impl Fn(ServiceRequest, Credentials) -> LocalBoxFuture<'static, Admission>>
{
    let scope: Option<Rc<str>> = scope_needed(&permission).map(Rc::from);
    let permission = Rc::new(permission);
    HttpAuthentication::with_fn(move |req: ServiceRequest, credentials: Credentials| {
        let permission = Rc::clone(&permission);
        let scope = scope.clone();
        Box::pin(async move {
            match authenticate(req.request(), credentials, &*permission, scope.as_deref()).await {
                Ok(user) => {
                    req.extensions_mut().insert(user);
                    Ok(req)
                }
                Err(refusal) => Err((refusal.into(), req)),
            }
        }) as LocalBoxFuture<'static, Admission>
    })
}

/// What a client should ask for to call a route guarded by `permission`
/// (the `scope` of its challenges): the first set of permissions that is
/// enough on its own; none when any valid token will do.
fn scope_needed(permission: &impl Permission) -> Option<String> {
    let alternatives = permission.alternatives();
    if alternatives.iter().any(Vec::is_empty) {
        return None;
    }
    alternatives.first().map(|first| first.join(" "))
}

/// Admits the scheme, validates the token (and its proof), applies
/// `permission`, then records the user: a refused request never reaches the
/// users store. Refusals are logged at debug level, without the token, and
/// challenge for `scope`, what the route needs.
async fn authenticate(
    req: &HttpRequest,
    credentials: Credentials,
    permission: &dyn Permission,
    scope: Option<&str>,
) -> Result<AuthenticatedUser, Refusal> {
    let dpop = req.app_data::<web::Data<DpopVerifier>>();
    let outcome: Result<AuthenticatedUser, AuthError> = async {
        let credentials = credentials.0?;
        let token = credentials.checked_token()?;
        let validator = req
            .app_data::<web::Data<TokenValidator>>()
            .ok_or(AuthError::Misconfigured("no TokenValidator in the app data"))?;
        let users = req
            .app_data::<web::Data<UserStore>>()
            .ok_or(AuthError::Misconfigured("no UserStore in the app data"))?;
        let dpop = dpop.ok_or(AuthError::Misconfigured("no DpopVerifier in the app data"))?;
        let token = match credentials.scheme() {
            Scheme::Bearer => bearer(validator, dpop, req, token).await?,
            Scheme::Dpop => {
                scheme_admitted(Scheme::Dpop, dpop.mode())?;
                let proof = dpop::proof_header(req.headers())?;
                let public_url = req
                    .app_data::<web::Data<PublicUrl>>()
                    .ok_or(AuthError::Misconfigured("no PublicUrl in the app data"))?;
                let target = dpop::target(req, public_url)?;
                let token = Box::pin(dpop_bound(validator, dpop, token, proof, &target)).await?;
                if let Some(nonce) = dpop.next_nonce() {
                    req.extensions_mut().insert(nonce);
                }
                token
            }
        };
        // Every request, the verified-token cache's included: a revocation
        // reaches tokens already verified.
        if users.is_revoked(&token.principal.issuer, &token.principal.sub, token.issued_at) {
            return Err(AuthError::InvalidToken("token revoked".into()));
        }
        permission
            .check(&token.principal)
            .map_err(|denied| refusal_of(denied, &token.principal))?;
        let id = users
            .id_of(&token.principal.issuer, &token.principal.sub)
            .await
            .map_err(|err| {
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
    outcome.map_err(|error| {
        error.log(req);
        let mode = dpop.map_or(DpopMode::Disabled, |dpop| dpop.mode());
        let mut challenges = Challenges::new(
            mode != DpopMode::Required,
            (mode != DpopMode::Disabled).then_some(dpop::ALGORITHMS),
            scheme_of(req.headers()),
        )
        .needing(scope.map(str::to_owned));
        if let Some(public_url) = req.app_data::<web::Data<PublicUrl>>() {
            challenges = challenges.pointing_to(public_url.resource_metadata(req));
        }
        Refusal { error, challenges }
    })
}

/// A token presented with the `Bearer` scheme: accepted unless the API
/// requires DPoP, the request also carries a proof (it meant DPoP), or the
/// token is bound to a key, which would make a stolen bound token a bearer
/// token again (RFC 9449 section 7.2).
async fn bearer(
    validator: &TokenValidator,
    dpop: &DpopVerifier,
    req: &HttpRequest,
    token: &str,
) -> Result<Arc<VerifiedToken>, AuthError> {
    scheme_admitted(Scheme::Bearer, dpop.mode())?;
    if dpop.mode() == DpopMode::Allowed && req.headers().contains_key(DPOP) {
        return Err(AuthError::InvalidRequest(
            "a DPoP proof goes with the DPoP scheme, not Bearer",
        ));
    }
    let token = validator.validate(token).await?;
    binding_matches(Scheme::Bearer, token.jkt.is_some())?;
    Ok(token)
}

/// A token presented with the `DPoP` scheme and `proof` for `target`. The
/// token may come from the verified-token cache; the proof is checked on
/// every request, whatever the cache holds.
pub(crate) async fn dpop_bound(
    validator: &TokenValidator,
    dpop: &DpopVerifier,
    token: &str,
    proof: &HeaderValue,
    target: &Target<'_>,
) -> Result<Arc<VerifiedToken>, AuthError> {
    let verified = validator.validate(token).await?;
    let jkt = verified.jkt.as_deref().ok_or_else(|| {
        AuthError::InvalidToken(
            "this token is not bound to a key (no cnf.jkt): present it with the Bearer scheme".into(),
        )
    })?;
    dpop.verify(proof, token, jkt, target).await?;
    Ok(verified)
}

/// In a route guarded by [`require`], the user it recorded; elsewhere the
/// extractor authenticates by itself, as [`IsAuthenticated`] would.
impl FromRequest for AuthenticatedUser {
    type Error = Refusal;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let recorded = req.extensions().get::<AuthenticatedUser>().cloned();
        let req = req.clone();
        Box::pin(async move {
            if let Some(user) = recorded {
                return Ok(user);
            }
            let credentials = Credentials(split_authorization(req.headers()));
            let user = authenticate(&req, credentials, &IsAuthenticated, None).await?;
            // Marks the response private, as on a guarded route.
            req.extensions_mut().insert(user.clone());
            Ok(user)
        })
    }
}
