//! The token doctor behind `explain`: what the server would do with one
//! access token under the current settings, and why, in words that name
//! the fix.
//!
//! Two parts that never decide alone. The *verdict* is the server's own:
//! the validator's path (`verify` when the issuer's keys can be fetched,
//! else every check but the key and the signature), then the guard's rules
//! for the scheme a token may use (the same functions the guard calls).
//! The *diagnosis* reads the token's parts with the same JOSE rules
//! (the `jose` module) and compares each claim with the
//! settings, to say what is wrong and how to fix it; a refusal it did not
//! foresee is reported in the validator's words.
//!
//! The diagnosis, in the order the server checks: `input` (the scheme and
//! size), `shape` (opaque, JWE or JWS), `header`, `claims` (with `times`,
//! `binding` and `permissions`); `findings` gathers what each finds,
//! `verdict` concludes, `shown` prints values.
//!
//! A token is attacker-controlled: every value taken from it is printed
//! quoted, escaped (control and invisible characters as `\u{..}`) and cut
//! to 64 characters; the signature is never printed, nor the whole token.

mod binding;
mod claims;
mod findings;
mod header;
mod input;
mod permissions;
mod shape;
mod shown;
mod times;
mod verdict;

pub use findings::{Explanation, Finding, Status};

use crate::auth::doctor::findings::Doctor;
use crate::auth::doctor::verdict::refused_before_signature;
use crate::auth::keys::IssuerKeys;
use crate::auth::scheme_rules::{binding_matches, scheme_admitted};
use crate::auth::token::{Scheme, unix_now};
use crate::auth::validator::TokenValidator;
use crate::config::Settings;

/// The key fetcher could not be set up (the TLS backend of the HTTP client).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the signing-key fetcher: {0}")]
pub struct ExplainError(#[from] reqwest::Error);

/// Explains `input` (a token, optionally after `Bearer ` or `DPoP `) under
/// `settings`. With `fetch`, the signing keys of the issuer the token names
/// are fetched once, as the server fetches them (its key store, its
/// timeouts), and the token goes through the server's full check;
/// without, nothing is fetched and the key and signature are left
/// unchecked.
pub async fn explain(input: &[u8], settings: &Settings, fetch: bool) -> Result<Explanation, ExplainError> {
    let mut doctor = Doctor {
        settings,
        now: unix_now(),
        findings: Vec::new(),
    };
    let (token, scheme) = match doctor.input(input) {
        Ok(read) => read,
        Err(refusal) => return Ok(doctor.verdict(Err(refusal), false)),
    };
    let cnf_jkt = doctor.diagnose(token);
    let keys = IssuerKeys::new(
        &settings.validation.issuers,
        settings.jwks_url.as_ref(),
        &settings.keys,
    )?;
    let validator = TokenValidator::new(&settings.validation, &keys);
    let validated = if fetch {
        validator.verify(token).await.map(|verified| verified.jkt)
    } else {
        validator.check_unsigned(token).map(|checked| checked.jkt)
    };
    let (bound, past_signature) = match &validated {
        Ok(jkt) => (jkt.is_some(), true),
        Err(refusal) => (cnf_jkt, !refused_before_signature(refusal)),
    };
    if !fetch && past_signature {
        doctor.add(
            Status::Unchecked,
            "signature",
            "signature not checked offline (use --fetch), nor whether the issuer publishes the token's kid",
        );
    }
    let signature_checked = fetch && past_signature;
    // The guard's order: the scheme first, then the token, then its binding.
    let scheme = scheme.unwrap_or(if bound { Scheme::Dpop } else { Scheme::Bearer });
    let outcome = scheme_admitted(scheme, settings.dpop.mode)
        .and(validated)
        .and_then(|jkt| binding_matches(scheme, jkt.is_some()).map(|()| scheme));
    if signature_checked {
        doctor.add(
            Status::Ok,
            "signature",
            "verified with the issuer's published key of that kid",
        );
    }
    if outcome.as_ref().is_ok_and(|scheme| *scheme == Scheme::Dpop) {
        doctor.add(
            Status::Unchecked,
            "dpop",
            "the DPoP proof comes with each request (its method, URL, time, token hash and key are checked then): not checked here",
        );
    }
    Ok(doctor.verdict(outcome, signature_checked))
}

#[cfg(test)]
mod tests;
