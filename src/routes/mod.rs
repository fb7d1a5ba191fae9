//! The HTTP surface: which routes exist and which permission class guards
//! each. Handlers only answer; guarding is declared here.

mod fallback;
mod health;
mod me;
mod messages;
mod quickstart;
mod static_json;

use actix_web::{FromRequest, Handler, Responder, Route, guard, web};

use crate::auth::{HasPermission, IsAuthenticated, Permission, require};

pub(crate) use fallback::{json_error_bodies, not_found};

/// `GET` and `HEAD` (RFC 9110: wherever GET works, HEAD does too).
fn get_or_head() -> Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// `GET` (and `HEAD`) answered by `handler` behind `permission`. The guard wraps the
/// route, not the resource, so that another method gets its 405 before any
/// authentication happens or any user row is written.
fn get_requiring<P, F, Args>(permission: P, handler: F) -> Route
where
    P: Permission + 'static,
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    get_or_head().to(handler).wrap(require(permission))
}

/// Registers every route of the API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(get_or_head().to(health::healthz)))
        .service(web::resource("/readyz").route(get_or_head().to(health::readyz)));
    cfg.service(
        web::scope("/api")
            // Auth0's Django REST Framework quickstart.
            .service(web::resource("/public").route(get_or_head().to(quickstart::public)))
            .service(web::resource("/private").route(get_requiring(IsAuthenticated, quickstart::private)))
            .service(web::resource("/private-scoped").route(get_requiring(
                HasPermission::new("read:messages"),
                quickstart::private_scoped,
            )))
            // The caller's own row.
            .service(web::resource("/me").route(get_requiring(IsAuthenticated, me::me)))
            // Auth0's "Hello World" API sample.
            .service(
                web::scope("/messages")
                    .service(web::resource("/public").route(get_or_head().to(messages::public)))
                    .service(
                        web::resource("/protected")
                            .route(get_requiring(IsAuthenticated, messages::protected)),
                    )
                    .service(web::resource("/admin").route(get_requiring(
                        HasPermission::new("read:admin-messages"),
                        messages::admin,
                    ))),
            ),
    );
}
