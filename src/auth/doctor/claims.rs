//! The claims, in the order the validator checks them: `iss`, `aud`, the
//! times (in [`times`](super::times)), `sub`, what marks an ID token, the
//! claims RFC 9068 requires; then the binding and the grants, and any
//! step-up claims.

use serde_json::{Map, Value};

use crate::auth::TokenProfile;
use crate::auth::doctor::findings::{Doctor, Status};
use crate::auth::doctor::shown::{shown, shown_list, shown_value};
use crate::auth::validator::check_sub;

/// How a tenant's API comes to issue RFC 9068 tokens.
pub(super) const RFC9068_FIX: &str = "set the API's JSON Web Token profile to RFC 9068 in Auth0 (Dashboard > APIs > this API > Settings), or TOKEN_PROFILE=any";

impl Doctor<'_> {
    /// The claims, in the order the validator checks them; true when
    /// `cnf.jkt` binds the token to a DPoP key.
    pub(super) fn claims(&mut self, claims: &Map<String, Value>) -> bool {
        self.issuer(claim(claims, "iss"));
        self.audience_claim(claims);
        self.times(claims);
        self.subject(claim(claims, "sub"));
        if claims.contains_key("nonce") || claims.contains_key("at_hash") {
            self.problem(
                "id-token",
                "an ID token (it has nonce or at_hash): an ID token tells the client who logged in; send the access token (`access_token` in the token response) instead",
            );
        }
        if self.settings.validation.profile == TokenProfile::Rfc9068 {
            for name in ["client_id", "jti"] {
                if claim(claims, name)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    self.rfc9068_missing(name);
                }
            }
            if claim(claims, "iat").is_none() {
                self.rfc9068_missing("iat");
            }
        }
        let bound = self.confirmation(claims.get("cnf"));
        self.grants(claims);
        let step_up: Vec<String> = ["acr", "amr", "auth_time"]
            .into_iter()
            .filter_map(|name| Some(format!("{name} {}", shown_value(claims.get(name)?))))
            .collect();
        if !step_up.is_empty() {
            let ago = claims
                .get("auth_time")
                .and_then(Value::as_u64)
                .map(|at| format!(": authenticated {}", self.relative(at)))
                .unwrap_or_default();
            self.add(Status::Note, "step-up", format!("{}{ago}", step_up.join(", ")));
        }
        bound
    }

    pub(super) fn rfc9068_missing(&mut self, claim: &str) {
        self.problem(
            "profile",
            format!("no {claim}: TOKEN_PROFILE=rfc9068 requires client_id, jti and iat; {RFC9068_FIX}"),
        );
    }

    pub(super) fn issuer(&mut self, iss: Option<&Value>) {
        let trusted = &self.settings.validation.issuers;
        let listed = shown_list(trusted);
        let iss = match iss {
            None => return self.problem("iss", "no iss: the server requires the issuer"),
            Some(Value::String(iss)) => iss,
            Some(_) => return self.problem("claims", "iss is not a string"),
        };
        if trusted.contains(iss) {
            return self.add(Status::Ok, "iss", format!("{} is a trusted issuer", shown(iss)));
        }
        let near = |same: &dyn Fn(&str, &str) -> bool| trusted.iter().find(|ours| same(ours, iss));
        let text = if let Some(ours) =
            near(&|ours, iss| ours.trim_end_matches('/') == iss.trim_end_matches('/'))
        {
            format!(
                "{} differs from the trusted issuer {} by a trailing slash; issuers are compared exactly: set AUTH0_ISSUER={} (the issuer's own spelling, which its tokens carry)",
                shown(iss),
                shown(ours),
                shown(iss)
            )
        } else if let Some(ours) = near(&|ours, iss| ours.eq_ignore_ascii_case(iss)) {
            format!(
                "{} differs from the trusted issuer {} in letter case; issuers are compared exactly: set AUTH0_ISSUER={}",
                shown(iss),
                shown(ours),
                shown(iss)
            )
        } else {
            format!(
                "{} is not a trusted issuer (trusted: {listed}, from AUTH0_ISSUER or AUTH0_DOMAIN): a token of another tenant? If you trust this issuer (a custom domain of the tenant, say), add it to AUTH0_DOMAIN or AUTH0_ISSUER",
                shown(iss)
            )
        };
        self.problem("iss", text);
    }

    pub(super) fn audience_claim(&mut self, claims: &Map<String, Value>) {
        let ours = &self.settings.validation.audiences;
        let auds: Vec<&str> = match claim(claims, "aud") {
            None => {
                return self.problem(
                    "aud",
                    "no aud: the server requires the audience (this API's identifier)",
                );
            }
            Some(Value::String(aud)) => vec![aud],
            Some(Value::Array(auds)) if auds.iter().all(Value::is_string) => {
                auds.iter().filter_map(Value::as_str).collect()
            }
            Some(_) => return self.problem("claims", "aud is neither a string nor a list of strings"),
        };
        if let Some(aud) = auds.iter().find(|aud| ours.iter().any(|ours| ours == *aud)) {
            return self.add(
                Status::Ok,
                "aud",
                format!("{} is an accepted audience", shown(aud)),
            );
        }
        let theirs = shown_list(&auds);
        let accepted = shown_list(ours);
        let near = auds.iter().find_map(|aud| {
            ours.iter()
                .find(|ours| ours.trim_end_matches('/') == aud.trim_end_matches('/'))
                .map(|ours| (aud, ours))
        });
        let mut text = match near {
            Some((aud, ours)) => format!(
                "the token is for {}, this API accepts {} (AUTH0_AUDIENCE): they differ by a trailing slash, and audiences are compared exactly; set AUTH0_AUDIENCE={} (the API identifier as Auth0 has it, which its tokens carry)",
                shown(aud),
                shown(ours),
                shown(aud)
            ),
            None => format!(
                "the token is for {theirs}, this API accepts {accepted} (AUTH0_AUDIENCE): ask for the token with `audience={}`, or add its audience to AUTH0_AUDIENCE if this API is that one",
                self.audience()
            ),
        };
        let azp = claims.get("azp").and_then(Value::as_str);
        if auds
            .iter()
            .any(|aud| Some(*aud) == azp || looks_like_client_id(aud))
        {
            text.push_str(
                "; its aud looks like a client id, as an ID token's is: send the access token, not the ID token",
            );
        }
        self.problem("aud", text);
    }

    pub(super) fn subject(&mut self, sub: Option<&Value>) {
        match sub {
            None => self.problem(
                "sub",
                "no sub: the server requires the subject (the user, or the client)",
            ),
            Some(Value::String(sub)) => match check_sub(sub) {
                Ok(()) => self.add(Status::Ok, "sub", shown(sub)),
                Err(why) => self.problem("sub", format!("{why}: {}", shown(sub))),
            },
            Some(_) => self.problem("claims", "sub is not a string"),
        }
    }
}

/// The claim `name`, as the validator reads an optional claim: `null` is
/// the same as absent.
pub(super) fn claim<'c>(claims: &'c Map<String, Value>, name: &str) -> Option<&'c Value> {
    claims.get(name).filter(|value| !value.is_null())
}

/// Auth0 client ids are 32 letters and digits; an API identifier is
/// usually a URL.
pub(super) fn looks_like_client_id(aud: &str) -> bool {
    aud.len() == 32 && aud.bytes().all(|b| b.is_ascii_alphanumeric())
}
