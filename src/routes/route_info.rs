//! How the published documents (the OpenAPI document, the protected
//! resource metadata) see a route: its path, what it needs, what it
//! answers. Handlers declare their `Doc` beside themselves; the route table
//! gathers them.

use utoipa::ToSchema;
use utoipa::openapi::{RefOr, schema::Schema};

use crate::auth::StepUp;

/// A route as the published documents see it.
#[derive(Debug, Clone)]
pub(crate) struct RouteInfo {
    /// The path, e.g. `/api/private`.
    pub(crate) path: &'static str,
    /// `None` for a public route; else the permission class as
    /// `Permission::alternatives` (one empty set: any valid token).
    pub(crate) requires: Option<Vec<Vec<String>>>,
    /// The login it needs beyond a valid token (RFC 9470 step-up).
    pub(crate) step_up: Option<StepUp>,
    /// What it answers.
    pub(crate) doc: Doc,
}

/// What the OpenAPI document says about a route, beside its permission.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Doc {
    /// The `operationId`.
    pub(crate) id: &'static str,
    /// The group the docs page shows it in.
    pub(crate) tag: &'static str,
    /// One line.
    pub(crate) summary: &'static str,
    /// Its 200 answer.
    pub(crate) ok: Answer,
    /// Another answer it may give, besides the refusals of its permission
    /// class: status, description, body.
    pub(crate) other: Option<(u16, &'static str, Answer)>,
}

impl Doc {
    /// A route whose 200 answer is always `body`.
    pub(crate) const fn fixed(
        id: &'static str,
        tag: &'static str,
        summary: &'static str,
        body: &'static str,
    ) -> Self {
        Self {
            id,
            tag,
            summary,
            ok: Answer::Fixed(body),
            other: None,
        }
    }
}

/// The body of an answer, for the OpenAPI document.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Answer {
    /// Always this JSON text (the quickstarts' fixed answers).
    Fixed(&'static str),
    /// JSON of this schema: its component name and the schemas it needs.
    Json(fn() -> NamedSchema),
    /// Any JSON object (the OpenAPI document itself).
    AnyJson,
    /// An HTML page.
    Html,
}

/// A schema under its component name, with the schemas it refers to.
pub(crate) struct NamedSchema {
    pub(crate) name: String,
    pub(crate) schema: RefOr<Schema>,
    pub(crate) refs: Vec<(String, RefOr<Schema>)>,
}

/// `T`'s schema, for [`Answer::Json`].
pub(crate) fn named<T: ToSchema>() -> NamedSchema {
    let mut refs = Vec::new();
    T::schemas(&mut refs);
    NamedSchema {
        name: T::name().into_owned(),
        schema: T::schema(),
        refs,
    }
}
