//! What every part of authentication agrees on: the size limit of a token,
//! the schemes it can be presented with, who a verified token speaks for,
//! and the clock. A leaf: it imports nothing else of the crate, so the
//! modules that read, check and cache tokens all build on it without
//! importing one another.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;

use crate::auth::grants::GrantSource;

/// Tokens longer than this are refused without being decoded.
pub(crate) const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Now, in whole seconds since the epoch, as JWT claims count time (`exp`,
/// `iat`...); 0 for a clock set before 1970.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The claims of a verified token, by name.
pub type Claims = serde_json::Map<String, serde_json::Value>;

/// How a request presents its access token (the `Authorization` scheme).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Bearer` (RFC 6750): whoever holds the token may use it.
    Bearer,
    /// `DPoP` (RFC 9449): the token is bound to a key, and a proof signed
    /// by that key comes with every request.
    Dpop,
}

/// Who a valid token speaks for, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `iss`: one of the trusted issuers. A user is the pair
    /// (issuer, sub): two tenants may issue the same `sub`.
    pub issuer: Arc<str>,
    /// The token's `sub`.
    pub sub: String,
    /// The permissions it grants, from the claims `PERMISSIONS_FROM` names.
    pub permissions: BTreeSet<String>,
    /// Where the permissions came from; a refusal for a missing one says
    /// how to fix the issuer from it.
    pub granted_by: GrantSource,
    claims: VerifiedClaims,
}

/// The verified payload, parsed into claims only when something asks: most
/// routes never look past `sub` and the permissions.
#[derive(Debug, Clone)]
struct VerifiedClaims {
    payload: Box<[u8]>,
    parsed: OnceLock<Claims>,
}

impl PartialEq for VerifiedClaims {
    fn eq(&self, other: &Self) -> bool {
        self.payload == other.payload
    }
}

impl Eq for VerifiedClaims {}

impl Principal {
    /// The principal of a token whose verified payload (JSON) is `payload`.
    pub(crate) fn new(
        issuer: Arc<str>,
        sub: String,
        permissions: BTreeSet<String>,
        granted_by: GrantSource,
        payload: Vec<u8>,
    ) -> Self {
        Self {
            issuer,
            sub,
            permissions,
            granted_by,
            claims: VerifiedClaims {
                payload: payload.into_boxed_slice(),
                parsed: OnceLock::new(),
            },
        }
    }

    /// True when `permission` was granted, compared exactly.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.contains(permission)
    }

    /// Every claim of the token, namespaced custom claims included.
    pub fn claims(&self) -> &Claims {
        self.claims
            .parsed
            .get_or_init(|| serde_json::from_slice(&self.claims.payload).unwrap_or_default())
    }

    /// The claim `name` as a `T`; `None` when absent or of another shape.
    pub fn claim<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        T::deserialize(self.claims().get(name)?).ok()
    }

    /// The whole payload as a `T` (a struct of the claims a handler reads).
    pub fn claims_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.claims.payload)
    }
}
