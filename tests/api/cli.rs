//! The binary as a user runs it: `serve`, `dev`, `token`, `users`, `migrate`.

use std::process::Stdio;

use crate::helpers::{Backend, TestApp, binary, binary_in, eventually, free_port, start_dev};

#[test]
fn missing_or_malformed_settings_stop_the_server_with_one_line() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "AUTH0_DOMAIN"),
        (&[("AUTH0_DOMAIN", "t.example.com")], "AUTH0_AUDIENCE"),
        (
            &[
                ("AUTH0_DOMAIN", "t.example.com"),
                ("AUTH0_AUDIENCE", "a"),
                ("PORT", "x"),
            ],
            "PORT",
        ),
        (
            &[
                ("AUTH0_DOMAIN", "t.example.com"),
                ("AUTH0_AUDIENCE", "a"),
                ("AUTH0_JWKS_URL", "http://t.example.com/"),
            ],
            "AUTH0_JWKS_URL",
        ),
        (
            &[("AUTH0_ISSUER", "foo"), ("AUTH0_AUDIENCE", "a")],
            "AUTH0_ISSUER",
        ),
        (
            &[("AUTH0_ISSUER", "http://t.example.com/"), ("AUTH0_AUDIENCE", "a")],
            "AUTH0_ISSUER",
        ),
        (
            &[
                ("AUTH0_DOMAIN", "t.example.com"),
                ("AUTH0_AUDIENCE", "a"),
                ("CLIENT_ORIGIN_URL", "http://localhost:4040/app"),
            ],
            "CLIENT_ORIGIN_URL",
        ),
        (
            &[
                ("AUTH0_DOMAIN", "t.example.com"),
                ("AUTH0_AUDIENCE", "a"),
                ("DATABASE_URL", "file:users.db?mode=memory"),
            ],
            "DATABASE_URL",
        ),
        (
            &[
                ("AUTH0_DOMAIN", "t.example.com"),
                ("AUTH0_AUDIENCE", "a"),
                ("DPOP_MODE", "optional"),
            ],
            "DPOP_MODE",
        ),
        (
            &[
                ("AUTH0_DOMAIN", "t.example.com"),
                ("AUTH0_AUDIENCE", "a"),
                ("PUBLIC_BASE_URL", "https://api.example.com/?v=1"),
            ],
            "PUBLIC_BASE_URL",
        ),
        // Valid settings the machine cannot honour: still one line that names them.
        (
            &[
                ("AUTH0_DOMAIN", "t.example.com"),
                ("AUTH0_AUDIENCE", "a"),
                ("DATABASE_URL", "/nonexistent/folder/app.db"),
            ],
            "DATABASE_URL",
        ),
        (
            &[
                ("AUTH0_DOMAIN", "t.example.com"),
                ("AUTH0_AUDIENCE", "a"),
                ("HOST", "192.0.2.1"),
            ],
            "HOST",
        ),
    ];
    for (env, variable) in cases {
        let (code, stderr) = binary().envs(env.iter().copied()).code_and_stderr();
        assert_ne!(code, Some(0), "{env:?}");
        assert!(code.is_some(), "exited by signal: {env:?}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(variable),
            "{stderr}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("--help"),
            "{stderr}"
        );
    }
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    let cases: &[&[&str]] = &[
        &["bogus"],
        &["token"],
        &["token", "--sub", ""],
        &["token", "--sub", "a", "--ttl", "forever"],
        &["users", "--format", "xml"],
        &["proof", "--dpop-key", "k.pem", "--url", "http://127.0.0.1/"],
    ];
    for args in cases {
        let (code, stderr) = binary().args(args).code_and_stderr();
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(
            stderr.trim_end().ends_with("(see --help)") && stderr.matches("--help").count() == 1,
            "one pointer to --help: {stderr}"
        );
    }
}

/// A development key folder holding `key`, with the given modes.
fn key_folder(key: &str, folder_mode: u32, key_mode: u32) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join(".dev-issuer");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("signing-key.pem"), key).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(folder_mode)).unwrap();
    std::fs::set_permissions(
        folder.join("signing-key.pem"),
        std::fs::Permissions::from_mode(key_mode),
    )
    .unwrap();
    dir
}

#[test]
fn a_corrupt_development_key_is_reported_not_replaced() {
    let dir = key_folder("garbage", 0o700, 0o600);
    let (code, stderr) = binary_in(dir.path())
        .args(&["token", "--sub", "a"])
        .code_and_stderr();
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not a usable RSA private key"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".dev-issuer/signing-key.pem")).unwrap(),
        "garbage"
    );
}

#[test]
fn a_development_key_others_can_read_is_refused_in_one_line() {
    let pem = actix_auth0_api::dev::SigningKey::generate("k")
        .unwrap()
        .pem()
        .to_owned();
    for (folder_mode, key_mode, advice) in [(0o700, 0o644, "chmod 600"), (0o755, 0o600, "chmod 700")] {
        let dir = key_folder(&pem, folder_mode, key_mode);
        for command in [&["token", "--sub", "a"][..], &["dev"]] {
            let (code, stderr) = binary_in(dir.path()).args(command).code_and_stderr();
            assert_eq!(code, Some(1), "{command:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(
                stderr.contains("open to group or others") && stderr.contains(advice),
                "{stderr}"
            );
        }
    }
}

/// The status `url` answers with `token`, once it answers at all.
async fn status(url: &str, token: &str) -> u16 {
    let mut status = None;
    eventually(std::time::Duration::from_secs(5), async || {
        let response = reqwest::Client::new().get(url).bearer_auth(token).send().await;
        status = response.ok().map(|response| response.status().as_u16());
        status.is_some()
    })
    .await;
    status.unwrap_or_else(|| panic!("{url} never answered"))
}

#[actix_web::test]
async fn dev_works_end_to_end_with_its_printed_and_minted_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let dev = start_dev(dir.path(), &port);
    let api = format!("http://127.0.0.1:{port}");
    let [user, reader, admin] = [&dev.tokens[0], &dev.tokens[1], &dev.tokens[2]];

    assert_eq!(status(&format!("{api}/api/private"), user).await, 200);
    assert_eq!(status(&format!("{api}/api/private-scoped"), user).await, 403);
    assert_eq!(status(&format!("{api}/api/private-scoped"), reader).await, 200);
    assert_eq!(status(&format!("{api}/api/messages/admin"), reader).await, 403);
    assert_eq!(status(&format!("{api}/api/messages/admin"), admin).await, 200);

    // No PORT: `token` signs for the issuer `dev` runs as in this folder.
    let minted = binary_in(dir.path())
        .args(&[
            "token",
            "--sub",
            "script|1",
            "--permissions",
            "read:admin-messages,read:messages",
            "--ttl",
            "5m",
        ])
        .stdout();
    assert_eq!(
        status(&format!("{api}/api/messages/admin"), minted.trim()).await,
        200
    );
    let wrong_audience = binary_in(dir.path())
        .envs([("PORT", &port)])
        .args(&["token", "--sub", "script|2", "--aud", "https://elsewhere.example"])
        .stdout();
    assert_eq!(
        status(&format!("{api}/api/private"), wrong_audience.trim()).await,
        401
    );

    // Step-up: a token from a multi-factor login a minute ago opens the
    // sensitive route; one from a login an hour ago does not.
    let mfa = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
    let sensitive = format!("{api}/api/messages/sensitive");
    for (auth_time, expected) in [("1m", 200), ("now", 200), ("1h", 401)] {
        let stepped_up = binary_in(dir.path())
            .args(&[
                "token",
                "--sub",
                "script|3",
                "--acr",
                mfa,
                "--auth-time",
                auth_time,
            ])
            .stdout();
        assert_eq!(
            status(&sensitive, stepped_up.trim()).await,
            expected,
            "{auth_time}"
        );
    }
    assert_eq!(status(&sensitive, admin).await, 401, "no acr");

    let batch = binary_in(dir.path())
        .envs([("PORT", &port)])
        .args(&["token", "--sub", "load", "--count", "3"])
        .stdout();
    assert_eq!(batch.lines().count(), 3);
    for token in batch.lines() {
        assert_eq!(status(&format!("{api}/api/private"), token).await, 200);
    }

    let listing = binary_in(dir.path()).args(&["users", "--json"]).stdout();
    let subs: Vec<String> = listing
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["sub"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        subs,
        vec![
            "dev|user",
            "dev|reader",
            "dev|admin",
            "script|1",
            "script|3",
            "load-1",
            "load-2",
            "load-3"
        ]
    );

    let table = binary_in(dir.path()).args(&["users"]).stdout();
    assert!(table.starts_with("id  issuer  "), "{table}");
    let issuer = format!("http://127.0.0.1:{port}/");
    let script = table.lines().find(|l| l.contains("script|1")).unwrap();
    let cells: Vec<&str> = script.split_whitespace().collect();
    assert_eq!(cells[..3], ["4", issuer.as_str(), "script|1"], "{table}");
}

#[actix_web::test]
async fn dev_tokens_bound_to_a_dpop_key_work_with_its_proofs() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let _dev = start_dev(dir.path(), &port);
    let url = format!("http://127.0.0.1:{port}/api/me");
    let token = binary_in(dir.path())
        .args(&["token", "--sub", "script|dpop", "--dpop-key", "dpop.pem"])
        .stdout();
    let token = token.trim();
    let mode = std::fs::metadata(dir.path().join("dpop.pem"))
        .unwrap()
        .permissions();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
    let proof = || {
        binary_in(dir.path())
            .args(&["proof", "--dpop-key", "dpop.pem", "--token", token, "--url", &url])
            .stdout()
    };
    let client = reqwest::Client::new();
    let send = async |authorization: String, proof: String| {
        client
            .get(&url)
            .header("Authorization", authorization)
            .header("DPoP", proof.trim())
            .send()
            .await
            .unwrap()
    };
    let first = proof();
    let reply = send(format!("DPoP {token}"), first.clone()).await;
    assert_eq!(reply.status(), 200);
    let me: serde_json::Value = serde_json::from_str(&reply.text().await.unwrap()).unwrap();
    assert_eq!(me["sub"], "script|dpop");
    assert_eq!(
        send(format!("DPoP {token}"), first).await.status(),
        401,
        "a proof is single-use"
    );
    assert_eq!(send(format!("DPoP {token}"), proof()).await.status(), 200);
    assert_eq!(status(&url, token).await, 401, "a bound token is no bearer token");

    // `--curl` prints the whole request, ready to paste.
    let line = binary_in(dir.path())
        .args(&[
            "proof",
            "--dpop-key",
            "dpop.pem",
            "--token",
            token,
            "--url",
            &url,
            "--curl",
        ])
        .stdout();
    let quoted: Vec<&str> = line.split('"').collect();
    assert_eq!(quoted[0], "curl -H ", "{line}");
    let authorization = quoted[1].strip_prefix("Authorization: ").unwrap();
    let proof = quoted[3].strip_prefix("DPoP: ").unwrap();
    assert_eq!(quoted[5], url, "{line}");
    assert_eq!(
        send(authorization.to_owned(), proof.to_owned()).await.status(),
        200
    );

    // A file that holds no key is one line, exit 1.
    std::fs::write(dir.path().join("junk.pem"), "junk").unwrap();
    let (code, stderr) = binary_in(dir.path())
        .args(&["proof", "--dpop-key", "junk.pem", "--token", token, "--url", &url])
        .code_and_stderr();
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("junk.pem"), "{stderr}");
}

/// `dev` answers only requests addressed to a loopback name: a page whose
/// own name was rebound to 127.0.0.1 (DNS rebinding) must not read the
/// tokens on its docs page, or anything else.
#[actix_web::test]
async fn dev_refuses_a_host_that_is_not_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let dev = start_dev(dir.path(), &port);
    let client = reqwest::Client::new();
    crate::helpers::wait_ready(&dev.address, &client).await;
    let get = async |path: &str, host: &str| {
        let response = client
            .get(format!("{}{path}", dev.address))
            .header("Host", host)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    };
    for host in [
        "rebound.example",
        &format!("rebound.example:{port}"),
        "localhost.rebound.example",
    ] {
        for path in ["/docs", "/api/public", "/.well-known/jwks.json"] {
            let (status, body) = get(path, host).await;
            assert_eq!(status, 421, "{host}{path}: {body}");
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["error"], "misdirected_request", "{host}{path}");
            assert!(!body.to_string().contains(&dev.tokens[0]));
        }
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (status, body) = get("/docs", &host).await;
        assert_eq!(status, 200, "{host}");
        assert!(
            body.contains(&dev.tokens[0]),
            "{host}: the docs page offers the tokens"
        );
    }
}

#[actix_web::test]
async fn serve_refuses_a_development_token() {
    let token = binary().args(&["token", "--sub", "dev|user"]).stdout();
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let reply = app.get_as("/api/private", token.trim()).await;
    assert_eq!(reply.status, 401, "{reply:?}");
}

#[test]
fn dev_refuses_a_non_loopback_host() {
    let (code, stderr) = binary()
        .envs([("HOST", "0.0.0.0")])
        .args(&["dev"])
        .code_and_stderr();
    assert_eq!(code, Some(1));
    assert!(stderr.contains("HOST") && stderr.contains("loopback"), "{stderr}");
}

#[test]
fn migrate_says_what_ran() {
    let dir = tempfile::tempdir().unwrap();
    let migrate = || {
        binary_in(dir.path())
            .envs([("DATABASE_URL", "fresh.db")])
            .args(&["migrate"])
            .stdout()
    };
    assert!(migrate().contains("applied 20261123000000"));
    assert!(migrate().contains("no pending migrations"));
    let (code, stderr) = binary_in(dir.path())
        .envs([("DATABASE_URL", "absent.db")])
        .args(&["users"])
        .code_and_stderr();
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no database at absent.db"), "{stderr}");
}

/// Settings come from `./.env` or the file `--env-file` names, never from a
/// `.env` in a parent folder: whoever can write one there could point
/// `AUTH0_JWKS_URL` at keys of their own. The log names the file read.
#[test]
fn only_the_working_folders_env_file_or_the_named_one_is_read() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("api");
    std::fs::create_dir(&dir).unwrap();
    let planted = parent.path().join("planted.db");
    std::fs::write(
        parent.path().join(".env"),
        format!("DATABASE_URL={}\n", planted.display()),
    )
    .unwrap();
    let migrate = |args: &[&str]| {
        let output = binary_in(&dir).args(args).args(&["migrate"]).output();
        let stderr = String::from_utf8(output.stderr).unwrap();
        (output.status.code(), stderr)
    };

    let (code, stderr) = migrate(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(dir.join("app.db").exists(), "the default database, in ./");
    assert!(!planted.exists(), "the parent folder's .env was read");
    assert!(!stderr.contains("settings read from"), "{stderr}");

    std::fs::write(dir.join(".env"), "DATABASE_URL=own.db\n").unwrap();
    let (code, stderr) = migrate(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(dir.join("own.db").exists());
    assert!(stderr.contains("settings read from .env"), "{stderr}");

    std::fs::write(parent.path().join("named.env"), "DATABASE_URL=named.db\n").unwrap();
    let (code, stderr) = migrate(&["--env-file", "../named.env"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(dir.join("named.db").exists(), "--env-file replaces ./.env");
    assert!(stderr.contains("settings read from ../named.env"), "{stderr}");

    let (code, stderr) = migrate(&["--env-file", "absent.env"]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: absent.env: "), "{stderr}");
    assert!(!planted.exists());
}

/// A PostgreSQL URL that is malformed, or names a server that is not
/// there, stops `serve`, `users` and `migrate` with an error that never shows
/// its password, as written or decoded.
#[test]
fn database_errors_never_print_the_password() {
    let urls = [
        (
            "postgres://api:SeC%zzrEt2@127.0.0.1:9/api",
            &["SeC", "zzrEt2"][..],
        ),
        ("postgres://api:s3cret%2Dpw@127.0.0.1:9/api", &["s3cret"][..]),
        ("postgresql://api@127.0.0.1:9/api?password=q%zzpw", &["zzpw"][..]),
    ];
    for (url, secrets) in urls {
        for command in ["serve", "users", "migrate"] {
            let (code, stderr) = binary()
                .envs([
                    ("DATABASE_URL", url),
                    ("AUTH0_DOMAIN", "tenant.example.com"),
                    ("AUTH0_AUDIENCE", "https://api.example.com"),
                ])
                .args(&[command])
                .code_and_stderr();
            assert_eq!(code, Some(1), "{command} with {url}: {stderr}");
            assert!(
                stderr
                    .lines()
                    .last()
                    .is_some_and(|line| line.starts_with("error: ")),
                "{command} with {url}: {stderr}"
            );
            for secret in secrets {
                assert!(
                    !stderr.contains(secret),
                    "{command} with {url} printed {secret}: {stderr}"
                );
            }
        }
    }
}

#[test]
fn output_cut_short_by_the_reader_is_not_an_error() {
    // 300 tokens of about 650 bytes: three times a pipe's 64 KiB buffer.
    let mut process = binary()
        .args(&["token", "--sub", "piped", "--count", "300"])
        .spawn(Stdio::piped(), Stdio::piped());
    let mut first = String::new();
    let stdout = process.child.stdout.take().unwrap();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first).unwrap();
    assert_eq!(first.matches('.').count(), 2, "a token: {first}");
    // The reader is gone (as with `| head -1`); the rest cannot be written.
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut process.child.stderr.take().unwrap(), &mut stderr).unwrap();
    let output = process.child.wait().unwrap();
    assert!(output.success(), "{stderr}");
    assert!(
        !stderr.contains("error") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

/// The log lines `serve` writes with `env` up to "listening on".
fn start_up_log(env: &[(&str, &str)]) -> Vec<String> {
    use std::io::BufRead;
    let port = free_port().to_string();
    let mut process = binary()
        .envs([
            ("AUTH0_AUDIENCE", "a"),
            ("AUTH0_JWKS_URL", "http://127.0.0.1:9/jwks.json"),
            ("PORT", &port),
        ])
        .envs(env.iter().copied())
        .args(&["serve"])
        .spawn(Stdio::null(), Stdio::piped());
    let stderr = std::io::BufReader::new(process.child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines().map_while(Result::ok) {
        let done = line.contains("listening on");
        seen.push(line);
        if done {
            break;
        }
    }
    seen
}

#[test]
fn an_issuer_without_its_trailing_slash_is_warned_about() {
    let seen = start_up_log(&[("AUTH0_ISSUER", "https://tenant.example.com")]);
    assert!(
        seen.iter()
            .any(|l| l.contains("WARN") && l.contains("no trailing slash")),
        "{seen:#?}"
    );
}

#[test]
fn an_audience_that_is_not_the_public_base_url_is_warned_about() {
    let warned = |seen: &[String]| {
        seen.iter()
            .any(|l| l.contains("WARN") && l.contains("does not name PUBLIC_BASE_URL"))
    };
    let issuer = ("AUTH0_ISSUER", "https://tenant.example.com/");
    let base = ("PUBLIC_BASE_URL", "https://api.example.com/mcp/");
    let seen = start_up_log(&[
        issuer,
        base,
        ("AUTH0_AUDIENCE", "https://hello-world.example.com"),
    ]);
    assert!(warned(&seen), "{seen:#?}");
    let seen = start_up_log(&[issuer, base, ("AUTH0_AUDIENCE", "https://api.example.com/mcp")]);
    assert!(!warned(&seen), "{seen:#?}");
    let seen = start_up_log(&[issuer]);
    assert!(
        !warned(&seen),
        "no PUBLIC_BASE_URL, nothing to compare: {seen:#?}"
    );
}

#[test]
fn more_connections_than_open_files_are_warned_about() {
    let warned = |seen: &[String]| {
        seen.iter()
            .any(|l| l.contains("WARN") && l.contains("open-file limit"))
    };
    let issuer = [("AUTH0_ISSUER", "https://tenant.example.com/")];
    let seen = start_up_log(&[&issuer[..], &[("WORKERS", "2"), ("MAX_CONNECTIONS", "1000000")]].concat());
    assert!(warned(&seen), "{seen:#?}");
    let seen = start_up_log(&[&issuer[..], &[("WORKERS", "2"), ("MAX_CONNECTIONS", "100")]].concat());
    assert!(!warned(&seen), "{seen:#?}");
}

#[test]
fn users_prints_control_characters_escaped() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, SqliteConnection};
    let dir = tempfile::tempdir().unwrap();
    let migrate = binary_in(dir.path())
        .envs([("DATABASE_URL", "app.db")])
        .args(&["migrate"])
        .stdout();
    assert!(migrate.contains("applied"), "{migrate}");
    // Rows written before subs were checked: an ANSI escape, DEL, C1, a newline.
    let hostile = "evil\u{1b}[2J\u{7f}\u{9b}31m\nend";
    let mut conn = SqliteConnection::establish(&dir.path().join("app.db").to_string_lossy()).unwrap();
    conn.batch_execute(&format!(
        "INSERT INTO users (sub, created_at, last_seen_at) VALUES ('{hostile}', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
    ))
    .unwrap();
    for args in [&["users"][..], &["users", "--json"]] {
        let output = binary_in(dir.path())
            .envs([("DATABASE_URL", "app.db")])
            .args(args)
            .stdout();
        assert!(
            !output.chars().any(|c| c.is_control() && c != '\n'),
            "{args:?}: {output:?}"
        );
        assert_eq!(
            output.lines().count(),
            if args.len() == 1 { 2 } else { 1 },
            "{output:?}"
        );
        if args.len() == 2 {
            let row: serde_json::Value = serde_json::from_str(output.trim()).unwrap();
            assert_eq!(row["sub"], hostile, "the JSON still says what the row holds");
        } else {
            assert!(
                output.contains("evil\\u001b[2J\\u007f\\u009b31m\\u000aend"),
                "{output}"
            );
        }
    }
}
