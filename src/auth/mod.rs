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
mod challenge;
mod claim_guard;
pub(crate) mod dpop;
mod error;
pub(crate) mod guard;
mod jose;
pub(crate) mod keys;
mod permission;
mod public_url;
mod token;
pub(crate) mod validator;

#[cfg(feature = "test-support")]
pub(crate) use bearer::bearer_token;
pub use bearer::{BearerToken, Credentials};
pub use cache::VerifiedToken;
pub use challenge::Challenges;
pub use claim_guard::{ClaimCheck, ClaimEquals, ClaimIncludes};
pub use dpop::{DpopMode, DpopSettings, NonceSecret};
pub(crate) use error::ErrorBody;
pub use error::{AuthError, Refusal};
pub use guard::{AuthenticatedUser, MaybeAuthenticated, require};
pub(crate) use keys::IssuerKeys;
pub use keys::KeyStoreSettings;
pub use permission::{AllOf, AnyOf, Denied, HasPermission, IsAuthenticated, Permission};
#[cfg(feature = "test-support")]
pub(crate) use public_url::normalize_url;
pub(crate) use public_url::{PublicUrl, RESOURCE_METADATA_PATH};
pub use token::{Claims, Principal, Scheme};
pub use validator::{PermissionsFrom, ValidationSettings};
