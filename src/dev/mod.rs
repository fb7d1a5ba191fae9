//! Development without a tenant: a local issuer ([`DevIssuer`]) that signs
//! tokens with an RSA key kept on disk and publishes its JWKS, so the API can
//! be tried, tested and benchmarked with no Auth0 tenant and no network,
//! and a DPoP client key ([`DpopKey`]) to try DPoP-bound tokens with.
//! `serve` never uses any of it.

mod dpop;
mod host;
mod issuer;
mod signing;

pub use dpop::{DpopKey, DpopKeyError};
pub(crate) use host::loopback_host_only;
pub use issuer::{DEFAULT_DATA_DIR, DEV_AUDIENCE, DevIssuer, DevIssuerError, ExampleToken, TokenRequest};
pub use signing::{SigningError, SigningKey, jwks};

/// What `dev` adds to the server: the issuer's endpoints, and its tokens on
/// the docs page.
pub struct DevMode {
    /// The development issuer, whose JWKS and discovery document are served.
    pub issuer: DevIssuer,
    /// The tokens the docs page offers (the ones the banner prints).
    pub tokens: Vec<ExampleToken>,
}
