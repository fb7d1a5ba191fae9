//! Probes for orchestrators: `/healthz` (the process is alive) and
//! `/readyz` (it can authenticate requests right now).

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::auth::Authenticator;

/// `GET /healthz`: always 200 while the process serves.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 once signing keys are loaded and the database
/// answers; 503 naming what is missing otherwise.
pub async fn readyz(authenticator: web::Data<Authenticator>) -> HttpResponse {
    let keys = authenticator.validator().key_store().is_ready();
    let database = authenticator.users().ping().await.is_ok();
    let state = |ok| if ok { "ok" } else { "unavailable" };
    let body = json!({
        "status": state(keys && database),
        "signing_keys": state(keys),
        "database": state(database),
    });
    if keys && database {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(body)
    }
}
