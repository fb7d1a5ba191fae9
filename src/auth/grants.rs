//! Which claims grant a token's permissions (`PERMISSIONS_FROM`), and
//! whether a token is a machine's (a client acting for itself) or a
//! user's, which decides under `auto` whether its `scope` counts.
//!
//! A client acting for itself is told apart two ways: Auth0's
//! `"gty": "client-credentials"`, and RFC 9068 section 2.2's `sub` equal to
//! `client_id` (the client is the subject). The second trusts the issuer
//! to keep clients' and users' `sub` values apart (RFC 9068 section 5); a
//! token with any other `gty` is a user's whatever its `client_id`.

use std::collections::BTreeSet;

use serde_json::Value;

/// Which claims grant permissions (`PERMISSIONS_FROM`).
///
/// On an Auth0 API with RBAC off, a user token's `scope` holds whatever the
/// client asked for, so trusting it lets anyone who can log in grant
/// themselves any permission. `Auto` trusts `scope` only where an
/// administrator granted it: machine tokens (client credentials).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PermissionsFrom {
    /// The `permissions` claim when the token has one (RBAC is on), else
    /// `scope` for a machine token (Auth0's `gty`, or RFC 9068's `sub`
    /// equal to `client_id`), else nothing.
    #[default]
    Auto,
    /// The `permissions` claim only.
    Permissions,
    /// The `scope` claim only.
    Scope,
    /// Both claims, together.
    Both,
}

impl std::str::FromStr for PermissionsFrom {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        match raw {
            "auto" => Ok(Self::Auto),
            "permissions" => Ok(Self::Permissions),
            "scope" => Ok(Self::Scope),
            "both" => Ok(Self::Both),
            _ => Err(format!("expected auto, permissions, scope or both, got {raw:?}")),
        }
    }
}

/// Where a token's permissions came from: what a refusal for a missing
/// permission advises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantSource {
    /// The claims `PERMISSIONS_FROM` names (`permissions`, `scope`, `both`).
    Configured,
    /// Under `auto`, the `permissions` claim.
    PermissionsClaim,
    /// Under `auto`, the `scope` of a machine token.
    MachineScope,
    /// Under `auto`, nothing: a user token without a `permissions` claim,
    /// whose `scope` its own client may have asked for.
    UserScopeIgnored,
}

/// The claims that grant permissions, as the validator read them.
pub(crate) struct GrantClaims<'a> {
    pub(crate) sub: &'a str,
    pub(crate) scope: Option<String>,
    pub(crate) permissions: Option<Vec<String>>,
    pub(crate) gty: Option<Value>,
    pub(crate) client_id: Option<Value>,
}

impl GrantClaims<'_> {
    /// True for a client acting for itself: `gty` is Auth0's
    /// `client-credentials`, or, without `gty`, `client_id` is a string
    /// equal to `sub` (RFC 9068 section 2.2).
    pub(crate) fn is_machine(&self) -> bool {
        match &self.gty {
            Some(gty) => gty == "client-credentials",
            None => self.client_id.as_ref().and_then(Value::as_str) == Some(self.sub),
        }
    }

    /// The permissions granted under `from`, and where they came from.
    pub(crate) fn granted(self, from: PermissionsFrom) -> (BTreeSet<String>, GrantSource) {
        let machine = self.is_machine();
        let scope = self
            .scope
            .iter()
            .flat_map(|scope| scope.split(' '))
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        match from {
            PermissionsFrom::Permissions => (
                self.permissions.into_iter().flatten().collect(),
                GrantSource::Configured,
            ),
            PermissionsFrom::Scope => (scope.collect(), GrantSource::Configured),
            PermissionsFrom::Both => (
                scope.chain(self.permissions.into_iter().flatten()).collect(),
                GrantSource::Configured,
            ),
            PermissionsFrom::Auto => match self.permissions {
                Some(permissions) => (permissions.into_iter().collect(), GrantSource::PermissionsClaim),
                None if machine => (scope.collect(), GrantSource::MachineScope),
                None => (BTreeSet::new(), GrantSource::UserScopeIgnored),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(sub: &str, extra: Value) -> GrantClaims<'_> {
        let get = |name: &str| extra.get(name).cloned();
        GrantClaims {
            sub,
            scope: get("scope").and_then(|s| s.as_str().map(str::to_owned)),
            permissions: get("permissions").and_then(|p| serde_json::from_value(p).ok()),
            gty: get("gty"),
            client_id: get("client_id"),
        }
    }

    fn auto(sub: &str, extra: Value) -> (Vec<String>, GrantSource) {
        let (granted, source) = claims(sub, extra).granted(PermissionsFrom::Auto);
        (granted.into_iter().collect(), source)
    }

    #[test]
    fn look_alike_machine_tokens_are_user_tokens() {
        let user = (Vec::new(), GrantSource::UserScopeIgnored);
        for (sub, extra) in [
            ("app", json!({"scope": "admin", "client_id": "App"})),
            ("app", json!({"scope": "admin", "client_id": ["app"]})),
            ("42", json!({"scope": "admin", "client_id": 42})),
            ("app", json!({"scope": "admin", "client_id": null})),
            ("app", json!({"scope": "admin", "client_id": "app ", })),
            (
                "app",
                json!({"scope": "admin", "client_id": "app", "gty": "password"}),
            ),
            ("app", json!({"scope": "admin", "client_id": "app", "gty": null})),
            ("user", json!({"scope": "admin", "client_id": "app"})),
            ("app", json!({"scope": "admin", "gty": "Client-Credentials"})),
            ("app", json!({"scope": "admin", "gty": ["client-credentials"]})),
        ] {
            assert_eq!(auto(sub, extra.clone()), user, "{sub} {extra}");
        }
    }

    #[test]
    fn machine_tokens_of_auth0_and_of_rfc_9068_are_granted_their_scope() {
        let machine = (vec!["admin".to_owned()], GrantSource::MachineScope);
        assert_eq!(
            auto(
                "app@clients",
                json!({"scope": "admin", "gty": "client-credentials"})
            ),
            machine
        );
        assert_eq!(
            auto("app", json!({"scope": "admin", "client_id": "app"})),
            machine
        );
        assert_eq!(
            auto(
                "app",
                json!({"scope": "admin", "client_id": "app", "gty": "client-credentials"})
            ),
            machine
        );
        // A permissions claim wins, for either.
        assert_eq!(
            auto(
                "app",
                json!({"scope": "admin", "client_id": "app", "permissions": ["read"]})
            ),
            (vec!["read".to_owned()], GrantSource::PermissionsClaim)
        );
    }
}
