//! Which methods a route answers.

use actix_web::{Route, guard, web};

/// `GET` and `HEAD` (RFC 9110: wherever GET works, HEAD does too).
pub(crate) fn get_or_head() -> Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}
