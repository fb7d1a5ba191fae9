//! The token doctor behind `explain`: what the server would do with one
//! access token under the current settings, and why, in words that name
//! the fix.
//!
//! Two parts that never decide alone. The *verdict* is the server's own:
//! the validator's path (`verify` when the issuer's keys can be fetched,
//! else every check but the key and the signature), then the guard's rules
//! for the scheme a token may use (the same functions the guard calls).
//! The *diagnosis* reads the
//! token's parts with the same JOSE rules ([`jose`](crate::auth::jose))
//! and compares each claim with the settings, to say what is wrong and
//! how to fix it; a refusal it did not foresee is reported in the
//! validator's words.
//!
//! A token is attacker-controlled: every value taken from it is printed
//! quoted, escaped (control and invisible characters as `\u{..}`) and cut
//! to [`SHOWN_CHARS`] characters; the signature is never printed, nor the
//! whole token.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::authorization::check_b64token;
use crate::auth::error::AuthError;
use crate::auth::grants::GrantClaims;
use crate::auth::jose::{CompactJws, Malformed, check_header, within_depth};
use crate::auth::keys::IssuerKeys;
use crate::auth::scheme_rules::{binding_matches, scheme_admitted};
use crate::auth::token::{MAX_TOKEN_BYTES, Scheme, unix_now};
use crate::auth::validator::{MAX_LIFETIME_SECS, TokenValidator, check_sub, seconds, token_typ};
use crate::auth::{DpopMode, GrantSource, PermissionsFrom, TokenProfile};
use crate::config::Settings;

/// Most characters of a token's value printed; the rest is counted.
const SHOWN_CHARS: usize = 64;

/// How a tenant's API comes to issue RFC 9068 tokens.
const RFC9068_FIX: &str = "set the API's JSON Web Token profile to RFC 9068 in Auth0 (Dashboard > APIs > this API > Settings), or TOKEN_PROFILE=any";

/// Most permissions listed one by one.
const LISTED_PERMISSIONS: usize = 20;

/// What one finding says of the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// This check passes.
    Ok,
    /// The server refuses the token for this.
    Problem,
    /// Worth knowing; decides nothing.
    Note,
    /// Could not be checked here.
    Unchecked,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Problem => "problem",
            Self::Note => "note",
            Self::Unchecked => "unchecked",
        }
    }
}

/// One line of the explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Whether it passes, fails, informs or was not checked.
    pub status: Status,
    /// What it is about: a claim (`iss`, `exp`...) or a part (`header`...).
    pub topic: &'static str,
    /// What was found and, for a problem, the fix. Values from the token
    /// are escaped and cut.
    pub text: String,
}

/// What the server would do with a token, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The findings, in the order the server checks.
    pub findings: Vec<Finding>,
    /// True when the server would accept the token (offline: if its
    /// signature is valid).
    pub accepted: bool,
    /// True when the signature was checked against the issuer's keys.
    pub signature_checked: bool,
    /// The verdict in one sentence, with the server's own words on refusal.
    pub verdict: String,
}

impl Explanation {
    /// The explanation as lines of plain text: one per finding, then the verdict.
    pub fn lines(&self) -> Vec<String> {
        self.findings
            .iter()
            .map(|finding| format!("{:<9} {}: {}", finding.status.word(), finding.topic, finding.text))
            .chain([format!("verdict   {}", self.verdict)])
            .collect()
    }
}

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

/// The words of a refusal, without the `invalid token: ` kind.
fn words(refusal: &AuthError) -> String {
    match refusal {
        AuthError::InvalidToken(why) => why.clone(),
        AuthError::InvalidRequest(why) => (*why).to_owned(),
        other => other.to_string(),
    }
}

/// What each refusal of the validator and the guard is about, and the fix
/// for those the diagnosis cannot foresee (they need the keys, or the exact
/// JSON the server reads). Matched on the start of the refusal's words.
const REFUSALS: &[(&str, &str, Option<&str>)] = &[
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
const BEFORE_SIGNATURE: &[&str] = &[
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
fn topic_of(refusal: &AuthError) -> (&'static str, Option<&'static str>) {
    let words = words(refusal);
    REFUSALS
        .iter()
        .find(|(start, _, _)| words.starts_with(start))
        .map_or(("token", None), |(_, topic, advice)| (topic, *advice))
}

fn refused_before_signature(refusal: &AuthError) -> bool {
    BEFORE_SIGNATURE.contains(&topic_of(refusal).0)
}

/// The findings so far, and what they are measured against.
struct Doctor<'s> {
    settings: &'s Settings,
    now: u64,
    findings: Vec<Finding>,
}

impl Doctor<'_> {
    fn add(&mut self, status: Status, topic: &'static str, text: impl Into<String>) {
        self.findings.push(Finding {
            status,
            topic,
            text: text.into(),
        });
    }

    fn problem(&mut self, topic: &'static str, text: impl Into<String>) {
        self.add(Status::Problem, topic, text);
    }

    fn leeway(&self) -> u64 {
        self.settings.validation.leeway.as_secs()
    }

    /// The token in `input`, and the scheme written before it: what the
    /// server's `Authorization` reader would take from the header, or the
    /// refusal it would answer.
    fn input<'i>(&mut self, input: &'i [u8]) -> Result<(&'i str, Option<Scheme>), AuthError> {
        let Ok(text) = std::str::from_utf8(input) else {
            self.problem(
                "input",
                format!(
                    "{} bytes that are not text (not UTF-8): a token is ASCII; was a file or binary data given?",
                    input.len()
                ),
            );
            return Err(AuthError::InvalidRequest(
                "Authorization header is not visible ASCII",
            ));
        };
        let text = text.trim();
        let (scheme, token) = match text.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => (Some(Scheme::Bearer), rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("dpop") => (Some(Scheme::Dpop), rest),
            _ => (None, text),
        };
        let token = token.trim_start();
        if let Some(scheme) = scheme {
            let name = match scheme {
                Scheme::Bearer => "Bearer",
                Scheme::Dpop => "DPoP",
            };
            self.add(
                Status::Note,
                "input",
                format!("the `{name}` scheme before the token was stripped; the token is explained as sent with it"),
            );
        }
        if token.is_empty() {
            self.problem("input", "no token after the scheme");
            return Err(AuthError::InvalidRequest("empty access token"));
        }
        if token.len() > MAX_TOKEN_BYTES {
            self.problem(
                "input",
                format!(
                    "{} bytes: the server refuses a token over {MAX_TOKEN_BYTES} bytes unread, and no Auth0 access token is that long; check what was pasted",
                    token.len()
                ),
            );
            return Err(AuthError::InvalidToken("token too large".into()));
        }
        Ok((token, scheme))
    }

    /// Reads the token's parts and claims, adding a finding for each check;
    /// true when its claims bind it to a DPoP key (`cnf.jkt`).
    fn diagnose(&mut self, token: &str) -> bool {
        if check_b64token(token).is_err() {
            let stray = token
                .char_indices()
                .find(|(_, c)| !(c.is_ascii_alphanumeric() || "-._~+/=".contains(*c)));
            let text = match stray {
                Some((at, c)) => format!(
                    "{} at byte {at} is a character no token holds: give the token alone, without quotes, spaces or line breaks",
                    shown(c.encode_utf8(&mut [0; 4]))
                ),
                None => {
                    "an `=` inside the token: padding may only end a token, and a JWT has none".to_owned()
                }
            };
            self.problem("input", text);
            return false;
        }
        let parts = token.split('.').count();
        self.add(
            Status::Note,
            "shape",
            format!(
                "{} bytes in {parts} dot-separated part(s) (the signature is never shown)",
                token.len()
            ),
        );
        match parts {
            1 => self.opaque("no dots: not a JWT"),
            2 => self.problem(
                "shape",
                "2 parts: a signed JWT has 3 (header.payload.signature); was the token cut short when copied?",
            ),
            3 => return self.diagnose_jws(token),
            5 => self.diagnose_jwe(token),
            n => self.problem(
                "shape",
                format!("{n} parts: neither a signed JWT (3) nor an encrypted one (5); two tokens pasted together, or a stray dot?"),
            ),
        }
        false
    }

    /// An opaque token: what the client must change.
    fn opaque(&mut self, why: &str) {
        let text = format!(
            "an opaque token ({why}): Auth0 issues one when the authorize or token request names no audience; ask for a JWT access token for this API by sending `audience={}`",
            self.audience()
        );
        self.problem("shape", text);
    }

    /// The first configured audience, for advice.
    fn audience(&self) -> String {
        let audience = self
            .settings
            .validation
            .audiences
            .first()
            .map_or("<AUTH0_AUDIENCE>", String::as_str);
        audience.to_owned()
    }

    /// A five-part token: a JWE (RFC 7516), which the API cannot read.
    fn diagnose_jwe(&mut self, token: &str) {
        let mut parts = token.split('.');
        let header = parts.next().and_then(json_object);
        let member = |name: &str| header.as_ref().and_then(|header| header.get(name)).cloned();
        let (alg, enc) = (member("alg"), member("enc"));
        let no_key = parts.next().is_some_and(str::is_empty);
        if alg.as_ref().and_then(Value::as_str) == Some("dir") && no_key {
            self.opaque("an encrypted token only Auth0 can read, alg \"dir\"");
        } else {
            self.problem(
                "shape",
                format!(
                    "an encrypted token (JWE: 5 parts, alg {}, enc {}): token encryption is on for this API in Auth0; turn it off (Dashboard > APIs > this API > Settings > JSON Web Encryption), this API verifies signed tokens",
                    alg.map_or("(none)".into(), |alg| shown_value(&alg)),
                    enc.map_or("(none)".into(), |enc| shown_value(&enc)),
                ),
            );
        }
    }

    /// A three-part token: a compact JWS, read as the validator reads it.
    fn diagnose_jws(&mut self, token: &str) -> bool {
        let Ok(jws) = CompactJws::split(token) else {
            return false;
        };
        let decoded = jws
            .header()
            .and_then(|header| Ok((header, jws.payload()?)))
            .and_then(|parts| jws.signature().map(|_| parts))
            .and_then(|(header, payload)| {
                within_depth(&header)?;
                within_depth(&payload)?;
                Ok((header, payload))
            });
        let (header, payload) = match decoded {
            Ok(parts) => parts,
            Err(Malformed::TooDeep) => {
                self.problem(
                    "shape",
                    "JSON nested more than 16 levels deep: the server refuses it unread; no Auth0 token looks like this",
                );
                return false;
            }
            Err(why) => {
                self.problem(
                    "shape",
                    format!(
                        "{why} (RFC 7515: URL-safe alphabet, no padding): the token was damaged when copied (a `+`, `/` or `=` means it was re-encoded)"
                    ),
                );
                return false;
            }
        };
        let Ok(Value::Object(header)) = serde_json::from_slice::<Value>(&header) else {
            self.problem("header", "the header is not a JSON object");
            return false;
        };
        self.header(&header);
        let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(&payload) else {
            self.problem("claims", "the payload is not a JSON object of claims");
            return false;
        };
        self.claims(&claims)
    }

    fn header(&mut self, header: &Map<String, Value>) {
        let shown_member = |name: &str| header.get(name).map_or("(none)".into(), shown_value);
        self.add(
            Status::Note,
            "header",
            format!(
                "alg {}, typ {}, kid {}",
                shown_member("alg"),
                shown_member("typ"),
                shown_member("kid")
            ),
        );
        match header.get("alg").and_then(Value::as_str) {
            Some("RS256") => {}
            None => self.problem("header", "no alg string in the header: not a JOSE header"),
            Some("none") => self.problem("alg", "alg \"none\": an unsigned token, which is never accepted"),
            Some(alg) if alg.starts_with("HS") => self.problem(
                "alg",
                format!(
                    "{}: signed with a shared secret; this API accepts RS256 only: set the API's signing algorithm to RS256 in Auth0 (Dashboard > APIs > this API > Settings), then get a new token",
                    shown(alg)
                ),
            ),
            Some(alg) => self.problem(
                "alg",
                format!(
                    "{}: this API accepts RS256 only (Auth0's default): set the API's signing algorithm to RS256 in Auth0",
                    shown(alg)
                ),
            ),
        }
        let profile = self.settings.validation.profile;
        let typ = header.get("typ");
        let typ_text = typ.and_then(Value::as_str);
        if typ.is_some() && typ_text.is_none() {
            self.problem("header", "typ is not a string");
        } else if check_header(typ_text, false, token_typ(profile)).is_err() {
            let typ = typ_text.unwrap_or_default();
            let media = typ.strip_prefix("application/").unwrap_or(typ);
            if media.eq_ignore_ascii_case("dpop+jwt") {
                self.problem(
                    "typ",
                    "typ dpop+jwt: this is a DPoP proof (the DPoP header's value), not the access token",
                );
            } else if profile == TokenProfile::Rfc9068 {
                self.problem(
                    "typ",
                    format!(
                        "typ {}: TOKEN_PROFILE=rfc9068 requires at+jwt; {RFC9068_FIX}",
                        typ_text.map_or("(none)".into(), shown)
                    ),
                );
            } else {
                self.problem(
                    "typ",
                    format!(
                        "typ {}: an access token's typ is JWT or at+jwt (or none); is this another kind of token?",
                        shown(typ)
                    ),
                );
            }
        }
        if header.contains_key("crit") {
            self.problem(
                "crit",
                "a crit header: this API understands no JOSE extension, so none may be critical",
            );
        }
        match header.get("kid") {
            Some(Value::String(kid)) if !kid.is_empty() => {}
            Some(Value::String(_)) | None => self.problem(
                "kid",
                "no kid in the header: the server picks the issuer's key by kid, and Auth0 always sets one; was this token made by another issuer?",
            ),
            Some(_) => self.problem("header", "kid is not a string"),
        }
    }

    /// The claims, in the order the validator checks them; true when
    /// `cnf.jkt` binds the token to a DPoP key.
    fn claims(&mut self, claims: &Map<String, Value>) -> bool {
        self.issuer(claim(claims, "iss"));
        self.audience_claim(claims);
        self.times(claims);
        self.subject(claim(claims, "sub"));
        if claims.contains_key("nonce") || claims.contains_key("at_hash") {
            self.problem(
                "id-token",
                "an ID token (it has nonce or at_hash): an ID token tells the client who logged in; send the access token (`access_token` in the token response) instead",
            );
        }
        if self.settings.validation.profile == TokenProfile::Rfc9068 {
            for name in ["client_id", "jti"] {
                if claim(claims, name)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    self.rfc9068_missing(name);
                }
            }
            if claim(claims, "iat").is_none() {
                self.rfc9068_missing("iat");
            }
        }
        let bound = self.confirmation(claims.get("cnf"));
        self.grants(claims);
        let step_up: Vec<String> = ["acr", "amr", "auth_time"]
            .into_iter()
            .filter_map(|name| Some(format!("{name} {}", shown_value(claims.get(name)?))))
            .collect();
        if !step_up.is_empty() {
            let ago = claims
                .get("auth_time")
                .and_then(Value::as_u64)
                .map(|at| format!(": authenticated {}", self.relative(at)))
                .unwrap_or_default();
            self.add(Status::Note, "step-up", format!("{}{ago}", step_up.join(", ")));
        }
        bound
    }

    fn rfc9068_missing(&mut self, claim: &str) {
        self.problem(
            "profile",
            format!("no {claim}: TOKEN_PROFILE=rfc9068 requires client_id, jti and iat; {RFC9068_FIX}"),
        );
    }

    fn issuer(&mut self, iss: Option<&Value>) {
        let trusted = &self.settings.validation.issuers;
        let listed = shown_list(trusted);
        let iss = match iss {
            None => return self.problem("iss", "no iss: the server requires the issuer"),
            Some(Value::String(iss)) => iss,
            Some(_) => return self.problem("claims", "iss is not a string"),
        };
        if trusted.contains(iss) {
            return self.add(Status::Ok, "iss", format!("{} is a trusted issuer", shown(iss)));
        }
        let near = |same: &dyn Fn(&str, &str) -> bool| trusted.iter().find(|ours| same(ours, iss));
        let text = if let Some(ours) =
            near(&|ours, iss| ours.trim_end_matches('/') == iss.trim_end_matches('/'))
        {
            format!(
                "{} differs from the trusted issuer {} by a trailing slash; issuers are compared exactly: set AUTH0_ISSUER={} (the issuer's own spelling, which its tokens carry)",
                shown(iss),
                shown(ours),
                shown(iss)
            )
        } else if let Some(ours) = near(&|ours, iss| ours.eq_ignore_ascii_case(iss)) {
            format!(
                "{} differs from the trusted issuer {} in letter case; issuers are compared exactly: set AUTH0_ISSUER={}",
                shown(iss),
                shown(ours),
                shown(iss)
            )
        } else {
            format!(
                "{} is not a trusted issuer (trusted: {listed}, from AUTH0_ISSUER or AUTH0_DOMAIN): a token of another tenant? If you trust this issuer (a custom domain of the tenant, say), add it to AUTH0_DOMAIN or AUTH0_ISSUER",
                shown(iss)
            )
        };
        self.problem("iss", text);
    }

    fn audience_claim(&mut self, claims: &Map<String, Value>) {
        let ours = &self.settings.validation.audiences;
        let auds: Vec<&str> = match claim(claims, "aud") {
            None => {
                return self.problem(
                    "aud",
                    "no aud: the server requires the audience (this API's identifier)",
                );
            }
            Some(Value::String(aud)) => vec![aud],
            Some(Value::Array(auds)) if auds.iter().all(Value::is_string) => {
                auds.iter().filter_map(Value::as_str).collect()
            }
            Some(_) => return self.problem("claims", "aud is neither a string nor a list of strings"),
        };
        if let Some(aud) = auds.iter().find(|aud| ours.iter().any(|ours| ours == *aud)) {
            return self.add(
                Status::Ok,
                "aud",
                format!("{} is an accepted audience", shown(aud)),
            );
        }
        let theirs = shown_list(&auds);
        let accepted = shown_list(ours);
        let near = auds.iter().find_map(|aud| {
            ours.iter()
                .find(|ours| ours.trim_end_matches('/') == aud.trim_end_matches('/'))
                .map(|ours| (aud, ours))
        });
        let mut text = match near {
            Some((aud, ours)) => format!(
                "the token is for {}, this API accepts {} (AUTH0_AUDIENCE): they differ by a trailing slash, and audiences are compared exactly; set AUTH0_AUDIENCE={} (the API identifier as Auth0 has it, which its tokens carry)",
                shown(aud),
                shown(ours),
                shown(aud)
            ),
            None => format!(
                "the token is for {theirs}, this API accepts {accepted} (AUTH0_AUDIENCE): ask for the token with `audience={}`, or add its audience to AUTH0_AUDIENCE if this API is that one",
                self.audience()
            ),
        };
        let azp = claims.get("azp").and_then(Value::as_str);
        if auds
            .iter()
            .any(|aud| Some(*aud) == azp || looks_like_client_id(aud))
        {
            text.push_str(
                "; its aud looks like a client id, as an ID token's is: send the access token, not the ID token",
            );
        }
        self.problem("aud", text);
    }

    /// `exp`, `nbf`, `iat` against now and the leeway, as the validator
    /// compares them.
    fn times(&mut self, claims: &Map<String, Value>) {
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
    fn relative(&self, at_secs: u64) -> String {
        if at_secs <= self.now {
            format!("{} ago ({})", span(self.now - at_secs), at(at_secs))
        } else {
            format!("in {} ({})", span(at_secs - self.now), at(at_secs))
        }
    }

    fn subject(&mut self, sub: Option<&Value>) {
        match sub {
            None => self.problem(
                "sub",
                "no sub: the server requires the subject (the user, or the client)",
            ),
            Some(Value::String(sub)) => match check_sub(sub) {
                Ok(()) => self.add(Status::Ok, "sub", shown(sub)),
                Err(why) => self.problem("sub", format!("{why}: {}", shown(sub))),
            },
            Some(_) => self.problem("claims", "sub is not a string"),
        }
    }

    /// `cnf`: a DPoP key's thumbprint is the one binding the API checks.
    /// True when the token is bound to one.
    fn confirmation(&mut self, cnf: Option<&Value>) -> bool {
        let mode = self.settings.dpop.mode;
        let Some(cnf) = cnf else {
            if mode == DpopMode::Required {
                self.problem(
                    "dpop",
                    "not bound to a DPoP key, and this API accepts DPoP-bound tokens only (DPOP_MODE=required): get a DPoP-bound token (send a DPoP proof to the token endpoint), or set DPOP_MODE=allowed",
                );
            }
            return false;
        };
        let jkt = match cnf {
            Value::Object(members) => match members.get("jkt") {
                Some(Value::String(jkt)) if !jkt.is_empty() && members.len() == 1 => jkt,
                _ => {
                    self.problem(
                        "cnf",
                        format!(
                            "cnf {} binds the token to something other than a DPoP key (only cnf.jkt, a DPoP key's thumbprint, can be checked): the server refuses it",
                            shown_value(cnf)
                        ),
                    );
                    return false;
                }
            },
            _ => {
                self.problem("claims", "cnf is not an object");
                return false;
            }
        };
        let status = if mode == DpopMode::Disabled {
            Status::Problem
        } else {
            Status::Note
        };
        let mut text = format!(
            "bound to the DPoP key of thumbprint {} (cnf.jkt): send it as `Authorization: DPoP <token>` with a `DPoP` proof header signed by that key (`proof --dpop-key`); with Bearer it is refused",
            shown(jkt)
        );
        if mode == DpopMode::Disabled {
            text.push_str(
                "; and this API takes Bearer tokens only (DPOP_MODE=disabled): set DPOP_MODE=allowed, or get a token without DPoP (no DPoP proof at the token endpoint)",
            );
        }
        self.add(status, "dpop", text);
        true
    }

    /// Machine or user, and the permissions granted under `PERMISSIONS_FROM`,
    /// as the validator grants them.
    fn grants(&mut self, claims: &Map<String, Value>) {
        let scope = match claim(claims, "scope") {
            None => None,
            Some(Value::String(scope)) => Some(scope.clone()),
            Some(_) => return self.problem("claims", "scope is not a string"),
        };
        let permissions = match claim(claims, "permissions").map(Vec::<String>::deserialize) {
            None => None,
            Some(Ok(permissions)) => Some(permissions),
            Some(Err(_)) => return self.problem("claims", "permissions is not a list of strings"),
        };
        let grant = GrantClaims {
            sub: claim(claims, "sub").and_then(Value::as_str).unwrap_or_default(),
            scope: scope.clone(),
            permissions,
            gty: claim(claims, "gty").cloned(),
            client_id: claim(claims, "client_id").cloned(),
        };
        let kind = match (grant.is_machine(), &grant.gty) {
            (true, Some(_)) => {
                "a machine token (gty client-credentials): a client acting for itself".to_owned()
            }
            (true, None) => {
                "a machine token (sub equals client_id, RFC 9068): a client acting for itself".to_owned()
            }
            (false, _) => "a user token".to_owned(),
        };
        let client = ["azp", "client_id"]
            .into_iter()
            .find_map(|name| Some(format!(", client {} ({name})", shown_value(claim(claims, name)?))))
            .unwrap_or_default();
        self.add(Status::Note, "kind", format!("{kind}{client}"));
        let from = self.settings.validation.permissions_from;
        let (granted, source) = grant.granted(from);
        let setting = match from {
            PermissionsFrom::Auto => "PERMISSIONS_FROM=auto",
            PermissionsFrom::Permissions => "PERMISSIONS_FROM=permissions",
            PermissionsFrom::Scope => "PERMISSIONS_FROM=scope",
            PermissionsFrom::Both => "PERMISSIONS_FROM=both",
        };
        let whence = match (source, from) {
            (GrantSource::PermissionsClaim, _) | (GrantSource::Configured, PermissionsFrom::Permissions) => {
                "the permissions claim"
            }
            (GrantSource::MachineScope, _) => "the scope claim, which an administrator granted this machine",
            (GrantSource::Configured, PermissionsFrom::Scope) => "the scope claim",
            (GrantSource::Configured, _) => "the permissions and scope claims",
            (GrantSource::UserScopeIgnored, _) => "",
        };
        let text = if source == GrantSource::UserScopeIgnored {
            let ignored = scope
                .filter(|scope| !scope.trim().is_empty())
                .map(|scope| {
                    format!(
                        "; its scope {} is what its client asked for, and grants nothing",
                        shown(&scope)
                    )
                })
                .unwrap_or_default();
            format!(
                "none: a user token without a permissions claim ({setting}){ignored}. Turn on RBAC and \"Add Permissions in the Access Token\" for the API in Auth0, or set PERMISSIONS_FROM"
            )
        } else if granted.is_empty() {
            format!("none ({whence} grants none; {setting})")
        } else {
            let mut listed: Vec<String> = granted
                .iter()
                .take(LISTED_PERMISSIONS)
                .map(|p| shown(p))
                .collect();
            if granted.len() > LISTED_PERMISSIONS {
                listed.push(format!("and {} more", granted.len() - LISTED_PERMISSIONS));
            }
            format!("{} (from {whence}; {setting})", listed.join(", "))
        };
        self.add(Status::Note, "permissions", text);
    }

    /// The explanation, with the server's outcome: `Ok` with the scheme
    /// the token is accepted with, or the refusal.
    fn verdict(mut self, outcome: Result<Scheme, AuthError>, signature_checked: bool) -> Explanation {
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

/// The claim `name`, as the validator reads an optional claim: `null` is
/// the same as absent.
fn claim<'c>(claims: &'c Map<String, Value>, name: &str) -> Option<&'c Value> {
    claims.get(name).filter(|value| !value.is_null())
}

/// A part of a token decoded as a JSON object, within the depth limit.
fn json_object(part: &str) -> Option<Map<String, Value>> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    within_depth(&bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Auth0 client ids are 32 letters and digits; an API identifier is
/// usually a URL.
fn looks_like_client_id(aud: &str) -> bool {
    aud.len() == 32 && aud.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `secs` as "2h 3m 4s".
fn span(secs: u64) -> String {
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// `secs` since 1970 as an RFC 3339 time in UTC.
fn at(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .map_or_else(
            || format!("{secs} s after 1970"),
            |time| time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
}

/// `text` from a token as it is printed: quoted, each control or invisible
/// character (and `"`, `\`) escaped, cut after [`SHOWN_CHARS`] characters.
fn shown(text: &str) -> String {
    format!("\"{}", escaped(text, true))
}

/// A JSON value from a token as it is printed: a string as [`shown`], any
/// other value as compact JSON, escaped and cut the same way.
fn shown_value(value: &Value) -> String {
    match value {
        Value::String(text) => shown(text),
        other => escaped(&other.to_string(), false),
    }
}

/// Several values, each [`shown`], at most ten.
fn shown_list<S: AsRef<str>>(values: &[S]) -> String {
    if values.is_empty() {
        return "(none)".to_owned();
    }
    let mut listed: Vec<String> = values
        .iter()
        .take(10)
        .map(|value| shown(value.as_ref()))
        .collect();
    if values.len() > 10 {
        listed.push(format!("and {} more", values.len() - 10));
    }
    listed.join(", ")
}

/// `text` escaped and cut; `quoted` closes the quote the caller opened
/// (inside the cut, so that the count of what was left out stays outside).
fn escaped(text: &str, quoted: bool) -> String {
    let mut out = String::new();
    for (index, c) in text.chars().enumerate() {
        if index == SHOWN_CHARS {
            let rest = text.chars().count() - index;
            let quote = if quoted { "\"" } else { "" };
            return format!("{out}{quote}... ({rest} more characters)");
        }
        match c {
            '"' | '\\' if quoted => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || invisible(c) => out.push_str(&format!("\\u{{{:04x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    if quoted {
        out.push('"');
    }
    out
}

/// Characters that print as nothing or reorder what follows: zero-width
/// and bidirectional controls, the soft hyphen, the byte-order mark.
fn invisible(c: char) -> bool {
    matches!(c, '\u{00ad}' | '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_cut() {
        assert_eq!(shown("a\u{1b}[31mb\n"), r#""a\u{001b}[31mb\u{000a}""#);
        assert_eq!(shown("x\"y\\"), r#""x\"y\\""#);
        assert_eq!(shown("\u{202e}abc"), r#""\u{202e}abc""#);
        let long = "é".repeat(100);
        let cut = shown(&long);
        assert!(cut.ends_with("\"... (36 more characters)"), "{cut}");
        assert_eq!(cut.matches('é').count(), SHOWN_CHARS);
        assert_eq!(shown_value(&serde_json::json!(["a\u{7f}"])), r#"["a\u{007f}"]"#);
    }

    #[test]
    fn every_refusal_of_the_server_has_a_topic() {
        for words in [
            "token too large",
            "malformed token: header is not base64url",
            "algorithm not allowed: only RS256 is accepted",
            "unexpected token type (typ)",
            "token type (typ) must be at+jwt (TOKEN_PROFILE=rfc9068)",
            "unsupported critical header (crit)",
            "token has no kid",
            "malformed claims",
            "unexpected issuer",
            "unknown signing key (kid)",
            "invalid signature",
            "token expired",
            "unexpected audience",
            "token not yet valid (nbf)",
            "an ID token is not an access token",
            "missing required claim: jti (TOKEN_PROFILE=rfc9068)",
            "unsupported confirmation claim (cnf): only a DPoP key thumbprint (cnf.jkt) can be checked",
            "token issued in the future (iat)",
            "sub claim holds a control character",
            "blank sub claim",
        ] {
            let (topic, _) = topic_of(&AuthError::InvalidToken(words.into()));
            assert_ne!(topic, "dpop", "{words}");
        }
    }
}
