//! What a JOSE object (an access token, a proof) needs checked before
//! trusting it: a bound on how deeply its JSON nests, and a way to tell a
//! member that is present (even as `null`) from one that is absent. A leaf:
//! it imports nothing else of the crate.

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

/// The deepest nesting of arrays and objects accepted in a header or a
/// payload. Claims nest a few levels at most; unknown members are skipped
/// without serde_json's recursion limit, so depth is checked here.
pub(crate) const MAX_JSON_DEPTH: usize = 16;

/// True for a member that is there, whatever its value (`null` included).
pub(crate) fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// How deeply arrays and objects nest in `json` (brackets inside strings
/// do not count).
pub(crate) fn json_depth(json: &[u8]) -> usize {
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
}
