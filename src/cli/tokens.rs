//! `token` and `proof`: development tokens, and DPoP proofs to go with them.

use std::path::PathBuf;
use std::time::Duration;

use actix_auth0_api::dev::{DEV_AUDIENCE, DpopKey, TokenRequest};
use anyhow::Context;
use clap::Args;

use crate::cli::output::print_lines;
use crate::cli::serve::{DataDir, dev_issuer_url, dev_settings, open_dev_issuer};

/// What the minted token says.
#[derive(Debug, Args)]
pub(super) struct TokenArgs {
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
    /// The `acr` claim, the class of the login, e.g.
    /// http://schemas.openid.net/pape/policies/2007/06/multi-factor (what
    /// `/api/messages/sensitive` needs).
    #[arg(long, value_parser = non_empty)]
    acr: Option<String>,
    /// The `auth_time` claim, when the user logged in: `now`, a time ago
    /// such as 10m, or seconds since 1970.
    #[arg(long, value_parser = parse_auth_time)]
    auth_time: Option<u64>,
    #[command(flatten)]
    data_dir: DataDir,
}

/// The request a DPoP proof is for.
#[derive(Debug, Args)]
pub(super) struct ProofArgs {
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

fn parse_auth_time(value: &str) -> Result<u64, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if value == "now" {
        return Ok(now);
    }
    if let Ok(seconds) = value.parse::<u64>() {
        return Ok(seconds);
    }
    let ago = humantime::parse_duration(value)
        .map_err(|e| format!("expected now, a time ago such as 10m, or seconds since 1970: {e}"))?;
    Ok(now.saturating_sub(ago.as_secs()))
}

pub(super) fn token(args: &TokenArgs) -> anyhow::Result<()> {
    let data_dir = &args.data_dir.data_dir;
    // Before any `dev` run, the issuer `dev` will serve as on `HOST` and `PORT`.
    let issuer = open_dev_issuer(data_dir, || {
        let settings = dev_settings()?;
        Ok(dev_issuer_url(&settings.host, settings.port))
    })?;
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
        acr: args.acr.clone(),
        auth_time: args.auth_time,
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

pub(super) fn proof(args: &ProofArgs) -> anyhow::Result<()> {
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
