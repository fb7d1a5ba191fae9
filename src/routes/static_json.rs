//! Fixed answers: the hot path serialises nothing.

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;
use serde_json::json;

/// A 200 with a fixed JSON body.
pub(crate) fn static_json(body: &'static str) -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body(body)
}

/// The default service: `404 {"message": "Not Found"}`.
pub(crate) async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({ "message": "Not Found" }))
}
