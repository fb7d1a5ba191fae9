//! Why a request was refused, and how that refusal looks on the wire: a
//! `WWW-Authenticate` challenge for each scheme the API accepts (RFC 6750
//! `Bearer`, RFC 9449 `DPoP`), the error in the challenge of the scheme the
//! client used, plus a JSON body.
//!
//! One deliberate departure: RFC 6750 section 3.1 suggests 400 for
//! `invalid_request` (and Auth0's Node SDK answers a bad DPoP proof 400). A
//! malformed `Authorization` header or proof is answered 401 here, with the
//! challenges, because what the client must do is the same as for a bad
//! token: present valid credentials.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use actix_web_httpauth::headers::www_authenticate::WwwAuthenticate;

use crate::auth::challenge::{Challenges, WwwChallenges};
use crate::metrics::{METRICS, Outcome};
use crate::telemetry::RequestId;

/// A refused request. Descriptions say what failed and never echo the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header at all.
    #[error("no credentials")]
    MissingCredentials,
    /// An `Authorization` header that carries no usable bearer token.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// An access token that failed validation, or one presented with the
    /// wrong scheme for its binding.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// A DPoP proof that is missing, malformed, or does not prove what it
    /// must (RFC 9449 section 4.3).
    #[error("invalid DPoP proof: {0}")]
    InvalidDpopProof(String),
    /// A DPoP proof without a nonce this API issued, when it issues them
    /// (RFC 9449 section 9); holds the nonce to use.
    #[error("DPoP proof without a current server nonce")]
    UseDpopNonce(String),
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
    /// A valid token whose login falls short of what the route needs
    /// (RFC 9470): a new login must bring one of `acr_values`, within
    /// `max_age` seconds.
    #[error("insufficient user authentication: {why}")]
    InsufficientUserAuthentication {
        /// What fell short, in words.
        why: String,
        /// The authentication context classes a new login may have.
        acr_values: Vec<String>,
        /// How long ago the new login may be, at most, in seconds.
        max_age: Option<u64>,
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
    /// So many DPoP proofs are within their window that another cannot be
    /// remembered: accepting it unremembered would let its replay through.
    #[error("too many DPoP proofs to remember")]
    TooManyProofs,
    /// A DPoP proof whose key has its share of the replay cache already
    /// (`DPOP_REPLAY_PER_KEY`): that key waits, the others keep their room.
    #[error("DPoP key over its share of the replay cache")]
    KeyOverReplayShare {
        /// When every proof of that key now remembered has been forgotten.
        retry_after: Duration,
    },
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
    /// sent, `too_many_requests` for a 429, `temporarily_unavailable` for a
    /// 503.
    #[schema(examples("invalid_token"))]
    error: &'a str,
    /// What failed, in words (never the token).
    #[schema(examples("token expired"))]
    error_description: &'a str,
    /// The quickstarts' wording: "Requires authentication", "Bad
    /// credentials", "Permission denied", "Service unavailable"; and "Too
    /// Many Requests".
    #[schema(examples("Bad credentials"))]
    message: &'a str,
}

/// A refused DPoP proof, saying why.
pub(crate) fn bad_proof(why: &str) -> AuthError {
    AuthError::InvalidDpopProof(why.to_owned())
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
            AuthError::InvalidDpopProof(_) => Outcome::invalid_dpop_proof,
            AuthError::UseDpopNonce(_) => Outcome::use_dpop_nonce,
            AuthError::InsufficientScope { .. } => Outcome::insufficient_scope,
            AuthError::InsufficientUserAuthentication { .. } => Outcome::insufficient_user_authentication,
            AuthError::KeyOverReplayShare { .. } => Outcome::too_many_requests,
            AuthError::KeysUnavailable { .. }
            | AuthError::DatabaseUnavailable
            | AuthError::TooManyProofs
            | AuthError::Misconfigured(_) => Outcome::unavailable,
        }
    }

    /// The RFC 6750 `error` code, where the challenge carries one.
    fn code(&self) -> Option<&'static str> {
        match self {
            AuthError::MissingCredentials => None,
            AuthError::InvalidRequest(_) => Some("invalid_request"),
            AuthError::InvalidToken(_) => Some("invalid_token"),
            AuthError::InvalidDpopProof(_) => Some("invalid_dpop_proof"),
            AuthError::UseDpopNonce(_) => Some("use_dpop_nonce"),
            AuthError::InsufficientScope { .. } => Some("insufficient_scope"),
            AuthError::InsufficientUserAuthentication { .. } => Some("insufficient_user_authentication"),
            AuthError::KeysUnavailable { .. }
            | AuthError::DatabaseUnavailable
            | AuthError::TooManyProofs
            | AuthError::KeyOverReplayShare { .. }
            | AuthError::Misconfigured(_) => None,
        }
    }

    fn description(&self) -> String {
        match self {
            AuthError::MissingCredentials => "the request has no Authorization header".into(),
            AuthError::InvalidRequest(why) => (*why).into(),
            AuthError::InvalidToken(why) | AuthError::InvalidDpopProof(why) => why.clone(),
            AuthError::UseDpopNonce(_) => {
                "the DPoP proof must carry the nonce of the DPoP-Nonce header (nonce claim)".into()
            }
            AuthError::InsufficientScope {
                required,
                conditions,
                advice,
            } => insufficient(required, conditions, advice),
            AuthError::InsufficientUserAuthentication { why, .. } => why.clone(),
            AuthError::KeysUnavailable { .. } => "signing keys cannot be fetched; try again shortly".into(),
            AuthError::DatabaseUnavailable => "the user store is unavailable; try again shortly".into(),
            AuthError::TooManyProofs => "too many DPoP proofs to check right now; try again shortly".into(),
            AuthError::KeyOverReplayShare { .. } => {
                "this DPoP key has as many proofs in their window as one key may; try again after Retry-After seconds"
                    .into()
            }
            AuthError::Misconfigured(_) => "authentication is not configured for this route".into(),
        }
    }

    fn message(&self) -> &'static str {
        match self {
            AuthError::MissingCredentials | AuthError::InsufficientUserAuthentication { .. } => {
                "Requires authentication"
            }
            AuthError::InvalidRequest(_)
            | AuthError::InvalidToken(_)
            | AuthError::InvalidDpopProof(_)
            | AuthError::UseDpopNonce(_) => "Bad credentials",
            AuthError::InsufficientScope { .. } => "Permission denied",
            AuthError::KeysUnavailable { .. } | AuthError::DatabaseUnavailable | AuthError::TooManyProofs => {
                "Service unavailable"
            }
            AuthError::KeyOverReplayShare { .. } => "Too Many Requests",
            AuthError::Misconfigured(_) => "Internal Server Error",
        }
    }

    /// The auth-params the error adds to the challenge of the scheme the
    /// client used (RFC 6750 section 3): the code, the description and,
    /// for a 403, the permissions that would do.
    fn challenge_params(&self) -> Vec<(&'static str, String)> {
        let Some(code) = self.code() else {
            return Vec::new();
        };
        let mut params = vec![
            ("error", code.to_owned()),
            ("error_description", self.description()),
        ];
        match self {
            AuthError::InsufficientScope { required, .. } if !required.is_empty() => {
                params.push(("scope", required.clone()));
            }
            // RFC 9470 section 3: what the new login must bring.
            AuthError::InsufficientUserAuthentication {
                acr_values, max_age, ..
            } => {
                if !acr_values.is_empty() {
                    params.push(("acr_values", acr_values.join(" ")));
                }
                params.extend(max_age.map(|max_age| ("max_age", max_age.to_string())));
            }
            _ => {}
        }
        params
    }

    /// The `WWW-Authenticate` value, as `challenges` write it.
    fn challenge(&self, challenges: &Challenges) -> WwwChallenges {
        challenges.written(self.challenge_params())
    }

    /// The response to this refusal, challenging as `challenges` says.
    fn response(&self, challenges: &Challenges) -> HttpResponse {
        let description = self.description();
        let body = ErrorBody {
            error: match self {
                AuthError::MissingCredentials => "unauthorized",
                AuthError::KeysUnavailable { .. }
                | AuthError::DatabaseUnavailable
                | AuthError::TooManyProofs => "temporarily_unavailable",
                AuthError::KeyOverReplayShare { .. } => "too_many_requests",
                AuthError::Misconfigured(_) => "server_error",
                other => other.code().unwrap_or_default(),
            },
            error_description: &description,
            message: self.message(),
        };
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        match self {
            AuthError::KeysUnavailable { retry_after } | AuthError::KeyOverReplayShare { retry_after } => {
                response.insert_header((header::RETRY_AFTER, retry_after.as_secs().max(1).to_string()));
            }
            AuthError::DatabaseUnavailable | AuthError::TooManyProofs => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            AuthError::Misconfigured(_) => {}
            AuthError::UseDpopNonce(nonce) => {
                response.insert_header(WwwAuthenticate(self.challenge(challenges)));
                response.insert_header(("DPoP-Nonce", nonce.as_str()));
            }
            _ => {
                response.insert_header(WwwAuthenticate(self.challenge(challenges)));
            }
        }
        response.json(body)
    }
}

/// A refusal as the guard answers it: why ([`AuthError`]) and which
/// challenges to send ([`Challenges`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct Refusal {
    /// Why the request was refused.
    pub error: AuthError,
    /// The challenges its response carries.
    pub challenges: Challenges,
}

impl ResponseError for Refusal {
    fn status_code(&self) -> StatusCode {
        self.error.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        self.error.response(&self.challenges)
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

/// Answered on its own (outside the guard, which sends a [`Refusal`]), a
/// refusal challenges for `Bearer` alone.
impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            AuthError::MissingCredentials
            | AuthError::InvalidRequest(_)
            | AuthError::InvalidToken(_)
            | AuthError::InvalidDpopProof(_)
            | AuthError::UseDpopNonce(_)
            | AuthError::InsufficientUserAuthentication { .. } => StatusCode::UNAUTHORIZED,
            AuthError::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            AuthError::KeyOverReplayShare { .. } => StatusCode::TOO_MANY_REQUESTS,
            AuthError::KeysUnavailable { .. } | AuthError::DatabaseUnavailable | AuthError::TooManyProofs => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AuthError::Misconfigured(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.response(&Challenges::BEARER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::token::Scheme;

    const BEARER: Challenges = Challenges::BEARER;

    #[test]
    fn challenges_follow_rfc_6750() {
        assert_eq!(
            AuthError::MissingCredentials.challenge(&BEARER).to_string(),
            r#"Bearer realm="api""#
        );
        assert_eq!(
            AuthError::InvalidToken("token expired".into())
                .challenge(&BEARER)
                .to_string(),
            r#"Bearer realm="api", error="invalid_token", error_description="token expired""#
        );
        assert_eq!(
            AuthError::InsufficientScope {
                required: "read:messages".into(),
                conditions: Vec::new(),
                advice: None,
            }
            .challenge(&BEARER)
            .to_string(),
            r#"Bearer realm="api", error="insufficient_scope", error_description="requires permission: read:messages", scope="read:messages""#
        );
    }

    #[test]
    fn the_error_goes_in_the_challenge_of_the_scheme_used() {
        let both = |used| Challenges::new(true, Some("ES256 RS256"), used);
        assert_eq!(
            AuthError::MissingCredentials.challenge(&both(None)).to_string(),
            r#"Bearer realm="api", DPoP realm="api", algs="ES256 RS256""#
        );
        let proof = AuthError::InvalidDpopProof("htm mismatch".into());
        assert_eq!(
            proof.challenge(&both(Some(Scheme::Dpop))).to_string(),
            r#"Bearer realm="api", DPoP realm="api", error="invalid_dpop_proof", error_description="htm mismatch", algs="ES256 RS256""#
        );
        let token = AuthError::InvalidToken("expired".into());
        assert_eq!(
            token.challenge(&both(Some(Scheme::Bearer))).to_string(),
            r#"Bearer realm="api", error="invalid_token", error_description="expired", DPoP realm="api", algs="ES256 RS256""#
        );
        // DPoP only: a Bearer request's error goes in the one challenge there is.
        let dpop_only = Challenges::new(false, Some("ES256"), Some(Scheme::Bearer));
        assert_eq!(
            token.challenge(&dpop_only).to_string(),
            r#"DPoP realm="api", error="invalid_token", error_description="expired", algs="ES256""#
        );
        // Bearer only: so does a DPoP request's.
        let bearer_only = Challenges::new(true, None, Some(Scheme::Dpop));
        assert_eq!(
            token.challenge(&bearer_only).to_string(),
            r#"Bearer realm="api", error="invalid_token", error_description="expired""#
        );
    }

    #[test]
    fn a_key_over_its_share_is_told_when_to_retry_and_counted_apart() {
        let error = AuthError::KeyOverReplayShare {
            retry_after: Duration::from_secs(66),
        };
        let dpop = Challenges::new(true, Some("ES256"), Some(Scheme::Dpop));
        let response = error.response(&dpop);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let headers = response.headers();
        assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "66");
        assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
        assert!(headers.get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(error.outcome(), Outcome::too_many_requests);
        assert_ne!(AuthError::TooManyProofs.outcome(), Outcome::too_many_requests);
    }
}
