use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use moka::{Expiry, sync::Cache as MokaCache};

/// A deny-list map. Hashed with foldhash rather than SipHash: its keys
/// (`jti`, `sid`, `sub`) are looked up only after a token's signature has
/// verified, so they are values our issuer chose, and hash flooding is not
/// a threat; SipHash cost three hashes per request for nothing.
type Cache<V> = MokaCache<Key, V, foldhash::fast::RandomState>;

/// An id as the deny list keeps it: a 128-bit digest, 16 bytes inline,
/// instead of a pointer, a length and a heap copy of the text (about 35
/// bytes less per entry at a million entries). Two ids with one digest
/// would make both look revoked: a refusal, never an acceptance; with two
/// independently seeded 64-bit hashes of ids our issuer chose, it does not
/// happen.
type Key = u128;

/// Digests ids into [`Key`]s; clones share the seeds.
#[derive(Clone)]
struct Digest(
    foldhash::quality::RandomState,
    foldhash::quality::RandomState,
);

impl Digest {
    fn new() -> Self {
        Self(Default::default(), Default::default())
    }

    fn of<T: std::hash::Hash + ?Sized>(&self, id: &T) -> Key {
        use std::hash::BuildHasher;
        (u128::from(self.0.hash_one(id)) << 64) | u128::from(self.1.hash_one(id))
    }
}

use super::{DEFAULT_MARGIN, Revocation, RevocationKind, Subject};
use crate::time::{Clock, SystemClock, from_unix_millis, unix_millis, unix_millis_ceil, unix_secs};

/// Default longest access-token lifetime (`exp - iat`) the gate accepts; a
/// subject's not-before watermark lives this long (plus the margin).
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// An instant as the deny list stores it: milliseconds since the epoch,
/// rounded up, so an entry never lapses early. Eight bytes instead of
/// `SystemTime`'s sixteen: with it moka's per-entry value block fits a
/// smaller allocator size class (BENCHMARKS.md, memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Until(u64);

impl Until {
    fn at_or_after(t: SystemTime) -> Self {
        Self(unix_millis_ceil(t))
    }

    fn instant(self) -> SystemTime {
        from_unix_millis(self.0)
    }
}

/// A per-subject watermark: tokens issued at or before `not_before` are dead.
#[derive(Debug, Clone, Copy)]
struct Watermark {
    /// Unix seconds. JWT `iat` has one-second granularity, so a token issued
    /// in the same second as the watermark is treated as issued before it
    /// (it fails closed).
    not_before: u64,
    until: Until,
}

/// How long an entry matters: until the last token it could match expires.
trait Lifetime {
    fn until(&self) -> Until;
}

impl Lifetime for Until {
    fn until(&self) -> Until {
        *self
    }
}

impl Lifetime for Watermark {
    fn until(&self) -> Until {
        self.until
    }
}

/// Expires each entry when the last token it could match has expired (plus
/// the margin), measured on the cache's clock.
struct UntilTokenExpiry {
    clock: Arc<dyn Clock>,
    margin: Duration,
}

impl UntilTokenExpiry {
    fn remaining(&self, until: Until) -> Duration {
        (until.instant() + self.margin)
            .duration_since(self.clock.now())
            .unwrap_or(Duration::ZERO)
    }
}

impl<V: Lifetime> Expiry<Key, V> for UntilTokenExpiry {
    fn expire_after_create(
        &self,
        _key: &Key,
        value: &V,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(self.remaining(value.until()))
    }

    fn expire_after_update(
        &self,
        _key: &Key,
        value: &V,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.remaining(value.until()))
    }
}

/// The deny list the gate consults on every request: revoked token ids,
/// revoked sessions (`sid`) and per-subject not-before watermarks.
///
/// Lookups are in memory only. Each entry expires on its own when the
/// tokens it could match have expired, so memory is bounded by the number
/// of revocations that still matter. There is deliberately no size bound:
/// evicting a live entry for space would quietly un-revoke a token.
///
/// Cloning is cheap and every clone shares the same entries.
#[derive(Clone)]
pub struct RevocationCache {
    tokens: Cache<Until>,
    sessions: Cache<Until>,
    subjects: Cache<Watermark>,
    digest: Digest,
    clock: Arc<dyn Clock>,
    margin: Duration,
    max_token_lifetime: Duration,
    /// Unix milliseconds after which the list counts as stale and the gate
    /// fails closed; `u64::MAX` when no limit applies (set by a
    /// [`RevocationSync`](crate::sync::RevocationSync) configured to
    /// fail closed).
    fresh_until: Arc<AtomicU64>,
    /// Whether a sync has loaded the store's revocations into it once.
    warmed: Arc<std::sync::atomic::AtomicBool>,
}

impl fmt::Debug for RevocationCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationCache")
            .field("tokens", &self.tokens.entry_count())
            .field("sessions", &self.sessions.entry_count())
            .field("subjects", &self.subjects.entry_count())
            .field("margin", &self.margin)
            .field("max_token_lifetime", &self.max_token_lifetime)
            .finish()
    }
}

impl Default for RevocationCache {
    fn default() -> Self {
        Self::builder().build()
    }
}

/// What a token matched on the deny list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevokedBy {
    /// Its `jti` was revoked.
    Token,
    /// Its session (`sid`) was revoked.
    Session,
    /// It was issued at or before its subject's not-before watermark.
    Subject,
}

impl RevocationCache {
    /// Starts a cache with the defaults ([`DEFAULT_MARGIN`],
    /// [`DEFAULT_MAX_TOKEN_LIFETIME`], the system clock).
    pub fn builder() -> RevocationCacheBuilder {
        RevocationCacheBuilder {
            clock: Arc::new(SystemClock),
            margin: DEFAULT_MARGIN,
            max_token_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
        }
    }

    /// Applies a committed revocation (idempotent): what every instance
    /// does with each row it reads back from the store.
    pub fn apply(&self, r: &Revocation) {
        match r.kind {
            RevocationKind::Token => self.revoke_token(&r.target, r.expires_at),
            RevocationKind::Session => self.revoke_session(&r.target, r.expires_at),
            RevocationKind::Subject => self
                .revoke_subject_before(Subject::new(r.tenant.as_deref(), &r.target), r.revoked_at),
        }
    }

    /// Revokes one access token until its `exp`.
    pub fn revoke_token(&self, jti: &str, expires_at: SystemTime) {
        upsert_latest(
            &self.tokens,
            self.digest.of(jti),
            Until::at_or_after(expires_at),
        );
    }

    /// Revokes every access token of a session (`sid` claim) issued up to
    /// now. `until` is when the last of them expires: at the latest the time
    /// of revocation plus the longest access-token lifetime.
    pub fn revoke_session(&self, sid: &str, until: SystemTime) {
        upsert_latest(
            &self.sessions,
            self.digest.of(sid),
            Until::at_or_after(until),
        );
    }

    /// Revokes every token of `sub` (a `&str`, or a [`Subject`] within a
    /// tenant) issued at or before `instant` (logout everywhere). JWT `iat`
    /// counts whole seconds, so a token issued later in the same second is
    /// revoked too: the rule fails closed.
    pub fn revoke_subject_before<'a>(&self, sub: impl Into<Subject<'a>>, instant: SystemTime) {
        let mark = Watermark {
            not_before: unix_secs(instant),
            until: Until::at_or_after(instant + self.max_token_lifetime),
        };
        upsert_latest(&self.subjects, self.digest.of(&sub.into()), mark);
    }

    /// Whether a token with these claims is revoked, and by what. A miss —
    /// the common case — costs one `contains_key` per key kind, which
    /// neither allocates nor records a read.
    ///
    /// A token without `jti` can be denied only by its session or subject;
    /// one without `iat` counts as issued before any logout-everywhere of
    /// its subject still in force (fail closed: it cannot show otherwise).
    pub fn check<'a>(
        &self,
        jti: Option<&str>,
        sid: Option<&str>,
        sub: impl Into<Subject<'a>>,
        iat: Option<u64>,
    ) -> Option<RevokedBy> {
        if jti.is_some_and(|jti| self.live(&self.tokens, jti)) {
            return Some(RevokedBy::Token);
        }
        if sid.is_some_and(|sid| self.live(&self.sessions, sid)) {
            return Some(RevokedBy::Session);
        }
        let sub = self.digest.of(&sub.into());
        if self.subjects.contains_key(&sub) {
            let now = self.clock.now();
            if let Some(mark) = self.subjects.get(&sub)
                && mark.until.instant() + self.margin > now
                && iat.is_none_or(|iat| iat <= mark.not_before)
            {
                return Some(RevokedBy::Subject);
            }
        }
        None
    }

    /// Whether the list is too stale to be trusted: it mirrors a store (an
    /// issuer's) and no sync has warmed it yet, or its sync is configured
    /// to fail closed and has not succeeded for longer than allowed. The
    /// gate then refuses every token (503). Otherwise this is `false` and
    /// costs one atomic load.
    pub fn is_stale(&self) -> bool {
        let until = self.fresh_until.load(Ordering::Acquire);
        until != u64::MAX && unix_millis(self.clock.now()) > until
    }

    /// Whether a [`RevocationSync`](crate::sync::RevocationSync) has loaded
    /// the store's revocations into this list at least once.
    pub fn is_warm(&self) -> bool {
        self.warmed.load(Ordering::Acquire)
    }

    /// This list mirrors a store: until a sync has warmed it, it counts as
    /// stale, so a gate over it answers 503 rather than accept a token the
    /// store says is revoked (what the issuer asks of its deny list).
    #[cfg_attr(not(feature = "store"), allow(dead_code))]
    pub(crate) fn require_warm(&self) {
        if !self.is_warm() {
            self.set_fresh_until(Some(SystemTime::UNIX_EPOCH));
        }
    }

    /// A sync loaded the store's revocations.
    #[cfg_attr(not(feature = "store"), allow(dead_code))]
    pub(crate) fn mark_warm(&self) {
        self.warmed.store(true, Ordering::Release);
    }

    /// Sets the instant the list stops counting as fresh (`None`: never).
    #[cfg_attr(not(feature = "store"), allow(dead_code))]
    pub(crate) fn set_fresh_until(&self, until: Option<SystemTime>) {
        self.fresh_until
            .store(until.map_or(u64::MAX, unix_millis), Ordering::Release);
    }

    /// The process clock this cache was built with: the issuer, the gate,
    /// the rate limits and the sync over this cache all read it.
    #[cfg_attr(not(feature = "store"), allow(dead_code))]
    pub(crate) fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.clock)
    }

    /// The current time on this cache's clock.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Whether the token id is revoked.
    pub fn is_token_revoked(&self, jti: &str) -> bool {
        self.live(&self.tokens, jti)
    }

    /// Whether the session is revoked.
    pub fn is_session_revoked(&self, sid: &str) -> bool {
        self.live(&self.sessions, sid)
    }

    /// The longest `exp - iat` a token may have and still be covered by a
    /// subject watermark; the gate rejects longer-lived tokens.
    pub fn max_token_lifetime(&self) -> Duration {
        self.max_token_lifetime
    }

    /// How long each entry outlives the expiry it was given.
    pub fn margin(&self) -> Duration {
        self.margin
    }

    /// Live entries per kind: tokens, sessions, subjects (approximate,
    /// as moka counts).
    #[cfg_attr(not(feature = "store"), allow(dead_code))]
    pub(crate) fn entry_counts(&self) -> (u64, u64, u64) {
        (
            self.tokens.entry_count(),
            self.sessions.entry_count(),
            self.subjects.entry_count(),
        )
    }

    /// Live entries of all kinds (approximate until pending maintenance
    /// has run; see [`RevocationCache::run_pending_tasks`]).
    pub fn entry_count(&self) -> u64 {
        self.tokens.entry_count() + self.sessions.entry_count() + self.subjects.entry_count()
    }

    /// Runs the cache's pending maintenance (evicting expired entries) now.
    pub fn run_pending_tasks(&self) {
        self.tokens.run_pending_tasks();
        self.sessions.run_pending_tasks();
        self.subjects.run_pending_tasks();
    }

    fn live(&self, cache: &Cache<Until>, id: &str) -> bool {
        let key = self.digest.of(id);
        // Fast path: a miss needs no clock read and no value copy.
        if !cache.contains_key(&key) {
            return false;
        }
        // moka expires entries on the monotonic clock; checking the stored
        // expiry as well keeps the answer exact on this cache's clock.
        cache
            .get(&key)
            .is_some_and(|until| until.instant() + self.margin > self.clock.now())
    }
}

/// Stores `value` unless the entry already reaches further. Atomic per key
/// (moka's key lock): two concurrent revocations can never leave the
/// earlier expiry, which would lift a revocation too soon.
fn upsert_latest<V>(cache: &Cache<V>, key: Key, value: V)
where
    V: Lifetime + Clone + Send + Sync + 'static,
{
    cache.entry(key).and_upsert_with(|old| match old {
        Some(old) if old.value().until() >= value.until() => old.into_value(),
        _ => value,
    });
}

/// Builds a [`RevocationCache`].
#[must_use]
pub struct RevocationCacheBuilder {
    clock: Arc<dyn Clock>,
    margin: Duration,
    max_token_lifetime: Duration,
}

impl fmt::Debug for RevocationCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationCacheBuilder")
            .field("margin", &self.margin)
            .field("max_token_lifetime", &self.max_token_lifetime)
            .finish_non_exhaustive()
    }
}

impl RevocationCacheBuilder {
    /// Extra life of every entry beyond its expiry; must cover the gate's
    /// leeway (checked when the gate is built). Default [`DEFAULT_MARGIN`].
    pub fn margin(self, margin: Duration) -> Self {
        Self { margin, ..self }
    }

    /// The longest access-token lifetime (`exp - iat`); subject watermarks
    /// live this long. Default [`DEFAULT_MAX_TOKEN_LIFETIME`].
    pub fn max_token_lifetime(self, max_token_lifetime: Duration) -> Self {
        Self {
            max_token_lifetime,
            ..self
        }
    }

    /// The wall clock for expiry decisions, also read by every gate and
    /// issuer sharing this cache (for `exp`, `nbf`, `iat` and lifetimes), so
    /// one process runs on one clock. Tests inject one to jump in time.
    pub fn clock(self, clock: impl Clock) -> Self {
        Self {
            clock: Arc::new(clock),
            ..self
        }
    }

    /// Builds the cache. No capacity is set, on purpose (see the type docs).
    pub fn build(self) -> RevocationCache {
        RevocationCache {
            tokens: self.expiring(),
            sessions: self.expiring(),
            subjects: self.expiring(),
            digest: Digest::new(),
            clock: self.clock,
            margin: self.margin,
            max_token_lifetime: self.max_token_lifetime,
            fresh_until: Arc::new(AtomicU64::new(u64::MAX)),
            warmed: Arc::default(),
        }
    }

    fn expiring<V>(&self) -> Cache<V>
    where
        V: Lifetime + Clone + Send + Sync + 'static,
    {
        MokaCache::builder()
            .expire_after(UntilTokenExpiry {
                clock: Arc::clone(&self.clock),
                margin: self.margin,
            })
            .build_with_hasher(foldhash::fast::RandomState::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{ManualClock, from_unix_secs};

    const T0: u64 = 1_800_000_000;

    fn cache(clock: &ManualClock) -> RevocationCache {
        RevocationCache::builder()
            .clock(clock.clone())
            .margin(Duration::from_secs(30))
            .max_token_lifetime(Duration::from_secs(600))
            .build()
    }

    fn at(secs: u64) -> SystemTime {
        crate::time::from_unix_secs(secs)
    }

    #[test]
    fn revoked_token_is_denied_until_expiry_plus_margin() {
        let clock = ManualClock::at(from_unix_secs(T0));
        let c = cache(&clock);
        c.revoke_token("j1", at(T0 + 100));
        assert_eq!(
            c.check(Some("j1"), None, "alice", Some(T0)),
            Some(RevokedBy::Token)
        );
        assert_eq!(c.check(Some("j2"), None, "alice", Some(T0)), None);
        // A token without `jti` matches no token entry (not even a revoked
        // empty id).
        c.revoke_token("", at(T0 + 600));
        assert_eq!(c.check(None, None, "alice", Some(T0)), None);
        clock.advance(Duration::from_secs(129));
        assert!(c.is_token_revoked("j1"), "still inside the margin");
        clock.advance(Duration::from_secs(1));
        assert!(!c.is_token_revoked("j1"), "expired with its token");
    }

    #[test]
    fn a_later_expiry_wins_an_earlier_one_never_shortens() {
        let clock = ManualClock::at(from_unix_secs(T0));
        let c = cache(&clock);
        c.revoke_token("j", at(T0 + 100));
        c.revoke_token("j", at(T0 + 10));
        clock.advance(Duration::from_secs(120));
        assert!(c.is_token_revoked("j"));
        c.revoke_session("s", at(T0 + 500));
        c.revoke_session("s", at(T0 + 200));
        clock.advance(Duration::from_secs(300));
        assert!(c.is_session_revoked("s"));
    }

    #[test]
    fn concurrent_revocations_of_one_key_keep_the_later_expiry() {
        // Two threads revoke the same keys at once, one with an early and one
        // with a late expiry: whatever the interleaving, the late one must
        // stand, or the revocation lapses early.
        let clock = ManualClock::at(from_unix_secs(T0));
        let c = cache(&clock);
        let keys: Vec<String> = (0..10_000).map(|i| format!("k{i}")).collect();
        let barrier = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            for until in [T0 + 10, T0 + 1000] {
                let (c, keys, barrier) = (&c, &keys, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    for k in keys {
                        c.revoke_token(k, at(until));
                        c.revoke_session(k, at(until));
                        c.revoke_subject_before(k, at(until - 600));
                    }
                });
            }
        });
        clock.advance(Duration::from_secs(100));
        for k in &keys {
            assert!(c.is_token_revoked(k), "{k}: token revocation lapsed early");
            assert!(
                c.is_session_revoked(k),
                "{k}: session revocation lapsed early"
            );
            assert_eq!(
                c.check(Some("x"), None, k, Some(T0 + 399)),
                Some(RevokedBy::Subject),
                "{k}"
            );
        }
    }

    #[test]
    fn session_revocation_matches_only_that_sid() {
        let clock = ManualClock::at(from_unix_secs(T0));
        let c = cache(&clock);
        c.revoke_session("fam-1", at(T0 + 600));
        assert_eq!(
            c.check(Some("a"), Some("fam-1"), "bob", Some(T0)),
            Some(RevokedBy::Session)
        );
        assert_eq!(c.check(Some("a"), Some("fam-2"), "bob", Some(T0)), None);
        assert_eq!(c.check(Some("a"), None, "bob", Some(T0)), None);
    }

    #[test]
    fn subject_watermark_kills_tokens_issued_up_to_that_second() {
        let clock = ManualClock::at(from_unix_secs(T0));
        let c = cache(&clock);
        c.revoke_subject_before("alice", at(T0) + Duration::from_millis(700));
        assert_eq!(
            c.check(Some("a"), None, "alice", Some(T0 - 5)),
            Some(RevokedBy::Subject)
        );
        assert_eq!(
            c.check(Some("a"), None, "alice", Some(T0)),
            Some(RevokedBy::Subject)
        );
        assert_eq!(c.check(Some("a"), None, "alice", Some(T0 + 1)), None);
        assert_eq!(c.check(Some("a"), None, "bob", Some(T0 - 5)), None);
        // No `iat`: it cannot show it came after the logout, so it is out;
        // with no watermark on its subject it is fine.
        assert_eq!(c.check(None, None, "alice", None), Some(RevokedBy::Subject));
        assert_eq!(c.check(None, None, "bob", None), None);
        // An older watermark never lowers a newer one.
        c.revoke_subject_before("alice", at(T0 - 100));
        assert_eq!(
            c.check(Some("a"), None, "alice", Some(T0)),
            Some(RevokedBy::Subject)
        );
        // It lives as long as the longest token it could match.
        // (watermark at T0 + 0.7 s, plus 600 s lifetime, plus 30 s margin)
        clock.advance(Duration::from_secs(600 + 30));
        assert_eq!(
            c.check(Some("a"), None, "alice", Some(T0)),
            Some(RevokedBy::Subject)
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(c.check(Some("a"), None, "alice", Some(T0)), None);
    }

    #[test]
    fn a_large_cache_never_forgets_a_live_revocation() {
        let c = RevocationCache::default();
        let until = SystemTime::now() + Duration::from_secs(3600);
        let n = 100_000;
        for i in 0..n {
            c.revoke_token(&format!("jti-{i}"), until);
        }
        c.run_pending_tasks();
        assert_eq!(c.entry_count(), n);
        assert!((0..n).all(|i| c.is_token_revoked(&format!("jti-{i}"))));
    }

    #[test]
    fn expired_entries_are_evicted_from_memory() {
        // Entries already past their expiry get a zero time to live. moka
        // evicts on its own monotonic clock (timer wheel, about 1 s ticks)
        // which tests cannot mock, so poll until it has, with a deadline.
        let clock = ManualClock::at(from_unix_secs(T0));
        let c = cache(&clock);
        for i in 0..1000 {
            c.revoke_token(&format!("old-{i}"), at(T0 - 31));
        }
        c.revoke_token("live", at(T0 + 60));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            c.run_pending_tasks();
            if c.entry_count() == 1 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "expired entries never evicted"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(c.is_token_revoked("live"));
        assert!(!c.is_token_revoked("old-1"));
    }
}
