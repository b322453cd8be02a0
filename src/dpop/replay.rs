//! The replay cache: each DPoP proof is accepted once (RFC 9449 §11.1).
//!
//! Hand-written rather than moka: moka makes room by evicting, and an
//! evicted entry here is a replay let through. This cache never forgets a
//! live entry; when it is full it refuses new proofs (fail closed) until
//! entries expire, and one key may hold only so many live entries, so a
//! single client cannot fill it for everyone.
//!
//! The key is the pair (key thumbprint, `jti`), hashed to 128 bits: fixed
//! size whatever the client sends, and a `jti` reused under another key is
//! another entry. Entries are held until the proof's `iat` window has
//! passed. Shards are chosen by the replay key, a hash, so entries spread
//! evenly whatever the mix of clients; each shard holds a sixteenth of the
//! capacity and of each key's quota (so a key's quota holds to within the
//! spread of its proofs over the shards).

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hasher},
    sync::{Arc, Mutex},
};

use std::time::SystemTime;

use aws_lc_rs::digest;

use super::DpopError;
use crate::time::unix_millis;

/// Default bound on live entries: about 1M (some 40 MB when full).
pub const DEFAULT_REPLAY_CAPACITY: usize = 1 << 20;

/// Default bound on one key's live entries (about 120 proofs a second
/// held for the default 65 s window).
pub const DEFAULT_REPLAY_PER_KEY: usize = 8192;

const SHARDS: usize = 16;

/// Sweep a shard of expired entries at most this often (ms), besides
/// whenever it is full.
const SWEEP_EVERY_MS: u64 = 1000;

/// What claiming a proof found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// First use: recorded.
    Fresh,
    /// Seen before, and still live: a replay.
    Replayed,
    /// No room: refused, nothing forgotten.
    Full,
    /// This key holds its quota of live entries.
    KeyQuota,
}

/// The in-memory replay cache. Cloning shares it; give one to every gate
/// and token endpoint of a process (their proofs' `htu`s differ, so
/// sharing costs nothing and bounds memory once).
#[derive(Clone)]
pub struct ReplayCache {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Vec<Mutex<Shard>>,
    shard_capacity: usize,
    per_key: u32,
    hasher: foldhash::fast::FixedState,
}

#[derive(Default)]
struct Shard {
    /// Replay key → (expiry in Unix ms, the key's tag).
    entries: HashMap<u128, (u64, u64)>,
    /// Live entries per key tag.
    per_key: HashMap<u64, u32>,
    swept_at: u64,
}

impl std::fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayCache")
            .field("capacity", &(self.inner.shard_capacity * SHARDS))
            .field("per_key", &(self.inner.per_key as usize * SHARDS))
            .finish_non_exhaustive()
    }
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::new(DEFAULT_REPLAY_CAPACITY, DEFAULT_REPLAY_PER_KEY)
    }
}

impl ReplayCache {
    /// A cache of at most `capacity` live proofs, about `per_key` of them
    /// for any one key (exactly: `per_key / 16` in each of 16 shards).
    pub fn new(capacity: usize, per_key: usize) -> Self {
        let shard_capacity = capacity.div_ceil(SHARDS).max(1);
        Self {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
                shard_capacity,
                // A key's quota per shard.
                per_key: u32::try_from(per_key.div_ceil(SHARDS).max(1)).unwrap_or(u32::MAX),
                hasher: foldhash::fast::FixedState::with_seed(0x7011_6a7e),
            }),
        }
    }

    /// Live entries now (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.entries.len()))
            .sum()
    }

    /// Whether no proof is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records the proof `jti` of the key with thumbprint `jkt`, live
    /// until `until`: `Ok` the first time, [`DpopError::Replay`] while it
    /// lives, [`DpopError::ReplayCacheFull`] when there is no room (for
    /// anything, or for this key). The gates and the token endpoint call
    /// this for every proof they accept.
    pub fn try_claim(
        &self,
        jkt: &str,
        jti: &str,
        until: SystemTime,
        now: SystemTime,
    ) -> Result<(), DpopError> {
        match self.claim(
            jkt,
            replay_key(jkt, jti),
            unix_millis(until),
            unix_millis(now),
        ) {
            Claim::Fresh => Ok(()),
            Claim::Replayed => Err(DpopError::Replay),
            Claim::Full | Claim::KeyQuota => Err(DpopError::ReplayCacheFull),
        }
    }

    /// Claims the proof `key` (its [`replay_key`]) of key `jkt`, live
    /// until `expires_ms`.
    pub(crate) fn claim(&self, jkt: &str, key: u128, expires_ms: u64, now_ms: u64) -> Claim {
        let tag = {
            let mut h = self.inner.hasher.build_hasher();
            h.write(jkt.as_bytes());
            h.finish()
        };
        let shard = &self.inner.shards[(key % SHARDS as u128) as usize];
        // A poisoned lock: a panic elsewhere mid-update. The map is still
        // consistent enough to refuse replays; carry on with it.
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&(expires, _)) = shard.entries.get(&key)
            && expires > now_ms
        {
            return Claim::Replayed;
        }
        let full = shard.entries.len() >= self.inner.shard_capacity;
        if full || now_ms >= shard.swept_at + SWEEP_EVERY_MS {
            shard.sweep(now_ms);
        }
        if shard.entries.len() >= self.inner.shard_capacity {
            return Claim::Full;
        }
        let count = shard.per_key.entry(tag).or_default();
        if *count >= self.inner.per_key {
            return Claim::KeyQuota;
        }
        *count += 1;
        shard.entries.insert(key, (expires_ms, tag));
        Claim::Fresh
    }
}

impl Shard {
    fn sweep(&mut self, now_ms: u64) {
        let per_key = &mut self.per_key;
        self.entries.retain(|_, &mut (expires, tag)| {
            let live = expires > now_ms;
            if !live && let Some(n) = per_key.get_mut(&tag) {
                *n -= 1;
                if *n == 0 {
                    per_key.remove(&tag);
                }
            }
            live
        });
        self.swept_at = now_ms;
    }
}

/// SHA-256 of the thumbprint and the `jti` (length-prefixed, so no two
/// pairs run together), truncated to 128 bits.
pub(crate) fn replay_key(jkt: &str, jti: &str) -> u128 {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&(jkt.len() as u64).to_be_bytes());
    ctx.update(jkt.as_bytes());
    ctx.update(jti.as_bytes());
    let d = ctx.finish();
    u128::from_be_bytes(d.as_ref()[..16].try_into().expect("32-byte digest"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_accepted_once_while_live() {
        let c = ReplayCache::default();
        assert_eq!(c.claim("k1", replay_key("k1", "j1"), 1000, 0), Claim::Fresh);
        assert_eq!(
            c.claim("k1", replay_key("k1", "j1"), 1000, 999),
            Claim::Replayed
        );
        // Another key with the same jti, the same key with another jti.
        assert_eq!(c.claim("k2", replay_key("k2", "j1"), 1000, 0), Claim::Fresh);
        assert_eq!(c.claim("k1", replay_key("k1", "j2"), 1000, 0), Claim::Fresh);
        // Past its window the entry is gone (the proof's iat check refuses
        // such a proof before it gets here).
        assert_eq!(
            c.claim("k1", replay_key("k1", "j1"), 3000, 1000),
            Claim::Fresh
        );
        // No concatenation collision.
        assert_eq!(c.claim("ab", replay_key("ab", "c"), 1000, 0), Claim::Fresh);
        assert_eq!(c.claim("a", replay_key("a", "bc"), 1000, 0), Claim::Fresh);
    }

    /// The public claim maps each outcome to the error a request gets.
    #[test]
    fn try_claim_answers_with_the_refusals_of_a_request() {
        use std::time::{Duration, UNIX_EPOCH};
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        let c = ReplayCache::new(SHARDS, SHARDS);
        assert_eq!(c.try_claim("k", "j", at(5000), at(0)), Ok(()));
        assert_eq!(
            c.try_claim("k", "j", at(5000), at(1)),
            Err(DpopError::Replay)
        );
        // Shard capacity 1, one key's share 1: more proofs of "k" are
        // refused for room, never let through.
        let refused = (0..64)
            .filter(|i| {
                c.try_claim("k", &format!("x{i}"), at(5000), at(1))
                    == Err(DpopError::ReplayCacheFull)
            })
            .count();
        assert!(refused > 0);
        assert!(!c.is_empty());
    }

    #[test]
    fn a_full_cache_refuses_new_proofs_rather_than_forget_old_ones() {
        let c = ReplayCache::new(SHARDS, 100);
        // Every key lands in some shard of capacity 1: fill until refused.
        let mut held = Vec::new();
        for i in 0..1000 {
            let key = format!("key-{i}");
            match c.claim(&key, replay_key(&key, "j"), 10_000, 0) {
                Claim::Fresh => held.push(key),
                Claim::Full => {
                    // Every accepted proof is still refused as a replay.
                    for k in &held {
                        assert_eq!(c.claim(k, replay_key(k, "j"), 10_000, 1), Claim::Replayed);
                    }
                    // Once they expire there is room again.
                    assert_eq!(
                        c.claim(&key, replay_key(&key, "j"), 30_000, 10_000),
                        Claim::Fresh
                    );
                    return;
                }
                other => panic!("{other:?}"),
            }
        }
        panic!("never full");
    }

    #[test]
    fn one_key_cannot_fill_the_cache() {
        // 64 per key: 4 in each shard.
        let c = ReplayCache::new(1 << 16, 64);
        let mut held = 0;
        for j in 0..1000 {
            match c.claim("greedy", replay_key("greedy", &j.to_string()), 1000, 0) {
                Claim::Fresh => held += 1,
                Claim::KeyQuota => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(held, 64, "every shard's share filled, no more");
        // Another key is not affected.
        assert_eq!(
            c.claim("other", replay_key("other", "0"), 1000, 0),
            Claim::Fresh
        );
        // Its entries expire, its quota frees.
        assert_eq!(
            c.claim("greedy", replay_key("greedy", "x"), 3000, 2000),
            Claim::Fresh
        );
    }

    #[test]
    fn concurrent_claims_of_one_proof_admit_exactly_one() {
        let c = ReplayCache::default();
        let winners: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| s.spawn(|| c.claim("k", replay_key("k", "same"), 1000, 0) == Claim::Fresh))
                .collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().unwrap()))
                .sum()
        });
        assert_eq!(winners, 1);
    }
}
