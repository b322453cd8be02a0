//! Time: the one clock of a process, and Unix-time conversions.
//!
//! Every part of tollgate that reads the time — the issuer minting tokens,
//! the gate checking `exp`, the deny list expiring entries, the rate limits
//! and the revocation sync — reads it from one [`Clock`]. It is given once,
//! to the deny list ([`RevocationCacheBuilder::clock`]), and everything
//! built over that deny list (the issuer, its token endpoint, the gate from
//! `Issuer::access_token_layer`, the sync) reads the same one. Tests give
//! a [`ManualClock`] and move the whole process through time at once.
//!
//! [`RevocationCacheBuilder::clock`]: crate::revocation::RevocationCacheBuilder::clock
//!
//! ```
//! use std::time::Duration;
//! use tollgate::{RevocationCache, time::{Clock, ManualClock}};
//!
//! let clock = ManualClock::new();
//! let deny = RevocationCache::builder().clock(clock.clone()).build();
//! let t0 = deny.now();
//! clock.advance(Duration::from_secs(60));
//! assert_eq!(deny.now(), t0 + Duration::from_secs(60));
//! assert_eq!(clock.now(), deny.now());
//! ```

use std::{
    fmt,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// A source of time. The process has one; tests inject a [`ManualClock`]
/// to move it without sleeping.
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time: what tokens carry and expire by.
    fn now(&self) -> SystemTime;

    /// Time elapsed on a clock that never steps back, from an arbitrary
    /// origin: what rate limits and lockouts measure with, so that a wall
    /// clock corrected backwards cannot hold a key blocked. The default
    /// reads [`now`](Self::now) (right for a clock that only moves forward,
    /// such as a test's).
    fn elapsed(&self) -> Duration {
        self.now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}

/// The system clock: [`SystemTime`] for the wall, [`Instant`] for
/// [`Clock::elapsed`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn elapsed(&self) -> Duration {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed()
    }
}

/// A clock that moves only when told to, with millisecond resolution.
/// Clones share the time: give one to the deny list and keep one to move.
#[derive(Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock standing at the current system time.
    pub fn new() -> Self {
        Self::at(SystemTime::now())
    }

    /// A clock standing at `t` (the epoch if `t` is before it).
    pub fn at(t: SystemTime) -> Self {
        Self(Arc::new(AtomicU64::new(unix_millis(t))))
    }

    /// Moves the clock forward.
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(millis(d), Ordering::SeqCst);
    }

    /// Steps the clock back, as an NTP correction may.
    pub fn rewind(&self, d: Duration) {
        let d = millis(d);
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |ms| {
                Some(ms.saturating_sub(d))
            });
    }

    /// Sets the clock to `t`.
    pub fn set(&self, t: SystemTime) {
        self.0.store(unix_millis(t), Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock")
            .field(&self.0.load(Ordering::SeqCst))
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        from_unix_millis(self.0.load(Ordering::SeqCst))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whole seconds since the epoch (0 before it): what JWT claims carry.
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Milliseconds since the epoch (0 before it). Saturates below `u64::MAX`,
/// which callers keep free to mean "never".
pub(crate) fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX - 1))
        .min(u64::MAX - 1)
}

/// Milliseconds since the epoch, rounded up (0 before it): for instants
/// that must not come early, such as when a revocation may lapse.
pub(crate) fn unix_millis_ceil(t: SystemTime) -> u64 {
    let Ok(d) = t.duration_since(UNIX_EPOCH) else {
        return 0;
    };
    let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// The instant `secs` seconds after the epoch (a JWT `exp`, say).
#[cfg_attr(not(feature = "store"), allow(dead_code))]
pub(crate) fn from_unix_secs(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// The instant `ms` milliseconds after the epoch.
pub(crate) fn from_unix_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_clamps() {
        let t = from_unix_secs(1_800_000_000);
        assert_eq!(unix_secs(t), 1_800_000_000);
        assert_eq!(unix_millis(t), 1_800_000_000_000);
        assert_eq!(from_unix_millis(unix_millis(t)), t);
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!((unix_secs(before), unix_millis(before)), (0, 0));
    }

    #[test]
    fn ceil_millis_rounds_up_never_down() {
        let t = from_unix_millis(1_800_000_000_123);
        assert_eq!(unix_millis_ceil(t), 1_800_000_000_123);
        assert_eq!(
            unix_millis_ceil(t + Duration::from_nanos(1)),
            1_800_000_000_124
        );
        assert_eq!(unix_millis_ceil(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
