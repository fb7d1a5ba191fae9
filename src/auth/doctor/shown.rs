//! How the doctor prints what it read: values taken from the token
//! quoted, escaped (control and invisible characters as `\u{..}`) and cut
//! to [`SHOWN_CHARS`] characters, since a token is attacker-controlled;
//! spans of time and dates in words.

use std::time::Duration;

use serde_json::Value;

/// Most characters of a token's value printed; the rest is counted.
pub(super) const SHOWN_CHARS: usize = 64;

/// `secs` as "2h 3m 4s".
pub(super) fn span(secs: u64) -> String {
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// `secs` since 1970 as an RFC 3339 time in UTC.
pub(super) fn at(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .map_or_else(
            || format!("{secs} s after 1970"),
            |time| time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
}

/// `text` from a token as it is printed: quoted, each control or invisible
/// character (and `"`, `\`) escaped, cut after [`SHOWN_CHARS`] characters.
pub(super) fn shown(text: &str) -> String {
    format!("\"{}", escaped(text, true))
}

/// A JSON value from a token as it is printed: a string as [`shown`], any
/// other value as compact JSON, escaped and cut the same way.
pub(super) fn shown_value(value: &Value) -> String {
    match value {
        Value::String(text) => shown(text),
        other => escaped(&other.to_string(), false),
    }
}

/// Several values, each [`shown`], at most ten.
pub(super) fn shown_list<S: AsRef<str>>(values: &[S]) -> String {
    if values.is_empty() {
        return "(none)".to_owned();
    }
    let mut listed: Vec<String> = values
        .iter()
        .take(10)
        .map(|value| shown(value.as_ref()))
        .collect();
    if values.len() > 10 {
        listed.push(format!("and {} more", values.len() - 10));
    }
    listed.join(", ")
}

/// `text` escaped and cut; `quoted` closes the quote the caller opened
/// (inside the cut, so that the count of what was left out stays outside).
pub(super) fn escaped(text: &str, quoted: bool) -> String {
    let mut out = String::new();
    for (index, c) in text.chars().enumerate() {
        if index == SHOWN_CHARS {
            let rest = text.chars().count() - index;
            let quote = if quoted { "\"" } else { "" };
            return format!("{out}{quote}... ({rest} more characters)");
        }
        match c {
            '"' | '\\' if quoted => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || invisible(c) => out.push_str(&format!("\\u{{{:04x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    if quoted {
        out.push('"');
    }
    out
}

/// Characters that print as nothing or reorder what follows: zero-width
/// and bidirectional controls, the soft hyphen, the byte-order mark.
pub(super) fn invisible(c: char) -> bool {
    matches!(c, '\u{00ad}' | '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}
