//! Fuzzes the path from a raw `Authorization` header to claims: bearer
//! parsing, JOSE header, key lookup, signature, claims and permission check.
//! Nothing may panic, whatever the bytes.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run header_to_claims -- -max_total_time=60`

#![no_main]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use actix_auth0_api::auth::bearer::bearer_token;
use actix_auth0_api::auth::keys::KeyStore;
use actix_auth0_api::auth::{HasPermission, Permission, TokenValidator};
use actix_auth0_api::config::Settings;
use actix_auth0_api::dev_issuer::{DEV_AUDIENCE, DevIssuer};
use actix_web::http::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

/// The issuer the seed tokens in `corpus/header_to_claims/` were minted for
/// (`token --data-dir fuzz/dev-issuer` with the default HOST and PORT).
const SEED_ISSUER: &str = "http://127.0.0.1:6060/";

struct Harness {
    runtime: tokio::runtime::Runtime,
    validator: TokenValidator,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        // A fuzzing-only development key, committed so that seeds really verify.
        let issuer = DevIssuer::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("dev-issuer"), SEED_ISSUER.into())
            .expect("fuzz/dev-issuer/signing-key.pem");
        let vars = HashMap::from([
            ("AUTH0_ISSUER", SEED_ISSUER.to_owned()),
            ("AUTH0_AUDIENCE", DEV_AUDIENCE.to_owned()),
            // Nothing listens there: an unknown kid fails fast, then cools down.
            ("AUTH0_JWKS_URL", "http://127.0.0.1:9/jwks.json".to_owned()),
        ]);
        let settings = Settings::from_lookup(|name| vars.get(name).cloned()).unwrap();
        let store = KeyStore::new(settings.jwks_url.clone(), settings.keys.clone()).unwrap();
        store.load_document(issuer.public_jwks().to_string().as_bytes()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Harness { runtime, validator: TokenValidator::new(&settings, Arc::new(store)) }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else { return };
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value);
    let Ok(token) = bearer_token(&headers) else { return };
    let harness = harness();
    if let Ok(verified) = harness.runtime.block_on(harness.validator.verify(token)) {
        let _ = HasPermission::new("read:messages").check(&verified.principal);
    }
});
