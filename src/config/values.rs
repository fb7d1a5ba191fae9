//! How each kind of value is read: URLs, issuers, lists, numbers and
//! durations, each refusal a short sentence saying what was expected.

use std::time::Duration;

use url::Url;

use crate::auth::keys::is_loopback;

/// Where clients reach the API: an absolute http(s) URL, perhaps with a
/// path prefix, without user name, password, query or fragment (a proof's
/// `htu` has none of them).
pub(super) fn public_base_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("expected an absolute URL, got {raw:?} ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("expected an http or https URL, got {raw:?}"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("expected a URL without user name or password".into());
    }
    if url.query().is_some() || url.fragment().is_some() || raw.contains(['?', '#']) {
        return Err(format!(
            "expected a URL without query (?...) or fragment (#...), got {raw:?}"
        ));
    }
    Ok(url)
}

pub(super) fn issuer_from_domain(domain: &str) -> Result<String, String> {
    let looks_like_host = !domain.contains("://")
        && !domain.contains('/')
        && Url::parse(&format!("https://{domain}/")).is_ok_and(|u| u.host_str().is_some());
    if looks_like_host {
        Ok(format!("https://{domain}/"))
    } else {
        Err(format!(
            "expected a bare domain such as dev-abc.us.auth0.com (no scheme, no path), got {domain:?}"
        ))
    }
}

/// A comma-separated list, each entry parsed, duplicates dropped.
pub(super) fn list(raw: &str, parse: impl Fn(&str) -> Result<String, String>) -> Result<Vec<String>, String> {
    let mut entries: Vec<String> = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
        let entry = parse(entry)?;
        if !entries.contains(&entry) {
            entries.push(entry);
        }
    }
    if entries.is_empty() {
        Err("expected at least one value".into())
    } else {
        Ok(entries)
    }
}

pub(super) fn audiences(raw: &str) -> Result<Vec<String>, String> {
    let audiences: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if audiences.is_empty() {
        Err("expected at least one audience".into())
    } else {
        Ok(audiences)
    }
}

/// The most clock skew tolerated: more would accept long-expired tokens.
pub(super) const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// The issuer and its keys are trusted over https only; plain http is
/// allowed only to this machine. No user-info (it would be sent, and
/// logged, with every fetch) and no fragment.
pub(super) fn trusted_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("expected an absolute URL, got {raw:?} ({e})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("expected a URL without user name or password".into());
    }
    if url.fragment().is_some() {
        return Err(format!("expected a URL without a fragment (#...), got {raw:?}"));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        _ => Err(format!(
            "expected an https URL (http only for a loopback host), got {raw:?}"
        )),
    }
}

/// An issuer identifier (RFC 8414 section 2): a trusted URL without a query
/// either, kept as written, since `iss` is compared with it byte for byte.
pub(super) fn issuer_url(raw: &str) -> Result<String, String> {
    let url = trusted_url(raw)?;
    if url.query().is_some() || raw.contains('?') {
        return Err(format!(
            "expected an issuer URL without a query (?...), got {raw:?}"
        ));
    }
    Ok(raw.to_owned())
}

/// The browser origin, as browsers send it: scheme, host and port only
/// (`http://localhost:4040/` becomes `http://localhost:4040`).
pub(super) fn origin(raw: &str) -> Result<String, String> {
    Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .filter(|u| u.path() == "/" && u.query().is_none() && u.fragment().is_none())
        .map(|u| u.origin().ascii_serialization())
        .ok_or_else(|| format!("expected an origin such as http://localhost:4040 (no path), got {raw:?}"))
}

pub(super) fn number_in<T>(raw: &str, range: std::ops::RangeInclusive<T>, what: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    raw.parse().ok().filter(|n| range.contains(n)).ok_or_else(|| {
        format!(
            "expected {what} from {} to {}, got {raw:?}",
            range.start(),
            range.end()
        )
    })
}

pub(super) fn secs(raw: &str) -> Result<Duration, String> {
    raw.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("expected a whole number of seconds, got {raw:?}"))
}

pub(super) fn positive_secs(raw: &str) -> Result<Duration, String> {
    match secs(raw)? {
        d if d.is_zero() => Err("expected at least 1 second, got 0".into()),
        d => Ok(d),
    }
}
