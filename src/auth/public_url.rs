//! Where clients reach this API: the base of the URL a DPoP proof must
//! name, and of the absolute links the API publishes (the protected
//! resource metadata's own, and every challenge's `resource_metadata`).
//! Either `PUBLIC_BASE_URL` (behind a proxy or TLS terminator), or the
//! scheme a request arrived on and the authority it names, under one rule
//! for what that authority may hold: it is the client's, and ends up in
//! headers and documents.

use std::borrow::Cow;
use std::fmt::Write as _;

use actix_web::HttpRequest;
use actix_web::http::header;
use url::Url;

use crate::connection::host_port;

/// Where the protected resource metadata is served (RFC 9728 section 3).
pub(crate) const RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// The longest authority taken from a request: a DNS name and a port.
const MAX_AUTHORITY_BYTES: usize = 255;

/// The base URL clients reach the API at, built once from the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicUrl {
    /// `PUBLIC_BASE_URL`.
    Configured {
        /// The URL normalized as [`normalize_url`], without its trailing
        /// slash.
        base: String,
        /// Its path, without the trailing slash (`""` for none).
        path: String,
        /// Where its protected resource metadata is (RFC 9728 section 3.1:
        /// the well-known path goes between the host and the base's path).
        resource_metadata: String,
    },
    /// The scheme each request arrived on and the authority it names.
    FromRequest {
        /// `http://HOST:PORT` of the listener: the base of links in an
        /// answer to a request that names no usable authority.
        listener: String,
    },
}

/// Why a request's URL cannot be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UrlError {
    /// No `Host` header, and no authority in the request target.
    NoHost,
    /// An authority that is not a plain `host[:port]`.
    MalformedHost,
    /// A path that does not make a URL.
    MalformedUrl,
}

impl PublicUrl {
    /// `configured` (`PUBLIC_BASE_URL`) when given, else the request's own,
    /// for a server listening on `host:port`.
    pub(crate) fn new(configured: Option<&Url>, host: &str, port: u16) -> Self {
        match configured.and_then(|url| normalize_url(url.as_str())) {
            Some(base) => {
                let base = base.trim_end_matches('/').to_owned();
                let authority = base.find("://").map_or(0, |at| at + 3);
                let path_at = base[authority..]
                    .find('/')
                    .map_or(base.len(), |at| authority + at);
                let (origin, path) = base.split_at(path_at);
                Self::Configured {
                    resource_metadata: format!("{origin}{RESOURCE_METADATA_PATH}{path}"),
                    path: path.to_owned(),
                    base,
                }
            }
            None => Self::FromRequest {
                listener: format!("http://{}", host_port(host, port)),
            },
        }
    }

    /// The base URL the client of `req` reached, without a trailing slash.
    pub(crate) fn base(&self, req: &HttpRequest) -> Result<Cow<'_, str>, UrlError> {
        match self {
            Self::Configured { base, .. } => Ok(Cow::Borrowed(base)),
            Self::FromRequest { .. } => {
                let scheme = if req.app_config().secure() {
                    "https"
                } else {
                    "http"
                };
                Ok(Cow::Owned(format!("{scheme}://{}", authority(req)?)))
            }
        }
    }

    /// The URL of `req` as its client named it: the base and the request's
    /// path, without its query, normalized as [`normalize_url`].
    pub(crate) fn request_url(&self, req: &HttpRequest) -> Result<String, UrlError> {
        let base = self.base(req)?;
        normalize_url(&format!("{base}{}", req.uri().path())).ok_or(UrlError::MalformedUrl)
    }

    /// The base of the links in an answer to `req`: as [`PublicUrl::base`],
    /// or the listener's address when the request names no usable
    /// authority.
    pub(crate) fn link_base(&self, req: &HttpRequest) -> Cow<'_, str> {
        match (self.base(req), self) {
            (Ok(base), _) => base,
            (Err(_), Self::FromRequest { listener }) => Cow::Borrowed(listener),
            (Err(_), Self::Configured { base, .. }) => Cow::Borrowed(base),
        }
    }

    /// The absolute URL of the protected resource metadata, as the client
    /// of `req` reaches it.
    pub(crate) fn resource_metadata(&self, req: &HttpRequest) -> String {
        match self {
            Self::Configured {
                resource_metadata, ..
            } => resource_metadata.clone(),
            Self::FromRequest { .. } => format!("{}{RESOURCE_METADATA_PATH}", self.link_base(req)),
        }
    }

    /// The path the metadata is also served at, when `PUBLIC_BASE_URL` has
    /// a path: the well-known path followed by it (RFC 9728 section 3.1),
    /// which a proxy in front forwards as it is.
    pub(crate) fn resource_metadata_alias(&self) -> Option<String> {
        match self {
            Self::Configured { path, .. } if !path.is_empty() => {
                Some(format!("{RESOURCE_METADATA_PATH}{path}"))
            }
            _ => None,
        }
    }
}

/// The authority `req` names: that of an absolute request target, else its
/// `Host` (RFC 9112 section 3.2.2). Only a plain `host[:port]` is taken: a
/// host name, an IPv4 or a bracketed IPv6 address, and a port. Anything
/// else (a `/`, `@`, `?`, quote or space) would change the URL built from
/// it, or the header or document it ends up in.
fn authority(req: &HttpRequest) -> Result<&str, UrlError> {
    let authority = match req.uri().authority() {
        Some(authority) => authority.as_str(),
        None => req
            .headers()
            .get(header::HOST)
            .ok_or(UrlError::NoHost)?
            .to_str()
            .map_err(|_| UrlError::MalformedHost)?,
    };
    let plain = !authority.is_empty()
        && authority.len() <= MAX_AUTHORITY_BYTES
        && authority.bytes().all(|byte| {
            byte.is_ascii_alphanumeric()
                || matches!(byte, b'.' | b'-' | b'_' | b'~' | b':' | b'[' | b']' | b'%')
        });
    plain.then_some(authority).ok_or(UrlError::MalformedHost)
}

/// `raw` as URLs are compared (a DPoP proof's `htu` with the request's): an absolute http(s) URL without
/// user name or password, its scheme and host in lower case, its default
/// port dropped, dot segments resolved (RFC 3986 sections 6.2.2, 6.2.3),
/// percent-encodings in upper case and unreserved characters decoded,
/// without query and fragment (RFC 9449 section 4.3, check 9).
pub(crate) fn normalize_url(raw: &str) -> Option<String> {
    let url = Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let host = url.host_str().filter(|host| !host.is_empty())?;
    let mut normalized = String::with_capacity(raw.len());
    normalized.push_str(url.scheme());
    normalized.push_str("://");
    normalized.push_str(host);
    if let Some(port) = url.port() {
        let _ = write!(normalized, ":{port}");
    }
    let path = url.path().as_bytes();
    let mut at = 0;
    while at < path.len() {
        let escaped = (path[at] == b'%')
            .then(|| path.get(at + 1..at + 3))
            .flatten()
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') => {
                normalized.push(char::from(byte));
                at += 3;
            }
            Some(byte) => {
                let _ = write!(normalized, "%{byte:02X}");
                at += 3;
            }
            None => {
                normalized.push(char::from(path[at]));
                at += 1;
            }
        }
    }
    Some(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn with_host(value: &str) -> HttpRequest {
        TestRequest::with_uri("/api/private?x=1")
            .insert_header((header::HOST, value))
            .to_http_request()
    }

    #[test]
    fn hostile_hosts_are_not_taken_from_the_request() {
        let public_url = PublicUrl::new(None, "127.0.0.1", 6060);
        for hostile in [
            "evil\"x",
            "user@evil.example",
            "a/b",
            "a b",
            "",
            "a?b",
            &"a".repeat(256),
        ] {
            let req = with_host(hostile);
            assert_eq!(public_url.base(&req), Err(UrlError::MalformedHost), "{hostile:?}");
            assert_eq!(
                public_url.resource_metadata(&req),
                "http://127.0.0.1:6060/.well-known/oauth-protected-resource",
                "{hostile:?}"
            );
        }
        let no_host = TestRequest::default().to_http_request();
        assert_eq!(public_url.base(&no_host), Err(UrlError::NoHost));
        let v6 = PublicUrl::new(None, "::1", 6060);
        assert_eq!(v6.link_base(&no_host), "http://[::1]:6060");
    }

    #[test]
    fn a_plain_host_makes_the_base() {
        let public_url = PublicUrl::new(None, "127.0.0.1", 6060);
        let req = with_host("API.example.com:8080");
        assert_eq!(public_url.base(&req).unwrap(), "http://API.example.com:8080");
        assert_eq!(
            public_url.request_url(&req).unwrap(),
            "http://api.example.com:8080/api/private"
        );
        assert_eq!(
            public_url.resource_metadata(&with_host("[::1]:6060")),
            "http://[::1]:6060/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn a_configured_base_wins_over_the_host() {
        let configured = Url::parse("https://API.example.com:443/v1/").unwrap();
        let public_url = PublicUrl::new(Some(&configured), "127.0.0.1", 6060);
        for req in [
            with_host("evil.example"),
            TestRequest::default().to_http_request(),
        ] {
            assert_eq!(public_url.request_url(&req).unwrap(), {
                let path = req.uri().path();
                format!("https://api.example.com/v1{path}")
            });
            assert_eq!(
                public_url.resource_metadata(&req),
                "https://api.example.com/.well-known/oauth-protected-resource/v1"
            );
            assert_eq!(public_url.link_base(&req), "https://api.example.com/v1");
        }
        let at_root = Url::parse("https://api.example.com").unwrap();
        let at_root = PublicUrl::new(Some(&at_root), "127.0.0.1", 6060);
        assert_eq!(at_root.resource_metadata_alias(), None);
        assert_eq!(
            at_root.resource_metadata(&with_host("x")),
            "https://api.example.com/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn urls_are_compared_normalized_without_query_and_fragment() {
        let same = [
            (
                "https://API.Example.com:443/a/./b/../c?x=1#f",
                "https://api.example.com/a/c",
            ),
            ("http://example.com", "http://example.com/"),
            (
                "http://example.com:8080/%7euser/%2fx%3a",
                "http://example.com:8080/~user/%2Fx%3A",
            ),
            ("http://[::1]:6060/api/private", "http://[::1]:6060/api/private"),
        ];
        for (raw, normalized) in same {
            assert_eq!(normalize_url(raw).as_deref(), Some(normalized), "{raw}");
        }
        for raw in [
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "/api/private",
            "https://",
        ] {
            assert_eq!(normalize_url(raw), None, "{raw}");
        }
    }
}
