//! The input: the token as the server's `Authorization` reader would take
//! it from the header (a scheme before it, its size), or the refusal it
//! would answer.

use crate::auth::doctor::findings::{Doctor, Status};
use crate::auth::error::AuthError;
use crate::auth::token::{MAX_TOKEN_BYTES, Scheme};

impl Doctor<'_> {
    /// The token in `input`, and the scheme written before it: what the
    /// server's `Authorization` reader would take from the header, or the
    /// refusal it would answer.
    pub(super) fn input<'i>(&mut self, input: &'i [u8]) -> Result<(&'i str, Option<Scheme>), AuthError> {
        let Ok(text) = std::str::from_utf8(input) else {
            self.problem(
                "input",
                format!(
                    "{} bytes that are not text (not UTF-8): a token is ASCII; was a file or binary data given?",
                    input.len()
                ),
            );
            return Err(AuthError::InvalidRequest(
                "Authorization header is not visible ASCII",
            ));
        };
        let text = text.trim();
        let (scheme, token) = match text.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => (Some(Scheme::Bearer), rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("dpop") => (Some(Scheme::Dpop), rest),
            _ => (None, text),
        };
        let token = token.trim_start();
        if let Some(scheme) = scheme {
            let name = match scheme {
                Scheme::Bearer => "Bearer",
                Scheme::Dpop => "DPoP",
            };
            self.add(
                Status::Note,
                "input",
                format!("the `{name}` scheme before the token was stripped; the token is explained as sent with it"),
            );
        }
        if token.is_empty() {
            self.problem("input", "no token after the scheme");
            return Err(AuthError::InvalidRequest("empty access token"));
        }
        if token.len() > MAX_TOKEN_BYTES {
            self.problem(
                "input",
                format!(
                    "{} bytes: the server refuses a token over {MAX_TOKEN_BYTES} bytes unread, and no Auth0 access token is that long; check what was pasted",
                    token.len()
                ),
            );
            return Err(AuthError::InvalidToken("token too large".into()));
        }
        Ok((token, scheme))
    }
}
