//! `actix-auth0-api`: parses the command line, loads `./.env` (or the
//! `--env-file`), sets up logging, runs the command and turns its outcome
//! into an exit code: 0 on success, 2 for bad arguments, 1 for any other
//! failure, each failure one line on standard error.

mod cli;
mod logging;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

/// `message` up to its first blank line (clap's usage block), folded onto
/// one line.
fn one_line(message: &str) -> String {
    let message = message.split("\n\n").next().unwrap_or(message);
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Loads `path` (`--env-file`), or else `./.env` when there is one, without
/// overriding the environment; the file read, if any. Never a `.env` of a
/// parent folder (as `dotenvy::dotenv()` would): whoever can write one there
/// could set `AUTH0_JWKS_URL` for a server whose operator left it unset.
fn load_env_file(path: Option<&Path>) -> Result<Option<PathBuf>, String> {
    let (path, required) = match path {
        Some(path) => (path, true),
        None => (Path::new(".env"), false),
    };
    match dotenvy::from_path(path) {
        Ok(()) => Ok(Some(path.to_owned())),
        Err(err) if err.not_found() && !required => Ok(None),
        Err(err) => Err(format!("{}: {err}", path.display())),
    }
}

/// Has glibc give every allocation of 128 KiB or more its own mapping,
/// returned to the system when freed. That is glibc's default threshold,
/// but glibc raises it after the first such free, and then the read buffers
/// of many large request heads (up to 128 KiB a connection, slow clients'
/// included) stay in the heap after their connections close: the process
/// keeps its high-water mark for good. Fixed here, it stays where it is;
/// smaller allocations (SQLite's page cache, usual requests' buffers) never
/// pay the system call.
fn return_large_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of the allocator, before any
    // thread but this one exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[actix_web::main]
async fn main() -> ExitCode {
    // libpq initialises OpenSSL with a clean-up at exit, which can tear it
    // down under a thread still opening a PostgreSQL connection. Initialised
    // here first, OpenSSL registers no such clean-up.
    openssl_sys::init();
    return_large_buffers_to_the_system();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => err.exit(), // --help, --version
        Err(err) => {
            eprintln!("{} (see --help)", one_line(&err.render().to_string()));
            return ExitCode::from(2);
        }
    };
    let env_file = match load_env_file(cli.env_file.as_deref()) {
        Ok(env_file) => env_file,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = logging::init() {
        eprintln!("error: {err}");
        return ExitCode::FAILURE;
    }
    if let Some(path) = env_file {
        log::info!(
            "settings read from {} (the environment wins over it)",
            path.display()
        );
    }
    match cli.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", one_line(&format!("{err:#}")));
            ExitCode::FAILURE
        }
    }
}
