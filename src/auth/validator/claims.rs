//! The claims as the validator reads them: one pass over the payload into
//! [`KnownClaims`] (a member given twice is refused, an optional one is
//! named when missing), and the rule for a `sub`, which becomes a users
//! row.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

use crate::auth::jose::present;

/// The longest `sub` accepted: it becomes a users row, and is printed.
const MAX_SUB_BYTES: usize = 255;

/// The claims the validator checks or reads, in one pass over the payload; a
/// member given twice is refused. Optional here so that a missing one is
/// named in the refusal.
#[derive(Deserialize)]
pub(super) struct KnownClaims {
    /// A string, exactly one of the trusted issuers.
    pub(super) iss: Option<String>,
    pub(super) sub: Option<String>,
    /// One audience or a list of them; one must be ours.
    pub(super) aud: Option<Audience>,
    pub(super) scope: Option<String>,
    pub(super) permissions: Option<Vec<String>>,
    /// Whole seconds since the epoch.
    pub(super) exp: Option<u64>,
    /// Seconds since the epoch; a fraction is rounded (as jsonwebtoken does).
    pub(super) nbf: Option<serde_json::Number>,
    /// A number when present, and not in the future.
    pub(super) iat: Option<serde_json::Number>,
    /// Auth0's grant type: `client-credentials` for machine-to-machine tokens.
    pub(super) gty: Option<serde_json::Value>,
    /// The client the token was issued to (RFC 9068 section 2.2); equal to
    /// `sub` when the client acts for itself.
    pub(super) client_id: Option<serde_json::Value>,
    /// The token's unique identifier (RFC 7519 section 4.1.7).
    pub(super) jti: Option<serde_json::Value>,
    /// Members of an ID token (OIDC), never of an access token.
    #[serde(default, deserialize_with = "present")]
    pub(super) nonce: bool,
    #[serde(default, deserialize_with = "present")]
    pub(super) at_hash: bool,
    /// What the token is bound to (RFC 7800); `null` is refused, not read
    /// as unbound.
    #[serde(default, deserialize_with = "some")]
    pub(super) cnf: Option<Confirmation>,
}

/// A token's `aud`: one string, or an array of strings (RFC 7519 section 4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Audience {
    One(String),
    Several(Vec<String>),
}

impl Audience {
    pub(super) fn names_one_of(&self, ours: &[String]) -> bool {
        match self {
            Self::One(aud) => ours.contains(aud),
            Self::Several(auds) => auds.iter().any(|aud| ours.contains(aud)),
        }
    }
}

/// A token's `cnf` claim. The one confirmation method this API can check
/// is a DPoP key's RFC 7638 thumbprint (`jkt`, RFC 9449 section 6); a
/// token bound by any other (a certificate's `x5t#S256`...) is bound to
/// something the API cannot verify, so it is refused rather than accepted
/// as a bearer token.
#[derive(Deserialize)]
pub(super) struct Confirmation {
    pub(super) jkt: Option<String>,
    #[serde(flatten)]
    pub(super) others: BTreeMap<String, IgnoredAny>,
}

/// A member that must not be `null` when present.
fn some<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// A `sub` becomes a users row and is printed by `users`: it must be a
/// short, printable identifier.
pub(crate) fn check_sub(sub: &str) -> Result<(), &'static str> {
    if sub.is_empty() {
        Err("empty sub claim")
    } else if sub.trim().is_empty() {
        Err("blank sub claim")
    } else if sub.len() > MAX_SUB_BYTES {
        Err("sub claim longer than 255 bytes")
    } else if sub.chars().any(char::is_control) {
        Err("sub claim holds a control character")
    } else {
        Ok(())
    }
}
