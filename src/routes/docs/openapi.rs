//! The OpenAPI 3.1 document, built once at start from the route table
//! ([`crate::routes::table`]): a route's `security`, its 401, 403 and 503
//! answers and the permission its description names all come from the
//! permission class it is registered with.

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref,
};

use crate::auth::{ErrorBody, StepUp};
use crate::routes::route_info::{Answer, NamedSchema, RouteInfo, named};

/// The name of the security scheme every guarded route refers to.
pub(crate) const BEARER: &str = "bearerAuth";

/// What the document says about the tenant.
pub(super) struct About<'a> {
    /// The issuers tokens may come from.
    pub(super) issuers: &'a [String],
    /// The audiences a token may name.
    pub(super) audiences: &'a [String],
    /// True under `dev`.
    pub(super) development: bool,
}

/// The groups of the docs page, in order, with what each holds.
const TAGS: &[(&str, &str)] = &[
    ("quickstart", "Auth0's Django REST Framework quickstart routes"),
    ("messages", "Auth0's \"Hello World\" API sample routes"),
    ("users", "The caller's row in the users table"),
    ("probes", "For orchestrators and load balancers"),
    ("discovery", "What the API says about itself"),
];

/// The document for `routes`.
pub(super) fn document(routes: &[RouteInfo], about: &About<'_>) -> OpenApi {
    let mut components = ComponentsBuilder::new()
        .security_scheme(BEARER, bearer_scheme(about))
        .response("Unauthorized", refusal(
            "No usable token: missing, malformed or invalid (RFC 6750). The challenge says which, and where the protected resource metadata is.",
            true,
        ))
        .response("Forbidden", refusal(
            "A valid token without the permission the route needs; the challenge's `scope` names it.",
            true,
        ))
        .response("Unavailable", refusal(
            "Signing keys cannot be fetched, or the users table cannot be reached; try again after `Retry-After` seconds.",
            false,
        ));
    let error = named::<ErrorBody<'static>>();
    components = add_schemas(components, error);

    let mut paths = PathsBuilder::new();
    for route in routes {
        let doc = &route.doc;
        let (ok, schemas) = response("OK", doc.ok);
        components = schemas.into_iter().fold(components, add_schemas);
        let mut operation = OperationBuilder::new()
            .operation_id(Some(doc.id))
            .tag(doc.tag)
            .summary(Some(doc.summary))
            .description(Some(who_may_call(
                route.requires.as_deref(),
                route.step_up.as_ref(),
            )))
            .response("200", ok);
        if let Some(step_up) = &route.step_up {
            // Machine-readable beside the words: what a new login must bring.
            let step_up = serde_json::to_value(step_up).expect("a step-up serialises");
            operation =
                operation.extensions(Some(ExtensionsBuilder::new().add("x-step-up", step_up).build()));
        }
        if let Some((status, description, answer)) = doc.other {
            let (other, schemas) = response(description, answer);
            components = schemas.into_iter().fold(components, add_schemas);
            operation = operation.response(status.to_string(), other);
        }
        if let Some(alternatives) = &route.requires {
            operation = operation
                .securities(Some(
                    alternatives
                        .iter()
                        .map(|permissions| SecurityRequirement::new(BEARER, permissions)),
                ))
                .response("401", Ref::from_response_name("Unauthorized"));
            if alternatives.iter().any(|permissions| !permissions.is_empty()) {
                operation = operation.response("403", Ref::from_response_name("Forbidden"));
            }
            operation = operation.response("503", Ref::from_response_name("Unavailable"));
        }
        paths = paths.path(route.path, PathItem::new(HttpMethod::Get, operation));
    }

    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(env!("CARGO_PKG_NAME"))
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(description(about)))
                .license(Some(
                    LicenseBuilder::new()
                        .name(env!("CARGO_PKG_LICENSE"))
                        .identifier(Some(env!("CARGO_PKG_LICENSE")))
                        .build(),
                )),
        )
        .paths(paths)
        .components(Some(components.build()))
        .tags(Some(TAGS.iter().map(|(name, about)| {
            TagBuilder::new().name(*name).description(Some(*about)).build()
        })))
        .build()
}

/// The bearer scheme: an Auth0 access token for the configured audience.
fn bearer_scheme(about: &About<'_>) -> SecurityScheme {
    let audiences = about
        .audiences
        .iter()
        .map(|a| format!("`{a}`"))
        .collect::<Vec<_>>()
        .join(" or ");
    let mut description = format!(
        "An access token (a JWT signed with RS256) issued by {} for the audience {audiences}, \
         sent as `Authorization: Bearer <token>`. Permissions come from its `permissions` claim \
         (Auth0 RBAC), or from `scope` in a client-credentials token.",
        about
            .issuers
            .iter()
            .map(|issuer| format!("`{issuer}`"))
            .collect::<Vec<_>>()
            .join(" or ")
    );
    if about.development {
        description.push_str(
            " Under `dev`, the docs page offers three development tokens, and `cargo run -- token` mints more.",
        );
    }
    let mut http = Http::new(HttpAuthScheme::Bearer);
    http.bearer_format = Some("JWT".into());
    http.description = Some(description);
    SecurityScheme::Http(http)
}

/// The document's introduction.
fn description(about: &About<'_>) -> String {
    let mut text = String::from(
        "An API protected by Auth0 access tokens. Each guarded route names the permission it needs \
         in its `security` requirement (the bearer scheme's role list). `HEAD` works wherever `GET` \
         does. Refusals carry an RFC 6750 `WWW-Authenticate` challenge, whose `resource_metadata` \
         points to the OAuth 2.0 protected resource metadata (RFC 9728) at \
         `/.well-known/oauth-protected-resource`, and a JSON body.",
    );
    if about.development {
        text.push_str(
            "\n\n**Development mode**: tokens are signed by a local key, not by Auth0; for trying the API on this machine only.",
        );
    }
    text
}

/// Whom a route answers, in words: the permissions it needs, and the
/// login (RFC 9470 step-up).
fn who_may_call(requires: Option<&[Vec<String>]>, step_up: Option<&StepUp>) -> String {
    let Some(alternatives) = requires else {
        return "Anyone: no token needed.".into();
    };
    let mut who = if alternatives.iter().any(Vec::is_empty) {
        "Needs a valid access token.".to_owned()
    } else {
        let alternatives: Vec<String> = alternatives
            .iter()
            .map(|permissions| {
                permissions
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            })
            .collect();
        format!(
            "Needs a valid access token granting {}.",
            alternatives.join(", or ")
        )
    };
    if let Some(step_up) = step_up {
        let class = (!step_up.acr_values.is_empty()).then(|| {
            let classes: Vec<String> = step_up.acr_values.iter().map(|acr| format!("`{acr}`")).collect();
            format!(" of class (`acr`) {}", classes.join(" or "))
        });
        let within = step_up
            .max_age
            .map(|max_age| format!(" within the last {max_age} seconds (`auth_time`)"));
        who.push_str(&format!(
            " Its login must be one{}{} (RFC 9470 step-up): otherwise 401 `insufficient_user_authentication`, \
             whose challenge names the `acr_values` and `max_age` to ask the authorization server for.",
            class.unwrap_or_default(),
            within.unwrap_or_default()
        ));
    }
    who
}

/// A response with `answer` as its body, and the schemas it needs.
fn response(description: &str, answer: Answer) -> (Response, Vec<NamedSchema>) {
    let (media_type, content, schemas) = match answer {
        Answer::Fixed(body) => {
            let example: serde_json::Value = serde_json::from_str(body).expect("a fixed answer is JSON");
            let content = ContentBuilder::new()
                .schema(Some(fixed_schema(&example)))
                .example(Some(example))
                .build();
            ("application/json", content, Vec::new())
        }
        Answer::Json(schema) => {
            let schema = schema();
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema.name.clone())))
                .build();
            ("application/json", content, vec![schema])
        }
        Answer::AnyJson => {
            let object = ObjectBuilder::new().schema_type(Type::Object).build();
            let content = ContentBuilder::new().schema(Some(object)).build();
            ("application/json", content, Vec::new())
        }
        Answer::Html => {
            let string = ObjectBuilder::new().schema_type(Type::String).build();
            let content = ContentBuilder::new().schema(Some(string)).build();
            ("text/html", content, Vec::new())
        }
    };
    let response = ResponseBuilder::new()
        .description(description)
        .content(media_type, content)
        .build();
    (response, schemas)
}

/// The schema of a fixed JSON object: each member exactly its string.
fn fixed_schema(body: &serde_json::Value) -> Schema {
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    for (name, value) in body.as_object().into_iter().flatten() {
        let member = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([value.clone()]));
        object = object.property(name, member).required(name);
    }
    object.build().into()
}

/// A refusal: the `Error` body, `Cache-Control: no-store`, and either the
/// challenge or `Retry-After`.
fn refusal(description: &str, challenge: bool) -> Response {
    let string = || ObjectBuilder::new().schema_type(Type::String).build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        )
        .header(
            "Cache-Control",
            HeaderBuilder::new()
                .schema(Some(string()))
                .description(Some("`no-store`"))
                .build(),
        );
    response = if challenge {
        response.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(Some(string()))
                .description(Some(
                    "An RFC 6750 Bearer challenge: `realm`, `error` and `error_description` (none when no credentials \
                     were sent), `scope` on a 403, and `resource_metadata` (RFC 9728)",
                ))
                .example(Some(
                    r#"Bearer realm="api", error="invalid_token", error_description="token expired", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource""#.into(),
                ))
                .build(),
        )
    } else {
        response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(string()))
                .description(Some("Seconds until a retry may succeed"))
                .build(),
        )
    };
    response.build()
}

/// `components` with `schema` and what it refers to.
fn add_schemas(components: ComponentsBuilder, schema: NamedSchema) -> ComponentsBuilder {
    components
        .schema(schema.name, schema.schema)
        .schemas_from_iter(schema.refs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{Doc, table};

    fn about() -> About<'static> {
        static ISSUERS: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec!["https://tenant.example.com/".to_owned()]);
        About {
            issuers: &ISSUERS,
            audiences: &[],
            development: false,
        }
    }

    #[test]
    fn every_route_is_documented_once_in_a_declared_group() {
        let routes = table();
        let document = serde_json::to_value(document(&routes, &about())).unwrap();
        let mut ids = std::collections::BTreeSet::new();
        for route in &routes {
            let operation = &document["paths"][route.path]["get"];
            assert_eq!(operation["operationId"], route.doc.id, "{}", route.path);
            assert!(ids.insert(route.doc.id), "{} twice", route.doc.id);
            assert!(
                TAGS.iter().any(|(tag, _)| *tag == route.doc.tag),
                "{}",
                route.doc.tag
            );
            assert!(
                operation["responses"]["200"]["description"].is_string(),
                "OpenAPI requires a description"
            );
        }
        assert_eq!(document["paths"].as_object().unwrap().len(), routes.len());
    }

    #[test]
    fn alternatives_become_one_security_requirement_each() {
        let route = RouteInfo {
            path: "/either",
            requires: Some(vec![vec!["a".into(), "b".into()], vec!["c".into()]]),
            step_up: None,
            doc: Doc::fixed("getEither", "messages", "Either", r#"{"text":"hi"}"#),
        };
        let document = serde_json::to_value(document(&[route], &about())).unwrap();
        let operation = &document["paths"]["/either"]["get"];
        assert_eq!(
            operation["security"],
            serde_json::json!([{ "bearerAuth": ["a", "b"] }, { "bearerAuth": ["c"] }])
        );
        assert_eq!(
            operation["description"],
            "Needs a valid access token granting `a` and `b`, or `c`."
        );
        for status in ["401", "403", "503"] {
            assert!(operation["responses"][status]["$ref"].is_string(), "{status}");
        }
        assert_eq!(
            operation["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["text"]["enum"],
            serde_json::json!(["hi"])
        );
    }
}
