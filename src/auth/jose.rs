//! What access tokens and DPoP proofs share as compact JWSs (RFC 7515): how
//! one is cut into its three parts and each is decoded, how deeply its JSON
//! may nest, the header rules for `typ` and `crit`, and a way to tell a
//! member that is present (even as `null`) from one that is absent. Each
//! reader words its own refusals and orders its own checks; the rules are
//! written here once. A leaf: it imports nothing else of the crate.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

/// The deepest nesting of arrays and objects accepted in a header or a
/// payload. Claims nest a few levels at most; unknown members are skipped
/// without serde_json's recursion limit, so depth is checked here.
pub(crate) const MAX_JSON_DEPTH: usize = 16;

/// A compact JWS cut at its two dots, nothing decoded yet.
pub(crate) struct CompactJws<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    /// What the signature covers: the header and payload as sent, with the
    /// dot between them.
    pub(crate) signing_input: &'a str,
}

/// Why a compact JWS cannot be read. Its text follows the reader's own
/// `malformed ...: ` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    Segments,
    Header,
    Payload,
    Signature,
    TooDeep,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Segments => "expected three dot-separated segments",
            Self::Header => "header is not base64url",
            Self::Payload => "payload is not base64url",
            Self::Signature => "signature is not base64url",
            Self::TooDeep => "JSON nested too deeply",
        })
    }
}

impl<'a> CompactJws<'a> {
    /// `jws` cut into exactly three segments.
    pub(crate) fn split(jws: &'a str) -> Result<Self, Malformed> {
        let mut segments = jws.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (segments.next(), segments.next(), segments.next(), segments.next())
        else {
            return Err(Malformed::Segments);
        };
        Ok(Self {
            header,
            payload,
            signature,
            signing_input: &jws[..header.len() + 1 + payload.len()],
        })
    }

    /// The header's bytes (its JSON, unparsed).
    pub(crate) fn header(&self) -> Result<Vec<u8>, Malformed> {
        decode(self.header).ok_or(Malformed::Header)
    }

    /// The payload's bytes.
    pub(crate) fn payload(&self) -> Result<Vec<u8>, Malformed> {
        decode(self.payload).ok_or(Malformed::Payload)
    }

    /// The signature's bytes.
    pub(crate) fn signature(&self) -> Result<Vec<u8>, Malformed> {
        decode(self.signature).ok_or(Malformed::Signature)
    }
}

/// base64url as JWS has it: no padding, and no stray trailing bits, so that
/// each byte string has one encoding.
fn decode(segment: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(segment).ok()
}

/// Refuses `json` when it nests deeper than [`MAX_JSON_DEPTH`].
pub(crate) fn within_depth(json: &[u8]) -> Result<(), Malformed> {
    if nests_too_deeply(json) {
        Err(Malformed::TooDeep)
    } else {
        Ok(())
    }
}

/// What a reader accepts as a header's `typ`.
pub(crate) struct Typ {
    /// The media types accepted, compared without case, each with or
    /// without its `application/` prefix (RFC 7515 section 4.1.9).
    pub(crate) accepted: &'static [&'static str],
    /// Whether a header without `typ` is refused.
    pub(crate) required: bool,
}

/// Which header rule a JWS broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderFault {
    /// Its `typ` is not one `expected` accepts.
    Typ,
    /// It has `crit`, even empty or `null`: no extension is understood
    /// here, so none may be critical (RFC 7515 section 4.1.11).
    Crit,
}

/// Holds a header's `typ`, then its `crit` (`true` when present), to the
/// rules every reader shares.
pub(crate) fn check_header(typ: Option<&str>, crit: bool, expected: &Typ) -> Result<(), HeaderFault> {
    let typ_ok = match typ {
        None => !expected.required,
        Some(typ) => {
            let media = typ.strip_prefix("application/").unwrap_or(typ);
            expected
                .accepted
                .iter()
                .any(|accepted| media.eq_ignore_ascii_case(accepted))
        }
    };
    if !typ_ok {
        return Err(HeaderFault::Typ);
    }
    if crit {
        return Err(HeaderFault::Crit);
    }
    Ok(())
}

/// True for a member that is there, whatever its value (`null` included).
pub(crate) fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// True when arrays and objects nest deeper than [`MAX_JSON_DEPTH`] in
/// `json` (brackets inside strings do not count). Nesting never exceeds
/// the number of `[` and `{`, which a vectorized count finds at once; only
/// JSON holding more of them than the limit is walked.
fn nests_too_deeply(json: &[u8]) -> bool {
    let openers = json.iter().filter(|b| matches!(b, b'[' | b'{')).count();
    openers > MAX_JSON_DEPTH && json_depth(json) > MAX_JSON_DEPTH
}

/// How deeply arrays and objects nest in `json` (brackets inside strings
/// do not count).
fn json_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for byte in json {
        match (in_string, escaped, byte) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, false, _) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            (false, _, _) => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_depth_counts_brackets_outside_strings() {
        assert_eq!(json_depth(br#"{"a":1}"#), 1);
        assert_eq!(json_depth(br#"{"a":[{"b":[]}]}"#), 4);
        assert_eq!(json_depth(br#"{"a":"[[[[\"[[[","b":{}}"#), 2);
        assert_eq!(json_depth(b"[[[[]]]]"), 4);
    }

    #[test]
    fn too_deep_is_beyond_the_limit_outside_strings() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(!nests_too_deeply(nested(MAX_JSON_DEPTH).as_bytes()));
        assert!(nests_too_deeply(nested(MAX_JSON_DEPTH + 1).as_bytes()));
        let bracketed_string = format!(r#"{{"a":"{}","b":[{{}}]}}"#, "[{".repeat(20));
        assert!(
            !nests_too_deeply(bracketed_string.as_bytes()),
            "brackets in a string"
        );
        let side_by_side = format!("[{}]", vec!["[]"; 40].join(","));
        assert!(
            !nests_too_deeply(side_by_side.as_bytes()),
            "many openers, depth 2"
        );
    }
}
