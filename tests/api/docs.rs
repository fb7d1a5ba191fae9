//! What the API says about itself: the OpenAPI document against what each
//! route really does, the protected resource metadata and the challenges
//! that point to it, and the docs page with its own CSP.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, Reply, TestApp, eventually, free_port, read, start_dev};

/// Every route the README lists.
const ROUTES: &[&str] = &[
    "/healthz",
    "/readyz",
    "/api/public",
    "/api/private",
    "/api/private-scoped",
    "/api/me",
    "/api/messages/public",
    "/api/messages/protected",
    "/api/messages/admin",
    "/api/messages/sensitive",
    "/openapi.json",
    "/docs",
    "/.well-known/oauth-protected-resource",
];

/// The strict policy every response but the docs page carries.
const STRICT_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The permissions a documented operation needs: `None` when it is public,
/// else one set per alternative (an empty set: any valid token).
fn documented_security(operation: &Value) -> Option<Vec<Vec<String>>> {
    let security = operation.get("security")?.as_array().unwrap();
    Some(
        security
            .iter()
            .map(|requirement| {
                let scopes = requirement["bearerAuth"].as_array().expect("the bearer scheme");
                scopes.iter().map(|s| s.as_str().unwrap().to_owned()).collect()
            })
            .collect(),
    )
}

#[actix_web::test]
async fn the_openapi_document_describes_every_route_as_it_behaves() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let document = app.get_with("/openapi.json", &[]).await;
    assert_eq!(document.status, 200);
    assert_eq!(document.header("content-security-policy"), STRICT_CSP);
    let document = document.json;
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(
        document["components"]["securitySchemes"]["bearerAuth"],
        json!({
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": document["components"]["securitySchemes"]["bearerAuth"]["description"],
        })
    );
    let paths = document["paths"].as_object().unwrap();
    let documented: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    assert_eq!(documented, ROUTES.iter().copied().collect());

    // Keys first, so that /readyz and the guarded routes answer as documented.
    let ready = eventually(Duration::from_secs(10), async || {
        app.get_with("/readyz", &[]).await.status == 200
    });
    assert!(ready.await);
    let nobody = app.token("auth0|docs-nobody", json!({}));
    let mut permissions = BTreeSet::new();
    for operation in paths.values() {
        for alternative in documented_security(&operation["get"]).into_iter().flatten() {
            permissions.extend(alternative);
        }
    }
    // A login as every step-up route asks (RFC 9470): each class named, now.
    let classes: BTreeSet<&str> = paths
        .values()
        .filter_map(|item| item["get"].get("x-step-up"))
        .flat_map(|step_up| step_up["acr_values"].as_array().unwrap())
        .map(|acr| acr.as_str().unwrap())
        .collect();
    assert!(
        classes.len() <= 1,
        "one token cannot carry two classes: {classes:?}"
    );
    let everything = app.token(
        "auth0|docs-all",
        json!({ "permissions": permissions, "acr": classes.first(), "auth_time": crate::helpers::now() }),
    );

    for (path, item) in paths {
        let operation = &item["get"];
        let responses = operation["responses"].as_object().unwrap();
        let codes: Vec<&str> = responses.keys().map(String::as_str).collect();
        let anonymous = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        match documented_security(operation) {
            None => {
                assert_eq!(codes[0], "200", "{path}");
                assert!(!codes.contains(&"401"), "{path}: {codes:?}");
                assert_eq!(anonymous.status(), 200, "{path} is public");
            }
            Some(alternatives) => {
                assert_eq!(alternatives.len(), 1, "{path}: one way in");
                let required = &alternatives[0];
                assert_eq!(anonymous.status(), 401, "{path} is guarded");
                assert_eq!(
                    responses["401"]["$ref"], "#/components/responses/Unauthorized",
                    "{path}"
                );
                assert_eq!(responses["503"]["$ref"], "#/components/responses/Unavailable");
                let with_nothing = app.get_as(path, &nobody).await;
                if let Some(step_up) = operation.get("x-step-up") {
                    // The login falls short: 401, naming what a new one must bring.
                    assert_eq!(with_nothing.status, 401, "{path}");
                    assert_eq!(with_nothing.json["error"], "insufficient_user_authentication");
                    let acr_values: Vec<&str> = step_up["acr_values"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|acr| acr.as_str().unwrap())
                        .collect();
                    let challenge = with_nothing.header("www-authenticate");
                    assert!(
                        challenge.contains(&format!(r#"acr_values="{}""#, acr_values.join(" ")))
                            && challenge.contains(&format!(r#"max_age="{}""#, step_up["max_age"])),
                        "{path}: the document says {step_up}, the route {challenge}"
                    );
                    assert!(operation["description"].as_str().unwrap().contains("RFC 9470"));
                } else if required.is_empty() {
                    assert!(!codes.contains(&"403"), "{path}: {codes:?}");
                    assert_eq!(with_nothing.status, 200, "{path}");
                } else {
                    assert_eq!(responses["403"]["$ref"], "#/components/responses/Forbidden");
                    assert_eq!(with_nothing.status, 403, "{path}");
                    let scope = format!(", scope=\"{}\"", required.join(" "));
                    assert!(
                        with_nothing.header("www-authenticate").contains(&scope),
                        "{path}: the document says {required:?}, the route {:?}",
                        with_nothing.header("www-authenticate")
                    );
                    let description = operation["description"].as_str().unwrap();
                    assert!(
                        description.contains(&format!("`{}`", required[0])),
                        "{description}"
                    );
                }
                let allowed = app.get_as(path, &everything).await;
                assert_eq!(allowed.status, 200, "{path}");
            }
        }
        // A fixed answer is documented word for word.
        let ok = &responses["200"]["content"];
        if let Some(example) = ok["application/json"].get("example") {
            let reply = app.get_as(path, &everything).await;
            assert_eq!(&reply.json, example, "{path}");
        }
    }

    let refusal = &document["components"]["responses"]["Unauthorized"];
    assert_eq!(
        refusal["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Error"
    );
    assert!(refusal["headers"]["WWW-Authenticate"].is_object(), "{refusal}");
    let error = &document["components"]["schemas"]["Error"];
    assert_eq!(
        error["required"],
        json!(["error", "error_description", "message"])
    );
}

#[actix_web::test]
async fn a_client_finds_the_issuer_from_a_401_alone() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let metadata_url = format!("{}/.well-known/oauth-protected-resource", app.address);
    let expired = app.token("auth0|late", json!({ "exp": crate::helpers::now() - 3600 }));
    let refusals = [
        app.get_with("/api/private", &[]).await,
        app.get_as("/api/private", &expired).await,
        app.get_with("/api/me", &["Basic dXNlcjpwYXNz"]).await,
        app.get_as("/api/messages/admin", &app.token("auth0|reader", json!({})))
            .await,
    ];
    for refusal in &refusals {
        assert!(
            refusal
                .header("www-authenticate")
                .ends_with(&format!(", resource_metadata=\"{metadata_url}\"")),
            "{refusal:?}"
        );
    }

    // RFC 9728 section 5.1: challenge, then metadata, then the issuer.
    let metadata = read(app.client.get(&metadata_url).send().await.unwrap()).await;
    assert_eq!(metadata.status, 200);
    assert_eq!(metadata.header("content-security-policy"), STRICT_CSP);
    assert_eq!(
        metadata.json,
        json!({
            "resource": crate::helpers::AUDIENCE,
            "authorization_servers": [app.issuer.issuer],
            "bearer_methods_supported": ["header"],
            "scopes_supported": ["read:admin-messages", "read:messages"],
            "resource_name": "actix-auth0-api",
            "resource_documentation": format!("{}/docs", app.address),
            "dpop_signing_alg_values_supported":
                ["ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
            "dpop_bound_access_tokens_required": false,
        })
    );
}

/// `GET path` with `Host: host`.
async fn get_with_host(address: &str, path: &str, host: &str) -> Reply {
    let client = reqwest::Client::new();
    let request = client.get(format!("{address}{path}")).header("Host", host);
    read(request.send().await.unwrap()).await
}

#[actix_web::test]
async fn published_links_follow_public_base_url_or_a_plain_host() {
    let configured = TestApp::builder(Backend::Sqlite)
        .issuer(crate::helpers::TestIssuer::start(&[&crate::helpers::shared_key("main")]).await)
        .env(&[("PUBLIC_BASE_URL", "https://api.example.com/hello/")])
        .spawn()
        .await;
    for host in ["api.internal:8080", "evil.example"] {
        let refusal = get_with_host(&configured.address, "/api/private", host).await;
        // RFC 9728 section 3.1: the well-known path between host and path.
        assert!(
            refusal.header("www-authenticate").ends_with(
                ", resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource/hello\""
            ),
            "{refusal:?}"
        );
        // Served there (as a proxy forwards it) and at the plain path.
        for path in [
            "/.well-known/oauth-protected-resource/hello",
            "/.well-known/oauth-protected-resource",
        ] {
            let metadata = get_with_host(&configured.address, path, host).await;
            assert_eq!(metadata.status, 200, "{path}");
            assert_eq!(
                metadata.json["resource_documentation"],
                "https://api.example.com/hello/docs"
            );
        }
    }
    let elsewhere = get_with_host(
        &configured.address,
        "/.well-known/oauth-protected-resource/other",
        "x",
    )
    .await;
    assert_eq!(elsewhere.status, 404);

    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let from_host = get_with_host(&app.address, "/api/private", "api.example.com:8443").await;
    assert!(
        from_host.header("www-authenticate").ends_with(
            ", resource_metadata=\"http://api.example.com:8443/.well-known/oauth-protected-resource\""
        ),
        "{from_host:?}"
    );
    // A Host that is not a plain host[:port] is not echoed: the bound address is used.
    for hostile in ["evil.example/\"><script>", "user@evil.example"] {
        let reply = get_with_host(&app.address, "/api/private", hostile).await;
        assert!(
            reply.header("www-authenticate").ends_with(&format!(
                ", resource_metadata=\"{}/.well-known/oauth-protected-resource\"",
                app.address
            )),
            "{hostile}: {reply:?}"
        );
    }
}

#[actix_web::test]
async fn the_docs_page_runs_under_its_own_csp_and_nothing_else_does() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let page = app
        .client
        .get(format!("{}/docs", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let header = |name: &str| page.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    assert_eq!(
        header("content-security-policy"),
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("x-frame-options"), "deny");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"<script type="application/json" id="dev-token-data">null</script>"#),
        "serve offers no token"
    );
    assert!(!html.contains("<script>"), "no inline script");

    for (asset, media_type) in [
        ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        ("swagger-ui.css", "text/css; charset=utf-8"),
        ("docs.js", "text/javascript; charset=utf-8"),
        ("docs.css", "text/css; charset=utf-8"),
        ("favicon-32x32.png", "image/png"),
        ("swagger-ui-LICENSE.txt", "text/plain; charset=utf-8"),
    ] {
        let url = format!("{}/docs/{asset}", app.address);
        assert!(
            html.contains(&format!("\"docs/{asset}\"")),
            "the page uses {asset}"
        );
        let response = app.client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert_eq!(response.headers()["content-type"], media_type, "{asset}");
        assert_eq!(
            response.headers()["content-security-policy"],
            STRICT_CSP,
            "{asset}"
        );
        let etag = response.headers()["etag"].clone();
        assert!(!response.bytes().await.unwrap().is_empty());
        let again = app
            .client
            .get(&url)
            .header("If-None-Match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{asset}: revalidated, not sent again");
    }
    let missing = app.get_with("/docs/nothing.js", &[]).await;
    assert_eq!(
        (missing.status, missing.json),
        (404, json!({"message": "Not Found"}))
    );
    for path in [
        "/openapi.json",
        "/.well-known/oauth-protected-resource",
        "/api/public",
        "/docs/",
    ] {
        let reply = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.headers()["content-security-policy"], STRICT_CSP, "{path}");
    }
}

#[actix_web::test]
async fn a_405_says_which_methods_work() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    for path in ["/api/private", "/docs", "/openapi.json"] {
        let reply = read(
            app.client
                .delete(format!("{}{path}", app.address))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, 405, "{path}");
        assert_eq!(reply.header("allow"), "GET, HEAD", "{path}");
    }
}

#[actix_web::test]
async fn dev_offers_its_tokens_on_the_docs_page_only() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start_dev(dir.path(), &free_port().to_string());
    let client = reqwest::Client::new();
    crate::helpers::wait_ready(&dev.address, &client).await;
    let html = client
        .get(format!("{}/docs", dev.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let data = html
        .split(r#"<script type="application/json" id="dev-token-data">"#)
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .expect("the token data block");
    let offered: Vec<Value> = serde_json::from_str(data).unwrap();
    let offered: Vec<&str> = offered.iter().map(|t| t["token"].as_str().unwrap()).collect();
    assert_eq!(offered, dev.tokens, "the banner's tokens");
    let get = async |path: &str| {
        read(client.get(format!("{}{path}", dev.address)).send().await.unwrap())
            .await
            .json
    };
    let document = get("/openapi.json").await;
    assert!(
        document["info"]["description"]
            .as_str()
            .unwrap()
            .contains("Development mode"),
        "{document}"
    );
    let metadata = get("/.well-known/oauth-protected-resource").await;
    assert_eq!(
        metadata["authorization_servers"],
        json!([format!("{}/", dev.address)])
    );
}
