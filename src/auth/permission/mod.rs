//! Permission classes, in the spirit of Django REST Framework's
//! `permission_classes`: a route declares what it needs where it is
//! registered, and handlers never check scopes themselves.
//!
//! See [`require`](crate::auth::require) for how a route declares its class.
//! This file holds the rule itself, its combinators and the classes over
//! permissions; [`claims`] holds the classes over other claims, and
//! [`step_up`] the class over how the user logged in (RFC 9470).

mod claims;
mod step_up;

pub use claims::{ClaimCheck, ClaimEquals, ClaimIncludes};
pub use step_up::{RequireAuthentication, StepUp};

use crate::auth::token::Principal;

/// A refusal: what would have satisfied the check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Denied {
    /// Permission names that, all together, the route would accept (RFC
    /// 6750's `scope` lists what is needed, all of it).
    pub required: Vec<String>,
    /// Other conditions, in words ("claim `org_id` equal to \"acme\""),
    /// for the refusal's description.
    pub conditions: Vec<String>,
    /// The login a new token must come from, when that is what fell short
    /// (answered 401 `insufficient_user_authentication` when nothing
    /// else did).
    pub authentication: Option<InsufficientAuthentication>,
}

/// A login that falls short of what a route needs (RFC 9470).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsufficientAuthentication {
    /// What a new login must bring.
    pub needed: StepUp,
    /// What fell short, in words.
    pub why: String,
}

impl Denied {
    /// Refused for lack of `permission`.
    pub fn permission(permission: impl Into<String>) -> Self {
        Self {
            required: vec![permission.into()],
            ..Self::default()
        }
    }

    /// Refused because `condition` does not hold.
    pub fn condition(condition: impl Into<String>) -> Self {
        Self {
            conditions: vec![condition.into()],
            ..Self::default()
        }
    }

    /// Refused because the login falls short of `needed`, as `why` says.
    pub fn authentication(needed: StepUp, why: impl Into<String>) -> Self {
        Self {
            authentication: Some(InsufficientAuthentication {
                needed,
                why: why.into(),
            }),
            ..Self::default()
        }
    }
}

/// A rule deciding whether an authenticated principal may use a route.
pub trait Permission {
    /// `Ok` when `principal` may proceed.
    fn check(&self, principal: &Principal) -> Result<(), Denied>;

    /// The rule as data, for what the API publishes about itself (the
    /// OpenAPI document's `security`, the protected resource metadata's
    /// `scopes_supported`): alternatives, each a set of permissions that is
    /// enough on its own; an empty set means any valid token. It must
    /// agree with [`check`](Permission::check).
    fn alternatives(&self) -> Vec<Vec<String>>;

    /// The login the rule needs beyond a valid token (RFC 9470), for what
    /// the API publishes; `None` for most rules.
    fn step_up(&self) -> Option<StepUp> {
        None
    }

    /// Both this rule and `other` must pass.
    fn and<P: Permission>(self, other: P) -> AllOf<Self, P>
    where
        Self: Sized,
    {
        AllOf(self, other)
    }

    /// Either this rule or `other` must pass.
    fn or<P: Permission>(self, other: P) -> AnyOf<Self, P>
    where
        Self: Sized,
    {
        AnyOf(self, other)
    }
}

/// Any valid token will do.
#[derive(Debug, Clone, Copy, Default)]
pub struct IsAuthenticated;

impl Permission for IsAuthenticated {
    fn check(&self, _principal: &Principal) -> Result<(), Denied> {
        Ok(())
    }

    fn alternatives(&self) -> Vec<Vec<String>> {
        vec![Vec::new()]
    }
}

/// The token must grant this permission (through `scope` or `permissions`).
#[derive(Debug, Clone)]
pub struct HasPermission(String);

impl HasPermission {
    /// Requires `permission`, matched exactly and case-sensitively.
    pub fn new(permission: impl Into<String>) -> Self {
        Self(permission.into())
    }
}

impl Permission for HasPermission {
    fn check(&self, principal: &Principal) -> Result<(), Denied> {
        if principal.has_permission(&self.0) {
            Ok(())
        } else {
            Err(Denied::permission(&self.0))
        }
    }

    fn alternatives(&self) -> Vec<Vec<String>> {
        vec![vec![self.0.clone()]]
    }
}

/// Passes when both rules pass; reports everything still missing.
#[derive(Debug, Clone)]
pub struct AllOf<A, B>(pub A, pub B);

impl<A: Permission, B: Permission> Permission for AllOf<A, B> {
    fn check(&self, principal: &Principal) -> Result<(), Denied> {
        match (self.0.check(principal), self.1.check(principal)) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(denied), Ok(())) | (Ok(()), Err(denied)) => Err(denied),
            (Err(mut first), Err(second)) => {
                first.required.extend(second.required);
                first.conditions.extend(second.conditions);
                first.authentication = first.authentication.or(second.authentication);
                Err(first)
            }
        }
    }

    /// Every alternative of one rule joined with every alternative of the other.
    fn alternatives(&self) -> Vec<Vec<String>> {
        let second = self.1.alternatives();
        let mut joined = Vec::new();
        for first in self.0.alternatives() {
            for other in &second {
                let mut both = first.clone();
                both.extend(other.iter().filter(|p| !first.contains(p)).cloned());
                joined.push(both);
            }
        }
        joined
    }

    fn step_up(&self) -> Option<StepUp> {
        self.0.step_up().or_else(|| self.1.step_up())
    }
}

/// Passes when either rule passes.
#[derive(Debug, Clone)]
pub struct AnyOf<A, B>(pub A, pub B);

impl<A: Permission, B: Permission> Permission for AnyOf<A, B> {
    fn check(&self, principal: &Principal) -> Result<(), Denied> {
        // A challenge cannot say "one of": it names the first alternative,
        // which is enough on its own.
        match self.0.check(principal) {
            Ok(()) => Ok(()),
            Err(first) => self.1.check(principal).map_err(|_| first),
        }
    }

    fn alternatives(&self) -> Vec<Vec<String>> {
        let mut alternatives = self.0.alternatives();
        alternatives.extend(self.1.alternatives());
        alternatives
    }

    /// Needed only when both alternatives need it.
    fn step_up(&self) -> Option<StepUp> {
        self.0.step_up().filter(|_| self.1.step_up().is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(permissions: &[&str]) -> Principal {
        Principal::new(
            "https://tenant.example.com/".into(),
            "auth0|1".into(),
            permissions.iter().map(|p| p.to_string()).collect(),
            crate::auth::GrantSource::Configured,
            b"{}".to_vec(),
        )
    }

    #[test]
    fn has_permission_matches_exactly() {
        let rule = HasPermission::new("read:messages");
        assert!(rule.check(&principal(&["read:messages"])).is_ok());
        for near_miss in ["Read:messages", "read:message", "read:messages ", "read:*"] {
            assert!(rule.check(&principal(&[near_miss])).is_err(), "{near_miss}");
        }
    }

    #[test]
    fn combinators_compose() {
        let both = HasPermission::new("a").and(HasPermission::new("b"));
        assert!(both.check(&principal(&["a", "b"])).is_ok());
        assert_eq!(both.check(&principal(&[])).unwrap_err().required, vec!["a", "b"]);
        assert_eq!(both.check(&principal(&["a"])).unwrap_err().required, vec!["b"]);

        let either = HasPermission::new("a").or(HasPermission::new("b"));
        assert!(either.check(&principal(&["b"])).is_ok());
        assert_eq!(
            either.check(&principal(&["c"])).unwrap_err().required,
            vec!["a"],
            "one sufficient alternative, not both"
        );

        assert!(
            IsAuthenticated
                .and(HasPermission::new("a"))
                .check(&principal(&["a"]))
                .is_ok()
        );
    }

    #[test]
    fn alternatives_agree_with_check() {
        let rule = IsAuthenticated.and(
            HasPermission::new("a")
                .and(HasPermission::new("b"))
                .or(HasPermission::new("c")),
        );
        assert_eq!(rule.alternatives(), vec![vec!["a", "b"], vec!["c"]]);
        for alternative in rule.alternatives() {
            let granted: Vec<&str> = alternative.iter().map(String::as_str).collect();
            assert!(rule.check(&principal(&granted)).is_ok(), "{granted:?}");
        }
        assert!(rule.check(&principal(&["a"])).is_err());
        assert_eq!(IsAuthenticated.alternatives(), vec![Vec::<String>::new()]);
    }
}
