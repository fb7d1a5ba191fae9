//! `explain`: what the server would do with one token, and why (see
//! docs/token-doctor.md). The diagnosis and the verdict are the library's
//! (`auth::doctor`); here are the token's input, the settings (`serve`'s,
//! or `dev`'s with its key served on loopback) and the exit code.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use actix_auth0_api::auth::doctor::{Explanation, explain as diagnose};
use actix_auth0_api::config::Settings;
use actix_auth0_api::dev::DEFAULT_DATA_DIR;
use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer};
use anyhow::{Context, bail};
use clap::Args;

use crate::cli::output::print_lines;
use crate::cli::serve::{dev_issuer_url, dev_settings, open_dev_issuer};

/// Most bytes read from standard input: far beyond any token, which the
/// doctor then calls too large.
const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// What to explain, and against what.
#[derive(Debug, Args)]
pub(super) struct ExplainArgs {
    /// The access token (a leading `Bearer ` or `DPoP ` is stripped); `-`
    /// or nothing: read it from standard input, which keeps it out of the
    /// shell history and the process list.
    #[arg(value_name = "TOKEN")]
    token: Option<String>,
    /// Fetch the signing keys of the issuer the token names, once, as the
    /// server does, so that its `kid` and signature are checked too.
    #[arg(long)]
    fetch: bool,
    /// Explain as `dev` would serve: its development issuer and audience,
    /// and its key (in `.dev-issuer`), so that the signature is checked
    /// with no network.
    #[arg(long)]
    dev: bool,
    /// Folder holding the development key, as `dev` and `token` have it;
    /// implies --dev.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// One JSON object (findings, accepted, signature_checked, verdict)
    /// instead of lines.
    #[arg(long)]
    json: bool,
}

/// Explains the token; an error (exit code 1) when the server would refuse it.
pub(super) async fn explain(args: &ExplainArgs) -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_none() {
        // Errors only: explain words every finding itself, the server's
        // warnings about a token would only repeat them (RUST_LOG=warn shows
        // why a key fetch failed).
        log::set_max_level(log::LevelFilter::Error);
    }
    let input = read_token(args.token.as_deref())?;
    let dev_dir = match (&args.data_dir, args.dev) {
        (Some(dir), _) => Some(dir.as_path()),
        (None, true) => Some(Path::new(DEFAULT_DATA_DIR)),
        (None, false) => None,
    };
    let explanation = match dev_dir {
        None => diagnose(&input, &Settings::from_env()?, args.fetch).await?,
        Some(dir) => {
            let (settings, server) = dev_with_local_keys(dir).await?;
            let explanation = diagnose(&input, &settings, true).await;
            server.stop(false).await;
            explanation?
        }
    };
    print(&explanation, args.json)?;
    if !explanation.accepted {
        bail!("{}", explanation.verdict);
    }
    Ok(())
}

/// The token from the argument, or from standard input when it is `-` or
/// absent; nothing at all is a usage error (exit code 2, as clap's).
fn read_token(argument: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let input = match argument {
        Some(token) if token != "-" => token.as_bytes().to_vec(),
        _ => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                usage_error("no token: give it as an argument, or on standard input");
            }
            let mut input = Vec::new();
            stdin
                .lock()
                .take(MAX_INPUT_BYTES)
                .read_to_end(&mut input)
                .context("standard input")?;
            input
        }
    };
    if input.iter().all(u8::is_ascii_whitespace) {
        usage_error("no token: the argument or standard input is empty");
    }
    Ok(input)
}

/// Ends the process as a bad argument does: one line, exit code 2.
fn usage_error(why: &str) -> ! {
    eprintln!("error: {why} (see --help)");
    std::process::exit(2)
}

/// `dev`'s settings, for the issuer `dev` last served as from `dir` (as
/// `token` signs for it), with the development key's JWKS served on a
/// loopback port of its own: the server's key store fetches it there, as
/// `dev` fetches its own.
async fn dev_with_local_keys(dir: &Path) -> anyhow::Result<(Settings, ServerHandle)> {
    if !dir.is_dir() {
        bail!(
            "no development issuer in {}: run `dev` or `token` there first, or give --data-dir",
            dir.display()
        );
    }
    let mut settings = dev_settings()?;
    let issuer = open_dev_issuer(dir, || Ok(dev_issuer_url(&settings.host, settings.port)))?;
    settings.validation.issuers = vec![issuer.issuer().to_owned()];
    let issuer = std::sync::Arc::new(issuer);
    let server = HttpServer::new(move || {
        let issuer = std::sync::Arc::clone(&issuer);
        App::new().configure(move |cfg| issuer.configure(cfg))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(0)
    .bind(("127.0.0.1", 0))
    .context("a loopback port for the development keys")?;
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    settings.jwks_url = Some(
        format!("http://127.0.0.1:{port}/.well-known/jwks.json")
            .parse()
            .context("development JWKS URL")?,
    );
    Ok((settings, handle))
}

fn print(explanation: &Explanation, json: bool) -> anyhow::Result<()> {
    if json {
        return print_lines([serde_json::to_string(explanation)?]);
    }
    print_lines(explanation.lines())
}
