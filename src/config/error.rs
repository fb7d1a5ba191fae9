//! The one error a setting can have: which variable, and what it must look like.

/// A setting that is missing or malformed; its `Display` is the one line
/// printed before the server exits.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration error: {variable}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What it must look like.
    pub problem: String,
}

impl ConfigError {
    pub(super) fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}
