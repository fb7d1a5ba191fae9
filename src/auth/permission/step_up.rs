//! Step-up authentication (RFC 9470): a route that needs more than a valid
//! token, namely a login of a given class (`acr`) or a recent one
//! (`auth_time`). A token that falls short is refused 401
//! `insufficient_user_authentication`, whose challenge names the
//! `acr_values` and `max_age` to ask the authorization server for: the
//! client sends the user through a new login and retries.
//!
//! ```
//! use actix_auth0_api::auth::{HasPermission, Permission, RequireAuthentication, require};
//! use actix_web::web;
//!
//! const MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
//!
//! async fn transfer() -> &'static str {
//!     "done"
//! }
//!
//! // A multi-factor login within the last five minutes, and the permission.
//! let transfers = web::resource("/transfers").route(web::get().to(transfer).wrap(require(
//!     RequireAuthentication::acr([MFA]).max_age(300).and(HasPermission::new("transfer:funds")),
//! )));
//! ```

use serde_json::Value;

use crate::auth::permission::{Denied, Permission};
use crate::auth::token::{Principal, unix_now};

/// How far in the future an `auth_time` may lie: the clock skew between the
/// authorization server and this API that `AUTH0_LEEWAY_SECS` defaults to.
const FUTURE_SKEW_SECS: u64 = 60;

/// What authentication a route needs beyond a valid token: an
/// authentication context class among `acr_values`, within `max_age`
/// seconds (RFC 9470 section 3's challenge parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StepUp {
    /// The `acr` values accepted (none: any).
    pub acr_values: Vec<String>,
    /// How many seconds ago the login may have been, at most.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
}

/// The token's login must be of one of the given classes (`acr`), and recent
/// enough (`auth_time`), when those are asked for.
#[derive(Debug, Clone)]
pub struct RequireAuthentication {
    needed: StepUp,
    acr_claim: String,
    auth_time_claim: String,
}

impl RequireAuthentication {
    /// A login whose `acr` is one of `values`, compared exactly.
    pub fn acr<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            needed: StepUp {
                acr_values: values.into_iter().map(Into::into).collect(),
                max_age: None,
            },
            acr_claim: "acr".into(),
            auth_time_claim: "auth_time".into(),
        }
    }

    /// A login at most `seconds` ago, of any class.
    pub fn login_within(seconds: u64) -> Self {
        Self::acr(Vec::<String>::new()).max_age(seconds)
    }

    /// Also a login at most `seconds` ago (`auth_time`).
    pub fn max_age(mut self, seconds: u64) -> Self {
        self.needed.max_age = Some(seconds);
        self
    }

    /// Reads the class from the claim `name` instead of `acr` (an issuer
    /// that puts it in a namespaced claim, as an Auth0 Action can).
    pub fn acr_claim(mut self, name: impl Into<String>) -> Self {
        self.acr_claim = name.into();
        self
    }

    /// Reads the login time from the claim `name` instead of `auth_time`.
    pub fn auth_time_claim(mut self, name: impl Into<String>) -> Self {
        self.auth_time_claim = name.into();
        self
    }

    /// Why the token's login falls short, if it does.
    fn shortfall(&self, principal: &Principal) -> Option<String> {
        let claims = principal.claims();
        if !self.needed.acr_values.is_empty() {
            let name = &self.acr_claim;
            match claims.get(name) {
                None => return Some(format!("the token has no {name} claim (authentication class)")),
                Some(Value::String(acr)) if self.needed.acr_values.contains(acr) => {}
                Some(Value::String(_)) => {
                    return Some(format!(
                        "requires an authentication of class {} ({name})",
                        self.needed.acr_values.join(" or ")
                    ));
                }
                Some(_) => return Some(format!("the {name} claim is not a string")),
            }
        }
        if let Some(max_age) = self.needed.max_age {
            let name = &self.auth_time_claim;
            let auth_time = match claims.get(name) {
                None => return Some(format!("the token has no {name} claim (time of login)")),
                Some(Value::Number(number)) => number.as_u64().or_else(|| {
                    number
                        .as_f64()
                        .filter(|t| t.is_finite() && *t >= 0.0)
                        .map(|t| t as u64)
                }),
                Some(_) => None,
            };
            let Some(auth_time) = auth_time else {
                return Some(format!("the {name} claim is not a time (seconds since 1970)"));
            };
            let now = unix_now();
            if auth_time > now.saturating_add(FUTURE_SKEW_SECS) {
                return Some(format!("the {name} claim is in the future"));
            }
            if now.saturating_sub(auth_time) > max_age {
                return Some(format!(
                    "requires a login within the last {max_age} seconds ({name})"
                ));
            }
        }
        None
    }
}

impl Permission for RequireAuthentication {
    fn check(&self, principal: &Principal) -> Result<(), Denied> {
        match self.shortfall(principal) {
            None => Ok(()),
            Some(why) => Err(Denied::authentication(self.needed.clone(), why)),
        }
    }

    fn alternatives(&self) -> Vec<Vec<String>> {
        vec![Vec::new()]
    }

    fn step_up(&self) -> Option<StepUp> {
        Some(self.needed.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::GrantSource;
    use serde_json::json;

    const MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

    fn principal(claims: Value) -> Principal {
        Principal::new(
            "https://tenant.example.com/".into(),
            "auth0|1".into(),
            Default::default(),
            GrantSource::Configured,
            claims.to_string().into_bytes(),
        )
    }

    fn refusal(rule: &RequireAuthentication, claims: Value) -> Option<String> {
        rule.check(&principal(claims))
            .err()
            .map(|denied| denied.authentication.expect("a step-up refusal").why)
    }

    #[test]
    fn hostile_acr_and_auth_time_are_refused() {
        let rule = RequireAuthentication::acr([MFA]).max_age(300);
        let now = unix_now();
        let cases = [
            (json!({"auth_time": now}), "no acr claim"),
            (json!({"acr": 1, "auth_time": now}), "not a string"),
            (json!({"acr": [MFA], "auth_time": now}), "not a string"),
            (json!({"acr": null, "auth_time": now}), "not a string"),
            (json!({"acr": "pwd", "auth_time": now}), "class"),
            (json!({"acr": MFA.to_uppercase(), "auth_time": now}), "class"),
            (json!({"acr": MFA}), "no auth_time"),
            (json!({"acr": MFA, "auth_time": now.to_string()}), "not a time"),
            (json!({"acr": MFA, "auth_time": -1}), "not a time"),
            (json!({"acr": MFA, "auth_time": now + 3600}), "in the future"),
            (
                json!({"acr": MFA, "auth_time": now - 301}),
                "within the last 300 seconds",
            ),
        ];
        for (claims, why) in cases {
            let refused = refusal(&rule, claims.clone());
            assert!(
                refused.as_deref().is_some_and(|r| r.contains(why)),
                "{claims}: {refused:?}"
            );
        }
    }

    #[test]
    fn a_recent_login_of_the_class_passes() {
        let rule = RequireAuthentication::acr([MFA, "phr"]).max_age(300);
        let now = unix_now();
        assert_eq!(refusal(&rule, json!({"acr": MFA, "auth_time": now - 299})), None);
        assert_eq!(
            refusal(&rule, json!({"acr": "phr", "auth_time": now as f64 + 0.5})),
            None
        );
        // Either requirement alone, and claims of other names.
        assert_eq!(
            refusal(&RequireAuthentication::acr([MFA]), json!({"acr": MFA})),
            None
        );
        assert_eq!(
            refusal(
                &RequireAuthentication::login_within(60),
                json!({"auth_time": now})
            ),
            None
        );
        let namespaced = RequireAuthentication::acr([MFA])
            .max_age(60)
            .acr_claim("https://example.com/acr")
            .auth_time_claim("https://example.com/auth_time");
        assert_eq!(
            refusal(
                &namespaced,
                json!({"https://example.com/acr": MFA, "https://example.com/auth_time": now})
            ),
            None
        );
        assert!(refusal(&namespaced, json!({"acr": MFA, "auth_time": now})).is_some());
    }

    #[test]
    fn the_challenge_names_what_a_new_login_must_bring() {
        let rule = RequireAuthentication::acr([MFA]).max_age(300);
        let denied = rule.check(&principal(json!({}))).unwrap_err();
        let authentication = denied.authentication.unwrap();
        assert_eq!(
            authentication.needed,
            StepUp {
                acr_values: vec![MFA.into()],
                max_age: Some(300)
            }
        );
        assert!(denied.required.is_empty() && denied.conditions.is_empty());
        assert_eq!(rule.step_up(), Some(authentication.needed));
    }
}
