//! The port a testbed's sshds listen on, reserved while the testbed lives.

use std::collections::BTreeSet;
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
/// leases a port: ports of live testbeds in this process are skipped, and a port is only
/// taken if it can be bound on every node address right now (which catches other
/// processes and leftovers). Another process can still grab it before sshd binds it;
/// `Testbed::start` notices sshd's "Address already in use" and leases again.
#[derive(Debug)]
pub(crate) struct PortLease {
    port: u16,
}

impl PortLease {
    pub(crate) fn acquire(addresses: &[Ipv4Addr]) -> Result<PortLease, TestbedError> {
        let mut leased = LEASED.lock().unwrap_or_else(PoisonError::into_inner);
        for port in FIRST_PORT..=LAST_PORT {
            if leased.contains(&port) {
                continue;
            }
            if addresses.iter().all(|a| TcpListener::bind((*a, port)).is_ok()) {
                leased.insert(port);
                return Ok(PortLease { port });
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
