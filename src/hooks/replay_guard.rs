//! Bodies seen within the replay window: a signed request sent again (captured and
//! replayed within its five minutes) is refused. Slack bodies carry a unique
//! `trigger_id`, so two genuine requests never share a body.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::slack_signature::MAX_SKEW_SECS;

/// The most bodies remembered; past it the oldest half is dropped (a flood of validly
/// signed requests is the signer's doing, and memory stays bounded).
const MAX_REMEMBERED: usize = 100_000;

#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: Mutex<HashMap<[u8; 32], i64>>,
}

impl ReplayGuard {
    /// Whether `body` is new at `now` (unix seconds); remembers it for the window.
    pub fn first_time(&self, body: &[u8], now: i64) -> bool {
        let key: [u8; 32] = Sha256::digest(body).into();
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.retain(|_, at| now - *at <= 2 * MAX_SKEW_SECS);
        if seen.len() >= MAX_REMEMBERED {
            let mut ats: Vec<i64> = seen.values().copied().collect();
            ats.sort_unstable();
            let cut = ats[ats.len() / 2];
            seen.retain(|_, at| *at > cut);
        }
        seen.insert(key, now).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_taken_once_within_the_window() {
        let g = ReplayGuard::default();
        assert!(g.first_time(b"a", 100));
        assert!(!g.first_time(b"a", 200));
        assert!(g.first_time(b"b", 200));
        assert!(
            g.first_time(b"a", 100 + 2 * MAX_SKEW_SECS + 101),
            "forgotten after the window"
        );
    }
}
