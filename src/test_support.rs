//! Internals for the crate's own benchmarks, fuzz target and tests, behind
//! the `test-support` feature: not part of the API.

use crate::auth::keys::jwks::parse_key_set;
use crate::auth::keys::{IssuerKeys, Unreachable};
use crate::auth::validator::TokenValidator;
use crate::auth::{AuthError, KeyStore, Principal};
use crate::config::Settings;
use actix_web::http::header::HeaderMap;

/// A token validator whose keys are given, never fetched.
pub struct Validator(TokenValidator);

impl Validator {
    /// Validates as `settings` say, against the keys of the JWKS document `jwks`.
    pub fn new(settings: &Settings, jwks: &serde_json::Value) -> Self {
        let store = KeyStore::new(Box::new(Unreachable), settings.keys.clone());
        store.load(parse_key_set(jwks.to_string().as_bytes()).expect("a JWKS document"));
        let issuer = &settings.validation.issuers[0];
        Self(TokenValidator::new(
            &settings.validation,
            &IssuerKeys::single(issuer, store),
        ))
    }

    /// Full validation, bypassing the token cache (what a new token costs).
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        Ok(self.0.verify(token).await?.principal)
    }

    /// Validation as a request gets it, through the token cache.
    pub async fn validate(&self, token: &str) -> Result<Principal, AuthError> {
        Ok(self.0.validate(token).await?.principal.clone())
    }

    /// The settings a validator for `issuer` and `audience` would use.
    pub fn settings(issuer: &str, audience: &str) -> Settings {
        let jwks_url = format!("{issuer}.well-known/jwks.json");
        Settings::from_lookup(|name| match name {
            "AUTH0_ISSUER" => Some(issuer.to_owned()),
            "AUTH0_AUDIENCE" => Some(audience.to_owned()),
            "AUTH0_JWKS_URL" => Some(jwks_url.clone()),
            _ => None,
        })
        .expect("valid settings")
    }
}

/// The bearer token of `headers`, as the guard's extractor reads it.
pub fn bearer_token(headers: &HeaderMap) -> Result<String, AuthError> {
    Ok(crate::auth::bearer_token(headers)?.token().to_owned())
}
