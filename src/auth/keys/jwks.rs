//! Turning a published JWK Set into the keys we are willing to verify with.
//!
//! One bad entry never spoils the set: each key is checked on its own and
//! skipped (with a log line) when it is not an RS256 signing key we can use.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use crate::auth::keys::parsed::Rs256Key;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// Verification keys by `kid`.
pub(crate) type KeySet = HashMap<String, Arc<PublishedKey>>;

/// A document that is not a JWK Set at all.
#[derive(Debug, thiserror::Error)]
#[error("not a JSON key set with a \"keys\" array: {0}")]
pub(crate) struct NotAKeySet(#[from] serde_json::Error);

/// A usable key, with the components it was built from: two keys published
/// under one `kid` are the same key only if these match.
pub(crate) struct PublishedKey {
    /// What signatures are checked with.
    pub(crate) verifier: Rs256Key,
    modulus: Vec<u8>,
    exponent: Vec<u8>,
}

impl PartialEq for PublishedKey {
    fn eq(&self, other: &Self) -> bool {
        self.modulus == other.modulus && self.exponent == other.exponent
    }
}

impl std::fmt::Debug for PublishedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublishedKey(RSA, {} bits)", modulus_bits(&self.modulus))
    }
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawKey {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// Parses a JWKS document. Fails only when the document itself is not a
/// JSON object with a `keys` array; unusable keys are skipped.
pub(crate) fn parse_key_set(body: &[u8]) -> Result<KeySet, NotAKeySet> {
    let raw: RawSet = serde_json::from_slice(body)?;
    let mut keys = KeySet::new();
    for (index, value) in raw.keys.into_iter().enumerate() {
        match usable_key(value) {
            Ok((kid, key)) => match keys.entry(kid) {
                Entry::Occupied(first) => {
                    log::warn!(
                        "JWKS key #{index}: duplicate kid {:?} skipped; the first one is kept",
                        first.key()
                    )
                }
                Entry::Vacant(slot) => {
                    slot.insert(Arc::new(key));
                }
            },
            Err(why) => log::warn!("JWKS key #{index} skipped: {why}"),
        }
    }
    Ok(keys)
}

fn usable_key(value: serde_json::Value) -> Result<(String, PublishedKey), String> {
    let raw: RawKey = serde_json::from_value(value).map_err(|e| format!("malformed JWK ({e})"))?;
    if raw.kty != "RSA" {
        return Err(format!("kty {:?} is not RSA", raw.kty));
    }
    if let Some(usage) = raw.usage.as_deref().filter(|u| *u != "sig") {
        return Err(format!("use {usage:?} is not sig"));
    }
    if let Some(alg) = raw.alg.as_deref().filter(|a| *a != "RS256") {
        return Err(format!("alg {alg:?} is not RS256"));
    }
    let kid = raw.kid.filter(|k| !k.is_empty()).ok_or("no kid")?;
    let n = strip_leading_zeros(decode_component(raw.n.as_deref(), "n")?);
    let e = strip_leading_zeros(decode_component(raw.e.as_deref(), "e")?);
    // RS256 verification accepts 2048 to 8192-bit moduli; anything else
    // could never verify a signature, so it is not worth keeping. An RSA
    // modulus is odd.
    let bits = modulus_bits(&n);
    if !(2048..=8192).contains(&bits) || n.last().is_some_and(|b| b % 2 == 0) {
        return Err(format!(
            "kid {kid:?}: modulus of {bits} bits is not an odd 2048-8192-bit number"
        ));
    }
    // 65537, as Auth0 and every mainstream issuer publish: small exponents
    // are where RSA signature forgeries against lax verifiers live.
    if e != [0x01, 0x00, 0x01] {
        return Err(format!("kid {kid:?}: exponent is not 65537"));
    }
    let verifier = Rs256Key::new(&n, &e).ok_or_else(|| format!("kid {kid:?}: not a usable RSA key"))?;
    Ok((
        kid,
        PublishedKey {
            verifier,
            modulus: n,
            exponent: e,
        },
    ))
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

/// The exact bit length of a big-endian number without leading zero bytes.
fn modulus_bits(n: &[u8]) -> usize {
    n.first()
        .map_or(0, |top| n.len() * 8 - top.leading_zeros() as usize)
}

fn decode_component(value: Option<&str>, name: &str) -> Result<Vec<u8>, String> {
    let value = value.ok_or_else(|| format!("no {name}"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| format!("{name} is not base64url"))?;
    if bytes.is_empty() {
        return Err(format!("{name} is empty"));
    }
    Ok(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A key good enough to store and compare (it verifies nothing).
    pub(crate) fn some_key() -> Arc<PublishedKey> {
        let body = json!({"keys": [{"kty": "RSA", "kid": "k", "n": modulus(256), "e": "AQAB"}]});
        parse_key_set(body.to_string().as_bytes())
            .unwrap()
            .remove("k")
            .unwrap()
    }

    fn modulus(bytes: usize) -> String {
        URL_SAFE_NO_PAD.encode(vec![0xC3; bytes])
    }

    #[test]
    fn keeps_only_usable_rs256_signing_keys() {
        let n = modulus(256);
        let body = json!({"keys": [
            {"kty": "RSA", "kid": "good", "use": "sig", "alg": "RS256", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "bare", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "good", "n": modulus(300), "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "rs512", "alg": "RS512", "n": n, "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "weak", "n": modulus(128), "e": "AQAB"},
            {"kty": "RSA", "kid": "short", "n": URL_SAFE_NO_PAD.encode([&[0x01][..], &[0xC3; 255]].concat()), "e": "AQAB"},
            {"kty": "RSA", "kid": "even-n", "n": URL_SAFE_NO_PAD.encode([0xC2; 256]), "e": "AQAB"},
            {"kty": "RSA", "kid": "e-one", "n": n, "e": "AQ"},
            {"kty": "RSA", "kid": "e-even", "n": n, "e": "AQAA"},
            {"kty": "RSA", "kid": "e-three", "n": n, "e": "Aw"},
            {"kty": "RSA", "kid": "bad-n", "n": "!!", "e": "AQAB"},
            {"kty": "RSA", "kid": "no-e", "n": n},
            {"kty": "RSA", "n": n, "e": "AQAB"},
            {"kty": 7},
            "not an object"
        ]});
        let keys = parse_key_set(body.to_string().as_bytes()).unwrap();
        let mut kids: Vec<_> = keys.keys().cloned().collect();
        kids.sort();
        assert_eq!(kids, vec!["bare", "good"]);
    }

    #[test]
    fn the_same_kid_with_other_components_is_another_key() {
        let set = |n: String| {
            let body = json!({"keys": [{"kty": "RSA", "kid": "k", "n": n, "e": "AQAB"}]});
            parse_key_set(body.to_string().as_bytes())
                .unwrap()
                .remove("k")
                .unwrap()
        };
        assert_eq!(set(modulus(256)), set(modulus(256)));
        assert_ne!(set(modulus(256)), set(URL_SAFE_NO_PAD.encode([0xC5; 256])));
    }

    #[test]
    fn rejects_documents_that_are_not_key_sets() {
        for body in [&b"[]"[..], b"{}", b"<html>", b"{\"keys\": 3}"] {
            assert!(parse_key_set(body).is_err());
        }
    }
}
