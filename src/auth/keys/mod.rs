//! Signing keys: each trusted issuer's JWK Set ([`issuers`]), fetched over
//! HTTP ([`http`]), parsed into the keys we verify with ([`jwks`]) and kept
//! fresh ([`store`]).

mod http;
mod issuers;
pub(crate) mod jwks;
mod parsed;
mod store;

pub(crate) use http::is_loopback;
pub(crate) use issuers::IssuerKeys;
pub(crate) use jwks::PublishedKey;
pub(crate) use store::KeyError;
pub(crate) use store::KeyStore;
pub use store::KeyStoreSettings;
#[cfg(any(test, feature = "test-support"))]
pub(crate) use store::Unreachable;
