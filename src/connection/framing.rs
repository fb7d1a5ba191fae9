//! Where each request begins and ends in a connection's bytes, as far as a
//! deadline needs to know (RFC 9112 sections 2.2 and 6): a head ends at its
//! first empty line (blank lines before a request line are skipped, as
//! actix-http does), and a `Content-Length` body follows it. Anything this
//! reader cannot delimit (a `Transfer-Encoding`, a malformed or repeated
//! `Content-Length`) makes the rest of the connection one request: it is
//! timed to its end. actix-http parses for real; this only follows along,
//! and never decides what is valid (a request it would refuse ends the
//! connection anyway).
//!
//! It costs little per request: it looks at the first bytes of each line,
//! and jumps to the line's end with `memchr`.

/// The two header names that say a body follows.
const CONTENT_LENGTH: &[u8] = b"content-length";
const TRANSFER_ENCODING: &[u8] = b"transfer-encoding";

/// A connection's position in its stream of requests.
#[derive(Debug, Default)]
pub(crate) struct RequestFraming {
    state: State,
}

#[derive(Debug, Default)]
enum State {
    /// Between requests: nothing of the next one has arrived.
    #[default]
    Idle,
    /// Within a request head.
    Head(Head),
    /// Within a `Content-Length` body: this many bytes still to come.
    Body(u64),
    /// After a request whose end cannot be told: the rest of the connection.
    Undelimited,
}

/// What is known of the head being read.
#[derive(Debug, Default)]
struct Head {
    /// A line with content has ended: the request line (blank lines
    /// before it are skipped).
    started: bool,
    /// The current line: its first bytes, lower-cased, while they may still
    /// name a header this reader cares about.
    name: [u8; TRANSFER_ENCODING.len()],
    name_len: usize,
    line: Line,
    /// The current line holds more than, at most, a final CR.
    line_has_content: bool,
    /// The last byte read was a CR.
    after_cr: bool,
    /// The body's length, once a `Content-Length` line has ended.
    content_length: Option<u64>,
    /// A body follows whose end cannot be told.
    undelimited: bool,
}

/// Where the reader is within the current line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Reading the first bytes, which may name a header of interest.
    #[default]
    Name,
    /// In a `Content-Length` value: the digits so far (`None`: malformed).
    ContentLength(Option<u64>, Digits),
    /// In a line that does not matter: skipped to its end.
    Skip,
}

/// Where a `Content-Length` value is: before, in or after its digits.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Digits {
    #[default]
    Before,
    In,
    After,
}

impl RequestFraming {
    /// Whether the connection is between requests.
    pub(crate) fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// Follows `bytes`, the next ones read; whether a request ended among
    /// them (so that any request in progress now began within them).
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> bool {
        let mut ended = false;
        while !bytes.is_empty() {
            match &mut self.state {
                State::Idle => self.state = State::Head(Head::default()),
                State::Head(head) => {
                    let (used, end) = head.feed(bytes);
                    bytes = &bytes[used..];
                    if let Some(end) = end {
                        ended |= matches!(end, State::Idle);
                        self.state = end;
                    }
                }
                State::Body(left) => {
                    let used = usize::try_from(*left).unwrap_or(usize::MAX).min(bytes.len());
                    bytes = &bytes[used..];
                    *left -= used as u64;
                    if *left == 0 {
                        self.state = State::Idle;
                        ended = true;
                    }
                }
                State::Undelimited => return ended,
            }
        }
        ended
    }
}

impl Head {
    /// Reads into `bytes` up to the end of the head at most: the bytes used,
    /// and what follows the head when it ended.
    fn feed(&mut self, bytes: &[u8]) -> (usize, Option<State>) {
        let mut at = 0;
        while at < bytes.len() {
            if self.line == Line::Skip {
                // Nothing to learn before the line's end.
                let Some(newline) = memchr::memchr(b'\n', &bytes[at..]) else {
                    self.absorb(&bytes[at..]);
                    return (bytes.len(), None);
                };
                self.absorb(&bytes[at..at + newline]);
                at += newline;
            }
            let byte = bytes[at];
            at += 1;
            if byte == b'\n' {
                if let Some(end) = self.end_line() {
                    return (at, Some(end));
                }
                continue;
            }
            self.absorb(&[byte]);
            self.line = match self.line {
                // The request line names no header.
                Line::Name if !self.started => Line::Skip,
                Line::Name => self.name_byte(byte),
                Line::ContentLength(value, digits) => content_length_byte(value, digits, byte),
                Line::Skip => Line::Skip,
            };
        }
        (at, None)
    }

    /// Takes in `run`, bytes of the current line: a line is blank when it
    /// holds nothing but, at most, a final CR.
    fn absorb(&mut self, run: &[u8]) {
        let Some(&last) = run.last() else { return };
        if self.after_cr || run.len() > 1 || last != b'\r' {
            self.line_has_content = true;
        }
        self.after_cr = last == b'\r';
    }

    /// The next byte of a line's beginning.
    fn name_byte(&mut self, byte: u8) -> Line {
        let name = &self.name[..self.name_len];
        if byte == b':' && !name.is_empty() {
            if name == CONTENT_LENGTH {
                return Line::ContentLength(Some(0), Digits::Before);
            }
            if name == TRANSFER_ENCODING {
                self.undelimited = true;
            }
            return Line::Skip;
        }
        if byte == b'\r' || self.name_len == self.name.len() {
            return Line::Skip;
        }
        self.name[self.name_len] = byte.to_ascii_lowercase();
        self.name_len += 1;
        let name = &self.name[..self.name_len];
        if CONTENT_LENGTH.starts_with(name) || TRANSFER_ENCODING.starts_with(name) {
            Line::Name
        } else {
            Line::Skip
        }
    }

    /// A line ended: the state that follows the head, if that was its end.
    fn end_line(&mut self) -> Option<State> {
        if let Line::ContentLength(value, digits) = self.line {
            match (value, digits, self.content_length) {
                (Some(length), Digits::In | Digits::After, None) => self.content_length = Some(length),
                // Malformed, empty, or a second one: left to actix-http to refuse.
                _ => self.undelimited = true,
            }
        }
        let blank = !self.line_has_content;
        self.line = Line::Name;
        self.name_len = 0;
        self.line_has_content = false;
        self.after_cr = false;
        if !blank || !self.started {
            self.started |= !blank;
            return None;
        }
        Some(match (self.undelimited, self.content_length) {
            (true, _) => State::Undelimited,
            (false, Some(length)) if length > 0 => State::Body(length),
            (false, _) => State::Idle,
        })
    }
}

/// The next byte of a `Content-Length` value: digits between optional
/// spaces or tabs; anything else makes it malformed.
fn content_length_byte(value: Option<u64>, digits: Digits, byte: u8) -> Line {
    match (digits, byte) {
        (_, b'\r') => Line::ContentLength(value, digits),
        (Digits::Before | Digits::After, b' ' | b'\t') => Line::ContentLength(value, digits),
        (Digits::In, b' ' | b'\t') => Line::ContentLength(value, Digits::After),
        (Digits::Before | Digits::In, b'0'..=b'9') => Line::ContentLength(
            value
                .and_then(|v| v.checked_mul(10))
                .and_then(|v| v.checked_add(u64::from(byte - b'0'))),
            Digits::In,
        ),
        _ => Line::ContentLength(None, digits),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` whole, then one byte at a time: the same answer both
    /// ways (a request may arrive split anywhere).
    fn idle_after(bytes: &[u8]) -> bool {
        let mut whole = RequestFraming::default();
        whole.feed(bytes);
        let mut split = RequestFraming::default();
        for byte in bytes {
            split.feed(std::slice::from_ref(byte));
        }
        assert_eq!(
            whole.is_idle(),
            split.is_idle(),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
        whole.is_idle()
    }

    const GET: &[u8] = b"GET /api/messages/public HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x.y.z\r\n\r\n";

    #[test]
    fn an_attacker_cannot_end_a_request_early() {
        // Each of these leaves the connection inside a request: its deadline runs.
        let unfinished: &[&[u8]] = &[
            b"G",
            b"GET / HTTP/1.1\r\nHost: a\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r",
            // Blank lines before a request line are not its end.
            b"\r\n\r\n\r\n",
            b"\n\n\n\n",
            // A body still to come, however its length is written.
            b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcd",
            b"GET / HTTP/1.1\r\ncontent-length:\t 5 \r\n\r\nab",
            b"GET / HTTP/1.1\r\nCONTENT-LENGTH: 10\r\n\r\n\r\n\r\n",
            // Bodies whose end this reader does not find: the rest of the connection.
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nabcde",
            b"GET / HTTP/1.1\r\nContent-Length: +5\r\n\r\nabcde",
            b"GET / HTTP/1.1\r\nContent-Length:\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
            b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            // A line ending in a lone CR is not blank.
            b"GET / HTTP/1.1\r\nHost: a\r\n \r\n",
        ];
        for bytes in unfinished {
            assert!(!idle_after(bytes), "{:?}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn requests_end_where_their_head_or_body_ends() {
        let ended: &[&[u8]] = &[
            GET,
            b"GET / HTTP/1.1\nHost: a\n\n",
            b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab\r\n\r",
            b"GET / HTTP/1.1\r\nContent-Lengthy: 5\r\nTransfer-Encodings: x\r\nX-Transfer-Encoding: chunked\r\n\r\n",
            // A header name longer than any of interest.
            b"GET / HTTP/1.1\r\nX-A-Very-Long-Header-Name: Transfer-Encoding: chunked\r\n\r\n",
        ];
        for bytes in ended {
            assert!(idle_after(bytes), "{:?}", String::from_utf8_lossy(bytes));
        }
        // Pipelined: two requests, then the start of a third.
        let mut framing = RequestFraming::default();
        assert!(framing.feed(&[GET, GET].concat()));
        assert!(framing.is_idle());
        assert!(framing.feed(&[GET, b"GET /"].concat()), "one ended, one began");
        assert!(!framing.is_idle());
        assert!(!framing.feed(b" HTTP/1.1\r\n"), "still the same one");
        assert!(framing.feed(b"\r\n"));
        assert!(framing.is_idle());
    }

    #[test]
    fn a_body_is_counted_across_reads() {
        let mut framing = RequestFraming::default();
        framing.feed(b"GET / HTTP/1.1\r\nContent-Length: 12\r\n\r\n");
        assert!(!framing.is_idle());
        assert!(!framing.feed(b"0123456789"));
        assert!(framing.feed(b"ab"));
        assert!(framing.is_idle());
        framing.feed(b"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET");
        assert!(!framing.is_idle(), "the next request began");
    }
}
