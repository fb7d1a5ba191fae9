//! DPoP (RFC 9449) end to end. The client here builds its proofs byte by
//! byte: its own keys (aws-lc-rs), JSON text, base64url, SHA-256 and
//! signatures, and nothing of the server's code, so that a mistake shared
//! by the server's proof check and its proof maker cannot hide.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::helpers::{Backend, Reply, TestApp, TestIssuer, eventually, now, read, shared_key};

/// What a DPoP challenge announces.
const ALGS: &str = "ES256 ES384 ES512 EdDSA RS256 RS384 RS512 PS256 PS384 PS512";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// base64url(SHA-256(bytes)).
fn sha256(bytes: impl AsRef<[u8]>) -> String {
    b64(digest(&SHA256, bytes.as_ref()))
}

/// A fresh random `jti`.
fn jti() -> String {
    let mut bytes = [0u8; 12];
    SystemRandom::new().fill(&mut bytes).unwrap();
    b64(bytes)
}

/// A DPoP client's key, of one of the algorithms a proof may use.
pub enum ClientKey {
    /// ECDSA P-256 with SHA-256.
    Es256(EcdsaKeyPair),
    /// Ed25519.
    EdDsa(Ed25519KeyPair),
    /// RSA PKCS#1 v1.5 with SHA-256.
    Rs256(Arc<RsaKeyPair>),
    /// RSA-PSS with SHA-256.
    Ps256(Arc<RsaKeyPair>),
}

/// One RSA key for all tests: generating it is slow.
fn rsa_key() -> Arc<RsaKeyPair> {
    static KEY: OnceLock<Arc<RsaKeyPair>> = OnceLock::new();
    Arc::clone(KEY.get_or_init(|| Arc::new(RsaKeyPair::generate(KeySize::Rsa2048).unwrap())))
}

impl ClientKey {
    /// A new ES256 key.
    pub fn es256() -> Self {
        Self::Es256(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }

    /// The `alg` its proofs carry.
    pub fn alg(&self) -> &'static str {
        match self {
            Self::Es256(_) => "ES256",
            Self::EdDsa(_) => "EdDSA",
            Self::Rs256(_) => "RS256",
            Self::Ps256(_) => "PS256",
        }
    }

    /// The members of the public JWK, in RFC 7638's order, as JSON text:
    /// the thumbprint's input and (as it happens) a valid `jwk` header.
    pub fn jwk(&self) -> String {
        match self {
            Self::Es256(pair) => {
                let point = pair.public_key().as_ref();
                format!(
                    r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                    b64(&point[1..33]),
                    b64(&point[33..65])
                )
            }
            Self::EdDsa(pair) => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                b64(pair.public_key().as_ref())
            ),
            Self::Rs256(pair) | Self::Ps256(pair) => {
                let components = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                format!(
                    r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                    b64(&components.e),
                    b64(&components.n)
                )
            }
        }
    }

    /// The RFC 7638 thumbprint: what a token bound to this key carries.
    pub fn thumbprint(&self) -> String {
        sha256(self.jwk())
    }

    /// Signs `input` as its `alg` says.
    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Self::Es256(pair) => pair.sign(&rng, input).unwrap().as_ref().to_vec(),
            Self::EdDsa(pair) => pair.sign(input).as_ref().to_vec(),
            Self::Rs256(pair) | Self::Ps256(pair) => {
                let encoding = match self {
                    Self::Rs256(_) => &signature::RSA_PKCS1_SHA256,
                    _ => &signature::RSA_PSS_SHA256,
                };
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(encoding, &rng, input, &mut signature).unwrap();
                signature
            }
        }
    }

    /// The usual proof header: `typ`, `alg` and this key as `jwk`.
    pub fn header(&self) -> String {
        format!(
            r#"{{"typ":"dpop+jwt","alg":"{}","jwk":{}}}"#,
            self.alg(),
            self.jwk()
        )
    }

    /// A proof of `header` and `claims` (JSON texts), signed by this key.
    pub fn sign_proof(&self, header: &str, claims: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let signature = self.sign(input.as_bytes());
        format!("{input}.{}", b64(signature))
    }

    /// A valid proof for a `method` request to `url` with `token`.
    pub fn proof(&self, method: &str, url: &str, token: &str) -> String {
        self.sign_proof(&self.header(), &claims(method, url, token).to_string())
    }
}

/// The claims of a fresh proof for a `method` request to `url` with `token`.
pub fn claims(method: &str, url: &str, token: &str) -> Value {
    json!({ "jti": jti(), "htm": method, "htu": url, "iat": now(), "ath": sha256(token) })
}

/// `base` with `changes` merged over it (a `null` removes a member).
pub fn with(mut base: Value, changes: Value) -> Value {
    for (name, value) in changes.as_object().cloned().unwrap_or_default() {
        if value.is_null() {
            base.as_object_mut().unwrap().remove(&name);
        } else {
            base[name] = value;
        }
    }
    base
}

/// A token for `sub` bound to `key` (its `cnf.jkt`), with `extra` claims.
pub fn bound_token(app: &TestApp, sub: &str, key: &ClientKey, extra: Value) -> String {
    app.token(sub, with(json!({ "cnf": { "jkt": key.thumbprint() } }), extra))
}

/// `GET path` with `authorization` (if any) and each of `proofs` as a
/// `DPoP` header.
pub async fn send(app: &TestApp, path: &str, authorization: Option<&str>, proofs: &[&str]) -> Reply {
    let mut request = app.client.get(format!("{}{path}", app.address));
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    for proof in proofs {
        request = request.header("DPoP", HeaderValue::from_str(proof).unwrap());
    }
    read(request.send().await.unwrap()).await
}

/// `GET path` with `token` under the DPoP scheme and `proof`.
async fn dpop(app: &TestApp, path: &str, token: &str, proof: &str) -> Reply {
    send(app, path, Some(&format!("DPoP {token}")), &[proof]).await
}

/// GET `path` with `token` under the DPoP scheme and a fresh proof by `key`
/// for exactly that request.
async fn dpop_get(app: &TestApp, path: &str, token: &str, key: &ClientKey) -> Reply {
    dpop(app, path, token, &key.proof("GET", &url(app, path), token)).await
}

/// The full URL of `path` on `app`, as a proof names it.
fn url(app: &TestApp, path: &str) -> String {
    format!("{}{path}", app.address)
}

/// The refusal's status, `error` code, where the code is (which scheme's
/// challenge), and what the description says.
#[track_caller]
fn assert_refused(reply: &Reply, status: u16, code: &str, scheme: &str, says: &str) {
    let challenge = reply.challenges();
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.json["error"], code, "{reply:?}");
    assert!(
        challenge.contains(&format!(r#"{scheme} realm="api", error="{code}""#)),
        "{scheme} challenge carries {code}: {challenge}"
    );
    assert!(
        reply.json["error_description"].as_str().unwrap().contains(says),
        "{says:?}: {reply:?}"
    );
}

#[actix_web::test]
async fn a_bound_token_with_its_proof_is_accepted_by_every_algorithm() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let clients = [
        ClientKey::es256(),
        ClientKey::EdDsa(Ed25519KeyPair::generate().unwrap()),
        ClientKey::Rs256(rsa_key()),
        ClientKey::Ps256(rsa_key()),
    ];
    for (n, key) in clients.iter().enumerate() {
        let sub = format!("auth0|dpop-{}", key.alg());
        let token = bound_token(&app, &sub, key, json!({"permissions": ["read:messages"]}));
        let reply = dpop_get(&app, "/api/me", &token, key).await;
        assert_eq!(reply.status, 200, "{}: {reply:?}", key.alg());
        assert_eq!(reply.json["sub"], sub);
        assert_eq!(reply.json["permissions"], json!(["read:messages"]));
        assert_eq!(reply.header("cache-control"), "no-store");
        // The same token again, from the token cache, with a new proof each time.
        for path in ["/api/private", "/api/private-scoped", "/api/private"] {
            let reply = dpop_get(&app, path, &token, key).await;
            assert_eq!(reply.status, 200, "{} {path}: {reply:?}", key.alg());
        }
        assert_eq!(app.users().len(), n + 1, "one row per sub, as for Bearer");
    }
}

#[actix_web::test]
async fn proofs_name_the_request_as_rfc_3986_normalizes_it() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let key = ClientKey::es256();
    let token = bound_token(&app, "auth0|norm", &key, json!({}));
    let upper_host = app.address.replace("http://127.0.0.1", "HTTP://127.0.0.1");
    for (path, htu) in [
        // The query is not part of htu.
        ("/api/private?page=2", url(&app, "/api/private")),
        // Scheme and host case, an unreserved character percent-encoded, a dot segment.
        ("/api/private", format!("{upper_host}/api/%70rivate")),
        ("/api/private", url(&app, "/api/x/../private")),
    ] {
        let proof = key.proof("GET", &htu, &token);
        assert_eq!(dpop(&app, path, &token, &proof).await.status, 200, "{htu}");
    }
    // HEAD is a method of its own.
    let head = |proof: String| {
        app.client
            .head(url(&app, "/api/private"))
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", proof)
            .send()
    };
    let target = url(&app, "/api/private");
    assert_eq!(
        head(key.proof("HEAD", &target, &token)).await.unwrap().status(),
        200
    );
    assert_eq!(
        head(key.proof("GET", &target, &token)).await.unwrap().status(),
        401
    );
}

#[actix_web::test]
async fn each_refusal_says_what_failed_in_the_dpop_challenge() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let key = ClientKey::es256();
    let other = ClientKey::es256();
    let token = bound_token(&app, "auth0|mallory", &key, json!({}));
    let target = url(&app, "/api/private");
    let good = || claims("GET", &target, &token);
    let proof = |claims: Value| key.sign_proof(&key.header(), &claims.to_string());
    let header_with = |changes: Value| {
        let header: Value = serde_json::from_str(&key.header()).unwrap();
        with(header, changes).to_string()
    };
    let unsigned = |header: &str, claims: &Value, signature: &[u8]| {
        format!("{}.{}.{}", b64(header), b64(claims.to_string()), b64(signature))
    };
    let hmac = |header: &str, claims: &Value| {
        let input = format!("{}.{}", b64(header), b64(claims.to_string()));
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key.jwk().as_bytes());
        format!("{input}.{}", b64(aws_lc_rs::hmac::sign(&key, input.as_bytes())))
    };
    let mut private_jwk: Value = serde_json::from_str(&key.jwk()).unwrap();
    private_jwk["d"] = json!(b64([7u8; 32]));
    let cases: Vec<(&str, String, &str)> = vec![
        ("wrong method", proof(with(good(), json!({"htm": "POST"}))), "htm"),
        (
            "method in lower case",
            proof(with(good(), json!({"htm": "get"}))),
            "htm",
        ),
        (
            "wrong path",
            proof(with(good(), json!({"htu": url(&app, "/api/public")}))),
            "htu",
        ),
        (
            "another host",
            proof(with(
                good(),
                json!({"htu": target.replace("127.0.0.1", "localhost")}),
            )),
            "htu",
        ),
        (
            "https instead of http",
            proof(with(good(), json!({"htu": target.replace("http:", "https:")}))),
            "htu",
        ),
        (
            "htu not a URL",
            proof(with(good(), json!({"htu": "/api/private"}))),
            "htu",
        ),
        ("htu missing", proof(with(good(), json!({"htu": null}))), "htu"),
        (
            "stale iat",
            proof(with(good(), json!({"iat": now() - 120}))),
            "too old",
        ),
        (
            "future iat",
            proof(with(good(), json!({"iat": now() + 120}))),
            "future",
        ),
        (
            "iat a string",
            proof(with(good(), json!({"iat": now().to_string()}))),
            "malformed",
        ),
        ("iat missing", proof(with(good(), json!({"iat": null}))), "iat"),
        ("jti missing", proof(with(good(), json!({"jti": null}))), "jti"),
        ("jti empty", proof(with(good(), json!({"jti": ""}))), "jti"),
        (
            "wrong ath",
            proof(with(good(), json!({"ath": sha256("another token")}))),
            "ath",
        ),
        ("ath missing", proof(with(good(), json!({"ath": null}))), "ath"),
        (
            "private key in the jwk",
            key.sign_proof(&header_with(json!({"jwk": private_jwk})), &good().to_string()),
            "private key",
        ),
        (
            "symmetric jwk",
            key.sign_proof(
                &header_with(json!({"alg": "HS256", "jwk": {"kty": "oct", "k": b64("secret")}})),
                &good().to_string(),
            ),
            "private key",
        ),
        (
            "HS256 keyed with the public jwk",
            hmac(&header_with(json!({"alg": "HS256"})), &good()),
            "algorithm not allowed",
        ),
        (
            "alg none",
            unsigned(&header_with(json!({"alg": "none"})), &good(), b""),
            "algorithm not allowed",
        ),
        (
            "RS256 with an EC key",
            key.sign_proof(&header_with(json!({"alg": "RS256"})), &good().to_string()),
            "RSA",
        ),
        (
            "signed by another key than its jwk",
            other.sign_proof(&key.header(), &good().to_string()),
            "signature",
        ),
        (
            "signature of another proof",
            format!(
                "{}.{}",
                proof(good()).rsplit_once('.').unwrap().0,
                proof(good()).rsplit('.').next().unwrap()
            ),
            "signature",
        ),
        (
            "typ JWT",
            key.sign_proof(&header_with(json!({"typ": "JWT"})), &good().to_string()),
            "typ",
        ),
        (
            "typ missing",
            key.sign_proof(&header_with(json!({"typ": null})), &good().to_string()),
            "typ",
        ),
        (
            "jwk missing",
            key.sign_proof(&header_with(json!({"jwk": null})), &good().to_string()),
            "jwk",
        ),
        (
            "crit header",
            key.sign_proof(&header_with(json!({"crit": ["htm"]})), &good().to_string()),
            "crit",
        ),
        (
            "htm given twice",
            key.sign_proof(
                &key.header(),
                &good().to_string().replacen('{', r#"{"htm":"POST","#, 1),
            ),
            "malformed",
        ),
        ("not a JWS", "abc.def".into(), "three"),
        ("padded base64", format!("{}=", proof(good())), "base64url"),
    ];
    for (name, proof, says) in &cases {
        let reply = dpop(&app, "/api/private", &token, proof).await;
        assert_refused(&reply, 401, "invalid_dpop_proof", "DPoP", says);
        assert!(
            reply.challenges().ends_with(&format!(r#"algs="{ALGS}""#)),
            "{name}: {reply:?}"
        );
    }
    // The request, not the proof.
    let fine = proof(good());
    let two = send(
        &app,
        "/api/private",
        Some(&format!("DPoP {token}")),
        &[&fine, &fine],
    )
    .await;
    assert_refused(
        &two,
        401,
        "invalid_dpop_proof",
        "DPoP",
        "more than one DPoP header",
    );
    let huge = proof(with(good(), json!({"pad": "x".repeat(8 * 1024)})));
    let reply = dpop(&app, "/api/private", &token, &huge).await;
    assert_refused(&reply, 401, "invalid_dpop_proof", "DPoP", "too large");
    let none = send(&app, "/api/private", Some(&format!("DPoP {token}")), &[]).await;
    assert_refused(&none, 401, "invalid_dpop_proof", "DPoP", "needs a DPoP proof");

    // The token, not the proof: invalid_token, still in the DPoP challenge.
    let stranger = bound_token(&app, "auth0|mallory", &other, json!({}));
    let reply = dpop_get(&app, "/api/private", &stranger, &key).await;
    assert_refused(&reply, 401, "invalid_token", "DPoP", "bound to another key");
    let unbound = app.token("auth0|mallory", json!({}));
    let reply = dpop_get(&app, "/api/private", &unbound, &key).await;
    assert_refused(&reply, 401, "invalid_token", "DPoP", "not bound to a key");
    let expired = bound_token(&app, "auth0|mallory", &key, json!({"exp": now() - 600}));
    let reply = dpop_get(&app, "/api/private", &expired, &key).await;
    assert_refused(&reply, 401, "invalid_token", "DPoP", "expired");
    for cnf in [
        json!("abc"),
        json!({"x5t#S256": "abc"}),
        json!({"jkt": ""}),
        json!({"jkt": 7}),
    ] {
        let odd = app.token("auth0|mallory", json!({"cnf": cnf}));
        let reply = dpop_get(&app, "/api/private", &odd, &key).await;
        assert_eq!(
            (reply.status, &reply.json["error"]),
            (401, &json!("invalid_token")),
            "{cnf}"
        );
    }

    // Bearer: a bound token is no bearer token, and a proof needs the DPoP scheme.
    let reply = send(&app, "/api/private", Some(&format!("Bearer {token}")), &[]).await;
    assert_refused(&reply, 401, "invalid_token", "Bearer", "bound to a key");
    assert!(reply.challenges().contains(r#", DPoP realm="api", algs=""#));
    let reply = send(&app, "/api/private", Some(&format!("Bearer {unbound}")), &[&fine]).await;
    assert_refused(&reply, 401, "invalid_request", "Bearer", "DPoP scheme");

    assert!(app.users().is_empty(), "no refused request wrote a row");
}

#[actix_web::test]
async fn a_proof_is_accepted_once() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let key = ClientKey::es256();
    let token = bound_token(&app, "auth0|replay", &key, json!({}));
    let target = url(&app, "/api/private");
    let proof = key.proof("GET", &target, &token);
    assert_eq!(dpop(&app, "/api/private", &token, &proof).await.status, 200);
    let replay = dpop(&app, "/api/private", &token, &proof).await;
    assert_refused(&replay, 401, "invalid_dpop_proof", "DPoP", "replayed");
    // The same jti in a new proof (another iat) is the same proof again.
    let used: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(proof.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let again = key.sign_proof(
        &key.header(),
        &with(
            claims("GET", &target, &token),
            json!({"jti": used["jti"], "iat": now() - 1}),
        )
        .to_string(),
    );
    let reply = dpop(&app, "/api/private", &token, &again).await;
    assert_refused(&reply, 401, "invalid_dpop_proof", "DPoP", "replayed");
    // Another key may use the same jti: ids are unique per key.
    let other = ClientKey::es256();
    let other_token = bound_token(&app, "auth0|replay-2", &other, json!({}));
    let theirs = other.sign_proof(
        &other.header(),
        &with(claims("GET", &target, &other_token), json!({"jti": used["jti"]})).to_string(),
    );
    assert_eq!(
        dpop(&app, "/api/private", &other_token, &theirs).await.status,
        200
    );
}

#[actix_web::test]
async fn the_iat_window_is_configurable_and_holds_on_both_sides() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let key = ClientKey::es256();
    let token = bound_token(&app, "auth0|clock", &key, json!({}));
    let target = url(&app, "/api/private");
    let at = |iat: u64| {
        key.sign_proof(
            &key.header(),
            &with(claims("GET", &target, &token), json!({"iat": iat})).to_string(),
        )
    };
    // By default: up to 60 s behind, up to 5 s ahead (the server's clock is
    // never behind the one the proof was made with).
    for iat in [now() - 50, now() + 5] {
        assert_eq!(
            dpop(&app, "/api/private", &token, &at(iat)).await.status,
            200,
            "{iat}"
        );
    }
    for iat in [now() + 30, now() + 50] {
        let reply = dpop(&app, "/api/private", &token, &at(iat)).await;
        assert_refused(
            &reply,
            401,
            "invalid_dpop_proof",
            "DPoP",
            "issued in the future (iat)",
        );
    }
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    let strict = TestApp::builder(Backend::Sqlite)
        .issuer(issuer)
        .env(&[("DPOP_IAT_WINDOW_SECS", "5")])
        .spawn()
        .await;
    let token = bound_token(&strict, "auth0|clock", &key, json!({}));
    let target = url(&strict, "/api/private");
    let at = |iat: u64| {
        key.sign_proof(
            &key.header(),
            &with(claims("GET", &target, &token), json!({"iat": iat})).to_string(),
        )
    };
    assert_eq!(
        dpop(&strict, "/api/private", &token, &at(now())).await.status,
        200
    );
    for iat in [now() - 30, now() + 30] {
        let reply = dpop(&strict, "/api/private", &token, &at(iat)).await;
        assert_eq!(
            (reply.status, &reply.json["error"]),
            (401, &json!("invalid_dpop_proof"))
        );
    }
    // As far ahead as behind, when asked for.
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    let lenient = TestApp::builder(Backend::Sqlite)
        .issuer(issuer)
        .env(&[("DPOP_IAT_AHEAD_SECS", "60")])
        .spawn()
        .await;
    let token = bound_token(&lenient, "auth0|clock", &key, json!({}));
    let target = url(&lenient, "/api/private");
    let proof = key.sign_proof(
        &key.header(),
        &with(claims("GET", &target, &token), json!({"iat": now() + 50})).to_string(),
    );
    assert_eq!(dpop(&lenient, "/api/private", &token, &proof).await.status, 200);
}

#[actix_web::test]
async fn the_token_cache_never_lets_a_request_skip_its_proof() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let key = ClientKey::es256();
    let token = bound_token(&app, "auth0|cached", &key, json!({}));
    let target = url(&app, "/api/private");
    assert_eq!(
        dpop_get(&app, "/api/private", &token, &key).await.status,
        200,
        "the token is now in the cache"
    );
    let stranger = ClientKey::es256();
    for (proof, why) in [
        (stranger.proof("GET", &target, &token), "bound to another key"),
        (key.proof("POST", &target, &token), "htm"),
        (
            ClientKey::es256().sign_proof(&key.header(), &claims("GET", &target, &token).to_string()),
            "signature",
        ),
    ] {
        let reply = dpop(&app, "/api/private", &token, &proof).await;
        assert_eq!(reply.status, 401, "{why}: {reply:?}");
        assert!(
            reply.json["error_description"].as_str().unwrap().contains(why),
            "{reply:?}"
        );
    }
    let bearer = send(&app, "/api/private", Some(&format!("Bearer {token}")), &[]).await;
    assert_eq!(
        bearer.status, 401,
        "a cached bound token is still no bearer token"
    );
}

#[actix_web::test]
async fn a_forbidden_dpop_request_names_the_scope_in_the_dpop_challenge() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let key = ClientKey::es256();
    let token = bound_token(
        &app,
        "auth0|reader",
        &key,
        json!({"permissions": ["read:messages"]}),
    );
    let path = "/api/messages/admin";
    let reply = dpop_get(&app, path, &token, &key).await;
    assert_refused(&reply, 403, "insufficient_scope", "DPoP", "read:admin-messages");
    assert!(
        reply.challenges().starts_with(
            r#"Bearer realm="api", scope="read:admin-messages", DPoP realm="api", error="insufficient_scope""#
        ),
        "{reply:?}"
    );
    assert!(app.users().is_empty(), "a forbidden request writes nothing");
}

#[actix_web::test]
async fn dpop_mode_allowed_accepts_both_schemes_and_challenges_with_both() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let key = ClientKey::es256();
    let bound = bound_token(&app, "auth0|both-1", &key, json!({}));
    let reply = dpop_get(&app, "/api/private", &bound, &key).await;
    assert_eq!(reply.status, 200);
    let bearer = app.token("auth0|both-2", json!({}));
    assert_eq!(app.get_as("/api/private", &bearer).await.status, 200);
    let reply = send(&app, "/api/private", None, &[]).await;
    assert_eq!(
        reply.challenges(),
        format!(r#"Bearer realm="api", DPoP realm="api", algs="{ALGS}""#)
    );
}

#[actix_web::test]
async fn dpop_mode_required_refuses_bearer_tokens() {
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    let app = TestApp::builder(Backend::Sqlite)
        .issuer(issuer)
        .env(&[("DPOP_MODE", "required")])
        .spawn()
        .await;
    let key = ClientKey::es256();
    let bound = bound_token(&app, "auth0|req-1", &key, json!({}));
    let reply = dpop_get(&app, "/api/private", &bound, &key).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let bearer = app.token("auth0|req-2", json!({}));
    let reply = app.get_as("/api/private", &bearer).await;
    assert_refused(&reply, 401, "invalid_request", "DPoP", "DPoP-bound tokens only");
    assert!(!reply.challenges().contains("Bearer"), "{reply:?}");
    let reply = send(&app, "/api/private", None, &[]).await;
    assert_eq!(reply.challenges(), format!(r#"DPoP realm="api", algs="{ALGS}""#));
    assert_eq!(app.users().len(), 1);
}

#[actix_web::test]
async fn dpop_mode_disabled_refuses_the_dpop_scheme() {
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    let app = TestApp::builder(Backend::Sqlite)
        .issuer(issuer)
        .env(&[("DPOP_MODE", "disabled")])
        .spawn()
        .await;
    let key = ClientKey::es256();
    let bound = bound_token(&app, "auth0|off-1", &key, json!({}));
    let target = url(&app, "/api/private");
    let reply = dpop_get(&app, "/api/private", &bound, &key).await;
    assert_refused(
        &reply,
        401,
        "invalid_request",
        "Bearer",
        "DPoP scheme is not accepted",
    );
    assert!(!reply.challenges().contains("DPoP realm"), "{reply:?}");
    // Bearer only: a DPoP header is none of its business...
    let bearer = app.token("auth0|off-2", json!({}));
    let proof = key.proof("GET", &target, &bearer);
    let reply = send(&app, "/api/private", Some(&format!("Bearer {bearer}")), &[&proof]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // ...but a bound token is still no bearer token.
    let reply = send(&app, "/api/private", Some(&format!("Bearer {bound}")), &[]).await;
    assert_refused(&reply, 401, "invalid_token", "Bearer", "bound to a key");
    let reply = send(&app, "/api/private", None, &[]).await;
    assert_eq!(reply.challenges(), r#"Bearer realm="api""#);
}

#[actix_web::test]
async fn behind_a_proxy_proofs_name_the_public_base_url() {
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    let app = TestApp::builder(Backend::Sqlite)
        .issuer(issuer)
        .env(&[("PUBLIC_BASE_URL", "https://API.example.com/gateway/")])
        .spawn()
        .await;
    let key = ClientKey::es256();
    let token = bound_token(&app, "auth0|proxied", &key, json!({}));
    let public = "https://api.example.com/gateway/api/private";
    let reply = dpop(
        &app,
        "/api/private?x=1",
        &token,
        &key.proof("GET", public, &token),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // The URL the request reached this server at is not the one clients use.
    let internal = key.proof("GET", &url(&app, "/api/private"), &token);
    let reply = dpop(&app, "/api/private", &token, &internal).await;
    assert_refused(&reply, 401, "invalid_dpop_proof", "DPoP", "htu");
}

/// A key's proofs, with its token, as one client sends them.
struct Client {
    key: ClientKey,
    token: String,
}

impl Client {
    fn new(app: &TestApp, sub: &str) -> Self {
        let key = ClientKey::es256();
        let token = bound_token(app, sub, &key, json!({}));
        Self { key, token }
    }

    /// A request with a new proof.
    async fn get(&self, app: &TestApp) -> Reply {
        dpop_get(app, "/api/private", &self.token, &self.key).await
    }
}

#[actix_web::test]
async fn a_key_over_its_share_gets_429_while_other_keys_are_admitted() {
    // Room for five proofs, four of them one key's.
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    let env = [("DPOP_REPLAY_CACHE_SIZE", "5"), ("DPOP_REPLAY_PER_KEY", "4")];
    let app = TestApp::builder(Backend::Sqlite)
        .issuer(issuer)
        .env(&env)
        .spawn()
        .await;
    let greedy = Client::new(&app, "auth0|greedy");
    // Distinct valid proofs, as many as it likes: its share, then 429.
    let mut admitted = 0;
    let refused = loop {
        let reply = greedy.get(&app).await;
        if reply.status != 200 || admitted == 40 {
            break reply;
        }
        admitted += 1;
    };
    assert_eq!(refused.status, 429, "after {admitted} admitted: {refused:?}");
    assert_eq!(admitted, 4, "exactly its share");
    // Its proofs are remembered for at most 60 s + 5 s, counted in whole seconds.
    assert_eq!(refused.header("retry-after"), "66");
    assert_eq!(refused.header("cache-control"), "no-store");
    assert_eq!(refused.header("www-authenticate"), "", "the credentials are good");
    assert_eq!(refused.json["error"], "too_many_requests");
    assert_eq!(refused.json["message"], "Too Many Requests");
    let description = refused.json["error_description"].as_str().unwrap();
    assert!(description.contains("DPoP key"), "{description}");
    assert!(!description.contains(&greedy.key.thumbprint()), "{description}");
    // A refused proof takes no place: still over its share, and not a replay.
    assert_eq!(greedy.get(&app).await.status, 429);
    // Another key is admitted (on the code before, the full cache answered 503)...
    let modest = Client::new(&app, "auth0|modest");
    let reply = modest.get(&app).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // ...until the whole cache is full: then every key gets 503, as before.
    let late = Client::new(&app, "auth0|late");
    let reply = late.get(&app).await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(reply.header("retry-after"), "1");
    assert_eq!(reply.json["error"], "temporarily_unavailable");
    assert_eq!(greedy.get(&app).await.status, 429, "over its share first");
}

#[actix_web::test]
async fn a_full_replay_cache_answers_503_rather_than_forget_a_proof() {
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    let env = [("DPOP_REPLAY_CACHE_SIZE", "3"), ("DPOP_REPLAY_PER_KEY", "1")];
    let app = TestApp::builder(Backend::Sqlite)
        .issuer(issuer)
        .env(&env)
        .spawn()
        .await;
    for n in 0..3 {
        let client = Client::new(&app, &format!("auth0|many-{n}"));
        assert_eq!(client.get(&app).await.status, 200, "{n}");
    }
    for n in 3..6 {
        let client = Client::new(&app, &format!("auth0|many-{n}"));
        let reply = client.get(&app).await;
        assert_eq!(reply.status, 503, "{n}: {reply:?}");
        assert_eq!(reply.header("retry-after"), "1");
        assert_eq!(reply.json["error"], "temporarily_unavailable");
    }
}

#[actix_web::test]
async fn with_a_nonce_secret_proofs_must_carry_a_nonce_the_api_issued() {
    let secret = "one secret shared by every instance, 32+ bytes";
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    let app = TestApp::builder(Backend::Sqlite)
        .issuer(issuer)
        .env(&[("DPOP_NONCE_SECRET", secret)])
        .spawn()
        .await;
    let key = ClientKey::es256();
    let token = bound_token(&app, "auth0|nonce", &key, json!({}));
    let target = url(&app, "/api/private");
    let with_nonce = |nonce: &str| {
        key.sign_proof(
            &key.header(),
            &with(claims("GET", &target, &token), json!({"nonce": nonce})).to_string(),
        )
    };

    // The first request has no nonce: refused with one to use.
    let reply = dpop_get(&app, "/api/private", &token, &key).await;
    assert_refused(&reply, 401, "use_dpop_nonce", "DPoP", "DPoP-Nonce");
    let nonce = reply.header("dpop-nonce").to_owned();
    assert_eq!(nonce.len(), 32, "{reply:?}");
    // With it, admitted, and the answer carries the nonce for the next proofs.
    let reply = dpop(&app, "/api/private", &token, &with_nonce(&nonce)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(!reply.header("dpop-nonce").is_empty(), "{reply:?}");
    // A nonce is no ticket: it serves for more than one proof while it lasts.
    assert_eq!(
        dpop(&app, "/api/private", &token, &with_nonce(&nonce))
            .await
            .status,
        200
    );
    // A made-up one, or one of another secret, is answered with a real one.
    for forged in [b64([0u8; 24]), "not-a-nonce".into()] {
        let reply = dpop(&app, "/api/private", &token, &with_nonce(&forged)).await;
        assert_refused(&reply, 401, "use_dpop_nonce", "DPoP", "nonce");
        assert_ne!(reply.header("dpop-nonce"), "");
    }
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    let stranger = TestApp::builder(Backend::Sqlite)
        .issuer(issuer)
        .env(&[("DPOP_NONCE_SECRET", "another secret, also of 32 bytes or more")])
        .spawn()
        .await;
    let their_token = bound_token(&stranger, "auth0|nonce", &key, json!({}));
    let their_target = url(&stranger, "/api/private");
    let proof = key.proof("GET", &their_target, &their_token);
    let theirs = dpop(&stranger, "/api/private", &their_token, &proof).await;
    assert_eq!(theirs.json["error"], "use_dpop_nonce");
    let reply = dpop(
        &app,
        "/api/private",
        &token,
        &with_nonce(theirs.header("dpop-nonce")),
    )
    .await;
    assert_refused(&reply, 401, "use_dpop_nonce", "DPoP", "nonce");
    // Another instance with the same secret accepts this one's nonce.
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    let twin = TestApp::builder(Backend::Sqlite)
        .issuer(issuer)
        .env(&[("DPOP_NONCE_SECRET", secret)])
        .spawn()
        .await;
    let token = bound_token(&twin, "auth0|nonce", &key, json!({}));
    let target = url(&twin, "/api/private");
    let proof = key.sign_proof(
        &key.header(),
        &with(claims("GET", &target, &token), json!({"nonce": nonce})).to_string(),
    );
    assert_eq!(dpop(&twin, "/api/private", &token, &proof).await.status, 200);
    // Bearer requests are none of its business.
    let bearer = app.token("auth0|nonce-bearer", json!({}));
    let reply = app.get_as("/api/private", &bearer).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("dpop-nonce"), "");
}

/// Two instances on one PostgreSQL database behind one public URL: a proof
/// one admitted is refused by the other (and by itself), whichever gets it
/// first; proofs of their own are admitted by each.
#[actix_web::test]
#[ignore = "needs PostgreSQL at 127.0.0.1:5432 (TEST_POSTGRES_URL)"]
async fn a_proof_admitted_by_one_instance_is_refused_by_every_other() {
    let public = [("PUBLIC_BASE_URL", "https://api.example.com")];
    let first = TestApp::builder(Backend::Postgres).env(&public).spawn().await;
    let url = first.database.url();
    let second = TestApp::builder(Backend::Postgres)
        .trusting(&[&first.issuer.issuer])
        .env(&[public[0], ("DATABASE_URL", &url)])
        .spawn()
        .await;
    let key = ClientKey::es256();
    let token = bound_token(&first, "auth0|roamer", &key, json!({}));
    let proof_for = || key.proof("GET", "https://api.example.com/api/private", &token);
    let ready = async |app: &TestApp| {
        let fresh = proof_for();
        eventually(Duration::from_secs(10), async || {
            dpop(app, "/api/private", &token, &fresh).await.status == 200
        })
        .await
    };
    assert!(ready(&first).await && ready(&second).await, "keys loaded");

    for (admits, replays_on) in [(&first, &second), (&second, &first)] {
        for _ in 0..20 {
            let proof = proof_for();
            assert_eq!(dpop(admits, "/api/private", &token, &proof).await.status, 200);
            let replayed = dpop(replays_on, "/api/private", &token, &proof).await;
            assert_refused(&replayed, 401, "invalid_dpop_proof", "DPoP", "replayed");
        }
    }
    // The same proof sent to both at once: exactly one admits it.
    for _ in 0..20 {
        let proof = proof_for();
        let (a, b) = futures_util::join!(
            dpop(&first, "/api/private", &token, &proof),
            dpop(&second, "/api/private", &token, &proof)
        );
        let mut statuses = [a.status, b.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 401], "{a:?} {b:?}");
    }
}
