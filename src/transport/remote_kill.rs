//! Stopping a remote command whose exec future was dropped (an aborted node task).
//!
//! Closing the ssh channel does not stop a command on the node: without a terminal,
//! sshd sends it no signal. The remote wrapper ([`remote_script`](super::remote_script))
//! prints its pid first; the login shell sshd starts leads its own process group (sshd
//! calls `setsid`), and every layer below (`flock`, `timeout`, the command) stays in it.
//! A dropped exec therefore sends one more command through the master that kills that
//! group, and [`Pending`] lets the controller wait for those kills before it closes the
//! masters and exits.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;

use super::ShellLine;
use super::ssh_master::Master;

/// Marker the remote wrapper prints on stderr before anything else: `drover-pid <pid>`.
pub(super) const PID_MARKER: &str = "drover-pid ";

/// How long a remote kill may take: TERM, up to 6 s for the group to go (`timeout` KILLs
/// what ignores TERM after 5 s), then KILL.
const KILL_LIMIT: Duration = Duration::from_secs(15);

/// Counts kills in flight; cloned handles share the count.
#[derive(Debug, Clone)]
pub(super) struct Pending(Arc<watch::Sender<usize>>);

impl Default for Pending {
    fn default() -> Self {
        Pending(Arc::new(watch::Sender::new(0)))
    }
}

impl Pending {
    fn token(&self) -> Token {
        self.0.send_modify(|n| *n += 1);
        Token(self.clone())
    }

    /// Resolves once no kill is in flight (or after `limit`).
    pub(super) async fn settled(&self, limit: Duration) {
        let mut rx = self.0.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|n| *n == 0)).await;
    }
}

struct Token(Pending);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Armed while a remote command runs; dropped armed, it kills the command's group.
pub(super) struct RemoteKill {
    pub(super) master: Arc<Master>,
    /// Set by the stderr reader once the wrapper has printed its pid.
    pub(super) pid: Arc<OnceLock<u32>>,
    /// The connection's and the connector's counts.
    pub(super) pending: [Pending; 2],
    pub(super) armed: bool,
}

impl Drop for RemoteKill {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Some(&pid) = self.pid.get() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let tokens = [self.pending[0].token(), self.pending[1].token()];
        let master = Arc::clone(&self.master);
        rt.spawn(async move {
            let _tokens = tokens;
            let script = kill_script(pid);
            let run = async {
                let mut cmd = master.session.raw_command(script);
                cmd.stdin(openssh::Stdio::null())
                    .stdout(openssh::Stdio::null())
                    .stderr(openssh::Stdio::null());
                if let Ok(child) = cmd.spawn().await {
                    let _ = child.wait().await;
                }
            };
            let _ = tokio::time::timeout(KILL_LIMIT, run).await;
            // `master` is released here: the last holder closes it.
        });
    }
}

/// TERM to the group, wait until it is gone, KILL what is left after 6 s.
pub(super) fn kill_script(pid: u32) -> String {
    let g = ShellLine::new().code("-").number(pid);
    ShellLine::new()
        .code("kill -TERM ")
        .line(&g)
        .code(" 2>/dev/null || exit 0; i=0; while kill -0 ")
        .line(&g)
        .code(" 2>/dev/null; do if [ $i -ge 60 ]; then kill -KILL ")
        .line(&g)
        .code(" 2>/dev/null; exit 0; fi; sleep 0.1; i=$((i+1)); done")
        .into_string()
}
