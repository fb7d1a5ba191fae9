//! RS256 verification with keys parsed once. jsonwebtoken hands its crypto
//! provider the key bytes on every verification, and aws-lc would rebuild
//! the RSA key from them each time (allocations and its Montgomery set-up,
//! a few microseconds per new token). The provider installed here looks the
//! key up among those the JWKS parsing has already turned into aws-lc keys,
//! and leaves everything else (signing, other algorithms, keys it has not
//! seen) to jsonwebtoken's own aws-lc provider.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use foldhash::fast::RandomState;
use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier, aws_lc};
use jsonwebtoken::errors::Result;
use jsonwebtoken::signature::{Error, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey};

/// Keys remembered at most; past it, the oldest set is forgotten (keys it
/// held are then verified the slow way, still correctly).
const MAX_KEYS: usize = 1024;

/// Parsed keys by the DER bytes their `DecodingKey` holds.
type ParsedKeys = HashMap<Box<[u8]>, Arc<ParsedPublicKey>, RandomState>;

static PARSED: LazyLock<RwLock<ParsedKeys>> = LazyLock::new(Default::default);

static PROVIDER: LazyLock<CryptoProvider> = LazyLock::new(|| CryptoProvider {
    verifier_factory: verifier,
    ..aws_lc::DEFAULT_PROVIDER.clone()
});

/// Makes jsonwebtoken verify through [`PROVIDER`]. It must run before
/// jsonwebtoken's first use (which fixes its provider): the validator and
/// the signing keys call it. Harmless if another provider got there first
/// (verification then takes the slow way).
pub(crate) fn install() {
    static INSTALLED: LazyLock<()> = LazyLock::new(|| {
        let _ = PROVIDER.install_default();
    });
    LazyLock::force(&INSTALLED);
}

/// The key for RSA public key `der` (PKCS#1 `RSAPublicKey`), parsed now
/// and remembered for verifications.
pub(crate) fn decoding_key(der: &[u8]) -> DecodingKey {
    if let Ok(parsed) = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der) {
        let mut keys = PARSED.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if keys.len() >= MAX_KEYS {
            keys.clear();
        }
        keys.insert(der.into(), Arc::new(parsed));
    }
    DecodingKey::from_rsa_der(der)
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if *algorithm == Algorithm::RS256
        && let Ok(der) = key.try_get_as_bytes()
    {
        let parsed = PARSED
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(der)
            .cloned();
        if let Some(parsed) = parsed {
            return Ok(Box::new(ParsedRs256(parsed)));
        }
    }
    (aws_lc::DEFAULT_PROVIDER.verifier_factory)(algorithm, key)
}

/// RS256 with a key parsed in advance.
struct ParsedRs256(Arc<ParsedPublicKey>);

impl Verifier<Vec<u8>> for ParsedRs256 {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> std::result::Result<(), Error> {
        self.0.verify_sig(message, signature).map_err(Error::from_source)
    }
}

impl JwtVerifier for ParsedRs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

/// The PKCS#1 `RSAPublicKey` DER of modulus `n` and exponent `e` (big-endian,
/// no leading zeros): `SEQUENCE { INTEGER n, INTEGER e }`.
pub(crate) fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn integer(bytes: &[u8], out: &mut Vec<u8>) {
        // A leading zero keeps a number whose top bit is set positive.
        let pad = bytes.first().is_some_and(|b| b & 0x80 != 0);
        out.push(0x02);
        length(bytes.len() + usize::from(pad), out);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(bytes);
    }
    fn length(len: usize, out: &mut Vec<u8>) {
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    integer(n, &mut body);
    integer(e, &mut body);
    let mut der = Vec::with_capacity(body.len() + 4);
    der.push(0x30);
    length(body.len(), &mut der);
    der.extend_from_slice(&body);
    der
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parsed_key_verifies_as_jsonwebtokens_own_does() {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        install();
        let key = crate::dev::SigningKey::generate("k").unwrap();
        let jwk = key.public_jwk();
        let component = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
        let der = rsa_public_key_der(&component("n"), &component("e"));
        let decoding = decoding_key(&der);
        let token = key.sign(&serde_json::json!({"sub": "a"})).unwrap();
        let (message, signature) = token.rsplit_once('.').unwrap();
        let verify = |message: &str| {
            jsonwebtoken::crypto::verify(signature, message.as_bytes(), &decoding, Algorithm::RS256).unwrap()
        };
        assert!(verify(message), "the signature verifies");
        assert!(!verify(&format!("{message}x")), "another message does not");
        let parsed = PARSED.read().unwrap().contains_key(der.as_slice());
        assert!(parsed, "the key was parsed in advance");
    }
}
