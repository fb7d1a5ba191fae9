//! `exp`, `nbf` and `iat` against now and the leeway, as the validator
//! compares them, with the fix for a token out of its time or a clock
//! out of step.

use serde_json::{Map, Value};

use crate::auth::doctor::claims::claim;
use crate::auth::doctor::findings::{Doctor, Status};
use crate::auth::doctor::shown::{at, span};
use crate::auth::validator::{MAX_LIFETIME_SECS, seconds};

impl Doctor<'_> {
    /// `exp`, `nbf`, `iat` against now and the leeway, as the validator
    /// compares them.
    pub(super) fn times(&mut self, claims: &Map<String, Value>) {
        let leeway = self.leeway();
        let now = self.now;
        match claim(claims, "exp").map(Value::as_u64) {
            None => self.problem("exp", "no exp: the server requires an expiry"),
            Some(None) => self.problem("claims", "exp is not a whole number of seconds since 1970"),
            Some(Some(exp)) if exp < now.saturating_sub(leeway) => self.problem(
                "exp",
                format!(
                    "expired {} ago ({}), beyond the {leeway} s of leeway (AUTH0_LEEWAY_SECS): get a new token",
                    span(now - exp),
                    at(exp)
                ),
            ),
            Some(Some(exp)) if exp < now => self.add(
                Status::Note,
                "exp",
                format!(
                    "expired {} ago ({}), within the {leeway} s of leeway (AUTH0_LEEWAY_SECS): accepted for {} more",
                    span(now - exp),
                    at(exp),
                    span(exp + leeway - now)
                ),
            ),
            Some(Some(exp)) if exp > now.saturating_add(MAX_LIFETIME_SECS) => self.problem(
                "exp",
                format!(
                    "expires in {} ({}): more than a year ahead, which no Auth0 access token does",
                    span(exp - now),
                    at(exp)
                ),
            ),
            Some(Some(exp)) => self.add(
                Status::Ok,
                "exp",
                format!("expires in {} ({})", span(exp - now), at(exp)),
            ),
        }
        let skew = "is this machine's clock behind the issuer's? Sync the clocks (NTP); AUTH0_LEEWAY_SECS (at most 300) tolerates a little";
        match claim(claims, "nbf").map(|nbf| nbf.as_number().and_then(|nbf| seconds(nbf).ok())) {
            None => {}
            Some(None) => self.problem("claims", "nbf is not a number of seconds since 1970"),
            Some(Some(nbf)) if nbf > now.saturating_add(leeway) => self.problem(
                "nbf",
                format!(
                    "not valid for another {} ({}), beyond the {leeway} s of leeway: {skew}",
                    span(nbf - now),
                    at(nbf)
                ),
            ),
            Some(Some(nbf)) => self.add(Status::Ok, "nbf", format!("valid since {}", at(nbf))),
        }
        match claim(claims, "iat") {
            None => {}
            Some(Value::Number(iat)) => match iat.as_f64() {
                Some(iat) if iat > now.saturating_add(leeway) as f64 => self.problem(
                    "iat",
                    format!(
                        "issued {} in the future, beyond the {leeway} s of leeway: {skew}",
                        span((iat - now as f64) as u64)
                    ),
                ),
                Some(iat) => {
                    let iat = iat.max(0.0) as u64;
                    self.add(Status::Ok, "iat", format!("issued {}", self.relative(iat)));
                }
                None => self.problem("claims", "iat is not a number"),
            },
            Some(_) => self.problem("claims", "iat is not a number"),
        }
    }

    /// `at` as "5m ago" or "in 5m", with its date.
    pub(super) fn relative(&self, at_secs: u64) -> String {
        if at_secs <= self.now {
            format!("{} ago ({})", span(self.now - at_secs), at(at_secs))
        } else {
            format!("in {} ({})", span(at_secs - self.now), at(at_secs))
        }
    }
}
