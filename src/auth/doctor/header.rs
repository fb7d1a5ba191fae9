//! The JOSE header: `alg`, `typ`, `crit` and `kid`, each against what the
//! validator accepts, with the fix for each refusal.

use serde_json::{Map, Value};

use crate::auth::TokenProfile;
use crate::auth::doctor::claims::RFC9068_FIX;
use crate::auth::doctor::findings::{Doctor, Status};
use crate::auth::doctor::shown::{shown, shown_value};
use crate::auth::jose::check_header;
use crate::auth::validator::token_typ;

impl Doctor<'_> {
    pub(super) fn header(&mut self, header: &Map<String, Value>) {
        let shown_member = |name: &str| header.get(name).map_or("(none)".into(), shown_value);
        self.add(
            Status::Note,
            "header",
            format!(
                "alg {}, typ {}, kid {}",
                shown_member("alg"),
                shown_member("typ"),
                shown_member("kid")
            ),
        );
        match header.get("alg").and_then(Value::as_str) {
            Some("RS256") => {}
            None => self.problem("header", "no alg string in the header: not a JOSE header"),
            Some("none") => self.problem("alg", "alg \"none\": an unsigned token, which is never accepted"),
            Some(alg) if alg.starts_with("HS") => self.problem(
                "alg",
                format!(
                    "{}: signed with a shared secret; this API accepts RS256 only: set the API's signing algorithm to RS256 in Auth0 (Dashboard > APIs > this API > Settings), then get a new token",
                    shown(alg)
                ),
            ),
            Some(alg) => self.problem(
                "alg",
                format!(
                    "{}: this API accepts RS256 only (Auth0's default): set the API's signing algorithm to RS256 in Auth0",
                    shown(alg)
                ),
            ),
        }
        let profile = self.settings.validation.profile;
        let typ = header.get("typ");
        let typ_text = typ.and_then(Value::as_str);
        if typ.is_some() && typ_text.is_none() {
            self.problem("header", "typ is not a string");
        } else if check_header(typ_text, false, token_typ(profile)).is_err() {
            let typ = typ_text.unwrap_or_default();
            let media = typ.strip_prefix("application/").unwrap_or(typ);
            if media.eq_ignore_ascii_case("dpop+jwt") {
                self.problem(
                    "typ",
                    "typ dpop+jwt: this is a DPoP proof (the DPoP header's value), not the access token",
                );
            } else if profile == TokenProfile::Rfc9068 {
                self.problem(
                    "typ",
                    format!(
                        "typ {}: TOKEN_PROFILE=rfc9068 requires at+jwt; {RFC9068_FIX}",
                        typ_text.map_or("(none)".into(), shown)
                    ),
                );
            } else {
                self.problem(
                    "typ",
                    format!(
                        "typ {}: an access token's typ is JWT or at+jwt (or none); is this another kind of token?",
                        shown(typ)
                    ),
                );
            }
        }
        if header.contains_key("crit") {
            self.problem(
                "crit",
                "a crit header: this API understands no JOSE extension, so none may be critical",
            );
        }
        match header.get("kid") {
            Some(Value::String(kid)) if !kid.is_empty() => {}
            Some(Value::String(_)) | None => self.problem(
                "kid",
                "no kid in the header: the server picks the issuer's key by kid, and Auth0 always sets one; was this token made by another issuer?",
            ),
            Some(_) => self.problem("header", "kid is not a string"),
        }
    }
}
