//! The doctor's own rules: how values are printed, and that every refusal
//! of the server has a topic.

use crate::auth::doctor::shown::{SHOWN_CHARS, shown, shown_value};
use crate::auth::doctor::verdict::topic_of;
use crate::auth::error::AuthError;

#[test]
fn values_are_escaped_and_cut() {
    assert_eq!(shown("a\u{1b}[31mb\n"), r#""a\u{001b}[31mb\u{000a}""#);
    assert_eq!(shown("x\"y\\"), r#""x\"y\\""#);
    assert_eq!(shown("\u{202e}abc"), r#""\u{202e}abc""#);
    let long = "é".repeat(100);
    let cut = shown(&long);
    assert!(cut.ends_with("\"... (36 more characters)"), "{cut}");
    assert_eq!(cut.matches('é').count(), SHOWN_CHARS);
    assert_eq!(shown_value(&serde_json::json!(["a\u{7f}"])), r#"["a\u{007f}"]"#);
}

#[test]
fn every_refusal_of_the_server_has_a_topic() {
    for words in [
        "token too large",
        "malformed token: header is not base64url",
        "algorithm not allowed: only RS256 is accepted",
        "unexpected token type (typ)",
        "token type (typ) must be at+jwt (TOKEN_PROFILE=rfc9068)",
        "unsupported critical header (crit)",
        "token has no kid",
        "malformed claims",
        "unexpected issuer",
        "unknown signing key (kid)",
        "invalid signature",
        "token expired",
        "unexpected audience",
        "token not yet valid (nbf)",
        "an ID token is not an access token",
        "missing required claim: jti (TOKEN_PROFILE=rfc9068)",
        "unsupported confirmation claim (cnf): only a DPoP key thumbprint (cnf.jkt) can be checked",
        "token issued in the future (iat)",
        "sub claim holds a control character",
        "blank sub claim",
    ] {
        let (topic, _) = topic_of(&AuthError::InvalidToken(words.into()));
        assert_ne!(topic, "dpop", "{words}");
    }
}
