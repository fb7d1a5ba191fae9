//! Authentication and authorization of access tokens, bearer or
//! DPoP-bound. Nothing here knows where users are stored: the guard hands
//! an accepted caller's `sub` to the users store and takes back an id.
//!
//! The pieces, in request order: `bearer` reads the header, `validator`
//! checks the token against the `keys` store (through the verified-token
//! `cache`), `dpop` checks the proof of a DPoP-bound token, a `permission`
//! class decides, and `guard` wires it all into actix-web through
//! actix-web-httpauth's middleware. `token` holds what they all share,
//! `jose` what tokens and proofs share; `error` is how a refusal looks on
//! the wire.

mod bearer;
mod cache;
mod claim_guard;
pub(crate) mod dpop;
mod error;
pub(crate) mod guard;
mod jose;
pub(crate) mod keys;
mod permission;
mod token;
pub(crate) mod validator;

#[cfg(feature = "test-support")]
pub(crate) use bearer::bearer_token;
pub use bearer::{BearerToken, Credentials};
pub use cache::VerifiedToken;
pub use claim_guard::{ClaimCheck, ClaimEquals, ClaimIncludes};
pub use dpop::{DpopMode, DpopSettings, NonceSecret};
pub use error::{AuthError, Challenges, Refusal};
pub(crate) use error::{ErrorBody, with_resource_metadata};
pub use guard::{AuthenticatedUser, MaybeAuthenticated, require};
pub(crate) use keys::IssuerKeys;
pub use keys::KeyStoreSettings;
pub use permission::{AllOf, AnyOf, Denied, HasPermission, IsAuthenticated, Permission};
pub use token::{Claims, Principal, Scheme};
pub use validator::{PermissionsFrom, ValidationSettings};
