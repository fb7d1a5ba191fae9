//! Where a key store gets its keys ([`KeySource`]): the tenant over HTTP,
//! or a stand-in in tests; what one fetch brings ([`Fetched`]), and why it
//! may bring nothing ([`FetchError`]).

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::auth::keys::jwks::{KeySet, NotAKeySet};

/// A key set as fetched, with the lifetime its publisher asked for.
pub(crate) struct Fetched {
    /// The usable keys of the document.
    pub(crate) keys: KeySet,
    /// `Cache-Control: max-age`, if the response had one.
    pub(crate) max_age: Option<Duration>,
}

/// Why a fetch brought no keys.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// No complete answer within the fetch timeout.
    #[error("timed out")]
    TimedOut,
    /// The tenant could not be reached.
    #[error("cannot connect")]
    CannotConnect,
    /// An answer other than 200.
    #[error("HTTP {0}")]
    Status(u16),
    /// A document over the size limit.
    #[error("response larger than 1 MiB")]
    TooLarge,
    /// Another transport failure.
    #[error("{0}")]
    Http(String),
    /// A body that is not a key set.
    #[error(transparent)]
    NotAKeySet(#[from] NotAKeySet),
    /// A key set without one key we could use.
    #[error("the key set has no usable RS256 signing key")]
    NoUsableKey,
    /// The issuer's discovery document (OpenID or RFC 8414) does not say
    /// where its keys are, or could not be read.
    #[error("{document}: {why}")]
    Discovery {
        /// The document's URL.
        document: String,
        /// What is wrong with it.
        why: String,
    },
    /// The issuer's discovery document spells the issuer with a trailing
    /// slash where the configuration has none, or the reverse: a
    /// configuration error, which every token of the issuer would pay for.
    #[error(
        "{document} names the issuer {published:?}, AUTH0_ISSUER {configured:?}: they differ only by a trailing \
         slash, and the issuer's tokens carry its own spelling, so every one would be refused; write it as \
         {published:?} in AUTH0_ISSUER"
    )]
    IssuerSpelling {
        /// The document's URL.
        document: String,
        /// The issuer as the document spells it.
        published: String,
        /// The issuer as configured.
        configured: String,
    },
}

/// Where a store gets its keys: the tenant over HTTP, or a stand-in in tests.
pub(crate) trait KeySource: Send + Sync + 'static {
    /// Fetches the whole key set once.
    fn fetch(&self) -> BoxFuture<'_, Result<Fetched, FetchError>>;
    /// Where the keys come from, for log lines.
    fn location(&self) -> &str;
}

/// A tenant that cannot be reached: keys are given, never fetched, and an
/// unknown kid costs no network (tests, benchmarks).
#[cfg(any(test, feature = "test-support"))]
pub(crate) struct Unreachable;

#[cfg(any(test, feature = "test-support"))]
impl KeySource for Unreachable {
    fn fetch(&self) -> BoxFuture<'_, Result<Fetched, FetchError>> {
        Box::pin(async { Err(FetchError::CannotConnect) })
    }

    fn location(&self) -> &str {
        "(no tenant: keys given in advance)"
    }
}
