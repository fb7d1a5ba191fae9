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
//! decision. Signatures are verified with aws-lc-rs from the key's raw
//! components, for a fixed list of asymmetric algorithms: never `none`, never
//! a MAC. Replays are caught by remembering every accepted proof's `jti`
//! (per key) for as long as its `iat` keeps it acceptable, in memory, with
//! a bounded share for each key: each instance of the API remembers the
//! proofs it accepted, not those another accepted (see README, "DPoP").

use std::collections::{HashMap, hash_map};
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{self, SHA256, digest};
use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self, EcdsaVerificationAlgorithm, RsaParameters, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use foldhash::fast::RandomState;
use serde::Deserialize;
use url::Url;

use crate::auth::error::AuthError;
use crate::auth::jose::{CompactJws, HeaderFault, Malformed, Typ, check_header, present, within_depth};
use crate::auth::token::unix_now;

/// The `DPoP` request header.
pub(crate) const DPOP: HeaderName = HeaderName::from_static("dpop");

/// The `DPoP-Nonce` response header: the nonce the next proofs must carry.
pub(crate) const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// Proofs longer than this are refused unread.
pub(crate) const MAX_PROOF_BYTES: usize = 8 * 1024;

/// The signature algorithms a proof may use, as a DPoP challenge announces
/// them (`algs`): asymmetric only (RFC 9449 section 4.3, check 5).
pub(crate) const ALGORITHMS: &str = "ES256 ES384 ES512 EdDSA RS256 RS384 RS512 PS256 PS384 PS512";

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
    /// The URL the API is reached at from outside (behind a proxy): a
    /// proof's `htu` must name it, followed by the request's path. Without
    /// it, the URL comes from the request's `Host` header and the scheme the
    /// request arrived on.
    pub public_base_url: Option<Url>,
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
            public_base_url: None,
            nonce_secret: None,
        }
    }
}

/// Checks DPoP proofs, and remembers the ones it accepted.
pub(crate) struct DpopVerifier {
    mode: DpopMode,
    window: u64,
    /// How far ahead of now an `iat` may lie.
    ahead: u64,
    /// `PUBLIC_BASE_URL`, normalized, without a trailing slash.
    base_url: Option<String>,
    nonces: Option<Nonces>,
    replays: ReplayCache,
}

/// The nonce a successful DPoP response hands the client for its next
/// proofs (`DPoP-Nonce`), left in the request's extensions by the guard.
#[derive(Debug, Clone)]
pub(crate) struct NextNonce(pub(crate) HeaderValue);

/// The request a proof must describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target<'a> {
    /// The request's method (`htm`).
    pub(crate) method: &'a str,
    /// Its URL without query and fragment, normalized (`htu`).
    pub(crate) url: String,
}

impl DpopVerifier {
    /// A verifier as `settings` say.
    pub(crate) fn new(settings: &DpopSettings) -> Self {
        let window = settings.iat_window.as_secs();
        let ahead = settings.iat_ahead.as_secs();
        Self {
            mode: settings.mode,
            window,
            ahead,
            base_url: settings
                .public_base_url
                .as_ref()
                .and_then(|url| normalize_url(url.as_str()))
                .map(|url| url.trim_end_matches('/').to_owned()),
            nonces: settings
                .nonce_secret
                .as_ref()
                .map(|secret| Nonces::new(&secret.0, window)),
            replays: ReplayCache::new(
                settings.replay_cache_size,
                settings.replay_per_key,
                window + ahead,
            ),
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

    /// The request `req` as its proof must describe it: its method, and its
    /// URL from `PUBLIC_BASE_URL` when set, else from its `Host` (or the
    /// authority of an absolute request target) and the scheme it arrived
    /// on; always with the request's own path, without its query.
    pub(crate) fn target<'a>(&self, req: &'a HttpRequest) -> Result<Target<'a>, AuthError> {
        let path = req.uri().path();
        let raw = match &self.base_url {
            Some(base) => format!("{base}{path}"),
            None => {
                let authority = match req.uri().authority() {
                    Some(authority) => authority.as_str(),
                    None => req
                        .headers()
                        .get(header::HOST)
                        .and_then(|host| host.to_str().ok())
                        .ok_or(AuthError::InvalidRequest(
                            "no Host header to check the DPoP proof's htu against",
                        ))?,
                };
                if authority.is_empty() || !authority.bytes().all(is_authority_byte) {
                    return Err(AuthError::InvalidRequest("malformed Host header"));
                }
                let scheme = if req.app_config().secure() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{authority}{path}")
            }
        };
        let url = normalize_url(&raw).ok_or(AuthError::InvalidRequest("malformed request URL"))?;
        Ok(Target {
            method: req.method().as_str(),
            url,
        })
    }

    /// Checks `proof` (the `DPoP` header's value) for a request to `target`
    /// with `access_token`, whose `cnf.jkt` is `jkt`, and remembers it so
    /// that it cannot be used again. RFC 9449 section 4.3's checks, plus the
    /// binding of section 7.1: cheap ones first, the signature last but one,
    /// the replay check last (so that only a proof that passed everything
    /// else takes a place in the cache).
    pub(crate) fn verify(
        &self,
        proof: &HeaderValue,
        access_token: &str,
        jkt: &str,
        target: &Target<'_>,
    ) -> Result<(), AuthError> {
        if proof.len() > MAX_PROOF_BYTES {
            return Err(bad_proof("DPoP proof too large"));
        }
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
        match self.replays.remember(jkt, &checked.jti, checked.expires, now) {
            Remembered::New => Ok(()),
            Remembered::Seen => Err(bad_proof("DPoP proof replayed (jti already used)")),
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

/// The bytes of a `Host` value: a host name, an IPv4 or a bracketed IPv6
/// address, and a port. Anything else (a `/`, `@`, `?`...) would change the
/// URL built from it.
fn is_authority_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_' | b'~' | b':' | b'[' | b']' | b'%')
}

/// `raw` as a proof's `htu` is compared: an absolute http(s) URL without
/// user name or password, its scheme and host in lower case, its default
/// port dropped, dot segments resolved (RFC 3986 sections 6.2.2, 6.2.3),
/// percent-encodings in upper case and unreserved characters decoded,
/// without query and fragment (RFC 9449 section 4.3, check 9).
pub(crate) fn normalize_url(raw: &str) -> Option<String> {
    let url = Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let host = url.host_str().filter(|host| !host.is_empty())?;
    let mut normalized = String::with_capacity(raw.len());
    normalized.push_str(url.scheme());
    normalized.push_str("://");
    normalized.push_str(host);
    if let Some(port) = url.port() {
        let _ = write!(normalized, ":{port}");
    }
    let path = url.path().as_bytes();
    let mut at = 0;
    while at < path.len() {
        let escaped = (path[at] == b'%')
            .then(|| path.get(at + 1..at + 3))
            .flatten()
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') => {
                normalized.push(char::from(byte));
                at += 3;
            }
            Some(byte) => {
                let _ = write!(normalized, "%{byte:02X}");
                at += 3;
            }
            None => {
                normalized.push(char::from(path[at]));
                at += 1;
            }
        }
    }
    Some(normalized)
}

fn bad_proof(why: &str) -> AuthError {
    AuthError::InvalidDpopProof(why.to_owned())
}

/// A proof's JOSE header. Derived deserialization refuses a member given
/// twice.
#[derive(Deserialize)]
struct ProofHeader {
    typ: Option<String>,
    alg: String,
    jwk: Option<Jwk>,
    /// Present at all, even as `null` or `[]`.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// The proof's public key. Members of a private key are noticed, whatever
/// their value, so that a proof carrying one is refused.
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
    #[serde(default, deserialize_with = "present")]
    d: bool,
    #[serde(default, deserialize_with = "present")]
    p: bool,
    #[serde(default, deserialize_with = "present")]
    q: bool,
    #[serde(default, deserialize_with = "present")]
    dp: bool,
    #[serde(default, deserialize_with = "present")]
    dq: bool,
    #[serde(default, deserialize_with = "present")]
    qi: bool,
    #[serde(default, deserialize_with = "present")]
    oth: bool,
    #[serde(default, deserialize_with = "present")]
    k: bool,
}

impl Jwk {
    fn has_private_members(&self) -> bool {
        self.d || self.p || self.q || self.dp || self.dq || self.qi || self.oth || self.k
    }
}

/// The proof's claims; a member given twice is refused.
#[derive(Deserialize)]
struct ProofClaims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<serde_json::Number>,
    ath: Option<String>,
    nonce: Option<String>,
}

/// A public key from a proof's `jwk`, ready to verify its signature.
enum ProofKey {
    Ecdsa {
        algorithm: &'static EcdsaVerificationAlgorithm,
        /// The uncompressed point: `04 || x || y`.
        point: Vec<u8>,
    },
    Rsa {
        parameters: &'static RsaParameters,
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ed25519 {
        x: Vec<u8>,
    },
}

impl ProofKey {
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), AuthError> {
        let verified = match self {
            ProofKey::Ecdsa { algorithm, point } => {
                UnparsedPublicKey::new(*algorithm, point).verify(message, signature)
            }
            ProofKey::Rsa { parameters, n, e } => signature::RsaPublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            }
            .verify(parameters, message, signature),
            ProofKey::Ed25519 { x } => {
                UnparsedPublicKey::new(&signature::ED25519, x).verify(message, signature)
            }
        };
        verified.map_err(|_| bad_proof("invalid DPoP proof signature"))
    }
}

/// What a proof's algorithm needs of its key.
enum KeyType {
    /// An EC key on the curve `crv`, coordinates of `size` bytes.
    Ec {
        crv: &'static str,
        size: usize,
        algorithm: &'static EcdsaVerificationAlgorithm,
    },
    Rsa(&'static RsaParameters),
    Ed25519,
}

/// The key type `alg` needs; `None` for an algorithm not in [`ALGORITHMS`].
fn key_type(alg: &str) -> Option<KeyType> {
    let ec = |crv, size, algorithm| Some(KeyType::Ec { crv, size, algorithm });
    match alg {
        "ES256" => ec("P-256", 32, &signature::ECDSA_P256_SHA256_FIXED),
        "ES384" => ec("P-384", 48, &signature::ECDSA_P384_SHA384_FIXED),
        "ES512" => ec("P-521", 66, &signature::ECDSA_P521_SHA512_FIXED),
        "RS256" => Some(KeyType::Rsa(&signature::RSA_PKCS1_2048_8192_SHA256)),
        "RS384" => Some(KeyType::Rsa(&signature::RSA_PKCS1_2048_8192_SHA384)),
        "RS512" => Some(KeyType::Rsa(&signature::RSA_PKCS1_2048_8192_SHA512)),
        "PS256" => Some(KeyType::Rsa(&signature::RSA_PSS_2048_8192_SHA256)),
        "PS384" => Some(KeyType::Rsa(&signature::RSA_PSS_2048_8192_SHA384)),
        "PS512" => Some(KeyType::Rsa(&signature::RSA_PSS_2048_8192_SHA512)),
        "EdDSA" => Some(KeyType::Ed25519),
        _ => None,
    }
}

/// Decodes a base64url member of the key, strictly (no padding, no stray
/// trailing bits): its text then is the one canonical encoding, which the
/// thumbprint hashes.
fn member(value: Option<&String>, name: &'static str) -> Result<Vec<u8>, AuthError> {
    let value = value.ok_or_else(|| AuthError::InvalidDpopProof(format!("DPoP proof jwk has no {name}")))?;
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| AuthError::InvalidDpopProof(format!("DPoP proof jwk {name} is not base64url")))
}

/// The key of `jwk` for `alg`, and its RFC 7638 thumbprint (SHA-256,
/// base64url).
fn proof_key(alg: &str, jwk: &Jwk) -> Result<(ProofKey, String), AuthError> {
    if jwk.has_private_members() {
        return Err(bad_proof("DPoP proof jwk holds a private key"));
    }
    let key_type = key_type(alg).ok_or_else(|| {
        bad_proof(&format!(
            "DPoP proof algorithm not allowed: expected one of {ALGORITHMS}"
        ))
    })?;
    let (key, canonical) = match key_type {
        KeyType::Ec { crv, size, algorithm } => {
            if jwk.kty != "EC" || jwk.crv.as_deref() != Some(crv) {
                return Err(bad_proof(&format!(
                    "DPoP proof jwk must be an EC {crv} key for {alg}"
                )));
            }
            let (x, y) = (member(jwk.x.as_ref(), "x")?, member(jwk.y.as_ref(), "y")?);
            if x.len() != size || y.len() != size {
                return Err(bad_proof("DPoP proof jwk coordinates have the wrong length"));
            }
            let point = [&[4u8][..], &x, &y].concat();
            let canonical = format!(
                r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#,
                jwk.x.as_deref().unwrap_or_default(),
                jwk.y.as_deref().unwrap_or_default()
            );
            (ProofKey::Ecdsa { algorithm, point }, canonical)
        }
        KeyType::Rsa(parameters) => {
            if jwk.kty != "RSA" {
                return Err(bad_proof(&format!("DPoP proof jwk must be an RSA key for {alg}")));
            }
            let (n, e) = (member(jwk.n.as_ref(), "n")?, member(jwk.e.as_ref(), "e")?);
            // RFC 7518 section 6.3.1: the shortest big-endian form, so that
            // one key has one thumbprint.
            if n.first().is_none_or(|b| *b == 0) || e.first().is_none_or(|b| *b == 0) {
                return Err(bad_proof(
                    "DPoP proof jwk n and e must not start with a zero byte",
                ));
            }
            if n.len() < 256 {
                return Err(bad_proof("DPoP proof RSA key shorter than 2048 bits"));
            }
            let canonical = format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                jwk.e.as_deref().unwrap_or_default(),
                jwk.n.as_deref().unwrap_or_default()
            );
            (ProofKey::Rsa { parameters, n, e }, canonical)
        }
        KeyType::Ed25519 => {
            if jwk.kty != "OKP" || jwk.crv.as_deref() != Some("Ed25519") {
                return Err(bad_proof("DPoP proof jwk must be an OKP Ed25519 key for EdDSA"));
            }
            let x = member(jwk.x.as_ref(), "x")?;
            if x.len() != signature::ED25519_PUBLIC_KEY_LEN {
                return Err(bad_proof("DPoP proof jwk x has the wrong length"));
            }
            let canonical = format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                jwk.x.as_deref().unwrap_or_default()
            );
            (ProofKey::Ed25519 { x }, canonical)
        }
    };
    Ok((key, URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()))))
}

/// A proof's `typ` (RFC 9449 section 4.2).
const PROOF_TYP: Typ = Typ {
    accepted: &["dpop+jwt"],
    required: true,
};

/// Decoded JSON, refused when it nests too deeply.
fn json(bytes: Vec<u8>) -> Result<Vec<u8>, Malformed> {
    within_depth(&bytes).map(|()| bytes)
}

/// A proof that passed every check but its signature and its `jti`.
struct Checked<'a> {
    key: ProofKey,
    thumbprint: String,
    signing_input: &'a [u8],
    signature: Vec<u8>,
    jti: String,
    /// The last second at which its `iat` is still acceptable: at most
    /// `window` + `ahead` after now.
    expires: u64,
}

/// Reads `proof` and checks everything but its signature and its `jti`
/// (and its `nonce`, when `nonces` are issued); its `iat` must lie from
/// `window` seconds before `now` to `ahead` seconds after.
fn check<'a>(
    proof: &'a str,
    access_token: &str,
    target: &Target<'_>,
    now: u64,
    window: u64,
    ahead: u64,
    nonces: Option<&Nonces>,
) -> Result<Checked<'a>, AuthError> {
    let malformed = |why: Malformed| AuthError::InvalidDpopProof(format!("malformed DPoP proof: {why}"));
    let jws = CompactJws::split(proof).map_err(malformed)?;
    // Each part is decoded as it is needed: the header's key is checked
    // before the payload is read, the claims before the signature.
    let header = jws.header().and_then(json).map_err(malformed)?;
    let header: ProofHeader =
        serde_json::from_slice(&header).map_err(|_| bad_proof("malformed DPoP proof header"))?;
    check_header(header.typ.as_deref(), header.crit, &PROOF_TYP).map_err(|fault| match fault {
        HeaderFault::Typ => bad_proof("DPoP proof typ must be dpop+jwt"),
        HeaderFault::Crit => bad_proof("unsupported critical header (crit) in DPoP proof"),
    })?;
    let jwk = header
        .jwk
        .ok_or_else(|| bad_proof("DPoP proof has no jwk header"))?;
    let (key, thumbprint) = proof_key(&header.alg, &jwk)?;

    let claims = jws.payload().and_then(json).map_err(malformed)?;
    let claims: ProofClaims =
        serde_json::from_slice(&claims).map_err(|_| bad_proof("malformed DPoP proof claims"))?;
    let jti = claims
        .jti
        .filter(|jti| !jti.is_empty())
        .ok_or_else(|| bad_proof("DPoP proof has no jti"))?;
    if claims.htm.as_deref() != Some(target.method) {
        return Err(bad_proof("DPoP proof htm does not match the request method"));
    }
    let htu = claims.htu.ok_or_else(|| bad_proof("DPoP proof has no htu"))?;
    if normalize_url(&htu).as_deref() != Some(target.url.as_str()) {
        return Err(bad_proof("DPoP proof htu does not match the request URL"));
    }
    let iat = claims
        .iat
        .and_then(|iat| iat.as_f64())
        .filter(|iat| iat.is_finite() && *iat >= 0.0)
        .ok_or_else(|| bad_proof("DPoP proof has no numeric iat"))?;
    if iat < now.saturating_sub(window) as f64 {
        return Err(bad_proof("DPoP proof too old (iat)"));
    }
    if iat > now.saturating_add(ahead) as f64 {
        return Err(bad_proof("DPoP proof issued in the future (iat)"));
    }
    let ath = claims.ath.ok_or_else(|| bad_proof("DPoP proof has no ath"))?;
    if ath != URL_SAFE_NO_PAD.encode(digest(&SHA256, access_token.as_bytes())) {
        return Err(bad_proof("DPoP proof ath does not match the access token"));
    }
    if let Some(nonces) = nonces
        && !claims
            .nonce
            .as_deref()
            .is_some_and(|nonce| nonces.accepts(nonce, now))
    {
        return Err(AuthError::UseDpopNonce(nonces.issue(now)));
    }
    let signature = jws.signature().map_err(malformed)?;
    Ok(Checked {
        key,
        thumbprint,
        signing_input: jws.signing_input.as_bytes(),
        signature,
        jti,
        // In range: `iat` was checked to lie at most `ahead` after `now`.
        expires: (iat as u64).saturating_add(window),
    })
}

/// Server nonces (RFC 9449 section 9), made and checked without state: a
/// nonce is the time step it was issued in (steps as long as the `iat`
/// window) and a MAC of that step under the secret. It is accepted in its
/// step and the next, so for one to two windows; any instance with the same
/// secret accepts it. A nonce is no secret and not single-use: it only
/// proves that the proof was made after the server issued it, which a
/// client-chosen `iat` cannot (RFC 9449 section 11.2).
struct Nonces {
    key: hmac::Key,
    step: u64,
}

/// The bytes of a nonce: its step (8) and the first 16 of its MAC.
const NONCE_BYTES: usize = 24;

impl Nonces {
    fn new(secret: &str, step: u64) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
            step: step.max(1),
        }
    }

    /// The nonce of the step `now` falls in.
    fn issue(&self, now: u64) -> String {
        let step = now / self.step;
        let mut nonce = [0u8; NONCE_BYTES];
        nonce[..8].copy_from_slice(&step.to_be_bytes());
        nonce[8..].copy_from_slice(&self.mac(step).as_ref()[..NONCE_BYTES - 8]);
        URL_SAFE_NO_PAD.encode(nonce)
    }

    /// True for a nonce of this step or the one before, made with this secret.
    fn accepts(&self, nonce: &str, now: u64) -> bool {
        let mut bytes = [0u8; NONCE_BYTES];
        if URL_SAFE_NO_PAD.decode_slice(nonce, &mut bytes) != Ok(NONCE_BYTES) {
            return false;
        }
        let step = u64::from_be_bytes(bytes[..8].try_into().unwrap_or_default());
        let current = now / self.step;
        (step == current || step.checked_add(1) == Some(current))
            && verify_slices_are_equal(&bytes[8..], &self.mac(step).as_ref()[..NONCE_BYTES - 8]).is_ok()
    }

    fn mac(&self, step: u64) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(b"dpop-nonce/");
        context.update(&step.to_be_bytes());
        context.sign()
    }
}

/// What [`ReplayCache::remember`] found.
#[derive(Debug, PartialEq, Eq)]
enum Remembered {
    /// Not seen before; now remembered.
    New,
    /// Already remembered: a replay.
    Seen,
    /// The proof's key has its share of the cache already.
    OverShare,
    /// No room without forgetting a proof whose window is still open.
    Full,
}

/// The proofs accepted within their window, by a 128-bit hash of their key
/// thumbprint and `jti` (a collision takes 2^64 proofs), in shards by that
/// hash. Bounded twice: at most `capacity` proofs in all, and at most
/// `share` of any one key, so that one client cannot fill it for all. Both
/// are counted across the shards, since a client picks its `jti`s, and so
/// the shards its proofs land in; and a proof is refused only once every
/// shard has been swept of the expired ones. Over a bound, a new proof is
/// refused rather than an unexpired one forgotten, which would let that
/// one be replayed. Entries leave when their second has passed:
/// each is filed under the second its `iat` stops being acceptable, in a
/// ring of one slot per second of the longest wait.
struct ReplayCache {
    shards: Box<[Mutex<Shard>]>,
    counts: Counts,
    capacity: usize,
    share: u32,
    /// When a full cache was last reported (seconds since the epoch).
    warned: AtomicU64,
}

struct Shard {
    /// Each remembered proof.
    seen: HashMap<[u8; 16], Entry, RandomState>,
    /// The proofs whose last acceptable second is `s`, at `s % len`.
    expiring: Box<[Vec<[u8; 16]>]>,
    /// Every second up to this one has been swept.
    swept_through: u64,
}

/// A remembered proof: its last acceptable second, and whose it is.
struct Entry {
    expires: u64,
    key: KeyId,
}

/// A key, by the first 64 bits of its thumbprint (a SHA-256 hash): two keys
/// share an id by chance only, about 2^-64 for a given pair.
type KeyId = u64;

/// How many proofs are remembered, in all and per key. A count changes
/// while the shard its proof lives in is locked; a shard lock may be held
/// when a count lock is taken, never the other way round.
struct Counts {
    total: AtomicUsize,
    /// Proofs remembered per key, for keys with any, in shards by key.
    per_key: Box<[Mutex<HashMap<KeyId, u32, RandomState>>]>,
}

const SHARDS: usize = 16;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ReplayCache {
    /// A cache of `capacity` proofs, at most `share` of them one key's, none
    /// kept longer than `longest` seconds after it is accepted.
    fn new(capacity: usize, share: usize, longest: u64) -> Self {
        let slots = usize::try_from(longest + 2).unwrap_or(usize::MAX);
        let now = unix_now();
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    seen: HashMap::default(),
                    expiring: (0..slots).map(|_| Vec::new()).collect(),
                    swept_through: now.saturating_sub(1),
                })
            })
            .collect();
        Self {
            shards,
            counts: Counts {
                total: AtomicUsize::new(0),
                per_key: (0..SHARDS).map(|_| Mutex::default()).collect(),
            },
            capacity,
            share: u32::try_from(share).unwrap_or(u32::MAX),
            warned: AtomicU64::new(0),
        }
    }

    /// Remembers the proof `jti` of the key `jkt` until the end of second
    /// `expires`, unless it is already remembered or there is no room.
    fn remember(&self, jkt: &str, jti: &str, expires: u64, now: u64) -> Remembered {
        let id = proof_id(jkt, jti);
        let key = key_id(jkt);
        let mut remembered = self.remember_in_shard(id, key, expires, now);
        if matches!(remembered, Remembered::OverShare | Remembered::Full) {
            // The counts hold proofs of shards not swept since they expired:
            // swept, they may leave room. Only a refusal pays for this.
            for shard in &self.shards {
                lock(shard).sweep(now, &self.counts);
            }
            remembered = self.remember_in_shard(id, key, expires, now);
        }
        if remembered == Remembered::Full {
            let last = self.warned.load(Ordering::Relaxed);
            if last.saturating_add(60) <= now
                && self
                    .warned
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                log::warn!(
                    "DPoP replay cache full: refusing DPoP requests with 503 until proofs expire (raise DPOP_REPLAY_CACHE_SIZE)"
                );
            }
        }
        remembered
    }

    fn remember_in_shard(&self, id: [u8; 16], key: KeyId, expires: u64, now: u64) -> Remembered {
        let mut shard = lock(&self.shards[usize::from(id[0]) % SHARDS]);
        shard.sweep(now, &self.counts);
        if shard.seen.contains_key(&id) {
            return Remembered::Seen;
        }
        let admitted = self.counts.admit(key, self.share, self.capacity);
        if admitted == Remembered::New {
            shard.seen.insert(id, Entry { expires, key });
            let slot = (expires % shard.expiring.len() as u64) as usize;
            shard.expiring[slot].push(id);
        }
        admitted
    }
}

/// The 128-bit id of the proof `jti` of the key `jkt`: the first half of
/// SHA-256 of `jkt.jti` (a thumbprint holds no dot).
fn proof_id(jkt: &str, jti: &str) -> [u8; 16] {
    let mut context = digest::Context::new(&SHA256);
    context.update(jkt.as_bytes());
    context.update(b".");
    context.update(jti.as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&context.finish().as_ref()[..16]);
    id
}

/// The id of the key whose thumbprint is `jkt`: its first 64 bits, from
/// its first 12 base64url characters.
fn key_id(jkt: &str) -> KeyId {
    let mut bytes = [0u8; 9];
    let decoded = jkt
        .get(..12)
        .is_some_and(|prefix| URL_SAFE_NO_PAD.decode_slice(prefix, &mut bytes) == Ok(9));
    if !decoded {
        // Not a thumbprint (never, once checked against the proof's key).
        bytes[..8].copy_from_slice(&digest(&SHA256, jkt.as_bytes()).as_ref()[..8]);
    }
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(first)
}

impl Counts {
    /// Counts one more proof of `key`, unless the key has `share` already
    /// or `capacity` are remembered in all.
    fn admit(&self, key: KeyId, share: u32, capacity: usize) -> Remembered {
        let mut per_key = lock(&self.per_key[key as usize % SHARDS]);
        let count = per_key.entry(key).or_insert(0);
        if *count >= share {
            return Remembered::OverShare;
        }
        let counted = self
            .total
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |total| {
                (total < capacity).then_some(total + 1)
            });
        if counted.is_err() {
            if *count == 0 {
                per_key.remove(&key);
            }
            return Remembered::Full;
        }
        *count += 1;
        Remembered::New
    }

    /// Counts one proof of `key` fewer.
    fn release(&self, key: KeyId) {
        self.total.fetch_sub(1, Ordering::Relaxed);
        let mut per_key = lock(&self.per_key[key as usize % SHARDS]);
        if let hash_map::Entry::Occupied(mut count) = per_key.entry(key) {
            *count.get_mut() -= 1;
            if *count.get() == 0 {
                count.remove();
            }
        }
    }
}

impl Shard {
    /// Forgets the proofs whose last acceptable second is before `now`,
    /// and counts them out.
    fn sweep(&mut self, now: u64, counts: &Counts) {
        let Some(last) = now.checked_sub(1).filter(|last| *last > self.swept_through) else {
            return;
        };
        let slots = self.expiring.len() as u64;
        let first = (self.swept_through + 1).max(last.saturating_sub(slots - 1));
        for second in first..=last {
            let Shard { seen, expiring, .. } = self;
            // A proof filed here may expire a ring's turn later (after the
            // clock went back): it stays until then.
            expiring[(second % slots) as usize].retain(|id| match seen.entry(*id) {
                hash_map::Entry::Occupied(entry) if entry.get().expires > second => true,
                hash_map::Entry::Occupied(entry) => {
                    counts.release(entry.remove().key);
                    false
                }
                hash_map::Entry::Vacant(_) => false,
            });
        }
        self.swept_through = last;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_compared_normalized_without_query_and_fragment() {
        let same = [
            (
                "https://API.Example.com:443/a/./b/../c?x=1#f",
                "https://api.example.com/a/c",
            ),
            ("http://example.com", "http://example.com/"),
            (
                "http://example.com:8080/%7euser/%2fx%3a",
                "http://example.com:8080/~user/%2Fx%3A",
            ),
            ("http://[::1]:6060/api/private", "http://[::1]:6060/api/private"),
        ];
        for (raw, normalized) in same {
            assert_eq!(normalize_url(raw).as_deref(), Some(normalized), "{raw}");
        }
        for raw in [
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "/api/private",
            "https://",
        ] {
            assert_eq!(normalize_url(raw), None, "{raw}");
        }
    }

    /// RFC 9449's example key: its thumbprint (section 6.1) and its proof of
    /// a protected resource request (figure 13), with the example token.
    const RFC_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    const RFC_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
    const RFC_PROOF: &str = concat!(
        "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZ",
        "OXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIs",
        "ImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJj",
        "ZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05y",
        "V0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6",
        "Fy1dqd-jfxSYoMxhAJpLjA",
    );
    const RFC_IAT: u64 = 1_562_262_618;

    fn rfc_target() -> Target<'static> {
        Target {
            method: "GET",
            url: normalize_url("https://resource.example.org/protectedresource").unwrap(),
        }
    }

    #[test]
    fn the_rfc_9449_example_proof_verifies() {
        let checked = check(RFC_PROOF, RFC_TOKEN, &rfc_target(), RFC_IAT, 60, 60, None).unwrap();
        assert_eq!(checked.thumbprint, RFC_JKT);
        assert_eq!(checked.jti, "e1j3V_bKic8-LAEB");
        assert_eq!(checked.expires, RFC_IAT + 60);
        checked
            .key
            .verify(checked.signing_input, &checked.signature)
            .unwrap();
        // And each claim is held to it.
        let refused = |token: &str, target: &Target<'_>, now: u64| {
            check(RFC_PROOF, token, target, now, 60, 60, None)
                .err()
                .unwrap()
                .to_string()
        };
        assert!(refused("other", &rfc_target(), RFC_IAT).contains("ath"));
        let post = Target {
            method: "POST",
            ..rfc_target()
        };
        assert!(refused(RFC_TOKEN, &post, RFC_IAT).contains("htm"));
        let elsewhere = Target {
            url: normalize_url("https://resource.example.org/other").unwrap(),
            ..rfc_target()
        };
        assert!(refused(RFC_TOKEN, &elsewhere, RFC_IAT).contains("htu"));
        assert!(refused(RFC_TOKEN, &rfc_target(), RFC_IAT + 61).contains("too old"));
        assert!(refused(RFC_TOKEN, &rfc_target(), RFC_IAT - 61).contains("future"));
    }

    #[test]
    fn an_iat_may_lie_ahead_only_as_far_as_allowed() {
        // The proof's iat seen from 5 seconds before it: admitted with 5
        // seconds ahead allowed, remembered until iat + window all the same.
        let checked = check(RFC_PROOF, RFC_TOKEN, &rfc_target(), RFC_IAT - 5, 60, 5, None).unwrap();
        assert_eq!(checked.expires, RFC_IAT + 60);
        for (now, ahead) in [(RFC_IAT - 6, 5), (RFC_IAT - 1, 0)] {
            let refused = check(RFC_PROOF, RFC_TOKEN, &rfc_target(), now, 60, ahead, None);
            let why = refused.err().unwrap().to_string();
            assert!(why.contains("issued in the future (iat)"), "{now} {ahead}: {why}");
        }
        // The window behind is not the bound ahead.
        assert!(check(RFC_PROOF, RFC_TOKEN, &rfc_target(), RFC_IAT + 60, 60, 0, None).is_ok());
    }

    #[test]
    fn a_tampered_rfc_proof_fails_its_signature() {
        // The same header and signature over claims naming another jti.
        let (_, rest) = RFC_PROOF.split_once('.').unwrap();
        let (claims, signature) = rest.split_once('.').unwrap();
        let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        let forged = format!(
            "{}.{}.{signature}",
            RFC_PROOF.split('.').next().unwrap(),
            URL_SAFE_NO_PAD.encode(claims.replace("e1j3V_bKic8-LAEB", "e1j3V_bKic8-LAEC"))
        );
        let checked = check(&forged, RFC_TOKEN, &rfc_target(), RFC_IAT, 60, 60, None).unwrap();
        assert!(
            checked
                .key
                .verify(checked.signing_input, &checked.signature)
                .is_err()
        );
    }

    #[test]
    fn nonces_last_one_to_two_windows_and_need_the_secret() {
        let nonces = Nonces::new("a secret of at least thirty-two bytes", 60);
        let now = 1_800_000_000;
        let nonce = nonces.issue(now);
        assert_eq!(nonce.len(), 32);
        assert!(nonces.accepts(&nonce, now));
        assert!(
            nonces.accepts(&nonce, now - now % 60 + 119),
            "still in the next step"
        );
        assert!(!nonces.accepts(&nonce, now - now % 60 + 120), "two steps later");
        assert!(!nonces.accepts(&nonce, now - 60), "a step before it was issued");
        let other = Nonces::new("another secret of at least thirty-two bytes", 60);
        assert!(!other.accepts(&nonce, now), "made with another secret");
        let mut tampered = nonce.clone().into_bytes();
        tampered[20] = if tampered[20] == b'A' { b'B' } else { b'A' };
        assert!(!nonces.accepts(std::str::from_utf8(&tampered).unwrap(), now));
        for garbage in ["", "abc", &format!("{nonce}A"), &nonce[..31]] {
            assert!(!nonces.accepts(garbage, now), "{garbage:?}");
        }
    }

    #[test]
    fn a_proof_without_the_servers_nonce_is_answered_with_one() {
        let nonces = Nonces::new("a secret of at least thirty-two bytes", 60);
        let refused = check(
            RFC_PROOF,
            RFC_TOKEN,
            &rfc_target(),
            RFC_IAT,
            60,
            60,
            Some(&nonces),
        );
        match refused.err() {
            Some(AuthError::UseDpopNonce(nonce)) => assert!(nonces.accepts(&nonce, RFC_IAT)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn modes_parse_exactly() {
        assert_eq!("required".parse(), Ok(DpopMode::Required));
        assert!("Required".parse::<DpopMode>().is_err());
        assert!("on".parse::<DpopMode>().is_err());
    }

    /// A thumbprint, as a token's `cnf.jkt` holds it, of the key `name`.
    fn jkt(name: &str) -> String {
        URL_SAFE_NO_PAD.encode(digest(&SHA256, name.as_bytes()))
    }

    /// The shard the proof `jti` of `jkt` lands in.
    fn shard_of(jkt: &str, jti: &str) -> usize {
        usize::from(proof_id(jkt, jti)[0]) % SHARDS
    }

    /// `n` jtis whose proofs of `jkt` all land in shard `shard`, as a
    /// client choosing its jtis can make them.
    fn jtis_in_shard(jkt: &str, shard: usize, n: usize) -> Vec<String> {
        (0..)
            .map(|n| n.to_string())
            .filter(|jti| shard_of(jkt, jti) == shard)
            .take(n)
            .collect()
    }

    fn remembered(cache: &ReplayCache) -> usize {
        cache.shards.iter().map(|s| lock(s).seen.len()).sum()
    }

    /// The cache's counts, checked against its entries: proofs in all, and
    /// keys with any.
    fn counted(cache: &ReplayCache) -> (usize, usize) {
        let total = cache.counts.total.load(Ordering::Relaxed);
        assert_eq!(total, remembered(cache), "the total is exact");
        let per_key: Vec<u32> = (cache.counts.per_key.iter())
            .flat_map(|counts| lock(counts).values().copied().collect::<Vec<_>>())
            .collect();
        assert_eq!(per_key.iter().map(|n| *n as usize).sum::<usize>(), total);
        (total, per_key.len())
    }

    #[test]
    fn the_replay_cache_refuses_a_second_use_until_the_window_ends() {
        let cache = ReplayCache::new(100, 100, 65);
        let now = unix_now();
        let k = jkt("k");
        assert_eq!(cache.remember(&k, "1", now + 60, now), Remembered::New);
        assert_eq!(cache.remember(&k, "1", now + 60, now + 60), Remembered::Seen);
        assert_eq!(cache.remember(&k, "2", now + 60, now), Remembered::New);
        // Another key may use the same jti.
        assert_eq!(cache.remember(&jkt("l"), "1", now + 60, now), Remembered::New);
        // Forgotten once its last second has passed (swept as its shard is next used).
        assert_eq!(cache.remember(&k, "1", now + 200, now + 61), Remembered::New);
        assert_eq!(cache.remember(&k, "2", now + 200, now + 61), Remembered::New);
        assert_eq!(remembered(&cache), 3);
    }

    #[test]
    fn a_key_over_its_share_is_refused_while_another_key_is_admitted() {
        let cache = ReplayCache::new(10, 3, 65);
        let now = unix_now();
        let (greedy, modest) = (jkt("greedy"), jkt("modest"));
        for jti in ["1", "2", "3"] {
            assert_eq!(cache.remember(&greedy, jti, now + 60, now), Remembered::New);
        }
        for jti in ["4", "5", "6", "7"] {
            assert_eq!(cache.remember(&greedy, jti, now + 60, now), Remembered::OverShare);
        }
        // A replay is still a replay, whatever the key's share.
        assert_eq!(cache.remember(&greedy, "1", now + 60, now), Remembered::Seen);
        for jti in ["1", "2", "3"] {
            assert_eq!(cache.remember(&modest, jti, now + 60, now), Remembered::New);
        }
        assert_eq!(counted(&cache), (6, 2));
    }

    #[test]
    fn jtis_crafted_into_one_shard_hold_neither_more_nor_less_than_the_bounds() {
        // Six proofs in all, at most four of one key, every one in shard 5:
        // a share and a capacity per shard would refuse them early, or let
        // a key keep more than its share across shards.
        let cache = ReplayCache::new(6, 4, 65);
        let now = unix_now();
        let (greedy, other, third) = (jkt("greedy"), jkt("other"), jkt("third"));
        let crafted = jtis_in_shard(&greedy, 5, 10);
        let outcomes: Vec<Remembered> = (crafted.iter())
            .map(|jti| cache.remember(&greedy, jti, now + 60, now))
            .collect();
        assert_eq!(outcomes.iter().filter(|o| **o == Remembered::New).count(), 4);
        assert!(
            outcomes[4..].iter().all(|o| *o == Remembered::OverShare),
            "{outcomes:?}"
        );
        assert_eq!(lock(&cache.shards[5]).seen.len(), 4, "all in one shard");
        for jti in jtis_in_shard(&other, 5, 2) {
            assert_eq!(cache.remember(&other, &jti, now + 60, now), Remembered::New);
        }
        // The cache is full, wherever the next proof lands.
        for shard in [5, 0] {
            let jti = &jtis_in_shard(&third, shard, 1)[0];
            assert_eq!(cache.remember(&third, jti, now + 60, now), Remembered::Full);
        }
        assert_eq!(counted(&cache), (6, 2));
    }

    #[test]
    fn entries_leave_at_iat_plus_window_and_give_their_key_room_again() {
        let cache = ReplayCache::new(100, 2, 65);
        let now = unix_now();
        let key = jkt("key");
        // Two proofs in shards of their own, then a third in yet another.
        let early = &jtis_in_shard(&key, 1, 1)[0];
        let later = &jtis_in_shard(&key, 2, 1)[0];
        let next = jtis_in_shard(&key, 3, 2);
        assert_eq!(cache.remember(&key, early, now + 10, now), Remembered::New);
        assert_eq!(cache.remember(&key, later, now + 12, now), Remembered::New);
        assert_eq!(
            cache.remember(&key, &next[0], now + 70, now + 10),
            Remembered::OverShare
        );
        assert_eq!(counted(&cache), (2, 1));
        // Once the first has expired it is counted out, though no proof has
        // landed in its shard since.
        assert_eq!(
            cache.remember(&key, &next[0], now + 71, now + 11),
            Remembered::New
        );
        assert_eq!(
            cache.remember(&key, &next[1], now + 71, now + 11),
            Remembered::OverShare
        );
        assert_eq!(counted(&cache), (2, 1));
        assert_eq!(
            cache.remember(&key, &next[1], now + 73, now + 13),
            Remembered::New
        );
        // When all have expired, nothing is counted for the key any more.
        assert_eq!(
            cache.remember(&jkt("other"), "x", now + 200, now + 200),
            Remembered::New
        );
        for shard in &cache.shards {
            lock(shard).sweep(now + 200, &cache.counts);
        }
        assert_eq!(counted(&cache), (1, 1));
    }

    #[test]
    fn a_full_replay_cache_refuses_rather_than_forgets() {
        let cache = ReplayCache::new(3, 1, 65);
        let now = unix_now();
        let outcomes: Vec<Remembered> = (0..20)
            .map(|n| cache.remember(&jkt(&n.to_string()), "1", now + 60, now))
            .collect();
        assert_eq!(outcomes[..3], [Remembered::New, Remembered::New, Remembered::New]);
        assert!(
            outcomes[3..].iter().all(|o| *o == Remembered::Full),
            "{outcomes:?}"
        );
        assert_eq!(counted(&cache), (3, 3));
        // Once their window has passed, there is room again.
        assert_eq!(
            cache.remember(&jkt("0"), "1", now + 300, now + 61),
            Remembered::New
        );
        for shard in &cache.shards {
            lock(shard).sweep(now + 61, &cache.counts);
        }
        assert_eq!(counted(&cache), (1, 1));
    }

    #[test]
    fn a_clock_that_jumps_does_not_lose_or_keep_entries_forever() {
        let cache = ReplayCache::new(100, 100, 10);
        let now = unix_now();
        let k = jkt("k");
        // One shard, swept as each of them is remembered.
        let [a, b, c] = <[String; 3]>::try_from(jtis_in_shard(&k, 0, 3)).unwrap();
        assert_eq!(cache.remember(&k, &a, now + 10, now), Remembered::New);
        // Far ahead: everything is swept.
        assert_eq!(
            cache.remember(&k, &b, now + 10_010, now + 10_000),
            Remembered::New
        );
        assert_eq!(
            cache.remember(&k, &a, now + 10_010, now + 10_000),
            Remembered::New
        );
        // Back in time: entries stay until their second comes round.
        assert_eq!(cache.remember(&k, &c, now + 15, now + 5), Remembered::New);
        assert_eq!(cache.remember(&k, &c, now + 15, now + 9_000), Remembered::Seen);
        assert_eq!(
            cache.remember(&k, &c, now + 10_050, now + 10_040),
            Remembered::New
        );
        assert_eq!(counted(&cache), (1, 1));
    }

    #[test]
    fn a_key_is_known_by_its_thumbprint() {
        let (a, b) = (jkt("a"), jkt("b"));
        assert_eq!(key_id(&a), key_id(&a.clone()));
        assert_ne!(key_id(&a), key_id(&b));
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest(&SHA256, b"a").as_ref()[..8]);
        assert_eq!(key_id(&a), u64::from_be_bytes(first));
        // Anything else is hashed, never refused.
        assert_ne!(key_id("k"), key_id("l"));
    }
}
