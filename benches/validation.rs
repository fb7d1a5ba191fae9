//! The validation path, without HTTP: `cold` verifies the RS256 signature
//! (what the first request with a token pays), `warm` answers from the token
//! cache (what every repeat pays), `DPoP` adds what every request with a
//! DPoP-bound token pays on top: its proof (ES256) checked and remembered.
//!
//! `cargo bench --bench validation`

use std::time::{SystemTime, UNIX_EPOCH};

use actix_auth0_api::dev::{DpopKey, SigningKey, jwks};
use actix_auth0_api::test_support::Validator;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::json;

const ISSUER: &str = "https://bench.example/";
const AUDIENCE: &str = "https://api.bench.example";

/// The URL DPoP proofs are made for.
const URL: &str = "https://api.bench.example/api/private";

/// A validator, a bearer token, and a token bound to `dpop`.
fn validator(dpop: &DpopKey) -> (Validator, String, String) {
    let key = SigningKey::generate("bench").expect("RSA key");
    let mut settings = Validator::settings(ISSUER, AUDIENCE);
    // One key makes every proof here, more than a key's share in a window:
    // the bench measures the check, not the share.
    settings.dpop.replay_per_key = settings.dpop.replay_cache_size;
    let validator = Validator::new(&settings, &jwks([&key]));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let mut claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "auth0|bench", "iat": now, "exp": now + 3600,
        "scope": "openid read:messages", "permissions": ["read:admin-messages"],
    });
    let token = key.sign(&claims).expect("token");
    claims["cnf"] = json!({ "jkt": dpop.thumbprint() });
    let bound = key.sign(&claims).expect("token");
    (validator, token, bound)
}

fn validation(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dpop = DpopKey::generate().expect("EC key");
    let (validator, token, bound) = validator(&dpop);
    runtime
        .block_on(validator.validate(&token))
        .expect("the bench token is valid");
    let proof = || dpop.proof("GET", URL, &bound, None).expect("proof");
    runtime
        .block_on(validator.validate_dpop(&bound, &proof(), "GET", URL))
        .expect("the bench proof is valid");

    let mut group = c.benchmark_group("validate");
    group.bench_function("cold (RS256 signature verify)", |b| {
        b.to_async(&runtime)
            .iter(|| async { validator.verify(&token).await.unwrap() })
    });
    group.bench_function("warm (token cache hit)", |b| {
        b.to_async(&runtime)
            .iter(|| async { validator.validate(&token).await.unwrap() })
    });
    // A proof is single-use: each iteration gets a fresh one, signed
    // outside the measured time.
    let (validator, bound) = (&validator, &bound);
    group.bench_function(
        "DPoP (token cache hit, ES256 proof checked and remembered)",
        |b| {
            b.to_async(&runtime).iter_batched(
                proof,
                |proof| async move { validator.validate_dpop(bound, &proof, "GET", URL).await.unwrap() },
                BatchSize::SmallInput,
            )
        },
    );
    group.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
