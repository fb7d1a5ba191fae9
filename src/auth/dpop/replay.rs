//! The replay cache: every accepted proof, remembered (per key) for as long
//! as its `iat` keeps it acceptable, so that it cannot be used twice. It
//! lives in memory, with a bounded share for each key: each instance of the
//! API remembers the proofs it accepted, not those another accepted (see
//! docs/dpop.md).

use std::collections::{HashMap, hash_map};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use aws_lc_rs::digest::{self, SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use foldhash::fast::RandomState;

use crate::auth::token::unix_now;

/// What [`ReplayCache::remember`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Remembered {
    /// Not seen before; now remembered.
    New,
    /// Already remembered: a replay.
    Seen,
    /// The proof's key has its share of the cache already.
    OverShare,
    /// No room without forgetting a proof whose window is still open.
    Full,
}

/// The proofs accepted within their window, by a 128-bit hash of their key
/// thumbprint and `jti` (a collision takes 2^64 proofs), in shards by that
/// hash. Bounded twice: at most `capacity` proofs in all, and at most
/// `share` of any one key, so that one client cannot fill it for all. Both
/// are counted across the shards, since a client picks its `jti`s, and so
/// the shards its proofs land in; and a proof is refused only once every
/// shard has been swept of the expired ones. Over a bound, a new proof is
/// refused rather than an unexpired one forgotten, which would let that
/// one be replayed. Entries leave when their second has passed:
/// each is filed under the second its `iat` stops being acceptable, in a
/// ring of one slot per second of the longest wait.
pub(super) struct ReplayCache {
    shards: Box<[Mutex<Shard>]>,
    counts: Counts,
    capacity: usize,
    share: u32,
    /// When a full cache was last reported (seconds since the epoch).
    warned: AtomicU64,
}

struct Shard {
    /// Each remembered proof.
    seen: HashMap<[u8; 16], Entry, RandomState>,
    /// The proofs whose last acceptable second is `s`, at `s % len`.
    expiring: Box<[Vec<[u8; 16]>]>,
    /// Every second up to this one has been swept.
    swept_through: u64,
}

/// A remembered proof: its last acceptable second, and whose it is.
struct Entry {
    expires: u64,
    key: KeyId,
}

/// A key, by the first 64 bits of its thumbprint (a SHA-256 hash): two keys
/// share an id by chance only, about 2^-64 for a given pair.
type KeyId = u64;

/// How many proofs are remembered, in all and per key. A count changes
/// while the shard its proof lives in is locked; a shard lock may be held
/// when a count lock is taken, never the other way round.
struct Counts {
    total: AtomicUsize,
    /// Proofs remembered per key, for keys with any, in shards by key.
    per_key: Box<[Mutex<HashMap<KeyId, u32, RandomState>>]>,
}

const SHARDS: usize = 16;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ReplayCache {
    /// A cache of `capacity` proofs, at most `share` of them one key's, none
    /// kept longer than `longest` seconds after it is accepted.
    pub(super) fn new(capacity: usize, share: usize, longest: u64) -> Self {
        let slots = usize::try_from(longest + 2).unwrap_or(usize::MAX);
        let now = unix_now();
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    seen: HashMap::default(),
                    expiring: (0..slots).map(|_| Vec::new()).collect(),
                    swept_through: now.saturating_sub(1),
                })
            })
            .collect();
        Self {
            shards,
            counts: Counts {
                total: AtomicUsize::new(0),
                per_key: (0..SHARDS).map(|_| Mutex::default()).collect(),
            },
            capacity,
            share: u32::try_from(share).unwrap_or(u32::MAX),
            warned: AtomicU64::new(0),
        }
    }

    /// Remembers the proof `jti` of the key `jkt` until the end of second
    /// `expires`, unless it is already remembered or there is no room.
    pub(super) fn remember(&self, jkt: &str, jti: &str, expires: u64, now: u64) -> Remembered {
        let id = proof_id(jkt, jti);
        let key = key_id(jkt);
        let mut remembered = self.remember_in_shard(id, key, expires, now);
        if matches!(remembered, Remembered::OverShare | Remembered::Full) {
            // The counts hold proofs of shards not swept since they expired:
            // swept, they may leave room. Only a refusal pays for this.
            for shard in &self.shards {
                lock(shard).sweep(now, &self.counts);
            }
            remembered = self.remember_in_shard(id, key, expires, now);
        }
        if remembered == Remembered::Full {
            let last = self.warned.load(Ordering::Relaxed);
            if last.saturating_add(60) <= now
                && self
                    .warned
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                log::warn!(
                    "DPoP replay cache full: refusing DPoP requests with 503 until proofs expire (raise DPOP_REPLAY_CACHE_SIZE)"
                );
            }
        }
        remembered
    }

    fn remember_in_shard(&self, id: [u8; 16], key: KeyId, expires: u64, now: u64) -> Remembered {
        let mut shard = lock(&self.shards[usize::from(id[0]) % SHARDS]);
        shard.sweep(now, &self.counts);
        if shard.seen.contains_key(&id) {
            return Remembered::Seen;
        }
        let admitted = self.counts.admit(key, self.share, self.capacity);
        if admitted == Remembered::New {
            shard.seen.insert(id, Entry { expires, key });
            let slot = (expires % shard.expiring.len() as u64) as usize;
            shard.expiring[slot].push(id);
        }
        admitted
    }
}

/// A proof's 128-bit id: see [`proof_id`].
pub(crate) type ProofId = [u8; 16];

/// The 128-bit id of the proof `jti` of the key `jkt`: the first half of
/// SHA-256 of `jkt.jti` (a thumbprint holds no dot).
pub(super) fn proof_id(jkt: &str, jti: &str) -> ProofId {
    let mut context = digest::Context::new(&SHA256);
    context.update(jkt.as_bytes());
    context.update(b".");
    context.update(jti.as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&context.finish().as_ref()[..16]);
    id
}

/// The id of the key whose thumbprint is `jkt`: its first 64 bits, from
/// its first 12 base64url characters.
fn key_id(jkt: &str) -> KeyId {
    let mut bytes = [0u8; 9];
    let decoded = jkt
        .get(..12)
        .is_some_and(|prefix| URL_SAFE_NO_PAD.decode_slice(prefix, &mut bytes) == Ok(9));
    if !decoded {
        // Not a thumbprint (never, once checked against the proof's key).
        bytes[..8].copy_from_slice(&digest(&SHA256, jkt.as_bytes()).as_ref()[..8]);
    }
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(first)
}

impl Counts {
    /// Counts one more proof of `key`, unless the key has `share` already
    /// or `capacity` are remembered in all.
    fn admit(&self, key: KeyId, share: u32, capacity: usize) -> Remembered {
        let mut per_key = lock(&self.per_key[key as usize % SHARDS]);
        let count = per_key.entry(key).or_insert(0);
        if *count >= share {
            return Remembered::OverShare;
        }
        let counted = self
            .total
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |total| {
                (total < capacity).then_some(total + 1)
            });
        if counted.is_err() {
            if *count == 0 {
                per_key.remove(&key);
            }
            return Remembered::Full;
        }
        *count += 1;
        Remembered::New
    }

    /// Counts one proof of `key` fewer.
    fn release(&self, key: KeyId) {
        self.total.fetch_sub(1, Ordering::Relaxed);
        let mut per_key = lock(&self.per_key[key as usize % SHARDS]);
        if let hash_map::Entry::Occupied(mut count) = per_key.entry(key) {
            *count.get_mut() -= 1;
            if *count.get() == 0 {
                count.remove();
            }
        }
    }
}

impl Shard {
    /// Forgets the proofs whose last acceptable second is before `now`,
    /// and counts them out.
    fn sweep(&mut self, now: u64, counts: &Counts) {
        let Some(last) = now.checked_sub(1).filter(|last| *last > self.swept_through) else {
            return;
        };
        let slots = self.expiring.len() as u64;
        let first = (self.swept_through + 1).max(last.saturating_sub(slots - 1));
        for second in first..=last {
            let Shard { seen, expiring, .. } = self;
            // A proof filed here may expire a ring's turn later (after the
            // clock went back): it stays until then.
            expiring[(second % slots) as usize].retain(|id| match seen.entry(*id) {
                hash_map::Entry::Occupied(entry) if entry.get().expires > second => true,
                hash_map::Entry::Occupied(entry) => {
                    counts.release(entry.remove().key);
                    false
                }
                hash_map::Entry::Vacant(_) => false,
            });
        }
        self.swept_through = last;
    }
}

#[cfg(test)]
mod tests;
