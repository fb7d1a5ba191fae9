//! Where an issuer says its keys are, when the conventional URL answers
//! 404: its OpenID discovery document, then its RFC 8414 metadata. A
//! document is believed only if it names the configured issuer exactly,
//! and only an https `jwks_uri` (or http to this machine, for an issuer on
//! this machine) is followed.

use url::Url;

use crate::auth::keys::loopback::is_loopback;
use crate::auth::keys::source::FetchError;
use crate::auth::keys::spelling::{Excerpt, differ_by_trailing_slash};

/// Where an issuer says its keys are, asked when their URL answers 404.
pub(super) struct Discovery {
    /// The documents to ask, in order, each only if the one before answered
    /// 404: OpenID discovery, then RFC 8414 metadata.
    pub(super) documents: Vec<Url>,
    /// The issuer as configured: what a document's `issuer` must be.
    pub(super) issuer: String,
    /// An `http://` `jwks_uri` is trusted only for a loopback `http://` issuer.
    pub(super) issuer_is_local_http: bool,
}

impl Discovery {
    /// Where `issuer`'s keys are looked for first,
    /// `{issuer}.well-known/jwks.json`, and the documents that say where
    /// they are when that answers 404.
    pub(super) fn for_issuer(issuer: &str) -> (Url, Self) {
        let parsed = Url::parse(issuer).expect("issuers are validated URLs");
        let appended = |suffix: &str| {
            let base = parsed.as_str().trim_end_matches('/');
            Url::parse(&format!("{base}/.well-known/{suffix}")).expect("an issuer URL with a path")
        };
        // RFC 8414 3.1: any terminating "/" removed, then the well-known
        // segment between the host and the path.
        let mut inserted = parsed.clone();
        inserted.set_path(&format!(
            "/.well-known/oauth-authorization-server{}",
            parsed.path().trim_end_matches('/')
        ));
        let discovery = Discovery {
            documents: vec![appended("openid-configuration"), inserted],
            issuer: issuer.to_owned(),
            issuer_is_local_http: parsed.scheme() == "http" && is_loopback(&parsed),
        };
        (appended("jwks.json"), discovery)
    }

    /// The `jwks_uri` of a discovery document, OpenID's (Connect Discovery
    /// 4.3) or RFC 8414's (3.3): the document must name the configured
    /// issuer exactly, and its `jwks_uri` be https, or http to this machine
    /// for an issuer that is itself http on this machine.
    pub(super) fn jwks_uri(&self, document: &Url, body: &[u8]) -> Result<Url, FetchError> {
        #[derive(serde::Deserialize)]
        struct Document {
            issuer: Option<String>,
            jwks_uri: Option<String>,
        }
        let refused = |why: String| FetchError::Discovery {
            document: document.to_string(),
            why,
        };
        let Ok(Document { issuer, jwks_uri }) = serde_json::from_slice(body) else {
            return Err(refused(
                "not a JSON object with a string issuer and jwks_uri".into(),
            ));
        };
        match issuer.as_deref() {
            Some(issuer) if issuer == self.issuer => {}
            Some(issuer) if differ_by_trailing_slash(issuer, &self.issuer) => {
                return Err(FetchError::IssuerSpelling {
                    document: document.to_string(),
                    published: issuer.to_owned(),
                    configured: self.issuer.clone(),
                });
            }
            Some(issuer) => {
                return Err(refused(format!(
                    "its issuer is {}, not the configured {:?}",
                    Excerpt(issuer),
                    self.issuer
                )));
            }
            None => return Err(refused("it names no issuer".into())),
        }
        let jwks_uri = jwks_uri.ok_or_else(|| refused("it has no jwks_uri".into()))?;
        let url = Url::parse(&jwks_uri)
            .map_err(|_| refused(format!("jwks_uri {} is not a URL", Excerpt(&jwks_uri))))?;
        let trusted = match url.scheme() {
            "https" => true,
            "http" => self.issuer_is_local_http && is_loopback(&url),
            _ => false,
        };
        if !trusted || !url.username().is_empty() || url.password().is_some() {
            return Err(refused(format!(
                "jwks_uri {} is not an https URL without credentials",
                Excerpt(&jwks_uri)
            )));
        }
        Ok(url)
    }
}
