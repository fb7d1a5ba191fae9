//! `dev` answers only requests addressed to a loopback name. A page of any
//! other origin could otherwise point a name of its own at 127.0.0.1 (DNS
//! rebinding) and, being same-origin with it, read the development tokens
//! the docs page offers.

use std::net::{Ipv4Addr, Ipv6Addr};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::HOST;
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse};
use serde_json::json;

/// Refuses with 421 a request whose `Host` is not `localhost` (or a name
/// under `.localhost`) or a loopback address, with or without a port. A
/// request with no `Host` (HTTP/1.0) passes: a browser always sends one.
pub(crate) async fn loopback_host_only(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    if let Some(host) = req.headers().get(HOST)
        && !is_loopback(host.as_bytes())
    {
        let refusal = HttpResponse::build(StatusCode::MISDIRECTED_REQUEST).json(json!({
            "error": "misdirected_request",
            "message": "dev answers only requests for localhost or a loopback address",
        }));
        return Ok(req.into_response(refusal).map_into_right_body());
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

/// `host[:port]` names a loopback interface.
fn is_loopback(host: &[u8]) -> bool {
    let Ok(host) = std::str::from_utf8(host) else {
        return false;
    };
    let is_port = |port: &str| port.parse::<u16>().is_ok();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').is_some_and(|(address, port)| {
            (port.is_empty() || port.strip_prefix(':').is_some_and(is_port))
                && address.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback())
        });
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if is_port(port) => name,
        Some(_) => return false,
        None => host,
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn only_loopback_names_and_addresses_pass() {
        for host in [
            "localhost",
            "localhost:6060",
            "LocalHost.:6060",
            "app.localhost:6060",
            "127.0.0.1",
            "127.0.0.1:6060",
            "127.8.9.10:1",
            "[::1]",
            "[::1]:6060",
        ] {
            assert!(is_loopback(host.as_bytes()), "{host}");
        }
        for host in [
            "",
            "evil.example",
            "evil.example:6060",
            "localhost.evil.example",
            "evillocalhost",
            "127.0.0.1.evil.example",
            "10.0.0.1:6060",
            "0.0.0.0:6060",
            "[::2]:6060",
            "[::1]:port",
            "localhost:port",
            "localhost:99999",
            "::1",
            "[::1",
            "localhost:6060:6060",
        ] {
            assert!(!is_loopback(host.as_bytes()), "{host}");
        }
        assert!(!is_loopback(b"local\xffhost"));
    }
}
