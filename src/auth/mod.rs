//! Authentication and authorization of access tokens, bearer or
//! DPoP-bound. Nothing here knows where users are stored: the guard hands
//! an accepted caller's `sub` to the users store and takes back an id.
//!
//! The pieces, in request order: `authorization` reads the header,
//! `validator` checks the token against the `keys` store (through the
//! verified-token `cache`), `dpop` checks the proof of a DPoP-bound token,
//! a `permission` class decides, and `guard` wires it all into actix-web
//! through actix-web-httpauth's middleware. `token` holds what they all
//! share, `jose` what tokens and proofs share, `public_url` where clients
//! reach the API; `error` is why a request was refused, and `challenge`
//! how its `WWW-Authenticate` header says so. `scheme_rules` says which
//! scheme a token may come with, `grants` where its permissions come
//! from; `doctor` explains one token (`explain`) by the same rules.

mod authorization;
mod cache;
mod challenge;
pub mod doctor;
pub(crate) mod dpop;
mod error;
mod grants;
pub(crate) mod guard;
mod jose;
pub(crate) mod keys;
mod permission;
mod public_url;
mod scheme_rules;
mod token;
pub(crate) mod validator;

#[cfg(feature = "test-support")]
pub(crate) use authorization::access_token;
pub use authorization::{AccessToken, Credentials};
pub use cache::VerifiedToken;
pub use challenge::Challenges;
pub use dpop::{DpopMode, DpopSettings, NonceSecret};
pub(crate) use error::ErrorBody;
pub use error::{AuthError, Refusal};
pub use grants::{GrantSource, PermissionsFrom};
pub use guard::{AuthenticatedUser, MaybeAuthenticated, require};
pub(crate) use keys::IssuerKeys;
pub use keys::KeyStoreSettings;
pub use permission::{
    AllOf, AnyOf, ClaimCheck, ClaimEquals, ClaimIncludes, Denied, HasPermission, InsufficientAuthentication,
    IsAuthenticated, Permission, RequireAuthentication, StepUp,
};
#[cfg(feature = "test-support")]
pub(crate) use public_url::normalize_url;
pub(crate) use public_url::{PublicUrl, RESOURCE_METADATA_PATH};
pub(crate) use token::unix_now;
pub use token::{Claims, Principal, Scheme};
pub use validator::{TokenProfile, ValidationSettings};
