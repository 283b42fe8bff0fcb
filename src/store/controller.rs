//! Which process drives a run.

use std::path::Path;

use serde::Serialize;

/// Recorded with every run so a later process can tell a run whose controller crashed
/// (resume it) from one that is still being driven (leave it alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Controller {
    pub host: String,
    pub pid: u32,
}

impl Controller {
    /// This process on this host.
    pub fn this() -> Controller {
        Controller {
            host: hostname(),
            pid: std::process::id(),
        }
    }

    /// Whether this controller is known to be dead: it ran on this host and its pid is
    /// gone or a zombie. A controller on another host, or on a system without `/proc`, is
    /// never known dead; only its heartbeat can tell. A reused pid makes a dead controller
    /// look alive, which the heartbeat also covers.
    pub fn is_known_dead(&self, here: &str) -> bool {
        if self.host != here || !Path::new("/proc/self").exists() {
            return false;
        }
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            Err(_) => true,
            // `pid (comm) state ...`; comm may hold spaces and parentheses.
            Ok(stat) => stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_some_and(|state| matches!(state, 'Z' | 'X')),
        }
    }
}

/// The kernel's hostname; std has no `gethostname`, and the crate forbids the `unsafe`
/// a libc call would need.
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_dead() {
        let me = Controller::this();
        assert!(!me.host.is_empty());
        assert!(!me.is_known_dead(&me.host));

        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        let dead = Controller {
            host: me.host.clone(),
            pid: child.id(),
        };
        assert!(dead.is_known_dead(&me.host));

        let mut zombie = std::process::Command::new("true").spawn().unwrap();
        let undead = Controller {
            host: me.host.clone(),
            pid: zombie.id(),
        };
        // Not reaped yet: its /proc entry stays, in state Z, once it has exited.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !undead.is_known_dead(&me.host) {
            assert!(
                std::time::Instant::now() < deadline,
                "an exited, unreaped child counts as dead"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        zombie.wait().unwrap();
        assert!(
            !dead.is_known_dead("another-host"),
            "another host's pids are not ours to check"
        );
    }
}
