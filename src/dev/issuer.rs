//! The built-in development issuer: a local RSA key, its JWKS and OpenID
//! discovery document, and token minting.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{HttpResponse, web};
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::dev::signing::{SigningError, SigningKey, jwks};

/// The audience development tokens carry and the `dev` API accepts.
pub const DEV_AUDIENCE: &str = "https://hello-world.example.com";

/// Default folder for the development key.
pub const DEFAULT_DATA_DIR: &str = ".dev-issuer";

const KEY_FILE: &str = "signing-key.pem";

/// Names the issuer `dev` last served as, so that `token` signs for it
/// whatever `HOST` and `PORT` its own environment says.
const ISSUER_FILE: &str = "issuer";

/// A problem with the development key, worded for the command line.
#[derive(Debug, thiserror::Error)]
pub enum DevIssuerError {
    /// A file or folder of the development issuer could not be used.
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        /// What was tried: "read", "write", "create".
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The key file holds no usable key; it is never replaced silently.
    #[error("{} is not a usable RSA private key ({source}); delete it to generate a new one", path.display())]
    CorruptKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        source: SigningError,
    },
    /// Generating or using the key failed.
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// Another user could read, change or swap the key: it is not used.
    #[error("{} {why}: the development key must be private (chmod {mode:o} it)", path.display())]
    NotPrivate {
        /// The folder or file.
        path: PathBuf,
        /// What is wrong.
        why: String,
        /// The mode it should have.
        mode: u32,
    },
}

fn cannot(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DevIssuerError {
    let path = path.to_path_buf();
    move |source| DevIssuerError::File { action, path, source }
}

/// What a development token should say.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The `sub` claim.
    pub sub: String,
    /// Space-separated `scope` claim, if any.
    pub scope: Option<String>,
    /// Auth0 RBAC `permissions` array (empty: claim omitted).
    pub permissions: Vec<String>,
    /// Mark it a client-credentials (machine-to-machine) token, `"gty":
    /// "client-credentials"`, whose `scope` an administrator granted.
    pub client_credentials: bool,
    /// Lifetime from now.
    pub ttl: Duration,
    /// The `aud` claim.
    pub audience: String,
    /// Bind the token to the DPoP key of this RFC 7638 thumbprint
    /// (`cnf.jkt`): it is then accepted only with the DPoP scheme and a
    /// proof signed by that key.
    pub dpop_jkt: Option<String>,
    /// The `acr` claim: the class of the login (RFC 9470 step-up).
    pub acr: Option<String>,
    /// The `auth_time` claim: when the user logged in, in seconds since 1970.
    pub auth_time: Option<u64>,
}

/// A ready-made development token, as `dev` prints it and its docs page
/// offers it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExampleToken {
    /// What it grants, in words: `no permissions` or the permission.
    pub label: &'static str,
    /// Its `sub`.
    pub sub: &'static str,
    /// A route it may call that a lesser token may not.
    pub path: &'static str,
    /// The token.
    pub token: String,
}

/// The development issuer: its identifier and signing key.
pub struct DevIssuer {
    issuer: String,
    key: SigningKey,
}

impl DevIssuer {
    /// Loads the key kept in `data_dir`, creating the folder and a fresh
    /// RSA-2048 key (mode 0600) on first use. A key file that exists but
    /// cannot be read is an error, never silently replaced.
    ///
    /// The folder and the key must belong to this user and be closed to
    /// everyone else: anyone who can read the key can mint tokens this API
    /// accepts, and anyone who can write it can swap in their own.
    pub fn open(data_dir: &Path, issuer: String) -> Result<Self, DevIssuerError> {
        let path = data_dir.join(KEY_FILE);
        if data_dir.exists() {
            check_private(data_dir, 0o700)?;
        }
        let pem = match fs::read_to_string(&path) {
            Ok(pem) => {
                check_private(&path, 0o600)?;
                pem
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => create_key_file(data_dir, &path)?,
            Err(err) => return Err(cannot("read", &path)(err)),
        };
        Self::from_pem(issuer, &pem).map_err(|err| match err {
            DevIssuerError::Signing(source) => DevIssuerError::CorruptKey { path, source },
            other => other,
        })
    }

    /// An issuer signing with the PKCS#8 or PKCS#1 PEM key `pem`, whose
    /// `kid` is its RFC 7638 thumbprint.
    pub fn from_pem(issuer: String, pem: &str) -> Result<Self, DevIssuerError> {
        let provisional = SigningKey::from_pem("dev", pem)?;
        let key = SigningKey::from_pem(thumbprint(provisional.public_jwk()), pem)?;
        Ok(Self { issuer, key })
    }

    /// The `iss` of development tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Records this issuer in `data_dir`, for [`DevIssuer::remembered`].
    pub fn remember(&self, data_dir: &Path) -> Result<(), DevIssuerError> {
        let path = data_dir.join(ISSUER_FILE);
        fs::write(&path, format!("{}\n", self.issuer)).map_err(cannot("write", &path))
    }

    /// The issuer `dev` last served as from `data_dir`, if it has run there.
    pub fn remembered(data_dir: &Path) -> Result<Option<String>, DevIssuerError> {
        let path = data_dir.join(ISSUER_FILE);
        match fs::read_to_string(&path) {
            Ok(issuer) => Ok(Some(issuer.trim().to_owned())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(cannot("read", &path)(err)),
        }
    }

    /// Where the JWKS is served, relative to the issuer.
    pub fn jwks_url(&self) -> String {
        format!("{}.well-known/jwks.json", self.issuer)
    }

    /// A signed token as `request` describes.
    pub fn mint(&self, request: &TokenRequest) -> Result<String, DevIssuerError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut claims = json!({
            "iss": self.issuer,
            "sub": request.sub,
            "aud": request.audience,
            "iat": now,
            "exp": now.saturating_add(request.ttl.as_secs()),
        });
        if let Some(scope) = &request.scope {
            claims["scope"] = scope.clone().into();
        }
        if !request.permissions.is_empty() {
            claims["permissions"] = request.permissions.clone().into();
        }
        if request.client_credentials {
            claims["gty"] = "client-credentials".into();
        }
        if let Some(jkt) = &request.dpop_jkt {
            claims["cnf"] = json!({ "jkt": jkt });
        }
        if let Some(acr) = &request.acr {
            claims["acr"] = acr.clone().into();
        }
        if let Some(auth_time) = request.auth_time {
            claims["auth_time"] = auth_time.into();
        }
        Ok(self.key.sign(&claims)?)
    }

    /// Three user tokens valid for 24 hours, one per permission level: no
    /// permissions, `read:messages`, `read:admin-messages`. They carry the
    /// `permissions` claim, as an Auth0 API with RBAC issues them, unless
    /// the API reads `scope` only (`scope_only`).
    pub fn example_tokens(&self, scope_only: bool) -> Result<Vec<ExampleToken>, DevIssuerError> {
        let levels = [
            ("no permissions", "dev|user", None, "/api/private"),
            (
                "read:messages",
                "dev|reader",
                Some("read:messages"),
                "/api/private-scoped",
            ),
            (
                "read:admin-messages",
                "dev|admin",
                Some("read:admin-messages"),
                "/api/messages/admin",
            ),
        ];
        levels
            .into_iter()
            .map(|(label, sub, permission, path)| {
                let request = TokenRequest {
                    sub: sub.into(),
                    scope: permission.filter(|_| scope_only).map(str::to_owned),
                    permissions: permission
                        .filter(|_| !scope_only)
                        .map(str::to_owned)
                        .into_iter()
                        .collect(),
                    client_credentials: false,
                    ttl: Duration::from_secs(24 * 3600),
                    audience: DEV_AUDIENCE.into(),
                    dpop_jkt: None,
                    acr: None,
                    auth_time: None,
                };
                Ok(ExampleToken {
                    label,
                    sub,
                    path,
                    token: self.mint(&request)?,
                })
            })
            .collect()
    }

    /// The JWKS document publishing the development key.
    pub fn public_jwks(&self) -> serde_json::Value {
        jwks([&self.key])
    }

    /// Registers `/.well-known/jwks.json` and `/.well-known/openid-configuration`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let keys = self.public_jwks();
        let discovery = json!({
            "issuer": self.issuer,
            "jwks_uri": self.jwks_url(),
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
        });
        cfg.route(
            "/.well-known/jwks.json",
            web::get().to(move || {
                let keys = keys.clone();
                async move {
                    HttpResponse::Ok()
                        .insert_header(("Cache-Control", "max-age=600"))
                        .json(keys)
                }
            }),
        )
        .route(
            "/.well-known/openid-configuration",
            web::get().to(move || {
                let discovery = discovery.clone();
                async move { HttpResponse::Ok().json(discovery) }
            }),
        );
    }
}

/// Writes a new key, atomically: it is written to a private temporary file
/// and linked into place only if no key is there yet, so two processes
/// starting together (`dev` and `token`) end up sharing one key, and no
/// process ever reads a half-written file.
fn create_key_file(data_dir: &Path, path: &Path) -> Result<String, DevIssuerError> {
    let mut dirs = fs::DirBuilder::new();
    dirs.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
    dirs.create(data_dir).map_err(cannot("create", data_dir))?;
    let key = SigningKey::generate("dev")?;
    static ATTEMPT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let attempt = ATTEMPT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = data_dir.join(format!(".{KEY_FILE}.{}.{attempt}", std::process::id()));
    let mut options = fs::OpenOptions::new();
    // O_EXCL: never a file someone else placed there.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(key.pem().as_bytes())
            .and_then(|()| file.sync_all())
    });
    if let Err(err) = written {
        let _ = fs::remove_file(&temporary);
        return Err(cannot("write", &temporary)(err));
    }
    let linked = fs::hard_link(&temporary, path);
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            log::info!("generated a development signing key in {}", path.display());
            Ok(key.pem().to_owned())
        }
        // Another process got there first: use its key.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            fs::read_to_string(path).map_err(cannot("read", path))
        }
        Err(err) => Err(cannot("create", path)(err)),
    }
}

/// Refuses a folder or file that another user owns, or that group or others
/// may use at all; `mode` is the one it should have.
#[cfg(unix)]
fn check_private(path: &Path, mode: u32) -> Result<(), DevIssuerError> {
    use std::os::unix::fs::MetadataExt;
    let metadata = fs::metadata(path).map_err(cannot("read", path))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let why = if metadata.uid() != me {
        format!("belongs to another user (uid {})", metadata.uid())
    } else if metadata.mode() & 0o077 != 0 {
        format!("is open to group or others (mode {:o})", metadata.mode() & 0o777)
    } else {
        return Ok(());
    };
    Err(DevIssuerError::NotPrivate {
        path: path.to_path_buf(),
        why,
        mode,
    })
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _mode: u32) -> Result<(), DevIssuerError> {
    Ok(())
}

/// RFC 7638 JWK thumbprint: a `kid` that changes only when the key does.
fn thumbprint(jwk: &serde_json::Value) -> String {
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        jwk["e"].as_str().unwrap_or(""),
        jwk["n"].as_str().unwrap_or("")
    );
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

#[cfg(test)]
mod tests;
