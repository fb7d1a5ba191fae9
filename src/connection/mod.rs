//! How the API holds its connections, and the limits a slow or idle client
//! meets: a request must arrive in full within a deadline (not only a
//! connection's first, as actix-http alone would), a response the client
//! stops reading is abandoned, idle keep-alive ends, and each worker holds
//! at most so many connections.
//!
//! The server is actix-web's `HttpServer` taken apart (actix-server's
//! listener, actix-http's HTTP/1.1 service, the app), so that each accepted
//! stream can be wrapped in `TimedStream` before actix-http reads it.

mod framing;
mod timed;

use std::future::ready;
use std::net::TcpListener;
use std::time::Duration;

use actix_http::{HttpService, KeepAlive, Protocol, Request};
use actix_server::{Server, ServerBuilder};
use actix_service::{IntoServiceFactory, ServiceFactory, ServiceFactoryExt, fn_service, map_config};
use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, ServiceResponse};
use actix_web::rt::net::TcpStream;

use self::timed::{TimedStream, Timeouts};

/// The limits every connection is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// How long a request may take to arrive, from its first byte to its
    /// last (and a connection's first request, from the accept).
    pub request_timeout: Duration,
    /// How long a response may wait for the client to read it.
    pub send_timeout: Duration,
    /// How long a connection may stay idle between requests.
    pub keep_alive: Duration,
    /// The most connections one worker holds; beyond them, new ones wait
    /// in the listen backlog. Each may hold up to 128 KiB of request
    /// buffer (actix-http's limit for a head): this bounds that memory.
    pub max_connections: usize,
    /// How long a stop (SIGTERM) may take, its drain included.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(5),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// How long a connection being closed after an unread request body may
/// linger to take the client's last bytes (actix-web's default).
const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves the app `app` makes (one per worker) on `listener`, HTTP/1.1, with
/// `workers` threads (`None`: one per core) and each connection held to
/// `settings`. It stops when told through its handle (signals are
/// [`shutdown`](crate::shutdown)'s); a graceful stop closes the listener and
/// each connection as soon as it has no request under way or arriving.
pub(crate) fn serve<F, I, S, B>(
    listener: TcpListener,
    workers: Option<usize>,
    settings: ConnectionSettings,
    app: F,
) -> std::io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<
            Request,
            Config = AppConfig,
            Response = ServiceResponse<B>,
            Error = Error,
            InitError = (),
        > + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    let mut builder = ServerBuilder::new()
        .max_concurrent_connections(settings.max_connections)
        .disable_signals()
        // A backstop: the drain cuts off what is left at its own deadline.
        .shutdown_timeout(settings.shutdown_grace.as_secs());
    if let Some(workers) = workers {
        builder = builder.workers(workers);
    }
    let workers = workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    warn_above_open_file_limit(workers.saturating_mul(settings.max_connections));
    let shutdown = builder.graceful_shutdown_signal();
    let address = listener.local_addr()?;
    let timeouts = Timeouts {
        request: settings.request_timeout,
        send: settings.send_timeout,
    };
    builder
        .listen("api", listener, move || {
            let shutdown = shutdown.clone();
            let service = HttpService::build()
                .keep_alive(KeepAlive::Timeout(settings.keep_alive))
                // Times the first head from the accept, and answers 408.
                .client_request_timeout(settings.request_timeout)
                .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
                .local_addr(address)
                .finish(map_config(
                    app()
                        .into_factory()
                        .map_err(|err: Error| err.as_response_error().error_response()),
                    |_| AppConfig::default(),
                ));
            fn_service(move |io: TcpStream| {
                let peer = io.peer_addr().ok();
                // Not actix-http's own graceful signal, which would also
                // drop a request still arriving.
                let shutdown = shutdown.clone();
                let io = TimedStream::new(io, timeouts, peer)
                    .closed_when_idle_after(async move { shutdown.notified().await });
                ready(Ok((io, Protocol::Http1, peer)))
            })
            .and_then(service)
        })
        .map(ServerBuilder::run)
}

/// Warns when `connections` could exceed the process's open-file limit:
/// accepting fails there, before `MAX_CONNECTIONS` is reached.
fn warn_above_open_file_limit(connections: usize) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the one struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    if limit.rlim_cur != libc::RLIM_INFINITY && connections as u64 >= limit.rlim_cur {
        log::warn!(
            "WORKERS x MAX_CONNECTIONS allows {connections} connections, above the open-file limit of {} (ulimit -n): raise the limit, or lower MAX_CONNECTIONS",
            limit.rlim_cur
        );
    }
}

/// `host:port` as a socket address or URL authority names it: an IPv6
/// address in brackets.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
