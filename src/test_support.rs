//! Internals for the crate's own benchmarks, fuzz target and tests, behind
//! the `test-support` feature: not part of the API.

use actix_web::http::header::{HeaderMap, HeaderValue};

use crate::auth::dpop::{DPOP, DpopVerifier, Target, proof_header};
use crate::auth::guard::dpop_bound;
use crate::auth::keys::jwks::parse_key_set;
use crate::auth::keys::{IssuerKeys, KeyStore, Unreachable};
use crate::auth::normalize_url;
use crate::auth::validator::TokenValidator;
use crate::auth::{AuthError, Principal};
use crate::config::Settings;

/// A token validator whose keys are given, never fetched, with the DPoP
/// proof check of the same settings.
pub struct Validator(TokenValidator, DpopVerifier);

impl Validator {
    /// Validates as `settings` say, against the keys of the JWKS document `jwks`.
    pub fn new(settings: &Settings, jwks: &serde_json::Value) -> Self {
        let store = KeyStore::new(Box::new(Unreachable), settings.keys.clone());
        store.load(parse_key_set(jwks.to_string().as_bytes()).expect("a JWKS document"));
        let issuer = &settings.validation.issuers[0];
        Self(
            TokenValidator::new(&settings.validation, &IssuerKeys::single(issuer, store)),
            DpopVerifier::new(&settings.dpop),
        )
    }

    /// Full validation, bypassing the token cache (what a new token costs).
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        Ok(self.0.verify(token).await?.principal)
    }

    /// Validation as a request gets it, through the token cache.
    pub async fn validate(&self, token: &str) -> Result<Principal, AuthError> {
        Ok(self.0.validate(token).await?.principal.clone())
    }

    /// A DPoP request as the guard checks it: the token (through the token
    /// cache), then `proof` for a `method` request to `url`, bound to it.
    pub async fn validate_dpop(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        url: &str,
    ) -> Result<Principal, AuthError> {
        let proof = HeaderValue::from_str(proof)
            .map_err(|_| AuthError::InvalidDpopProof("DPoP proof is not a header value".into()))?;
        let mut headers = HeaderMap::new();
        headers.insert(DPOP, proof);
        let proof = proof_header(&headers)?;
        let url = normalize_url(url).ok_or(AuthError::InvalidRequest("malformed request URL"))?;
        let target = Target { method, url };
        Ok(dpop_bound(&self.0, &self.1, token, proof, &target)
            .await?
            .principal
            .clone())
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
pub fn access_token(headers: &HeaderMap) -> Result<String, AuthError> {
    Ok(crate::auth::access_token(headers)?.token().to_owned())
}
