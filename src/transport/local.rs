//! Commands run on the controller itself: `local:` steps, drain hooks, benchmarks.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::connection::{Connection, Connector, KILLED_EXIT, TIMEOUT_EXIT};
use super::exec_output::{OutputSink, OutputTail, read_outputs};
use super::script::{Script, ScriptOutput};
use super::{ExecOutput, NodeLocks, ShellLine, TransportError};
use crate::inventory::Node;

/// Runs commands locally with `DROVER_NODE` set to the node's name.
#[derive(Debug, Clone, Default)]
pub struct LocalConnector;

#[derive(Debug, Clone)]
pub struct LocalConnection {
    node: String,
    /// Set for every command, besides `DROVER_NODE` (the site's and workflow's `env:`).
    env: Vec<(String, String)>,
}

impl LocalConnection {
    pub fn new(node: &str) -> Self {
        LocalConnection {
            node: node.to_string(),
            env: Vec::new(),
        }
    }

    /// With `env` set for every command.
    pub fn with_env<'a>(mut self, env: impl IntoIterator<Item = (&'a String, &'a String)>) -> Self {
        self.env = env.into_iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        self
    }
}

impl Connector for LocalConnector {
    type Conn = LocalConnection;
    async fn connect(&self, node: &Node) -> Result<LocalConnection, TransportError> {
        Ok(LocalConnection::new(&node.name))
    }
}

/// How long a command may ignore TERM before it is killed, as `timeout --kill-after=5`.
const KILL_AFTER: Duration = Duration::from_secs(5);

impl Connection for LocalConnection {
    async fn exec(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<ExecOutput, TransportError> {
        if let Some(code) = shell_no_op(command) {
            return Ok(no_op(code));
        }
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(command);
        self.run(cmd, stdin, timeout).await
    }

    async fn exec_locked(
        &self,
        locks: &NodeLocks,
        command: &str,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<ExecOutput, TransportError> {
        if let Some(code) = shell_no_op(command) {
            return Ok(no_op(code));
        }
        // The same lock as on a node: `sh` takes it on fd 9 and `exec`s the command,
        // which holds it for as long as it (and anything it leaves behind holding the
        // descriptor) runs, also when drover itself is killed.
        let run = ShellLine::new().code("exec sh -c ").script(command);
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(locks.wrap(&self.node, timeout, &run).as_str());
        self.run(cmd, stdin, timeout * 2).await
    }

    async fn exec_script(
        &self,
        script: &Script,
        stdin: Option<Vec<u8>>,
        locks: Option<&NodeLocks>,
    ) -> Result<ScriptOutput, TransportError> {
        let timeout = script.timeout();
        let mut cmd = Command::new("sh");
        let limit = match locks {
            None => {
                cmd.arg("-c").arg(script.text());
                timeout
            }
            Some(locks) => {
                let run = ShellLine::new().code("exec sh -c ").script(&script.text());
                cmd.arg("-c").arg(locks.wrap(&self.node, timeout, &run).as_str());
                timeout * 2
            }
        };
        Ok(match self.run_into(cmd, stdin, limit, script.readers()).await? {
            None => ScriptOutput::abandoned(script),
            Some((code, stdout, stderr, timed_out)) => {
                ScriptOutput::new(stdout, stderr, code, timed_out, None)
            }
        })
    }

    async fn close(self) {}
}

impl LocalConnection {
    /// One process per command: the command runs in its own process group, and drover
    /// itself enforces the timeout on the whole group (TERM, then KILL 5 s later, with
    /// `timeout`'s exit codes) instead of spawning `timeout` for every command.
    async fn run(
        &self,
        cmd: Command,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<ExecOutput, TransportError> {
        let sinks = (OutputTail::default(), OutputTail::default());
        Ok(match self.run_into(cmd, stdin, timeout, sinks).await? {
            None => ExecOutput::abandoned(),
            Some((code, stdout, stderr, timed_out)) => ExecOutput {
                code,
                stdout: stdout.into_text(),
                stderr: stderr.into_text(),
                timed_out,
            },
        })
    }

    /// [`Self::run`] with the output read into `sinks` (stdout, stderr): the code, the
    /// two sinks and whether it timed out; `None` when it could not even be killed.
    async fn run_into<S: OutputSink>(
        &self,
        mut cmd: Command,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
        sinks: (S, S),
    ) -> Result<Option<(Option<i32>, S, S, bool)>, TransportError> {
        let spawn_err = |e: std::io::Error| TransportError::Spawn {
            node: self.node.clone(),
            message: e.to_string(),
        };
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("DROVER_NODE", &self.node)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(spawn_err)?;
        let group = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw);
        // Dropping this future (an aborted task) stops the whole command, not only `sh`.
        let mut guard = GroupGuard(group);
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let feed = child.stdin.take();
        let work = async move {
            // Input is written while output is read: a command that prints more than a
            // pipe holds before it reads its input would otherwise never finish.
            let write = async move {
                if let (Some(data), Some(mut pipe)) = (stdin, feed) {
                    // A command that does not read its input closes the pipe early; that
                    // is not an error of ours, its exit code tells.
                    let _ = pipe.write_all(&data).await;
                    drop(pipe);
                }
            };
            let ((), done) = tokio::join!(
                write,
                read_outputs(stdout, sinks.0, stderr, sinks.1, child.wait())
            );
            done
        };
        tokio::pin!(work);
        let mut killed_with = None;
        let finished = match tokio::time::timeout(timeout, &mut work).await {
            Ok(done) => Some(done),
            Err(_) => {
                killed_with = Some(TIMEOUT_EXIT);
                signal(group, rustix::process::Signal::TERM);
                match tokio::time::timeout(KILL_AFTER, &mut work).await {
                    Ok(done) => Some(done),
                    Err(_) => {
                        killed_with = Some(KILLED_EXIT);
                        signal(group, rustix::process::Signal::KILL);
                        // A descendant that left the group may still hold the pipes.
                        tokio::time::timeout(KILL_AFTER, &mut work).await.ok()
                    }
                }
            }
        };
        let Some((stdout, stderr, status)) = finished else {
            return Ok(None);
        };
        guard.0 = None;
        let status = status.map_err(spawn_err)?;
        Ok(Some((
            killed_with.or(status.code()),
            stdout,
            stderr,
            killed_with.is_some(),
        )))
    }
}

/// Kills a command's process group when the future running it is dropped before the
/// command finished: `kill_on_drop` alone reaches only `sh`, and its children would go on
/// with the change after drover gave up on it.
struct GroupGuard(Option<rustix::process::Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        signal(self.0, rustix::process::Signal::KILL);
    }
}

fn signal(group: Option<rustix::process::Pid>, sig: rustix::process::Signal) {
    if let Some(g) = group {
        // The group may be gone already; then there is nothing left to stop.
        let _ = rustix::process::kill_process_group(g, sig);
    }
}

/// The exit code `sh -c command` would have, for a command that is only a shell
/// built-in without effects (`true`, `:`, `false`, `exit N`). Such commands are answered
/// without a process: for no-op checks and steps, which is what measuring the engine
/// at scale runs, a spawn per command would be all there is to measure.
pub fn shell_no_op(command: &str) -> Option<i32> {
    match command.trim() {
        "true" | ":" | "exit" => Some(0),
        "false" => Some(1),
        c => {
            let n = c.strip_prefix("exit ")?.trim();
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            n.parse::<u32>().ok().map(|n| (n % 256) as i32)
        }
    }
}

fn no_op(code: i32) -> ExecOutput {
    ExecOutput {
        code: Some(code),
        stdout: String::new(),
        stderr: String::new(),
        timed_out: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::exec_output::AFTER_EXIT;

    #[tokio::test]
    async fn runs_with_stdin_and_node_name() {
        let c = LocalConnection::new("n001");
        let out = c
            .exec(
                "cat; echo \" $DROVER_NODE\"",
                Some(b"hi".to_vec()),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(out.stdout, "hi n001\n");
        assert!(out.success());
    }

    #[tokio::test]
    async fn a_hung_command_is_killed_at_its_timeout() {
        let c = LocalConnection::new("n001");
        let t = std::time::Instant::now();
        let out = c.exec("sleep 30", None, Duration::from_secs(1)).await.unwrap();
        assert!(out.timed_out);
        assert!(!out.success());
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_command_ignoring_term_is_killed_and_still_timed_out() {
        let c = LocalConnection::new("n001");
        let t = std::time::Instant::now();
        let out = c
            .exec("trap '' TERM; sleep 30", None, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(out.code, Some(crate::transport::KILLED_EXIT));
        assert!(out.timed_out);
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn only_effect_free_builtins_are_answered_without_a_process() {
        assert_eq!(shell_no_op("true"), Some(0));
        assert_eq!(shell_no_op(" : "), Some(0));
        assert_eq!(shell_no_op("false"), Some(1));
        assert_eq!(shell_no_op("exit 3"), Some(3));
        assert_eq!(shell_no_op("exit 256"), Some(0));
        for spawned in [
            "true; rm x",
            "exit $X",
            "exit -1",
            "/bin/true",
            "truex",
            "exit 3 4",
        ] {
            assert_eq!(shell_no_op(spawned), None, "{spawned}");
        }
    }

    #[tokio::test]
    async fn no_op_answers_match_what_sh_says() {
        let c = LocalConnection::new("n001");
        for cmd in ["true", ":", "false", "exit 3", "exit 300"] {
            let fast = c.exec(cmd, None, Duration::from_secs(5)).await.unwrap();
            let real = c
                .exec(&format!("{cmd} # spawned"), None, Duration::from_secs(5))
                .await
                .unwrap();
            assert_eq!(fast.code, real.code, "{cmd}");
        }
    }

    fn locks_in(dir: &std::path::Path) -> NodeLocks {
        let d = crate::transport::LockDir::parse(dir.to_str().unwrap()).unwrap();
        NodeLocks::new(d, dir, "test-run")
    }

    /// A command whose future is dropped is stopped with its children (`sh` alone
    /// would leave `sleep` running).
    #[tokio::test]
    async fn dropping_the_future_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let cmd = format!("sleep 300 & echo $! > {}; wait", pid_file.display());
        let c = LocalConnection::new("n001");
        let run = c.exec(&cmd, None, Duration::from_secs(60));
        let _ = tokio::time::timeout(Duration::from_millis(500), run).await;
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let alive = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
        };
        let t = std::time::Instant::now();
        while alive(pid) && t.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(pid), "sleep {pid} outlived its dropped command");
    }

    /// Input is written while output is read: a command that prints more than a pipe
    /// holds before it reads its input finishes.
    #[tokio::test]
    async fn output_before_input_does_not_stall() {
        let c = LocalConnection::new("n001");
        let input = vec![b'x'; 1 << 20];
        let out = c
            .exec(
                "head -c 1000000 /dev/zero; wc -c",
                Some(input),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert!(out.success(), "{out:?}");
        assert!(!out.timed_out);
        assert!(out.stdout.trim_end().ends_with("1048576"), "{}", out.stdout.len());
    }

    /// A command that leaves a process holding its output ends when it exits (and
    /// `AFTER_EXIT` more), not when that process does, and is not killed as timed out;
    /// the process lives on.
    #[tokio::test]
    async fn a_process_left_holding_the_output_does_not_hold_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let c = LocalConnection::new("n001");
        let t = std::time::Instant::now();
        let cmd = format!("sleep 60 & echo $! > '{}'; echo started", pid_file.display());
        let out = c.exec(&cmd, None, Duration::from_secs(30)).await.unwrap();
        assert!(out.success(), "{out:?}");
        assert!(!out.timed_out);
        assert_eq!(out.stdout, "started\n");
        let took = t.elapsed();
        assert!(took >= AFTER_EXIT && took < AFTER_EXIT * 3, "{took:?}");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let pid = pid.trim();
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "the process was killed"
        );
        let _ = std::process::Command::new("kill").arg(pid).status();
    }

    #[tokio::test]
    async fn a_locked_command_waits_for_the_lock_and_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let lock = &locks_in(dir.path());
        let c = LocalConnection::new("n001");
        let first = c.exec_locked(lock, "sleep 1; echo first", None, Duration::from_secs(5));
        let second = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let t = std::time::Instant::now();
            let out = c
                .exec_locked(lock, "echo second", None, Duration::from_secs(5))
                .await
                .unwrap();
            (out, t.elapsed())
        };
        let (a, (b, waited)) = tokio::join!(first, second);
        assert_eq!(a.unwrap().stdout, "first\n");
        assert_eq!(b.stdout, "second\n");
        assert!(waited >= Duration::from_millis(600), "did not wait: {waited:?}");
    }

    #[tokio::test]
    async fn a_lock_held_too_long_fails_with_its_own_code() {
        let dir = tempfile::tempdir().unwrap();
        let lock = &locks_in(dir.path());
        let c = LocalConnection::new("n001");
        let holder = c.exec_locked(lock, "sleep 3", None, Duration::from_secs(10));
        let waiter = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            c.exec_locked(lock, "echo ran", None, Duration::from_secs(1))
                .await
                .unwrap()
        };
        let (_, w) = tokio::join!(holder, waiter);
        assert_eq!(w.code, Some(crate::transport::LOCKED_EXIT));
        assert_eq!(w.stdout, "");
    }
}
