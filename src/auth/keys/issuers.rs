//! The trusted issuers, each with a key store of its own: its own JWKS, its
//! own cooldown and outage state. A token is checked only against the keys
//! of the issuer its `iss` names, exactly.

use std::sync::Arc;

use url::Url;

use crate::auth::keys::http::HttpSource;
use crate::auth::keys::store::{KeyStore, KeyStoreSettings};

/// The key stores of the trusted issuers, in the configured order.
pub(crate) struct IssuerKeys {
    issuers: Vec<(String, Arc<KeyStore>)>,
}

impl IssuerKeys {
    /// A store per issuer: at `jwks_url` when one is configured (a single
    /// issuer), else at `{issuer}.well-known/jwks.json` or where the
    /// issuer's discovery document says. Nothing is fetched yet.
    pub(crate) fn new(
        issuers: &[String],
        jwks_url: Option<&Url>,
        settings: &KeyStoreSettings,
    ) -> Result<Self, reqwest::Error> {
        let issuers = issuers
            .iter()
            .map(|issuer| {
                let source = match jwks_url {
                    Some(url) => HttpSource::new(url.clone())?,
                    None => HttpSource::for_issuer(issuer)?,
                };
                let store = KeyStore::new(Box::new(source), settings.clone());
                Ok((issuer.clone(), Arc::new(store)))
            })
            .collect::<Result<_, reqwest::Error>>()?;
        Ok(Self { issuers })
    }

    /// One issuer whose keys are given (benchmarks, tests).
    #[cfg(feature = "test-support")]
    pub(crate) fn single(issuer: &str, store: KeyStore) -> Self {
        Self {
            issuers: vec![(issuer.to_owned(), Arc::new(store))],
        }
    }

    /// Each issuer with its store.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Arc<KeyStore>)> {
        self.issuers
            .iter()
            .map(|(issuer, store)| (issuer.as_str(), store))
    }

    /// True when every issuer's keys are usable.
    pub(crate) fn all_ready(&self) -> bool {
        self.issuers.iter().all(|(_, store)| store.is_ready())
    }
}
