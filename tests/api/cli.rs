//! The binary as a user runs it: `serve`, `dev`, `token`, `users`, `migrate`.

use std::process::Command;

fn run_with(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_actix-auth0-api"))
        .current_dir(dir.path())
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (output.status.code(), String::from_utf8(output.stderr).unwrap())
}

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
        let (code, stderr) = run_with(env);
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

/// The binary, run in `dir` with a clean environment plus `env`.
fn binary(dir: &std::path::Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_actix-auth0-api"));
    command.current_dir(dir).env_clear().envs(env.iter().copied());
    command
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[&[&str]] = &[
        &["bogus"],
        &["token"],
        &["token", "--sub", ""],
        &["token", "--sub", "a", "--ttl", "forever"],
        &["users", "--format", "xml"],
    ];
    for args in cases {
        let output = binary(dir.path(), &[]).args(*args).output().unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(
            stderr.trim_end().ends_with("(see --help)") && stderr.matches("--help").count() == 1,
            "one pointer to --help: {stderr}"
        );
    }
}

#[test]
fn a_corrupt_development_key_is_reported_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".dev-issuer")).unwrap();
    std::fs::write(dir.path().join(".dev-issuer/signing-key.pem"), "garbage").unwrap();
    let output = binary(dir.path(), &[])
        .args(["token", "--sub", "a"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not a usable RSA private key"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".dev-issuer/signing-key.pem")).unwrap(),
        "garbage"
    );
}

/// A `dev` server started as a user starts it, killed when dropped.
struct DevServer {
    child: std::process::Child,
    tokens: Vec<String>,
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `dev` and reads the three tokens its banner prints.
fn start_dev(dir: &std::path::Path, port: &str) -> DevServer {
    use std::io::BufRead;
    // A proxy that does not exist: the keys of this machine never go through one.
    let proxy = "http://127.0.0.1:9";
    let env = [
        ("PORT", port),
        ("http_proxy", proxy),
        ("HTTP_PROXY", proxy),
        ("ALL_PROXY", proxy),
    ];
    let mut child = binary(dir, &env)
        .arg("dev")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut server = DevServer {
        child,
        tokens: Vec::new(),
    };
    while server.tokens.len() < 3 {
        let line = receiver
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("dev prints its banner");
        if let Some(rest) = line.strip_prefix("curl -H \"Authorization: Bearer ") {
            server.tokens.push(rest.split('"').next().unwrap().to_owned());
        }
    }
    server
}

async fn status(url: &str, token: &str) -> u16 {
    for _ in 0..100 {
        match reqwest::Client::new().get(url).bearer_auth(token).send().await {
            Ok(response) => return response.status().as_u16(),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    panic!("{url} never answered");
}

#[actix_web::test]
async fn dev_works_end_to_end_with_its_printed_and_minted_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::helpers::free_port().to_string();
    let dev = start_dev(dir.path(), &port);
    let api = format!("http://127.0.0.1:{port}");
    let [user, reader, admin] = [&dev.tokens[0], &dev.tokens[1], &dev.tokens[2]];

    assert_eq!(status(&format!("{api}/api/private"), user).await, 200);
    assert_eq!(status(&format!("{api}/api/private-scoped"), user).await, 403);
    assert_eq!(status(&format!("{api}/api/private-scoped"), reader).await, 200);
    assert_eq!(status(&format!("{api}/api/messages/admin"), reader).await, 403);
    assert_eq!(status(&format!("{api}/api/messages/admin"), admin).await, 200);

    // No PORT: `token` signs for the issuer `dev` runs as in this folder.
    let minted = binary(dir.path(), &[])
        .args([
            "token",
            "--sub",
            "script|1",
            "--permissions",
            "read:admin-messages,read:messages",
            "--ttl",
            "5m",
        ])
        .output()
        .unwrap();
    assert!(minted.status.success());
    let minted = String::from_utf8(minted.stdout).unwrap();
    assert_eq!(
        status(&format!("{api}/api/messages/admin"), minted.trim()).await,
        200
    );
    let wrong_audience = binary(dir.path(), &[("PORT", &port)])
        .args(["token", "--sub", "script|2", "--aud", "https://elsewhere.example"])
        .output()
        .unwrap();
    let wrong_audience = String::from_utf8(wrong_audience.stdout).unwrap();
    assert_eq!(
        status(&format!("{api}/api/private"), wrong_audience.trim()).await,
        401
    );

    let batch = binary(dir.path(), &[("PORT", &port)])
        .args(["token", "--sub", "load", "--count", "3"])
        .output()
        .unwrap();
    let batch = String::from_utf8(batch.stdout).unwrap();
    assert_eq!(batch.lines().count(), 3);
    for token in batch.lines() {
        assert_eq!(status(&format!("{api}/api/private"), token).await, 200);
    }

    let listing = binary(dir.path(), &[])
        .args(["users", "--json"])
        .output()
        .unwrap();
    assert!(listing.status.success());
    let subs: Vec<String> = String::from_utf8(listing.stdout)
        .unwrap()
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
            "load-1",
            "load-2",
            "load-3"
        ]
    );

    let table = binary(dir.path(), &[]).arg("users").output().unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.starts_with("id  sub"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("4   script|1")), "{table}");
}

#[actix_web::test]
async fn serve_refuses_a_development_token() {
    let dir = tempfile::tempdir().unwrap();
    let minted = binary(dir.path(), &[])
        .args(["token", "--sub", "dev|user"])
        .output()
        .unwrap();
    let token = String::from_utf8(minted.stdout).unwrap();
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await;
    let reply = app.get_as("/api/private", token.trim()).await;
    assert_eq!(reply.status, 401, "{reply:?}");
}

#[test]
fn dev_refuses_a_non_loopback_host() {
    let dir = tempfile::tempdir().unwrap();
    let output = binary(dir.path(), &[("HOST", "0.0.0.0")])
        .arg("dev")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("HOST") && stderr.contains("loopback"), "{stderr}");
}

#[test]
fn migrate_says_what_ran() {
    let dir = tempfile::tempdir().unwrap();
    let first = binary(dir.path(), &[("DATABASE_URL", "fresh.db")])
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        String::from_utf8(first.stdout)
            .unwrap()
            .contains("applied 20261123000000")
    );
    let second = binary(dir.path(), &[("DATABASE_URL", "fresh.db")])
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        String::from_utf8(second.stdout)
            .unwrap()
            .contains("no pending migrations")
    );
    let missing = binary(dir.path(), &[("DATABASE_URL", "absent.db")])
        .arg("users")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8(missing.stderr)
            .unwrap()
            .contains("no database at absent.db")
    );
}

#[test]
fn output_cut_short_by_the_reader_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = binary(dir.path(), &[])
        .args(["token", "--sub", "piped", "--count", "2000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let stdout = child.stdout.take().unwrap();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first).unwrap();
    assert_eq!(first.matches('.').count(), 2, "a token: {first}");
    // The reader is gone (as with `| head -1`); the rest cannot be written.
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains("error") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn an_issuer_without_its_trailing_slash_is_warned_about() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let port = crate::helpers::free_port().to_string();
    let env = [
        ("AUTH0_ISSUER", "https://tenant.example.com"),
        ("AUTH0_AUDIENCE", "a"),
        ("AUTH0_JWKS_URL", "http://127.0.0.1:9/jwks.json"),
        ("PORT", &port),
    ];
    let mut child = binary(dir.path(), &env)
        .arg("serve")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines().map_while(Result::ok) {
        let done = line.contains("listening on");
        seen.push(line);
        if done {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        seen.iter()
            .any(|l| l.contains("WARN") && l.contains("no trailing slash")),
        "{seen:#?}"
    );
}
