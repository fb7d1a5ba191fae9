//! DPoP proofs (RFC 9449): the evidence, sent with every request, that the
//! caller holds the private key its access token is bound to.
//!
//! A proof is a JWS in the request's one `DPoP` header. Its header carries
//! the public key (`jwk`) it is signed with; its claims name the request it
//! was made for (`htm`, `htu`), when (`iat`), a unique id (`jti`) and the
//! hash of the access token it goes with (`ath`). A request is admitted
//! only if all of that holds and the token's `cnf.jkt` is the RFC 7638
//! thumbprint of that key: a stolen token is of no use without the key,
//! and a stolen proof is of no use for another request, another token, or
//! a second time.
//!
//! Proofs are checked here; whether a token needs one is the guard's
//! decision. This file holds the verifier and its settings, and reads from
//! a request its one `DPoP` header and the method and URL its proof must
//! name; [`proof`] checks a proof against them, [`key`] checks its key and
//! signature, [`nonces`] issues and checks server nonces, and [`replay`]
//! remembers accepted proofs so that none is used twice.

mod key;
mod nonces;
mod proof;
mod replay;

pub(crate) use key::ALGORITHMS;
pub(crate) use proof::Target;
pub(crate) use replay::ProofId;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use futures_util::future::BoxFuture;

use crate::auth::dpop::nonces::Nonces;
use crate::auth::dpop::proof::check;
use crate::auth::dpop::replay::{Remembered, ReplayCache, proof_id};
use crate::auth::error::{AuthError, bad_proof};
use crate::auth::public_url::{PublicUrl, UrlError};
use crate::auth::token::unix_now;

/// The `DPoP` request header.
pub(crate) const DPOP: HeaderName = HeaderName::from_static("dpop");

/// The `DPoP-Nonce` response header: the nonce the next proofs must carry.
pub(crate) const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// Proofs longer than this are refused unread.
pub(crate) const MAX_PROOF_BYTES: usize = 8 * 1024;

/// Which schemes the API accepts (`DPOP_MODE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DpopMode {
    /// Bearer and DPoP tokens, each with its own scheme.
    #[default]
    Allowed,
    /// DPoP-bound tokens only, with the DPoP scheme.
    Required,
    /// Bearer tokens only; the DPoP scheme is refused.
    Disabled,
}

impl FromStr for DpopMode {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        match raw {
            "allowed" => Ok(Self::Allowed),
            "required" => Ok(Self::Required),
            "disabled" => Ok(Self::Disabled),
            _ => Err(format!("expected allowed, required or disabled, got {raw:?}")),
        }
    }
}

/// How DPoP proofs are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopSettings {
    /// Which schemes the API accepts.
    pub mode: DpopMode,
    /// How long ago a proof's `iat` may lie; also how long a proof is
    /// remembered after its `iat`, and the step of server nonces.
    pub iat_window: Duration,
    /// How far ahead of now a proof's `iat` may lie (at most `iat_window`):
    /// a proof is remembered until `iat` + `iat_window`, so for at most
    /// `iat_window` + this.
    pub iat_ahead: Duration,
    /// Most proofs remembered at once, to refuse their replays.
    pub replay_cache_size: usize,
    /// Most proofs of one key remembered at once (at most
    /// `replay_cache_size`): a key over it is refused, 429, and the others
    /// keep their room.
    pub replay_per_key: usize,
    /// With a secret, proofs must carry a nonce this API issued (RFC 9449
    /// section 9); every instance given the same secret accepts the others'.
    pub nonce_secret: Option<NonceSecret>,
}

/// The secret server nonces are made with (`DPOP_NONCE_SECRET`); never
/// shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct NonceSecret(pub String);

impl std::fmt::Debug for NonceSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceSecret(..)")
    }
}

impl Default for DpopSettings {
    fn default() -> Self {
        Self {
            mode: DpopMode::Allowed,
            iat_window: Duration::from_secs(60),
            iat_ahead: Duration::from_secs(5),
            replay_cache_size: 1_000_000,
            replay_per_key: 10_000,
            nonce_secret: None,
        }
    }
}

/// The proofs every instance sharing a database has accepted (PostgreSQL):
/// a proof new to this instance's replay cache is recorded there before it
/// is admitted, so that no other instance admits it again.
pub(crate) trait SharedProofs: Send + Sync {
    /// Records the proof `id` until the end of second `expires`: `true`
    /// when no instance had recorded it (within its window).
    fn record(&self, id: ProofId, expires: u64) -> BoxFuture<'static, Result<bool, Unrecorded>>;
}

/// A proof that could not be recorded (the database is unreachable): the
/// request is answered 503, never admitted unrecorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unrecorded;

/// Checks DPoP proofs, and remembers the ones it accepted.
pub(crate) struct DpopVerifier {
    mode: DpopMode,
    window: u64,
    /// How far ahead of now an `iat` may lie.
    ahead: u64,
    nonces: Option<Nonces>,
    replays: ReplayCache,
    /// Where the proofs of every instance are recorded, when several share
    /// a database.
    shared: Option<Arc<dyn SharedProofs>>,
}

/// The nonce a successful DPoP response hands the client for its next
/// proofs (`DPoP-Nonce`), left in the request's extensions by the guard.
#[derive(Debug, Clone)]
pub(crate) struct NextNonce(pub(crate) HeaderValue);

impl DpopVerifier {
    /// A verifier as `settings` say.
    pub(crate) fn new(settings: &DpopSettings) -> Self {
        let window = settings.iat_window.as_secs();
        let ahead = settings.iat_ahead.as_secs();
        Self {
            mode: settings.mode,
            window,
            ahead,
            nonces: settings
                .nonce_secret
                .as_ref()
                .map(|secret| Nonces::new(&secret.0, window)),
            replays: ReplayCache::new(
                settings.replay_cache_size,
                settings.replay_per_key,
                window + ahead,
            ),
            shared: None,
        }
    }

    /// This verifier, also recording each proof it admits in `shared`.
    pub(crate) fn sharing(self, shared: Arc<dyn SharedProofs>) -> Self {
        Self {
            shared: Some(shared),
            ..self
        }
    }

    /// The nonce to hand a client for its next proofs, when the API issues
    /// nonces.
    pub(crate) fn next_nonce(&self) -> Option<NextNonce> {
        let nonce = self.nonces.as_ref()?.issue(unix_now());
        HeaderValue::from_str(&nonce).ok().map(NextNonce)
    }

    /// Which schemes the API accepts.
    pub(crate) fn mode(&self) -> DpopMode {
        self.mode
    }

    /// Checks `proof` (the `DPoP` header's value, as [`proof_header`] gives
    /// it) for a request to `target` with `access_token`, whose `cnf.jkt` is `jkt`, and remembers it so
    /// that it cannot be used again. RFC 9449 section 4.3's checks, plus the
    /// binding of section 7.1: cheap ones first, the signature last but one,
    /// the replay check last (so that only a proof that passed everything
    /// else takes a place in the cache).
    pub(crate) async fn verify(
        &self,
        proof: &HeaderValue,
        access_token: &str,
        jkt: &str,
        target: &Target<'_>,
    ) -> Result<(), AuthError> {
        let proof = proof
            .to_str()
            .map_err(|_| bad_proof("DPoP proof is not visible ASCII"))?;
        let now = unix_now();
        let checked = check(
            proof,
            access_token,
            target,
            now,
            self.window,
            self.ahead,
            self.nonces.as_ref(),
        )?;
        if checked.thumbprint != jkt {
            // RFC 9449 section 7.1: the token is not bound to the proof's key.
            return Err(AuthError::InvalidToken(
                "the token is bound to another key than the DPoP proof's (cnf.jkt)".into(),
            ));
        }
        checked.key.verify(checked.signing_input, &checked.signature)?;
        let replayed = || bad_proof("DPoP proof replayed (jti already used)");
        match self.replays.remember(jkt, &checked.jti, checked.expires, now) {
            Remembered::New => match &self.shared {
                None => Ok(()),
                Some(shared) => match shared.record(proof_id(jkt, &checked.jti), checked.expires).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(replayed()),
                    Err(Unrecorded) => Err(AuthError::DatabaseUnavailable),
                },
            },
            Remembered::Seen => Err(replayed()),
            // Every proof of the key is forgotten by then: the latest one
            // expires at most window + ahead after now, and leaves the
            // second after.
            Remembered::OverShare => Err(AuthError::KeyOverReplayShare {
                retry_after: Duration::from_secs(self.window + self.ahead + 1),
            }),
            Remembered::Full => Err(AuthError::TooManyProofs),
        }
    }
}

/// The request's one `DPoP` header: none, two, or one over
/// [`MAX_PROOF_BYTES`] is refused (RFC 9449 section 4.3, check 1).
pub(crate) fn proof_header(headers: &HeaderMap) -> Result<&HeaderValue, AuthError> {
    let mut values = headers.get_all(DPOP);
    let proof = values
        .next()
        .ok_or_else(|| bad_proof("the DPoP scheme needs a DPoP proof header"))?;
    if values.next().is_some() {
        return Err(bad_proof("more than one DPoP header"));
    }
    if proof.len() > MAX_PROOF_BYTES {
        return Err(bad_proof("DPoP proof too large"));
    }
    Ok(proof)
}

/// The request `req` as its proof must describe it: its method, and its
/// URL as its client reached it (`PUBLIC_BASE_URL` when set, else from the
/// scheme it arrived on and its `Host`), without its query.
pub(crate) fn target<'a>(req: &'a HttpRequest, public_url: &PublicUrl) -> Result<Target<'a>, AuthError> {
    let url = public_url.request_url(req).map_err(|error| {
        AuthError::InvalidRequest(match error {
            UrlError::NoHost => "no Host header to check the DPoP proof's htu against",
            UrlError::MalformedHost => "malformed Host header",
            UrlError::MalformedUrl => "malformed request URL",
        })
    })?;
    Ok(Target {
        method: req.method().as_str(),
        url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_exactly() {
        assert_eq!("required".parse(), Ok(DpopMode::Required));
        assert!("Required".parse::<DpopMode>().is_err());
        assert!("on".parse::<DpopMode>().is_err());
    }
}
