//! RS256 verification with keys parsed once: each published key becomes
//! an aws-lc public key when its JWK Set is read, so that a new token costs
//! the signature check alone, not a key rebuilt from its bytes (allocations
//! and a Montgomery set-up, a few microseconds a token).

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};

/// An RSA public key, ready to check RS256 (RSASSA-PKCS1-v1_5 with SHA-256)
/// signatures.
pub(crate) struct Rs256Key(ParsedPublicKey);

impl Rs256Key {
    /// The key of modulus `n` and exponent `e` (big-endian, no leading
    /// zeros); `None` when aws-lc refuses it (outside 2048 to 8192 bits).
    pub(crate) fn new(n: &[u8], e: &[u8]) -> Option<Self> {
        ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, rsa_public_key_der(n, e))
            .ok()
            .map(Self)
    }

    /// True when `signature` is this key's RS256 signature of `message`.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.0.verify_sig(message, signature).is_ok()
    }
}

/// The PKCS#1 `RSAPublicKey` DER of modulus `n` and exponent `e` (big-endian,
/// no leading zeros): `SEQUENCE { INTEGER n, INTEGER e }`.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
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
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, DecodingKey};

    #[test]
    fn a_parsed_key_verifies_as_jsonwebtokens_own_does() {
        let key = crate::dev::SigningKey::generate("k").unwrap();
        let jwk = key.public_jwk();
        let component = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
        let parsed = Rs256Key::new(&component("n"), &component("e")).unwrap();
        let reference = DecodingKey::from_rsa_der(&rsa_public_key_der(&component("n"), &component("e")));
        let token = key.sign(&serde_json::json!({"sub": "a"})).unwrap();
        let (message, signature) = token.rsplit_once('.').unwrap();
        let raw = URL_SAFE_NO_PAD.decode(signature).unwrap();
        for message in [message.to_owned(), format!("{message}x")] {
            let theirs =
                jsonwebtoken::crypto::verify(signature, message.as_bytes(), &reference, Algorithm::RS256)
                    .unwrap();
            assert_eq!(parsed.verifies(message.as_bytes(), &raw), theirs, "{message}");
        }
        assert!(
            parsed.verifies(message.as_bytes(), &raw),
            "the signature verifies"
        );
        let mut flipped = raw.clone();
        flipped[10] ^= 1;
        assert!(
            !parsed.verifies(message.as_bytes(), &flipped),
            "a changed signature does not"
        );
    }
}
