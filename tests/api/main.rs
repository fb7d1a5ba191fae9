//! Integration tests: the real app on port 0, a local issuer, real tokens.
//! Storage-independent suites run on SQLite; the users and fault suites run
//! on both backends; the PostgreSQL ones are ignored unless asked for
//! (`cargo test -- --include-ignored`).

// Items shared between the test modules of this one crate.
#![allow(unreachable_pub)]

#[macro_use]
mod helpers;

mod browser;
mod claims;
mod cli;
mod docs;
mod dpop;
mod drain;
mod explain;
mod faults;
mod hostile;
mod issuers;
mod keys;
mod mutations;
mod operations;
mod permissions;
mod postgres;
mod refusals;
mod revocation;
mod routes;
mod schemathesis;
mod slow_clients;
mod standard_issuer;
mod step_up;
mod users;
