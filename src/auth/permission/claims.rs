//! Permission classes over the token's claims, composable with the others
//! (`.and`, `.or`): a claim equal to a value, a claim including values, or
//! any rule written as a closure over the verified claims.
//!
//! A failed claim check answers 403 `insufficient_scope`, not 401
//! `invalid_token` as Auth0's express SDK does: the token is valid, and a new
//! token for the same user would carry the same claims, so a 401 (which
//! tells a client to get new credentials) would only send it round in a
//! loop. The refusal says which condition failed, never the claim's value.
//!
//! ```
//! use actix_auth0_api::auth::{ClaimEquals, ClaimIncludes, ClaimCheck, HasPermission, Permission, require};
//! use actix_web::web;
//!
//! async fn report() -> &'static str {
//!     "quarterly report"
//! }
//!
//! let finance = require(
//!     ClaimIncludes::new("https://example.com/roles", ["finance"])
//!         .and(ClaimEquals::new("org_id", "org_acme"))
//!         .or(HasPermission::new("read:all-reports")),
//! );
//! let verified_email = require(ClaimCheck::new("a verified email", |claims| {
//!     claims.get("email_verified") == Some(&serde_json::Value::Bool(true))
//! }));
//! let _ = web::resource("/report").route(web::get().to(report).wrap(finance));
//! # let _ = verified_email;
//! ```

use serde_json::Value;

use crate::auth::permission::{Denied, Permission};
use crate::auth::token::{Claims, Principal};

/// The claim `name` must equal `value` exactly (JSON equality).
#[derive(Debug, Clone)]
pub struct ClaimEquals {
    name: String,
    value: Value,
}

impl ClaimEquals {
    /// Requires the claim `name` to be `value`.
    pub fn new(name: impl Into<String>, value: impl Into<Value>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Claim conditions are not permissions: to what the API publishes, a
/// claim-guarded route needs a valid token, whatever its scopes.
fn any_token() -> Vec<Vec<String>> {
    vec![Vec::new()]
}

impl Permission for ClaimEquals {
    fn alternatives(&self) -> Vec<Vec<String>> {
        any_token()
    }

    fn check(&self, principal: &Principal) -> Result<(), Denied> {
        if principal.claims().get(&self.name) == Some(&self.value) {
            Ok(())
        } else {
            Err(Denied::condition(format!(
                "claim {} equal to {}",
                self.name, self.value
            )))
        }
    }
}

/// The claim `name` must include every one of `values`: as entries of an
/// array of strings, or as words of a space-separated string (as `scope`).
#[derive(Debug, Clone)]
pub struct ClaimIncludes {
    name: String,
    values: Vec<String>,
}

impl ClaimIncludes {
    /// Requires the claim `name` to include all of `values`.
    pub fn new(name: impl Into<String>, values: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            name: name.into(),
            values: values.into_iter().map(Into::into).collect(),
        }
    }
}

impl Permission for ClaimIncludes {
    fn alternatives(&self) -> Vec<Vec<String>> {
        any_token()
    }

    fn check(&self, principal: &Principal) -> Result<(), Denied> {
        let included = |value: &str| match principal.claims().get(&self.name) {
            Some(Value::Array(entries)) => entries.iter().any(|entry| entry.as_str() == Some(value)),
            Some(Value::String(words)) => words.split(' ').any(|word| word == value),
            _ => false,
        };
        if self.values.iter().all(|value| included(value)) {
            Ok(())
        } else {
            Err(Denied::condition(format!(
                "claim {} to include {}",
                self.name,
                self.values.join(" ")
            )))
        }
    }
}

/// Any rule over the verified claims; `description` says what it requires,
/// for the refusal.
pub struct ClaimCheck<F> {
    description: String,
    check: F,
}

impl<F: Fn(&Claims) -> bool> ClaimCheck<F> {
    /// Requires `check` to hold; a refusal says "requires `description`".
    pub fn new(description: impl Into<String>, check: F) -> Self {
        Self {
            description: description.into(),
            check,
        }
    }
}

impl<F> std::fmt::Debug for ClaimCheck<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ClaimCheck").field(&self.description).finish()
    }
}

impl<F: Fn(&Claims) -> bool> Permission for ClaimCheck<F> {
    fn alternatives(&self) -> Vec<Vec<String>> {
        any_token()
    }

    fn check(&self, principal: &Principal) -> Result<(), Denied> {
        if (self.check)(principal.claims()) {
            Ok(())
        } else {
            Err(Denied::condition(self.description.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn principal(claims: Value) -> Principal {
        Principal::new(
            "https://tenant.example.com/".into(),
            "auth0|1".into(),
            Default::default(),
            crate::auth::GrantSource::Configured,
            claims.to_string().into_bytes(),
        )
    }

    #[test]
    fn claim_equals_compares_json_values_exactly() {
        let rule = ClaimEquals::new("org_id", "org_acme");
        assert!(rule.check(&principal(json!({"org_id": "org_acme"}))).is_ok());
        for other in [
            json!({"org_id": "org_acme "}),
            json!({"org_id": ["org_acme"]}),
            json!({}),
        ] {
            assert!(rule.check(&principal(other.clone())).is_err(), "{other}");
        }
        let flag = ClaimEquals::new("email_verified", true);
        assert!(flag.check(&principal(json!({"email_verified": true}))).is_ok());
        assert!(flag.check(&principal(json!({"email_verified": "true"}))).is_err());
    }

    #[test]
    fn claim_includes_reads_arrays_and_space_separated_strings() {
        let rule = ClaimIncludes::new("https://example.com/roles", ["admin", "finance"]);
        let ok = [
            json!({"https://example.com/roles": ["finance", "x", "admin"]}),
            json!({"https://example.com/roles": "admin finance"}),
        ];
        for claims in ok {
            assert!(rule.check(&principal(claims.clone())).is_ok(), "{claims}");
        }
        let refused = [
            json!({"https://example.com/roles": ["admin"]}),
            json!({"https://example.com/roles": "admin,finance"}),
            json!({"https://example.com/roles": [["admin", "finance"]]}),
            json!({"https://example.com/roles": {"admin": true, "finance": true}}),
            json!({"roles": ["admin", "finance"]}),
        ];
        for claims in refused {
            let denied = rule.check(&principal(claims.clone())).unwrap_err();
            assert!(denied.required.is_empty(), "not a scope");
            assert_eq!(
                denied.conditions,
                ["claim https://example.com/roles to include admin finance"]
            );
        }
    }

    #[test]
    fn claim_checks_compose_with_permissions() {
        use crate::auth::HasPermission;
        let rule = ClaimCheck::new("a verified email", |claims: &Claims| {
            claims.get("email_verified") == Some(&Value::Bool(true))
        })
        .or(HasPermission::new("admin"));
        assert!(rule.check(&principal(json!({"email_verified": true}))).is_ok());
        assert_eq!(
            rule.check(&principal(json!({}))).unwrap_err().conditions,
            ["a verified email"]
        );
    }
}
