//! The HTTP surface: which routes exist and which permission class guards
//! each. Handlers only answer; guarding is declared here.

mod fallback;
mod health;
mod me;
mod messages;
mod quickstart;

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};

use crate::auth::{HasPermission, IsAuthenticated, Require};

pub use fallback::{json_error_bodies, not_found};

/// A 200 with a fixed JSON body: the hot path serialises nothing.
fn static_json(body: &'static str) -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body(body)
}

/// Registers every route of the API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").get(health::healthz))
        .service(web::resource("/readyz").get(health::readyz));
    cfg.service(
        web::scope("/api")
            // Auth0's Django REST Framework quickstart.
            .service(web::resource("/public").get(quickstart::public))
            .service(
                web::resource("/private")
                    .wrap(Require::new(IsAuthenticated))
                    .get(quickstart::private),
            )
            .service(
                web::resource("/private-scoped")
                    .wrap(Require::new(HasPermission::new("read:messages")))
                    .get(quickstart::private_scoped),
            )
            // The caller's own row.
            .service(
                web::resource("/me")
                    .wrap(Require::new(IsAuthenticated))
                    .get(me::me),
            )
            // Auth0's "Hello World" API sample.
            .service(
                web::scope("/messages")
                    .service(web::resource("/public").get(messages::public))
                    .service(
                        web::resource("/protected")
                            .wrap(Require::new(IsAuthenticated))
                            .get(messages::protected),
                    )
                    .service(
                        web::resource("/admin")
                            .wrap(Require::new(HasPermission::new("read:admin-messages")))
                            .get(messages::admin),
                    ),
            ),
    );
}
