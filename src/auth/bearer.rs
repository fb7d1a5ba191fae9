//! Reading the bearer token from the `Authorization` header (RFC 6750 §2.1).
//!
//! Only the header is consulted: never a query string, a form field or a
//! cookie. The scheme is case-insensitive, as RFC 7235 says.

use actix_web::http::header::{self, HeaderMap};

use crate::auth::error::AuthError;
use crate::auth::validator::MAX_TOKEN_BYTES;

/// The token carried by the request's single `Authorization: Bearer` header.
///
/// This runs on every protected request, so it only splits the header's
/// bytes; the token's own syntax ([`check_b64token`]) is checked by the
/// validator before decoding, which a token already verified (and cached)
/// skips. The slower checks that pick an error message run only on refusal.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION);
    let value = values.next().ok_or(AuthError::MissingCredentials)?;
    if values.next().is_some() {
        return Err(AuthError::InvalidRequest("more than one Authorization header"));
    }
    if value.len() > MAX_TOKEN_BYTES + 64 {
        return Err(AuthError::InvalidToken("token too large".into()));
    }
    let bytes = trim_spaces(value.as_bytes());
    let (scheme, token) = match bytes.iter().position(|b| *b == b' ') {
        Some(space) => (&bytes[..space], trim_spaces(&bytes[space..])),
        None => (bytes, &b""[..]),
    };
    let refuse = |why| {
        if value.to_str().is_err() {
            AuthError::InvalidRequest("Authorization header is not visible ASCII")
        } else {
            AuthError::InvalidRequest(why)
        }
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(refuse("expected the Bearer authentication scheme"));
    }
    if token.is_empty() {
        return Err(refuse("empty bearer token"));
    }
    std::str::from_utf8(token).map_err(|_| refuse("malformed bearer token"))
}

/// Refuses a token that is not RFC 6750's `b64token` (a malformed request,
/// not an invalid token: no JWT can contain those bytes).
pub fn check_b64token(token: &str) -> Result<(), AuthError> {
    if is_b64token(token.as_bytes()) {
        Ok(())
    } else if token.is_ascii() {
        Err(AuthError::InvalidRequest("malformed bearer token"))
    } else {
        Err(AuthError::InvalidRequest(
            "Authorization header is not visible ASCII",
        ))
    }
}

fn trim_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != b' ').unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| *b != b' ')
        .map_or(start, |last| last + 1);
    &bytes[start..end]
}

/// The characters of RFC 6750's `b64token` (before its trailing `=`s).
const B64TOKEN_CHARS: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        byte += 1;
    }
    table
};

/// RFC 6750's `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &[u8]) -> bool {
    let padding = token.iter().rev().take_while(|b| **b == b'=').count();
    let body = &token[..token.len() - padding];
    !body.is_empty() && body.iter().all(|b| B64TOKEN_CHARS[usize::from(*b)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn parse(values: &[&str]) -> Result<String, AuthError> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        bearer_token(&headers).and_then(|token| check_b64token(token).map(|()| token.to_owned()))
    }

    #[test]
    fn accepts_any_case_of_the_scheme() {
        for value in ["Bearer abc.def.ghi", "bearer abc.def.ghi", "BEARER  abc.def.ghi "] {
            assert_eq!(parse(&[value]).unwrap(), "abc.def.ghi", "{value}");
        }
    }

    #[test]
    fn refuses_malformed_headers() {
        assert_eq!(parse(&[]), Err(AuthError::MissingCredentials));
        for value in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer ",
            "Bearertoken",
            "Bearer a b",
            "Bearer a\"b",
        ] {
            assert!(
                matches!(parse(&[value]), Err(AuthError::InvalidRequest(_))),
                "{value}"
            );
        }
        assert!(matches!(
            parse(&["Bearer a", "Bearer b"]),
            Err(AuthError::InvalidRequest(_))
        ));
    }
}
