//! The transport seam: everything the engine does to a node goes through these traits,
//! so the engine runs the same over SSH, locally, or (in benchmarks) against no-op nodes.

use std::future::Future;
use std::time::Duration;

use super::{ExecOutput, NodeLocks, Script, ScriptOutput, ShellLine, TransportError};
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

    /// Like [`Connection::exec`], holding the node's step lock ([`NodeLocks`]) while
    /// the command runs (`flock` from util-linux, where the node has it), so that a
    /// resumed run can wait for a step its dead controller left running instead of
    /// running it a second time alongside. Waiting for the lock may take up to `timeout`
    /// on top of the command's own `timeout`.
    fn exec_locked(
        &self,
        locks: &NodeLocks,
        command: &str,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
    ) -> impl Future<Output = Result<ExecOutput, TransportError>> + Send;

    /// Runs `script` (several commands, one round trip) with `stdin`, under the node's
    /// step lock when `locks` is given, killed on the node after the script's own
    /// limit ([`Script::timeout`]). A connection that breaks midway still returns what
    /// the commands that ended printed ([`ScriptOutput::item`]).
    fn exec_script(
        &self,
        script: &Script,
        stdin: Option<Vec<u8>>,
        locks: Option<&NodeLocks>,
    ) -> impl Future<Output = Result<ScriptOutput, TransportError>> + Send;

    /// Lets go of what keeps the connection open (an ssh master) while keeping it
    /// usable: the next command opens it again. For nodes that wait long for their turn.
    fn release(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// The arguments with which an ssh client on the controller (ansible-playbook's)
    /// reaches the node as this connection does, through its live master; `None` for a
    /// connection that is not ssh (the local transport).
    fn client_ssh_args(&self) -> impl Future<Output = Result<Option<Vec<String>>, TransportError>> + Send {
        async { Ok(None) }
    }

    /// How the connection reaches its node, for `check -v` (`kex curve25519-sha256`).
    fn describe(&self) -> impl Future<Output = Option<String>> + Send {
        async { None }
    }

    /// Closes the connection (and its multiplexing master), after stopping any command
    /// whose future was dropped.
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// Opens connections.
pub trait Connector: Send + Sync + 'static {
    type Conn: Connection;
    fn connect(&self, node: &Node) -> impl Future<Output = Result<Self::Conn, TransportError>> + Send;
}

/// The one shell line a node's login shell runs for `command`.
///
/// The node itself enforces the timeout (a hung command is killed there, not just
/// abandoned by the controller): `timeout` from coreutils sends TERM, then KILL 5 s
/// later, and exits 124. With a `lock`, the login shell first takes it on fd 9, which
/// the command inherits, so the command's children hold it too and it is released only
/// when all of them are gone.
///
/// Every layer is `exec`ed: the node runs the login shell, `flock` (locked steps only),
/// `timeout` and `sh -c`, and the command is the direct child of `timeout`, so its exit
/// code and signals are reported as its own. Before all that the login shell prints its
/// pid on stderr: it leads the process group every layer stays in, which is how a
/// command whose controller gave up on it is stopped (see `remote_kill`).
pub fn remote_script(command: &str, timeout: Duration, lock: Option<(&NodeLocks, &str)>) -> String {
    let secs = timeout.as_secs().max(1);
    // `drover-pid `: [`super::remote_kill::PID_MARKER`].
    let pid = ShellLine::new().code("printf 'drover-pid %s\\n' \"$$\" >&2; ");
    let run = ShellLine::new()
        .code("exec timeout --kill-after=5 ")
        .number(secs)
        .code(" sh -c ");
    match lock {
        None => pid.line(&run.script(command)).into_string(),
        // `timeout` holds the lock (fd 9) while the command runs; the command's shell
        // lets go of it first (on the command's first line, so `LINENO` is unchanged),
        // so a process the command leaves running does not keep the node locked.
        Some((locks, node)) => {
            let run = run.script(&format!("exec 9>&-; {command}"));
            pid.line(&locks.wrap(node, timeout, &run)).into_string()
        }
    }
}

/// [`remote_script`] for a held script ([`super::Script::hold`]): no outer `timeout`,
/// since the shell waits for the node's turn, however long that is. Each command keeps
/// its own limit (the script's watchdog), the wait ends when the controller sends the
/// next script or the session closes, and a controller that gives up kills the group.
pub fn remote_held(text: &str) -> String {
    ShellLine::new()
        .code("printf 'drover-pid %s\\n' \"$$\" >&2; exec sh -c ")
        .script(text)
        .into_string()
}

/// Exit code of a locked command whose lock another command held for its whole timeout
/// (`EX_TEMPFAIL`).
pub const LOCKED_EXIT: i32 = 75;

/// One shell word; a string `shlex` refuses (a NUL byte) becomes a command that fails.
pub fn quote(s: &str) -> String {
    shlex::try_quote(s).map_or_else(|_| "false".to_string(), |c| c.into_owned())
}

/// Exit code of `timeout` when the command ran too long.
pub const TIMEOUT_EXIT: i32 = 124;

/// Exit code of `timeout` when the command ignored TERM and was killed 5 s later
/// (128 + KILL).
pub const KILLED_EXIT: i32 = 137;

/// Whether a command wrapped by [`remote_script`] ran into its timeout: `timeout`
/// exits 124 after TERM, and 137 when it had to KILL a command that ignored TERM. A
/// command that exits 137 by itself (killed by the OOM killer) before the timeout did
/// not time out.
pub fn ran_out_of_time(code: Option<i32>, elapsed: Duration, timeout: Duration) -> bool {
    let limit = Duration::from_secs(timeout.as_secs().max(1));
    code == Some(TIMEOUT_EXIT) || (code == Some(KILLED_EXIT) && elapsed >= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_told_from_exit_codes() {
        let s = Duration::from_secs;
        assert!(ran_out_of_time(Some(124), s(2), s(2)));
        assert!(
            ran_out_of_time(Some(137), s(7), s(2)),
            "KILLed after ignoring TERM"
        );
        assert!(!ran_out_of_time(Some(137), s(1), s(2)), "killed by someone else");
        assert!(!ran_out_of_time(Some(1), s(9), s(2)));
        assert!(!ran_out_of_time(None, s(9), s(2)));
    }

    #[test]
    fn the_timeout_wraps_the_command_as_one_word() {
        assert_eq!(
            remote_script("echo 'a b'; exit 3", Duration::from_millis(1500), None),
            "printf 'drover-pid %s\\n' \"$$\" >&2; exec timeout --kill-after=5 1 sh -c \"echo 'a b'; exit 3\""
        );
    }

    #[test]
    fn a_locked_command_takes_the_lock_in_the_login_shell_then_execs() {
        let locks = NodeLocks::default();
        let s = remote_script("echo hi", Duration::from_secs(60), Some((&locks, "n1")));
        assert!(s.contains("exec 9>>\"$_lf\"; flock -w 60 9 ||"), "{s}");
        assert!(s.contains("_lf=\"$_ld\"/drover-n1.lock;"), "{s}");
        assert!(
            s.ends_with("fi; exec timeout --kill-after=5 60 sh -c 'exec 9>&-; echo hi'"),
            "{s}"
        );
        // `timeout` holds the lock; the command's own shell lets go of it at once.
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg("exec 9>/dev/null; sh -c 'exec 9>&-; ls /proc/$$/fd'")
            .output()
            .expect("sh");
        let fds = String::from_utf8_lossy(&o.stdout);
        assert!(!fds.lines().any(|l| l == "9"), "{fds}");
    }
}
