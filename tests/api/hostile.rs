//! An auth layer is judged by what it refuses: a table of hostile requests,
//! each with the status and challenge error it must get. None may answer
//! 200 or 5xx; all answer JSON.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::dpop::{ClientKey, bound_token, claims, with};
use crate::helpers::{AUDIENCE, Backend, TestApp, TestIssuer, now, shared_key, sign_raw};

/// The multi-factor `acr` `/api/messages/sensitive` needs.
const MULTI_FACTOR: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

/// One hostile request.
struct Case {
    /// What kind of attack, for the table in SECURITY.md.
    category: &'static str,
    name: String,
    path: String,
    /// Raw `Authorization` header values, in order.
    authorization: Vec<Vec<u8>>,
    /// Other headers, and a body, for credentials put where they are never read.
    headers: Vec<(&'static str, String)>,
    body: Option<String>,
    status: u16,
    /// The challenge's `error` code (`None`: no code expected).
    code: Option<&'static str>,
    /// The body's `error_description`, where the case is about one reason.
    description: Option<&'static str>,
    /// Sent once before the request whose answer is checked (a replay).
    send_first: bool,
    /// Bytes written as they are on a connection of their own, for what an
    /// HTTP client refuses to send (bad framing, a missing `Host`).
    raw: Option<Vec<u8>>,
    /// Written after `raw` a byte every 100 ms, its last byte repeated, for
    /// as long as the connection stays open: a slow client.
    trickle: Option<Vec<u8>>,
}

fn case(name: impl Into<String>, authorization: &[&[u8]], status: u16, code: Option<&'static str>) -> Case {
    Case {
        category: "",
        name: name.into(),
        path: "/api/private".into(),
        authorization: authorization.iter().map(|v| v.to_vec()).collect(),
        headers: Vec::new(),
        body: None,
        status,
        code,
        description: None,
        send_first: false,
        raw: None,
        trickle: None,
    }
}

/// A `Bearer <token>` refused as an invalid token.
fn bad_token(name: impl Into<String>, token: &str) -> Case {
    case(
        name,
        &[format!("Bearer {token}").as_bytes()],
        401,
        Some("invalid_token"),
    )
}

/// A malformed `Authorization` header.
fn bad_request(name: &str, value: &[u8]) -> Case {
    case(name, &[value], 401, Some("invalid_request"))
}

/// A valid token for a scoped route that lacks the permission.
fn forbidden(name: impl Into<String>, token: &str) -> Case {
    Case {
        path: "/api/private-scoped".into(),
        ..case(
            name,
            &[format!("Bearer {token}").as_bytes()],
            403,
            Some("insufficient_scope"),
        )
    }
}

fn b64(value: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(value)
}

/// `header.payload.signature` from raw parts, signed by nobody.
fn forge(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string()),
        b64(claims.to_string()),
        b64(signature)
    )
}

/// A token with a custom header, signed with `key` under `alg`.
fn signed(alg: Algorithm, header: Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&Header { alg, ..header }, claims, key).unwrap()
}

fn kid_header(kid: &str) -> Header {
    Header {
        kid: Some(kid.into()),
        ..Header::new(Algorithm::RS256)
    }
}

fn cases(app: &TestApp, attacker_issuer: &TestIssuer) -> Vec<Case> {
    let main = shared_key("main");
    let attacker = shared_key("attacker");
    let claims = app.issuer.claims("auth0|mallory");
    let token = |extra: Value| app.token("auth0|mallory", extra);
    let rsa = EncodingKey::from_rsa_pem(main.pem().as_bytes()).unwrap();
    let attacker_rsa = EncodingKey::from_rsa_pem(attacker.pem().as_bytes()).unwrap();
    let rs_header = json!({"alg": "RS256", "kid": "main"});
    let valid = token(json!({}));
    let (valid_header, valid_rest) = valid.split_once('.').unwrap();
    let signature = valid.rsplit('.').next().unwrap();
    let signature_bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    // A token correctly signed by our key, with an arbitrary header and payload.
    let resign = |header: Value, claims: Value| sign_raw(&rsa, header, &claims);
    let attacker_url = format!("{}.well-known/jwks.json", attacker_issuer.issuer);
    let iss = app.issuer.issuer.as_str();
    // Answered as any unlisted issuer is: the response never says which
    // issuers are trusted, or that this one is close.
    let wrong_issuer = |name: &str, iss: String| Case {
        description: Some("unexpected issuer"),
        ..bad_token(name, &token(json!({"iss": iss})))
    };

    [
        (
            "Malformed headers",
            vec![
                bad_request("empty header", b""),
                bad_request("scheme only", b"Bearer"),
                bad_request("scheme and a space", b"Bearer "),
                bad_request("scheme glued to the token", format!("Bearer{valid}").as_bytes()),
                bad_request("extra part", format!("Bearer {valid} extra").as_bytes()),
                bad_request("Basic scheme", b"Basic dXNlcjpwYXNz"),
                bad_request("Digest scheme", b"Digest username=\"admin\", realm=\"api\""),
                bad_request("Token scheme", format!("Token {valid}").as_bytes()),
                bad_request("tab separator", format!("Bearer\t{valid}").as_bytes()),
                bad_request("leading comma", format!(", Bearer {valid}").as_bytes()),
                bad_request("non-ASCII token", "Bearer tökén.ä.ö".as_bytes()),
                bad_request("non-ASCII scheme", "Bëarer abc".as_bytes()),
                bad_request("quote in the token", b"Bearer a\"b.c.d"),
                bad_request("only padding", b"Bearer ==="),
                bad_request(
                    "comma-joined two tokens",
                    format!("Bearer {valid}, Bearer {valid}").as_bytes(),
                ),
                case(
                    "duplicated header",
                    &[
                        format!("Bearer {valid}").as_bytes(),
                        format!("Bearer {valid}").as_bytes(),
                    ],
                    401,
                    Some("invalid_request"),
                ),
                case(
                    "duplicated, second garbage",
                    &[format!("Bearer {valid}").as_bytes(), b"Bearer x"],
                    401,
                    Some("invalid_request"),
                ),
            ],
        ),
        (
            "Malformed tokens",
            vec![
                bad_token("one segment", "abc"),
                bad_token("two segments", "abc.def"),
                bad_token("four segments", &format!("{valid}.extra")),
                bad_token("empty segments", ".."),
                bad_token("bad base64 header", &format!("a+b/.{valid_rest}")),
                // Padding inside the token breaks RFC 6750's b64token grammar: a malformed request.
                bad_request(
                    "standard base64 with padding",
                    format!("Bearer {}.{valid_rest}", STANDARD.encode(rs_header.to_string())).as_bytes(),
                ),
                bad_token("header not JSON", &format!("{}.{valid_rest}", b64("hello"))),
                bad_token(
                    "header a JSON array",
                    &format!("{}.{valid_rest}", b64("[\"RS256\"]")),
                ),
                bad_token(
                    "header alg a number",
                    &forge(&json!({"alg": 256, "kid": "main"}), &claims, b"s"),
                ),
                bad_token(
                    "header kid a huge number",
                    &format!("{}.{valid_rest}", b64(r#"{"alg":"RS256","kid":1e400}"#)),
                ),
                bad_token(
                    "header without alg",
                    &forge(&json!({"kid": "main"}), &claims, b"s"),
                ),
                bad_token(
                    "payload not JSON",
                    &format!("{valid_header}.{}.{signature}", b64("not json")),
                ),
                bad_token(
                    "payload swapped",
                    &format!(
                        "{valid_header}.{}.{signature}",
                        b64(json!({"sub": "auth0|admin"}).to_string())
                    ),
                ),
                bad_token("signature truncated", &valid[..valid.len() - 10]),
                bad_token(
                    "signature empty",
                    &format!("{valid_header}.{}.", valid_rest.split('.').next().unwrap()),
                ),
                bad_token(
                    "signature of another token",
                    &format!(
                        "{}.{}",
                        token(json!({"sub": "auth0|other"})).rsplit_once('.').unwrap().0,
                        b64(&signature_bytes)
                    ),
                ),
                bad_token(
                    "payload a JSON array",
                    &resign(rs_header.clone(), json!([claims.clone()])),
                ),
                bad_token("exp a string", &token(json!({"exp": (now() + 3600).to_string()}))),
                bad_token(
                    "exp a huge number",
                    &resign(
                        rs_header.clone(),
                        json!({"iss": claims["iss"], "aud": AUDIENCE, "sub": "x", "exp": 1e300}),
                    ),
                ),
                bad_token("exp negative", &token(json!({"exp": -1}))),
                bad_token("nbf a string", &token(json!({"nbf": "now"}))),
                bad_token("nbf negative", &token(json!({"nbf": -1}))),
                bad_token("nbf a huge number", &token(json!({"nbf": 1e300}))),
                bad_token(
                    "nbf a fraction an hour ahead",
                    &token(json!({"nbf": (now() + 3600) as f64 + 0.5})),
                ),
                bad_token(
                    "aud a list with a number beside ours",
                    &token(json!({"aud": [AUDIENCE, 7]})),
                ),
                bad_token(
                    "aud a list with null beside ours",
                    &token(json!({"aud": [AUDIENCE, null]})),
                ),
                bad_token("aud missing", &token(json!({"aud": null}))),
                bad_token("exp missing", &token(json!({"exp": null}))),
                bad_token("signature padded with =", &format!("{valid}==")),
                bad_token(
                    "signature in standard base64 (+)",
                    &format!("{}+{}", &valid[..valid.len() - 1], &valid[valid.len() - 1..]),
                ),
                bad_token(
                    "signature one byte short",
                    &format!("{valid_header}.{}", {
                        let (payload, _) = valid_rest.rsplit_once('.').unwrap();
                        format!("{payload}.{}", b64(&signature_bytes[..signature_bytes.len() - 1]))
                    }),
                ),
                bad_token("sub a number", &token(json!({"sub": 42}))),
                bad_token("sub an array", &token(json!({"sub": ["auth0|a"]}))),
                bad_token("sub empty", &token(json!({"sub": ""}))),
                bad_token("sub missing", &token(json!({"sub": null}))),
                bad_token("aud a number", &token(json!({"aud": 7}))),
                bad_token("aud an object", &token(json!({"aud": {"value": AUDIENCE}}))),
                bad_token("iss an array", &token(json!({"iss": [claims["iss"]]}))),
                bad_token("iss missing", &token(json!({"iss": null}))),
            ],
        ),
        (
            "Algorithm attacks",
            vec![
                bad_token(
                    "alg none",
                    &forge(&json!({"alg": "none", "kid": "main"}), &claims, b""),
                ),
                bad_token(
                    "alg None",
                    &forge(&json!({"alg": "None", "kid": "main"}), &claims, b""),
                ),
                bad_token(
                    "alg NONE",
                    &forge(&json!({"alg": "NONE", "kid": "main"}), &claims, b""),
                ),
                bad_token(
                    "alg nOnE with signature",
                    &forge(&json!({"alg": "nOnE", "kid": "main"}), &claims, &signature_bytes),
                ),
                bad_token(
                    "alg rs256 lower case",
                    &forge(&json!({"alg": "rs256", "kid": "main"}), &claims, &signature_bytes),
                ),
                bad_token(
                    "RS512 by the real key",
                    &signed(Algorithm::RS512, kid_header("main"), &claims, &rsa),
                ),
                bad_token(
                    "PS256 by the real key",
                    &signed(Algorithm::PS256, kid_header("main"), &claims, &rsa),
                ),
                bad_token(
                    "ES256 header",
                    &forge(&json!({"alg": "ES256", "kid": "main"}), &claims, &[7; 64]),
                ),
                bad_token(
                    "EdDSA header",
                    &forge(&json!({"alg": "EdDSA", "kid": "main"}), &claims, &[7; 64]),
                ),
            ],
        ),
        (
            "Key attacks",
            vec![
                bad_token(
                    "unknown kid",
                    &signed(Algorithm::RS256, kid_header("nobody"), &claims, &rsa),
                ),
                bad_token(
                    "kid missing",
                    &signed(Algorithm::RS256, Header::new(Algorithm::RS256), &claims, &rsa),
                ),
                bad_token(
                    "kid empty",
                    &signed(Algorithm::RS256, kid_header(""), &claims, &rsa),
                ),
                bad_token(
                    "kid a number",
                    &resign(json!({"alg": "RS256", "kid": 1}), claims.clone()),
                ),
                bad_token(
                    "kid of a non-RSA key in the set",
                    &signed(Algorithm::RS256, kid_header("hmac"), &claims, &rsa),
                ),
                bad_token(
                    "kid with path traversal",
                    &signed(
                        Algorithm::RS256,
                        kid_header("../../../../etc/passwd"),
                        &claims,
                        &rsa,
                    ),
                ),
                bad_token(
                    "kid with SQL",
                    &signed(Algorithm::RS256, kid_header("main' OR '1'='1"), &claims, &rsa),
                ),
                bad_token(
                    "kid 4 KiB long",
                    &signed(Algorithm::RS256, kid_header(&"k".repeat(4096)), &claims, &rsa),
                ),
                bad_token(
                    "jku to the attacker's keys",
                    &signed(
                        Algorithm::RS256,
                        Header {
                            jku: Some(attacker_url.clone()),
                            ..kid_header("attacker")
                        },
                        &claims,
                        &attacker_rsa,
                    ),
                ),
                bad_token(
                    "x5u to the attacker's keys",
                    &signed(
                        Algorithm::RS256,
                        Header {
                            x5u: Some(attacker_url.clone()),
                            ..kid_header("attacker")
                        },
                        &claims,
                        &attacker_rsa,
                    ),
                ),
                bad_token(
                    "embedded jwk of the attacker",
                    &sign_raw(
                        &attacker_rsa,
                        json!({"alg": "RS256", "kid": "attacker", "jwk": attacker.public_jwk()}),
                        &claims,
                    ),
                ),
                bad_token(
                    "embedded jwk under our kid",
                    &sign_raw(
                        &attacker_rsa,
                        json!({"alg": "RS256", "kid": "main", "jwk": attacker.public_jwk()}),
                        &claims,
                    ),
                ),
                bad_token(
                    "our kid, attacker's signature",
                    &signed(Algorithm::RS256, kid_header("main"), &claims, &attacker_rsa),
                ),
                bad_token(
                    "crit header",
                    &resign(
                        json!({"alg": "RS256", "kid": "main", "crit": ["b64"], "b64": false}),
                        claims.clone(),
                    ),
                ),
                bad_token(
                    "typ JWE",
                    &resign(
                        json!({"alg": "RS256", "kid": "main", "typ": "JWE"}),
                        claims.clone(),
                    ),
                ),
            ],
        ),
        (
            "Claim attacks",
            vec![
                bad_token("expired", &token(json!({"exp": now() - 61}))),
                bad_token("not yet valid", &token(json!({"nbf": now() + 3600}))),
                wrong_issuer(
                    "issuer off by one character",
                    iss.replace("127.0.0.1", "127.0.0.2"),
                ),
                wrong_issuer(
                    "issuer without its trailing slash",
                    iss.trim_end_matches('/').into(),
                ),
                wrong_issuer("issuer with a doubled slash", format!("{iss}/")),
                wrong_issuer("issuer in upper case", iss.to_uppercase()),
                // The log names a refused iss: it must not forge a line,
                // fill the log or drive the operator's terminal.
                wrong_issuer(
                    "issuer holding a newline and a forged log line",
                    format!("{iss}\n[2030-01-01T00:00:00Z WARN  actix_auth0_api] forged"),
                ),
                wrong_issuer("issuer of 5 000 characters", format!("{iss}{}", "i".repeat(5000))),
                wrong_issuer(
                    "issuer with terminal escapes, NUL and a bidi override",
                    format!("{iss}\u{1b}[2J\u{1b}]0;pwned\u{7}\u{0}\u{202e}"),
                ),
                bad_token(
                    "audience with a trailing slash",
                    &token(json!({"aud": format!("{AUDIENCE}/")})),
                ),
                bad_token(
                    "audience in upper case",
                    &token(json!({"aud": AUDIENCE.to_uppercase()})),
                ),
                bad_token(
                    "audience with a suffix",
                    &token(json!({"aud": format!("{AUDIENCE}.evil.example")})),
                ),
                bad_token(
                    "audience prefix only",
                    &token(json!({"aud": &AUDIENCE[..AUDIENCE.len() - 1]})),
                ),
                bad_token(
                    "audience list of near-misses",
                    &token(json!({"aud": [format!("{AUDIENCE}/"), AUDIENCE.to_uppercase()]})),
                ),
                bad_token("audience empty string", &token(json!({"aud": ""}))),
                bad_token("audience empty list", &token(json!({"aud": []}))),
                bad_token(
                    "permissions a string",
                    &token(json!({"permissions": "read:messages"})),
                ),
                bad_token("permissions of numbers", &token(json!({"permissions": [1, 2]}))),
                bad_token(
                    "permissions an object",
                    &token(json!({"permissions": {"read:messages": true}})),
                ),
                bad_token("scope a list", &token(json!({"scope": ["read:messages"]}))),
                forbidden("scope in another case", &token(json!({"scope": "Read:messages"}))),
                forbidden("scope singular", &token(json!({"scope": "read:message"}))),
                forbidden(
                    "scope with a suffix",
                    &token(json!({"scope": "read:messages:all"})),
                ),
                forbidden("scope wildcard", &token(json!({"scope": "read:*"}))),
                forbidden(
                    "scope comma-separated",
                    &token(json!({"scope": "openid,read:messages"})),
                ),
                forbidden(
                    "scope tab-separated",
                    &token(json!({"scope": "openid\tread:messages"})),
                ),
                // Nested permission arrays do not even deserialize: a malformed claim, not a 403.
                Case {
                    path: "/api/private-scoped".into(),
                    ..bad_token(
                        "permissions nested",
                        &token(json!({"permissions": [["read:messages"]]})),
                    )
                },
                forbidden(
                    "permission near-miss",
                    &token(json!({"permissions": ["read:messages "]})),
                ),
            ],
        ),
        (
            "Step-up (RFC 9470)",
            [
                ("acr a number", json!({"acr": 2, "auth_time": now()})),
                ("acr a list", json!({"acr": [MULTI_FACTOR], "auth_time": now()})),
                (
                    "acr of another case",
                    json!({"acr": MULTI_FACTOR.to_uppercase(), "auth_time": now()}),
                ),
                (
                    "auth_time a string",
                    json!({"acr": MULTI_FACTOR, "auth_time": now().to_string()}),
                ),
                (
                    "auth_time in the future",
                    json!({"acr": MULTI_FACTOR, "auth_time": now() + 3600}),
                ),
                ("auth_time missing", json!({"acr": MULTI_FACTOR})),
                (
                    "login too old",
                    json!({"acr": MULTI_FACTOR, "auth_time": now() - 301}),
                ),
            ]
            .into_iter()
            .map(|(name, claims)| Case {
                path: "/api/messages/sensitive".into(),
                ..case(
                    name,
                    &[format!("Bearer {}", token(claims)).as_bytes()],
                    401,
                    Some("insufficient_user_authentication"),
                )
            })
            .collect(),
        ),
        (
            "Oversized input",
            vec![
                bad_token("100 KiB header", &"a".repeat(100 * 1024)),
                Case {
                    description: Some("token too large"),
                    ..bad_token(
                        "10 000 audiences",
                        &token(json!({"aud": (0..10_000).map(|i| format!("a{i}")).collect::<Vec<_>>()})),
                    )
                },
                bad_token(
                    "300 near-miss audiences (under 8 KiB)",
                    &token(json!({"aud": (0..300).map(|i| format!("{AUDIENCE}{i}")).collect::<Vec<_>>()})),
                ),
                bad_token(
                    "token just over 8 KiB",
                    &token(json!({"pad": "p".repeat(8 * 1024)})),
                ),
            ],
        ),
    ]
    .into_iter()
    .flat_map(|(category, cases)| cases.into_iter().map(move |case| Case { category, ..case }))
    .collect()
}

/// HS256, HS384 and HS512 tokens keyed with our RSA public key in each form
/// an attacker can read it: PEM, DER and the JWK.
fn hmac_keyed_with_the_public_key(app: &TestApp) -> Vec<Case> {
    let main = shared_key("main");
    let claims = app.issuer.claims("auth0|mallory");
    let forms = [
        (
            "PEM",
            pem::encode(&pem::Pem::new("PUBLIC KEY", main.public_key_der())).into_bytes(),
        ),
        ("DER", main.public_key_der().to_vec()),
        ("JWK", main.public_jwk().to_string().into_bytes()),
    ];
    let mut cases = Vec::new();
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        for (form, secret) in &forms {
            let key = EncodingKey::from_secret(secret).unwrap();
            cases.push(Case {
                category: "Algorithm attacks",
                ..bad_token(
                    format!("{alg:?} keyed with the public key {form}"),
                    &signed(alg, kid_header("main"), &claims, &key),
                )
            });
        }
    }
    cases
}

/// Requests whose framing two HTTP parsers could read differently: behind a
/// proxy that reads them the other way, the request hidden in the body (a
/// GET of a protected route) would reach the API unseen by the proxy. Each is
/// refused with 400 and its connection closed, so nothing after it is ever
/// answered; each carries a second, valid request to prove it.
fn request_framing() -> Vec<Case> {
    let smuggled = "GET /api/public HTTP/1.1\r\nHost: api\r\n\r\n";
    let raw = |name: &str, head: &str, body: &str| Case {
        category: "Request framing",
        raw: Some(format!("{head}\r\n{body}{smuggled}").into_bytes()),
        ..case(name, &[], 400, None)
    };
    vec![
        raw(
            "`Content-Length` and `Transfer-Encoding: chunked`, a request inside the body",
            "POST /api/public HTTP/1.1\r\nHost: api\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n",
            "0\r\n\r\n",
        ),
        raw(
            "`Transfer-Encoding: chunked` before `Content-Length`, a request inside the body",
            "POST /api/public HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n",
            "0\r\n\r\n",
        ),
        raw(
            "two `Transfer-Encoding: chunked` headers",
            "POST /api/public HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            "0\r\n\r\n",
        ),
        raw(
            "`Transfer-Encoding` in an HTTP/1.0 request",
            "POST /api/public HTTP/1.0\r\nHost: api\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            "0\r\n\r\n",
        ),
        raw(
            "two different `Content-Length` values",
            "POST /api/public HTTP/1.1\r\nHost: api\r\nContent-Length: 0\r\nContent-Length: 41\r\n",
            "",
        ),
        raw(
            "`Content-Length: +0`",
            "POST /api/public HTTP/1.1\r\nHost: api\r\nContent-Length: +0\r\n",
            "",
        ),
        raw(
            "HTTP/1.1 request with no `Host`",
            "GET /api/private HTTP/1.1\r\n",
            "",
        ),
        raw(
            "two `Host` headers",
            "GET /api/private HTTP/1.1\r\nHost: api\r\nHost: elsewhere\r\n",
            "",
        ),
    ]
}

/// Connections that hold the server without finishing a request: each is
/// closed once its request is late (`REQUEST_HEAD_TIMEOUT_SECS`), without
/// an answer to it; a first request late gets actix-http's 408.
fn slow_clients() -> Vec<Case> {
    let complete = "GET /api/public HTTP/1.1\r\nHost: api\r\n\r\n";
    let late = |name: &str, status: u16, raw: &str, trickle: &str| Case {
        category: "Slow clients",
        raw: Some(raw.as_bytes().to_vec()),
        trickle: Some(trickle.as_bytes().to_vec()),
        ..case(name, &[], status, None)
    };
    vec![
        late(
            "a first request's head trickled a byte at a time",
            408,
            "",
            "GET /api/public HTTP/1.1\r\nHost: api\r\nX-Slow: z",
        ),
        late(
            "a second request's head trickled a byte at a time, after a complete request on the same connection",
            200,
            complete,
            "GET /api/public HTTP/1.1\r\nHost: api\r\nX-Slow: z",
        ),
        late(
            "blank lines trickled instead of a next request, after a complete one",
            200,
            complete,
            "\r\n",
        ),
        late(
            "a chunked body trickled a byte at a time",
            405,
            "POST /api/public HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n",
            "5\r\nab",
        ),
    ]
}

/// Writes `request` on a connection of its own, then `trickle` a byte every
/// 100 ms (its last repeated) until the server closes the connection, and
/// reads until it does: the status of each answer it wrote, in order.
async fn send_raw(address: &str, request: &[u8], trickle: Option<&[u8]>) -> Result<Vec<u16>, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = address.trim_start_matches("http://");
    let (mut stream, mut writer) = tokio::net::TcpStream::connect(host).await.unwrap().into_split();
    writer.write_all(request).await.unwrap();
    // Held until the answer is read: dropping it would half-close the connection.
    let mut writer = Some(writer);
    if let Some(trickle) = trickle {
        let mut writer = writer.take().unwrap();
        let last = trickle.last().copied().unwrap_or(b' ');
        let trickle: Vec<u8> = trickle
            .iter()
            .copied()
            .chain(std::iter::repeat_n(last, 200))
            .collect();
        tokio::spawn(async move {
            for byte in trickle {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if writer.write_all(&[byte]).await.is_err() {
                    break;
                }
            }
        });
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
    match read.await {
        // A reset after the answer (the rest of the request unread) ends the
        // connection as surely as a close does.
        Ok(Ok(_)) => {}
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(Err(err)) => return Err(format!("read failed: {err}")),
        Err(_) => return Err("the connection was left open".into()),
    }
    drop(writer);
    Ok(statuses(&String::from_utf8_lossy(&answer)))
}

/// The status of each response in `stream`, read head by head, each body
/// skipped by its `Content-Length` (a response without one runs to the end).
fn statuses(mut stream: &str) -> Vec<u16> {
    let mut statuses = Vec::new();
    while let Some((head, rest)) = stream.split_once("\r\n\r\n") {
        let mut lines = head.split("\r\n");
        let status = lines.next().and_then(|line| line.split(' ').nth(1)?.parse().ok());
        statuses.push(status.unwrap_or(0));
        let length = lines
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse().ok())
            .unwrap_or(rest.len());
        stream = rest.get(length..).unwrap_or("");
    }
    statuses
}

/// The cases a security review added: encodings, duplicate members, claims
/// an ID token or a sloppy issuer carries, and credentials where they are
/// never read.
fn second_review(app: &TestApp) -> Vec<Case> {
    let main = shared_key("main");
    let attacker = shared_key("attacker");
    let rsa = EncodingKey::from_rsa_pem(main.pem().as_bytes()).unwrap();
    let attacker_rsa = EncodingKey::from_rsa_pem(attacker.pem().as_bytes()).unwrap();
    let claims = app.issuer.claims("auth0|mallory");
    let token = |extra: Value| app.token("auth0|mallory", extra);
    let rs_header = r#"{"alg":"RS256","kid":"main"}"#;
    // Signed by our key over exactly these bytes (duplicates and all).
    let raw = |header: &str, payload: &str| {
        let input = format!("{}.{}", b64(header), b64(payload));
        let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &rsa, Algorithm::RS256).unwrap();
        format!("{input}.{signature}")
    };
    let claims_json = claims.to_string();
    let with_member = |member: &str| format!("{},{member}}}", &claims_json[..claims_json.len() - 1]);
    let valid = token(json!({}));
    let (signed_part, signature) = valid.rsplit_once('.').unwrap();
    let header_segment = valid.split('.').next().unwrap();
    let modulus = URL_SAFE_NO_PAD
        .decode(main.public_jwk()["n"].as_str().unwrap())
        .unwrap();
    let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let certificate = STANDARD.encode(attacker.pem().as_bytes());
    let elsewhere =
        |name: &str, path: String, headers: Vec<(&'static str, String)>, body: Option<String>| Case {
            path,
            headers,
            body,
            ..case(name, &[], 401, None)
        };
    let groups: Vec<(&'static str, Vec<Case>)> = vec![
        (
            "Key attacks",
            vec![
                bad_token(
                    "HS256 keyed with a JWKS oct secret under its own kid",
                    &signed(
                        Algorithm::HS256,
                        kid_header("hmac"),
                        &claims,
                        &EncodingKey::from_secret(b"secret").unwrap(),
                    ),
                ),
                bad_token(
                    "x5c header with the attacker's certificate",
                    &sign_raw(
                        &attacker_rsa,
                        json!({"alg": "RS256", "kid": "main", "x5c": [certificate]}),
                        &claims,
                    ),
                ),
                bad_token(
                    "x5c header and no kid",
                    &sign_raw(
                        &attacker_rsa,
                        json!({"alg": "RS256", "x5c": [certificate]}),
                        &claims,
                    ),
                ),
                bad_token(
                    "x5t#S256 header of the attacker's certificate",
                    &sign_raw(
                        &attacker_rsa,
                        json!({"alg": "RS256", "kid": "main", "x5t#S256": b64([7u8; 32])}),
                        &claims,
                    ),
                ),
                bad_token(
                    "kid of a published key with e=3",
                    &signed(Algorithm::RS256, kid_header("e3"), &claims, &rsa),
                ),
                bad_token(
                    "kid in another case",
                    &signed(Algorithm::RS256, kid_header("MAIN"), &claims, &rsa),
                ),
                bad_token(
                    "kid with a trailing space",
                    &signed(Algorithm::RS256, kid_header("main "), &claims, &rsa),
                ),
                bad_token(
                    "kid with a NUL",
                    &signed(Algorithm::RS256, kid_header("main\u{0}"), &claims, &rsa),
                ),
            ],
        ),
        (
            "Encoding tricks",
            vec![
                bad_token(
                    "second alg member",
                    &raw(r#"{"alg":"RS256","kid":"main","alg":"none"}"#, &claims_json),
                ),
                bad_token(
                    "second sub member",
                    &raw(rs_header, &with_member(r#""sub":"auth0|admin""#)),
                ),
                bad_token(
                    "second aud member",
                    &raw(rs_header, &with_member(r#""aud":"https://other.example""#)),
                ),
                bad_token(
                    "second iss member",
                    &raw(rs_header, &with_member(r#""iss":"https://evil.example/""#)),
                ),
                bad_token(
                    "second exp member",
                    &raw(rs_header, &with_member(&format!(r#""exp":{}"#, now() - 3600))),
                ),
                bad_token(
                    "header nested 200 deep",
                    &raw(
                        &format!(r#"{{"alg":"RS256","kid":"main","x":{}}}"#, nested(200)),
                        &claims_json,
                    ),
                ),
                bad_token(
                    "payload nested 200 deep",
                    &raw(rs_header, &with_member(&format!(r#""x":{}"#, nested(200)))),
                ),
                bad_token(
                    "signature one byte short",
                    &format!(
                        "{signed_part}.{}",
                        b64(&URL_SAFE_NO_PAD.decode(signature).unwrap()[1..])
                    ),
                ),
                bad_token(
                    "signature all zeros",
                    &format!("{signed_part}.{}", b64([0u8; 256])),
                ),
                bad_token(
                    "signature equal to the modulus",
                    &format!("{signed_part}.{}", b64(&modulus)),
                ),
                bad_token(
                    "signature above the modulus",
                    &format!("{signed_part}.{}", b64([0xFFu8; 256])),
                ),
                bad_token(
                    "five segments (JWE)",
                    &format!("{}.a.b.c.d", b64(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#)),
                ),
                bad_request(
                    "JWS JSON serialization",
                    format!(r#"Bearer {{"payload":"{}","signatures":[]}}"#, b64(&claims_json)).as_bytes(),
                ),
                bad_token(
                    "signature with trailing bits set",
                    &format!("{signed_part}.{}", flip_trailing_bits(signature)),
                ),
                bad_token(
                    "header with trailing bits set",
                    &valid.replacen(header_segment, &flip_trailing_bits(header_segment), 1),
                ),
                bad_token("signature with padding", &format!("{valid}==")),
                bad_token(
                    "crit empty",
                    &raw(r#"{"alg":"RS256","kid":"main","crit":[]}"#, &claims_json),
                ),
                bad_token(
                    "crit null",
                    &raw(r#"{"alg":"RS256","kid":"main","crit":null}"#, &claims_json),
                ),
                bad_token(
                    "alg with a trailing space",
                    &raw(r#"{"alg":"RS256 ","kid":"main"}"#, &claims_json),
                ),
                bad_token(
                    "alg with a NUL",
                    &raw(r#"{"alg":"RS256\u0000","kid":"main"}"#, &claims_json),
                ),
                bad_token("alg null", &raw(r#"{"alg":null,"kid":"main"}"#, &claims_json)),
                bad_token(
                    "alg an array",
                    &raw(r#"{"alg":["RS256"],"kid":"main"}"#, &claims_json),
                ),
                bad_token(
                    "RS384 by the real key",
                    &signed(Algorithm::RS384, kid_header("main"), &claims, &rsa),
                ),
                bad_token(
                    "PS384 by the real key",
                    &signed(Algorithm::PS384, kid_header("main"), &claims, &rsa),
                ),
                bad_token(
                    "PS512 by the real key",
                    &signed(Algorithm::PS512, kid_header("main"), &claims, &rsa),
                ),
                bad_token(
                    "ES384 header",
                    &forge(&json!({"alg": "ES384", "kid": "main"}), &claims, &[7; 96]),
                ),
                bad_token(
                    "ES512 header",
                    &forge(&json!({"alg": "ES512", "kid": "main"}), &claims, &[7; 132]),
                ),
            ],
        ),
        (
            "Claim attacks",
            vec![
                bad_token("sub blank", &token(json!({"sub": "   "}))),
                bad_token("sub over 255 bytes", &token(json!({"sub": "a".repeat(256)}))),
                bad_token("sub with a NUL", &token(json!({"sub": "auth0|a\u{0}b"}))),
                bad_token(
                    "sub with a terminal escape",
                    &token(json!({"sub": "auth0|\u{1b}[31mred"})),
                ),
                bad_token("sub with a newline", &token(json!({"sub": "auth0|a\nb"}))),
                bad_token("sub with DEL", &token(json!({"sub": "auth0|a\u{7f}"}))),
                bad_token(
                    "sub with a C1 control (CSI)",
                    &token(json!({"sub": "auth0|\u{9b}31m"})),
                ),
                bad_token("exp a float", &token(json!({"exp": (now() + 3600) as f64 + 0.5}))),
                bad_token("exp u64::MAX", &token(json!({"exp": u64::MAX}))),
                bad_token(
                    "exp two years ahead",
                    &token(json!({"exp": now() + 2 * 366 * 24 * 3600})),
                ),
                bad_token("iat a string", &token(json!({"iat": "foo"}))),
                bad_token("iat in the future", &token(json!({"iat": now() + 3600}))),
                bad_token("ID token (nonce)", &token(json!({"nonce": "n-0S6_WzA2Mj"}))),
                bad_token(
                    "ID token (at_hash)",
                    &token(json!({"at_hash": "77QmUPtjPfzWtF2AnpK9RQ"})),
                ),
                bad_token(
                    "ID token (nonce null)",
                    &raw(rs_header, &with_member(r#""nonce":null"#)),
                ),
                forbidden(
                    "user token granting itself a scope",
                    &token(json!({"scope": "read:messages"})),
                ),
                forbidden(
                    "user token with gty of another case",
                    &token(json!({"scope": "read:messages", "gty": "Client-Credentials"})),
                ),
                forbidden(
                    "user token with gty as a list",
                    &token(json!({"scope": "read:messages", "gty": ["client-credentials"]})),
                ),
                forbidden(
                    "user token whose client_id differs from sub by case",
                    &token(json!({"scope": "read:messages", "sub": "app-1", "client_id": "App-1"})),
                ),
                forbidden(
                    "user token whose client_id is sub in a list",
                    &token(json!({"scope": "read:messages", "sub": "app-1", "client_id": ["app-1"]})),
                ),
                forbidden(
                    "user token whose client_id is sub as a number",
                    &token(json!({"scope": "read:messages", "sub": "42", "client_id": 42})),
                ),
                forbidden(
                    "user grant (gty password) whose client_id is sub",
                    &token(
                        json!({"scope": "read:messages", "sub": "app-1", "client_id": "app-1", "gty": "password"}),
                    ),
                ),
                forbidden(
                    "scope beside a permissions claim without it",
                    &token(json!({"scope": "read:messages", "permissions": ["read:other"]})),
                ),
            ],
        ),
        (
            "Credentials elsewhere",
            vec![
                elsewhere(
                    "access_token in the query",
                    format!("/api/private?access_token={valid}"),
                    vec![],
                    None,
                ),
                elsewhere(
                    "access_token in a form body",
                    "/api/private".into(),
                    vec![("content-type", "application/x-www-form-urlencoded".into())],
                    Some(format!("access_token={valid}")),
                ),
                elsewhere(
                    "access_token in a cookie",
                    "/api/private".into(),
                    vec![("cookie", format!("access_token={valid}"))],
                    None,
                ),
            ],
        ),
    ];
    groups
        .into_iter()
        .flat_map(|(category, cases)| cases.into_iter().map(move |case| Case { category, ..case }))
        .collect()
}

/// DPoP (RFC 9449): proofs that are missing, malformed, forged, for
/// another request or another token, stale, replayed; tokens bound to
/// another key, or presented with the wrong scheme for their binding.
fn dpop_attacks(app: &TestApp) -> Vec<Case> {
    let key = ClientKey::es256();
    let other = ClientKey::es256();
    let token = bound_token(app, "auth0|mallory", &key, json!({}));
    let target = format!("{}/api/private", app.address);
    let good = || claims("GET", &target, &token);
    let proof = |claims: Value| key.sign_proof(&key.header(), &claims.to_string());
    let header_with = |changes: Value| {
        let header: Value = serde_json::from_str(&key.header()).unwrap();
        with(header, changes).to_string()
    };
    let signed_header = |changes: Value| key.sign_proof(&header_with(changes), &good().to_string());
    let request = |name: &str, authorization: String, proofs: Vec<String>, code| Case {
        authorization: vec![authorization.into_bytes()],
        headers: proofs.into_iter().map(|proof| ("dpop", proof)).collect(),
        ..case(name, &[], 401, Some(code))
    };
    let bad_proof =
        |name: &str, proof: String| request(name, format!("DPoP {token}"), vec![proof], "invalid_dpop_proof");
    let hmac = {
        let input = format!(
            "{}.{}",
            b64(header_with(json!({"alg": "HS256"}))),
            b64(good().to_string())
        );
        let secret = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key.jwk().as_bytes());
        format!(
            "{input}.{}",
            b64(aws_lc_rs::hmac::sign(&secret, input.as_bytes()))
        )
    };
    let mut jwk: Value = serde_json::from_str(&key.jwk()).unwrap();
    let mut private_jwk = jwk.clone();
    private_jwk["d"] = json!(b64([7u8; 32]));
    let nested = format!("{}{}", "[".repeat(20), "]".repeat(20));
    let unbound = app.token("auth0|mallory", json!({}));
    let stranger = bound_token(app, "auth0|mallory", &other, json!({}));
    let replayed = {
        let scoped = format!("{}/api/private-scoped", app.address);
        Case {
            path: "/api/private-scoped".into(),
            send_first: true,
            ..bad_proof(
                "replayed proof (first use answered 403)",
                key.proof("GET", &scoped, &token),
            )
        }
    };
    let mut cases = vec![
        request(
            "DPoP scheme without a proof",
            format!("DPoP {token}"),
            vec![],
            "invalid_dpop_proof",
        ),
        request(
            "two DPoP headers",
            format!("DPoP {token}"),
            vec![proof(good()), proof(good())],
            "invalid_dpop_proof",
        ),
        bad_proof(
            "proof just over 8 KiB",
            proof(with(good(), json!({"pad": "x".repeat(6 * 1024)}))),
        ),
        bad_proof("proof not a JWS", "abc.def".into()),
        bad_proof("proof with base64 padding", format!("{}=", proof(good()))),
        bad_proof("typ JWT", signed_header(json!({"typ": "JWT"}))),
        bad_proof("typ missing", signed_header(json!({"typ": null}))),
        bad_proof("alg none", {
            let header = b64(header_with(json!({"alg": "none"})));
            format!("{header}.{}.", b64(good().to_string()))
        }),
        bad_proof("alg HS256 keyed with the jwk", hmac),
        bad_proof("alg RS256 over an EC key", signed_header(json!({"alg": "RS256"}))),
        bad_proof("alg EdDSA over an EC key", signed_header(json!({"alg": "EdDSA"}))),
        bad_proof("alg ES256K", signed_header(json!({"alg": "ES256K"}))),
        bad_proof("jwk missing", signed_header(json!({"jwk": null}))),
        bad_proof(
            "jwk holding the private key",
            signed_header(json!({"jwk": private_jwk})),
        ),
        bad_proof(
            "jwk a symmetric key",
            signed_header(json!({"alg": "HS256", "jwk": {"kty": "oct", "k": b64("secret")}})),
        ),
        {
            // A token bound to that point, so that only the curve check can refuse it.
            jwk["y"] = json!(b64([1u8; 32]));
            let canonical = format!(
                r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
                jwk["x"], jwk["y"]
            );
            let jkt = b64(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                canonical.as_bytes(),
            ));
            let off_curve = app.token("auth0|mallory", json!({"cnf": {"jkt": jkt}}));
            let header = header_with(json!({"jwk": jwk}));
            request(
                "jwk a point off the curve",
                format!("DPoP {off_curve}"),
                vec![key.sign_proof(&header, &claims("GET", &target, &off_curve).to_string())],
                "invalid_dpop_proof",
            )
        },
        bad_proof(
            "jwk coordinates too short",
            signed_header(
                json!({"jwk": {"kty": "EC", "crv": "P-256", "x": b64([1u8; 31]), "y": b64([1u8; 31])}}),
            ),
        ),
        bad_proof(
            "jwk an RSA key under 2048 bits",
            signed_header(
                json!({"alg": "RS256", "jwk": {"kty": "RSA", "n": b64([0xc5u8; 128]), "e": "AQAB"}}),
            ),
        ),
        bad_proof("jwk in a crit header", signed_header(json!({"crit": ["jwk"]}))),
        bad_proof(
            "signed by another key than its jwk",
            other.sign_proof(&key.header(), &good().to_string()),
        ),
        bad_proof(
            "htm of another method",
            proof(with(good(), json!({"htm": "POST"}))),
        ),
        bad_proof("htm in lower case", proof(with(good(), json!({"htm": "get"})))),
        bad_proof(
            "htu of another path",
            proof(with(
                good(),
                json!({"htu": format!("{}/api/public", app.address)}),
            )),
        ),
        bad_proof(
            "htu of another host",
            proof(with(
                good(),
                json!({"htu": target.replace("127.0.0.1", "localhost")}),
            )),
        ),
        bad_proof(
            "htu with a user name",
            proof(with(good(), json!({"htu": target.replace("://", "://user@")}))),
        ),
        bad_proof(
            "htu relative",
            proof(with(good(), json!({"htu": "/api/private"}))),
        ),
        bad_proof("iat 2 min old", proof(with(good(), json!({"iat": now() - 120})))),
        bad_proof(
            "iat 2 min ahead",
            proof(with(good(), json!({"iat": now() + 120}))),
        ),
        Case {
            description: Some("DPoP proof issued in the future (iat)"),
            ..bad_proof(
                "iat 30 s ahead (within the window behind, beyond DPOP_IAT_AHEAD_SECS)",
                proof(with(good(), json!({"iat": now() + 30}))),
            )
        },
        bad_proof(
            "iat a string",
            proof(with(good(), json!({"iat": now().to_string()}))),
        ),
        bad_proof("jti missing", proof(with(good(), json!({"jti": null})))),
        bad_proof("ath missing", proof(with(good(), json!({"ath": null})))),
        bad_proof(
            "ath of another token",
            proof(with(
                good(),
                json!({"ath": b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, unbound.as_bytes()))}),
            )),
        ),
        bad_proof(
            "htm given twice",
            key.sign_proof(
                &key.header(),
                &good().to_string().replacen('{', r#"{"htm":"POST","#, 1),
            ),
        ),
        bad_proof(
            "claims nested 20 deep",
            proof(with(
                good(),
                json!({"x": serde_json::from_str::<Value>(&nested).unwrap()}),
            )),
        ),
        replayed,
        request(
            "token bound to another key",
            format!("DPoP {stranger}"),
            vec![key.proof("GET", &target, &stranger)],
            "invalid_token",
        ),
        request(
            "unbound token as DPoP",
            format!("DPoP {unbound}"),
            vec![key.proof("GET", &target, &unbound)],
            "invalid_token",
        ),
        request(
            "bound token as Bearer",
            format!("Bearer {token}"),
            vec![],
            "invalid_token",
        ),
        request(
            "bound token as Bearer, with its proof",
            format!("Bearer {token}"),
            vec![proof(good())],
            "invalid_request",
        ),
        request(
            "certificate-bound token (cnf x5t#S256) as Bearer",
            format!(
                "Bearer {}",
                app.token(
                    "auth0|mallory",
                    json!({"cnf": {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}})
                )
            ),
            vec![],
            "invalid_token",
        ),
    ];
    for case in &mut cases {
        case.category = "DPoP attacks";
    }
    cases
}

/// The same base64url text with its unused trailing bits set: a lax
/// decoder reads the same bytes, a strict one refuses it.
fn flip_trailing_bits(segment: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let unused_bits = match segment.len() % 4 {
        2 => 4,
        3 => 2,
        _ => panic!("no trailing bits in a segment of length {}", segment.len()),
    };
    let last = segment.as_bytes()[segment.len() - 1];
    let value = ALPHABET.iter().position(|c| *c == last).unwrap();
    let flipped = ALPHABET[value | ((1 << unused_bits) - 1)] as char;
    format!("{}{flipped}", &segment[..segment.len() - 1])
}

/// The cases as the table in SECURITY.md shows them: one row each.
fn table(cases: &[Case]) -> String {
    let mut table = String::from("| category | request | answer |\n|---|---|---|\n");
    for case in cases {
        let code = case.code.map(|code| format!(" `{code}`")).unwrap_or_default();
        let why = match (&case.raw, case.description) {
            (Some(_), _) if case.trickle.is_some() => {
                " (the connection closed when the request was late: nothing after it answered)".to_owned()
            }
            (Some(_), _) => " (the connection closed: nothing after it answered)".to_owned(),
            (None, Some(description)) => format!(" (\"{description}\")"),
            (None, None) => String::new(),
        };
        table.push_str(&format!(
            "| {} | {} | {}{code}{why} |\n",
            case.category, case.name, case.status
        ));
    }
    table
}

/// SECURITY.md lists exactly the cases this test runs: the table between
/// its markers is generated from them (`UPDATE_SECURITY_MD=1 cargo test
/// hostile` rewrites it), so the document cannot drift from the test.
fn check_security_md(cases: &[Case]) {
    const START: &str = "<!-- hostile table: generated by tests/api/hostile.rs -->\n";
    const END: &str = "<!-- end of hostile table -->";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/SECURITY.md");
    let document = std::fs::read_to_string(path).unwrap();
    let start = document
        .find(START)
        .expect("SECURITY.md has the table's start marker")
        + START.len();
    let end = document
        .find(END)
        .expect("SECURITY.md has the table's end marker");
    let expected = table(cases);
    if document[start..end] == expected {
        return;
    }
    if std::env::var_os("UPDATE_SECURITY_MD").is_some() {
        std::fs::write(
            path,
            format!("{}{expected}{}", &document[..start], &document[end..]),
        )
        .unwrap();
    } else {
        panic!(
            "SECURITY.md's hostile table differs from the cases: run `UPDATE_SECURITY_MD=1 cargo test hostile`"
        );
    }
}

#[actix_web::test]
async fn hostile_requests_are_refused_with_the_right_status_and_code() {
    // Late requests are cut off after a second, not the default five.
    let app = TestApp::builder(Backend::Sqlite)
        .env(&[("REQUEST_HEAD_TIMEOUT_SECS", "1")])
        .spawn()
        .await;
    // The published set also holds a non-RSA key (for the "kid of a non-RSA
    // key" and oct-secret cases) and an RSA key with e=3.
    let main = shared_key("main");
    let published = json!({"keys": [
        main.public_jwk(),
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "RSA", "kid": "e3", "n": main.public_jwk()["n"], "e": "Aw"},
    ]});
    app.issuer.serve_body(published.to_string());
    let attacker_issuer = TestIssuer::start(&[&shared_key("attacker")]).await;
    let mut cases = cases(&app, &attacker_issuer);
    cases.extend(hmac_keyed_with_the_public_key(&app));
    cases.extend(second_review(&app));
    cases.extend(dpop_attacks(&app));
    cases.extend(request_framing());
    cases.extend(slow_clients());
    assert!(cases.len() >= 60, "{} cases", cases.len());
    check_security_md(&cases);

    let send = async |case: &Case| {
        let mut request = app.client.get(format!("{}{}", app.address, case.path));
        for value in &case.authorization {
            request = request.header("Authorization", HeaderValue::from_bytes(value).unwrap());
        }
        for (name, value) in &case.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = &case.body {
            request = request.body(body.clone());
        }
        crate::helpers::read(request.send().await.unwrap()).await
    };
    let mut failures = Vec::new();
    for case in &cases {
        if let Some(request) = &case.raw {
            match send_raw(&app.address, request, case.trickle.as_deref()).await {
                Ok(statuses) if statuses == [case.status] => {}
                Ok(statuses) => failures.push(format!("{}: answered {statuses:?}", case.name)),
                Err(err) => failures.push(format!("{}: {err}", case.name)),
            }
            continue;
        }
        if case.send_first {
            let first = send(case).await;
            if first.status == 200 || first.status >= 500 {
                failures.push(format!("{}: first use got {}", case.name, first.status));
            }
        }
        let reply = send(case).await;
        let challenge = reply.header("www-authenticate");
        let code = challenge
            .split("error=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next());
        let body_ok = reply.json["error"].is_string()
            && reply.json["message"].is_string()
            && case
                .description
                .is_none_or(|description| reply.json["error_description"] == description);
        if reply.status != case.status || code != case.code || !body_ok {
            failures.push(format!(
                "{}: got {} {:?} {}",
                case.name, reply.status, code, reply.json
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(
        attacker_issuer.fetches(),
        0,
        "jku/x5u/jwk headers are never followed"
    );
    assert!(app.users().is_empty(), "no hostile request wrote a row");
    assert_eq!(
        app.get_as("/api/private", &app.token("auth0|alice", json!({})))
            .await
            .status,
        200
    );
}
