//! How long to wait before the next fetch after failures.

use std::time::Duration;

/// After `failures` consecutive failed fetches: the poll interval doubled per failure
/// beyond the first, at most 16 times the interval and never more than an hour (but at
/// least the interval), so an unreachable remote is retried ever less often without being
/// forgotten. No failure: the interval itself.
pub fn retry_delay(poll_interval: Duration, failures: u32) -> Duration {
    if failures <= 1 {
        return poll_interval;
    }
    let factor = 1u32 << (failures - 1).min(4);
    let cap = Duration::from_secs(3600).max(poll_interval);
    poll_interval.saturating_mul(factor).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_sixteen_times_and_an_hour() {
        let s = Duration::from_secs;
        let d: Vec<Duration> = (0..8).map(|n| retry_delay(s(10), n)).collect();
        assert_eq!(d, [s(10), s(10), s(20), s(40), s(80), s(160), s(160), s(160)]);
        assert_eq!(retry_delay(s(600), 6), s(3600));
        assert_eq!(retry_delay(s(7200), 3), s(7200), "never below the interval");
    }
}
