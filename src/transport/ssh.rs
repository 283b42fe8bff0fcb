//! SSH through the system `ssh` client with one multiplexed master per node.
//!
//! Using OpenSSH itself (via the `openssh` crate) means the user's `~/.ssh/config`,
//! agent, `known_hosts`, jump hosts and key types all work as they do in a terminal.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::AsyncWriteExt;

use super::connection::{Connection, Connector, ran_out_of_time, remote_script};
use super::exec_output::{read_all, tail};
use super::{ExecOutput, TransportError};
use crate::inventory::Node;

#[derive(Debug, Clone)]
pub struct SshConnector {
    /// An ssh_config to use instead of `~/.ssh/config`.
    pub config: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Where control sockets live. Unix socket paths are limited to 108 bytes, so this
    /// must be short (`/tmp/drover-<pid>`), not under a deep state directory.
    pub control_dir: PathBuf,
}

impl SshConnector {
    pub fn new(config: Option<PathBuf>, connect_timeout: Duration) -> std::io::Result<Self> {
        let control_dir = std::env::temp_dir().join(format!("drover-{}", std::process::id()));
        std::fs::create_dir_all(&control_dir)?;
        Ok(SshConnector {
            config,
            connect_timeout,
            control_dir,
        })
    }
}

pub struct SshConnection {
    node: String,
    session: Session,
}

impl Connector for SshConnector {
    type Conn = SshConnection;

    async fn connect(&self, node: &Node) -> Result<SshConnection, TransportError> {
        let mut b = SessionBuilder::default();
        // Host keys are always checked: an unknown or changed key fails the node.
        b.known_hosts_check(KnownHosts::Strict)
            .connect_timeout(self.connect_timeout)
            .server_alive_interval(Duration::from_secs(15))
            .control_directory(&self.control_dir)
            // A crashed controller leaves no master behind for long.
            .control_persist(ControlPersist::IdleFor(
                std::num::NonZeroUsize::MIN.saturating_add(59),
            ));
        if let Some(c) = &self.config {
            b.config_file(c);
        }
        if let Some(p) = node.address.port {
            b.port(p);
        }
        if let Some(u) = &node.address.user {
            b.user(u.clone());
        }
        match b.connect_mux(&node.address.host).await {
            Ok(session) => Ok(SshConnection {
                node: node.name.clone(),
                session,
            }),
            Err(e) => {
                let message = error_text(&e);
                if message.contains("Host key verification failed")
                    || message.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
                    || message.contains("No ED25519 host key is known")
                    || message.contains("host key")
                {
                    Err(TransportError::HostKey {
                        node: node.name.clone(),
                        message,
                    })
                } else {
                    Err(TransportError::Connect {
                        node: node.name.clone(),
                        message,
                    })
                }
            }
        }
    }
}

/// openssh's errors nest the ssh client's log; the last lines say what happened.
fn error_text(e: &openssh::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    parts
        .join(": ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Connection for SshConnection {
    async fn exec(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<ExecOutput, TransportError> {
        let remote = remote_script(command, timeout, None);
        self.run(remote, stdin, timeout, timeout).await
    }

    async fn exec_locked(
        &self,
        lock: &str,
        command: &str,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<ExecOutput, TransportError> {
        let remote = remote_script(command, timeout, Some(lock));
        self.run(remote, stdin, timeout, timeout * 2).await
    }

    async fn close(self) {
        let _ = self.session.close().await;
    }
}

impl SshConnection {
    /// Runs `remote` on a new session of the master; the controller waits up to `limit`
    /// (plus a grace for the node's own kill) before it gives up on the command.
    async fn run(
        &self,
        remote: String,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
        limit: Duration,
    ) -> Result<ExecOutput, TransportError> {
        let mut cmd = self.session.raw_command(remote);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().await.map_err(|e| self.lost(&e))?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin().take()) {
            let _ = pipe.write_all(&data).await;
            let _ = pipe.shutdown().await;
            drop(pipe);
        }
        // Not `wait_with_output`: it turns two ordinary outcomes into errors (exit code
        // 127 becomes "remote command not found", death by a signal "the remote process
        // has terminated") and drops the output, which tells why.
        let (stdout, stderr) = (child.stdout().take(), child.stderr().take());
        let finished = async move {
            let (stdout, stderr) = tokio::join!(read_all(stdout), read_all(stderr));
            (stdout, stderr, child.wait().await)
        };
        let grace = limit + Duration::from_secs(15);
        let Ok((stdout, stderr, status)) = tokio::time::timeout(grace, finished).await else {
            return Ok(ExecOutput::abandoned());
        };
        let code = match status {
            Ok(status) => status.code(),
            Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => Some(127),
            // Killed by a signal, or the connection dropped: the master tells which.
            Err(openssh::Error::RemoteProcessTerminated) => match self.session.check().await {
                Ok(()) => None,
                Err(e) => return Err(self.lost(&e)),
            },
            Err(e) => return Err(self.lost(&e)),
        };
        Ok(ExecOutput {
            code,
            stdout: tail(&stdout),
            stderr: tail(&stderr),
            timed_out: ran_out_of_time(code, started.elapsed(), timeout),
        })
    }

    fn lost(&self, e: &openssh::Error) -> TransportError {
        TransportError::Lost {
            node: self.node.clone(),
            message: error_text(e),
        }
    }
}
