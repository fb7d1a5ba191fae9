//! Signing keys: each trusted issuer's JWK Set ([`issuers`]), fetched over
//! HTTP ([`http`]), parsed into the keys we verify with ([`jwks`]) and kept
//! fresh ([`store`]).

mod http;
mod issuers;
pub(crate) mod jwks;
mod parsed;
mod store;

pub(crate) use http::is_loopback;
pub use issuers::IssuerKeys;
pub use jwks::PublishedKey;
pub(crate) use store::KeyError;
#[cfg(any(test, feature = "test-support"))]
pub(crate) use store::Unreachable;
pub use store::{KeyStore, KeyStoreSettings};
