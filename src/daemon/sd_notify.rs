//! systemd's readiness protocol (`Type=notify`), without libsystemd: one datagram per
//! state to the socket in `NOTIFY_SOCKET` (a path, or `@name` in the abstract
//! namespace). `READY=1` once the daemon has resumed its runs and listens (so units
//! ordered after it start against a daemon that answers), `WATCHDOG=1` at half of
//! `WATCHDOG_USEC` while its loop is alive, `STOPPING=1` when a stop begins. Outside
//! systemd (no `NOTIFY_SOCKET`) it does nothing.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use tracing::warn;

#[derive(Debug)]
pub struct SdNotify {
    socket: UnixDatagram,
    addr: std::os::unix::net::SocketAddr,
}

impl SdNotify {
    /// From the environment: `None` outside systemd, or when the socket is unusable
    /// (said once in the log: the daemon runs on, unsupervised).
    pub fn from_env() -> Option<SdNotify> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        match SdNotify::connect(&path) {
            Ok(n) => Some(n),
            Err(e) => {
                warn!(socket = %path.to_string_lossy(), "NOTIFY_SOCKET is set but cannot be used: {e}");
                None
            }
        }
    }

    fn connect(path: &std::ffi::OsStr) -> std::io::Result<SdNotify> {
        use std::os::unix::ffi::OsStrExt;
        let bytes = path.as_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name)?
            }
            None => std::os::unix::net::SocketAddr::from_pathname(path)?,
        };
        Ok(SdNotify {
            socket: UnixDatagram::unbound()?,
            addr,
        })
    }

    fn send(&self, state: &str) {
        // A signal arriving mid-call (the daemon handles SIGTERM and SIGINT) is not a
        // failure to report: the datagram was simply not sent yet.
        loop {
            match self.socket.send_to_addr(state.as_bytes(), &self.addr) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!("cannot tell systemd `{}`: {e}", state.trim_end());
                    return;
                }
                Ok(_) => return,
            }
        }
    }

    pub fn ready(&self) {
        self.send("READY=1\nSTATUS=drover serve: listening\n");
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=drover serve: stopping\n");
    }

    pub fn watchdog(&self) {
        self.send("WATCHDOG=1\n");
    }

    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC` (systemd's advice), when
    /// systemd asked for it and for this process (`WATCHDOG_PID`, if set, is ours).
    pub fn watchdog_interval() -> Option<Duration> {
        if let Some(pid) = std::env::var_os("WATCHDOG_PID")
            && pid.to_string_lossy().parse::<u32>().ok() != Some(std::process::id())
        {
            return None;
        }
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
        (usec > 0).then(|| Duration::from_micros(usec / 2))
    }
}

#[cfg(test)]
mod tests {
    use std::os::linux::net::SocketAddrExt;

    use super::*;

    #[test]
    fn an_abstract_socket_name_is_reached_too() {
        let name = format!("drover-sd-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = SdNotify::connect(std::ffi::OsStr::new(&format!("@{name}"))).unwrap();
        n.ready();
        let mut buf = [0u8; 256];
        let got = sock.recv(&mut buf).unwrap();
        assert!(buf[..got].starts_with(b"READY=1\n"));
    }
}
