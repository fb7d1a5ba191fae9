//! What every command prints through.

use std::io::Write;

use anyhow::Context;

/// `text` with each control character (C0, DEL, C1) as a `\uXXXX` escape.
pub(super) fn escape_controls(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\u{:04x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Writes `lines` to stdout. A reader that stops early (`| head`) ends the
/// output quietly, as with any Unix tool.
pub(super) fn print_lines(lines: impl IntoIterator<Item = String>) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = lines
        .into_iter()
        .try_for_each(|line| writeln!(out, "{line}"))
        .and_then(|()| out.flush());
    match written {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(err).context("stdout"),
        _ => Ok(()),
    }
}
