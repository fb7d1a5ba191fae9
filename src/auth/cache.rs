//! A bounded cache of verified tokens, so that a repeated token costs a
//! hash and a lookup instead of an RSA signature check.
//!
//! Entries are keyed by the whole token: the map hashes the token's length
//! and its last bytes (signature bytes, which no one can choose for a token
//! that verifies, and only verified tokens are stored) with a seeded hash,
//! then compares the whole token byte for byte. So two tokens never share
//! an entry whatever their hashes, and neither a cryptographic hash nor a
//! pass over the whole token is paid per request. Entries live until the token's `exp` (plus the leeway validation
//! allows) and are only honoured while the key that signed them is still
//! published (see [`KeyStore::still_trusts`]); an entry whose key has gone
//! is dropped when next looked up. The cache lives in process memory only,
//! like the token itself in the request.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use foldhash::fast::RandomState;
use quick_cache::UnitWeighter;
use quick_cache::sync::{Cache, DefaultLifecycle};

use crate::auth::keys::{KeyStore, PublishedKey};
use crate::auth::token::{Principal, unix_now};

/// A token that passed full validation.
#[derive(Debug)]
pub struct VerifiedToken {
    /// Who it speaks for.
    pub principal: Principal,
    /// The store of the issuer whose key signed it.
    pub(crate) keys: Arc<KeyStore>,
    /// The RFC 7638 thumbprint of the key a DPoP-bound token is bound to
    /// (its `cnf.jkt`): such a token is accepted only with a proof signed
    /// by that key, on every request.
    pub(crate) jkt: Option<String>,
    /// The `kid` of the key that signed it.
    pub(crate) kid: String,
    /// That key, as it was published then.
    pub(crate) key: Arc<PublishedKey>,
    /// Until when validation would accept it: its `exp` plus the leeway, in
    /// seconds since the epoch.
    pub(crate) valid_until: u64,
    /// When it was issued (`iat`), in seconds since the epoch, if it says.
    pub(crate) issued_at: Option<u64>,
    /// The key-set generation its key was last found in (see
    /// [`KeyStore::still_trusts`]).
    pub(crate) key_generation: AtomicU64,
}

impl VerifiedToken {
    /// The thumbprint of the key the token is bound to (`cnf.jkt`), for a
    /// DPoP-bound token; `None` for a bearer token.
    pub fn bound_key(&self) -> Option<&str> {
        self.jkt.as_deref()
    }

    /// True until `valid_until`.
    fn is_unexpired(&self) -> bool {
        unix_now() < self.valid_until
    }
}

type Entries = Cache<
    StoredToken,
    Arc<VerifiedToken>,
    UnitWeighter,
    RandomState,
    DefaultLifecycle<StoredToken, Arc<VerifiedToken>>,
>;

/// How many trailing bytes of a token its hash covers: a RS256 token ends
/// in 342 characters of signature.
const HASHED_TAIL: usize = 32;

/// Hashes what identifies a token cheaply: its length and its tail.
fn hash_token<H: Hasher>(token: &str, state: &mut H) {
    state.write_usize(token.len());
    state.write(&token.as_bytes()[token.len().saturating_sub(HASHED_TAIL)..]);
}

/// A token as the cache stores it.
#[derive(PartialEq, Eq)]
struct StoredToken(Box<str>);

impl Hash for StoredToken {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_token(&self.0, state);
    }
}

/// A token as a request presents it, looked up without copying.
struct PresentedToken<'a>(&'a str);

impl Hash for PresentedToken<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_token(self.0, state);
    }
}

impl quick_cache::Equivalent<StoredToken> for PresentedToken<'_> {
    fn equivalent(&self, stored: &StoredToken) -> bool {
        *stored.0 == *self.0
    }
}

/// Verified tokens, at most `capacity` of them (least useful evicted first).
/// An entry is dropped when it is found expired; until then it only takes
/// its place in the bound.
pub(crate) struct TokenCache {
    entries: Option<Entries>,
}

impl TokenCache {
    /// A cache of up to `capacity` tokens; 0 disables caching.
    pub(crate) fn new(capacity: u64) -> Self {
        let entries = (capacity > 0).then(|| {
            let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
            Cache::with(
                capacity,
                capacity as u64,
                UnitWeighter,
                RandomState::default(),
                DefaultLifecycle::default(),
            )
        });
        Self { entries }
    }

    /// The cached verification of `token`, if it has not expired.
    pub(crate) fn get(&self, token: &str) -> Option<Arc<VerifiedToken>> {
        let entries = self.entries.as_ref()?;
        let verified = entries.get(&PresentedToken(token))?;
        if verified.is_unexpired() {
            Some(verified)
        } else {
            entries.remove(&PresentedToken(token));
            None
        }
    }

    /// Remembers a verified token.
    pub(crate) fn insert(&self, token: &str, verified: Arc<VerifiedToken>) {
        if let Some(entries) = &self.entries {
            entries.insert(StoredToken(token.into()), verified);
        }
    }

    /// Forgets a token (its key is gone).
    pub(crate) fn remove(&self, token: &str) {
        if let Some(entries) = &self.entries {
            entries.remove(&PresentedToken(token));
        }
    }

    #[cfg(test)]
    fn len(&self) -> u64 {
        self.entries.as_ref().map_or(0, |entries| entries.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(valid_until: u64) -> Arc<VerifiedToken> {
        Arc::new(VerifiedToken {
            principal: Principal::new(
                "https://tenant.example.com/".into(),
                "auth0|1".into(),
                Default::default(),
                crate::auth::GrantSource::Configured,
                b"{}".to_vec(),
            ),
            keys: Arc::new(KeyStore::new(
                Box::new(crate::auth::keys::Unreachable),
                Default::default(),
            )),
            jkt: None,
            kid: "k".into(),
            key: crate::auth::keys::jwks::tests::some_key(),
            valid_until,
            issued_at: None,
            key_generation: AtomicU64::new(u64::MAX),
        })
    }

    #[test]
    fn hits_until_exp_and_not_after() {
        let cache = TokenCache::new(10);
        cache.insert("live", verified(unix_now() + 3600));
        cache.insert("expired", verified(unix_now() - 1));
        assert!(cache.get("live").is_some());
        assert!(cache.get("expired").is_none(), "a hit still checks exp");
        assert!(cache.get("other").is_none());
    }

    #[test]
    fn stays_within_its_capacity() {
        let cache = TokenCache::new(100);
        for n in 0..1000 {
            cache.insert(&n.to_string(), verified(unix_now() + 3600));
        }
        assert!(cache.len() <= 100, "{}", cache.len());
    }

    #[test]
    fn capacity_zero_disables_it() {
        let cache = TokenCache::new(0);
        cache.insert("t", verified(unix_now() + 3600));
        assert!(cache.get("t").is_none());
    }

    #[test]
    fn tokens_that_differ_by_one_byte_are_different_entries() {
        let cache = TokenCache::new(10);
        cache.insert("a.b.c", verified(unix_now() + 3600));
        assert!(cache.get("a.b.d").is_none());
        assert!(cache.get("a.b.c").is_some());
    }

    #[test]
    fn tokens_with_the_same_tail_and_length_are_different_entries() {
        let tail = "s".repeat(HASHED_TAIL);
        let (first, second) = (format!("a.b.{tail}"), format!("x.y.{tail}"));
        let cache = TokenCache::new(10);
        cache.insert(&first, verified(unix_now() + 3600));
        assert!(cache.get(&second).is_none(), "same hash, other token");
        cache.insert(&second, verified(unix_now() + 3600));
        assert!(cache.get(&first).is_some() && cache.get(&second).is_some());
        cache.remove(&first);
        assert!(cache.get(&first).is_none());
        assert!(cache.get(&second).is_some());
    }
}
