//! Signing keys: each trusted issuer's JWK Set ([`issuers`]), fetched from
//! a [`source`] (the tenant over [`http`]), parsed into the keys we verify
//! with ([`jwks`]) and kept fresh ([`store`]); an issuer spelled with a
//! trailing slash too many or too few is told to the operator
//! ([`spelling`]), and a URL on this machine is told apart ([`loopback`]).

mod http;
mod issuers;
pub(crate) mod jwks;
mod loopback;
mod parsed;
mod source;
mod spelling;
mod store;

pub(crate) use issuers::IssuerKeys;
pub(crate) use jwks::PublishedKey;
pub(crate) use loopback::is_loopback;
#[cfg(any(test, feature = "test-support"))]
pub(crate) use source::Unreachable;
pub(crate) use spelling::log_unexpected_issuer;
pub(crate) use store::KeyError;
pub(crate) use store::KeyStore;
pub use store::KeyStoreSettings;
