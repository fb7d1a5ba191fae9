//! Reading the access token from the `Authorization` header (RFC 6750
//! §2.1, RFC 9449 §7.1).
//!
//! Only the header is consulted: never a query string, a form field or a
//! cookie. The scheme is case-insensitive, as RFC 7235 says, and a header
//! that is not exactly `Bearer <b64token>` or `DPoP <b64token>` is refused
//! with a reason. Which schemes the API accepts is the guard's decision.

use std::future::{Ready, ready};
use std::ops::Range;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{FromRequest, HttpRequest};

use crate::auth::error::AuthError;
use crate::auth::token::{MAX_TOKEN_BYTES, Scheme};

/// The access token of a request and the scheme it came with. Holds the
/// header value (a reference-counted buffer), so extracting it copies
/// nothing.
#[derive(Debug, Clone)]
pub struct AccessToken {
    value: HeaderValue,
    token: Range<usize>,
    scheme: Scheme,
}

impl AccessToken {
    /// The token, without the scheme (checked to be UTF-8 when extracted
    /// as a `AccessToken`; empty if a [`Credentials`] holds other bytes,
    /// which the guard refuses).
    pub fn token(&self) -> &str {
        self.checked_token().unwrap_or_default()
    }

    /// The token, or the refusal of a header that is not UTF-8 (so not
    /// visible ASCII either).
    pub(crate) fn checked_token(&self) -> Result<&str, AuthError> {
        std::str::from_utf8(&self.value.as_bytes()[self.token.clone()])
            .map_err(|_| AuthError::InvalidRequest("Authorization header is not visible ASCII"))
    }

    /// `Bearer` or `DPoP`.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }
}

impl FromRequest for AccessToken {
    type Error = AuthError;
    type Future = Ready<Result<Self, AuthError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(access_token(req.headers()).inspect_err(|refusal| refusal.log(req)))
    }
}

/// What the `Authorization` header holds: the token, or why there is none.
/// The extractor that actix-web-httpauth's middleware runs for
/// [`require`](crate::auth::require): it never fails by itself, so that the
/// guard words every refusal, with the challenges of the schemes the API
/// accepts.
#[derive(Debug, Clone)]
pub struct Credentials(pub Result<AccessToken, AuthError>);

impl FromRequest for Credentials {
    type Error = std::convert::Infallible;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(Ok(Self(split_authorization(req.headers()))))
    }
}

/// The scheme of the request's (first) `Authorization` header, if it is
/// one the API knows: the challenge of that scheme carries a refusal's
/// error. Read only on refusal.
pub(crate) fn scheme_of(headers: &HeaderMap) -> Option<Scheme> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let start = value.iter().position(|b| *b != b' ')?;
    let scheme = value[start..].split(|b| *b == b' ').next()?;
    if scheme.eq_ignore_ascii_case(b"bearer") {
        Some(Scheme::Bearer)
    } else if scheme.eq_ignore_ascii_case(b"dpop") {
        Some(Scheme::Dpop)
    } else {
        None
    }
}

/// The token carried by the request's single `Authorization` header, with
/// its scheme (`Bearer` or `DPoP`), checked to be UTF-8.
pub(crate) fn access_token(headers: &HeaderMap) -> Result<AccessToken, AuthError> {
    let bearer = split_authorization(headers)?;
    bearer.checked_token()?;
    Ok(bearer)
}

/// The request's single `Authorization` header split into scheme and
/// token, the token not yet checked to be UTF-8
/// ([`AccessToken::checked_token`] does, once).
///
/// This runs on every protected request, so it only splits the header's
/// bytes; the token's own syntax ([`check_b64token`]) is checked by the
/// validator when the token fails to decode, to pick the refusal's message
/// (a token that decodes holds only `b64token` characters). The slower
/// checks that pick an error message run only on refusal.
pub(crate) fn split_authorization(headers: &HeaderMap) -> Result<AccessToken, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION);
    let value = values.next().ok_or(AuthError::MissingCredentials)?;
    if values.next().is_some() {
        return Err(AuthError::InvalidRequest("more than one Authorization header"));
    }
    let bytes = value.as_bytes();
    let (start, end) = trim_spaces(bytes, 0..bytes.len());
    let (scheme, token) = match bytes[start..end].iter().position(|b| *b == b' ') {
        Some(space) => (start..start + space, trim_spaces(bytes, start + space..end)),
        None => (start..end, (end, end)),
    };
    let refuse = |why| {
        if value.to_str().is_err() {
            AuthError::InvalidRequest("Authorization header is not visible ASCII")
        } else {
            AuthError::InvalidRequest(why)
        }
    };
    let scheme = if bytes[scheme.clone()].eq_ignore_ascii_case(b"bearer") {
        Scheme::Bearer
    } else if bytes[scheme].eq_ignore_ascii_case(b"dpop") {
        Scheme::Dpop
    } else {
        return Err(refuse("expected the Bearer or DPoP authentication scheme"));
    };
    let token = token.0..token.1;
    if token.is_empty() {
        return Err(refuse("empty access token"));
    }
    // The one bound on a token's size: everything after works on at most this.
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::InvalidToken("token too large".into()));
    }
    Ok(AccessToken {
        value: value.clone(),
        token,
        scheme,
    })
}

/// Refuses a token that is not RFC 6750's `b64token` (RFC 9449's `token68`
/// is the same grammar): a malformed request, not an invalid token, as no
/// JWT can contain those bytes.
pub(crate) fn check_b64token(token: &str) -> Result<(), AuthError> {
    if is_b64token(token.as_bytes()) {
        Ok(())
    } else if token.is_ascii() {
        Err(AuthError::InvalidRequest("malformed access token"))
    } else {
        Err(AuthError::InvalidRequest(
            "Authorization header is not visible ASCII",
        ))
    }
}

/// `range` of `bytes` without its leading and trailing spaces, as bounds.
fn trim_spaces(bytes: &[u8], range: Range<usize>) -> (usize, usize) {
    let part = &bytes[range.clone()];
    let start = part.iter().position(|b| *b != b' ').unwrap_or(part.len());
    let end = part
        .iter()
        .rposition(|b| *b != b' ')
        .map_or(start, |last| last + 1);
    (range.start + start, range.start + end)
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

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn parse(values: &[&str]) -> Result<String, AuthError> {
        let bearer = access_token(&headers(values))?;
        check_b64token(bearer.token())?;
        Ok(bearer.token().to_owned())
    }

    #[test]
    fn accepts_any_case_of_the_scheme() {
        for value in ["Bearer abc.def.ghi", "bearer abc.def.ghi", "BEARER  abc.def.ghi "] {
            assert_eq!(parse(&[value]).unwrap(), "abc.def.ghi", "{value}");
            assert_eq!(access_token(&headers(&[value])).unwrap().scheme(), Scheme::Bearer);
        }
        for value in ["DPoP abc.def.ghi", "dpop abc.def.ghi", " DPOP abc.def.ghi"] {
            assert_eq!(parse(&[value]).unwrap(), "abc.def.ghi", "{value}");
            assert_eq!(access_token(&headers(&[value])).unwrap().scheme(), Scheme::Dpop);
        }
    }

    #[test]
    fn the_scheme_of_a_refused_header_is_still_known() {
        assert_eq!(scheme_of(&headers(&["DPoP"])), Some(Scheme::Dpop));
        assert_eq!(scheme_of(&headers(&["  bearer a b"])), Some(Scheme::Bearer));
        assert_eq!(scheme_of(&headers(&["Basic x"])), None);
        assert_eq!(scheme_of(&headers(&[])), None);
    }

    #[test]
    fn refuses_malformed_headers() {
        assert_eq!(parse(&[]), Err(AuthError::MissingCredentials));
        for value in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "DPoP",
            "DPoPtoken",
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
