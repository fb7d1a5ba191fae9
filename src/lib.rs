//! An Auth0-protected API on actix-web: strict RS256 bearer-token validation
//! against the tenant's JWKS, permission classes on routes, and a Diesel
//! users table keyed by the token's `sub`.
//!
//! What a user of the crate needs: [`routes::configure`] and
//! [`auth::require`] with the permission classes to guard routes,
//! [`auth::AuthenticatedUser`] in handlers, [`config::Settings`] and
//! [`app::Application`] to start, [`db::migrate`] and [`users`] for the
//! table, and [`dev`] to work without a tenant. The reference on DPoP,
//! refusals and permission classes is in [`guide`].

pub mod app;
pub mod auth;
mod background;
pub mod config;
pub mod connection;
pub mod db;
pub mod dev;
pub mod guide;
mod metrics;
mod proof_ledger;
pub mod routes;
#[allow(missing_docs, unreachable_pub)]
mod schema;
mod shutdown;
mod telemetry;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod users;
