//! The verdict: the server's own outcome in one sentence, and, for a
//! refusal the diagnosis did not foresee, a finding in the server's words
//! (with the fix where one is known). The table of refusals also says
//! which come before the signature is checked.

use crate::auth::doctor::findings::{Doctor, Explanation, Status};
use crate::auth::error::AuthError;
use crate::auth::token::Scheme;

/// The words of a refusal, without the `invalid token: ` kind.
pub(super) fn words(refusal: &AuthError) -> String {
    match refusal {
        AuthError::InvalidToken(why) => why.clone(),
        AuthError::InvalidRequest(why) => (*why).to_owned(),
        other => other.to_string(),
    }
}

/// What each refusal of the validator and the guard is about, and the fix
/// for those the diagnosis cannot foresee (they need the keys, or the exact
/// JSON the server reads). Matched on the start of the refusal's words.
pub(super) const REFUSALS: &[(&str, &str, Option<&str>)] = &[
    ("token too large", "input", None),
    ("empty access token", "input", None),
    ("malformed access token", "input", None),
    ("Authorization header is not visible ASCII", "input", None),
    (
        "malformed token: header is not a JOSE",
        "header",
        Some(
            "the header is not what the server reads: alg, and kid and typ when present, strings, each given once",
        ),
    ),
    ("malformed token", "shape", None),
    ("algorithm not allowed", "alg", None),
    ("unexpected token type", "typ", None),
    ("token type (typ)", "typ", None),
    ("unsupported critical header", "crit", None),
    ("token has no kid", "kid", None),
    (
        "malformed claims",
        "claims",
        Some(
            "a claim the server reads is given twice or has the wrong type (exp a whole number; nbf, iat numbers; iss, sub, scope strings; aud a string or a list of strings; permissions a list of strings; cnf an object): no Auth0 token looks like this",
        ),
    ),
    ("missing required claim: iss", "iss", None),
    ("unexpected issuer", "iss", None),
    (
        "unknown signing key",
        "kid",
        Some(
            "the issuer does not publish a key with the token's kid: the token was signed by another tenant, or by a key since rotated out; get a new token, and check that AUTH0_DOMAIN names the tenant that issued it",
        ),
    ),
    (
        "invalid signature",
        "signature",
        Some(
            "the signature does not verify with the issuer's key of that kid: the token was changed after it was signed, or signed by someone else under that kid",
        ),
    ),
    (
        "signing keys unavailable",
        "keys",
        Some(
            "the issuer's signing keys could not be fetched (RUST_LOG=warn says why): the server answers 503 until it can; check AUTH0_DOMAIN, AUTH0_ISSUER or AUTH0_JWKS_URL, and the network",
        ),
    ),
    ("missing required claim: exp", "exp", None),
    ("token expired", "exp", None),
    ("token expires too far", "exp", None),
    ("missing required claim: aud", "aud", None),
    ("unexpected audience", "aud", None),
    ("token not yet valid", "nbf", None),
    ("an ID token", "id-token", None),
    ("missing required claim: client_id", "profile", None),
    ("missing required claim: jti", "profile", None),
    ("missing required claim: iat", "profile", None),
    ("unsupported confirmation claim", "cnf", None),
    ("token issued in the future", "iat", None),
    ("missing required claim: sub", "sub", None),
    ("empty sub", "sub", None),
    ("blank sub", "sub", None),
    ("sub claim", "sub", None),
    ("the DPoP scheme is not accepted", "dpop", None),
    ("this API accepts DPoP-bound tokens only", "dpop", None),
    ("this token is bound", "dpop", None),
    ("this token is not bound", "dpop", None),
];

/// Topics whose refusals come before the signature is checked.
pub(super) const BEFORE_SIGNATURE: &[&str] = &[
    "input",
    "shape",
    "header",
    "alg",
    "typ",
    "crit",
    "kid",
    "claims",
    "iss",
    "keys",
    "signature",
];

/// The topic of a refusal, and the fix when the diagnosis has none.
pub(super) fn topic_of(refusal: &AuthError) -> (&'static str, Option<&'static str>) {
    let words = words(refusal);
    REFUSALS
        .iter()
        .find(|(start, _, _)| words.starts_with(start))
        .map_or(("token", None), |(_, topic, advice)| (topic, *advice))
}

pub(super) fn refused_before_signature(refusal: &AuthError) -> bool {
    BEFORE_SIGNATURE.contains(&topic_of(refusal).0)
}

impl Doctor<'_> {
    /// The explanation, with the server's outcome: `Ok` with the scheme
    /// the token is accepted with, or the refusal.
    pub(super) fn verdict(
        mut self,
        outcome: Result<Scheme, AuthError>,
        signature_checked: bool,
    ) -> Explanation {
        let verdict = match &outcome {
            Ok(scheme) => {
                let scheme = match scheme {
                    Scheme::Bearer => "with the Bearer scheme",
                    Scheme::Dpop => "with the DPoP scheme and a valid proof",
                };
                if signature_checked {
                    format!("accepted: the server would accept this token {scheme}")
                } else {
                    format!(
                        "accepted if its signature is valid: every check but the key and the signature passes {scheme} (use --fetch to check those)"
                    )
                }
            }
            Err(refusal) => {
                let (topic, advice) = topic_of(refusal);
                let foreseen = self
                    .findings
                    .iter()
                    .any(|finding| finding.status == Status::Problem && finding.topic == topic);
                if !foreseen {
                    let text = advice.map_or_else(|| words(refusal), str::to_owned);
                    self.problem(topic, text);
                }
                let status = match refusal {
                    AuthError::KeysUnavailable { .. } => 503,
                    _ => 401,
                };
                format!("refused: the server would answer {status} ({refusal})")
            }
        };
        Explanation {
            findings: self.findings,
            accepted: outcome.is_ok(),
            signature_checked,
            verdict,
        }
    }
}
