//! OAuth 2.0 protected resource metadata (RFC 9728), and the absolute URLs
//! the API publishes: `PUBLIC_BASE_URL` when set, else built from the
//! request's `Host`.

use std::borrow::Cow;

use actix_web::HttpRequest;
use actix_web::http::header;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::DpopMode;
use crate::auth::dpop::ALGORITHMS;

/// `/.well-known/oauth-protected-resource`: what a client needs to get a
/// token for this API by itself (MCP clients do).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProtectedResourceMetadata<'a> {
    /// The resource identifier: the API's audience (`AUTH0_AUDIENCE`, the
    /// first when several), which a client asks the authorization server
    /// for a token to.
    #[schema(examples("https://hello-world.example.com"))]
    resource: &'a str,
    /// Where tokens come from: the issuers (`AUTH0_ISSUER`).
    #[schema(examples("https://dev-abc.us.auth0.com/"))]
    authorization_servers: &'a [String],
    /// How a token is sent: in the `Authorization` header only.
    #[schema(examples("header"))]
    bearer_methods_supported: &'a [&'a str],
    /// Every permission some route needs.
    #[schema(examples("read:messages"))]
    scopes_supported: &'a [String],
    /// The docs page.
    #[schema(examples("https://api.example.com/docs"))]
    resource_documentation: String,
    /// The DPoP proof algorithms accepted (RFC 9449); absent when
    /// `DPOP_MODE=disabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(examples(json!(["ES256", "EdDSA", "RS256"])))]
    dpop_signing_alg_values_supported: Option<Vec<&'a str>>,
    /// True when only DPoP-bound tokens are accepted (`DPOP_MODE=required`).
    dpop_bound_access_tokens_required: bool,
}

/// What the metadata document says, whatever the request.
#[derive(Debug)]
pub(super) struct Metadata {
    /// The resource identifier.
    pub(super) resource: String,
    /// The trusted issuers.
    pub(super) issuers: Vec<String>,
    /// The permissions routes need, sorted, each once.
    pub(super) scopes: Vec<String>,
    /// Whether DPoP proofs are accepted, and required.
    pub(super) dpop: DpopMode,
}

impl Metadata {
    /// The document, with links under `base`.
    pub(super) fn document(&self, base: &str) -> ProtectedResourceMetadata<'_> {
        ProtectedResourceMetadata {
            resource: &self.resource,
            authorization_servers: &self.issuers,
            bearer_methods_supported: &["header"],
            scopes_supported: &self.scopes,
            resource_documentation: format!("{base}/docs"),
            dpop_signing_alg_values_supported: (self.dpop != DpopMode::Disabled)
                .then(|| ALGORITHMS.split(' ').collect()),
            dpop_bound_access_tokens_required: self.dpop == DpopMode::Required,
        }
    }
}

/// Where clients reach this server, for the absolute URLs it publishes.
#[derive(Debug)]
pub(super) enum BaseUrl {
    /// `PUBLIC_BASE_URL`, without its trailing slash.
    Configured(String),
    /// `http://` and the request's `Host`; `fallback` (the address bound)
    /// when a request has no usable `Host`.
    FromHost {
        /// `http://HOST:PORT` of the listener.
        fallback: String,
    },
}

impl BaseUrl {
    /// The base URL as the client of `req` sees it, without a trailing slash.
    pub(super) fn of(&self, req: &HttpRequest) -> Cow<'_, str> {
        match self {
            BaseUrl::Configured(url) => Cow::Borrowed(url),
            BaseUrl::FromHost { fallback } => match host(req) {
                Some(host) => Cow::Owned(format!("http://{host}")),
                None => Cow::Borrowed(fallback),
            },
        }
    }
}

/// The request's `Host`, when it is a plain `host[:port]`: the value is
/// the client's and ends up in headers and documents, so nothing else
/// (no user-info, path, quote or space) is taken from it.
fn host(req: &HttpRequest) -> Option<&str> {
    let host = req.headers().get(header::HOST)?.to_str().ok()?;
    let plain = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    plain.then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn only_a_plain_host_is_taken_from_the_request() {
        let base = BaseUrl::FromHost {
            fallback: "http://127.0.0.1:6060".into(),
        };
        let with_host = |value: &str| {
            let req = TestRequest::default()
                .insert_header((header::HOST, value))
                .to_http_request();
            base.of(&req).into_owned()
        };
        assert_eq!(with_host("api.example.com:8080"), "http://api.example.com:8080");
        assert_eq!(with_host("[::1]:6060"), "http://[::1]:6060");
        for hostile in ["evil\"x", "user@evil.example", "a/b", "a b", ""] {
            assert_eq!(with_host(hostile), "http://127.0.0.1:6060", "{hostile:?}");
        }
        let configured = BaseUrl::Configured("https://api.example.com/v1".into());
        let req = TestRequest::default()
            .insert_header((header::HOST, "evil.example"))
            .to_http_request();
        assert_eq!(configured.of(&req), "https://api.example.com/v1");
    }
}
