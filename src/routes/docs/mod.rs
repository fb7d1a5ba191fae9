//! What the API says about itself: its OpenAPI document (`/openapi.json`),
//! an interactive docs page (`/docs`, Swagger UI embedded in the binary),
//! and its OAuth 2.0 protected resource metadata (RFC 9728,
//! `/.well-known/oauth-protected-resource`), which every challenge points
//! to. All three are built from the route table at start.

mod assets;
mod metadata;
mod openapi;

use actix_web::http::header::{self, ContentType, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::PublicUrl;
use crate::config::Settings;
use crate::dev::ExampleToken;
use crate::routes::route_info::{Answer, Doc, RouteInfo, named};

pub(crate) use assets::configure as configure_assets;
pub(crate) use metadata::ProtectedResourceMetadata;

/// The docs page's Content-Security-Policy: its scripts, styles and
/// requests go to this origin only, nothing runs inline, and nothing may
/// frame it. Every other response keeps `default-src 'none'`.
pub(crate) const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What the documents routes serve, built once at start.
pub(crate) struct Docs {
    openapi: Bytes,
    page: Bytes,
    metadata: metadata::Metadata,
}

impl Docs {
    /// The documents of a server run with `settings`, serving `routes`;
    /// under `dev`, the page offers `dev_tokens`.
    pub(crate) fn new(
        settings: &Settings,
        routes: &[RouteInfo],
        dev_tokens: Option<&[ExampleToken]>,
    ) -> Self {
        let about = openapi::About {
            issuers: &settings.validation.issuers,
            audiences: &settings.validation.audiences,
            development: dev_tokens.is_some(),
        };
        let openapi = openapi::document(routes, &about)
            .to_pretty_json()
            .expect("the OpenAPI document serialises");
        let mut scopes: Vec<String> = routes
            .iter()
            .flat_map(|route| route.requires.iter().flatten().flatten().cloned())
            .collect();
        scopes.sort();
        scopes.dedup();
        Self {
            openapi: Bytes::from(openapi),
            page: Bytes::from(render_page(dev_tokens)),
            metadata: metadata::Metadata {
                resource: settings.validation.audiences[0].clone(),
                issuers: settings.validation.issuers.clone(),
                scopes,
                dpop: settings.dpop.mode,
            },
        }
    }
}

/// The docs page, with the development tokens under `dev` (as JSON in a
/// data block, which runs nothing).
fn render_page(dev_tokens: Option<&[ExampleToken]>) -> String {
    let tokens = serde_json::to_string(&dev_tokens)
        .expect("tokens serialise")
        // Inside <script>: no "</script>" or "<!--" can form.
        .replace('<', "\\u003c");
    include_str!("page.html")
        .replace("{{TITLE}}", env!("CARGO_PKG_NAME"))
        .replace("{{SWAGGER_UI_VERSION}}", assets::SWAGGER_UI_VERSION)
        .replace("{{DEV_TOKENS}}", &tokens)
}

/// `GET /openapi.json`.
pub(crate) async fn openapi_json(docs: web::Data<Docs>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(docs.openapi.clone())
}

/// `GET /docs`: the page, with the CSP that lets it run. Never cached: under
/// `dev` it holds tokens.
pub(crate) async fn page(docs: web::Data<Docs>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(docs.page.clone())
}

/// `GET /.well-known/oauth-protected-resource`.
pub(crate) async fn protected_resource_metadata(
    req: HttpRequest,
    docs: web::Data<Docs>,
    public_url: web::Data<PublicUrl>,
) -> HttpResponse {
    HttpResponse::Ok().json(docs.metadata.document(&public_url.link_base(&req)))
}

const TAG: &str = "discovery";

/// How the OpenAPI document describes [`openapi_json`].
pub(crate) const OPENAPI: Doc = Doc {
    id: "getOpenApi",
    tag: TAG,
    summary: "This OpenAPI 3.1 document",
    ok: Answer::AnyJson,
    other: None,
};

/// How the OpenAPI document describes [`page`].
pub(crate) const PAGE: Doc = Doc {
    id: "getDocs",
    tag: TAG,
    summary: "The interactive docs page (Swagger UI)",
    ok: Answer::Html,
    other: None,
};

/// How the OpenAPI document describes [`protected_resource_metadata`].
pub(crate) const METADATA: Doc = Doc {
    id: "getProtectedResourceMetadata",
    tag: TAG,
    summary: "OAuth 2.0 protected resource metadata (RFC 9728)",
    ok: Answer::Json(named::<ProtectedResourceMetadata<'static>>),
    other: None,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_on_the_page_cannot_close_its_data_block() {
        let hostile = ExampleToken {
            label: "no permissions",
            sub: "dev|user",
            path: "/api/private",
            token: "</script><script>alert(1)</script><!--".into(),
        };
        let page = render_page(Some(&[hostile]));
        assert_eq!(page.matches("</script>").count(), 3, "the page's own three");
        assert!(!page.contains("<!--"));
        assert!(render_page(None).contains(r#"id="dev-token-data">null</script>"#));
    }
}
