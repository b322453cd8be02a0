//! Unix-time conversions, in one place.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
