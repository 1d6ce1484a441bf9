//! The one place where host time becomes core time.
//!
//! The core counts milliseconds from an arbitrary epoch ([`Instant`]); the host picks the epoch
//! once, when the [`Clock`] is created, and converts in both directions here (STYLE.md §3).

use pocketpxe_core::Instant;
use std::time::Duration;

/// A monotonic clock anchored at its creation.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: tokio::time::Instant,
}

impl Clock {
    /// A clock whose epoch (core `Instant::ZERO`) is now.
    pub fn new() -> Self {
        Self {
            base: tokio::time::Instant::now(),
        }
    }

    /// The current time as the core sees it. Never goes backwards.
    pub fn now(&self) -> Instant {
        Instant::from_millis(millis(self.base.elapsed()))
    }

    /// The tokio deadline for a core deadline, to sleep on.
    pub fn deadline(&self, at: Instant) -> tokio::time::Instant {
        // `checked_add` fails only for absurd deadlines (centuries away): sleep "forever" then.
        self.base
            .checked_add(Duration::from_millis(at.total_millis()))
            .unwrap_or_else(|| self.base + Duration::from_secs(86_400 * 365))
    }
}

/// Wall-clock milliseconds since the Unix epoch (0 before it): for what outlives the process,
/// such as lease expiries in the lease file and boot end times shown by `pocketpxe status`.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

fn millis(span: Duration) -> u64 {
    u64::try_from(span.as_millis()).unwrap_or(u64::MAX)
}

/// Sleeps until `deadline`, or forever when there is none (a `select!` branch that never fires).
pub async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn converts_both_ways() {
        let clock = Clock::new();
        assert_eq!(clock.now(), Instant::ZERO);
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(clock.now(), Instant::from_millis(1500));
        let at = clock.deadline(Instant::from_millis(2000));
        assert_eq!(at - clock.base, Duration::from_millis(2000));
    }
}
