//! Stopping without dropping a request: the drain that SIGTERM (or SIGINT)
//! starts, in order:
//!
//! 1. `/readyz` answers 503 `"status": "draining"` at once, and every
//!    response from then on closes its connection, so that load balancers
//!    take the instance out and clients reconnect elsewhere. It still
//!    accepts and serves everything for the first third of the grace
//!    (`SHUTDOWN_GRACE_SECS`; none under `dev`, which no balancer watches):
//!    time for a health check to see the 503, and for Kubernetes to remove
//!    the endpoint, before connections start being refused.
//! 2. The listener closes; connections with no request under way (nor
//!    partly arrived) are closed at once; a request partly arrived is still
//!    read and answered, as is every request in flight.
//! 3. Once they are all answered, or when the grace is over (and whatever is
//!    left is cut off), the metrics listener stops and the users writer
//!    commits what is queued and closes the database. Exit status 0.
//!
//! A second SIGTERM or SIGINT during the drain stops at once (exit status 1).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use actix_server::Server;
use actix_web::Error;
use actix_web::dev::ServiceResponse;
use actix_web::http::ConnectionType;
use actix_web::rt::signal::unix::{Signal, SignalKind, signal};
use tokio::time::{Instant, sleep_until};

use crate::users::WritersClosed;

/// Whether the instance is draining, and how many requests it is answering.
#[derive(Debug)]
pub(crate) struct Drain {
    draining: AtomicBool,
    in_flight: AtomicUsize,
    /// From the signal to the exit, at most.
    grace: Duration,
    /// From the signal to the listener's closing.
    announce: Duration,
}

impl Drain {
    /// A drain of at most `grace`, a third of it announced (with `announce`).
    pub(crate) fn new(grace: Duration, announce: bool) -> Self {
        Self {
            draining: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            grace,
            announce: if announce { grace / 3 } else { Duration::ZERO },
        }
    }

    /// Whether a stop signal has come.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// The middleware: counts `response` in flight until it is ready, and
    /// once draining, has it close its connection.
    pub(crate) fn track<B, F>(self: &Arc<Self>, response: F) -> impl Future<Output = F::Output> + use<B, F>
    where
        F: Future<Output = Result<ServiceResponse<B>, Error>>,
    {
        let in_flight = InFlight::new(Arc::clone(self));
        async move {
            let mut response = response.await?;
            if in_flight.0.is_draining() {
                response
                    .response_mut()
                    .head_mut()
                    .set_connection_type(ConnectionType::Close);
            }
            Ok(response)
        }
    }

    /// Serves until SIGTERM or SIGINT, then drains as the module says. Err
    /// when a second signal cut the drain short, or the server failed.
    pub(crate) async fn serve(
        &self,
        server: Server,
        metrics: Option<Server>,
        writers: WritersClosed,
    ) -> io::Result<()> {
        let metrics = metrics.map(|metrics| (metrics.handle(), actix_web::rt::spawn(metrics)));
        let started = self.serve_api(server).await?;
        let deadline = started + self.grace;
        if let Some((handle, metrics)) = metrics
            && tokio::time::timeout_at(deadline, handle.stop(true)).await.is_ok()
        {
            let _ = metrics.await;
        }
        let limit = deadline.saturating_duration_since(Instant::now());
        if !matches!(
            tokio::task::spawn_blocking(move || writers.wait(limit)).await,
            Ok(true)
        ) {
            log::warn!("the users writer had not closed the database when the grace ended");
        }
        log::info!("drained in {:.1} s", started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Serves the API until a signal, then drains it; when the drain began.
    async fn serve_api(&self, mut server: Server) -> io::Result<Instant> {
        let mut signals = Signals::new()?;
        let name = match next(&mut server, &mut signals, None).await {
            Event::Signal(name) => name,
            Event::Served(served) => return served.map(|()| Instant::now()),
            Event::Deadline => unreachable!("no deadline"),
        };
        let started = Instant::now();
        self.draining.store(true, Ordering::Release);
        log::info!(
            "{name}: draining, at most {} s (SHUTDOWN_GRACE_SECS): /readyz answers 503, the listener closes in {:.1} s, then requests in flight are finished",
            self.grace.as_secs(),
            self.announce.as_secs_f64(),
        );
        match next(&mut server, &mut signals, Some(started + self.announce)).await {
            Event::Deadline => {}
            Event::Signal(name) => return Err(self.at_once(name)),
            Event::Served(served) => return served.map(|()| started),
        }
        // Closes the listener, and wakes every connection to close those
        // with no request (`connection::serve`); the future only reports.
        drop(server.handle().stop(true));
        match next(&mut server, &mut signals, Some(started + self.grace)).await {
            Event::Served(served) => served?,
            Event::Signal(name) => return Err(self.at_once(name)),
            // Dropping the server (below) cuts off what is left.
            Event::Deadline => log::warn!(
                "SHUTDOWN_GRACE_SECS ({} s) is over: cutting off {} request(s) still in flight, and the connections still open",
                self.grace.as_secs(),
                self.in_flight.load(Ordering::Acquire)
            ),
        }
        Ok(started)
    }

    /// A second signal: the drain ends now (the server, dropped on the way
    /// out, cuts off what is left).
    fn at_once(&self, name: &str) -> io::Error {
        let in_flight = self.in_flight.load(Ordering::Acquire);
        io::Error::other(format!(
            "{name} during the drain: stopped at once, cutting off {in_flight} request(s) in flight"
        ))
    }
}

/// A request being answered, counted while it lives.
struct InFlight(Arc<Drain>);

impl InFlight {
    fn new(drain: Arc<Drain>) -> Self {
        drain.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(drain)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What ended a wait of [`next`].
enum Event {
    /// The server stopped (after a stop, or failing).
    Served(io::Result<()>),
    /// SIGTERM or SIGINT, named.
    Signal(&'static str),
    /// The deadline passed.
    Deadline,
}

/// Waits for the server to stop, a signal, or `deadline`.
async fn next(server: &mut Server, signals: &mut Signals, deadline: Option<Instant>) -> Event {
    let deadline = async {
        match deadline {
            Some(at) => sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        served = server => Event::Served(served),
        name = signals.recv() => Event::Signal(name),
        () = deadline => Event::Deadline,
    }
}

/// SIGTERM and SIGINT, which both drain (actix-server's own handling, in
/// which SIGINT stops at once, is turned off in `connection::serve`).
struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    fn new() -> io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
