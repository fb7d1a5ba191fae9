//! What every part of authentication agrees on: the size limit of a token,
//! the schemes it can be presented with, and who a verified token speaks
//! for. A leaf: it imports nothing else of
//! the crate, so the modules that read, check and cache tokens all build on
//! it without importing one another.

use std::collections::BTreeSet;

/// Tokens longer than this are refused without being decoded.
pub(crate) const MAX_TOKEN_BYTES: usize = 8 * 1024;

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
    /// The token's `sub`.
    pub sub: String,
    /// The permissions it grants, from the claims `PERMISSIONS_FROM` names.
    pub permissions: BTreeSet<String>,
    /// True when a user token's `scope` was not trusted: it has no
    /// `permissions` claim (RBAC is off for the API) and is no
    /// client-credentials token. A refusal then says how to fix the tenant.
    pub user_scope_ignored: bool,
}

impl Principal {
    /// True when `permission` was granted, compared exactly.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.contains(permission)
    }
}
