//! Log lines: env_logger, filtered by `RUST_LOG` (default `info`), written
//! as human text or, with `LOG_FORMAT=json`, one JSON object per line
//! (timestamp, level, target, message, and `request_id` on lines about a
//! request).

use std::io::Write;

use anyhow::bail;
use log::kv::Key;

/// How log lines are written.
enum Format {
    Text,
    Json,
}

/// Starts logging as `LOG_FORMAT` says; an unknown format is one line of error.
pub(crate) fn init() -> anyhow::Result<()> {
    let format = match std::env::var("LOG_FORMAT").ok().as_deref().map(str::trim) {
        None | Some("") | Some("text") => Format::Text,
        Some("json") => Format::Json,
        Some(other) => bail!("configuration error: LOG_FORMAT: expected text or json, got {other:?}"),
    };
    let mut builder = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    builder.format(move |buf, record| {
        let request_id = record
            .key_values()
            .get(Key::from_str("request_id"))
            .map(|id| id.to_string());
        match format {
            Format::Text => {
                write!(
                    buf,
                    "[{} {:<5} {}] {}",
                    buf.timestamp(),
                    record.level(),
                    record.target(),
                    record.args()
                )?;
                match request_id {
                    Some(id) => writeln!(buf, " request_id={id}"),
                    None => writeln!(buf),
                }
            }
            Format::Json => {
                let mut line = serde_json::json!({
                    "timestamp": buf.timestamp().to_string(),
                    "level": record.level().as_str(),
                    "target": record.target(),
                    "message": record.args().to_string(),
                });
                if let Some(id) = request_id {
                    line["request_id"] = id.into();
                }
                writeln!(buf, "{line}")
            }
        }
    });
    builder.init();
    Ok(())
}
