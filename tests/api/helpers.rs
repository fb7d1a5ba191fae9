//! The test harness: a local issuer publishing a JWKS (wiremock), the real
//! app started in-process on port 0 against it, the binary run as a user runs
//! it, and one helper for waiting.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_auth0_api::app::Application;
use actix_auth0_api::config::Settings;
use actix_auth0_api::db::DbSettings;
use actix_auth0_api::dev::{SigningKey, jwks};
use actix_auth0_api::users::{self, User};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

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

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// What the local issuer answers; tests change it while the app runs.
struct Answer {
    body: String,
    status: u16,
    cache_control: Option<String>,
    delay: Duration,
}

/// The JWKS endpoint: answers as `Answer` says now, counting requests.
struct JwksEndpoint {
    answer: Arc<Mutex<Answer>>,
    fetches: Arc<AtomicUsize>,
}

impl Respond for JwksEndpoint {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let answer = self.answer.lock().unwrap();
        let mut response = ResponseTemplate::new(answer.status)
            .set_body_raw(answer.body.clone(), "application/json")
            .set_delay(answer.delay);
        if let Some(cache_control) = &answer.cache_control {
            response = response.insert_header("cache-control", cache_control.as_str());
        }
        response
    }
}

/// A local issuer publishing a JWKS at `/.well-known/jwks.json`.
pub struct TestIssuer {
    /// `http://127.0.0.1:PORT/`: the `iss` tokens carry.
    pub issuer: String,
    answer: Arc<Mutex<Answer>>,
    fetches: Arc<AtomicUsize>,
    _server: MockServer,
}

impl TestIssuer {
    /// Starts an issuer publishing `keys`.
    pub async fn start(keys: &[&SigningKey]) -> Self {
        let server = MockServer::start().await;
        let answer = Arc::new(Mutex::new(Answer {
            body: jwks(keys.iter().copied()).to_string(),
            status: 200,
            cache_control: None,
            delay: Duration::ZERO,
        }));
        let fetches = Arc::new(AtomicUsize::new(0));
        Mock::given(method("GET"))
            .and(path("/.well-known/jwks.json"))
            .respond_with(JwksEndpoint {
                answer: Arc::clone(&answer),
                fetches: Arc::clone(&fetches),
            })
            .mount(&server)
            .await;
        Self {
            issuer: format!("{}/", server.uri()),
            answer,
            fetches,
            _server: server,
        }
    }

    /// Publishes `keys` instead of the current set.
    pub fn publish(&self, keys: &[&SigningKey]) {
        self.serve_body(jwks(keys.iter().copied()).to_string());
    }

    /// Serves `body` as the JWKS document, whatever it is.
    pub fn serve_body(&self, body: String) {
        self.answer.lock().unwrap().body = body;
    }

    /// Sends `Cache-Control: value` with the JWKS.
    pub fn set_cache_control(&self, value: &str) {
        self.answer.lock().unwrap().cache_control = Some(value.to_owned());
    }

    /// Answers only after `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.answer.lock().unwrap().delay = delay;
    }

    /// Makes the JWKS endpoint answer with `status`.
    pub fn set_status(&self, status: u16) {
        self.answer.lock().unwrap().status = status;
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

    /// The environment of a server that trusts this issuer.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AUTH0_ISSUER", self.issuer.clone()),
            ("AUTH0_AUDIENCE", AUDIENCE.to_owned()),
            ("AUTH0_JWKS_URL", format!("{}.well-known/jwks.json", self.issuer)),
        ]
    }
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

/// Runs `sql` on the PostgreSQL server's maintenance database.
pub fn postgres_admin(sql: &str) {
    use diesel::{Connection, RunQueryDsl};
    let url = format!("{}/postgres", postgres_server());
    let mut admin = diesel::PgConnection::establish(&url)
        .unwrap_or_else(|e| panic!("PostgreSQL tests need a server at {url}: {e}"));
    diesel::sql_query(sql).execute(&mut admin).unwrap();
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

    /// Every row of its users table, oldest first.
    pub fn users(&self) -> Vec<User> {
        users::list(&DbSettings::new(self.url())).unwrap()
    }

    /// The `sub` of every row, oldest first.
    pub fn subs(&self) -> Vec<String> {
        self.users().into_iter().map(|u| u.sub).collect()
    }

    /// Runs `sql` (one statement) on this database, as an operator would.
    pub fn execute(&self, sql: &str) {
        use diesel::{Connection, RunQueryDsl};
        match self {
            Self::Sqlite(_) => {
                let mut conn = diesel::SqliteConnection::establish(&self.url()).unwrap();
                diesel::sql_query(sql).execute(&mut conn).unwrap();
            }
            Self::Postgres(_) => {
                let mut conn = diesel::PgConnection::establish(&self.url()).unwrap();
                diesel::sql_query(sql).execute(&mut conn).unwrap();
            }
        };
    }
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

/// Polls `condition` every 20 ms for up to `limit`: the one way tests wait.
pub async fn eventually(limit: Duration, mut condition: impl AsyncFnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition().await
}

/// Runs each listed `async fn name(backend: Backend)` as two tests,
/// `sqlite::name` and `postgres::name`: one test body, two backends. The
/// PostgreSQL ones need the machine's server, so they are ignored unless
/// asked for (`cargo test -- --include-ignored`, as CI does).
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
                #[ignore = "needs PostgreSQL at 127.0.0.1:5432 (TEST_POSTGRES_URL)"]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
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

/// The binary as a user runs it: a clean environment plus what is given, in
/// a folder of the test's own. The one way tests launch it.
pub struct Binary {
    command: Command,
    _dir: Option<tempfile::TempDir>,
}

/// The binary, in a new temporary folder.
pub fn binary() -> Binary {
    let dir = tempfile::tempdir().unwrap();
    let mut binary = binary_in(dir.path());
    binary._dir = Some(dir);
    binary
}

/// The binary, in `dir`.
pub fn binary_in(dir: &Path) -> Binary {
    let mut command = Command::new(env!("CARGO_BIN_EXE_actix-auth0-api"));
    command.current_dir(dir).env_clear();
    Binary { command, _dir: None }
}

impl Binary {
    /// Adds arguments.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.command.args(args);
        self
    }

    /// Sets environment variables.
    pub fn envs<K: AsRef<std::ffi::OsStr>, V: AsRef<std::ffi::OsStr>>(
        mut self,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.command.envs(env);
        self
    }

    /// Runs it to its end.
    pub fn output(mut self) -> Output {
        self.command.output().unwrap()
    }

    /// Runs it to its end; its exit code and standard error.
    pub fn code_and_stderr(self) -> (Option<i32>, String) {
        let output = self.output();
        (output.status.code(), String::from_utf8(output.stderr).unwrap())
    }

    /// Runs it to its end; its standard output (it must succeed).
    pub fn stdout(self) -> String {
        let output = self.output();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    }

    /// Starts it; it is killed when the returned process is dropped.
    pub fn spawn(mut self, stdout: Stdio, stderr: Stdio) -> Process {
        let child = self.command.stdout(stdout).stderr(stderr).spawn().unwrap();
        Process {
            child,
            _dir: self._dir,
        }
    }
}

/// A running binary, killed when dropped.
pub struct Process {
    /// The process.
    pub child: Child,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serve` against `issuer` on a free port, with `database_url`, its log (at
/// `rust_log`) sent to `stderr`.
pub struct ServeProcess {
    /// The process.
    pub process: Process,
    /// `http://127.0.0.1:PORT`.
    pub address: String,
}

impl ServeProcess {
    /// Starts it; [`wait_ready`](Self::wait_ready) waits for it.
    pub fn start(issuer: &TestIssuer, database_url: &str, stderr: Stdio, rust_log: &str) -> Self {
        Self::start_with(issuer, database_url, stderr, rust_log, &[])
    }

    /// Starts it with more environment variables.
    pub fn start_with(
        issuer: &TestIssuer,
        database_url: &str,
        stderr: Stdio,
        rust_log: &str,
        env: Env<'_>,
    ) -> Self {
        let port = free_port();
        let process = binary()
            .args(&["serve"])
            .envs(issuer.env())
            .envs([
                ("DATABASE_URL", database_url),
                ("PORT", &port.to_string()),
                ("RUST_LOG", rust_log),
            ])
            .envs(env.iter().copied())
            .spawn(Stdio::null(), stderr);
        Self {
            process,
            address: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Waits up to ten seconds for `/readyz` to answer 200.
    pub async fn wait_ready(&self, client: &reqwest::Client) {
        wait_ready(&self.address, client).await;
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }
}

/// Waits up to ten seconds for `/readyz` at `address` to answer 200.
pub async fn wait_ready(address: &str, client: &reqwest::Client) {
    let url = format!("{address}/readyz");
    let ready = eventually(Duration::from_secs(10), async || {
        client.get(&url).send().await.is_ok_and(|r| r.status() == 200)
    });
    assert!(ready.await, "{address} never became ready");
}

/// A `dev` server started as a user starts it, killed when dropped.
pub struct DevServer {
    _process: Process,
    /// The three tokens its banner prints: no permissions, `read:messages`,
    /// `read:admin-messages`.
    pub tokens: Vec<String>,
    /// `http://127.0.0.1:PORT`.
    pub address: String,
}

/// Starts `dev` in `dir` on `port` and reads the three tokens its banner prints.
pub fn start_dev(dir: &Path, port: &str) -> DevServer {
    use std::io::BufRead;
    // A proxy that does not exist: the keys of this machine never go through one.
    let proxy = "http://127.0.0.1:9";
    let env = [
        ("PORT", port),
        ("http_proxy", proxy),
        ("HTTP_PROXY", proxy),
        ("ALL_PROXY", proxy),
    ];
    let mut process = binary_in(dir)
        .envs(env)
        .args(&["dev"])
        .spawn(Stdio::piped(), Stdio::null());
    let stdout = process.child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut server = DevServer {
        _process: process,
        tokens: Vec::new(),
        address: format!("http://127.0.0.1:{port}"),
    };
    while server.tokens.len() < 3 {
        let line = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("dev prints its banner");
        if let Some(rest) = line.strip_prefix("curl -H \"Authorization: Bearer ") {
            server.tokens.push(rest.split('"').next().unwrap().to_owned());
        }
    }
    server
}

/// A log file in a temporary folder, for a process's standard error.
pub struct LogFile {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl LogFile {
    /// An empty log file.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.log");
        Self { path, _dir: dir }
    }

    /// A handle to write it from a process.
    pub fn stdio(&self) -> Stdio {
        Stdio::from(std::fs::File::create(&self.path).unwrap())
    }

    /// What was written so far.
    pub fn read(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap()
    }
}
