//! The command line: `serve` (the default), `dev`, `token`, `proof`, `users`,
//! `migrate`.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use actix_auth0_api::app::{self, Application};
use actix_auth0_api::auth::{DpopMode, PermissionsFrom};
use actix_auth0_api::config::{self, ConfigError, Settings, VARIABLES};
use actix_auth0_api::db::{self, DbSettings};
use actix_auth0_api::dev::{
    DEFAULT_DATA_DIR, DEV_AUDIENCE, DevIssuer, DevMode, DpopKey, ExampleToken, TokenRequest,
};
use actix_auth0_api::users;
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

/// An Auth0-protected API: strict bearer-token validation, permission
/// classes, and a users table keyed by the token's `sub`.
#[derive(Debug, Parser)]
#[command(version, about, after_long_help = settings_help())]
pub(crate) struct Cli {
    /// Read settings from FILE instead of `./.env` (the environment still
    /// wins over both).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) env_file: Option<PathBuf>,
    /// What to do; without one, `serve`.
    #[command(subcommand)]
    command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API against the tenant configured by environment and `.env`.
    Serve,
    /// Serve the API with a built-in development issuer on loopback (no tenant, no network).
    Dev(DataDir),
    /// Print a token signed by the development key.
    Token(TokenArgs),
    /// Print a DPoP proof for one request, signed by a DPoP key.
    Proof(ProofArgs),
    /// List the users table.
    Users {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run pending database migrations and say which ran.
    Migrate,
}

/// Where the development key lives.
#[derive(Debug, Args)]
struct DataDir {
    /// Folder holding the development signing key (created if missing).
    #[arg(long, default_value = DEFAULT_DATA_DIR, value_name = "DIR")]
    data_dir: PathBuf,
}

/// What the minted token says.
#[derive(Debug, Args)]
struct TokenArgs {
    /// The `sub` claim (the user).
    #[arg(long, value_parser = non_empty)]
    sub: String,
    /// Space-separated `scope` claim, e.g. "read:messages openid". Unless
    /// --user is given, the token is then a client-credentials
    /// (machine-to-machine) one, whose scope grants permissions.
    #[arg(long)]
    scope: Option<String>,
    /// A user token even with --scope: its scope then grants nothing unless
    /// the API runs with PERMISSIONS_FROM=scope or both (use --permissions).
    #[arg(long)]
    user: bool,
    /// Comma-separated Auth0 RBAC `permissions`, e.g. read:messages,read:admin-messages.
    #[arg(long, value_delimiter = ',')]
    permissions: Vec<String>,
    /// Lifetime, e.g. 90s, 15m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    ttl: Duration,
    /// The `aud` claim.
    #[arg(long, default_value = DEV_AUDIENCE)]
    aud: String,
    /// Print this many tokens, one per line, for subs `SUB-1` to `SUB-N` (for load tests).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    count: Option<u32>,
    /// Bind the token to the DPoP key in FILE (EC P-256, PKCS#8 PEM; created,
    /// mode 0600, if missing): it then works only with the DPoP scheme and a
    /// proof from `proof --dpop-key FILE`.
    #[arg(long, value_name = "FILE")]
    dpop_key: Option<PathBuf>,
    #[command(flatten)]
    data_dir: DataDir,
}

/// The request a DPoP proof is for.
#[derive(Debug, Args)]
struct ProofArgs {
    /// The DPoP key the token is bound to (see `token --dpop-key`).
    #[arg(long, value_name = "FILE")]
    dpop_key: PathBuf,
    /// The request's full URL, e.g. http://127.0.0.1:6060/api/private.
    #[arg(long)]
    url: String,
    /// The request's method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// The access token the proof goes with (its hash is the proof's `ath`).
    #[arg(long, value_parser = non_empty)]
    token: String,
    /// The nonce of the API's last `DPoP-Nonce` header, when it issues
    /// nonces (DPOP_NONCE_SECRET).
    #[arg(long)]
    nonce: Option<String>,
    /// Print a ready curl command instead of the proof alone.
    #[arg(long)]
    curl: bool,
}

fn non_empty(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(value.to_owned())
    }
}

fn parse_ttl(value: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(value)
        .map_err(|e| format!("expected a duration such as 1h or 15m: {e}"))?;
    if ttl.is_zero() {
        Err("must be longer than zero".into())
    } else {
        Ok(ttl)
    }
}

/// The environment variables `serve` reads, for `--help`.
fn settings_help() -> String {
    let mut help = String::from("Environment (also read from .env):\n");
    for (name, meaning, default) in VARIABLES {
        help.push_str(&format!("  {name:<27} {meaning} [default: {default}]\n"));
    }
    help
}

impl Cli {
    /// Runs the chosen command.
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        match self.command.unwrap_or(Command::Serve) {
            Command::Serve => serve().await,
            Command::Dev(data_dir) => dev(&data_dir).await,
            Command::Token(args) => token(&args),
            Command::Proof(args) => proof(&args),
            Command::Users { json } => users(json),
            Command::Migrate => migrate(),
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    let app = Application::build(Settings::from_env()?).await?;
    Ok(app.run_until_stopped().await?)
}

/// The settings of `dev`: `HOST`, `PORT`, `DATABASE_URL`... from the
/// environment, the issuer and audience fixed to the development issuer's.
fn dev_settings() -> Result<Settings, ConfigError> {
    let placeholder_issuer = "http://127.0.0.1/".to_owned();
    let mut settings = Settings::from_lookup(|name| match name {
        "AUTH0_ISSUER" => Some(placeholder_issuer.clone()),
        "AUTH0_AUDIENCE" => Some(DEV_AUDIENCE.to_owned()),
        "AUTH0_JWKS_URL" => Some(format!("{placeholder_issuer}.well-known/jwks.json")),
        _ => std::env::var(name).ok(),
    })?;
    let loopback = settings.host.eq_ignore_ascii_case("localhost")
        || settings.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(ConfigError {
            variable: "HOST",
            problem: format!(
                "`dev` serves only on loopback (127.0.0.1, ::1, localhost), got {:?}; use `serve` with a real tenant",
                settings.host
            ),
        });
    }
    settings.validation.audiences = vec![DEV_AUDIENCE.to_owned()];
    Ok(settings)
}

/// The development issuer's identifier for the API at `host:port`.
fn dev_issuer_url(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("http://[{host}]:{port}/")
    } else {
        format!("http://{host}:{port}/")
    }
}

async fn dev(data_dir: &DataDir) -> anyhow::Result<()> {
    let mut settings = dev_settings()?;
    let listener = app::bind(&settings.host, settings.port)?;
    let port = listener.local_addr().context("HOST, PORT")?.port();
    let issuer = DevIssuer::open(&data_dir.data_dir, dev_issuer_url(&settings.host, port))?;
    issuer.remember(&data_dir.data_dir)?;
    settings.validation.issuers = vec![issuer.issuer().to_owned()];
    settings.jwks_url = Some(issuer.jwks_url().parse().context("development JWKS URL")?);
    settings.port = port;
    // Metrics on, at an address printed below.
    settings
        .metrics_addr
        .get_or_insert_with(|| "127.0.0.1:0".to_owned());
    let scope_only = settings.validation.permissions_from == PermissionsFrom::Scope;
    let tokens = issuer.example_tokens(scope_only)?;
    print_banner(&issuer, &settings, &tokens)?;
    let app = Application::build_on(settings, listener, Some(DevMode { issuer, tokens }), |_| {}).await?;
    if let Some(port) = app.metrics_port() {
        print_lines([format!(
            "\n# metrics (Prometheus)\ncurl http://127.0.0.1:{port}/metrics"
        )])?;
    }
    Ok(app.run_until_stopped().await?)
}

fn print_banner(issuer: &DevIssuer, settings: &Settings, tokens: &[ExampleToken]) -> anyhow::Result<()> {
    let api = issuer.issuer().trim_end_matches('/');
    let mut banner = String::new();
    banner.push_str(&"=".repeat(78));
    banner.push_str("\n  DEVELOPMENT MODE: tokens are signed by a local key, not by Auth0.\n");
    banner.push_str("  For trying the API on this machine only; use `serve` with a real tenant.\n");
    banner.push_str(&"=".repeat(78));
    banner.push_str(&format!(
        "\nAPI:      {api}\nDocs:     {api}/docs (the tokens below, one click each)\nIssuer:   {}\nAudience: {DEV_AUDIENCE}\nDatabase: {}\n",
        issuer.issuer(),
        settings.database.redacted_url()
    ));
    for token in tokens {
        banner.push_str(&format!(
            "\n# {} ({}, valid 24h)\ncurl -H \"Authorization: Bearer {}\" {api}{}\n",
            token.label, token.sub, token.token, token.path
        ));
    }
    if settings.dpop.mode != DpopMode::Disabled {
        let url = format!("{api}/api/private");
        banner.push_str(&format!(
            "\n# DPoP (README, \"DPoP\"): a token bound to a key, and a proof for each request\n\
             TOKEN=$(cargo run -q -- token --sub \"dev|dpop\" --dpop-key dpop-key.pem)\n\
             PROOF=$(cargo run -q -- proof --dpop-key dpop-key.pem --token \"$TOKEN\" --url {url})\n\
             curl -H \"Authorization: DPoP $TOKEN\" -H \"DPoP: $PROOF\" {url}\n"
        ));
    }
    print_lines([banner])
}

fn token(args: &TokenArgs) -> anyhow::Result<()> {
    let data_dir = &args.data_dir.data_dir;
    // The issuer `dev` last served as here; before any `dev` run, the one it
    // will serve as on `HOST` and `PORT`.
    let issuer_url = match DevIssuer::remembered(data_dir)? {
        Some(issuer_url) => issuer_url,
        None => {
            let settings = dev_settings()?;
            dev_issuer_url(&settings.host, settings.port)
        }
    };
    let issuer = DevIssuer::open(data_dir, issuer_url)?;
    let mut request = TokenRequest {
        sub: args.sub.clone(),
        scope: args.scope.clone(),
        permissions: args
            .permissions
            .iter()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect(),
        client_credentials: args.scope.is_some() && !args.user,
        ttl: args.ttl,
        audience: args.aud.clone(),
        dpop_jkt: None,
    };
    if let Some(path) = &args.dpop_key {
        let (key, created) = DpopKey::open_or_create(path)?;
        if created {
            eprintln!("created the DPoP key {}", path.display());
        }
        request.dpop_jkt = Some(key.thumbprint());
    }
    let Some(count) = args.count else {
        return print_lines([issuer.mint(&request)?]);
    };
    let tokens = (1..=count)
        .map(|n| {
            request.sub = format!("{}-{n}", args.sub);
            issuer.mint(&request)
        })
        .collect::<Result<Vec<_>, _>>()?;
    print_lines(tokens)
}

fn proof(args: &ProofArgs) -> anyhow::Result<()> {
    let pem = std::fs::read_to_string(&args.dpop_key)
        .with_context(|| format!("cannot read {}", args.dpop_key.display()))?;
    let key = DpopKey::from_pem(&pem).map_err(|why| {
        anyhow::anyhow!(
            "{} is not an EC P-256 private key in PKCS#8 PEM ({why})",
            args.dpop_key.display()
        )
    })?;
    let proof = key.proof(&args.method, &args.url, &args.token, args.nonce.as_deref())?;
    if !args.curl {
        return print_lines([proof]);
    }
    let method = if args.method == "GET" {
        String::new()
    } else {
        format!("-X {} ", args.method)
    };
    print_lines([format!(
        "curl {method}-H \"Authorization: DPoP {}\" -H \"DPoP: {proof}\" \"{}\"",
        args.token, args.url
    )])
}

/// `text` with each control character (C0, DEL, C1) as a `\uXXXX` escape.
fn escape_controls(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\u{:04x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Writes `lines` to stdout. A reader that stops early (`| head`) ends the
/// output quietly, as with any Unix tool.
fn print_lines(lines: impl IntoIterator<Item = String>) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = lines
        .into_iter()
        .try_for_each(|line| writeln!(out, "{line}"))
        .and_then(|()| out.flush());
    match written {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(err).context("stdout"),
        _ => Ok(()),
    }
}

fn users(json: bool) -> anyhow::Result<()> {
    let database = config::database_settings_from_env()?;
    if !database.is_postgres() && !std::path::Path::new(&database.url).exists() {
        bail!(
            "no database at {} (start the server, or run `migrate`, first)",
            database.url
        );
    }
    let users = users::list(&database)?;
    let time = |t: chrono::NaiveDateTime| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    // A `sub` written before it was checked may hold terminal escapes:
    // every control character is printed escaped, never raw.
    if json {
        return print_lines(users.into_iter().map(|user| {
            let line = serde_json::json!({
                "id": user.id, "issuer": user.issuer, "sub": user.sub,
                "created_at": time(user.created_at), "last_seen_at": time(user.last_seen_at),
            });
            // serde_json escapes C0 but not DEL or C1; `\u` escapes are valid JSON.
            escape_controls(&line.to_string())
        }));
    }
    let rows: Vec<[String; 5]> = users
        .into_iter()
        .map(|u| {
            let issuer = if u.issuer.is_empty() {
                "-".to_owned()
            } else {
                escape_controls(&u.issuer)
            };
            let sub = escape_controls(&u.sub);
            [
                u.id.to_string(),
                issuer,
                sub,
                time(u.created_at),
                time(u.last_seen_at),
            ]
        })
        .collect();
    let header = ["id", "issuer", "sub", "created_at", "last_seen_at"].map(String::from);
    let widths: Vec<usize> = (0..5)
        .map(|c| {
            rows.iter()
                .chain([&header])
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let table = [&header].into_iter().chain(&rows).map(|row| {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        cells.join("  ").trim_end().to_owned()
    });
    let empty = rows.is_empty().then(|| "(no users yet)".to_owned());
    print_lines(table.chain(empty))
}

fn migrate() -> anyhow::Result<()> {
    let database: DbSettings = config::database_settings_from_env()?;
    let url = database.redacted_url();
    let applied = db::migrate(&database)?;
    if applied.is_empty() {
        return print_lines([format!("{url}: no pending migrations")]);
    }
    print_lines(applied.iter().map(|version| format!("{url}: applied {version}")))
}
