//! Signing keys: the tenant's JWK Set, fetched over HTTP ([`http`]), parsed
//! into the keys we verify with ([`jwks`]) and kept fresh ([`store`]).

mod http;
pub(crate) mod jwks;
mod store;

pub(crate) use http::is_loopback;
pub use jwks::PublishedKey;
pub(crate) use store::KeyError;
#[cfg(feature = "test-support")]
pub(crate) use store::{FetchError, Fetched, KeySource};
pub use store::{KeyStore, KeyStoreSettings};

impl KeyStore {
    /// A store for the keys published at `url`; nothing is fetched yet.
    pub(crate) fn for_url(url: url::Url, settings: KeyStoreSettings) -> Result<Self, reqwest::Error> {
        Ok(Self::new(Box::new(http::HttpSource::new(url)?), settings))
    }
}
