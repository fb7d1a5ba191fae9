//! A DPoP client key, for trying DPoP-bound tokens without a client
//! library: `token --dpop-key FILE` binds a development token to it, and
//! `proof --dpop-key FILE` signs a proof with it (ES256), as a DPoP client
//! does for each request.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use url::Url;

/// Why a DPoP key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum DpopKeyError {
    /// The key file could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        /// What was tried: "read", "write".
        action: &'static str,
        /// The key file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file holds no EC P-256 private key.
    #[error("{} is not an EC P-256 private key in PKCS#8 PEM ({why})", path.display())]
    Unusable {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The URL a proof is for is not an absolute http(s) URL.
    #[error("expected an absolute http(s) URL, got {0:?}")]
    Url(String),
    /// Generating a key or signing failed.
    #[error("EC P-256 key generation or signing failed")]
    Crypto,
}

/// An ECDSA P-256 key a DPoP client signs its proofs with.
pub struct DpopKey {
    pair: EcdsaKeyPair,
    pem: String,
}

impl DpopKey {
    /// A fresh key.
    pub fn generate() -> Result<Self, DpopKeyError> {
        let pair =
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| DpopKeyError::Crypto)?;
        let der = pair.to_pkcs8v1().map_err(|_| DpopKeyError::Crypto)?;
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref()));
        Ok(Self { pair, pem })
    }

    /// The key in `path`, or a new one written there (mode 0600, never over
    /// an existing file); true when it was created.
    pub fn open_or_create(path: &Path) -> Result<(Self, bool), DpopKeyError> {
        match fs::read_to_string(path) {
            Ok(pem) => Self::from_pem(&pem)
                .map(|key| (key, false))
                .map_err(|why| DpopKeyError::Unusable {
                    path: path.to_path_buf(),
                    why,
                }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                let mut options = fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                options
                    .open(path)
                    .and_then(|mut file| file.write_all(key.pem.as_bytes()))
                    .map_err(|source| DpopKeyError::File {
                        action: "write",
                        path: path.to_path_buf(),
                        source,
                    })?;
                Ok((key, true))
            }
            Err(source) => Err(DpopKeyError::File {
                action: "read",
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// A key from a PKCS#8 PEM document.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let document = pem::parse(pem).map_err(|e| e.to_string())?;
        if document.tag() != "PRIVATE KEY" {
            return Err(format!("found a PEM {:?}", document.tag()));
        }
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, document.contents())
            .map_err(|e| e.to_string())?;
        Ok(Self {
            pair,
            pem: pem.to_owned(),
        })
    }

    /// The private key as PEM, for storing.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The public half as a JWK (`kty`, `crv`, `x`, `y`).
    pub fn public_jwk(&self) -> serde_json::Value {
        let (x, y) = self.coordinates();
        json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y })
    }

    /// The RFC 7638 thumbprint of the public key: what a token bound to
    /// this key carries as `cnf.jkt`.
    pub fn thumbprint(&self) -> String {
        let (x, y) = self.coordinates();
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()))
    }

    /// A proof for a `method` request to `url` (its query and fragment
    /// dropped) carrying `access_token`: issued now, with a fresh `jti`, and
    /// the server's `nonce` when given (from its `DPoP-Nonce` header).
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: &str,
        nonce: Option<&str>,
    ) -> Result<String, DpopKeyError> {
        let mut htu = Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| DpopKeyError::Url(url.to_owned()))?;
        htu.set_query(None);
        htu.set_fragment(None);
        let mut jti = [0u8; 16];
        SystemRandom::new()
            .fill(&mut jti)
            .map_err(|_| DpopKeyError::Crypto)?;
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.public_jwk() });
        let mut claims = json!({
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "htm": method,
            "htu": htu.as_str(),
            "iat": iat,
            "ath": URL_SAFE_NO_PAD.encode(digest(&SHA256, access_token.as_bytes())),
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| DpopKeyError::Crypto)?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())))
    }

    /// The public point's coordinates, base64url.
    fn coordinates(&self) -> (String, String) {
        // The uncompressed point: 04 || x || y, 32 bytes each.
        let point = self.pair.public_key().as_ref();
        (
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..65]),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dpop.pem");
        let (created, fresh) = DpopKey::open_or_create(&path).unwrap();
        assert!(fresh);
        let (read, fresh) = DpopKey::open_or_create(&path).unwrap();
        assert!(!fresh);
        assert_eq!(created.thumbprint(), read.thumbprint());
        assert_eq!(created.thumbprint().len(), 43);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::write(&path, "not a key").unwrap();
        assert!(matches!(
            DpopKey::open_or_create(&path),
            Err(DpopKeyError::Unusable { .. })
        ));
    }

    #[test]
    fn a_proof_names_the_request_without_its_query() {
        let key = DpopKey::generate().unwrap();
        let proof = key
            .proof(
                "GET",
                "http://127.0.0.1:6060/api/private?x=1#f",
                "t.o.k",
                Some("n"),
            )
            .unwrap();
        let claims = proof.split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert_eq!(claims["htu"], "http://127.0.0.1:6060/api/private");
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["nonce"], "n");
        assert!(key.proof("GET", "/api/private", "t", None).is_err());
    }
}
