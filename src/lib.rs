//! An Auth0-protected API on actix-web: strict RS256 bearer-token validation
//! against the tenant's JWKS, permission classes on routes, and a Diesel
//! users table keyed by the token's `sub`.

pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod dev_issuer;
pub mod routes;
pub mod schema;
pub mod signing;
pub mod startup;
