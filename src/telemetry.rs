//! What the server tells operators about each request: its id (taken from
//! the client's `X-Request-Id` when that is a sane short token, else made
//! here, and sent back on every response), its metrics, and its access-log
//! line. Every log line about a request carries the id as `request_id`.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};

use crate::metrics::METRICS;

/// The header that carries a request's id, both ways.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Log target of the access log, written at debug level only: nothing is
/// logged per request at `info` (enable it with `RUST_LOG=info,access=debug`).
const ACCESS_LOG: &str = "access";

/// The longest client-chosen id kept.
const MAX_ID_LEN: usize = 64;

/// A request's id, in its extensions: the value its response carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestId(HeaderValue);

impl RequestId {
    /// The id of `req` ("-" outside the middleware, e.g. in unit tests).
    pub(crate) fn of(req: &HttpRequest) -> String {
        req.extensions()
            .get::<RequestId>()
            .map_or_else(|| "-".to_owned(), |id| id.as_str().to_owned())
    }

    fn as_str(&self) -> &str {
        // Only visible ASCII is ever kept or made.
        self.0.to_str().unwrap_or("-")
    }

    /// The client's id when it is 1 to 64 characters of `[A-Za-z0-9._-]`
    /// (nothing that could forge a log line or a header), else a new one.
    fn from_client(value: Option<&HeaderValue>) -> Self {
        let sane = value.filter(|id| {
            let id = id.as_bytes();
            !id.is_empty()
                && id.len() <= MAX_ID_LEN
                && id
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
        match sane {
            Some(id) => Self(id.clone()),
            None => Self::new(),
        }
    }

    /// A new id: this process's random prefix and a counter, unique across
    /// instances with overwhelming likelihood, and cheap to make.
    fn new() -> Self {
        static PREFIX: LazyLock<u64> = LazyLock::new(|| {
            let mut bytes = [0u8; 8];
            aws_lc_rs::rand::fill(&mut bytes).expect("the system's random source");
            u64::from_le_bytes(bytes)
        });
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        Self::numbered(*PREFIX, COUNTER.fetch_add(1, Ordering::Relaxed))
    }

    /// `prefix` in 16 hex digits, a dash, then `n` in hex: written by hand,
    /// as every response pays for it.
    fn numbered(prefix: u64, n: u64) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digit = |value: u64, place: usize| HEX[(value >> (4 * place)) as usize & 0xf];
        let mut id = [0u8; 33];
        for (i, byte) in id[..16].iter_mut().enumerate() {
            *byte = digit(prefix, 15 - i);
        }
        id[16] = b'-';
        let n_digits = (64 - n.leading_zeros() as usize).div_ceil(4).max(1);
        for (i, byte) in id[17..17 + n_digits].iter_mut().enumerate() {
            *byte = digit(n, n_digits - 1 - i);
        }
        Self(HeaderValue::from_bytes(&id[..17 + n_digits]).expect("hex digits and a dash"))
    }
}

/// The outermost middleware: gives the request its id, answers with it,
/// records the request's metrics and writes its access-log line.
pub(crate) async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = RequestId::from_client(req.headers().get(REQUEST_ID));
    let header = id.0.clone();
    req.extensions_mut().insert(id);
    let mut response = next.call(req).await?;
    response.headers_mut().insert(REQUEST_ID, header);
    let took = started.elapsed();
    let req = response.request();
    let status = response.status().as_u16();
    METRICS.http_request(req.method().as_str(), req.match_pattern(), status, took);
    if log::log_enabled!(target: ACCESS_LOG, log::Level::Debug) {
        let size = match response.response().body().size() {
            BodySize::Sized(size) => size.to_string(),
            _ => "-".to_owned(),
        };
        let agent = req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|agent| agent.to_str().ok())
            .unwrap_or("-");
        // The path without its query string, and no Referer: a client may
        // put a token in either, and the log keeps none. The fields a client
        // writes are escaped (`"` as `\"`, `\` as `\\`), so that none can
        // close its quotes and append what reads as another request's line.
        log::debug!(
            target: ACCESS_LOG,
            request_id = RequestId::of(req).as_str();
            "{} \"{} {}\" {status} {size} \"{}\" {:.6}",
            req.peer_addr().map_or_else(|| "-".to_owned(), |peer| peer.ip().to_string()),
            req.method(),
            req.path().escape_default(),
            agent.escape_default(),
            took.as_secs_f64(),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_id_is_kept_only_when_sane() {
        let kept = |raw: &str| {
            RequestId::from_client(Some(&HeaderValue::from_str(raw).unwrap()))
                .as_str()
                .to_owned()
        };
        for sane in ["abc", "req-1.2_3", &"a".repeat(64)] {
            assert_eq!(kept(sane), sane);
        }
        for insane in [
            "",
            "a b",
            "a\tb",
            "x\\y",
            "é",
            "id\"\ninjected",
            &"a".repeat(65),
            "<script>",
        ] {
            let Ok(value) = HeaderValue::from_str(insane) else {
                continue;
            };
            let id = RequestId::from_client(Some(&value)).as_str().to_owned();
            assert_ne!(id, insane);
            assert!(
                id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
                "{id}"
            );
        }
        assert_ne!(RequestId::new(), RequestId::new(), "each request its own");
    }

    #[test]
    fn a_new_id_is_the_prefix_and_the_counter_in_hex() {
        let id = |prefix, n| RequestId::numbered(prefix, n).as_str().to_owned();
        assert_eq!(id(0xa62e_9bc5_18f6_c5e6, 0), "a62e9bc518f6c5e6-0");
        assert_eq!(id(1, 15), "0000000000000001-f");
        assert_eq!(id(u64::MAX, 16), "ffffffffffffffff-10");
        assert_eq!(id(0, 0x0123_4567_89ab_cdef), "0000000000000000-123456789abcdef");
        assert_eq!(id(0, u64::MAX), "0000000000000000-ffffffffffffffff");
    }
}
