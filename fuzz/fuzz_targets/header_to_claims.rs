//! Fuzzes the path from a raw `Authorization` header to claims: bearer
//! parsing, JOSE header, key lookup, signature, claims and permission check,
//! both as a new token (full verification) and as a repeat (through the
//! verified-token cache). Nothing may panic, whatever the bytes, and the two
//! paths must agree.
//!
//! An input with a newline is an `Authorization` value, the newline, then a
//! `DPoP` proof for `GET` [`SEED_URL`]: the proof is checked as the guard
//! checks it. A proof accepted once must be refused the second time, and
//! never accepted with a token that fails validation.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run header_to_claims -- -max_total_time=60`

#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use actix_auth0_api::dev::{DEV_AUDIENCE, DevIssuer};
use actix_auth0_api::test_support::{Validator, access_token};
use actix_web::http::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

/// The issuer the seed tokens in `corpus/header_to_claims/` were minted for
/// (`token --data-dir fuzz/dev-issuer` with the default HOST and PORT).
const SEED_ISSUER: &str = "http://127.0.0.1:6060/";

/// The request the seed proofs were made for
/// (`proof --url http://127.0.0.1:6060/api/private`).
const SEED_URL: &str = "http://127.0.0.1:6060/api/private";

struct Harness {
    runtime: tokio::runtime::Runtime,
    validator: Validator,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        // A fuzzing-only development key, committed so that seeds really verify.
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("dev-issuer/signing-key.pem");
        let pem = std::fs::read_to_string(key).expect("fuzz/dev-issuer/signing-key.pem");
        let issuer = DevIssuer::from_pem(SEED_ISSUER.into(), &pem).expect("a usable key");
        let settings = Validator::settings(SEED_ISSUER, DEV_AUDIENCE);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let validator = runtime.block_on(async { Validator::new(&settings, &issuer.public_jwks()) });
        Harness { runtime, validator }
    })
}

fuzz_target!(|data: &[u8]| {
    let (authorization, proof) = match data.iter().position(|byte| *byte == b'\n') {
        Some(newline) => (&data[..newline], Some(&data[newline + 1..])),
        None => (data, None),
    };
    let Ok(value) = HeaderValue::from_bytes(authorization) else { return };
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value);
    let Ok(token) = access_token(&headers) else { return };
    let harness = harness();
    let verified = harness.runtime.block_on(harness.validator.verify(&token));
    // Twice through the cache: the first fills it, the second is a hit.
    for _ in 0..2 {
        let cached = harness.runtime.block_on(harness.validator.validate(&token));
        assert_eq!(cached.is_ok(), verified.is_ok(), "cache and verification disagree");
        if let (Ok(cached), Ok(verified)) = (&cached, &verified) {
            assert_eq!(cached, verified);
            let _ = cached.has_permission("read:messages");
        }
    }
    let Some(Ok(proof)) = proof.map(std::str::from_utf8) else { return };
    let dpop = || {
        let check = harness.validator.validate_dpop(&token, proof, "GET", SEED_URL);
        harness.runtime.block_on(check)
    };
    if dpop().is_ok() {
        assert!(verified.is_ok(), "a DPoP request was accepted with an invalid token");
        assert!(dpop().is_err(), "a DPoP proof was accepted twice");
    }
});
