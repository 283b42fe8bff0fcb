//! What one command on one node produced.

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Output kept per command: the tails are enough to diagnose a failure, and keeping
/// whole outputs of thousands of nodes in memory is not.
pub const TAIL_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecOutput {
    /// The exit code; None when the command was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The command ran past its timeout and was killed.
    pub timed_out: bool,
}

impl ExecOutput {
    /// The controller stopped waiting: the command outlived its timeout plus a grace
    /// period, so whatever it printed is lost with it.
    pub fn abandoned() -> Self {
        ExecOutput {
            code: None,
            stdout: String::new(),
            stderr: String::new(),
            timed_out: true,
        }
    }

    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// The last `lines` lines of stderr, or of stdout when stderr is empty: what a
    /// summary shows for a failed node.
    pub fn last_lines(&self, lines: usize) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let all: Vec<&str> = text.trim_end().lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Keeps the end of a command's output, cut at a character boundary.
pub fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(TAIL_BYTES);
    let s = String::from_utf8_lossy(&bytes[start..]);
    if start > 0 {
        format!("[... {start} bytes cut ...]\n{s}")
    } else {
        s.into_owned()
    }
}

/// Everything a pipe yields until it closes; what arrived before a read error otherwise
/// (the exit status then tells what happened).
pub(super) async fn read_all<R: AsyncRead + Unpin>(pipe: Option<R>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(mut pipe) = pipe {
        let _ = pipe.read_to_end(&mut buf).await;
    }
    buf
}
