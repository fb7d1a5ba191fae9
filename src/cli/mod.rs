//! The command line: `serve` (the default), `dev`, `token`, `proof`,
//! `explain`, `users`, `migrate`; one file a command family.

mod explain;
mod output;
mod serve;
mod tokens;
mod users;

use std::path::PathBuf;

use actix_auth0_api::config::VARIABLES;
use clap::{Parser, Subcommand};

use self::explain::ExplainArgs;
use self::serve::DataDir;
use self::tokens::{ProofArgs, TokenArgs};
use self::users::UsersAction;

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
    /// Say what the server would do with a token, and why, offline (exit 0: accepted).
    Explain(ExplainArgs),
    /// List the users table; `users revoke` and `users unrevoke` shut a user out and let it back in.
    Users {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<UsersAction>,
    },
    /// Run pending database migrations and say which ran.
    Migrate,
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
            Command::Serve => serve::serve().await,
            Command::Dev(data_dir) => serve::dev(&data_dir).await,
            Command::Token(args) => tokens::token(&args),
            Command::Proof(args) => tokens::proof(&args),
            Command::Explain(args) => explain::explain(&args).await,
            Command::Users { json, action: None } => users::users(json),
            Command::Users {
                action: Some(action), ..
            } => users::change(&action),
            Command::Migrate => users::migrate(),
        }
    }
}
