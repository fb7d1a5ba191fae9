//! The files of the docs page, embedded in the binary so that the page works
//! offline: Swagger UI (`assets/swagger-ui/`, from the npm package
//! `swagger-ui-dist`, Apache-2.0, with its licence and notices) and our own
//! script and style sheet. Served under `/docs/` with an `ETag`, revalidated
//! on each use.

use std::sync::LazyLock;

use actix_web::http::header::{self, ContentType, EntityTag, IfNoneMatch};
use actix_web::{HttpRequest, HttpResponse, web};
use aws_lc_rs::digest;

/// The Swagger UI release embedded (see `assets/swagger-ui/README.md`).
pub(crate) const SWAGGER_UI_VERSION: &str = "5.35.0";

/// An embedded file: its name under `/docs/`, media type and bytes.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $media_type:expr, $path:literal) => {
        Asset {
            name: $name,
            media_type: $media_type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

const ASSETS: &[Asset] = &[
    asset!(
        "swagger-ui-bundle.js",
        JS,
        "assets/swagger-ui/swagger-ui-bundle.js"
    ),
    asset!("swagger-ui.css", CSS, "assets/swagger-ui/swagger-ui.css"),
    asset!(
        "swagger-ui-bundle.js.LICENSE.txt",
        TEXT,
        "assets/swagger-ui/swagger-ui-bundle.js.LICENSE.txt"
    ),
    asset!(
        "favicon-32x32.png",
        "image/png",
        "assets/swagger-ui/favicon-32x32.png"
    ),
    asset!("swagger-ui-LICENSE.txt", TEXT, "assets/swagger-ui/LICENSE"),
    asset!("swagger-ui-NOTICE.txt", TEXT, "assets/swagger-ui/NOTICE"),
    asset!("docs.js", JS, "src/routes/docs/docs.js"),
    asset!("docs.css", CSS, "src/routes/docs/docs.css"),
];

/// Each asset's `ETag`: the start of its SHA-256, computed on first use.
static ETAGS: LazyLock<Vec<EntityTag>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let hash = digest::digest(&digest::SHA256, asset.bytes);
            let hex: String = hash.as_ref()[..12].iter().map(|b| format!("{b:02x}")).collect();
            EntityTag::new_strong(hex)
        })
        .collect()
});

/// Registers `/docs/{name}` for every embedded file.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/docs/{name}").route(crate::routes::verbs::get_or_head().to(serve)));
}

/// `GET /docs/{name}`: the file, or 304 when the client's copy is current.
async fn serve(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    let Some(index) = ASSETS.iter().position(|asset| asset.name == name.as_str()) else {
        return crate::routes::static_json::not_found().await;
    };
    let (asset, etag) = (&ASSETS[index], &ETAGS[index]);
    let current = match req.headers().get(header::IF_NONE_MATCH) {
        Some(_) => match header::Header::parse(&req) {
            Ok(IfNoneMatch::Any) => true,
            Ok(IfNoneMatch::Items(tags)) => tags.iter().any(|tag| tag.weak_eq(etag)),
            Err(_) => false,
        },
        None => false,
    };
    let mut response = if current {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header(header::ETag(etag.clone()))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if current {
        return response.finish();
    }
    response
        .content_type(ContentType(asset.media_type.parse().expect("a media type")))
        .body(asset.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored files are the ones `assets/swagger-ui/SHA256SUMS` lists
    /// (what `scripts/update-swagger-ui.sh` took from the npm package).
    #[test]
    fn the_embedded_swagger_ui_matches_its_checksums() {
        let sums = include_str!("../../../assets/swagger-ui/SHA256SUMS");
        let vendored = ASSETS
            .iter()
            .filter(|asset| !asset.name.starts_with("docs."))
            .count();
        let mut checked = 0;
        for line in sums.lines() {
            let (sum, file) = line.split_once("  ").expect("sha256sum format");
            let path = format!("{}/assets/swagger-ui/{file}", env!("CARGO_MANIFEST_DIR"));
            let bytes = std::fs::read(&path).unwrap();
            let hex: String = digest::digest(&digest::SHA256, &bytes)
                .as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(hex, sum, "{file}");
            if ASSETS.iter().any(|asset| asset.bytes == bytes.as_slice()) {
                checked += 1;
            }
        }
        assert_eq!(checked, vendored, "every embedded Swagger UI file is listed");
    }
}
