//! `users` and `migrate`: the users table from the command line.

use actix_auth0_api::config;
use actix_auth0_api::db::{self, DbSettings};
use actix_auth0_api::users::{self, User};
use anyhow::bail;
use clap::{Args, Subcommand};

use crate::cli::output::{escape_controls, print_lines};

/// What `users` changes.
#[derive(Debug, Subcommand)]
pub(super) enum UsersAction {
    /// Refuse the user's tokens issued until now, on every instance within
    /// about a second (the user logs in anew to get a token that works).
    Revoke(UserArgs),
    /// Accept the user's tokens again.
    Unrevoke(UserArgs),
}

/// Which user.
#[derive(Debug, Args)]
pub(super) struct UserArgs {
    /// The user's `sub`.
    #[arg(value_parser = printable)]
    sub: String,
    /// The issuer it belongs to (`iss`, as in the users table); without it,
    /// the `sub` of every issuer. With it, a user not seen yet is revoked too.
    #[arg(long, value_parser = printable)]
    issuer: Option<String>,
}

/// A `sub` or issuer as the users table holds them: not empty, no control
/// characters.
fn printable(value: &str) -> Result<String, String> {
    if value.is_empty() || value.chars().any(char::is_control) {
        Err("expected a non-empty value without control characters".into())
    } else {
        Ok(value.to_owned())
    }
}

/// The database `users` works on, which must exist already.
fn existing_database() -> anyhow::Result<DbSettings> {
    let database = config::database_settings_from_env()?;
    if !database.is_postgres() && !std::path::Path::new(&database.url).exists() {
        bail!(
            "no database at {} (start the server, or run `migrate`, first)",
            database.url
        );
    }
    Ok(database)
}

fn time(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `users revoke` and `users unrevoke`: one line per row changed.
pub(super) fn change(action: &UsersAction) -> anyhow::Result<()> {
    let database = existing_database()?;
    let (args, rows) = match action {
        UsersAction::Revoke(args) => (args, users::revoke(&database, &args.sub, args.issuer.as_deref())?),
        UsersAction::Unrevoke(args) => (
            args,
            users::unrevoke(&database, &args.sub, args.issuer.as_deref())?,
        ),
    };
    let who = |user: &User| {
        format!(
            "{} of {} (id {})",
            escape_controls(&user.sub),
            escape_controls(&user.issuer),
            user.id
        )
    };
    let until = |user: &User| user.revoked_before.map(time).unwrap_or_default();
    if rows.is_empty() {
        let sub = escape_controls(&args.sub);
        return match (action, &args.issuer) {
            (UsersAction::Revoke(_), Some(issuer)) => {
                let user = users::revoke_unseen(&database, &args.sub, issuer)?;
                print_lines([format!(
                    "revoked {}, not seen yet (its row now holds the revocation): its tokens issued until {} are refused",
                    who(&user),
                    until(&user)
                )])
            }
            (UsersAction::Revoke(_), None) => {
                bail!("no user {sub} in the users table: give --issuer to revoke one not seen yet")
            }
            (UsersAction::Unrevoke(_), _) => bail!("no user {sub} in the users table"),
        };
    }
    print_lines(rows.iter().map(|user| match user.revoked_before {
        Some(_) => format!(
            "revoked {}: its tokens issued until {} are refused",
            who(user),
            until(user)
        ),
        None => format!("{} is no longer revoked", who(user)),
    }))
}

pub(super) fn users(json: bool) -> anyhow::Result<()> {
    let database = existing_database()?;
    let users = users::list(&database)?;
    // A `sub` written before it was checked may hold terminal escapes:
    // every control character is printed escaped, never raw.
    if json {
        return print_lines(users.into_iter().map(|user| {
            let line = serde_json::json!({
                "id": user.id, "issuer": user.issuer, "sub": user.sub,
                "created_at": time(user.created_at), "last_seen_at": time(user.last_seen_at),
                "revoked_before": user.revoked_before.map(time),
            });
            // serde_json escapes C0 but not DEL or C1; `\u` escapes are valid JSON.
            escape_controls(&line.to_string())
        }));
    }
    let rows: Vec<[String; 6]> = users
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
                u.revoked_before.map_or_else(|| "-".to_owned(), time),
            ]
        })
        .collect();
    let header = [
        "id",
        "issuer",
        "sub",
        "created_at",
        "last_seen_at",
        "revoked_before",
    ]
    .map(String::from);
    let widths: Vec<usize> = (0..header.len())
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

pub(super) fn migrate() -> anyhow::Result<()> {
    let database: DbSettings = config::database_settings_from_env()?;
    let url = database.redacted_url();
    let applied = db::migrate(&database)?;
    if applied.is_empty() {
        return print_lines([format!("{url}: no pending migrations")]);
    }
    print_lines(applied.iter().map(|version| format!("{url}: applied {version}")))
}
