//! Probes for orchestrators: `/healthz` (the process is alive) and
//! `/readyz` (it can authenticate requests right now).

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::auth::IssuerKeys;
use crate::users::UserStore;

/// `GET /healthz`: always 200 while the process serves.
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 once signing keys are loaded and the database
/// answers; 503 naming what is missing otherwise. The database answer is at
/// most a second old, so probes cannot take the database from users.
/// `issuers` says which issuer's keys are loaded, each.
pub(crate) async fn readyz(keys: web::Data<IssuerKeys>, users: web::Data<UserStore>) -> HttpResponse {
    let state = |ok| if ok { "ok" } else { "unavailable" };
    let issuers: serde_json::Map<String, serde_json::Value> = keys
        .iter()
        .map(|(issuer, store)| (issuer.to_owned(), state(store.is_ready()).into()))
        .collect();
    let keys = keys.all_ready();
    let database = users.is_ready().await;
    let body = json!({
        "status": state(keys && database),
        "signing_keys": state(keys),
        "issuers": issuers,
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
