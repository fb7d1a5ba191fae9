//! Why a request was refused, and how that refusal looks on the wire
//! (RFC 6750 challenge plus a JSON body).
//!
//! One deliberate departure: RFC 6750 section 3.1 suggests 400 for
//! `invalid_request`. A malformed `Authorization` header is answered 401
//! here, with the challenge, because what the client must do is the same as
//! for a bad token: present valid credentials.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use crate::metrics::{METRICS, Outcome};
use crate::telemetry::RequestId;

/// The `realm` every challenge names.
const REALM: &str = "api";

/// A refused request. Descriptions say what failed and never echo the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header at all.
    #[error("no credentials")]
    MissingCredentials,
    /// An `Authorization` header that carries no usable bearer token.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// A bearer token that failed validation.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// A valid token without the permissions (or claims) the route needs.
    #[error("insufficient scope: {}", insufficient(required, conditions, &None))]
    InsufficientScope {
        /// Space-separated permissions that would have been enough (none
        /// when only claim conditions failed).
        required: String,
        /// Claim conditions that failed, in words.
        conditions: Vec<String>,
        /// Why the token has no permissions, when the cause is the tenant's set-up.
        advice: Option<&'static str>,
    },
    /// No signing keys to check the token against (tenant unreachable).
    #[error("signing keys unavailable")]
    KeysUnavailable {
        /// When a retry may succeed.
        retry_after: Duration,
    },
    /// The users table could not be reached.
    #[error("database unavailable")]
    DatabaseUnavailable,
    /// A guarded route in an app that registered no token validator or
    /// users store: a programming error, answered 500 and logged.
    #[error("authentication is not configured: {0}")]
    Misconfigured(&'static str),
}

/// The JSON body of every refusal; also the OpenAPI document's `Error` schema.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody<'a> {
    /// The challenge's error code; `unauthorized` when no credentials were
    /// sent, `temporarily_unavailable` for a 503.
    #[schema(examples("invalid_token"))]
    error: &'a str,
    /// What failed, in words (never the token).
    #[schema(examples("token expired"))]
    error_description: &'a str,
    /// The quickstarts' wording: "Requires authentication", "Bad
    /// credentials", "Permission denied", "Service unavailable".
    #[schema(examples("Bad credentials"))]
    message: &'a str,
}

impl AuthError {
    /// One debug line per refusal, without the token; an app wired wrongly
    /// is an error.
    pub(crate) fn log(&self, req: &HttpRequest) {
        METRICS.auth_decision(self.outcome());
        let request_id = RequestId::of(req);
        let request_id = request_id.as_str();
        if let AuthError::Misconfigured(_) = self {
            log::error!(request_id; "{} {}: {self}", req.method(), req.path());
        } else {
            log::debug!(request_id; "refused {} {}: {self}", req.method(), req.path());
        }
    }

    /// The outcome this refusal counts as.
    fn outcome(&self) -> Outcome {
        match self {
            AuthError::MissingCredentials => Outcome::unauthorized,
            AuthError::InvalidRequest(_) => Outcome::invalid_request,
            AuthError::InvalidToken(_) => Outcome::invalid_token,
            AuthError::InsufficientScope { .. } => Outcome::insufficient_scope,
            AuthError::KeysUnavailable { .. }
            | AuthError::DatabaseUnavailable
            | AuthError::Misconfigured(_) => Outcome::unavailable,
        }
    }

    /// The RFC 6750 `error` code, where the challenge carries one.
    fn code(&self) -> Option<&'static str> {
        match self {
            AuthError::MissingCredentials => None,
            AuthError::InvalidRequest(_) => Some("invalid_request"),
            AuthError::InvalidToken(_) => Some("invalid_token"),
            AuthError::InsufficientScope { .. } => Some("insufficient_scope"),
            AuthError::KeysUnavailable { .. }
            | AuthError::DatabaseUnavailable
            | AuthError::Misconfigured(_) => None,
        }
    }

    fn description(&self) -> String {
        match self {
            AuthError::MissingCredentials => "the request has no Authorization header".into(),
            AuthError::InvalidRequest(why) => (*why).into(),
            AuthError::InvalidToken(why) => why.clone(),
            AuthError::InsufficientScope {
                required,
                conditions,
                advice,
            } => insufficient(required, conditions, advice),
            AuthError::KeysUnavailable { .. } => "signing keys cannot be fetched; try again shortly".into(),
            AuthError::DatabaseUnavailable => "the user store is unavailable; try again shortly".into(),
            AuthError::Misconfigured(_) => "authentication is not configured for this route".into(),
        }
    }

    fn message(&self) -> &'static str {
        match self {
            AuthError::MissingCredentials => "Requires authentication",
            AuthError::InvalidRequest(_) | AuthError::InvalidToken(_) => "Bad credentials",
            AuthError::InsufficientScope { .. } => "Permission denied",
            AuthError::KeysUnavailable { .. } | AuthError::DatabaseUnavailable => "Service unavailable",
            AuthError::Misconfigured(_) => "Internal Server Error",
        }
    }

    /// The `WWW-Authenticate` value: auth-params separated by commas (RFC 7235).
    fn challenge(&self) -> String {
        let mut challenge = format!("Bearer realm=\"{REALM}\"");
        if let Some(code) = self.code() {
            challenge.push_str(&format!(", error=\"{code}\""));
            challenge.push_str(&format!(
                ", error_description=\"{}\"",
                quotable(&self.description())
            ));
        }
        if let AuthError::InsufficientScope { required, .. } = self
            && !required.is_empty()
        {
            challenge.push_str(&format!(", scope=\"{}\"", quotable(required)));
        }
        challenge
    }
}

/// What a 403 says it needed: the permissions, the claim conditions, and
/// how to fix the tenant when that is the cause.
fn insufficient(required: &str, conditions: &[String], advice: &Option<&'static str>) -> String {
    let permissions = (!required.is_empty()).then(|| format!("requires permission: {required}"));
    let conditions = conditions.iter().map(|condition| format!("requires {condition}"));
    permissions
        .into_iter()
        .chain(conditions)
        .chain(advice.map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `challenge` with RFC 9728's `resource_metadata` parameter added: where a
/// client finds the protected resource metadata, and from it the
/// authorization server to get a token from.
pub(crate) fn with_resource_metadata(challenge: &str, url: &str) -> String {
    format!("{challenge}, resource_metadata=\"{}\"", quotable(url))
}

/// Keeps only the characters RFC 6750 allows inside a quoted attribute.
fn quotable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            AuthError::MissingCredentials | AuthError::InvalidRequest(_) | AuthError::InvalidToken(_) => {
                StatusCode::UNAUTHORIZED
            }
            AuthError::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            AuthError::KeysUnavailable { .. } | AuthError::DatabaseUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AuthError::Misconfigured(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let description = self.description();
        let body = ErrorBody {
            error: match self {
                AuthError::MissingCredentials => "unauthorized",
                AuthError::KeysUnavailable { .. } | AuthError::DatabaseUnavailable => {
                    "temporarily_unavailable"
                }
                AuthError::Misconfigured(_) => "server_error",
                other => other.code().unwrap_or_default(),
            },
            error_description: &description,
            message: self.message(),
        };
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        match self {
            AuthError::KeysUnavailable { retry_after } => {
                response.insert_header((header::RETRY_AFTER, retry_after.as_secs().max(1).to_string()));
            }
            AuthError::DatabaseUnavailable => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            AuthError::Misconfigured(_) => {}
            _ => {
                response.insert_header((header::WWW_AUTHENTICATE, self.challenge()));
            }
        }
        response.json(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_follow_rfc_6750() {
        assert_eq!(AuthError::MissingCredentials.challenge(), r#"Bearer realm="api""#);
        assert_eq!(
            AuthError::InvalidToken("token expired".into()).challenge(),
            r#"Bearer realm="api", error="invalid_token", error_description="token expired""#
        );
        assert_eq!(
            AuthError::InsufficientScope {
                required: "read:messages".into(),
                conditions: Vec::new(),
                advice: None,
            }
            .challenge(),
            r#"Bearer realm="api", error="insufficient_scope", error_description="requires permission: read:messages", scope="read:messages""#
        );
    }

    #[test]
    fn quoted_values_cannot_break_the_header() {
        assert_eq!(quotable("a\"b\\c\né"), "a?b?c??");
        assert_eq!(
            with_resource_metadata(r#"Bearer realm="api""#, "http://h/\"x"),
            r#"Bearer realm="api", resource_metadata="http://h/?x""#
        );
    }
}
