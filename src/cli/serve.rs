//! `serve`, and `dev`: the same server with a development issuer of its own.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use actix_auth0_api::app::{self, Application};
use actix_auth0_api::auth::{DpopMode, PermissionsFrom};
use actix_auth0_api::config::{ConfigError, Settings};
use actix_auth0_api::connection::host_port;
use actix_auth0_api::dev::{DEFAULT_DATA_DIR, DEV_AUDIENCE, DevIssuer, DevMode, ExampleToken};
use anyhow::Context;
use clap::Args;

use crate::cli::output::print_lines;

/// Where the development key lives.
#[derive(Debug, Args)]
pub(super) struct DataDir {
    /// Folder holding the development signing key (created if missing).
    #[arg(long, default_value = DEFAULT_DATA_DIR, value_name = "DIR")]
    pub(super) data_dir: PathBuf,
}

pub(super) async fn serve() -> anyhow::Result<()> {
    let app = Application::build(Settings::from_env()?).await?;
    Ok(app.run_until_stopped().await?)
}

/// The settings of `dev`: `HOST`, `PORT`, `DATABASE_URL`... from the
/// environment, the issuer and audience fixed to the development issuer's.
pub(super) fn dev_settings() -> Result<Settings, ConfigError> {
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
pub(super) fn dev_issuer_url(host: &str, port: u16) -> String {
    format!("http://{}/", host_port(host, port))
}

/// The development issuer whose key is in `dir`, as `dev` last served it
/// from there (`token` signs for it, `explain --dev` checks against it);
/// before any `dev` run, as `dev` will serve it: at `url_before_dev()`.
pub(super) fn open_dev_issuer(
    dir: &Path,
    url_before_dev: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<DevIssuer> {
    let issuer_url = match DevIssuer::remembered(dir)? {
        Some(issuer_url) => issuer_url,
        None => url_before_dev()?,
    };
    Ok(DevIssuer::open(dir, issuer_url)?)
}

pub(super) async fn dev(data_dir: &DataDir) -> anyhow::Result<()> {
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
            "\n# DPoP (docs/dpop.md): a token bound to a key, and a proof for each request\n\
             TOKEN=$(cargo run -q -- token --sub \"dev|dpop\" --dpop-key dpop-key.pem)\n\
             PROOF=$(cargo run -q -- proof --dpop-key dpop-key.pem --token \"$TOKEN\" --url {url})\n\
             curl -H \"Authorization: DPoP $TOKEN\" -H \"DPoP: $PROOF\" {url}\n"
        ));
    }
    print_lines([banner])
}
