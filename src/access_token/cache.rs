//! The cache of verified asymmetric tokens: a repeated ES256, EdDSA or RS256
//! token skips its signature check (tens of microseconds) and its claim
//! parsing, so it costs about what an HS256 token does.
//!
//! Keyed by the whole token, compared byte for byte: the hash only picks
//! the bucket (foldhash, seeded per process), so no crafted collision can
//! skip a signature. A token is kept from its second verification on (one
//! presented once costs the cache next to nothing). An entry lives no
//! longer than its token's `exp`, is
//! only good for the key set it was verified under, and a hit still goes
//! through every check that can change with time: `exp`/`nbf`/`iat`, the
//! deny list and its freshness here, scopes and the DPoP binding in the
//! service. Only tokens whose every check passed are kept.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use moka::{Expiry, sync::Cache as MokaCache};

use crate::claims::RawClaims;

/// Default bound of the cache: 8 MiB of entries, as weighed by `weight`
/// (about 7,500 of tollgate's ES256 tokens; 4,000–6,000 of the larger
/// tokens identity providers issue).
pub const DEFAULT_VERIFIED_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// One verified token: its payload, which a hit reads again (cheaper, all
/// told, than copying the parsed claims into every entry).
#[derive(Clone)]
pub(crate) struct Verified {
    pub(crate) raw: RawClaims,
    /// The key set it was verified under.
    generation: u64,
    /// How long moka keeps it: until the token's `exp`.
    ttl: Duration,
}

/// The cache; cloning shares it.
#[derive(Clone)]
pub(crate) struct VerifiedCache {
    entries: MokaCache<Arc<str>, Verified, foldhash::fast::RandomState>,
    /// The key-set generation last seen, to clear the cache once when it
    /// changes.
    generation: Arc<AtomicU64>,
    /// Which tokens were verified once already: only a token seen twice is
    /// kept. An insert into a full moka cache costs several microseconds
    /// (eviction, timer wheel), which a token presented once would pay
    /// for nothing; a repeated one pays it on its second request. A
    /// fingerprint collision only keeps a verified token early.
    doorkeeper: Arc<Doorkeeper>,
}

/// The fingerprints of tokens verified lately, one per slot, each slot
/// overwritten by the next token hashed to it.
struct Doorkeeper {
    slots: Box<[AtomicU64]>,
    hasher: foldhash::fast::RandomState,
}

/// Slots of the doorkeeper: 32 KiB.
const DOORKEEPER_SLOTS: usize = 4096;

impl Doorkeeper {
    fn new() -> Self {
        Self {
            slots: (0..DOORKEEPER_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// Records `token`; whether it was recorded before (and not
    /// overwritten since).
    fn seen_again(&self, token: &str) -> bool {
        use std::hash::BuildHasher;
        // 0 marks an empty slot, so no fingerprint is 0.
        let fingerprint = self.hasher.hash_one(token) | 1;
        let slot = &self.slots[(fingerprint >> 32) as usize % DOORKEEPER_SLOTS];
        slot.swap(fingerprint, Ordering::Relaxed) == fingerprint
    }
}

struct UntilExp;

impl Expiry<Arc<str>, Verified> for UntilExp {
    fn expire_after_create(
        &self,
        _token: &Arc<str>,
        entry: &Verified,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// What an entry costs, in bytes: the token, the payload, and 448 for the
/// fixed parts (moka's seven allocations, the `Arc`s, allocator headers
/// and rounding). Measured: 1,080 B resident per entry for 413-byte ES256
/// tokens with 240-byte payloads under glibc (`bench_server memory
/// verified-cache`), which this puts at 1,101.
fn weight(token: &Arc<str>, entry: &Verified) -> u32 {
    let bytes = token.len() + entry.raw.as_str().len() + 448;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

impl VerifiedCache {
    pub(crate) fn new(max_bytes: u64) -> Self {
        Self {
            entries: MokaCache::builder()
                .max_capacity(max_bytes)
                .weigher(weight)
                .expire_after(UntilExp)
                .build_with_hasher(foldhash::fast::RandomState::default()),
            generation: Arc::new(AtomicU64::new(0)),
            doorkeeper: Arc::new(Doorkeeper::new()),
        }
    }

    /// The verified claims of `token`, if it was verified under the key set
    /// of `generation`.
    pub(crate) fn get(&self, token: &str, generation: u64) -> Option<Verified> {
        self.observe(generation);
        self.entries
            .get(token)
            .filter(|entry| entry.generation == generation)
    }

    /// Keeps a token whose every check passed, until `ttl` (its `exp`),
    /// from the second time it is verified on.
    pub(crate) fn insert(&self, token: &str, raw: &RawClaims, generation: u64, ttl: Duration) {
        if ttl.is_zero() || !self.doorkeeper.seen_again(token) {
            return;
        }
        let entry = Verified {
            raw: raw.clone(),
            generation,
            ttl,
        };
        self.entries.insert(token.into(), entry);
    }

    /// A new key set makes every entry useless: drop them once.
    fn observe(&self, generation: u64) {
        let seen = self.generation.load(Ordering::Relaxed);
        if seen != generation
            && self
                .generation
                .compare_exchange(seen, generation, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.entries.invalidate_all();
        }
    }

    pub(crate) fn entry_count(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_keyed_by_the_whole_token_and_the_key_set() {
        let cache = VerifiedCache::new(1 << 20);
        let raw = RawClaims::from_json("{}");
        // Kept from its second verification on.
        cache.insert("a.b.c", &raw, 1, Duration::from_secs(60));
        assert!(cache.get("a.b.c", 1).is_none());
        cache.insert("a.b.c", &raw, 1, Duration::from_secs(60));
        assert!(cache.get("a.b.c", 1).is_some());
        assert!(cache.get("a.b.C", 1).is_none());
        assert!(cache.get("a.b.c.", 1).is_none());
        // Another key set: not a hit, and the old entries are dropped.
        assert!(cache.get("a.b.c", 2).is_none());
        assert_eq!(cache.entry_count(), 0);
        assert!(cache.get("a.b.c", 1).is_none());
        // Nothing is kept for a token already at its `exp`.
        cache.insert("x.y.z", &raw, 1, Duration::ZERO);
        cache.insert("x.y.z", &raw, 1, Duration::ZERO);
        assert!(cache.get("x.y.z", 1).is_none());
    }

    #[test]
    fn the_bound_holds() {
        let cache = VerifiedCache::new(64 * 1024);
        let raw = RawClaims::from_json("x".repeat(600));
        for i in 0..1000 {
            for _ in 0..2 {
                cache.insert(&format!("{i:0>900}"), &raw, 1, Duration::from_secs(60));
            }
        }
        cache.entries.run_pending_tasks();
        assert!(cache.entries.weighted_size() <= 64 * 1024);
        assert!(cache.entry_count() > 10);
    }
}
