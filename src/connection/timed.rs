//! A connection's stream held to the two deadlines actix-http does not keep:
//! every request must arrive in full within the request timeout of its
//! first byte (actix-http times only a connection's first request head), and
//! a response the client stops reading is abandoned after the send timeout
//! (actix-http waits for ever). A slow client then holds a connection, and
//! its buffers, for a bounded time, however it trickles its bytes.
//!
//! Past a deadline, the next read or write fails with `TimedOut` and
//! actix-http drops the connection without an answer (hyper and Go do the
//! same for later heads): a response could not be told apart from the end
//! of one already under way. The clocks run only while a request is partly
//! read or a write is blocked, so a request that arrives in one read, the
//! usual case, costs no timer and no clock read.
//!
//! A graceful stop ends the stream at its next pause between requests (see
//! [`TimedStream::closed_when_idle_after`]).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep, sleep_until};

use super::framing::RequestFraming;
use crate::metrics::{Deadline, METRICS};

/// How long a connection may take to send a request, or to take a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// From a request's first byte to its last.
    pub(crate) request: Duration,
    /// How long a response may wait for the client to read.
    pub(crate) send: Duration,
}

/// `S`, held to [`Timeouts`].
pub(crate) struct TimedStream<S> {
    io: S,
    timeouts: Timeouts,
    peer: Option<SocketAddr>,
    framing: RequestFraming,
    /// When the request now arriving began to.
    request_began: Option<Instant>,
    /// Since when writes have been blocked.
    send_blocked: Option<Instant>,
    /// Wakes the connection at the nearer deadline; made when first needed.
    timer: Option<Pin<Box<Sleep>>>,
    /// When the connection is to end at its next pause between requests.
    closing: Closing,
}

/// When a connection ends at its next pause between requests (a graceful
/// stop): until then, or now.
enum Closing {
    /// Never.
    Never,
    /// Once this resolves.
    After(Pin<Box<dyn Future<Output = ()> + Send>>),
    /// Now: reads between requests find the end of the stream.
    Now,
}

impl<S> TimedStream<S> {
    /// `io`, a connection from `peer`.
    pub(crate) fn new(io: S, timeouts: Timeouts, peer: Option<SocketAddr>) -> Self {
        Self {
            io,
            timeouts,
            peer,
            framing: RequestFraming::default(),
            request_began: None,
            send_blocked: None,
            timer: None,
            closing: Closing::Never,
        }
    }

    /// Ends the connection once `signal` resolves, as soon as it is between
    /// requests: a read then finds the end of the stream, so actix-http
    /// closes the connection, after the response under way if there is one.
    /// Bytes already there are read first: a request that has begun to
    /// arrive is read in full and answered. A connection that has sent
    /// nothing yet is between requests too (clients open spare ones, which
    /// would otherwise hold the stop until the request timeout).
    pub(crate) fn closed_when_idle_after(
        mut self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.closing = Closing::After(Box::pin(signal));
        self
    }

    /// Whether a read that found nothing should find the end of the stream
    /// instead; arranges to be woken when that changes.
    fn poll_closing(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.framing.is_idle() {
            return false;
        }
        if let Closing::After(signal) = &mut self.closing
            && signal.as_mut().poll(cx).is_ready()
        {
            self.closing = Closing::Now;
        }
        matches!(self.closing, Closing::Now)
    }

    /// The nearer deadline running, and which it is.
    fn deadline(&self) -> Option<(Instant, Deadline)> {
        let request = self
            .request_began
            .map(|began| (began + self.timeouts.request, Deadline::request));
        let send = self
            .send_blocked
            .map(|blocked| (blocked + self.timeouts.send, Deadline::send));
        match (request, send) {
            (Some(request), Some(send)) => Some(if send.0 < request.0 { send } else { request }),
            (one, other) => one.or(other),
        }
    }

    /// The error that ends the connection once a deadline has passed;
    /// otherwise arranges to be woken when one does.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let Some((at, deadline)) = self.deadline() else {
            return Poll::Pending;
        };
        if Instant::now() < at {
            let timer = self.timer.get_or_insert_with(|| Box::pin(sleep_until(at)));
            if timer.deadline() != at {
                timer.as_mut().reset(at);
            }
            ready!(timer.as_mut().poll(cx));
        }
        Poll::Ready(self.expired(deadline))
    }

    /// `deadline` has passed: counted, logged (at debug: a client chooses
    /// how often), and the error that ends the connection.
    fn expired(&self, deadline: Deadline) -> io::Error {
        METRICS.connection_timed_out(deadline);
        let (what, limit) = match deadline {
            Deadline::request => ("request not received in full", self.timeouts.request),
            Deadline::send => ("response not read by the client", self.timeouts.send),
        };
        let peer = self
            .peer
            .map_or_else(|| "-".to_owned(), |peer| peer.ip().to_string());
        log::debug!(
            "closing connection from {peer}: {what} within {} s",
            limit.as_secs()
        );
        io::Error::new(io::ErrorKind::TimedOut, format!("{what} in time"))
    }

    /// Follows `bytes`, just read: the request clock starts with a request's
    /// first byte and stops with its last.
    fn follow(&mut self, bytes: &[u8]) {
        let ended = self.framing.feed(bytes);
        if self.framing.is_idle() {
            self.request_began = None;
        } else if ended || self.request_began.is_none() {
            self.request_began = Some(Instant::now());
        }
    }

    /// A write that did not go through: the send clock starts, if it was not
    /// running.
    fn poll_blocked<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        self.send_blocked.get_or_insert_with(Instant::now);
        self.poll_deadline(cx).map(Err)
    }

    /// A write's outcome: progress stops the send clock.
    fn wrote(&mut self, cx: &mut Context<'_>, written: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) if n > 0 => {
                self.send_blocked = None;
                Poll::Ready(Ok(n))
            }
            Poll::Pending => self.poll_blocked(cx),
            other => other,
        }
    }

    /// The passed deadline's error, if one has passed (checked before each
    /// read and write: a client that keeps the stream busy never lets it
    /// wait for the timer).
    fn overdue(&self) -> Option<io::Error> {
        let (at, deadline) = self.deadline()?;
        (Instant::now() >= at).then(|| self.expired(deadline))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(err) = this.overdue() {
            return Poll::Ready(Err(err));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = &buf.filled()[before..];
                if !read.is_empty() {
                    this.follow(read);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.poll_closing(cx) => Poll::Ready(Ok(())),
            Poll::Pending => this.poll_deadline(cx).map(Err),
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(err) = this.overdue() {
            return Poll::Ready(Err(err));
        }
        let written = Pin::new(&mut this.io).poll_write(cx, data);
        this.wrote(cx, written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(err) = this.overdue() {
            return Poll::Ready(Err(err));
        }
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Pending => this.poll_blocked(cx),
            done => done,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};
    use tokio::sync::oneshot;
    use tokio::time::{advance, timeout};

    const TIMEOUTS: Timeouts = Timeouts {
        request: Duration::from_secs(5),
        send: Duration::from_secs(30),
    };

    /// A server side held to [`TIMEOUTS`], and the client's end of it.
    fn connection(buffer: usize) -> (TimedStream<DuplexStream>, DuplexStream) {
        let (server, client) = duplex(buffer);
        (TimedStream::new(server, TIMEOUTS, None), client)
    }

    /// What the server's next read gives, waiting at most `within`.
    async fn read(server: &mut TimedStream<DuplexStream>, within: Duration) -> Option<io::Result<Vec<u8>>> {
        let mut buf = vec![0; 1024];
        match timeout(within, server.read(&mut buf)).await {
            Ok(Ok(n)) => Some(Ok(buf[..n].to_vec())),
            Ok(Err(err)) => Some(Err(err)),
            Err(_) => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_trickled_after_a_first_request_is_cut_off_at_the_deadline() {
        let (mut server, mut client) = connection(4096);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        assert!(read(&mut server, Duration::from_secs(1)).await.unwrap().is_ok());
        // Idle between requests: no clock (keep-alive is actix-http's).
        assert!(read(&mut server, Duration::from_secs(3600)).await.is_none());
        // The next head, a byte a second: each byte is read, until the deadline.
        let began = Instant::now();
        let mut outcome = None;
        for byte in b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: yes\r\n" {
            client.write_all(&[*byte]).await.unwrap();
            if let Err(err) = read(&mut server, Duration::ZERO).await.unwrap() {
                outcome = Some(err);
                break;
            }
            advance(Duration::from_secs(1)).await;
        }
        let err = outcome.expect("cut off before the head was complete");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(began.elapsed(), TIMEOUTS.request);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_head_fails_the_waiting_read_at_the_deadline() {
        let (mut server, mut client) = connection(4096);
        client.write_all(b"GET / HTTP/1.1\r\nHost:").await.unwrap();
        assert!(read(&mut server, Duration::from_secs(1)).await.unwrap().is_ok());
        let waiting = Instant::now();
        let err = read(&mut server, Duration::from_secs(3600))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(waiting.elapsed(), TIMEOUTS.request);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_that_arrive_in_time_are_never_cut_off() {
        let (mut server, mut client) = connection(4096);
        for _ in 0..20 {
            // Each in two halves, 4 s apart: every one within its 5 s.
            client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
            assert!(read(&mut server, Duration::from_secs(1)).await.unwrap().is_ok());
            advance(Duration::from_secs(3)).await;
            client.write_all(b"Host: a\r\n\r\n").await.unwrap();
            assert!(read(&mut server, Duration::from_secs(1)).await.unwrap().is_ok());
            advance(Duration::from_secs(10)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_counts_toward_its_request_deadline() {
        let (mut server, mut client) = connection(4096);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
            .await
            .unwrap();
        assert!(read(&mut server, Duration::from_secs(1)).await.unwrap().is_ok());
        let err = read(&mut server, Duration::from_secs(3600))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_the_client_does_not_read_is_abandoned() {
        let (mut server, _client) = connection(64);
        let began = Instant::now();
        let err = server.write_all(&[b'x'; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(began.elapsed(), TIMEOUTS.send);
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_read_slowly_but_steadily_goes_through() {
        let (mut server, mut client) = connection(64);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0; 64];
            loop {
                tokio::time::sleep(Duration::from_secs(20)).await;
                match client.read(&mut buf).await.unwrap() {
                    0 => return got.len(),
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
        });
        server.write_all(&[b'x'; 640]).await.unwrap();
        server.shutdown().await.unwrap();
        drop(server);
        assert_eq!(reader.await.unwrap(), 640);
    }

    /// A connection that stops (see [`TimedStream::closed_when_idle_after`])
    /// once `stop` is sent, after `sent` has been written and read.
    async fn stoppable(sent: &[u8]) -> (TimedStream<DuplexStream>, DuplexStream, oneshot::Sender<()>) {
        let (stop, stopped) = oneshot::channel::<()>();
        let (server, mut client) = connection(4096);
        let mut server = server.closed_when_idle_after(async {
            let _ = stopped.await;
        });
        client.write_all(sent).await.unwrap();
        assert!(read(&mut server, Duration::from_secs(1)).await.unwrap().is_ok());
        (server, client, stop)
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_an_idle_stream_but_not_a_request_still_arriving() {
        let (mut server, mut client, stop) =
            stoppable(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost:").await;
        stop.send(()).unwrap();
        // The second partly arrived: the read waits for the rest, which is read.
        assert!(read(&mut server, Duration::from_secs(1)).await.is_none());
        client.write_all(b" a\r\n\r\n").await.unwrap();
        let rest = read(&mut server, Duration::from_secs(1)).await.unwrap().unwrap();
        assert_eq!(rest, b" a\r\n\r\n");
        // Between requests: the end of the stream, at once.
        let end = read(&mut server, Duration::from_secs(1)).await.unwrap().unwrap();
        assert!(end.is_empty(), "{end:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_stream_waiting_for_a_request_ends_when_the_stop_comes() {
        let (mut server, _client, stop) = stoppable(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
        let waiting = tokio::spawn(async move { read(&mut server, Duration::from_secs(3600)).await });
        tokio::task::yield_now().await;
        stop.send(()).unwrap();
        let end = waiting.await.unwrap().unwrap().unwrap();
        assert!(end.is_empty(), "{end:?}");
    }
}
