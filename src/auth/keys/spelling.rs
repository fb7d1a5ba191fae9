//! How an issuer is spelled. A token's `iss` must be a trusted issuer
//! exactly, so an `AUTH0_ISSUER` that differs from the issuer's own spelling
//! by a trailing slash refuses every token of it, with nothing but "unexpected
//! issuer" to show for it. That difference is told to the operator, with the
//! fix: when a discovery document shows it (`http`, then the key store,
//! once), and when a refused token shows it (here, at most once every ten
//! minutes). Strings from outside reach the log only as [`Excerpt`]s.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The most characters of a string from outside written to a log line.
const MAX_EXCERPT_CHARS: usize = 100;

/// How often, at most, a token whose `iss` is a trusted issuer but for a
/// trailing slash is warned about: its `iss` is the sender's to choose.
const SLASH_WARNING_INTERVAL: Duration = Duration::from_secs(600);

/// True when `a` and `b` are one spelling with and one without a trailing
/// slash (`https://h/tenant` and `https://h/tenant/`); a doubled slash is
/// not such a difference.
pub(crate) fn differ_by_trailing_slash(a: &str, b: &str) -> bool {
    let (shorter, longer) = if a.len() < b.len() { (a, b) } else { (b, a) };
    !shorter.ends_with('/') && longer.strip_suffix('/') == Some(shorter)
}

/// A string from outside (a token's `iss`, a document's `issuer`) as a log
/// line shows it: quoted and escaped as Rust debug-prints a string (quotes,
/// backslashes, newlines, control and terminal characters, so that it can
/// neither forge a line nor drive a terminal), and cut after 100 characters,
/// with its length in bytes.
pub(crate) struct Excerpt<'a>(pub(crate) &'a str);

impl fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(MAX_EXCERPT_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => write!(f, "{:?}... ({} bytes)", &self.0[..cut], self.0.len()),
        }
    }
}

/// Says in the log why a token whose `iss` is none of the `trusted` issuers
/// was refused (the response says only "unexpected issuer"): a warning with
/// the fix when `iss` is a trusted issuer but for a trailing slash (at most
/// once every ten minutes), else a debug line naming the issuers expected.
pub(crate) fn log_unexpected_issuer<'a>(iss: &str, trusted: impl Iterator<Item = &'a str> + Clone) {
    static LAST_WARNING: Mutex<Option<Instant>> = Mutex::new(None);
    let near = trusted.clone().find(|name| differ_by_trailing_slash(name, iss));
    if let Some(configured) = near
        && due(&LAST_WARNING, Instant::now())
    {
        log::warn!(
            "refused a token whose iss {} differs from the trusted issuer {configured:?} only by a trailing slash: \
             issuers are matched exactly, so if that is how your issuer writes itself (the iss of its tokens, the \
             \"issuer\" of its discovery document), every one of its tokens is refused; then write it as {} in \
             AUTH0_ISSUER (the token was not verified; this is logged at most every {} minutes)",
            Excerpt(iss),
            Excerpt(iss),
            SLASH_WARNING_INTERVAL.as_secs() / 60
        );
        return;
    }
    let expected: Vec<String> = trusted.map(|name| format!("{name:?}")).collect();
    log::debug!(
        "refused a token whose iss {} is not a trusted issuer: expected {}",
        Excerpt(iss),
        expected.join(" or ")
    );
}

/// True, and remembered, when the last time `last` was due is at least
/// [`SLASH_WARNING_INTERVAL`] before `now`, or there was none.
fn due(last: &Mutex<Option<Instant>>, now: Instant) -> bool {
    let mut last = last.lock().unwrap_or_else(PoisonError::into_inner);
    if last.is_some_and(|at| now.saturating_duration_since(at) < SLASH_WARNING_INTERVAL) {
        return false;
    }
    *last = Some(now);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_trailing_slash_apart_counts() {
        for (a, b) in [
            ("https://h", "https://h/"),
            ("https://h/", "https://h"),
            ("https://h/tenant", "https://h/tenant/"),
            ("https://h/tenant/", "https://h/tenant"),
        ] {
            assert!(differ_by_trailing_slash(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("https://h/", "https://h/"),
            ("https://h/", "https://h//"),
            ("https://h", "https://h//"),
            ("https://h/", "https://g/"),
            ("https://h/", "https://h/x"),
            ("https://H/", "https://h"),
        ] {
            assert!(!differ_by_trailing_slash(a, b), "{a} {b}");
        }
    }

    #[test]
    fn an_excerpt_is_one_escaped_line_of_bounded_length() {
        assert_eq!(Excerpt("https://h/").to_string(), "\"https://h/\"");
        let forged =
            "https://h/\n[2025-01-01T00:00:00Z WARN  actix_auth0_api] forged\r\u{1b}[2J\u{0}\u{202e}\"\\";
        let shown = Excerpt(forged).to_string();
        assert!(
            !shown.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{shown}"
        );
        assert!(shown.contains("\\n[2025") && shown.contains("\\u{1b}[2J") && shown.contains("\\u{202e}"));
        assert!(
            shown.ends_with("\\\"\\\\\""),
            "quotes and backslashes escaped: {shown}"
        );

        let long = format!("https://h/{}", "é".repeat(5000));
        let shown = Excerpt(&long).to_string();
        assert!(shown.starts_with("\"https://h/éé"), "cut on a character: {shown}");
        assert!(
            shown.ends_with(&format!("\"... ({} bytes)", long.len())),
            "{shown}"
        );
        assert_eq!(shown.trim_end_matches(|c| c != '"').chars().count(), 102);
    }

    #[test]
    fn the_slash_warning_is_due_once_per_interval() {
        let last = Mutex::new(None);
        let start = Instant::now();
        assert!(due(&last, start));
        assert!(!due(&last, start));
        assert!(!due(
            &last,
            start + SLASH_WARNING_INTERVAL - Duration::from_secs(1)
        ));
        assert!(due(&last, start + SLASH_WARNING_INTERVAL));
        assert!(!due(&last, start + SLASH_WARNING_INTERVAL));
    }
}
