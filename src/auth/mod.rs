//! Authentication and authorization of bearer access tokens. Nothing here
//! knows where users are stored: the guard hands an accepted caller's `sub`
//! to the users store and takes back an id.
//!
//! The pieces, in request order: `bearer` reads the header, `validator`
//! checks the token against the `keys` store (through the verified-token
//! `cache`), a `permission` class decides, and `guard` wires it all into
//! actix-web through actix-web-httpauth's middleware. `token` holds what
//! they all share, `jose` what tokens and other JOSE objects share;
//! `error` is how a refusal looks on the wire.

mod bearer;
mod cache;
mod error;
mod guard;
mod jose;
pub(crate) mod keys;
mod permission;
mod token;
pub(crate) mod validator;

pub use bearer::BearerToken;
#[cfg(feature = "test-support")]
pub(crate) use bearer::bearer_token;
pub use cache::VerifiedToken;
pub use error::AuthError;
pub use guard::{AuthenticatedUser, require};
pub use keys::{KeyStore, KeyStoreSettings, PublishedKey};
pub use permission::{AllOf, AnyOf, Denied, HasPermission, IsAuthenticated, Permission};
pub use token::Principal;
pub use validator::{PermissionsFrom, ValidationSettings};
