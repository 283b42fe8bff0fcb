//! A readiness check that speaks just enough SSH.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long one probe may take to connect or to get the server's banner.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// An open connection to a node that has been sent our identification line.
///
/// A bare TCP connect would do to see that sshd listens, but sshd logs every connection
/// that closes before identifying itself as an error (`kex_exchange_identification:
/// Connection closed by remote host`), filling each node's log with noise that hides
/// real failures. Exchanging identification lines first closes cleanly, and receiving
/// `SSH-...` also proves the listener is an SSH server able to fork sessions. Probing is
/// split in two halves so that many nodes are probed at once: connect to all, then read
/// all banners, which takes about as long as the slowest node rather than the sum.
pub(crate) struct SshProbe {
    stream: TcpStream,
}

impl SshProbe {
    /// Connects and sends our identification; `None` if nothing listens yet.
    pub(crate) fn connect(address: SocketAddr) -> Option<SshProbe> {
        let mut stream = TcpStream::connect_timeout(&address, PROBE_TIMEOUT).ok()?;
        stream.write_all(b"SSH-2.0-drover-testbed-probe\r\n").ok()?;
        Some(SshProbe { stream })
    }

    /// Whether the server answered with an SSH identification line.
    pub(crate) fn answered(mut self) -> bool {
        if self.stream.set_read_timeout(Some(PROBE_TIMEOUT)).is_err() {
            return false;
        }
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        // The banner is one short line; servers may send other lines before it (RFC 4253).
        while got.len() < 1024 {
            match self.stream.read(&mut byte) {
                Ok(1) => got.push(byte[0]),
                _ => return false,
            }
            if byte[0] == b'\n' {
                if got.starts_with(b"SSH-") {
                    return true;
                }
                got.clear();
            }
        }
        false
    }
}
