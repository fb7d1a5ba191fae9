//! The HTTP surface: which routes exist and which permission class guards
//! each. Handlers only answer; guarding is declared here, in `declare`,
//! the one list of routes: [`configure`] registers it with actix-web, and
//! `table` hands it to what the API publishes about itself (the OpenAPI
//! document, the protected resource metadata), which therefore cannot
//! disagree with what is served.

mod docs;
mod fallback;
mod health;
mod me;
mod messages;
mod quickstart;
mod route_info;
mod static_json;
mod verbs;

use actix_web::{FromRequest, Handler, Responder, web};

use crate::auth::{
    HasPermission, IsAuthenticated, Permission, RESOURCE_METADATA_PATH, RequireAuthentication, require,
};

pub(crate) use docs::Docs;
pub(crate) use fallback::json_error_bodies;
use route_info::Doc;
pub(crate) use route_info::RouteInfo;
pub(crate) use static_json::not_found;
use verbs::get_or_head;

/// Registers every route of the API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    declare(cfg);
    docs::configure_assets(cfg);
}

/// Serves the protected resource metadata at `path` too: its
/// path-suffixed address when `PUBLIC_BASE_URL` has a path (RFC 9728
/// section 3.1), an alias the published documents do not list.
pub(crate) fn serve_metadata_at(cfg: &mut web::ServiceConfig, path: &str) {
    cfg.service(web::resource(path).route(get_or_head().to(docs::protected_resource_metadata)));
}

/// Every route [`configure`] registers, as the published documents describe
/// them, in the order declared.
pub(crate) fn table() -> Vec<RouteInfo> {
    let mut table = Vec::new();
    declare(&mut table);
    table
}

/// The routes of the API, each with who may call it and what it answers.
fn declare(routes: &mut impl Routes) {
    // Probes.
    routes.public("/healthz", health::HEALTHZ, health::healthz);
    routes.public("/readyz", health::READYZ, health::readyz);
    // Auth0's Django REST Framework quickstart.
    routes.public("/api/public", quickstart::PUBLIC, quickstart::public);
    routes.guarded(
        "/api/private",
        IsAuthenticated,
        quickstart::PRIVATE,
        quickstart::private,
    );
    routes.guarded(
        "/api/private-scoped",
        HasPermission::new("read:messages"),
        quickstart::PRIVATE_SCOPED,
        quickstart::private_scoped,
    );
    // The caller's own row.
    routes.guarded("/api/me", IsAuthenticated, me::ME, me::me);
    // Auth0's "Hello World" API sample.
    routes.public("/api/messages/public", messages::PUBLIC, messages::public);
    routes.guarded(
        "/api/messages/protected",
        IsAuthenticated,
        messages::PROTECTED,
        messages::protected,
    );
    routes.guarded(
        "/api/messages/admin",
        HasPermission::new("read:admin-messages"),
        messages::ADMIN,
        messages::admin,
    );
    // Step-up (RFC 9470): a multi-factor login in the last five minutes.
    routes.guarded(
        "/api/messages/sensitive",
        RequireAuthentication::acr([messages::MULTI_FACTOR]).max_age(300),
        messages::SENSITIVE,
        messages::sensitive,
    );
    // What the API says about itself.
    routes.public("/openapi.json", docs::OPENAPI, docs::openapi_json);
    routes.public("/docs", docs::PAGE, docs::page);
    routes.public(
        RESOURCE_METADATA_PATH,
        docs::METADATA,
        docs::protected_resource_metadata,
    );
}

/// Where [`declare`] puts routes: actix-web's configuration, or the table
/// the documents are built from.
trait Routes {
    /// A `GET` (and `HEAD`) route anyone may call.
    fn public<F, Args>(&mut self, path: &'static str, doc: Doc, handler: F)
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static;

    /// A `GET` (and `HEAD`) route behind `permission`.
    fn guarded<P, F, Args>(&mut self, path: &'static str, permission: P, doc: Doc, handler: F)
    where
        P: Permission + 'static,
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static;
}

impl Routes for web::ServiceConfig {
    fn public<F, Args>(&mut self, path: &'static str, _doc: Doc, handler: F)
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.service(web::resource(path).route(get_or_head().to(handler)));
    }

    /// The guard wraps the route, not the resource, so that another method
    /// gets its 405 before any authentication happens or any user row is
    /// written.
    fn guarded<P, F, Args>(&mut self, path: &'static str, permission: P, _doc: Doc, handler: F)
    where
        P: Permission + 'static,
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.service(web::resource(path).route(get_or_head().to(handler).wrap(require(permission))));
    }
}

impl Routes for Vec<RouteInfo> {
    fn public<F, Args>(&mut self, path: &'static str, doc: Doc, _handler: F) {
        self.push(RouteInfo {
            path,
            requires: None,
            step_up: None,
            doc,
        });
    }

    fn guarded<P: Permission, F, Args>(&mut self, path: &'static str, permission: P, doc: Doc, _handler: F) {
        self.push(RouteInfo {
            path,
            requires: Some(permission.alternatives()),
            step_up: permission.step_up(),
            doc,
        });
    }
}
