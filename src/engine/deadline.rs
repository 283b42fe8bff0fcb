//! Waiting with a time limit: the drain poll, the reboot wait, health checks and
//! `wait_for` all try something until it passes or their time runs out. One helper, so
//! they agree on when the last try happens and no single try outlives the deadline.

use std::future::Future;
use std::time::Duration;

// tokio's clock, so tests with a paused clock see deadlines pass.
use tokio::time::Instant;

/// The shortest timeout one try gets: commands run under the node's `timeout`, which
/// counts whole seconds, so a shorter one would be rounded up anyway.
const MIN_TRY: Duration = Duration::from_secs(1);

/// An instant a wait must end by. Built from a duration with saturating arithmetic, so
/// an absurd timeout (`3000000000000000h`) means "practically never", not a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn after(d: Duration) -> Deadline {
        Deadline::from(Instant::now(), d)
    }

    /// `start + d`, or the farthest instant this platform can represent after it.
    pub fn from(start: Instant, d: Duration) -> Deadline {
        Deadline(later(start, d))
    }

    /// Time left; zero once passed.
    pub fn left(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// The timeout for one try that wants `cap`: never past the deadline (but at least
    /// [`MIN_TRY`]).
    pub fn cap(&self, cap: Duration) -> Duration {
        cap.min(self.left()).max(MIN_TRY)
    }
}

/// `start + d`, saturating: `Instant + huge` panics, and durations come from files.
pub fn later(start: Instant, d: Duration) -> Instant {
    if let Some(t) = start.checked_add(d) {
        return t;
    }
    // About 30 years, then less, until the platform can represent it.
    let mut far = Duration::from_secs(1 << 30);
    while !far.is_zero() {
        if let Some(t) = start.checked_add(far) {
            return t;
        }
        far /= 2;
    }
    start
}

/// Runs `attempt` (given the timeout its try may take, at most `cap`) until it returns
/// `Ok`, sleeping `interval` between tries. A try is only started if it starts before
/// the deadline: when less than `interval` is left after a failure, the last error is
/// returned (`Err(None)` never: at least one try is made).
pub async fn poll_until<T, E, F, Fut>(
    deadline: Deadline,
    interval: Duration,
    cap: Duration,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    loop {
        match attempt(deadline.cap(cap)).await {
            Ok(t) => return Ok(t),
            Err(e) => {
                if deadline.left() <= interval {
                    return Err(e);
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_durations_saturate() {
        let now = Instant::now();
        let d = Deadline::from(now, Duration::from_secs(u64::MAX));
        assert!(d.left() > Duration::from_secs(3600 * 24 * 365));
        assert_eq!(later(now, Duration::ZERO), now);
    }

    #[test]
    fn a_try_never_outlives_the_deadline() {
        let d = Deadline::after(Duration::from_secs(10));
        assert!(d.cap(Duration::from_secs(120)) <= Duration::from_secs(10));
        assert_eq!(d.cap(Duration::from_secs(3)), Duration::from_secs(3));
        let passed = Deadline::from(Instant::now(), Duration::ZERO);
        assert_eq!(passed.cap(Duration::from_secs(120)), MIN_TRY);
    }

    #[tokio::test(start_paused = true)]
    async fn tries_until_it_passes_or_the_time_is_up() {
        let mut n = 0;
        let r: Result<u32, u32> = poll_until(
            Deadline::after(Duration::from_secs(60)),
            Duration::from_secs(1),
            Duration::from_secs(5),
            |_| {
                n += 1;
                let k = n;
                async move { if k == 3 { Ok(k) } else { Err(k) } }
            },
        )
        .await;
        assert_eq!(r, Ok(3));
        let start = tokio::time::Instant::now();
        let mut tries = 0;
        let r: Result<(), u32> = poll_until(
            Deadline::after(Duration::from_secs(10)),
            Duration::from_secs(2),
            Duration::from_secs(5),
            |_| {
                tries += 1;
                let k = tries;
                async move { Err(k) }
            },
        )
        .await;
        assert_eq!(r, Err(tries));
        assert!(tries >= 2, "{tries}");
        assert!(start.elapsed() <= Duration::from_secs(10));
    }
}
