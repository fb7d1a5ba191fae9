//! The settings as a user meets them: defaults, each malformed value refused
//! with one line, and the lists (`--help`, docs/configuration.md) kept true.
//!
//! Over 450 lines: a test per kind of setting, each short, that read best
//! together; split, they would only scatter the one question they answer.

use super::*;
use crate::auth::PublicUrl;

use std::collections::HashMap;

fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Settings::from_lookup(|name| map.get(name).cloned())
}

#[test]
fn domain_gives_issuer_and_jwks_url() {
    let s = settings(&[
        ("AUTH0_DOMAIN", "dev-abc.us.auth0.com"),
        ("AUTH0_AUDIENCE", "https://api"),
    ])
    .unwrap();
    assert_eq!(s.validation.issuers, ["https://dev-abc.us.auth0.com/"]);
    assert_eq!(s.jwks_url, None, "found from the issuer");
    assert_eq!(s.validation.audiences, vec!["https://api"]);
    assert_eq!(
        (s.host.as_str(), s.port, s.database.url.as_str()),
        ("127.0.0.1", 6060, "app.db")
    );
}

#[test]
fn several_issuers_are_a_comma_separated_list() {
    let s = settings(&[
        (
            "AUTH0_DOMAIN",
            "dev-abc.us.auth0.com, login.example.com,dev-abc.us.auth0.com",
        ),
        ("AUTH0_AUDIENCE", "a"),
    ])
    .unwrap();
    assert_eq!(
        s.validation.issuers,
        ["https://dev-abc.us.auth0.com/", "https://login.example.com/"]
    );
    let s = settings(&[
        (
            "AUTH0_ISSUER",
            "https://login.example.com/,https://dev-abc.us.auth0.com/",
        ),
        ("AUTH0_AUDIENCE", "a"),
    ])
    .unwrap();
    assert_eq!(s.validation.issuers.len(), 2);
    let with_jwks_url = settings(&[
        (
            "AUTH0_ISSUER",
            "https://login.example.com/,https://dev-abc.us.auth0.com/",
        ),
        ("AUTH0_AUDIENCE", "a"),
        (
            "AUTH0_JWKS_URL",
            "https://login.example.com/.well-known/jwks.json",
        ),
    ]);
    let error = with_jwks_url.unwrap_err();
    assert_eq!(error.variable, "AUTH0_JWKS_URL");
    assert!(error.problem.contains("single issuer"), "{error}");
    for bad in ["https://a.example.com/, http://10.0.0.1/", " , "] {
        let error = settings(&[("AUTH0_ISSUER", bad), ("AUTH0_AUDIENCE", "a")]).unwrap_err();
        assert_eq!(error.variable, "AUTH0_ISSUER", "{bad}");
    }
}

#[test]
fn audience_list_is_split_on_commas() {
    let s = settings(&[("AUTH0_DOMAIN", "t.auth0.com"), ("AUTH0_AUDIENCE", " a , b,,c ")]).unwrap();
    assert_eq!(s.validation.audiences, vec!["a", "b", "c"]);
}

#[test]
fn missing_required_values_name_the_variable() {
    assert_eq!(
        settings(&[("AUTH0_AUDIENCE", "a")]).unwrap_err().variable,
        "AUTH0_DOMAIN"
    );
    assert_eq!(
        settings(&[("AUTH0_DOMAIN", "t.auth0.com")]).unwrap_err().variable,
        "AUTH0_AUDIENCE"
    );
    let issuer_over_http = [("AUTH0_ISSUER", "http://10.0.0.1/"), ("AUTH0_AUDIENCE", "a")];
    assert_eq!(settings(&issuer_over_http).unwrap_err().variable, "AUTH0_ISSUER");
    let keys_over_http = [
        ("AUTH0_ISSUER", "https://t.example.com/"),
        ("AUTH0_AUDIENCE", "a"),
        ("AUTH0_JWKS_URL", "http://10.0.0.1/jwks.json"),
    ];
    assert_eq!(settings(&keys_over_http).unwrap_err().variable, "AUTH0_JWKS_URL");
}

#[test]
fn malformed_values_name_the_variable() {
    let cases = [
        ("AUTH0_DOMAIN", "https://t.auth0.com/"),
        ("AUTH0_AUDIENCE", " , "),
        ("PORT", "http"),
        ("PORT", "70000"),
        ("CLIENT_ORIGIN_URL", "*"),
        ("AUTH0_LEEWAY_SECS", "-1"),
        ("AUTH0_LEEWAY_SECS", "301"),
        ("AUTH0_LEEWAY_SECS", "18446744073709551615"),
        ("PERMISSIONS_FROM", "all"),
        ("PERMISSIONS_FROM", "Scope"),
        ("AUTH0_ISSUER", "https://user:pass@t.example.com/"),
        ("AUTH0_ISSUER", "https://t.example.com/?a=b"),
        ("AUTH0_ISSUER", "https://t.example.com/#x"),
        ("AUTH0_ISSUER", "https://t.example.com/?"),
        ("AUTH0_JWKS_URL", "https://user@t.example.com/jwks.json"),
        ("AUTH0_JWKS_URL", "https://t.example.com/jwks.json#k"),
        ("JWKS_FETCH_TIMEOUT_SECS", "0"),
        ("JWKS_REFETCH_COOLDOWN_SECS", "soon"),
        ("JWKS_CACHE_TTL_SECS", "0"),
        ("JWKS_CACHE_TTL_SECS", "30"),
        ("JWKS_MAX_STALE_SECS", "1d"),
        ("JWKS_MIN_TTL_SECS", "90000"),
        ("DATABASE_URL", ":memory:"),
        ("DATABASE_POOL_SIZE", "0"),
        ("DATABASE_TIMEOUT_SECS", "0"),
        ("TOKEN_CACHE_SIZE", "many"),
        ("LAST_SEEN_INTERVAL_SECS", "5m"),
        ("WORKERS", "0"),
        ("WORKERS", "513"),
        ("REQUEST_HEAD_TIMEOUT_SECS", "0"),
        ("REQUEST_HEAD_TIMEOUT_SECS", "301"),
        ("REQUEST_HEAD_TIMEOUT_SECS", "5s"),
        ("SEND_TIMEOUT_SECS", "0"),
        ("KEEP_ALIVE_SECS", "0"),
        ("KEEP_ALIVE_SECS", "3601"),
        ("MAX_CONNECTIONS", "0"),
        ("MAX_CONNECTIONS", "lots"),
        ("SHUTDOWN_GRACE_SECS", "-1"),
        ("SHUTDOWN_GRACE_SECS", "0"),
        ("SHUTDOWN_GRACE_SECS", "3601"),
        ("SHUTDOWN_GRACE_SECS", "18446744073709551616"),
        ("SHUTDOWN_GRACE_SECS", "30s"),
        ("SHUTDOWN_GRACE_SECS", "1e3"),
        ("SHUTDOWN_GRACE_SECS", "thirty"),
        ("METRICS_ADDR", "9464"),
        ("METRICS_ADDR", "localhost"),
        ("DPOP_MODE", "on"),
        ("DPOP_MODE", "Required"),
        ("DPOP_IAT_WINDOW_SECS", "0"),
        ("DPOP_IAT_WINDOW_SECS", "301"),
        ("DPOP_IAT_AHEAD_SECS", "-1"),
        ("DPOP_IAT_AHEAD_SECS", "61"),
        ("DPOP_IAT_AHEAD_SECS", "5s"),
        ("DPOP_REPLAY_CACHE_SIZE", "0"),
        ("DPOP_REPLAY_PER_KEY", "0"),
        ("DPOP_REPLAY_PER_KEY", "1000001"),
        ("DPOP_REPLAY_PER_KEY", "-1"),
        ("DPOP_REPLAY_PER_KEY", "ten"),
        ("PUBLIC_BASE_URL", "api.example.com"),
        ("PUBLIC_BASE_URL", "ftp://api.example.com/"),
        ("PUBLIC_BASE_URL", "https://user:pass@api.example.com/"),
        ("PUBLIC_BASE_URL", "https://api.example.com/?a=b"),
        ("PUBLIC_BASE_URL", "https://api.example.com/#top"),
        ("DPOP_NONCE_SECRET", "too short"),
    ];
    for (variable, value) in cases {
        let vars = [
            ("AUTH0_DOMAIN", "t.auth0.com"),
            ("AUTH0_AUDIENCE", "a"),
            (variable, value),
        ];
        let error = settings(&vars).unwrap_err();
        assert_eq!(error.variable, variable, "{variable}={value}");
        assert!(error.to_string().contains(variable), "{error}");
    }
}

#[test]
fn connection_limits_have_defaults_and_can_be_set() {
    let base = [("AUTH0_DOMAIN", "t.auth0.com"), ("AUTH0_AUDIENCE", "a")];
    let defaults = settings(&base).unwrap().connections;
    assert_eq!(defaults, ConnectionSettings::default());
    assert_eq!(defaults.request_timeout, Duration::from_secs(5));
    let set = settings(
        &[
            &base[..],
            &[
                ("REQUEST_HEAD_TIMEOUT_SECS", "2"),
                ("SEND_TIMEOUT_SECS", "60"),
                ("KEEP_ALIVE_SECS", "75"),
                ("MAX_CONNECTIONS", "100"),
                ("SHUTDOWN_GRACE_SECS", "10"),
            ],
        ]
        .concat(),
    )
    .unwrap()
    .connections;
    assert_eq!(
        set,
        ConnectionSettings {
            request_timeout: Duration::from_secs(2),
            send_timeout: Duration::from_secs(60),
            keep_alive: Duration::from_secs(75),
            max_connections: 100,
            shutdown_grace: Duration::from_secs(10),
        }
    );
}

#[test]
fn a_hostile_shutdown_grace_is_refused_in_one_line_saying_what_is_expected() {
    let hostile = [
        "-1",
        "0",
        "3601",
        "18446744073709551616",
        "1e3",
        "30s",
        "0x10",
        "+-5",
        "thirty",
        "5\n6",
    ];
    for value in hostile {
        let vars = [
            ("AUTH0_DOMAIN", "t.auth0.com"),
            ("AUTH0_AUDIENCE", "a"),
            ("SHUTDOWN_GRACE_SECS", value),
        ];
        let error = settings(&vars).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "configuration error: SHUTDOWN_GRACE_SECS: expected a number of seconds from 1 to 3600, got {value:?}"
            )
        );
    }
    let vars = [
        ("AUTH0_DOMAIN", "t.auth0.com"),
        ("AUTH0_AUDIENCE", "a"),
        ("SHUTDOWN_GRACE_SECS", " 3600 "),
    ];
    let grace = settings(&vars).unwrap().connections.shutdown_grace;
    assert_eq!(
        grace,
        Duration::from_secs(3600),
        "the longest, surrounding blanks trimmed"
    );
}

/// docs/configuration.md's table, as [`VARIABLES`] make it.
fn configuration_table() -> String {
    let mut table = String::from("| variable | meaning | default |\n|---|---|---|\n");
    for (name, meaning, default) in VARIABLES {
        // One code span when it is a literal value, as written.
        let default = if default.contains([' ', '`']) || *default == "required" {
            default.to_string()
        } else {
            format!("`{default}`")
        };
        table.push_str(&format!("| `{name}` | {meaning} | {default} |\n"));
    }
    table
}

/// The configuration page lists exactly [`VARIABLES`]: its table is
/// generated (`UPDATE_DOCS=1 cargo test configuration_page` rewrites it).
#[test]
fn the_configuration_page_is_made_from_the_variables() {
    const START: &str = "<!-- configuration table: generated from config::VARIABLES -->\n";
    const END: &str = "<!-- end of configuration table -->";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
    let page = std::fs::read_to_string(path).unwrap();
    let start = page.find(START).expect("the page has the table's start marker") + START.len();
    let end = page.find(END).expect("the page has the table's end marker");
    let expected = configuration_table();
    if page[start..end] == expected {
        return;
    }
    assert!(
        std::env::var_os("UPDATE_DOCS").is_some(),
        "docs/configuration.md's table differs from config::VARIABLES: run `UPDATE_DOCS=1 cargo test configuration_page`"
    );
    std::fs::write(path, format!("{}{expected}{}", &page[..start], &page[end..])).unwrap();
}

/// The defaults the code applies are the ones [`VARIABLES`] (and so
/// `--help` and docs/configuration.md) state: every variable set to its
/// listed default gives the same settings as none set.
#[test]
fn listed_defaults_are_the_defaults_applied() {
    let required = [("AUTH0_DOMAIN", "t.auth0.com"), ("AUTH0_AUDIENCE", "a")];
    let literal = |default: &str| !default.contains([' ', '`', '{']) && default != "required";
    let listed: HashMap<&str, &str> = VARIABLES
        .iter()
        .filter(|(_, _, default)| literal(default))
        .map(|(name, _, default)| (*name, *default))
        .collect();
    assert!(listed.len() >= 25, "{listed:?}");
    let lookup = |name: &str| {
        required
            .iter()
            .find(|(required, _)| *required == name)
            .map(|(_, value)| value.to_string())
    };
    let unset = Settings::from_lookup(lookup).unwrap();
    let set = Settings::from_lookup(|name| lookup(name).or_else(|| listed.get(name).map(|v| v.to_string())))
        .unwrap();
    assert_eq!(format!("{set:?}"), format!("{unset:?}"));
}

#[test]
fn every_variable_read_is_listed() {
    let read = std::cell::RefCell::new(Vec::new());
    let _ = Settings::from_lookup(|name| {
        read.borrow_mut().push(name.to_owned());
        match name {
            "AUTH0_DOMAIN" => Some("t.auth0.com".into()),
            "AUTH0_AUDIENCE" => Some("a".into()),
            _ => None,
        }
    })
    .unwrap();
    for name in read.into_inner() {
        assert!(VARIABLES.iter().any(|(listed, ..)| *listed == name), "{name}");
    }
}

#[test]
fn dpop_settings_default_to_allowed_and_read_a_base_url() {
    let base = |vars: &[(&str, &str)]| {
        let mut all = vec![("AUTH0_DOMAIN", "t.auth0.com"), ("AUTH0_AUDIENCE", "a")];
        all.extend_from_slice(vars);
        settings(&all).unwrap().dpop
    };
    let defaults = base(&[]);
    assert_eq!(defaults, DpopSettings::default());
    assert_eq!(defaults.mode, crate::auth::DpopMode::Allowed);
    let set = base(&[
        ("DPOP_MODE", "required"),
        ("DPOP_IAT_WINDOW_SECS", "30"),
        ("PUBLIC_BASE_URL", "https://api.example.com/v1/"),
    ]);
    assert_eq!(set.mode, crate::auth::DpopMode::Required);
    assert_eq!(set.iat_window, Duration::from_secs(30));
    let public_base_url = settings(&[
        ("AUTH0_DOMAIN", "t.auth0.com"),
        ("AUTH0_AUDIENCE", "a"),
        ("PUBLIC_BASE_URL", "https://api.example.com/v1/"),
    ])
    .unwrap()
    .public_base_url;
    assert_eq!(
        public_base_url.map(String::from).as_deref(),
        Some("https://api.example.com/v1/")
    );
    assert_eq!(defaults.iat_ahead, Duration::from_secs(5));
    let ahead = base(&[("DPOP_IAT_WINDOW_SECS", "30"), ("DPOP_IAT_AHEAD_SECS", "30")]);
    assert_eq!(ahead.iat_ahead, Duration::from_secs(30));
    assert_eq!(base(&[("DPOP_IAT_AHEAD_SECS", "0")]).iat_ahead, Duration::ZERO);
    // Unset, it follows a window shorter than its default.
    let short = base(&[("DPOP_IAT_WINDOW_SECS", "2")]);
    assert_eq!(short.iat_ahead, Duration::from_secs(2));
    assert_eq!(defaults.replay_per_key, 10_000);
    let shared = base(&[("DPOP_REPLAY_CACHE_SIZE", "50"), ("DPOP_REPLAY_PER_KEY", "50")]);
    assert_eq!((shared.replay_cache_size, shared.replay_per_key), (50, 50));
    assert_eq!(base(&[("DPOP_REPLAY_PER_KEY", "1")]).replay_per_key, 1);
    // Unset, it follows a cache smaller than its default.
    let small = base(&[("DPOP_REPLAY_CACHE_SIZE", "500")]);
    assert_eq!(small.replay_per_key, 500);
    let secret = "s".repeat(32);
    let with_nonces = base(&[("DPOP_NONCE_SECRET", &secret)]);
    assert_eq!(with_nonces.nonce_secret, Some(NonceSecret(secret)));
    assert!(
        !format!("{with_nonces:?}").contains("sss"),
        "the secret is never printed"
    );
}

#[test]
fn dpop_bounds_are_checked_against_each_other_in_one_line() {
    let error = |vars: &[(&str, &str)]| {
        let mut all = vec![("AUTH0_DOMAIN", "t.auth0.com"), ("AUTH0_AUDIENCE", "a")];
        all.extend_from_slice(vars);
        settings(&all).unwrap_err()
    };
    let ahead = error(&[("DPOP_IAT_WINDOW_SECS", "10"), ("DPOP_IAT_AHEAD_SECS", "11")]);
    assert_eq!(ahead.variable, "DPOP_IAT_AHEAD_SECS");
    assert_eq!(
        ahead.to_string(),
        r#"configuration error: DPOP_IAT_AHEAD_SECS: expected a number of seconds from 0 to DPOP_IAT_WINDOW_SECS (10), got "11""#
    );
    let share = error(&[("DPOP_REPLAY_CACHE_SIZE", "100"), ("DPOP_REPLAY_PER_KEY", "101")]);
    assert_eq!(share.variable, "DPOP_REPLAY_PER_KEY");
    assert_eq!(
        share.to_string(),
        r#"configuration error: DPOP_REPLAY_PER_KEY: expected a number of proofs from 1 to DPOP_REPLAY_CACHE_SIZE (100), got "101""#
    );
}

#[test]
fn http_key_url_is_allowed_only_on_loopback() {
    for host in ["127.0.0.1:9", "localhost:9", "[::1]:9", "127.8.9.10"] {
        let url = format!("http://{host}/jwks.json");
        let s = settings(&[
            ("AUTH0_ISSUER", "https://t.example.com/"),
            ("AUTH0_AUDIENCE", "a"),
            ("AUTH0_JWKS_URL", &url),
        ]);
        assert!(s.is_ok(), "{url}");
    }
}

#[test]
fn the_client_origin_is_kept_as_browsers_send_it() {
    let origin = |raw: &str| {
        settings(&[
            ("AUTH0_DOMAIN", "t.auth0.com"),
            ("AUTH0_AUDIENCE", "a"),
            ("CLIENT_ORIGIN_URL", raw),
        ])
        .map(|s| s.client_origin_url)
    };
    assert_eq!(origin("http://localhost:4040/").unwrap(), "http://localhost:4040");
    assert_eq!(
        origin("https://App.Example.com:443").unwrap(),
        "https://app.example.com"
    );
    assert_eq!(
        origin("http://localhost:4040/app").unwrap_err().variable,
        "CLIENT_ORIGIN_URL"
    );
}

#[test]
fn the_public_base_url_is_used_without_its_trailing_slash() {
    let base = |raw: &str| {
        let url = settings(&[
            ("AUTH0_DOMAIN", "t.auth0.com"),
            ("AUTH0_AUDIENCE", "a"),
            ("PUBLIC_BASE_URL", raw),
        ])
        .unwrap()
        .public_base_url;
        match PublicUrl::new(url.as_ref(), "127.0.0.1", 6060) {
            PublicUrl::Configured { base, .. } => Some(base),
            PublicUrl::FromRequest { .. } => None,
        }
    };
    assert_eq!(
        base("https://API.example.com/").as_deref(),
        Some("https://api.example.com")
    );
    assert_eq!(
        base("https://gw.example.com/hello/").as_deref(),
        Some("https://gw.example.com/hello")
    );
    assert_eq!(
        base("http://127.0.0.1:6060").as_deref(),
        Some("http://127.0.0.1:6060")
    );
    assert_eq!(base(" ").as_deref(), None);
}
