//! The transport seam: everything the engine does to a node goes through these traits,
//! so the engine runs the same over SSH, locally, or (in benchmarks) against no-op nodes.

use std::future::Future;
use std::time::Duration;

use super::{ExecOutput, TransportError};
use crate::inventory::Node;

/// An open connection to one node, reused by every check and step of a run.
pub trait Connection: Send + Sync + 'static {
    /// Runs `command` with `sh -c` on the node, feeding `stdin` if given. The command is
    /// killed on the node after `timeout`.
    fn exec(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
    ) -> impl Future<Output = Result<ExecOutput, TransportError>> + Send;

    /// Closes the connection (and its multiplexing master).
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// Opens connections.
pub trait Connector: Send + Sync + 'static {
    type Conn: Connection;
    fn connect(&self, node: &Node) -> impl Future<Output = Result<Self::Conn, TransportError>> + Send;
}

/// Wraps a command so the node itself enforces the timeout (a hung command is killed
/// there, not just abandoned by the controller): `timeout` from coreutils sends TERM,
/// then KILL 5 s later, and exits 124.
pub fn with_remote_timeout(command: &str, timeout: Duration) -> String {
    let secs = timeout.as_secs().max(1);
    let quoted = shlex::try_quote(command).map_or_else(|_| "false".to_string(), |c| c.into_owned());
    format!("timeout --kill-after=5 {secs} sh -c {quoted}")
}

/// Exit code of `timeout` when the command ran too long.
pub const TIMEOUT_EXIT: i32 = 124;
