//! Each refusal with its status, `WWW-Authenticate` challenge and JSON body.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::helpers::{AUDIENCE, Backend, Reply, TestApp, TestIssuer, now, shared_key, sign_with};

fn assert_refused(reply: &Reply, status: u16, challenge_error: Option<&str>, message: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    let challenge = reply.header("www-authenticate");
    assert!(challenge.starts_with("Bearer realm=\"api\""), "{challenge}");
    match challenge_error {
        Some(code) => assert!(challenge.contains(&format!(", error=\"{code}\"")), "{challenge}"),
        None => assert!(!challenge.contains("error="), "{challenge}"),
    }
    // RFC 9728 section 5.1: every challenge says where the metadata is.
    assert!(
        challenge.contains(", resource_metadata=\"http://127.0.0.1:")
            && challenge.ends_with("/.well-known/oauth-protected-resource\""),
        "{challenge}"
    );
    assert_eq!(reply.json["message"], message, "{reply:?}");
    assert!(
        reply.json["error"].is_string() && reply.json["error_description"].is_string(),
        "{reply:?}"
    );
    assert_eq!(reply.header("content-type"), "application/json");
}

/// A token signed by nobody: `header.payload.signature` from raw JSON.
fn unsigned(header: Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

#[actix_web::test]
async fn a_401_on_a_route_that_needs_a_permission_names_it_as_scope() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let expired = app.token("auth0|late", json!({"exp": now() - 3600}));
    for (path, authorization) in [
        ("/api/messages/admin", vec![]),
        ("/api/messages/admin", vec![format!("Bearer {expired}")]),
        ("/api/private-scoped", vec!["Bearer not-a-jwt".to_owned()]),
    ] {
        let authorization: Vec<&str> = authorization.iter().map(String::as_str).collect();
        let reply = app.get_with(path, &authorization).await;
        assert_eq!(reply.status, 401, "{path}: {reply:?}");
        let needed = if path.ends_with("admin") {
            "read:admin-messages"
        } else {
            "read:messages"
        };
        // MCP clients (and RFC 6750 section 3) read what to ask for from
        // every challenge, beside where the metadata is.
        let (bearer, dpop) = reply
            .header("www-authenticate")
            .split_once(", DPoP realm=")
            .unwrap();
        for challenge in [bearer, dpop] {
            assert!(
                challenge.contains(&format!(r#", scope="{needed}""#)),
                "{path}: {challenge}"
            );
        }
    }
    // Any valid token will do: nothing to ask for.
    let reply = app.get_with("/api/private", &[]).await;
    assert!(!reply.header("www-authenticate").contains("scope="), "{reply:?}");
}

#[actix_web::test]
async fn no_header_asks_for_authentication() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let reply = app.get_with("/api/private", &[]).await;
    assert_refused(&reply, 401, None, "Requires authentication");
    // Both schemes are accepted (DPOP_MODE=allowed): one challenge each,
    // each naming the protected resource metadata.
    let metadata = format!(
        "resource_metadata=\"{}/.well-known/oauth-protected-resource\"",
        app.address
    );
    assert_eq!(
        reply.header("www-authenticate"),
        format!(
            r#"Bearer realm="api", {metadata}, DPoP realm="api", algs="ES256 ES384 ES512 EdDSA RS256 RS384 RS512 PS256 PS384 PS512", {metadata}"#
        )
    );
}

#[actix_web::test]
async fn other_schemes_and_empty_tokens_are_invalid_requests() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let token = app.token("auth0|alice", json!({}));
    let cases: [&[&str]; 5] = [
        &["Basic dXNlcjpwYXNz"],
        &["Bearer"],
        &["Bearer    "],
        &["Token abc"],
        &[&format!("Bearer {token}"), &format!("Bearer {token}")],
    ];
    for authorization in cases {
        let reply = app.get_with("/api/private", authorization).await;
        assert_refused(&reply, 401, Some("invalid_request"), "Bad credentials");
    }
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let reply = app
            .get_with("/api/private", &[&format!("{scheme} {token}")])
            .await;
        assert_eq!(reply.status, 200, "{scheme}");
    }
}

#[actix_web::test]
async fn invalid_tokens_say_what_failed_without_echoing_the_token() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let key = shared_key("main");
    let claims = app.issuer.claims("auth0|mallory");
    let public_jwk = key.public_jwk().to_string();
    let hs256 = {
        let header = jsonwebtoken::Header {
            kid: Some("main".into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        };
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(public_jwk.as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let resigned_by_stranger = sign_with(&shared_key("stranger-with-main-kid"), claims.clone(), json!({}));
    // Same claims, but the stranger key publishes itself under kid "main".
    let forged = {
        let stranger =
            actix_auth0_api::dev::SigningKey::from_pem("main", shared_key("stranger-with-main-kid").pem())
                .unwrap();
        stranger.sign(&claims).unwrap()
    };
    let cases: Vec<(String, &str)> = vec![
        (app.token("a", json!({"exp": now() - 120})), "expired"),
        (app.token("a", json!({"nbf": now() + 600})), "not yet valid"),
        (app.token("a", json!({"iss": "https://other.example/"})), "issuer"),
        (
            app.token("a", json!({"iss": app.issuer.issuer.trim_end_matches('/')})),
            "issuer",
        ),
        (
            app.token("a", json!({"aud": "https://api.test.example/"})),
            "audience",
        ),
        (app.token("a", json!({"aud": ["x", "y"]})), "audience"),
        (app.token("a", json!({"aud": null})), "aud"),
        (app.token("a", json!({"exp": null})), "exp"),
        (app.token("a", json!({"sub": null})), "sub"),
        (app.token("", json!({})), "sub"),
        (app.token("a", json!({"sub": 42})), "claims"),
        (app.token("a", json!({"scope": ["read:messages"]})), "claims"),
        (app.token("a", json!({"permissions": "read:messages"})), "claims"),
        (forged, "signature"),
        (resigned_by_stranger, "kid"),
        (hs256, "algorithm"),
        (
            unsigned(json!({"alg": "none", "kid": "main"}), &claims, b""),
            "algorithm",
        ),
        (
            unsigned(json!({"alg": "RS512", "kid": "main"}), &claims, b"sig"),
            "algorithm",
        ),
        (
            unsigned(json!({"alg": "PS256", "kid": "main"}), &claims, b"sig"),
            "algorithm",
        ),
        (
            unsigned(
                json!({"alg": "RS256", "kid": "main", "typ": "JOSE+JSON"}),
                &claims,
                b"sig",
            ),
            "typ",
        ),
        (unsigned(json!({"alg": "RS256"}), &claims, b"sig"), "kid"),
        (
            unsigned(
                json!({"alg": "RS256", "kid": "main", "crit": ["exp"]}),
                &claims,
                b"sig",
            ),
            "crit",
        ),
        ("abc.def".into(), "malformed"),
        ("a.b.c.d".into(), "malformed"),
        ("a+b/.b.c".into(), "malformed"),
        (
            format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode("[1,2]")),
            "malformed",
        ),
        (
            format!(
                "{}.{}.c2ln",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"main"}"#),
                "x".repeat(9000)
            ),
            "too large",
        ),
    ];
    for (token, failure) in cases {
        let reply = app.get_as("/api/private", &token).await;
        assert_refused(&reply, 401, Some("invalid_token"), "Bad credentials");
        let description = reply.json["error_description"].as_str().unwrap();
        assert!(
            description.contains(failure),
            "expected {failure:?} in {description:?}"
        );
        assert!(
            reply
                .header("www-authenticate")
                .contains(&format!("error_description=\"{description}\""))
        );
        let echoed = token.len() > 3
            && (reply.header("www-authenticate").contains(&token) || description.contains(&token));
        assert!(!echoed, "token echoed: {reply:?}");
    }
    assert!(app.users().is_empty(), "refused tokens never write");
}

#[actix_web::test]
async fn leeway_and_audience_forms_are_honoured() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let accepted = [
        json!({"exp": now() - 30}),
        // Inside the 60 s leeway with room for a slow run (one second past
        // it is in the hostile table).
        json!({"exp": now() - 50}),
        json!({"nbf": now() + 30}),
        json!({"iat": now() + 30}),
        json!({"iat": (now() - 10) as f64 + 0.25}),
        json!({"aud": ["https://other.example", AUDIENCE]}),
        json!({"aud": [AUDIENCE, AUDIENCE]}),
        json!({"nbf": (now() - 10) as f64 + 0.5}),
        json!({"nbf": null}),
    ];
    for extra in accepted {
        let reply = app
            .get_as("/api/private", &app.token("auth0|bob", extra.clone()))
            .await;
        assert_eq!(reply.status, 200, "{extra}: {reply:?}");
    }
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(shared_key("main").pem().as_bytes()).unwrap();
    for typ in ["JWT", "at+jwt", "application/at+jwt"] {
        let header = jsonwebtoken::Header {
            kid: Some("main".into()),
            typ: Some(typ.into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256)
        };
        let token = jsonwebtoken::encode(&header, &app.issuer.claims("auth0|bob"), &key).unwrap();
        assert_eq!(app.get_as("/api/private", &token).await.status, 200, "{typ}");
    }
}

#[actix_web::test]
async fn a_comma_separated_audience_list_accepts_any_of_them() {
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    let app = TestApp::builder(Backend::Sqlite)
        .issuer(issuer)
        .env(&[("AUTH0_AUDIENCE", "https://first.example, https://second.example")])
        .spawn()
        .await;
    for (aud, status) in [
        ("https://first.example", 200),
        ("https://second.example", 200),
        (AUDIENCE, 401),
    ] {
        let reply = app
            .get_as("/api/private", &app.token("auth0|carol", json!({"aud": aud})))
            .await;
        assert_eq!(reply.status, status, "{aud}");
    }
}

#[actix_web::test]
async fn missing_permission_is_forbidden_with_the_scope_needed() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let token = app.token(
        "auth0|dave",
        json!({"scope": "openid Read:messages read:message"}),
    );
    for (path, scope) in [
        ("/api/private-scoped", "read:messages"),
        ("/api/messages/admin", "read:admin-messages"),
    ] {
        let reply = app.get_as(path, &token).await;
        assert_refused(&reply, 403, Some("insufficient_scope"), "Permission denied");
        assert!(
            reply
                .header("www-authenticate")
                .contains(&format!(", scope=\"{scope}\", ")),
            "{reply:?}"
        );
        assert_eq!(reply.json["error"], "insufficient_scope");
    }
    assert!(app.users().is_empty(), "a forbidden request writes nothing");
}

#[actix_web::test]
async fn a_cached_token_is_refused_once_it_expires() {
    let issuer = TestIssuer::start(&[&shared_key("main")]).await;
    let app = TestApp::builder(Backend::Sqlite)
        .issuer(issuer)
        .env(&[("AUTH0_LEEWAY_SECS", "0")])
        .spawn()
        .await;
    let token = app.token("auth0|kate", json!({"exp": now() + 1}));
    assert_eq!(app.get_as("/api/private", &token).await.status, 200);
    assert_eq!(
        app.get_as("/api/private", &token).await.status,
        200,
        "served from the cache"
    );
    let expired = crate::helpers::eventually(std::time::Duration::from_secs(3), async || {
        app.get_as("/api/private", &token).await.status == 401
    });
    assert!(expired.await, "a cache hit still checks exp");
    let reply = app.get_as("/api/private", &token).await;
    assert_eq!(reply.json["error_description"], "token expired");
}
