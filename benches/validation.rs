//! The validation path, without HTTP: `cold` verifies the RS256 signature
//! (what the first request with a token pays), `warm` answers from the token
//! cache (what every repeat pays).
//!
//! `cargo bench --bench validation`

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_auth0_api::auth::TokenValidator;
use actix_auth0_api::auth::keys::KeyStore;
use actix_auth0_api::config::Settings;
use actix_auth0_api::signing::{SigningKey, jwks};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

const ISSUER: &str = "https://bench.example/";
const AUDIENCE: &str = "https://api.bench.example";

fn validator() -> (TokenValidator, String) {
    let vars = HashMap::from([
        ("AUTH0_ISSUER", ISSUER.to_owned()),
        ("AUTH0_AUDIENCE", AUDIENCE.to_owned()),
        ("AUTH0_JWKS_URL", "http://127.0.0.1:9/jwks.json".to_owned()),
    ]);
    let settings = Settings::from_lookup(|name| vars.get(name).cloned()).expect("bench settings");
    let key = SigningKey::generate("bench").expect("RSA key");
    let store = KeyStore::new(settings.jwks_url.clone(), settings.keys.clone()).expect("key store");
    store
        .load_document(jwks([&key]).to_string().as_bytes())
        .expect("JWKS");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let token = key
        .sign(&json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "auth0|bench", "iat": now, "exp": now + 3600,
            "scope": "openid read:messages", "permissions": ["read:admin-messages"],
        }))
        .expect("token");
    (TokenValidator::new(&settings, Arc::new(store)), token)
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
