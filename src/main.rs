//! `actix-auth0-api`: loads `.env`, parses the command line and runs it.

use std::process::ExitCode;

use actix_auth0_api::cli::Cli;
use clap::Parser;

/// `message` up to its first blank line (clap's usage block), folded onto
/// one line.
fn one_line(message: &str) -> String {
    let message = message.split("\n\n").next().unwrap_or(message);
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[actix_web::main]
async fn main() -> ExitCode {
    // libpq initialises OpenSSL with a clean-up at exit, which tears it down
    // under a pool thread still opening a PostgreSQL connection: a crash
    // (SIGSEGV) after the work is done. Initialised here first, OpenSSL
    // registers no such clean-up.
    openssl_sys::init();
    if let Err(err) = dotenvy::dotenv()
        && !err.not_found()
    {
        eprintln!("error: .env: {}", one_line(&err.to_string()));
        return ExitCode::FAILURE;
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => err.exit(), // --help, --version
        Err(err) => {
            eprintln!("{} (see --help)", one_line(&err.render().to_string()));
            return ExitCode::from(2);
        }
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match cli.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}
