//! Slow clients: a thousand connections that send one request, then trickle
//! the next head a byte at a time, must neither be answered nor keep the
//! server from a fresh client; each is closed once its request is late.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp, eventually};

const SLOW_CLIENTS: usize = 1000;
const REQUEST: &[u8] = b"GET /api/messages/public HTTP/1.1\r\nHost: api\r\n\r\n";

/// What one slow client saw.
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    /// Its first, complete request was answered 200.
    first_answered: bool,
    /// Anything came back for the head it trickled.
    second_answered: bool,
    /// The server closed the connection (end of stream or reset).
    closed_by_server: bool,
}

/// One slow client: a complete request and its answer, then the next head,
/// a byte every 200 ms, for as long as the server listens (giving up after
/// a minute).
async fn slow_client(address: String) -> Seen {
    let mut seen = Seen::default();
    let Ok(mut stream) = TcpStream::connect(&address).await else {
        return seen;
    };
    if stream.write_all(REQUEST).await.is_err() {
        return seen;
    }
    seen.first_answered = read_answer(&mut stream).await.starts_with(b"HTTP/1.1 200 ");
    let trickled = b"GET /api/messages/public HTTP/1.1\r\nHost: api\r\nX-Slow: ".iter();
    let mut buf = [0u8; 1024];
    for byte in trickled.chain(std::iter::repeat(&b'z')).take(300) {
        if stream.write_all(&[*byte]).await.is_err() {
            seen.closed_by_server = true;
            break;
        }
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => {
                seen.closed_by_server = true;
                break;
            }
            Ok(Ok(_)) => {
                seen.second_answered = true;
                break;
            }
        }
    }
    seen
}

/// Reads one answer's head and its `Content-Length` body.
pub async fn read_answer(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or(0);
            if answer.len() >= end + 4 + length {
                return answer;
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return answer,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
}

#[actix_web::test]
async fn a_thousand_slow_clients_are_cut_off_and_a_fresh_one_is_served() {
    // One worker holding at most 200 connections: the slow clients alone
    // could fill it five times over.
    let app = TestApp::builder(Backend::Sqlite)
        .env(&[
            ("WORKERS", "1"),
            ("MAX_CONNECTIONS", "200"),
            ("REQUEST_HEAD_TIMEOUT_SECS", "1"),
        ])
        .spawn()
        .await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let clients: Vec<_> = (0..SLOW_CLIENTS)
        .map(|_| tokio::spawn(slow_client(address.clone())))
        .collect();

    // With all of them connected or waiting to be, a fresh client is served.
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .get(format!("{}/api/messages/public", app.address))
        .send()
        .await
        .expect("a fresh client is answered while slow clients are attached");
    assert_eq!(fresh.status(), 200);

    let mut seen = Vec::new();
    for client in clients {
        seen.push(client.await.unwrap());
    }
    let expected = Seen {
        first_answered: true,
        second_answered: false,
        closed_by_server: true,
    };
    let wrong: Vec<_> = seen.iter().filter(|seen| **seen != expected).collect();
    assert!(
        wrong.is_empty(),
        "{} of {SLOW_CLIENTS} slow clients: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );

    // And the server is as it was.
    assert!(
        eventually(Duration::from_secs(5), async || {
            app.client
                .get(format!("{}/api/messages/public", app.address))
                .send()
                .await
                .is_ok_and(|reply| reply.status() == 200)
        })
        .await
    );
}
