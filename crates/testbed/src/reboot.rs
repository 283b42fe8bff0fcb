//! One fake reboot of a testbed node, as recorded by the reboot service.

use std::time::SystemTime;

/// When a node was down, so a test can line a reboot up with what else happened then
/// (the fake scheduler's log lines carry the same wall-clock times). Between
/// [`down`](Reboot::down) and [`up`](Reboot::up) the node may be unreachable; before and
/// after, it is reachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reboot {
    /// The node's index in the testbed (0-based).
    pub index: usize,
    /// `node001`, ...
    pub node: String,
    /// When the service found the request and began stopping the node's sshd.
    pub down: SystemTime,
    /// When the node accepted SSH connections again; `None` while it is down, or if it
    /// could not be started (then [`error`](Reboot::error) says why).
    pub up: Option<SystemTime>,
    /// The boot id of the new boot, once written (while the node is still down).
    pub boot_id: Option<String>,
    /// Why stopping, recording the boot, or starting failed.
    pub error: Option<String>,
}

impl Reboot {
    /// Whether the reboot is over, one way or the other.
    pub fn is_done(&self) -> bool {
        self.up.is_some() || self.error.is_some()
    }

    /// Whether the node may have been down at `t`.
    pub fn was_down_at(&self, t: SystemTime) -> bool {
        t >= self.down && self.up.is_none_or(|up| t <= up)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn down_between_down_and_up() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let sec = Duration::from_secs(1);
        let mut r = Reboot {
            index: 0,
            node: "node001".into(),
            down: t0,
            up: None,
            boot_id: None,
            error: None,
        };
        assert!(!r.is_done());
        assert!(r.was_down_at(t0 + sec * 1000));
        r.up = Some(t0 + sec);
        assert!(r.is_done());
        assert!(!r.was_down_at(t0 - sec));
        assert!(r.was_down_at(t0));
        assert!(!r.was_down_at(t0 + sec * 2));
    }
}
