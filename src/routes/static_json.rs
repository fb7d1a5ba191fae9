//! Fixed answers: the hot path serialises nothing.

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;

/// A 200 with a fixed JSON body.
pub(crate) fn static_json(body: &'static str) -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body(body)
}
