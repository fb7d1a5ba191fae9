//! The test harness: a local issuer publishing a JWKS, and the real app
//! started on port 0 against it with a temporary SQLite file.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_auth0_api::config::Settings;
use actix_auth0_api::db::{self, DbSettings, User, UserStore};
use actix_auth0_api::signing::{SigningKey, jwks};
use actix_auth0_api::startup::Application;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

/// The audience the test app accepts.
pub const AUDIENCE: &str = "https://api.test.example";

/// A key shared by all tests: RSA generation is the slowest step.
pub fn shared_key(name: &str) -> Arc<SigningKey> {
    static KEYS: OnceLock<Mutex<HashMap<String, Arc<SigningKey>>>> = OnceLock::new();
    let mut keys = KEYS.get_or_init(Default::default).lock().unwrap();
    Arc::clone(
        keys.entry(name.to_owned())
            .or_insert_with(|| Arc::new(SigningKey::generate(name).unwrap())),
    )
}

/// What the local issuer serves; tests change it while the app runs.
#[derive(Clone)]
struct IssuerState {
    /// The body served (a JWKS, or anything a test wants to try).
    body: String,
    status: u16,
    cache_control: Option<String>,
    delay: Duration,
    /// Send the body in 64 KiB chunks with no `Content-Length`.
    chunked: bool,
}

/// A local HTTP server publishing a JWKS at `/.well-known/jwks.json`.
pub struct TestIssuer {
    /// `http://127.0.0.1:PORT/`: the `iss` tokens carry.
    pub issuer: String,
    state: Arc<Mutex<IssuerState>>,
    fetches: Arc<AtomicUsize>,
}

impl TestIssuer {
    /// Starts an issuer publishing `keys`.
    pub fn start(keys: &[&SigningKey]) -> Self {
        let state = Arc::new(Mutex::new(IssuerState {
            body: jwks(keys.iter().copied()).to_string(),
            status: 200,
            cache_control: None,
            delay: Duration::ZERO,
            chunked: false,
        }));
        let fetches = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let issuer = format!("http://127.0.0.1:{}/", listener.local_addr().unwrap().port());
        let (served_state, served_fetches) = (Arc::clone(&state), Arc::clone(&fetches));
        let server = HttpServer::new(move || {
            let (state, fetches) = (Arc::clone(&served_state), Arc::clone(&served_fetches));
            App::new().route(
                "/.well-known/jwks.json",
                web::get().to(move || {
                    let (state, fetches) = (Arc::clone(&state), Arc::clone(&fetches));
                    async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        let state = state.lock().unwrap().clone();
                        tokio::time::sleep(state.delay).await;
                        let mut response =
                            HttpResponse::build(actix_web::http::StatusCode::from_u16(state.status).unwrap());
                        if let Some(cache_control) = state.cache_control {
                            response.insert_header(("Cache-Control", cache_control));
                        }
                        response.content_type("application/json");
                        if state.chunked {
                            let chunks: Vec<Result<web::Bytes, actix_web::Error>> = state
                                .body
                                .into_bytes()
                                .chunks(64 * 1024)
                                .map(|chunk| Ok(web::Bytes::copy_from_slice(chunk)))
                                .collect();
                            response.streaming(futures_util::stream::iter(chunks))
                        } else {
                            response.body(state.body)
                        }
                    }
                }),
            )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self {
            issuer,
            state,
            fetches,
        }
    }

    /// Publishes `keys` instead of the current set.
    pub fn publish(&self, keys: &[&SigningKey]) {
        self.serve_body(jwks(keys.iter().copied()).to_string());
    }

    /// Serves `body` as the JWKS document, whatever it is.
    pub fn serve_body(&self, body: String) {
        self.state.lock().unwrap().body = body;
    }

    /// Sends `Cache-Control: value` with the JWKS.
    pub fn set_cache_control(&self, value: &str) {
        self.state.lock().unwrap().cache_control = Some(value.to_owned());
    }

    /// Sends the body in chunks, without announcing its length.
    pub fn set_chunked(&self, chunked: bool) {
        self.state.lock().unwrap().chunked = chunked;
    }

    /// Answers only after `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// Makes the JWKS endpoint answer with `status`.
    pub fn set_status(&self, status: u16) {
        self.state.lock().unwrap().status = status;
    }

    /// How many times the JWKS was fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Standard claims for `sub`, valid for an hour, for this issuer and the
    /// test audience.
    pub fn claims(&self, sub: &str) -> Value {
        let now = now();
        json!({ "iss": self.issuer, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 3600 })
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A fresh database on the machine's PostgreSQL.
    Postgres,
}

/// Where PostgreSQL tests create their databases (`TEST_POSTGRES_URL`).
fn postgres_server() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// `Some(Backend::Postgres)` when PostgreSQL is reachable. Otherwise the
/// test is skipped with a printed reason, unless `CI` is set: then it fails.
pub fn postgres() -> Option<Backend> {
    use diesel::Connection;
    static REACHABLE: OnceLock<Result<(), String>> = OnceLock::new();
    let reachable = REACHABLE.get_or_init(|| {
        diesel::PgConnection::establish(&format!("{}/postgres", postgres_server()))
            .map(drop)
            .map_err(|e| e.to_string())
    });
    match reachable {
        Ok(()) => Some(Backend::Postgres),
        Err(why) if std::env::var("CI").is_ok_and(|ci| ci == "true" || ci == "1") => {
            panic!("CI is set but PostgreSQL is unreachable: {why}")
        }
        Err(why) => {
            // Once, and past the test harness's capture (which hides the
            // output of passing tests), so that the skip is seen.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                let line = format!(
                    "PostgreSQL tests skipped: unreachable at {} ({why}); set CI=true to make them fail instead\n",
                    postgres_server()
                );
                let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            });
            None
        }
    }
}

/// A database that exists for one test and is dropped afterwards.
pub enum TestDatabase {
    /// A SQLite file in a temporary folder.
    Sqlite(tempfile::TempDir),
    /// A database on the PostgreSQL server.
    Postgres(String),
}

impl TestDatabase {
    /// Creates an empty database.
    pub fn create(backend: Backend) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        match backend {
            Backend::Sqlite => Self::Sqlite(tempfile::tempdir().unwrap()),
            Backend::Postgres => {
                let name = format!(
                    "actix_auth0_api_test_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst),
                    now() % 100_000
                );
                postgres_admin(&format!("CREATE DATABASE {name}"));
                Self::Postgres(name)
            }
        }
    }

    /// The PostgreSQL database's name.
    pub fn postgres_name(&self) -> &str {
        match self {
            Self::Postgres(name) => name,
            Self::Sqlite(_) => panic!("not a PostgreSQL database"),
        }
    }

    /// The `DATABASE_URL` of this database.
    pub fn url(&self) -> String {
        match self {
            Self::Sqlite(dir) => dir.path().join("users.db").to_string_lossy().into_owned(),
            Self::Postgres(name) => format!("{}/{name}", postgres_server()),
        }
    }
}

/// Runs `sql` on the PostgreSQL server's maintenance database.
pub fn postgres_admin(sql: &str) {
    use diesel::{Connection, RunQueryDsl};
    let mut admin = diesel::PgConnection::establish(&format!("{}/postgres", postgres_server())).unwrap();
    diesel::sql_query(sql).execute(&mut admin).unwrap();
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Self::Postgres(name) = self {
            postgres_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// The running app, its issuer and its database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The issuer the app trusts.
    pub issuer: TestIssuer,
    /// A plain HTTP client.
    pub client: reqwest::Client,
    users: UserStore,
    /// The app's database (dropped with the app).
    pub database: TestDatabase,
}

/// Overrides of the test app's environment.
pub type Env<'a> = &'a [(&'a str, &'a str)];

/// Starts the app on `backend` against a fresh issuer publishing the shared
/// key `main`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, TestIssuer::start(&[&shared_key("main")]), &[]).await
}

/// Starts the app on `backend` against `issuer`, with extra environment
/// `overrides`.
pub async fn spawn_app_with(backend: Backend, issuer: TestIssuer, overrides: Env<'_>) -> TestApp {
    let database = TestDatabase::create(backend);
    let jwks_url = format!("{}.well-known/jwks.json", issuer.issuer);
    let mut env: HashMap<&str, String> = HashMap::from([
        ("AUTH0_ISSUER", issuer.issuer.clone()),
        ("AUTH0_AUDIENCE", AUDIENCE.to_owned()),
        ("AUTH0_JWKS_URL", jwks_url),
        ("DATABASE_URL", database.url()),
        ("PORT", "0".to_owned()),
    ]);
    env.extend(overrides.iter().map(|(k, v)| (*k, v.to_string())));
    let settings = Settings::from_lookup(|name| env.get(name).cloned()).expect("test settings");
    let app = Application::build(settings).await.expect("app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        issuer,
        client: reqwest::Client::new(),
        users: UserStore::new(db::connect(&DbSettings::new(database.url())).unwrap()),
        database,
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
        self.users.list().unwrap()
    }
}

/// Every row of the users table at `database_url`, oldest first.
pub fn users_in(database_url: &str) -> Vec<User> {
    UserStore::new(db::connect(&DbSettings::new(database_url)).unwrap())
        .list()
        .unwrap()
}

/// Signs `claims` merged with `extra` (a `null` value removes the claim).
pub fn sign_with(key: &SigningKey, mut claims: Value, extra: Value) -> String {
    for (name, value) in extra.as_object().cloned().unwrap_or_default() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(&name);
        } else {
            claims[name] = value;
        }
    }
    key.sign(&claims).unwrap()
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

/// Waits up to two seconds for `condition`.
pub async fn eventually(condition: impl FnMut() -> bool) -> bool {
    eventually_for(Duration::from_secs(2), condition).await
}

/// Waits up to `limit` for `condition`.
pub async fn eventually_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

/// Runs each listed `async fn name(backend: Backend)` as two tests,
/// `sqlite::name` and `postgres::name`: one test body, two backends.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                async fn $name() {
                    if let Some(backend) = $crate::helpers::postgres() {
                        super::$name(backend).await
                    }
                }
            )*
        }
    };
}

/// A free TCP port on loopback (for processes that bind it themselves).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary running `serve` against `issuer`, killed when dropped.
pub struct ServeProcess {
    /// The process.
    pub child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub address: String,
}

impl ServeProcess {
    /// Starts `serve` on a free port with `database_url`, its log (at
    /// `rust_log`) sent to `stderr`.
    pub fn start(
        issuer: &TestIssuer,
        database_url: &str,
        stderr: std::process::Stdio,
        rust_log: &str,
    ) -> Self {
        let port = free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_actix-auth0-api"))
            .arg("serve")
            .env_clear()
            .env("AUTH0_ISSUER", &issuer.issuer)
            .env("AUTH0_AUDIENCE", AUDIENCE)
            .env(
                "AUTH0_JWKS_URL",
                format!("{}.well-known/jwks.json", issuer.issuer),
            )
            .env("DATABASE_URL", database_url)
            .env("PORT", port.to_string())
            .env("RUST_LOG", rust_log)
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Waits up to ten seconds for `/readyz` to answer 200.
    pub async fn wait_ready(&self, client: &reqwest::Client) {
        for _ in 0..200 {
            let ready = client.get(format!("{}/readyz", self.address)).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} never became ready", self.address);
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
