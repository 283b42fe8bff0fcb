//! When to try a failing sink again.

use std::time::Duration;

/// The longest `Retry-After` honoured: a sink asking for more is tried after this.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);

/// After `failures` consecutive failures: 1s, doubled per failure, at most `max`.
pub fn retry_delay(failures: u32, max: Duration) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    Duration::from_secs(1).saturating_mul(factor).min(max)
}

/// A `Retry-After` header's delay: seconds (Slack's form; an HTTP date is not used by
/// Slack and is read as absent), at most an hour.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(RETRY_AFTER_CAP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_a_second_up_to_the_maximum() {
        let s = Duration::from_secs;
        let d: Vec<Duration> = (1..=8).map(|n| retry_delay(n, s(60))).collect();
        assert_eq!(d, [s(1), s(2), s(4), s(8), s(16), s(32), s(60), s(60)]);
        assert_eq!(retry_delay(1000, s(300)), s(300), "no overflow");
    }

    #[test]
    fn retry_after_is_seconds_capped_at_an_hour() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("86400"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
