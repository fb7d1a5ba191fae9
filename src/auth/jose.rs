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

/// True when arrays and objects nest deeper than [`MAX_JSON_DEPTH`] in
/// `json` (brackets inside strings do not count). Nesting never exceeds
/// the number of `[` and `{`, which a vectorized count finds at once; only
/// JSON holding more of them than the limit is walked.
pub(crate) fn nests_too_deeply(json: &[u8]) -> bool {
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
