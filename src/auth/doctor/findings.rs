//! What the doctor finds, one line per check ([`Finding`]), and the
//! [`Doctor`] that gathers them against the settings; each part of the
//! diagnosis (`input`, `shape`, `header`, `claims`...) adds its findings
//! through it.

use serde::Serialize;

use crate::config::Settings;

/// What one finding says of the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// This check passes.
    Ok,
    /// The server refuses the token for this.
    Problem,
    /// Worth knowing; decides nothing.
    Note,
    /// Could not be checked here.
    Unchecked,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Problem => "problem",
            Self::Note => "note",
            Self::Unchecked => "unchecked",
        }
    }
}

/// One line of the explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Whether it passes, fails, informs or was not checked.
    pub status: Status,
    /// What it is about: a claim (`iss`, `exp`...) or a part (`header`...).
    pub topic: &'static str,
    /// What was found and, for a problem, the fix. Values from the token
    /// are escaped and cut.
    pub text: String,
}

/// What the server would do with a token, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The findings, in the order the server checks.
    pub findings: Vec<Finding>,
    /// True when the server would accept the token (offline: if its
    /// signature is valid).
    pub accepted: bool,
    /// True when the signature was checked against the issuer's keys.
    pub signature_checked: bool,
    /// The verdict in one sentence, with the server's own words on refusal.
    pub verdict: String,
}

impl Explanation {
    /// The explanation as lines of plain text: one per finding, then the verdict.
    pub fn lines(&self) -> Vec<String> {
        self.findings
            .iter()
            .map(|finding| format!("{:<9} {}: {}", finding.status.word(), finding.topic, finding.text))
            .chain([format!("verdict   {}", self.verdict)])
            .collect()
    }
}

/// The findings so far, and what they are measured against.
pub(super) struct Doctor<'s> {
    pub(super) settings: &'s Settings,
    pub(super) now: u64,
    pub(super) findings: Vec<Finding>,
}

impl Doctor<'_> {
    pub(super) fn add(&mut self, status: Status, topic: &'static str, text: impl Into<String>) {
        self.findings.push(Finding {
            status,
            topic,
            text: text.into(),
        });
    }

    pub(super) fn problem(&mut self, topic: &'static str, text: impl Into<String>) {
        self.add(Status::Problem, topic, text);
    }

    pub(super) fn leeway(&self) -> u64 {
        self.settings.validation.leeway.as_secs()
    }

    /// The first configured audience, for advice.
    pub(super) fn audience(&self) -> String {
        let audience = self
            .settings
            .validation
            .audiences
            .first()
            .map_or("<AUTH0_AUDIENCE>", String::as_str);
        audience.to_owned()
    }
}
