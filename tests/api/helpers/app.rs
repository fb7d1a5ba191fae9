//! The real app, started in this process on port 0, and its answers.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Backend, TestDatabase, TestIssuer, shared_key, sign_with};
use actix_auth0_api::app::Application;
use actix_auth0_api::config::Settings;
use actix_auth0_api::users::User;
use serde_json::Value;

/// The running app, its issuer and its database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The issuer the app trusts.
    pub issuer: TestIssuer,
    /// A plain HTTP client.
    pub client: reqwest::Client,
    /// The app's database (dropped with the app).
    pub database: TestDatabase,
}

/// Overrides of the test app's environment.
pub type Env<'a> = &'a [(&'a str, &'a str)];

/// Routes a test registers beside the API's.
type ExtraRoutes = Arc<dyn Fn(&mut actix_web::web::ServiceConfig) + Send + Sync>;

/// How to start a [`TestApp`]: `TestApp::builder(backend)`, then what
/// differs from the defaults (a fresh issuer publishing the shared key
/// `main`, a fresh database, no extra environment or routes), then
/// [`spawn`](Self::spawn).
pub struct TestAppBuilder {
    backend: Backend,
    database: Option<TestDatabase>,
    issuer: Option<TestIssuer>,
    trusted: Option<String>,
    env: Vec<(String, String)>,
    routes: Option<ExtraRoutes>,
}

impl TestApp {
    /// A test app on `backend`, as the builder's methods say.
    pub fn builder(backend: Backend) -> TestAppBuilder {
        TestAppBuilder {
            backend,
            database: None,
            issuer: None,
            trusted: None,
            env: Vec::new(),
            routes: None,
        }
    }
}

impl TestAppBuilder {
    /// Trusts `issuer` (and finds its keys at its `.well-known/jwks.json`).
    pub fn issuer(mut self, issuer: TestIssuer) -> Self {
        self.issuer = Some(issuer);
        self
    }

    /// Trusts these issuers, each found by itself (`AUTH0_ISSUER` a list, no
    /// `AUTH0_JWKS_URL`), instead of the test issuer.
    pub fn trusting(mut self, issuers: &[&str]) -> Self {
        self.trusted = Some(issuers.join(","));
        self
    }

    /// Runs on `database` as it is (a database an earlier version made, say).
    pub fn database(mut self, database: TestDatabase) -> Self {
        self.database = Some(database);
        self
    }

    /// Sets these environment variables, over the defaults.
    pub fn env(mut self, overrides: Env<'_>) -> Self {
        self.env.extend(
            overrides
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string())),
        );
        self
    }

    /// Registers `routes` beside the API's, behind the same middleware.
    pub fn routes(
        mut self,
        routes: impl Fn(&mut actix_web::web::ServiceConfig) + Send + Sync + 'static,
    ) -> Self {
        self.routes = Some(Arc::new(routes));
        self
    }

    /// Starts the app in this process, on port 0.
    pub async fn spawn(self) -> TestApp {
        let issuer = match self.issuer {
            Some(issuer) => issuer,
            None => TestIssuer::start(&[&shared_key("main")]).await,
        };
        let database = self
            .database
            .unwrap_or_else(|| TestDatabase::create(self.backend));
        let mut env: HashMap<String, String> = issuer
            .env()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        if let Some(trusted) = self.trusted {
            env.insert("AUTH0_ISSUER".into(), trusted);
            env.remove("AUTH0_JWKS_URL");
        }
        env.insert("DATABASE_URL".into(), database.url());
        env.insert("PORT".into(), "0".into());
        env.extend(self.env);
        let settings = Settings::from_lookup(|name| env.get(name).cloned()).expect("test settings");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let routes = self.routes;
        let more_routes = move |config: &mut actix_web::web::ServiceConfig| {
            if let Some(routes) = &routes {
                routes(config);
            }
        };
        let app = Application::build_on(settings, listener, None, more_routes)
            .await
            .expect("app starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        TestApp {
            address,
            issuer,
            client: reqwest::Client::new(),
            database,
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body parsed as JSON (panics when it is not JSON).
    pub json: Value,
}

impl Reply {
    /// A header as text, or "" when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
    }

    /// The `WWW-Authenticate` challenges without their `resource_metadata`
    /// parameters (the metadata URL, which `docs.rs` checks, is the same
    /// in every challenge).
    pub fn challenges(&self) -> String {
        let mut challenges = self.header("www-authenticate").to_owned();
        while let Some(start) = challenges.find(", resource_metadata=\"") {
            let value = start + ", resource_metadata=\"".len();
            let end = challenges[value..]
                .find('"')
                .map_or(challenges.len(), |end| value + end + 1);
            challenges.replace_range(start..end, "");
        }
        challenges
    }
}

impl TestApp {
    /// `GET path` with the given `Authorization` header values.
    pub async fn get_with(&self, path: &str, authorization: &[&str]) -> Reply {
        let mut request = self.client.get(format!("{}{path}", self.address));
        for value in authorization {
            request = request.header("Authorization", *value);
        }
        read(request.send().await.expect("request sent")).await
    }

    /// `GET path` with `Authorization: Bearer token`.
    pub async fn get_as(&self, path: &str, token: &str) -> Reply {
        self.get_with(path, &[&format!("Bearer {token}")]).await
    }

    /// A token for `sub` signed by the shared key `main`, with `extra` claims
    /// merged over the standard ones (a `null` removes a claim).
    pub fn token(&self, sub: &str, extra: Value) -> String {
        sign_with(&shared_key("main"), self.issuer.claims(sub), extra)
    }

    /// Every row of the users table.
    pub fn users(&self) -> Vec<User> {
        self.database.users()
    }
}

/// Reads a response whose body must be JSON.
pub async fn read(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: body is not JSON: {text:?}"));
    Reply {
        status,
        headers,
        json,
    }
}
