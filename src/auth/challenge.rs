//! The `WWW-Authenticate` header of a refusal, written whole: one
//! challenge per scheme the API accepts (RFC 6750 `Bearer`, RFC 9449
//! `DPoP`), each with its auth-params in a fixed order (RFC 9110 section
//! 11.6.1), the error in the challenge of the scheme the client used, and
//! in each, where the protected resource metadata is (RFC 9728 section
//! 5.1). Typed in the manner of actix-web-httpauth's challenges, whose
//! `WwwAuthenticate` header carries it.

use std::fmt;

use actix_web::http::header::{HeaderValue, InvalidHeaderValue, TryIntoHeaderValue};
use actix_web::web::Bytes;
use actix_web_httpauth::headers::www_authenticate::Challenge;

use crate::auth::token::Scheme;

/// The `realm` every challenge names.
const REALM: &str = "api";

/// Which challenges a refusal carries: the schemes the API accepts
/// (`DPOP_MODE`), the scheme the client used, whose challenge carries the
/// error (RFC 9449 section 7.1), and where the metadata is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenges {
    /// A `Bearer` challenge.
    bearer: bool,
    /// A `DPoP` challenge, announcing these `algs`.
    dpop_algs: Option<&'static str>,
    /// The scheme of the request's `Authorization` header, if a known one.
    used: Option<Scheme>,
    /// The permissions the route needs (RFC 6750 section 3's `scope`), for
    /// a client to ask for before it retries.
    scope: Option<String>,
    /// The absolute URL of the protected resource metadata, when the API
    /// serves it.
    resource_metadata: Option<String>,
}

impl Challenges {
    /// A `Bearer` challenge only: an API that accepts bearer tokens alone.
    pub(crate) const BEARER: Self = Self {
        bearer: true,
        dpop_algs: None,
        used: None,
        scope: None,
        resource_metadata: None,
    };

    /// A `Bearer` challenge if `bearer`, a `DPoP` one announcing
    /// `dpop_algs` if given; `used` is the scheme the client used.
    pub(crate) fn new(bearer: bool, dpop_algs: Option<&'static str>, used: Option<Scheme>) -> Self {
        Self {
            bearer,
            dpop_algs,
            used,
            scope: None,
            resource_metadata: None,
        }
    }

    /// These challenges, each naming `scope` (space-separated permissions)
    /// as what the route needs, unless its error names a scope already.
    pub(crate) fn needing(self, scope: Option<String>) -> Self {
        Self { scope, ..self }
    }

    /// These challenges, each naming `url` as its `resource_metadata`.
    pub(crate) fn pointing_to(self, url: String) -> Self {
        Self {
            resource_metadata: Some(url),
            ..self
        }
    }

    /// The challenge that carries the error: the one of the scheme the
    /// client used when the API offers it, else the first offered.
    fn carrier(&self) -> Scheme {
        match self.used {
            Some(Scheme::Dpop) if self.dpop_algs.is_some() => Scheme::Dpop,
            Some(Scheme::Bearer) if self.bearer => Scheme::Bearer,
            _ if self.bearer => Scheme::Bearer,
            _ => Scheme::Dpop,
        }
    }

    /// The header's value, with `error` (the error's auth-params) in the
    /// challenge of the carrier: `realm`, the error, the route's `scope`
    /// (where the error named none), the scheme's own parameters, then
    /// `resource_metadata`.
    pub(crate) fn written(&self, error: Vec<(&'static str, String)>) -> WwwChallenges {
        let carrier = self.carrier();
        let mut written = Vec::with_capacity(2);
        let mut error = Some(error);
        let schemes = [
            self.bearer.then_some((Scheme::Bearer, None)),
            self.dpop_algs.map(|algs| (Scheme::Dpop, Some(algs))),
        ];
        for (scheme, algs) in schemes.into_iter().flatten() {
            let mut params = vec![("realm", REALM.to_owned())];
            if scheme == carrier {
                params.extend(error.take().into_iter().flatten());
            }
            if !params.iter().any(|(name, _)| *name == "scope") {
                params.extend(self.scope.clone().map(|scope| ("scope", scope)));
            }
            params.extend(algs.map(|algs| ("algs", algs.to_owned())));
            params.extend(
                self.resource_metadata
                    .clone()
                    .map(|url| ("resource_metadata", url)),
            );
            written.push(OneChallenge { scheme, params });
        }
        WwwChallenges(written)
    }
}

/// One challenge: a scheme and its auth-params, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OneChallenge {
    scheme: Scheme,
    params: Vec<(&'static str, String)>,
}

/// A `WWW-Authenticate` value: challenges separated by commas (RFC 9110
/// section 11.6.1), each parameter quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WwwChallenges(Vec<OneChallenge>);

impl fmt::Display for WwwChallenges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (at, challenge) in self.0.iter().enumerate() {
            if at > 0 {
                f.write_str(", ")?;
            }
            f.write_str(match challenge.scheme {
                Scheme::Bearer => "Bearer",
                Scheme::Dpop => "DPoP",
            })?;
            for (at, (name, value)) in challenge.params.iter().enumerate() {
                let separator = if at == 0 { " " } else { ", " };
                write!(f, "{separator}{name}=\"{}\"", quotable(value))?;
            }
        }
        Ok(())
    }
}

impl TryIntoHeaderValue for WwwChallenges {
    type Error = InvalidHeaderValue;

    fn try_into_value(self) -> Result<HeaderValue, Self::Error> {
        HeaderValue::from_maybe_shared(self.to_bytes())
    }
}

impl Challenge for WwwChallenges {
    fn to_bytes(&self) -> Bytes {
        Bytes::from(self.to_string())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_cannot_break_the_header() {
        assert_eq!(quotable("a\"b\\c\né"), "a?b?c??");
        let hostile = Challenges::BEARER.pointing_to("http://h/\"x\r\n".into());
        assert_eq!(
            hostile
                .written(vec![("error_description", "a\"b\\c".into())])
                .to_string(),
            r#"Bearer realm="api", error_description="a?b?c", resource_metadata="http://h/?x??""#
        );
    }

    #[test]
    fn the_routes_scope_goes_in_every_challenge_that_names_none() {
        let both =
            Challenges::new(true, Some("ES256"), Some(Scheme::Dpop)).needing(Some("read:a read:b".into()));
        assert_eq!(
            both.written(Vec::new()).to_string(),
            r#"Bearer realm="api", scope="read:a read:b", DPoP realm="api", scope="read:a read:b", algs="ES256""#
        );
        let denied = vec![("error", "insufficient_scope".into()), ("scope", "read:b".into())];
        assert_eq!(
            both.written(denied).to_string(),
            r#"Bearer realm="api", scope="read:a read:b", DPoP realm="api", error="insufficient_scope", scope="read:b", algs="ES256""#
        );
    }

    #[test]
    fn resource_metadata_goes_in_every_challenge() {
        assert_eq!(
            Challenges::BEARER
                .pointing_to("http://h/\"x".into())
                .written(Vec::new())
                .to_string(),
            r#"Bearer realm="api", resource_metadata="http://h/?x""#
        );
        let both =
            Challenges::new(true, Some("ES256"), Some(Scheme::Bearer)).pointing_to("https://api/m".into());
        assert_eq!(
            both.written(vec![("error", "invalid_token".into())]).to_string(),
            r#"Bearer realm="api", error="invalid_token", resource_metadata="https://api/m", DPoP realm="api", algs="ES256", resource_metadata="https://api/m""#
        );
    }
}
