//! Probes for orchestrators: `/healthz` (the process is alive) and
//! `/readyz` (it can authenticate requests right now, and is not stopping).

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use std::collections::BTreeMap;

use crate::auth::IssuerKeys;
use crate::routes::route_info::{Answer, Doc, named};
use crate::routes::static_json::static_json;
use crate::shutdown::Drain;
use crate::users::UserStore;

const HEALTHY: &str = r#"{"status":"ok"}"#;

/// `GET /healthz`: always 200 while the process serves.
pub(crate) async fn healthz() -> HttpResponse {
    static_json(HEALTHY)
}

/// Whether one thing the API needs is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    /// Available.
    Ok,
    /// Not available now.
    Unavailable,
}

impl From<bool> for State {
    fn from(ok: bool) -> Self {
        if ok { State::Ok } else { State::Unavailable }
    }
}

/// Whether the instance takes requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Ready: what it needs is there.
    Ok,
    /// Not ready: something it needs is not there (see which).
    Unavailable,
    /// Stopping (SIGTERM): it finishes the requests it has; send it no more.
    Draining,
}

/// The answer of `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// `ok` when both below are, `draining` once the instance is stopping.
    status: Status,
    /// Whether every issuer's signing keys are loaded.
    signing_keys: State,
    /// Each trusted issuer, and whether its keys are loaded.
    issuers: BTreeMap<String, State>,
    /// Whether the users table answers.
    database: State,
}

/// `GET /readyz`: 200 once signing keys are loaded and the database
/// answers; 503 naming what is missing otherwise, and 503 `draining` (with
/// no `Retry-After`: it will not be back) from a stop signal on. The
/// database answer is at most a second old, so probes cannot take the
/// database from users. `issuers` says which issuer's keys are loaded, each.
pub(crate) async fn readyz(
    keys: web::Data<IssuerKeys>,
    users: web::Data<UserStore>,
    drain: web::Data<Drain>,
) -> HttpResponse {
    let issuers = keys
        .iter()
        .map(|(issuer, store)| (issuer.to_owned(), store.is_ready().into()))
        .collect();
    let keys = keys.all_ready();
    let database = users.is_ready().await;
    let status = match (drain.is_draining(), keys && database) {
        (true, _) => Status::Draining,
        (false, true) => Status::Ok,
        (false, false) => Status::Unavailable,
    };
    let body = Readiness {
        status,
        signing_keys: keys.into(),
        issuers,
        database: database.into(),
    };
    match status {
        Status::Ok => HttpResponse::Ok().json(body),
        Status::Draining => HttpResponse::ServiceUnavailable().json(body),
        Status::Unavailable => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(body),
    }
}

const TAG: &str = "probes";

/// How the OpenAPI document describes [`healthz`].
pub(crate) const HEALTHZ: Doc = Doc::fixed("healthz", TAG, "Whether the process serves", HEALTHY);

/// How the OpenAPI document describes [`readyz`].
pub(crate) const READYZ: Doc = Doc {
    id: "readyz",
    tag: TAG,
    summary: "Whether requests can be authenticated now",
    ok: Answer::Json(named::<Readiness>),
    other: Some((
        503,
        "Not ready: signing keys or the database are unavailable (see which), or the instance is stopping (`draining`)",
        Answer::Json(named::<Readiness>),
    )),
};
