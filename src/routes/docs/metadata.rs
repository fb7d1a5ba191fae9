//! OAuth 2.0 protected resource metadata (RFC 9728): what a client needs
//! to get a token for this API, its links under the base URL the client
//! reached (`PUBLIC_BASE_URL`, or the request's own).

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
    /// The API's name, for people.
    #[schema(examples("actix-auth0-api"))]
    resource_name: &'a str,
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
            resource_name: env!("CARGO_PKG_NAME"),
            resource_documentation: format!("{base}/docs"),
            dpop_signing_alg_values_supported: (self.dpop != DpopMode::Disabled)
                .then(|| ALGORITHMS.split(' ').collect()),
            dpop_bound_access_tokens_required: self.dpop == DpopMode::Required,
        }
    }
}
