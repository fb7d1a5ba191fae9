//! Wiring authentication into actix-web: the `Require` wrapper that guards a
//! route with a permission class, and the `AuthenticatedUser` extractor that
//! hands the caller to the handler.

use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError, web};
use futures_util::future::LocalBoxFuture;

use crate::auth::permission::{IsAuthenticated, Permission};
use crate::auth::{AuthError, AuthenticatedUser, Authenticator};

/// Guards a route, resource or scope: authenticates the request, applies the
/// permission class, records the user, then lets the handler run.
pub struct Require<P> {
    permission: Rc<P>,
}

impl<P: Permission> Require<P> {
    /// Requires a valid token that satisfies `permission`.
    pub fn new(permission: P) -> Self {
        Self {
            permission: Rc::new(permission),
        }
    }
}

impl<S, B, P> Transform<S, ServiceRequest> for Require<P>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
    P: Permission + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Transform = RequireMiddleware<S, P>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireMiddleware {
            service: Rc::new(service),
            permission: Rc::clone(&self.permission),
        }))
    }
}

/// The service `Require` wraps around a route.
pub struct RequireMiddleware<S, P> {
    service: Rc<S>,
    permission: Rc<P>,
}

impl<S, B, P> Service<ServiceRequest> for RequireMiddleware<S, P>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
    P: Permission + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let permission = Rc::clone(&self.permission);
        Box::pin(async move {
            match authorize(req.request(), &*permission).await {
                Ok(user) => {
                    req.extensions_mut().insert(user);
                    let mut response = service.call(req).await?;
                    response
                        .headers_mut()
                        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    Ok(response.map_into_left_body())
                }
                Err(refusal) => {
                    let response = refusal.error_response();
                    Ok(req.into_response(response).map_into_right_body())
                }
            }
        })
    }
}

/// Runs the shared authenticator from the app data, logging any refusal.
async fn authorize(req: &HttpRequest, permission: &dyn Permission) -> Result<AuthenticatedUser, AuthError> {
    let Some(authenticator) = req.app_data::<web::Data<Authenticator>>() else {
        log::error!("no Authenticator registered as app data; refusing {}", req.path());
        return Err(AuthError::DatabaseUnavailable);
    };
    let outcome = authenticator.authorize(req.headers(), permission).await;
    if let Err(refusal) = &outcome {
        log::debug!("refused {} {}: {refusal}", req.method(), req.path());
    }
    outcome
}

/// In a route guarded by `Require`, the user it recorded; elsewhere the
/// extractor authenticates by itself, as `IsAuthenticated` would.
impl FromRequest for AuthenticatedUser {
    type Error = AuthError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let recorded = req.extensions().get::<AuthenticatedUser>().cloned();
        let req = req.clone();
        Box::pin(async move {
            match recorded {
                Some(user) => Ok(user),
                None => authorize(&req, &IsAuthenticated).await,
            }
        })
    }
}
