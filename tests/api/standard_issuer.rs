//! The API against a standards-based issuer that is not ours: panva's
//! oidc-provider, a certified OpenID Provider, run by tests/oidc/provider.mjs,
//! with oauth4webapi, a certified client, asking it for tokens and making the
//! DPoP proofs. The issuer, its keys and where it publishes them, its
//! discovery document, its tokens and the client's proofs are all theirs;
//! only the assertions are ours. `scripts/install-test-tools.sh` installs
//! both (the versions pinned by tests/oidc/package-lock.json).
//!
//! The provider is set up as docs/issuers-and-keys.md ("Standard OpenID
//! Providers") says: issuer `http://127.0.0.1:PORT` with no trailing slash,
//! an RS256 key, a client_credentials client `machine`, resource indicators
//! answering JWT access tokens (RFC 9068) for our audience, and DPoP.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::dpop::{ClientKey, send};
use crate::helpers::{
    AUDIENCE, Backend, Env, NodeProcess, Reply, TestApp, eventually, read, start_node_script,
};

/// The scopes the provider's resource server grants: every permission the API knows.
const SCOPES: &str = "read:messages read:admin-messages";

/// The provider, and the app trusting it (and nothing else).
struct Setup {
    provider: NodeProcess,
    app: TestApp,
}

impl Setup {
    /// Starts the provider, then the app with `AUTH0_ISSUER` its issuer
    /// exactly and no `AUTH0_JWKS_URL` (the keys are found as a deployment
    /// finds them), with `env` over that; waits for `/readyz`.
    async fn start(env: Env<'_>) -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        assert!(
            dir.join("node_modules/oidc-provider").exists() && dir.join("node_modules/oauth4webapi").exists(),
            "needs oidc-provider and oauth4webapi in tests/oidc/node_modules: \
             run `bash scripts/install-test-tools.sh` (what .ci/run does)"
        );
        let provider = start_node_script(&dir.join("provider.mjs"), &[("AUDIENCE", AUDIENCE)]);
        let issuer = provider.get("issuer");
        assert!(!issuer.ends_with('/'), "{issuer}");
        let app = TestApp::builder(Backend::Sqlite)
            .trusting(&[issuer])
            .env(&[("AUTH0_AUDIENCE", AUDIENCE)])
            .env(env)
            .spawn()
            .await;
        let setup = Self { provider, app };
        let ready = eventually(Duration::from_secs(10), async || {
            setup.readyz().await.status == 200
        });
        assert!(
            ready.await,
            "{:?}\n{}",
            setup.readyz().await,
            setup.provider.log.read()
        );
        setup
    }

    async fn readyz(&self) -> Reply {
        let url = format!("{}/readyz", self.app.address);
        read(self.app.client.get(url).send().await.unwrap()).await
    }

    fn issuer(&self) -> &str {
        self.provider.get("issuer")
    }

    /// POSTs `body` to the client service's `path`; its answer must be 200.
    async fn client(&self, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.provider.get("client"));
        let request = self
            .app
            .client
            .post(url)
            .header("content-type", "application/json");
        let reply = read(request.body(body.to_string()).send().await.unwrap()).await;
        assert_eq!(
            reply.status,
            200,
            "{path}: {reply:?}\n{}",
            self.provider.log.read()
        );
        reply.json
    }

    /// A client_credentials access token for `resource` with `scope`,
    /// DPoP-bound to the client's key when `dpop`: the token response.
    async fn token(&self, scope: &str, resource: &str, dpop: bool) -> Value {
        let body = json!({ "scope": scope, "resource": resource, "dpop": dpop });
        self.client("/token", body).await
    }

    /// A Bearer access token for our audience with `scope`.
    async fn bearer(&self, scope: &str) -> String {
        let response = self.token(scope, AUDIENCE, false).await;
        assert_eq!(response["token_type"].as_str().unwrap().to_lowercase(), "bearer");
        response["access_token"].as_str().unwrap().to_owned()
    }

    /// `GET path` by the client with `token` under DPoP and a fresh proof
    /// (once more with the API's nonce when it asks for one): the API's
    /// last status and body, the last proof sent, and how many nonces
    /// were asked for.
    async fn dpop_call(&self, path: &str, token: &str) -> DpopCall {
        let url = format!("{}{path}", self.app.address);
        let answer = self
            .client("/call", json!({ "url": url, "access_token": token }))
            .await;
        DpopCall {
            status: answer["status"].as_u64().unwrap(),
            proof: answer["proof"].as_str().unwrap().to_owned(),
            nonce_retries: answer["nonce_retries"].as_u64().unwrap(),
            body: answer["body"].clone(),
        }
    }

    /// A DPoP-bound access token for our audience with every scope.
    async fn dpop_token(&self) -> String {
        let response = self.token(SCOPES, AUDIENCE, true).await;
        assert_eq!(response["token_type"].as_str().unwrap().to_lowercase(), "dpop");
        response["access_token"].as_str().unwrap().to_owned()
    }
}

/// What the client's DPoP request got.
#[derive(Debug)]
struct DpopCall {
    status: u64,
    body: Value,
    proof: String,
    nonce_retries: u64,
}

/// The JOSE header and the claims of a compact JWT.
fn decode(token: &str) -> (Value, Value) {
    let part = |n: usize| {
        let bytes = URL_SAFE_NO_PAD.decode(token.split('.').nth(n).unwrap()).unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap()
    };
    (part(0), part(1))
}

/// A 401 `code` whose description says `says`.
#[track_caller]
fn assert_refused(reply: &Reply, code: &str, says: &str) {
    assert_eq!(
        (reply.status, reply.json["error"].as_str()),
        (401, Some(code)),
        "{reply:?}"
    );
    let description = reply.json["error_description"].as_str().unwrap();
    assert!(description.contains(says), "{says:?}: {reply:?}");
}

/// The provider's keys are found through OpenID discovery (it publishes
/// them at `/jwks`; `/.well-known/jwks.json` answers 404) for an issuer
/// spelled as the provider spells it, without a trailing slash, and
/// `/readyz` reports that issuer; the API's protected resource metadata
/// leads oauth4webapi to the provider. Then: the provider's ID token and its
/// access token for another resource are refused and leave no users row; its
/// client_credentials access token for our audience is an RFC 9068 one for
/// the client itself (`sub` is `client_id`), which the default
/// `PERMISSIONS_FROM=auto` takes as a machine token whose `scope` grants
/// permissions: both scoped routes answer 200, and without
/// `read:admin-messages` the admin route answers 403 `insufficient_scope`.
/// The client has one users row, under this issuer.
#[actix_web::test]
#[ignore = "needs node deps (installed by scripts/install-test-tools.sh)"]
async fn a_certified_providers_client_credentials_tokens_grant_their_scope() {
    let setup = Setup::start(&[]).await;
    let app = &setup.app;
    let issuer = setup.issuer();
    assert_eq!(setup.readyz().await.json["issuers"][issuer], "ok");
    // Where the provider publishes its keys: not where Auth0 does.
    let get = |path: &str| app.client.get(format!("{issuer}{path}")).send();
    assert_eq!(get("/.well-known/jwks.json").await.unwrap().status(), 404);
    let discovery = read(get("/.well-known/openid-configuration").await.unwrap()).await;
    assert_eq!(discovery.json["issuer"], issuer);
    assert_eq!(discovery.json["jwks_uri"], format!("{issuer}/jwks"));

    // A certified client reads the API's RFC 9728 metadata and finds the
    // provider through it: `authorization_servers` names the issuer as the
    // provider's discovery document does.
    let metadata = format!("{}/.well-known/oauth-protected-resource", app.address);
    let found = setup
        .client("/discover", json!({ "url": metadata, "resource": AUDIENCE }))
        .await;
    assert_eq!(found["issuer"], issuer, "{found}");
    assert_eq!(found["token_endpoint"], format!("{issuer}/token"), "{found}");

    // Hostile first: tokens the provider signed, but not for this API.
    let other = setup.token(SCOPES, "https://other.test.example", false).await;
    let other = other["access_token"].as_str().unwrap();
    assert_eq!(decode(other).1["aud"], "https://other.test.example");
    assert_refused(
        &app.get_as("/api/private", other).await,
        "invalid_token",
        "audience",
    );
    let id_token = setup.provider.get("id_token");
    let (_, id_claims) = decode(id_token);
    assert_eq!(
        (&id_claims["iss"], &id_claims["aud"]),
        (&json!(issuer), &json!("web"))
    );
    assert_refused(
        &app.get_as("/api/private", id_token).await,
        "invalid_token",
        "audience",
    );

    let token = setup.bearer(SCOPES).await;
    let (header, claims) = decode(&token);
    assert_eq!(header["typ"], "at+jwt", "{header}");
    assert_eq!(header["alg"], "RS256", "{header}");
    assert_eq!(claims["iss"], issuer, "{claims}");
    assert_eq!(claims["aud"], AUDIENCE, "{claims}");
    assert_eq!(claims["sub"], setup.provider.get("client_id"), "{claims}");
    assert_eq!(claims["client_id"], claims["sub"], "{claims}");
    assert_eq!(claims["scope"], SCOPES, "{claims}");
    assert!(claims["jti"].is_string() && claims["iat"].is_u64(), "{claims}");
    assert!(
        claims.get("permissions").is_none() && claims.get("gty").is_none(),
        "{claims}"
    );
    for path in ["/api/private", "/api/private-scoped", "/api/messages/admin"] {
        let reply = app.get_as(path, &token).await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
    }

    let narrow = setup.bearer("read:messages").await;
    assert_eq!(app.get_as("/api/private-scoped", &narrow).await.status, 200);
    let reply = app.get_as("/api/messages/admin", &narrow).await;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(reply.json["error"], "insufficient_scope", "{reply:?}");

    let users: Vec<_> = app.users().into_iter().map(|u| (u.issuer, u.sub)).collect();
    assert_eq!(users, [(issuer.to_owned(), "machine".to_owned())]);
}

/// The provider's access tokens are RFC 9068 ones (`typ` `at+jwt`,
/// `client_id`, `jti`, `iat`), so `TOKEN_PROFILE=rfc9068`, which refuses
/// anything else, still takes them and their scope; its ID token (`typ`
/// `JWT`, its audience the client) is refused.
#[actix_web::test]
#[ignore = "needs node deps (installed by scripts/install-test-tools.sh)"]
async fn token_profile_rfc9068_takes_the_providers_access_tokens() {
    let setup = Setup::start(&[("TOKEN_PROFILE", "rfc9068")]).await;
    let app = &setup.app;
    let id_token = setup.provider.get("id_token");
    assert_refused(
        &app.get_as("/api/private", id_token).await,
        "invalid_token",
        "typ",
    );

    let token = setup.bearer(SCOPES).await;
    for path in ["/api/private", "/api/messages/admin"] {
        let reply = app.get_as(path, &token).await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
    }
    let narrow = setup.bearer("read:messages").await;
    let reply = app.get_as("/api/messages/admin", &narrow).await;
    assert_eq!(
        (reply.status, &reply.json["error"]),
        (403, &json!("insufficient_scope"))
    );
}

/// A DPoP-bound token from the provider (`cnf.jkt`, the thumbprint of the
/// client's key, requested with oauth4webapi's proof at the token
/// endpoint) is refused as Bearer and with a proof by another key, is
/// accepted with the client's own proofs (oauth4webapi's, not ours), and a
/// proof it sent once is refused when replayed.
#[actix_web::test]
#[ignore = "needs node deps (installed by scripts/install-test-tools.sh)"]
async fn a_dpop_bound_token_from_the_provider_needs_the_clients_proof() {
    let setup = Setup::start(&[]).await;
    let app = &setup.app;
    let token = &setup.dpop_token().await;
    let (header, claims) = decode(token);
    assert_eq!(header["typ"], "at+jwt");
    assert!(claims["cnf"]["jkt"].is_string(), "{claims}");

    // Hostile first: the token without its key.
    assert_refused(&app.get_as("/api/private", token).await, "invalid_token", "DPoP");
    let url = format!("{}/api/private", app.address);
    let stranger = ClientKey::es256().proof("GET", &url, token);
    let scheme = format!("DPoP {token}");
    let reply = send(app, "/api/private", Some(&scheme), &[&stranger]).await;
    assert_refused(&reply, "invalid_token", "bound to another key");

    let first = setup.dpop_call("/api/private", token).await;
    assert_eq!((first.status, first.nonce_retries), (200, 0), "{first:?}");
    let admin = setup.dpop_call("/api/messages/admin", token).await;
    assert_eq!((admin.status, admin.nonce_retries), (200, 0), "{admin:?}");
    assert_eq!(admin.body["text"], "This is an admin message.");

    let reply = send(app, "/api/private", Some(&scheme), &[&first.proof]).await;
    assert_refused(&reply, "invalid_dpop_proof", "replayed");
    assert_eq!(app.users().len(), 1);
}

/// With server nonces on (`DPOP_NONCE_SECRET`), the client's first proof,
/// which has none, is answered 401 `use_dpop_nonce` with a `DPoP-Nonce`,
/// and oauth4webapi, doing as its documentation says, sends the request
/// again with that nonce and is answered 200.
#[actix_web::test]
#[ignore = "needs node deps (installed by scripts/install-test-tools.sh)"]
async fn the_certified_client_meets_the_apis_dpop_nonce() {
    let secret = "a-dpop-nonce-secret-of-at-least-32-bytes";
    let setup = Setup::start(&[("DPOP_NONCE_SECRET", secret)]).await;
    let token = setup.dpop_token().await;
    let call = setup.dpop_call("/api/messages/admin", &token).await;
    assert_eq!((call.status, call.nonce_retries), (200, 1), "{call:?}");
    assert_eq!(call.body["text"], "This is an admin message.");
    let (_, claims) = decode(&call.proof);
    assert!(claims["nonce"].is_string(), "{claims}");
}
