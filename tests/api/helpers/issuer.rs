//! A local issuer publishing a JWKS (wiremock), its keys and the tokens it signs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_auth0_api::dev::{SigningKey, jwks};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
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

/// Signs `claims` merged with `extra` (see [`merged`]).
pub fn sign_with(key: &SigningKey, claims: Value, extra: Value) -> String {
    key.sign(&merged(claims, extra)).unwrap()
}

/// `claims` with the members of `extra` set over them; a `null` value
/// removes the claim.
pub fn merged(mut claims: Value, extra: Value) -> Value {
    for (name, value) in extra.as_object().cloned().unwrap_or_default() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(&name);
        } else {
            claims[name] = value;
        }
    }
    claims
}

/// A token with the JOSE `header` and `claims` written as given, signed
/// RS256 with `key`: what a test needs that jsonwebtoken's header type
/// cannot say (a `typ` of its own, `crit`, members of any shape).
pub fn sign_raw(key: &EncodingKey, header: Value, claims: &Value) -> String {
    let b64 = |json: String| URL_SAFE_NO_PAD.encode(json);
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), key, Algorithm::RS256).unwrap();
    format!("{input}.{signature}")
}
