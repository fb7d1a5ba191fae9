//! The shape of the token: its characters, then its parts: opaque (no
//! dots), a JWE (five parts, which the API cannot read) or a JWS (three),
//! whose header and claims are then read as the validator reads them.

use serde_json::{Map, Value};

use crate::auth::authorization::check_b64token;
use crate::auth::doctor::findings::{Doctor, Status};
use crate::auth::doctor::shown::{shown, shown_value};
use crate::auth::jose::{CompactJws, Malformed, within_depth};

impl Doctor<'_> {
    /// Reads the token's parts and claims, adding a finding for each check;
    /// true when its claims bind it to a DPoP key (`cnf.jkt`).
    pub(super) fn diagnose(&mut self, token: &str) -> bool {
        if check_b64token(token).is_err() {
            let stray = token
                .char_indices()
                .find(|(_, c)| !(c.is_ascii_alphanumeric() || "-._~+/=".contains(*c)));
            let text = match stray {
                Some((at, c)) => format!(
                    "{} at byte {at} is a character no token holds: give the token alone, without quotes, spaces or line breaks",
                    shown(c.encode_utf8(&mut [0; 4]))
                ),
                None => {
                    "an `=` inside the token: padding may only end a token, and a JWT has none".to_owned()
                }
            };
            self.problem("input", text);
            return false;
        }
        let parts = token.split('.').count();
        self.add(
            Status::Note,
            "shape",
            format!(
                "{} bytes in {parts} dot-separated part(s) (the signature is never shown)",
                token.len()
            ),
        );
        match parts {
            1 => self.opaque("no dots: not a JWT"),
            2 => self.problem(
                "shape",
                "2 parts: a signed JWT has 3 (header.payload.signature); was the token cut short when copied?",
            ),
            3 => return self.diagnose_jws(token),
            5 => self.diagnose_jwe(token),
            n => self.problem(
                "shape",
                format!("{n} parts: neither a signed JWT (3) nor an encrypted one (5); two tokens pasted together, or a stray dot?"),
            ),
        }
        false
    }

    /// An opaque token: what the client must change.
    pub(super) fn opaque(&mut self, why: &str) {
        let text = format!(
            "an opaque token ({why}): Auth0 issues one when the authorize or token request names no audience; ask for a JWT access token for this API by sending `audience={}`",
            self.audience()
        );
        self.problem("shape", text);
    }

    /// A five-part token: a JWE (RFC 7516), which the API cannot read.
    pub(super) fn diagnose_jwe(&mut self, token: &str) {
        let mut parts = token.split('.');
        let header = parts.next().and_then(json_object);
        let member = |name: &str| header.as_ref().and_then(|header| header.get(name)).cloned();
        let (alg, enc) = (member("alg"), member("enc"));
        let no_key = parts.next().is_some_and(str::is_empty);
        if alg.as_ref().and_then(Value::as_str) == Some("dir") && no_key {
            self.opaque("an encrypted token only Auth0 can read, alg \"dir\"");
        } else {
            self.problem(
                "shape",
                format!(
                    "an encrypted token (JWE: 5 parts, alg {}, enc {}): token encryption is on for this API in Auth0; turn it off (Dashboard > APIs > this API > Settings > JSON Web Encryption), this API verifies signed tokens",
                    alg.map_or("(none)".into(), |alg| shown_value(&alg)),
                    enc.map_or("(none)".into(), |enc| shown_value(&enc)),
                ),
            );
        }
    }

    /// A three-part token: a compact JWS, read as the validator reads it.
    pub(super) fn diagnose_jws(&mut self, token: &str) -> bool {
        let Ok(jws) = CompactJws::split(token) else {
            return false;
        };
        let decoded = jws
            .header()
            .and_then(|header| Ok((header, jws.payload()?)))
            .and_then(|parts| jws.signature().map(|_| parts))
            .and_then(|(header, payload)| {
                within_depth(&header)?;
                within_depth(&payload)?;
                Ok((header, payload))
            });
        let (header, payload) = match decoded {
            Ok(parts) => parts,
            Err(Malformed::TooDeep) => {
                self.problem(
                    "shape",
                    "JSON nested more than 16 levels deep: the server refuses it unread; no Auth0 token looks like this",
                );
                return false;
            }
            Err(why) => {
                self.problem(
                    "shape",
                    format!(
                        "{why} (RFC 7515: URL-safe alphabet, no padding): the token was damaged when copied (a `+`, `/` or `=` means it was re-encoded)"
                    ),
                );
                return false;
            }
        };
        let Ok(Value::Object(header)) = serde_json::from_slice::<Value>(&header) else {
            self.problem("header", "the header is not a JSON object");
            return false;
        };
        self.header(&header);
        let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(&payload) else {
            self.problem("claims", "the payload is not a JSON object of claims");
            return false;
        };
        self.claims(&claims)
    }
}

/// A part of a token decoded as a JSON object, within the depth limit.
pub(super) fn json_object(part: &str) -> Option<Map<String, Value>> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    within_depth(&bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}
