//! The replay cache's bounds, shares and expiry, on a clock of the tests' own.

use super::*;

/// A thumbprint, as a token's `cnf.jkt` holds it, of the key `name`.
fn jkt(name: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, name.as_bytes()))
}

/// The shard the proof `jti` of `jkt` lands in.
fn shard_of(jkt: &str, jti: &str) -> usize {
    usize::from(proof_id(jkt, jti)[0]) % SHARDS
}

/// `n` jtis whose proofs of `jkt` all land in shard `shard`, as a
/// client choosing its jtis can make them.
fn jtis_in_shard(jkt: &str, shard: usize, n: usize) -> Vec<String> {
    (0..)
        .map(|n| n.to_string())
        .filter(|jti| shard_of(jkt, jti) == shard)
        .take(n)
        .collect()
}

fn remembered(cache: &ReplayCache) -> usize {
    cache.shards.iter().map(|s| lock(s).seen.len()).sum()
}

/// The cache's counts, checked against its entries: proofs in all, and
/// keys with any.
fn counted(cache: &ReplayCache) -> (usize, usize) {
    let total = cache.counts.total.load(Ordering::Relaxed);
    assert_eq!(total, remembered(cache), "the total is exact");
    let per_key: Vec<u32> = (cache.counts.per_key.iter())
        .flat_map(|counts| lock(counts).values().copied().collect::<Vec<_>>())
        .collect();
    assert_eq!(per_key.iter().map(|n| *n as usize).sum::<usize>(), total);
    (total, per_key.len())
}

#[test]
fn the_replay_cache_refuses_a_second_use_until_the_window_ends() {
    let cache = ReplayCache::new(100, 100, 65);
    let now = unix_now();
    let k = jkt("k");
    assert_eq!(cache.remember(&k, "1", now + 60, now), Remembered::New);
    assert_eq!(cache.remember(&k, "1", now + 60, now + 60), Remembered::Seen);
    assert_eq!(cache.remember(&k, "2", now + 60, now), Remembered::New);
    // Another key may use the same jti.
    assert_eq!(cache.remember(&jkt("l"), "1", now + 60, now), Remembered::New);
    // Forgotten once its last second has passed (swept as its shard is next used).
    assert_eq!(cache.remember(&k, "1", now + 200, now + 61), Remembered::New);
    assert_eq!(cache.remember(&k, "2", now + 200, now + 61), Remembered::New);
    assert_eq!(remembered(&cache), 3);
}

#[test]
fn a_key_over_its_share_is_refused_while_another_key_is_admitted() {
    let cache = ReplayCache::new(10, 3, 65);
    let now = unix_now();
    let (greedy, modest) = (jkt("greedy"), jkt("modest"));
    for jti in ["1", "2", "3"] {
        assert_eq!(cache.remember(&greedy, jti, now + 60, now), Remembered::New);
    }
    for jti in ["4", "5", "6", "7"] {
        assert_eq!(cache.remember(&greedy, jti, now + 60, now), Remembered::OverShare);
    }
    // A replay is still a replay, whatever the key's share.
    assert_eq!(cache.remember(&greedy, "1", now + 60, now), Remembered::Seen);
    for jti in ["1", "2", "3"] {
        assert_eq!(cache.remember(&modest, jti, now + 60, now), Remembered::New);
    }
    assert_eq!(counted(&cache), (6, 2));
}

#[test]
fn jtis_crafted_into_one_shard_hold_neither_more_nor_less_than_the_bounds() {
    // Six proofs in all, at most four of one key, every one in shard 5:
    // a share and a capacity per shard would refuse them early, or let
    // a key keep more than its share across shards.
    let cache = ReplayCache::new(6, 4, 65);
    let now = unix_now();
    let (greedy, other, third) = (jkt("greedy"), jkt("other"), jkt("third"));
    let crafted = jtis_in_shard(&greedy, 5, 10);
    let outcomes: Vec<Remembered> = (crafted.iter())
        .map(|jti| cache.remember(&greedy, jti, now + 60, now))
        .collect();
    assert_eq!(outcomes.iter().filter(|o| **o == Remembered::New).count(), 4);
    assert!(
        outcomes[4..].iter().all(|o| *o == Remembered::OverShare),
        "{outcomes:?}"
    );
    assert_eq!(lock(&cache.shards[5]).seen.len(), 4, "all in one shard");
    for jti in jtis_in_shard(&other, 5, 2) {
        assert_eq!(cache.remember(&other, &jti, now + 60, now), Remembered::New);
    }
    // The cache is full, wherever the next proof lands.
    for shard in [5, 0] {
        let jti = &jtis_in_shard(&third, shard, 1)[0];
        assert_eq!(cache.remember(&third, jti, now + 60, now), Remembered::Full);
    }
    assert_eq!(counted(&cache), (6, 2));
}

#[test]
fn entries_leave_at_iat_plus_window_and_give_their_key_room_again() {
    let cache = ReplayCache::new(100, 2, 65);
    let now = unix_now();
    let key = jkt("key");
    // Two proofs in shards of their own, then a third in yet another.
    let early = &jtis_in_shard(&key, 1, 1)[0];
    let later = &jtis_in_shard(&key, 2, 1)[0];
    let next = jtis_in_shard(&key, 3, 2);
    assert_eq!(cache.remember(&key, early, now + 10, now), Remembered::New);
    assert_eq!(cache.remember(&key, later, now + 12, now), Remembered::New);
    assert_eq!(
        cache.remember(&key, &next[0], now + 70, now + 10),
        Remembered::OverShare
    );
    assert_eq!(counted(&cache), (2, 1));
    // Once the first has expired it is counted out, though no proof has
    // landed in its shard since.
    assert_eq!(
        cache.remember(&key, &next[0], now + 71, now + 11),
        Remembered::New
    );
    assert_eq!(
        cache.remember(&key, &next[1], now + 71, now + 11),
        Remembered::OverShare
    );
    assert_eq!(counted(&cache), (2, 1));
    assert_eq!(
        cache.remember(&key, &next[1], now + 73, now + 13),
        Remembered::New
    );
    // When all have expired, nothing is counted for the key any more.
    assert_eq!(
        cache.remember(&jkt("other"), "x", now + 200, now + 200),
        Remembered::New
    );
    for shard in &cache.shards {
        lock(shard).sweep(now + 200, &cache.counts);
    }
    assert_eq!(counted(&cache), (1, 1));
}

#[test]
fn a_full_replay_cache_refuses_rather_than_forgets() {
    let cache = ReplayCache::new(3, 1, 65);
    let now = unix_now();
    let outcomes: Vec<Remembered> = (0..20)
        .map(|n| cache.remember(&jkt(&n.to_string()), "1", now + 60, now))
        .collect();
    assert_eq!(outcomes[..3], [Remembered::New, Remembered::New, Remembered::New]);
    assert!(
        outcomes[3..].iter().all(|o| *o == Remembered::Full),
        "{outcomes:?}"
    );
    assert_eq!(counted(&cache), (3, 3));
    // Once their window has passed, there is room again.
    assert_eq!(
        cache.remember(&jkt("0"), "1", now + 300, now + 61),
        Remembered::New
    );
    for shard in &cache.shards {
        lock(shard).sweep(now + 61, &cache.counts);
    }
    assert_eq!(counted(&cache), (1, 1));
}

#[test]
fn a_clock_that_jumps_does_not_lose_or_keep_entries_forever() {
    let cache = ReplayCache::new(100, 100, 10);
    let now = unix_now();
    let k = jkt("k");
    // One shard, swept as each of them is remembered.
    let [a, b, c] = <[String; 3]>::try_from(jtis_in_shard(&k, 0, 3)).unwrap();
    assert_eq!(cache.remember(&k, &a, now + 10, now), Remembered::New);
    // Far ahead: everything is swept.
    assert_eq!(
        cache.remember(&k, &b, now + 10_010, now + 10_000),
        Remembered::New
    );
    assert_eq!(
        cache.remember(&k, &a, now + 10_010, now + 10_000),
        Remembered::New
    );
    // Back in time: entries stay until their second comes round.
    assert_eq!(cache.remember(&k, &c, now + 15, now + 5), Remembered::New);
    assert_eq!(cache.remember(&k, &c, now + 15, now + 9_000), Remembered::Seen);
    assert_eq!(
        cache.remember(&k, &c, now + 10_050, now + 10_040),
        Remembered::New
    );
    assert_eq!(counted(&cache), (1, 1));
}

#[test]
fn a_key_is_known_by_its_thumbprint() {
    let (a, b) = (jkt("a"), jkt("b"));
    assert_eq!(key_id(&a), key_id(&a.clone()));
    assert_ne!(key_id(&a), key_id(&b));
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest(&SHA256, b"a").as_ref()[..8]);
    assert_eq!(key_id(&a), u64::from_be_bytes(first));
    // Anything else is hashed, never refused.
    assert_ne!(key_id("k"), key_id("l"));
}
