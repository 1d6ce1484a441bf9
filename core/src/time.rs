//! Time as the core sees it: a monotonic millisecond counter handed in by the driver.
//!
//! The core never reads a clock (STYLE.md principle 1). Spans use [`core::time::Duration`].

use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time: milliseconds since an arbitrary, driver-chosen epoch.
///
/// # Invariants
/// The driver never passes an `Instant` earlier than one it passed before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant(u64);

impl Instant {
    /// The epoch (0 ms).
    pub const ZERO: Self = Self(0);

    /// An instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn total_millis(self) -> u64 {
        self.0
    }

    /// The span from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Self;

    /// Saturates at `u64::MAX` milliseconds instead of overflowing.
    fn add(self, span: Duration) -> Self {
        Self(self.0.saturating_add(span_millis(span)))
    }
}

impl Sub<Duration> for Instant {
    type Output = Self;

    /// Saturates at the epoch.
    fn sub(self, span: Duration) -> Self {
        Self(self.0.saturating_sub(span_millis(span)))
    }
}

impl core::fmt::Display for Instant {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1000, self.0 % 1000)
    }
}

/// Whole milliseconds in `span`, saturating; cheaper than `Duration::as_millis` (no u128).
fn span_millis(span: Duration) -> u64 {
    span.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(span.subsec_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(1500);
        assert_eq!((t + Duration::from_millis(500)).total_millis(), 2000);
        assert_eq!((t - Duration::from_secs(10)).total_millis(), 0);
        assert_eq!(
            (Instant::from_millis(u64::MAX) + Duration::from_secs(1)).total_millis(),
            u64::MAX
        );
        assert_eq!(
            Instant::from_millis(3000).saturating_duration_since(t),
            Duration::from_millis(1500)
        );
        assert_eq!(
            t.saturating_duration_since(Instant::from_millis(3000)),
            Duration::ZERO
        );
    }
}
