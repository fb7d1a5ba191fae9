//! Authentication and authorization of bearer access tokens.
//!
//! The pieces, in request order: [`bearer`] reads the header, [`validator`]
//! checks the token against the [`keys`] store, a [`permission`] class
//! decides, and [`middleware`] wires it all into actix-web.

pub mod bearer;
pub mod error;
pub mod jwks;
pub mod keys;
pub mod middleware;
pub mod permission;
pub mod token_cache;
pub mod validator;

use std::collections::BTreeSet;
use std::sync::Arc;

use actix_web::http::header::HeaderMap;

pub use error::AuthError;
pub use middleware::Require;
pub use permission::{AllOf, AnyOf, HasPermission, IsAuthenticated, Permission};
pub use token_cache::VerifiedToken;
pub use validator::{Principal, TokenValidator};

use crate::db::UserStore;

/// The caller of an authenticated request, as handlers receive it.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser {
    /// The `users.id` of the token's `sub`.
    pub id: i32,
    /// The verified token: who it speaks for and what it grants.
    pub token: Arc<VerifiedToken>,
}

impl AuthenticatedUser {
    /// The token's `sub`.
    pub fn sub(&self) -> &str {
        &self.token.principal.sub
    }

    /// Everything the token grants (`scope` plus `permissions`).
    pub fn permissions(&self) -> &BTreeSet<String> {
        &self.token.principal.permissions
    }
}

/// Validates tokens, applies permission classes and records users: the one
/// object the routes share.
pub struct Authenticator {
    validator: TokenValidator,
    users: UserStore,
}

impl Authenticator {
    /// Combines a token validator with the users table.
    pub fn new(validator: TokenValidator, users: UserStore) -> Self {
        Self { validator, users }
    }

    /// The token validator (and through it the key store).
    pub fn validator(&self) -> &TokenValidator {
        &self.validator
    }

    /// The users table.
    pub fn users(&self) -> &UserStore {
        &self.users
    }

    /// Authenticates the request's bearer token and checks `permission`;
    /// only an accepted request records its user.
    pub async fn authorize(
        &self,
        headers: &HeaderMap,
        permission: &dyn Permission,
    ) -> Result<AuthenticatedUser, AuthError> {
        let token = bearer::bearer_token(headers)?;
        let verified = self.validator.validate(token).await?;
        let principal = &verified.principal;
        permission
            .check(principal)
            .map_err(|denied| AuthError::InsufficientScope {
                required: denied.required.join(" "),
            })?;
        let id = match verified.user.get() {
            // A repeat of a token already recorded: no lookup, no write.
            Some(known) if self.users.is_current(known) => {
                self.users.touch_if_due(&principal.sub, known);
                known.id()
            }
            _ => {
                let known = self.users.record_visit(&principal.sub).await.map_err(|err| {
                    log::error!("cannot record user: {err}");
                    AuthError::DatabaseUnavailable
                })?;
                let id = known.id();
                let _ = verified.user.set(known);
                id
            }
        };
        Ok(AuthenticatedUser { id, token: verified })
    }
}
