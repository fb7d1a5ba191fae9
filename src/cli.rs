//! The command line: `serve` (the default), `dev`, `token`, `users`, `migrate`.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use actix_web::web;
use clap::{Args, Parser, Subcommand};

use crate::config::{ConfigError, Settings};
use crate::db::{self, DbSettings, UserStore};
use crate::dev_issuer::{DEFAULT_DATA_DIR, DEV_AUDIENCE, DevIssuer, TokenRequest};
use crate::startup::{self, Application};

/// An Auth0-protected API: strict bearer-token validation, permission
/// classes, and a users table keyed by the token's `sub`.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// What to do; without one, `serve`.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API against the tenant configured by environment and `.env`.
    Serve,
    /// Serve the API with a built-in development issuer on loopback (no tenant, no network).
    Dev(DataDir),
    /// Print a token signed by the development key.
    Token(TokenArgs),
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
pub struct DataDir {
    /// Folder holding the development signing key (created if missing).
    #[arg(long, default_value = DEFAULT_DATA_DIR, value_name = "DIR")]
    pub data_dir: PathBuf,
}

/// What the minted token says.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The `sub` claim (the user).
    #[arg(long, value_parser = non_empty)]
    pub sub: String,
    /// Space-separated `scope` claim, e.g. "read:messages openid".
    #[arg(long)]
    pub scope: Option<String>,
    /// Comma-separated Auth0 RBAC `permissions`, e.g. read:messages,read:admin-messages.
    #[arg(long, value_delimiter = ',')]
    pub permissions: Vec<String>,
    /// Lifetime, e.g. 90s, 15m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,
    /// The `aud` claim.
    #[arg(long, default_value = DEV_AUDIENCE)]
    pub aud: String,
    /// Print this many tokens, one per line, for subs `SUB-1` to `SUB-N` (for load tests).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub count: Option<u32>,
    #[command(flatten)]
    pub data_dir: DataDir,
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

/// A failure of a command, printed as one line.
pub type CliResult = Result<(), String>;

impl Cli {
    /// Runs the chosen command.
    pub async fn run(self) -> CliResult {
        match self.command.unwrap_or(Command::Serve) {
            Command::Serve => serve().await,
            Command::Dev(data_dir) => dev(&data_dir).await,
            Command::Token(args) => token(&args),
            Command::Users { json } => users(json),
            Command::Migrate => migrate(),
        }
    }
}

async fn serve() -> CliResult {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    let app = Application::build(settings).await.map_err(|e| e.to_string())?;
    app.run_until_stopped().await.map_err(|e| e.to_string())
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
    settings.audiences = vec![DEV_AUDIENCE.to_owned()];
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

async fn dev(data_dir: &DataDir) -> CliResult {
    let mut settings = dev_settings().map_err(|e| e.to_string())?;
    let listener = startup::bind(&settings.host, settings.port).map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let issuer = DevIssuer::open(&data_dir.data_dir, dev_issuer_url(&settings.host, port))
        .map_err(|e| e.to_string())?;
    issuer.remember(&data_dir.data_dir).map_err(|e| e.to_string())?;
    settings.issuer = issuer.issuer().to_owned();
    settings.jwks_url = issuer
        .jwks_url()
        .parse()
        .map_err(|e| format!("development JWKS URL: {e}"))?;
    settings.port = port;
    print_banner(&issuer, &settings)?;
    let app = Application::build_on(settings, listener, Some(web::Data::new(issuer)))
        .await
        .map_err(|e| e.to_string())?;
    app.run_until_stopped().await.map_err(|e| e.to_string())
}

fn print_banner(issuer: &DevIssuer, settings: &Settings) -> CliResult {
    let api = issuer.issuer().trim_end_matches('/');
    let examples = [
        ("no permissions", "dev|user", None, "/api/private"),
        (
            "read:messages",
            "dev|reader",
            Some("read:messages"),
            "/api/private-scoped",
        ),
        (
            "read:admin-messages",
            "dev|admin",
            Some("read:admin-messages"),
            "/api/messages/admin",
        ),
    ];
    let mut banner = String::new();
    banner.push_str(&"=".repeat(78));
    banner.push_str("\n  DEVELOPMENT MODE: tokens are signed by a local key, not by Auth0.\n");
    banner.push_str("  For trying the API on this machine only; use `serve` with a real tenant.\n");
    banner.push_str(&"=".repeat(78));
    banner.push_str(&format!(
        "\nAPI:      {api}\nIssuer:   {}\nAudience: {DEV_AUDIENCE}\nDatabase: {}\n",
        issuer.issuer(),
        redacted(&settings.database.url)
    ));
    for (label, sub, permission, path) in examples {
        let request = TokenRequest {
            sub: sub.into(),
            scope: permission.map(str::to_owned),
            permissions: Vec::new(),
            ttl: Duration::from_secs(24 * 3600),
            audience: DEV_AUDIENCE.into(),
        };
        let token = issuer.mint(&request).map_err(|e| e.to_string())?;
        banner.push_str(&format!(
            "\n# {label} ({sub}, valid 24h)\ncurl -H \"Authorization: Bearer {token}\" {api}{path}\n"
        ));
    }
    print_lines([banner])
}

fn token(args: &TokenArgs) -> CliResult {
    let data_dir = &args.data_dir.data_dir;
    // The issuer `dev` last served as here; before any `dev` run, the one it
    // will serve as on `HOST` and `PORT`.
    let issuer_url = match DevIssuer::remembered(data_dir).map_err(|e| e.to_string())? {
        Some(issuer_url) => issuer_url,
        None => {
            let settings = dev_settings().map_err(|e| e.to_string())?;
            dev_issuer_url(&settings.host, settings.port)
        }
    };
    let issuer = DevIssuer::open(data_dir, issuer_url).map_err(|e| e.to_string())?;
    let mut request = TokenRequest {
        sub: args.sub.clone(),
        scope: args.scope.clone(),
        permissions: args
            .permissions
            .iter()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect(),
        ttl: args.ttl,
        audience: args.aud.clone(),
    };
    let Some(count) = args.count else {
        return print_lines([issuer.mint(&request).map_err(|e| e.to_string())?]);
    };
    let tokens = (1..=count)
        .map(|n| {
            request.sub = format!("{}-{n}", args.sub);
            issuer.mint(&request).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    print_lines(tokens)
}

/// Writes `lines` to stdout. A reader that stops early (`| head`) ends the
/// output quietly, as with any Unix tool.
fn print_lines(lines: impl IntoIterator<Item = String>) -> CliResult {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = lines
        .into_iter()
        .try_for_each(|line| writeln!(out, "{line}"))
        .and_then(|()| out.flush());
    match written {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("stdout: {err}")),
        _ => Ok(()),
    }
}

/// The database settings of `users` and `migrate`.
fn database() -> Result<DbSettings, String> {
    DbSettings::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .map_err(|e| e.to_string())
}

fn users(json: bool) -> CliResult {
    let database = database()?;
    if !database.is_postgres() && !std::path::Path::new(&database.url).exists() {
        return Err(format!(
            "no database at {} (start the server, or run `migrate`, first)",
            database.url
        ));
    }
    let pool = db::connect(&database).map_err(|e| e.to_string())?;
    let users = UserStore::new(pool).list().map_err(|e| e.to_string())?;
    let time = |t: chrono::NaiveDateTime| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    if json {
        return print_lines(users.into_iter().map(|user| {
            serde_json::json!({
                "id": user.id, "sub": user.sub,
                "created_at": time(user.created_at), "last_seen_at": time(user.last_seen_at),
            })
            .to_string()
        }));
    }
    let rows: Vec<[String; 4]> = users
        .into_iter()
        .map(|u| [u.id.to_string(), u.sub, time(u.created_at), time(u.last_seen_at)])
        .collect();
    let header = ["id", "sub", "created_at", "last_seen_at"].map(String::from);
    let widths: Vec<usize> = (0..4)
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

fn migrate() -> CliResult {
    let database = database()?;
    let url = redacted(&database.url);
    let pool = db::connect(&database).map_err(|e| e.to_string())?;
    let applied = db::run_migrations(&pool).map_err(|e| e.to_string())?;
    if applied.is_empty() {
        return print_lines([format!("{url}: no pending migrations")]);
    }
    print_lines(applied.iter().map(|version| format!("{url}: applied {version}")))
}

/// The URL without its password, for printing.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
