//! Commands run on the controller itself: `local:` steps, drain hooks, benchmarks.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::connection::{Connection, Connector, ran_out_of_time, with_remote_timeout};
use super::exec_output::tail;
use super::{ExecOutput, TransportError};
use crate::inventory::Node;

/// Runs commands locally with `DROVER_NODE` set to the node's name.
#[derive(Debug, Clone, Default)]
pub struct LocalConnector;

#[derive(Debug, Clone)]
pub struct LocalConnection {
    node: String,
}

impl LocalConnection {
    pub fn new(node: &str) -> Self {
        LocalConnection {
            node: node.to_string(),
        }
    }
}

impl Connector for LocalConnector {
    type Conn = LocalConnection;
    async fn connect(&self, node: &Node) -> Result<LocalConnection, TransportError> {
        Ok(LocalConnection::new(&node.name))
    }
}

impl Connection for LocalConnection {
    async fn exec(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<ExecOutput, TransportError> {
        let spawn_err = |e: std::io::Error| TransportError::Spawn {
            node: self.node.clone(),
            message: e.to_string(),
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(with_remote_timeout(command, timeout))
            .env("DROVER_NODE", &self.node)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_err)?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A command that does not read its input closes the pipe early; that is not
            // an error of ours, its exit code tells.
            let _ = pipe.write_all(&data).await;
            drop(pipe);
        }
        let grace = timeout + Duration::from_secs(10);
        let started = std::time::Instant::now();
        match tokio::time::timeout(grace, child.wait_with_output()).await {
            Ok(Ok(out)) => {
                let code = out.status.code();
                Ok(ExecOutput {
                    code,
                    stdout: tail(&out.stdout),
                    stderr: tail(&out.stderr),
                    timed_out: ran_out_of_time(code, started.elapsed(), timeout),
                })
            }
            Ok(Err(e)) => Err(spawn_err(e)),
            Err(_) => Ok(ExecOutput::abandoned()),
        }
    }

    async fn close(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
