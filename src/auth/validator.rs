//! Checks one access token: shape, header, claims, signature.
//!
//! The token is decoded and parsed once, here: the header first, so that
//! refusals can say exactly what failed (an `alg` of `none`, an `HS256`
//! token keyed with our public key...) and so that such tokens never
//! trigger a key fetch; then the payload, in one pass that serves every
//! claim check (RFC 7519 `exp`, `nbf`, `aud`, `iss`, `sub`, and the rules of
//! RFC 8725 and 9068 below). The signature is checked with the issuer's key
//! as parsed when its JWK Set was read. How the payload is read into
//! claims, and what a `sub` may be, is in `claims`.

mod claims;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde::Deserialize;

use crate::auth::authorization::check_b64token;
use crate::auth::cache::{TokenCache, VerifiedToken};
use crate::auth::error::AuthError;
use crate::auth::grants::{GrantClaims, GrantSource, PermissionsFrom};
use crate::auth::jose::{CompactJws, HeaderFault, Malformed, Typ, check_header, present, within_depth};
use crate::auth::keys::{IssuerKeys, KeyError, KeyStore, log_unexpected_issuer};
use crate::auth::token::{Principal, unix_now};
use crate::auth::validator::claims::{Confirmation, KnownClaims};
use crate::metrics::METRICS;

pub(crate) use claims::check_sub;

/// What a token must say to be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationSettings {
    /// The trusted issuers: a token's `iss` must be one of them, exactly
    /// (an Auth0 tenant's canonical and custom domains, or several tenants).
    pub issuers: Vec<String>,
    /// Accepted `aud` values; a token must name at least one of them.
    pub audiences: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Most verified tokens kept in memory (0: no token cache).
    pub token_cache_size: u64,
    /// Which claims grant permissions.
    pub permissions_from: PermissionsFrom,
    /// What a token must hold beyond RFC 7519's claims.
    pub profile: TokenProfile,
}

/// What a token must hold beyond RFC 7519's claims (`TOKEN_PROFILE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TokenProfile {
    /// Auth0's default tokens and RFC 9068 tokens alike: `typ`, when
    /// present, is `JWT` or `at+jwt`.
    #[default]
    Any,
    /// RFC 9068 JWT access tokens only (sections 2.1, 2.2 and 4): `typ` is
    /// `at+jwt`, and `client_id`, `jti` and `iat` are present, as Auth0's
    /// "RFC 9068" token dialect issues them.
    Rfc9068,
}

impl std::str::FromStr for TokenProfile {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        match raw {
            "any" => Ok(Self::Any),
            "rfc9068" => Ok(Self::Rfc9068),
            _ => Err(format!("expected any or rfc9068, got {raw:?}")),
        }
    }
}

/// The longest lifetime a token may claim: Auth0 issues access tokens for
/// at most 30 days, so an `exp` further out than a year is not one of its.
pub(crate) const MAX_LIFETIME_SECS: u64 = 366 * 24 * 3600;

/// The JOSE header. Derived deserialization refuses a member given twice.
#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    /// Present at all, even as `null` or `[]`.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// One trusted issuer: its name and its keys.
struct TrustedIssuer {
    name: Arc<str>,
    keys: Arc<KeyStore>,
}

/// Validates tokens against the published keys of the issuer they name.
pub(crate) struct TokenValidator {
    issuers: Vec<TrustedIssuer>,
    audiences: Vec<String>,
    leeway: u64,
    permissions_from: PermissionsFrom,
    profile: TokenProfile,
    cache: TokenCache,
}

impl TokenValidator {
    /// A validator for the issuers of `keys`, with the audiences and leeway
    /// of `settings`.
    pub(crate) fn new(settings: &ValidationSettings, keys: &IssuerKeys) -> Self {
        let issuers = keys
            .iter()
            .map(|(name, keys)| TrustedIssuer {
                name: name.into(),
                keys: Arc::clone(keys),
            })
            .collect();
        Self {
            issuers,
            audiences: settings.audiences.clone(),
            leeway: settings.leeway.as_secs(),
            permissions_from: settings.permissions_from,
            profile: settings.profile,
            cache: TokenCache::new(settings.token_cache_size),
        }
    }

    /// The trusted issuer that `iss` names, exactly: a token of any other
    /// is refused before any key is looked up or fetched. The log, never
    /// the response, says which issuers were expected, and warns of an
    /// `iss` a trailing slash away from a trusted one.
    fn issuer_named(&self, iss: Option<&str>) -> Result<&TrustedIssuer, AuthError> {
        let iss = iss.ok_or_else(|| invalid("missing required claim: iss"))?;
        let found = self.issuers.iter().find(|issuer| *issuer.name == *iss);
        found.ok_or_else(|| {
            log_unexpected_issuer(iss, self.issuers.iter().map(|issuer| &*issuer.name));
            invalid("unexpected issuer")
        })
    }

    /// Validates `token` (at most
    /// [`MAX_TOKEN_BYTES`](crate::auth::token::MAX_TOKEN_BYTES), as the
    /// `Authorization` header's reader leaves it) and returns who it speaks
    /// for. A token verified before is answered from the cache while it is
    /// unexpired and its key is still published.
    pub(crate) async fn validate(&self, token: &str) -> Result<Arc<VerifiedToken>, AuthError> {
        if let Some(hit) = self.cache.get(token) {
            if hit.keys.still_trusts(&hit.kid, &hit.key, &hit.key_generation) {
                METRICS.token_cache_lookup(true);
                return Ok(hit);
            }
            self.cache.remove(token);
        }
        METRICS.token_cache_lookup(false);
        // Boxed so that a cache hit's future stays small (the full check
        // carries a key fetch).
        let verified = Arc::new(Box::pin(self.verify(token)).await?);
        self.cache.insert(token, Arc::clone(&verified));
        Ok(verified)
    }

    /// Full validation, bypassing the cache: header, key, signature, claims.
    pub(crate) async fn verify(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        let Read {
            jws,
            kid,
            claims,
            issuer,
        } = self.read(token)?;
        let key = issuer.keys.key_for(&kid).await.map_err(|err| match err {
            KeyError::UnknownKid => invalid("unknown signing key (kid)"),
            KeyError::Unavailable(retry_after) => AuthError::KeysUnavailable { retry_after },
        })?;
        if !key
            .verifier
            .verifies(jws.signing_input.as_bytes(), &jws.signature)
        {
            return Err(invalid("invalid signature"));
        }
        let checked = self.check_claims(claims, unix_now())?;
        let principal = Principal::new(
            Arc::clone(&issuer.name),
            checked.sub,
            checked.permissions,
            checked.granted_by,
            jws.payload,
        );
        Ok(VerifiedToken {
            principal,
            jkt: checked.jkt,
            kid,
            key,
            valid_until: checked.exp.saturating_add(self.leeway),
            issued_at: checked.issued_at,
            keys: Arc::clone(&issuer.keys),
            // Never a real generation: the first hit checks the key set itself.
            key_generation: AtomicU64::new(u64::MAX),
        })
    }

    /// Everything [`verify`](Self::verify) checks but the key and the
    /// signature, in its order and with its words: what can be said of a
    /// token without its issuer's keys (`explain` offline). Fetches nothing.
    pub(crate) fn check_unsigned(&self, token: &str) -> Result<Checked, AuthError> {
        let read = self.read(token)?;
        self.check_claims(read.claims, unix_now())
    }

    /// The token decoded, its header checked, its `kid` and claims read and
    /// its issuer found: the steps before the key.
    fn read<'t>(&self, token: &'t str) -> Result<Read<'t, '_>, AuthError> {
        // A token that decodes as a compact JWS holds only base64url
        // characters and dots, all of them RFC 6750 b64token characters:
        // the syntax check only picks the message of a refusal.
        let mut jws = read_jws(token, self.profile).map_err(|refusal| match check_b64token(token) {
            Err(malformed) => malformed,
            Ok(()) => refusal,
        })?;
        let kid = jws
            .header
            .kid
            .take()
            .filter(|kid| !kid.is_empty())
            .ok_or_else(|| invalid("token has no kid"))?;
        let claims: KnownClaims =
            serde_json::from_slice(&jws.payload).map_err(|_| invalid("malformed claims"))?;
        let issuer = self.issuer_named(claims.iss.as_deref())?;
        Ok(Read {
            jws,
            kid,
            claims,
            issuer,
        })
    }

    /// The claim checks that follow the signature's, at `now`.
    fn check_claims(&self, mut claims: KnownClaims, now: u64) -> Result<Checked, AuthError> {
        let exp = claims.exp.ok_or_else(|| invalid("missing required claim: exp"))?;
        let aud = claims
            .aud
            .as_ref()
            .ok_or_else(|| invalid("missing required claim: aud"))?;
        let Some(sub) = claims.sub.take() else {
            return Err(invalid("missing required claim: sub"));
        };
        let nbf = claims.nbf.as_ref().map(seconds).transpose()?;
        if exp < now.saturating_sub(self.leeway) {
            return Err(invalid("token expired"));
        }
        if nbf.is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
            return Err(invalid("token not yet valid (nbf)"));
        }
        if !aud.names_one_of(&self.audiences) {
            return Err(invalid("unexpected audience"));
        }
        if claims.nonce || claims.at_hash {
            // RFC 8725 section 3.11, RFC 9068: an ID token is not an access token.
            return Err(invalid("an ID token is not an access token"));
        }
        if self.profile == TokenProfile::Rfc9068 {
            check_rfc9068_claims(&claims)?;
        }
        let jkt = match claims.cnf {
            None => None,
            Some(Confirmation {
                jkt: Some(jkt),
                others,
            }) if others.is_empty() && !jkt.is_empty() => Some(jkt),
            Some(_) => {
                return Err(invalid(
                    "unsupported confirmation claim (cnf): only a DPoP key thumbprint (cnf.jkt) can be checked",
                ));
            }
        };
        if exp > now.saturating_add(MAX_LIFETIME_SECS) {
            return Err(invalid("token expires too far in the future (exp)"));
        }
        if claims
            .iat
            .as_ref()
            .and_then(|iat| iat.as_f64())
            .is_some_and(|iat| iat > now.saturating_add(self.leeway) as f64)
        {
            return Err(invalid("token issued in the future (iat)"));
        }
        check_sub(&sub).map_err(invalid)?;
        let issued_at = claims.iat.as_ref().and_then(|iat| seconds(iat).ok());
        let (permissions, granted_by) = GrantClaims {
            sub: &sub,
            scope: claims.scope,
            permissions: claims.permissions,
            gty: claims.gty,
            client_id: claims.client_id,
        }
        .granted(self.permissions_from);
        Ok(Checked {
            sub,
            jkt,
            exp,
            permissions,
            granted_by,
            issued_at,
        })
    }
}

/// A token read up to its key: see [`TokenValidator::read`].
struct Read<'t, 'v> {
    jws: Jws<'t>,
    kid: String,
    claims: KnownClaims,
    issuer: &'v TrustedIssuer,
}

/// What the claim checks leave of a token.
pub(crate) struct Checked {
    /// Its `sub`.
    pub(crate) sub: String,
    /// The DPoP key it is bound to (`cnf.jkt`), if any.
    pub(crate) jkt: Option<String>,
    /// Its `exp`.
    pub(crate) exp: u64,
    /// The permissions it grants.
    pub(crate) permissions: BTreeSet<String>,
    /// Where they came from.
    pub(crate) granted_by: GrantSource,
    /// When it was issued (`iat`), if it says.
    pub(crate) issued_at: Option<u64>,
}

/// RFC 9068 section 2.2's required claims beyond RFC 7519's: `client_id`
/// and `jti` non-empty strings, `iat` present (its value is checked with
/// the others).
fn check_rfc9068_claims(claims: &KnownClaims) -> Result<(), AuthError> {
    let non_empty = |value: &Option<serde_json::Value>| {
        value
            .as_ref()
            .and_then(serde_json::Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    if !non_empty(&claims.client_id) {
        return Err(invalid(
            "missing required claim: client_id (TOKEN_PROFILE=rfc9068)",
        ));
    }
    if !non_empty(&claims.jti) {
        return Err(invalid("missing required claim: jti (TOKEN_PROFILE=rfc9068)"));
    }
    if claims.iat.is_none() {
        return Err(invalid("missing required claim: iat (TOKEN_PROFILE=rfc9068)"));
    }
    Ok(())
}

fn invalid(why: &str) -> AuthError {
    AuthError::InvalidToken(why.to_owned())
}

/// A compact JWS taken apart: its checked header, its payload and its
/// signature decoded, and the bytes the signature covers.
struct Jws<'a> {
    header: JoseHeader,
    payload: Vec<u8>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

/// An access token's `typ`, when it has one (RFC 9068 section 2.1).
const TOKEN_TYP: Typ = Typ {
    accepted: &["JWT", "at+jwt"],
    required: false,
};

/// An RFC 9068 access token's `typ` (section 4: the resource server must
/// check it).
const RFC9068_TYP: Typ = Typ {
    accepted: &["at+jwt"],
    required: true,
};

/// The `typ` a token may have under `profile`.
pub(crate) fn token_typ(profile: TokenProfile) -> &'static Typ {
    match profile {
        TokenProfile::Any => &TOKEN_TYP,
        TokenProfile::Rfc9068 => &RFC9068_TYP,
    }
}

/// Splits and decodes a compact JWS and checks its header: every part is
/// decoded before any is parsed.
fn read_jws(token: &str, profile: TokenProfile) -> Result<Jws<'_>, AuthError> {
    let malformed = |why: Malformed| AuthError::InvalidToken(format!("malformed token: {why}"));
    let jws = CompactJws::split(token).map_err(malformed)?;
    let header_bytes = jws.header().map_err(malformed)?;
    let payload = jws.payload().map_err(malformed)?;
    let signature = jws.signature().map_err(malformed)?;
    within_depth(&header_bytes)
        .and_then(|()| within_depth(&payload))
        .map_err(malformed)?;
    let header: JoseHeader = serde_json::from_slice(&header_bytes)
        .map_err(|_| invalid("malformed token: header is not a JOSE JSON object"))?;
    if header.alg != "RS256" {
        return Err(invalid("algorithm not allowed: only RS256 is accepted"));
    }
    check_header(header.typ.as_deref(), header.crit, token_typ(profile)).map_err(|fault| match fault {
        HeaderFault::Typ if profile == TokenProfile::Rfc9068 => {
            invalid("token type (typ) must be at+jwt (TOKEN_PROFILE=rfc9068)")
        }
        HeaderFault::Typ => invalid("unexpected token type (typ)"),
        HeaderFault::Crit => invalid("unsupported critical header (crit)"),
    })?;
    Ok(Jws {
        header,
        payload,
        signing_input: jws.signing_input,
        signature,
    })
}

/// A NumericDate (RFC 7519 section 2) in whole seconds: a non-negative
/// integer, or a fraction, rounded.
pub(crate) fn seconds(value: &serde_json::Number) -> Result<u64, AuthError> {
    match (value.as_u64(), value.as_f64()) {
        (Some(whole), _) => Ok(whole),
        (None, Some(fraction)) if fraction.is_finite() && (0.0..u64::MAX as f64).contains(&fraction) => {
            Ok(fraction.round() as u64)
        }
        _ => Err(invalid("malformed claims")),
    }
}
