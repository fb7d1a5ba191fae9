//! `users` and `migrate`: the users table from the command line.

use actix_auth0_api::config;
use actix_auth0_api::db::{self, DbSettings};
use anyhow::bail;

use crate::cli::output::{escape_controls, print_lines};

pub(super) fn users(json: bool) -> anyhow::Result<()> {
    let database = config::database_settings_from_env()?;
    if !database.is_postgres() && !std::path::Path::new(&database.url).exists() {
        bail!(
            "no database at {} (start the server, or run `migrate`, first)",
            database.url
        );
    }
    let users = actix_auth0_api::users::list(&database)?;
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

pub(super) fn migrate() -> anyhow::Result<()> {
    let database: DbSettings = config::database_settings_from_env()?;
    let url = database.redacted_url();
    let applied = db::migrate(&database)?;
    if applied.is_empty() {
        return print_lines([format!("{url}: no pending migrations")]);
    }
    print_lines(applied.iter().map(|version| format!("{url}: applied {version}")))
}
