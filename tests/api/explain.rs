//! `explain`, the token doctor: hostile input first (a token is the
//! attacker's), then what it says of each kind of token, and that its
//! verdict is the server's. Offline cases trust a made-up tenant; the
//! signature cases fetch the keys of a local issuer or use `dev`'s key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use serde_json::{Value, json};

use crate::helpers::{AUDIENCE, TestIssuer, binary, binary_in, now, shared_key, sign_raw, sign_with};

/// The tenant the offline cases trust.
const ISSUER: &str = "https://tenant.example.com/";

/// What one run of `explain` did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// What a finished run printed, which must be tame (see [`assert_tame`]).
    fn of(output: std::process::Output) -> Self {
        let run = Run {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).expect("UTF-8 output"),
            stderr: String::from_utf8(output.stderr).expect("UTF-8 output"),
        };
        assert_tame(&run);
        run
    }

    /// The line about `topic` with `status` (`ok`, `problem`...), which must exist.
    fn line(&self, status: &str, topic: &str) -> &str {
        let start = format!("{status:<9} {topic}: ");
        self.stdout
            .lines()
            .find(|line| line.starts_with(&start))
            .unwrap_or_else(|| panic!("no `{start}` line:\n{}", self.stdout))
    }

    fn verdict(&self) -> &str {
        self.stdout
            .lines()
            .last()
            .filter(|line| line.starts_with("verdict   "))
            .unwrap_or_else(|| panic!("no verdict:\n{}", self.stdout))
    }
}

/// `explain ARGS` with `env`, `input` on standard input.
fn explain(env: &[(&str, &str)], args: &[&str], input: &[u8]) -> Run {
    let mut all = vec!["explain"];
    all.extend_from_slice(args);
    let output = binary()
        .envs(env.iter().copied())
        .args(&all)
        .output_with_input(input);
    Run::of(output)
}

/// `explain` of `token` under the offline tenant's settings plus `env`.
fn offline(token: &str, env: &[(&str, &str)]) -> Run {
    let mut all = vec![("AUTH0_ISSUER", ISSUER), ("AUTH0_AUDIENCE", AUDIENCE)];
    all.extend_from_slice(env);
    explain(&all, &[], token.as_bytes())
}

/// What any output must be, whatever the token: lines of findings and a
/// verdict, no control character but the line ends, short, no panic.
fn assert_tame(run: &Run) {
    let words = ["ok ", "problem ", "note ", "unchecked ", "verdict "];
    for line in run.stdout.lines() {
        assert!(
            words.iter().any(|word| line.starts_with(word)) || line.starts_with('{'),
            "a line that is not a finding: {line:?}"
        );
    }
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "a control character in {name}: {text:?}"
        );
        assert!(text.len() < 8 * 1024, "{name} of {} bytes", text.len());
        assert!(!text.contains("panicked"), "{text}");
    }
}

/// `explain` refused it: exit 1, the verdict says so, and stderr has the one line.
fn assert_refused(run: &Run) {
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    assert!(run.verdict().starts_with("verdict   refused: "), "{}", run.stdout);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("error: refused: "), "{}", run.stderr);
}

fn b64(json: &Value) -> String {
    URL_SAFE_NO_PAD.encode(json.to_string())
}

fn encoding_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(shared_key("explain").pem().as_bytes()).unwrap()
}

/// A token of the offline tenant for `sub`, with `extra` claims (`null` removes one).
fn token(sub: &str, extra: Value) -> String {
    let now = now();
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 3600});
    sign_with(&shared_key("explain"), claims, extra)
}

#[test]
fn hostile_input_is_refused_in_a_few_escaped_lines() {
    let header = b64(&json!({"alg": "RS256", "kid": "k"}));
    let claims = b64(&json!({"iss": ISSUER, "sub": "a"}));
    let nested = format!("{{\"sub\":{}1{}}}", "[".repeat(100), "]".repeat(100));
    let megabyte = vec![b'a'; 1024 * 1024];
    let garbage: Vec<u8> = [0xff]
        .into_iter()
        .chain((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8))
        .collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("1 MiB", megabyte, "the server refuses a token over 8192 bytes"),
        ("binary garbage", garbage, "not UTF-8"),
        ("2 parts", format!("{header}.{claims}").into_bytes(), "2 parts"),
        (
            "4 parts",
            format!("{header}.{claims}.c.d").into_bytes(),
            "4 parts",
        ),
        (
            "6 parts",
            format!("{header}.{claims}.c.d.e.f").into_bytes(),
            "6 parts",
        ),
        (
            "invalid base64",
            format!("{header}.{claims}+.sig").into_bytes(),
            "payload is not base64url",
        ),
        (
            "header not JSON",
            format!("{}.{claims}.c2ln", URL_SAFE_NO_PAD.encode("not json")).into_bytes(),
            "the header is not a JSON object",
        ),
        (
            "deeply nested JSON",
            format!("{header}.{}.c2ln", URL_SAFE_NO_PAD.encode(nested)).into_bytes(),
            "nested more than 16 levels",
        ),
        (
            "escape sequence in the token",
            b"eyJ\x1b[2J\x1b]0;pwned\x07.a.b".to_vec(),
            "\"\\u{001b}\" at byte 3",
        ),
    ];
    for (name, input, expected) in cases {
        let run = explain(
            &[("AUTH0_ISSUER", ISSUER), ("AUTH0_AUDIENCE", AUDIENCE)],
            &[],
            &input,
        );
        assert_refused(&run);
        assert!(run.stdout.contains(expected), "{name}: {}", run.stdout);
    }
}

#[test]
fn claims_and_a_kid_holding_escape_sequences_and_line_breaks_are_printed_escaped() {
    let hostile = "\u{1b}[31mred\u{1b}]0;title\u{7}\u{202e}txt.exe\r\nverdict   accepted";
    let claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "auth0|x", "iat": now(), "exp": now() + 3600,
        "acr": hostile, "amr": [hostile], "azp": "x".repeat(2000),
    });
    let kid = "k\nverdict   accepted: forged\r\u{1b}[1A";
    let token = sign_raw(
        &encoding_key(),
        json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
        &claims,
    );
    let run = offline(&token, &[]);
    // Accepted offline (the signature unchecked): the escaping is what is tested.
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        run.line("note", "header")
            .contains(r#"kid "k\u{000a}verdict   accepted: forged\u{000d}\u{001b}[1A""#),
        "{}",
        run.stdout
    );
    let step_up = run.line("note", "step-up");
    assert!(
        step_up.contains(
            r#"acr "\u{001b}[31mred\u{001b}]0;title\u{0007}\u{202e}txt.exe\u{000d}\u{000a}verdict"#
        ),
        "{step_up}"
    );
    // Inside JSON, serde_json's own escapes; the others (RLO...) as above.
    assert!(step_up.contains(r#"amr ["\u001b[31mred"#), "{step_up}");
    assert!(step_up.contains(r#"\u0007\u{202e}txt.exe"#), "{step_up}");
    assert!(
        run.line("note", "kind").contains("more characters)"),
        "a long value is cut: {}",
        run.stdout
    );
    let verdicts = run.stdout.lines().filter(|line| line.starts_with("verdict"));
    assert_eq!(verdicts.count(), 1, "{}", run.stdout);
}

#[test]
fn a_valid_token_offline_passes_every_check_but_the_signature() {
    let token = token(
        "auth0|alice",
        json!({"permissions": ["read:messages"], "scope": "openid"}),
    );
    let run = offline(&token, &[]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert_eq!(
        run.line("note", "permissions"),
        "note      permissions: \"read:messages\" (from the permissions claim; PERMISSIONS_FROM=auto)"
    );
    assert!(run.line("note", "kind").contains("a user token"));
    assert!(
        run.line("unchecked", "signature")
            .contains("signature not checked offline (use --fetch)")
    );
    assert!(run.verdict().contains("accepted if its signature is valid"));
    assert!(!run.stdout.contains("problem"), "{}", run.stdout);
    assert_secret_parts_never_shown(&token, &run);

    let json = explain(
        &[("AUTH0_ISSUER", ISSUER), ("AUTH0_AUDIENCE", AUDIENCE)],
        &["--json", &token],
        b"",
    );
    let parsed: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(parsed["accepted"], true);
    assert_eq!(parsed["signature_checked"], false);
    assert!(parsed["findings"].as_array().unwrap().len() > 5);
    assert_secret_parts_never_shown(&token, &json);
}

/// Neither the signature nor the whole token is printed, anywhere.
fn assert_secret_parts_never_shown(token: &str, run: &Run) {
    let signature = token.rsplit('.').next().unwrap();
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(signature), "the signature printed: {text}");
        assert!(!text.contains(token), "the token printed: {text}");
        assert!(
            !text.contains(&signature[..16]),
            "part of the signature printed: {text}"
        );
    }
}

#[test]
fn machine_tokens_and_permissions_from_are_explained() {
    let machine = token(
        "app@clients",
        json!({"gty": "client-credentials", "scope": "read:messages write:x"}),
    );
    let run = offline(&machine, &[]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert!(
        run.line("note", "kind")
            .contains("a machine token (gty client-credentials)")
    );
    assert!(run.line("note", "permissions").contains(
        "\"read:messages\", \"write:x\" (from the scope claim, which an administrator granted this machine"
    ));
    let user = token("auth0|u", json!({"scope": "read:admin-messages"}));
    let run = offline(&user, &[]);
    assert!(
        run.line("note", "permissions")
            .contains("its scope \"read:admin-messages\" is what its client asked for, and grants nothing")
    );
    let run = offline(&user, &[("PERMISSIONS_FROM", "scope")]);
    assert!(
        run.line("note", "permissions")
            .contains("\"read:admin-messages\" (from the scope claim; PERMISSIONS_FROM=scope)")
    );
}

#[test]
fn an_expired_token_says_how_long_ago() {
    let run = offline(&token("auth0|u", json!({"exp": now() - 7200 - 125})), &[]);
    assert_refused(&run);
    let line = run.line("problem", "exp");
    assert!(line.contains("expired 2h 2m"), "{line}");
    assert!(line.contains("60 s of leeway (AUTH0_LEEWAY_SECS)"), "{line}");
    assert!(run.verdict().contains("(invalid token: token expired)"));
    // Within the leeway: a note, and accepted.
    let run = offline(&token("auth0|u", json!({"exp": now() - 30})), &[]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert!(run.line("note", "exp").contains("within the 60 s of leeway"));
    // Clock skew: issued in the future.
    let run = offline(&token("auth0|u", json!({"iat": now() + 600})), &[]);
    assert_refused(&run);
    let line = run.line("problem", "iat");
    assert!(
        line.contains("in the future, beyond the 60 s of leeway"),
        "{line}"
    );
}

#[test]
fn a_wrong_audience_names_both() {
    let run = offline(
        &token(
            "auth0|u",
            json!({"aud": ["https://other.example.com", "https://tenant.example.com/userinfo"]}),
        ),
        &[],
    );
    assert_refused(&run);
    let line = run.line("problem", "aud");
    assert!(
        line.contains(
            r#"the token is for "https://other.example.com", "https://tenant.example.com/userinfo""#
        ) && line.contains(&format!("this API accepts \"{AUDIENCE}\" (AUTH0_AUDIENCE)"))
            && line.contains(&format!("`audience={AUDIENCE}`")),
        "{line}"
    );
    let run = offline(&token("auth0|u", json!({"aud": format!("{AUDIENCE}/")})), &[]);
    assert!(run.line("problem", "aud").contains("differ by a trailing slash"));
}

#[test]
fn an_issuer_a_slash_apart_is_called_out_with_both_spellings() {
    let bare = ISSUER.trim_end_matches('/');
    let run = offline(&token("auth0|u", json!({})), &[("AUTH0_ISSUER", bare)]);
    assert_refused(&run);
    let line = run.line("problem", "iss");
    assert!(
        line.contains(&format!(
            "\"{ISSUER}\" differs from the trusted issuer \"{bare}\" by a trailing slash"
        )) && line.contains(&format!("set AUTH0_ISSUER=\"{ISSUER}\"")),
        "{line}"
    );
    assert!(run.verdict().contains("unexpected issuer"));
}

#[test]
fn opaque_and_encrypted_tokens_name_the_tenant_setting_to_change() {
    let run = offline("kJ8fX2m4Qz1aVb7N0pYc3RtWu6sLe9Hd", &[]);
    assert_refused(&run);
    assert!(
        run.line("problem", "shape")
            .contains("an opaque token (no dots: not a JWT)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&format!("sending `audience={AUDIENCE}`")));

    let jwe = format!(
        "{}.a2V5.aXY.Y2lwaGVy.dGFn",
        b64(&json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "enc"}))
    );
    let run = offline(&jwe, &[]);
    assert_refused(&run);
    assert!(
        run.line("problem", "shape")
            .contains("token encryption is on for this API in Auth0; turn it off"),
        "{}",
        run.stdout
    );
    // Auth0's own opaque tokens are JWEs with `dir` and no key.
    let auth0_opaque = format!(
        "{}..aXY.Y2lwaGVy.dGFn",
        b64(&json!({"alg": "dir", "enc": "A256GCM", "iss": ISSUER}))
    );
    let run = offline(&auth0_opaque, &[]);
    assert!(
        run.line("problem", "shape").contains("an opaque token"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_id_token_is_told_apart() {
    let id_token = token(
        "auth0|u",
        json!({"aud": "Xq3kP9sT2vW8yZ1bN4mC7dF0gH5jL6rA", "azp": "Xq3kP9sT2vW8yZ1bN4mC7dF0gH5jL6rA", "nonce": "n-0S6_WzA2Mj", "name": "U"}),
    );
    let run = offline(&id_token, &[]);
    assert_refused(&run);
    assert!(run.line("problem", "aud").contains("looks like a client id"));
    assert!(run.line("problem", "id-token").contains("send the access token"));
}

#[test]
fn a_dpop_bound_token_needs_the_dpop_scheme_and_a_proof() {
    let bound = token(
        "auth0|u",
        json!({"cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}),
    );
    let run = offline(&bound, &[]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        run.line("note", "dpop")
            .contains("send it as `Authorization: DPoP <token>`")
    );
    assert!(run.verdict().contains("with the DPoP scheme and a valid proof"));
    assert!(run.line("unchecked", "dpop").contains("not checked here"));

    let run = offline(&format!("Bearer {bound}"), &[]);
    assert_refused(&run);
    assert!(run.line("note", "input").contains("the `Bearer` scheme"));
    assert!(
        run.line("problem", "dpop")
            .contains("present it with the DPoP scheme")
    );

    let run = offline(&bound, &[("DPOP_MODE", "disabled")]);
    assert_refused(&run);
    assert!(run.line("problem", "dpop").contains("DPOP_MODE=disabled"));

    let run = offline(&token("auth0|u", json!({})), &[("DPOP_MODE", "required")]);
    assert_refused(&run);
    assert!(run.line("problem", "dpop").contains("DPOP_MODE=required"));
}

#[test]
fn token_profile_rfc9068_requirements_are_named() {
    let run = offline(&token("auth0|u", json!({})), &[("TOKEN_PROFILE", "rfc9068")]);
    assert_refused(&run);
    assert!(
        run.line("problem", "typ")
            .contains("TOKEN_PROFILE=rfc9068 requires at+jwt")
    );
    assert!(run.line("problem", "profile").contains("no client_id"));
}

#[actix_web::test]
async fn with_fetch_the_signature_and_the_kid_are_checked_against_the_issuer() {
    let key = shared_key("explain");
    let issuer = TestIssuer::start(&[&key]).await;
    let env: Vec<(&str, String)> = issuer.env();
    let run_with = move |token: String| {
        let env = env.clone();
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            explain(&env, &["--fetch"], token.as_bytes())
        })
    };

    let good = sign_with(
        &key,
        issuer.claims("auth0|f"),
        json!({"permissions": ["read:messages"]}),
    );
    let run = run_with(good.clone()).await.unwrap();
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(run.line("ok", "signature").contains("verified"));
    assert!(
        run.verdict()
            .starts_with("verdict   accepted: the server would accept")
    );
    assert!(!run.stdout.contains("unchecked"), "{}", run.stdout);
    assert_secret_parts_never_shown(&good, &run);
    assert_eq!(issuer.fetches(), 1);

    let stranger = sign_with(&shared_key("explain-other"), issuer.claims("auth0|f"), json!({}));
    let run = run_with(stranger.clone()).await.unwrap();
    assert_refused(&run);
    assert!(
        run.line("problem", "kid")
            .contains("the issuer does not publish a key with the token's kid"),
        "{}",
        run.stdout
    );
    assert_secret_parts_never_shown(&stranger, &run);

    let (signed, _) = good.rsplit_once('.').unwrap();
    let forged_claims = issuer.claims("auth0|admin");
    let forged = format!(
        "{}.{}.{}",
        signed.split('.').next().unwrap(),
        b64(&forged_claims),
        good.rsplit('.').next().unwrap()
    );
    let run = run_with(forged).await.unwrap();
    assert_refused(&run);
    assert!(
        run.line("problem", "signature")
            .contains("changed after it was signed")
    );
}

#[test]
fn with_the_development_key_the_signature_is_checked_offline() {
    let dir = tempfile::tempdir().unwrap();
    let minted = binary_in(dir.path())
        .args(&["token", "--sub", "dev|u", "--permissions", "read:messages"])
        .stdout();
    let run = Run::of(
        binary_in(dir.path())
            .args(&["explain", "--dev", minted.trim()])
            .output(),
    );
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(run.line("ok", "signature").contains("verified"));
    assert!(run.line("note", "permissions").contains("\"read:messages\""));
    assert_secret_parts_never_shown(minted.trim(), &run);

    let (code, stderr) = binary_in(dir.path())
        .args(&["explain", "--data-dir", "elsewhere", minted.trim()])
        .code_and_stderr();
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no development issuer in elsewhere"), "{stderr}");
}

#[test]
fn bad_configuration_and_no_token_are_one_line_errors() {
    let run = explain(&[("AUTH0_DOMAIN", "t.example.com")], &[], b"a.b.c");
    assert_eq!(run.code, Some(1));
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("error: configuration error: AUTH0_AUDIENCE"),
        "{}",
        run.stderr
    );

    for input in [&b""[..], b" \n\t"] {
        let run = explain(
            &[("AUTH0_ISSUER", ISSUER), ("AUTH0_AUDIENCE", AUDIENCE)],
            &[],
            input,
        );
        assert_eq!(run.code, Some(2), "{}", run.stderr);
        assert!(run.stderr.starts_with("error: no token") && run.stderr.ends_with("(see --help)\n"));
    }
}
