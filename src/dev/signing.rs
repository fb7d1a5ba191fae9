//! RSA signing keys for issuing tokens: the development issuer's key and the
//! keys tests sign with. The API itself only ever verifies.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The random key could not be generated or encoded.
    #[error("RSA key generation failed")]
    Generate,
    /// The text is not PEM.
    #[error("not a PEM document: {0}")]
    NotPem(#[from] pem::PemError),
    /// PEM, but not of a private key.
    #[error("expected an RSA private key, found a PEM {0:?}")]
    NotPrivateKey(String),
    /// A private key, but not one we can sign RS256 with.
    #[error("not a usable RSA private key: {0}")]
    Unusable(String),
    /// Signing failed.
    #[error("cannot sign: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// An RS256 private key with its key id.
pub struct SigningKey {
    kid: String,
    pem: String,
    encoding: EncodingKey,
    jwk: serde_json::Value,
}

impl SigningKey {
    /// A fresh RSA-2048 key.
    pub fn generate(kid: impl Into<String>) -> Result<Self, SigningError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| SigningError::Generate)?;
        let der = pair.as_der().map_err(|_| SigningError::Generate)?;
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref()));
        Self::from_pem(kid, &pem)
    }

    /// A key from a PKCS#8 or PKCS#1 PEM document.
    pub fn from_pem(kid: impl Into<String>, pem: &str) -> Result<Self, SigningError> {
        let kid = kid.into();
        let document = pem::parse(pem)?;
        let parsed = match document.tag() {
            "PRIVATE KEY" => KeyPair::from_pkcs8(document.contents()),
            "RSA PRIVATE KEY" => KeyPair::from_der(document.contents()),
            other => return Err(SigningError::NotPrivateKey(other.to_owned())),
        };
        parsed.map_err(|e| SigningError::Unusable(e.to_string()))?;
        let encoding =
            EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| SigningError::Unusable(e.to_string()))?;
        let jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)
            .map_err(|e| SigningError::Unusable(e.to_string()))?;
        let mut jwk = serde_json::to_value(jwk).map_err(|e| SigningError::Unusable(e.to_string()))?;
        jwk["kid"] = kid.clone().into();
        jwk["use"] = "sig".into();
        Ok(Self {
            kid,
            pem: pem.to_owned(),
            encoding,
            jwk,
        })
    }

    /// The key id tokens name in their header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key as PEM, for storing.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The public half as a JWK (`kty`, `kid`, `use`, `alg`, `n`, `e`).
    pub fn public_jwk(&self) -> &serde_json::Value {
        &self.jwk
    }

    /// Signs `claims` as an RS256 JWT whose header names this key.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, SigningError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    /// The public key as X.509 SubjectPublicKeyInfo DER (what a PEM
    /// "PUBLIC KEY" holds): the form attackers try as an HMAC secret.
    #[cfg(feature = "test-support")]
    pub fn public_key_der(&self) -> Vec<u8> {
        use aws_lc_rs::signature::KeyPair as _;
        let document = pem::parse(&self.pem).expect("a key made from this PEM");
        let pair = KeyPair::from_pkcs8(document.contents())
            .or_else(|_| KeyPair::from_der(document.contents()))
            .expect("a key made from this PEM");
        pair.public_key()
            .as_der()
            .expect("an RSA public key")
            .as_ref()
            .to_vec()
    }
}

/// A JWKS document publishing the public halves of `keys`.
pub fn jwks<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> serde_json::Value {
    serde_json::json!({ "keys": keys.into_iter().map(SigningKey::public_jwk).collect::<Vec<_>>() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_keeps_the_public_key() {
        let key = SigningKey::generate("k1").unwrap();
        let again = SigningKey::from_pem("k1", key.pem()).unwrap();
        assert_eq!(key.public_jwk(), again.public_jwk());
        assert_eq!(key.public_jwk()["kty"], "RSA");
        assert_eq!(key.public_jwk()["alg"], "RS256");
    }

    #[test]
    fn garbage_is_not_a_key() {
        let truncated = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            SigningKey::from_pem("k", truncated),
            Err(SigningError::Unusable(_))
        ));
        assert!(matches!(
            SigningKey::from_pem("k", "hello"),
            Err(SigningError::NotPem(_))
        ));
    }
}
