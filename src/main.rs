//! `actix-auth0-api`: loads `.env`, parses the command line, sets up logging,
//! runs the command and turns its outcome into an exit code: 0 on success,
//! 2 for bad arguments, 1 for any other failure, each failure one line on
//! standard error.

mod cli;
mod logging;

use std::process::ExitCode;

use clap::Parser;

/// `message` up to its first blank line (clap's usage block), folded onto
/// one line.
fn one_line(message: &str) -> String {
    let message = message.split("\n\n").next().unwrap_or(message);
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[actix_web::main]
async fn main() -> ExitCode {
    // libpq initialises OpenSSL with a clean-up at exit, which can tear it
    // down under a thread still opening a PostgreSQL connection. Initialised
    // here first, OpenSSL registers no such clean-up.
    openssl_sys::init();
    if let Err(err) = dotenvy::dotenv()
        && !err.not_found()
    {
        eprintln!("error: .env: {}", one_line(&err.to_string()));
        return ExitCode::FAILURE;
    }
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => err.exit(), // --help, --version
        Err(err) => {
            eprintln!("{} (see --help)", one_line(&err.render().to_string()));
            return ExitCode::from(2);
        }
    };
    if let Err(err) = logging::init() {
        eprintln!("error: {err}");
        return ExitCode::FAILURE;
    }
    match cli.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", one_line(&format!("{err:#}")));
            ExitCode::FAILURE
        }
    }
}
