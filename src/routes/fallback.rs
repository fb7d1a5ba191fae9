//! Every answer the app makes is JSON, including the ones actix-web's
//! routing and CORS make by themselves (404, 405, CORS refusals). Requests
//! too malformed to reach the app (a broken request line, headers over the
//! size limit) get actix-http's bare status line.

use actix_web::Result;
use actix_web::body::EitherBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use serde_json::json;

/// Middleware completing every error response: a 405 says which methods
/// work, and a response without a JSON body gets one:
/// `{"message": "<reason phrase>"}`. It runs on error responses only.
pub(crate) fn json_error_bodies<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(complete_error)
}

fn complete_error<B>(mut response: ServiceResponse<B>) -> Result<ErrorHandlerResponse<B>> {
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        // Every route of the API answers GET and HEAD, and only those.
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(response.map_into_left_body()));
    }
    let status = response.status();
    let (request, mut http_response) = response.into_parts();
    http_response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = json!({ "message": status.canonical_reason().unwrap_or("Error") }).to_string();
    let http_response = http_response.set_body(body).map_into_boxed_body();
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(request, http_response).map_body(|_, body| EitherBody::right(body)),
    ))
}
