//! The validation path, without HTTP: `cold` verifies the RS256 signature
//! (what the first request with a token pays), `warm` answers from the token
//! cache (what every repeat pays).
//!
//! `cargo bench --bench validation`

use std::time::{SystemTime, UNIX_EPOCH};

use actix_auth0_api::dev::{SigningKey, jwks};
use actix_auth0_api::test_support::Validator;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

const ISSUER: &str = "https://bench.example/";
const AUDIENCE: &str = "https://api.bench.example";

fn validator() -> (Validator, String) {
    let key = SigningKey::generate("bench").expect("RSA key");
    let validator = Validator::new(&Validator::settings(ISSUER, AUDIENCE), &jwks([&key]));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let token = key
        .sign(&json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "auth0|bench", "iat": now, "exp": now + 3600,
            "scope": "openid read:messages", "permissions": ["read:admin-messages"],
        }))
        .expect("token");
    (validator, token)
}

fn validation(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (validator, token) = validator();
    runtime
        .block_on(validator.validate(&token))
        .expect("the bench token is valid");

    let mut group = c.benchmark_group("validate");
    group.bench_function("cold (RS256 signature verify)", |b| {
        b.to_async(&runtime)
            .iter(|| async { validator.verify(&token).await.unwrap() })
    });
    group.bench_function("warm (token cache hit)", |b| {
        b.to_async(&runtime)
            .iter(|| async { validator.validate(&token).await.unwrap() })
    });
    group.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
