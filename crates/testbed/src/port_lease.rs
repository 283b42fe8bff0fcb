//! The port a testbed's sshds listen on, reserved while the testbed lives.

use std::collections::BTreeSet;
use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, PoisonError};

use super::testbed_error::TestbedError;

/// The first port tried: the conventional "alternative ssh" port, so a lone testbed is
/// on `127.0.0.2:2222` and friends.
pub(crate) const FIRST_PORT: u16 = 2222;
/// The last port tried. Staying far below the ephemeral range (32768 and up on Linux)
/// means an outgoing ssh connection never holds a port a restarting node needs.
pub(crate) const LAST_PORT: u16 = 2421;

/// Ports held by live testbeds in this process.
static LEASED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// `cargo test` runs tests on parallel threads, and each may start a testbed on the same
/// loopback addresses; a fixed port would make the second one fail. So each testbed
/// leases a port: ports of live testbeds in this process are skipped, a port is locked
/// across processes with an exclusive lock on `/tmp/drover-testbed-port-N.lock` (two
/// test runs at once would otherwise pick the same port, and one run's readiness probe
/// could be answered by the other's sshd), and a port is only taken if it can be bound on
/// every node address right now (which catches other programs and leftovers). The OS
/// drops the file lock when the process dies, so a crashed run blocks nothing.
#[derive(Debug)]
pub(crate) struct PortLease {
    port: u16,
    /// Held for the lease's lifetime; closing the file releases the lock.
    _lock: File,
}

impl PortLease {
    pub(crate) fn acquire(addresses: &[Ipv4Addr]) -> Result<PortLease, TestbedError> {
        let mut leased = LEASED.lock().unwrap_or_else(PoisonError::into_inner);
        for port in FIRST_PORT..=LAST_PORT {
            if leased.contains(&port) {
                continue;
            }
            let Some(lock) = lock_port(port) else {
                continue;
            };
            if addresses.iter().all(|a| TcpListener::bind((*a, port)).is_ok()) {
                leased.insert(port);
                return Ok(PortLease { port, _lock: lock });
            }
        }
        Err(TestbedError::NoFreePort {
            first: FIRST_PORT,
            last: LAST_PORT,
        })
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

/// The cross-process lock for `port`, if no other process holds it.
fn lock_port(port: u16) -> Option<File> {
    let path = std::env::temp_dir().join(format!("drover-testbed-port-{port}.lock"));
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ok()?;
    file.try_lock().ok()?;
    Some(file)
}

impl Drop for PortLease {
    fn drop(&mut self) {
        LEASED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_port_cannot_be_locked_again_until_released() {
        // flock locks belong to an open file, so a second open in this process stands
        // in for another process.
        let port = LAST_PORT;
        let first = lock_port(port).expect("first lock");
        assert!(lock_port(port).is_none());
        drop(first);
        assert!(lock_port(port).is_some());
    }

    #[test]
    fn live_leases_never_share_a_port() {
        let addrs = [Ipv4Addr::new(127, 0, 0, 1)];
        let a = PortLease::acquire(&addrs).expect("lease a");
        let b = PortLease::acquire(&addrs).expect("lease b");
        assert_ne!(a.port(), b.port());
        let again = a.port();
        drop(a);
        assert!(!LEASED.lock().expect("lock").contains(&again));
    }
}
