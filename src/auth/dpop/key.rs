//! The key a DPoP proof is signed with: the proof's `jwk` header read into
//! a public key for the proof's algorithm, that key's RFC 7638 thumbprint
//! (what a bound token's `cnf.jkt` names), and the signature check.
//! Signatures are verified with aws-lc-rs from the key's raw components, for
//! a fixed list of asymmetric algorithms: never `none`, never a MAC.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::signature::{self, EcdsaVerificationAlgorithm, RsaParameters, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::auth::error::{AuthError, bad_proof};
use crate::auth::jose::present;

/// The signature algorithms a proof may use, as a DPoP challenge announces
/// them (`algs`): asymmetric only (RFC 9449 section 4.3, check 5).
pub(crate) const ALGORITHMS: &str = "ES256 ES384 ES512 EdDSA RS256 RS384 RS512 PS256 PS384 PS512";

/// The proof's public key. Members of a private key are noticed, whatever
/// their value, so that a proof carrying one is refused.
#[derive(Deserialize)]
pub(super) struct Jwk {
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

/// A public key from a proof's `jwk`, ready to verify its signature.
pub(super) enum ProofKey {
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
    pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), AuthError> {
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
pub(super) fn proof_key(alg: &str, jwk: &Jwk) -> Result<(ProofKey, String), AuthError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::dpop::proof::check;
    use crate::auth::dpop::proof::tests::{RFC_IAT, RFC_PROOF, RFC_TOKEN, rfc_target};

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
    fn the_rfc_7638_example_key_has_its_thumbprint() {
        // RFC 7638 section 3.1's example key, with members the thumbprint
        // leaves out (alg, kid), and its thumbprint.
        let jwk: Jwk = serde_json::from_str(concat!(
            r#"{"kty":"RSA","e":"AQAB","alg":"RS256","kid":"2011-04-29","n":""#,
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWK",
            "RXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMic",
            "AtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3",
            "XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            r#""}"#,
        ))
        .unwrap();
        let (_, thumbprint) = proof_key("RS256", &jwk).unwrap();
        assert_eq!(thumbprint, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }
}
