//! Integration tests: the real app on port 0, a local issuer, real tokens.

#[macro_use]
mod helpers;

mod cli;
mod faults;
mod hostile;
mod keys;
mod mutations;
mod permissions;
mod postgres;
mod refusals;
mod routes;
mod users;
