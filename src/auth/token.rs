//! What every part of authentication agrees on: the size limit of a token
//! and who a verified token speaks for. A leaf: it imports nothing else of
//! the crate, so the modules that read, check and cache tokens all build on
//! it without importing one another.

use std::collections::BTreeSet;

/// Tokens longer than this are refused without being decoded.
pub(crate) const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Who a valid token speaks for, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`.
    pub sub: String,
    /// The permissions it grants: the `scope` claim's entries plus Auth0's
    /// RBAC `permissions` array.
    pub permissions: BTreeSet<String>,
}

impl Principal {
    /// True when `permission` was granted, compared exactly.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.contains(permission)
    }
}
