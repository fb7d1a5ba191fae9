//! Turning a published JWK Set into the keys we are willing to verify with.
//!
//! One bad entry never spoils the set: each key is checked on its own and
//! skipped (with a log line) when it is not an RS256 signing key we can use.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;

/// Verification keys by `kid`.
pub type KeySet = HashMap<String, Arc<DecodingKey>>;

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
pub fn parse_key_set(body: &[u8]) -> Result<KeySet, String> {
    let raw: RawSet =
        serde_json::from_slice(body).map_err(|e| format!("not a JSON key set with a \"keys\" array: {e}"))?;
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

fn usable_key(value: serde_json::Value) -> Result<(String, DecodingKey), String> {
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
    let n = decode_component(raw.n.as_deref(), "n")?;
    let e = decode_component(raw.e.as_deref(), "e")?;
    // RS256 verification accepts 2048 to 8192-bit moduli; anything else
    // could never verify a signature, so it is not worth keeping.
    let bits = (n.len() - n.iter().take_while(|b| **b == 0).count()) * 8;
    if !(2048..=8192).contains(&bits) {
        return Err(format!(
            "kid {kid:?}: modulus of about {bits} bits is outside 2048-8192"
        ));
    }
    if e.len() > 8 || e.iter().all(|b| *b == 0) {
        return Err(format!("kid {kid:?}: invalid exponent"));
    }
    Ok((kid, DecodingKey::from_rsa_raw_components(&n, &e)))
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
mod tests {
    use super::*;
    use serde_json::json;

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
    fn rejects_documents_that_are_not_key_sets() {
        for body in [&b"[]"[..], b"{}", b"<html>", b"{\"keys\": 3}"] {
            assert!(parse_key_set(body).is_err());
        }
    }
}
