//! A drain, as a load balancer and its clients see it: SIGTERM turns
//! `/readyz` to 503 at once while requests are still served, then the
//! listener closes; every request the server took is answered (and its row
//! committed), idle connections are closed rather than waited for, and the
//! process exits 0 within `SHUTDOWN_GRACE_SECS`, even when a request cannot
//! finish.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{
    Backend, Env, LogFile, ServeProcess, TestDatabase, TestIssuer, eventually, read, shared_key, sign_with,
};
use crate::slow_clients::read_answer;

/// The grace of most tests here: the listener closes 2 s after the signal
/// (a third of it), and requests in flight then have 4 s.
const GRACE: &str = "6";

/// A `serve` process, ready, with what it was started with.
struct Drained {
    issuer: TestIssuer,
    database: TestDatabase,
    log: LogFile,
    server: ServeProcess,
}

impl Drained {
    /// `serve` on `backend`, logging at `info`, with `env`.
    async fn start(backend: Backend, env: Env<'_>) -> Self {
        let issuer = TestIssuer::start(&[&shared_key("main")]).await;
        let database = TestDatabase::create(backend);
        let log = LogFile::new();
        let server = ServeProcess::start_with(&issuer, &database.url(), log.stdio(), "info", env);
        server.wait_ready(&reqwest::Client::new()).await;
        Self {
            issuer,
            database,
            log,
            server,
        }
    }

    /// Sends it SIGTERM (or `INT`...).
    fn signal(&self, name: &str) {
        self.server.signal(name);
    }

    /// Its exit code once it has exited (`None`: still running after half a
    /// minute, or killed), and its log.
    async fn exit(&mut self) -> (Option<i32>, String) {
        let exit = self.server.exit_within(Duration::from_secs(30)).await;
        (exit.and_then(|exit| exit.code()), self.log.read())
    }
}

/// What one request of the stream got.
#[derive(Debug)]
struct Outcome {
    /// The path asked for.
    path: &'static str,
    /// The first-sight user it was sent as, if any.
    sub: Option<String>,
    /// Sent after the signal.
    after_signal: bool,
    /// Its status and body, or the error of a request that got no answer.
    answer: Result<(u16, serde_json::Value), reqwest::Error>,
}

/// Where the clients of a stream stand.
#[derive(Default)]
struct Stream {
    /// The signal has been sent.
    signalled: AtomicBool,
    /// Time to stop sending.
    done: AtomicBool,
    /// How many requests got an answer.
    answered: AtomicUsize,
}

/// Sends requests one after another until the stream is done: the public
/// route, `/api/me` as a user never seen before (`claims`, with a `sub` of
/// its own), `/readyz`, in turn.
async fn client(id: usize, address: String, claims: serde_json::Value, stream: Arc<Stream>) -> Vec<Outcome> {
    let client = reqwest::Client::new();
    let mut outcomes = Vec::new();
    for i in 0.. {
        if stream.done.load(Ordering::Acquire) {
            break;
        }
        let after_signal = stream.signalled.load(Ordering::Acquire);
        let (path, sub) = match i % 3 {
            0 => ("/api/public", None),
            1 => ("/api/me", Some(format!("auth0|drain-{id}-{i}"))),
            _ => ("/readyz", None),
        };
        let mut request = client.get(format!("{address}{path}"));
        if let Some(sub) = &sub {
            let token = sign_with(&shared_key("main"), claims.clone(), json!({ "sub": sub }));
            request = request.bearer_auth(token);
        }
        let answer = match request.send().await {
            Ok(response) => {
                let reply = read(response).await;
                stream.answered.fetch_add(1, Ordering::AcqRel);
                Ok((reply.status, reply.json))
            }
            Err(err) => Err(err),
        };
        let refused = answer.as_ref().is_err_and(reqwest::Error::is_connect);
        outcomes.push(Outcome {
            path,
            sub,
            after_signal,
            answer,
        });
        if refused {
            // The listener has closed: no need to knock as fast as possible.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    outcomes
}

/// Four clients send a steady stream of requests (public, first sights,
/// probes) through a drain: every answer is right, no request the server
/// took fails, `/readyz` says `draining`, the process exits 0 within the
/// grace, and each user answered 200 has exactly one row.
async fn a_stream_of_requests_through_a_drain_loses_none(backend: Backend) {
    let mut drained = Drained::start(backend, &[("SHUTDOWN_GRACE_SECS", GRACE)]).await;

    let stream = Arc::new(Stream::default());
    let clients: Vec<_> = (0..4)
        .map(|id| {
            let claims = drained.issuer.claims("");
            let address = drained.server.address.clone();
            tokio::spawn(client(id, address, claims, Arc::clone(&stream)))
        })
        .collect();
    // Some answers first, so that the stream is flowing when the signal comes.
    let flowing = eventually(Duration::from_secs(30), async || {
        stream.answered.load(Ordering::Acquire) >= 40
    });
    assert!(flowing.await, "the stream never got going");
    drained.signal("TERM");
    stream.signalled.store(true, Ordering::Release);
    let (exit, log) = drained.exit().await;
    stream.done.store(true, Ordering::Release);
    let mut outcomes = Vec::new();
    for client in clients {
        outcomes.extend(client.await.unwrap());
    }

    assert_eq!(exit, Some(0), "{log}");
    assert!(log.contains("SIGTERM: draining, at most 6 s"), "{log}");
    assert!(log.contains("drained in"), "{log}");
    assert!(!log.contains("is over"), "nothing was cut off:\n{log}");
    assert!(!log.contains("had not closed"), "the database was closed:\n{log}");

    let mut accepted = HashSet::new();
    let mut draining_seen = false;
    let mut served_after_signal = 0;
    for outcome in &outcomes {
        match (&outcome.answer, outcome.path) {
            (Ok((200, body)), "/readyz") => assert_eq!(body["status"], "ok", "{outcome:?}"),
            (Ok((503, body)), "/readyz") => {
                assert_eq!(body["status"], "draining", "{outcome:?}");
                draining_seen = true;
            }
            (Ok((200, body)), "/api/me") => {
                let sub = outcome.sub.clone().unwrap();
                assert_eq!(body["sub"], sub.as_str(), "{outcome:?}");
                accepted.insert(sub);
                served_after_signal += usize::from(outcome.after_signal);
            }
            (Ok((200, _)), "/api/public") => {}
            (Ok(_), _) => panic!("a wrong answer during the drain: {outcome:?}"),
            // Not taken: refused once the listener closed, or reset in its
            // backlog. A request the server took and then dropped would
            // leave a row without a 200, which the check below refuses.
            (Err(err), _) if outcome.after_signal && (err.is_connect() || err.is_request()) => {}
            (Err(err), _) => panic!("{}: {err:?}", outcome.path),
        }
    }
    assert!(draining_seen, "/readyz never said draining: {outcomes:?}");
    assert!(
        served_after_signal > 0,
        "no first sight was served after the signal (the listener closes 2 s later)"
    );
    let rows = drained.database.subs();
    assert_eq!(
        rows.iter().cloned().collect::<HashSet<_>>(),
        accepted,
        "every user answered 200 has a row, and no other"
    );
    assert_eq!(rows.len(), accepted.len(), "one row each");
}

on_both_backends!(a_stream_of_requests_through_a_drain_loses_none);

/// Connects to `address` (`http://host:port`).
async fn connect(address: &str) -> std::io::Result<TcpStream> {
    TcpStream::connect(address.trim_start_matches("http://")).await
}

/// Waits until `address` refuses connections: the listener has closed.
async fn wait_refused(address: &str) {
    let refused = eventually(Duration::from_secs(30), async || connect(address).await.is_err());
    assert!(refused.await, "the listener never closed");
}

const PUBLIC: &[u8] = b"GET /api/public HTTP/1.1\r\nHost: api\r\n\r\n";

/// A connection to `address` that has had one request answered.
async fn used_connection(address: &str) -> TcpStream {
    let mut stream = connect(address).await.unwrap();
    stream.write_all(PUBLIC).await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    stream
}

/// Reads what `stream` sends until it closes it (or resets it, or a minute
/// passes): the end of a connection, as a client sees it.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer)).await;
    answer
}

#[actix_web::test]
async fn a_request_still_arriving_is_answered_and_an_idle_connection_closed() {
    // Idle connections would stay a minute, and a head may take as long.
    let env = [
        ("SHUTDOWN_GRACE_SECS", GRACE),
        ("KEEP_ALIVE_SECS", "60"),
        ("REQUEST_HEAD_TIMEOUT_SECS", "60"),
    ];
    let mut drained = Drained::start(Backend::Sqlite, &env).await;
    let address = drained.server.address.clone();

    // Two connections answered once: one stays idle, the other has sent
    // half its next head. A third, new, has sent nothing (a client's spare).
    let mut idle = used_connection(&address).await;
    let mut arriving = used_connection(&address).await;
    let claims = drained.issuer.claims("auth0|arriving");
    let token = sign_with(&shared_key("main"), claims, json!({}));
    let head = format!("GET /api/me HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer {token}\r\n");
    arriving.write_all(head.as_bytes()).await.unwrap();
    let mut new = connect(&address).await.unwrap();

    drained.signal("TERM");
    wait_refused(&address).await;
    // The idle connections are closed, not left to their minute of
    // keep-alive (or the new one to its minute for a first request).
    assert_eq!(read_to_close(&mut idle).await, b"");
    assert_eq!(read_to_close(&mut new).await, b"");
    // The rest of the head, after the listener closed: answered, and closed.
    arriving.write_all(b"\r\n").await.unwrap();
    let answer = String::from_utf8(read_to_close(&mut arriving).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("\r\nconnection: close\r\n"),
        "{answer}"
    );
    assert!(answer.contains(r#""sub":"auth0|arriving""#), "{answer}");

    let (exit, log) = drained.exit().await;
    assert_eq!(exit, Some(0), "{log}");
    assert!(!log.contains("is over"), "nothing was cut off:\n{log}");
    assert!(!log.contains("had not closed"), "the database was closed:\n{log}");
    assert_eq!(drained.database.subs(), ["auth0|arriving"]);
}

#[actix_web::test]
async fn a_request_that_cannot_finish_is_cut_off_when_the_grace_ends() {
    let env = [("SHUTDOWN_GRACE_SECS", "1"), ("REQUEST_HEAD_TIMEOUT_SECS", "300")];
    let mut drained = Drained::start(Backend::Sqlite, &env).await;
    // A head that never ends: it would hold the drain for five minutes.
    let mut stuck = connect(&drained.server.address).await.unwrap();
    stuck.write_all(&PUBLIC[..PUBLIC.len() - 2]).await.unwrap();

    drained.signal("TERM");
    let (exit, log) = drained.exit().await;
    assert_eq!(exit, Some(0), "{log}");
    assert!(
        log.contains("SHUTDOWN_GRACE_SECS (1 s) is over: cutting off 0 request(s) still in flight"),
        "{log}"
    );
    assert!(log.contains("drained in"), "{log}");
    assert_eq!(read_to_close(&mut stuck).await, b"", "closed without an answer");
}

#[actix_web::test]
async fn a_second_signal_stops_at_once() {
    // A drain that would take an hour.
    let mut drained = Drained::start(Backend::Sqlite, &[("SHUTDOWN_GRACE_SECS", "3600")]).await;
    drained.signal("TERM");
    let ready = format!("{}/readyz", drained.server.address);
    let draining = eventually(Duration::from_secs(30), async || {
        reqwest::get(&ready).await.is_ok_and(|r| r.status() == 503)
    });
    assert!(draining.await);
    drained.signal("INT");
    let (exit, log) = drained.exit().await;
    assert_eq!(exit, Some(1), "{log}");
    assert!(
        log.contains("error: SIGINT during the drain: stopped at once"),
        "{log}"
    );
}
