//! Checks one access token: shape, header, signature, claims.
//!
//! The header is read by hand before anything else so that refusals can say
//! exactly what failed (an `alg` of `none`, an `HS256` token keyed with our
//! public key...) and so that such tokens never trigger a key fetch.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use crate::auth::bearer::check_b64token;
use crate::auth::cache::{TokenCache, VerifiedToken};
use crate::auth::error::AuthError;
use crate::auth::keys::{KeyError, KeyStore};
use crate::auth::token::{MAX_TOKEN_BYTES, Principal};

/// What a token must say to be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationSettings {
    /// The exact `iss` a token must carry.
    pub issuer: String,
    /// Accepted `aud` values; a token must name at least one of them.
    pub audiences: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Most verified tokens kept in memory (0: no token cache).
    pub token_cache_size: u64,
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Claims {
    /// Checked again here, as a string: `Validation` alone also accepts an array.
    iss: Option<String>,
    // Optional here so that a missing `sub` is reported by the spec-claim check.
    sub: Option<String>,
    scope: Option<String>,
    permissions: Option<Vec<String>>,
    /// Presence and freshness are checked by `Validation`; kept for the cache.
    exp: Option<u64>,
}

/// Validates tokens against one issuer's published keys.
pub(crate) struct TokenValidator {
    keys: Arc<KeyStore>,
    issuer: String,
    validation: Validation,
    cache: TokenCache,
}

impl TokenValidator {
    /// A validator for the issuer, audiences and leeway in `settings`.
    pub(crate) fn new(settings: &ValidationSettings, keys: Arc<KeyStore>) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&settings.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = settings.leeway.as_secs();
        Self {
            keys,
            issuer: settings.issuer.clone(),
            validation,
            cache: TokenCache::new(settings.token_cache_size),
        }
    }

    /// Validates `token` and returns who it speaks for. A token verified
    /// before is answered from the cache while it is unexpired and its key
    /// is still published.
    pub(crate) async fn validate(&self, token: &str) -> Result<Arc<VerifiedToken>, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(invalid("token too large"));
        }
        if let Some(hit) = self.cache.get(token) {
            if self.keys.still_trusts(&hit.kid, &hit.key, &hit.key_generation) {
                return Ok(hit);
            }
            self.cache.remove(token);
        }
        let verified = Arc::new(self.verify(token).await?);
        self.cache.insert(token, Arc::clone(&verified));
        Ok(verified)
    }

    /// Full validation, bypassing the cache: header, key, signature, claims.
    pub(crate) async fn verify(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(invalid("token too large"));
        }
        check_b64token(token)?;
        let header = read_header(token)?;
        let kid = header
            .kid
            .filter(|kid| !kid.is_empty())
            .ok_or_else(|| invalid("token has no kid"))?;
        let key = self.keys.key_for(&kid).await.map_err(|err| match err {
            KeyError::UnknownKid => invalid("unknown signing key (kid)"),
            KeyError::Unavailable(retry_after) => AuthError::KeysUnavailable { retry_after },
        })?;
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &self.validation)
            .map_err(|err| invalid(describe(err.kind())))?
            .claims;
        if claims.iss.as_deref() != Some(self.issuer.as_str()) {
            return Err(invalid("unexpected issuer"));
        }
        let sub = claims
            .sub
            .filter(|sub| !sub.is_empty())
            .ok_or_else(|| invalid("empty sub claim"))?;
        let permissions = claims
            .scope
            .iter()
            .flat_map(|scope| scope.split(' '))
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .chain(claims.permissions.into_iter().flatten())
            .collect();
        Ok(VerifiedToken {
            principal: Principal { sub, permissions },
            kid,
            key,
            valid_until: claims
                .exp
                .unwrap_or_default()
                .saturating_add(self.validation.leeway),
            // Never a real generation: the first hit checks the key set itself.
            key_generation: AtomicU64::new(u64::MAX),
        })
    }
}

fn invalid(why: &str) -> AuthError {
    AuthError::InvalidToken(why.to_owned())
}

/// Reads and checks the JOSE header of a compact JWS.
fn read_header(token: &str) -> Result<JoseHeader, AuthError> {
    let mut segments = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        return Err(invalid("malformed token: expected three dot-separated segments"));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| invalid("malformed token: header is not base64url"))?;
    let header: JoseHeader = serde_json::from_slice(&bytes)
        .map_err(|_| invalid("malformed token: header is not a JOSE JSON object"))?;
    if header.alg != "RS256" {
        return Err(invalid("algorithm not allowed: only RS256 is accepted"));
    }
    if let Some(typ) = header.typ.as_deref() {
        let media = typ.strip_prefix("application/").unwrap_or(typ);
        if !media.eq_ignore_ascii_case("JWT") && !media.eq_ignore_ascii_case("at+jwt") {
            return Err(invalid("unexpected token type (typ)"));
        }
    }
    if header.crit.is_some() {
        return Err(invalid("unsupported critical header (crit)"));
    }
    Ok(header)
}

/// What failed, in words a client developer can act on.
fn describe(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "token expired",
        ErrorKind::ImmatureSignature => "token not yet valid (nbf)",
        ErrorKind::InvalidIssuer => "unexpected issuer",
        ErrorKind::InvalidAudience => "unexpected audience",
        ErrorKind::InvalidSignature => "invalid signature",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName | ErrorKind::UnsupportedAlgorithm => {
            "algorithm not allowed: only RS256 is accepted"
        }
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => "missing required claim: exp",
            "iss" => "missing required claim: iss",
            "aud" => "missing required claim: aud",
            "sub" => "missing required claim: sub",
            _ => "missing required claim",
        },
        ErrorKind::InvalidClaimFormat(_) | ErrorKind::Json(_) => "malformed claims",
        ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => "signing key unusable",
        _ => "malformed token",
    }
}
