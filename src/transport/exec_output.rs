//! What one command on one node produced.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

/// Output kept per command: the tails are enough to diagnose a failure, and keeping
/// whole outputs of thousands of nodes in memory is not.
pub const TAIL_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecOutput {
    /// The exit code; None when the command was killed by a signal.
    pub code: Option<i32>,
    /// The last [`TAIL_BYTES`] of stdout, with a `[... N bytes cut ...]` line in front
    /// when more was printed.
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
    OutputTail {
        kept: bytes[start..].iter().copied().collect(),
        dropped: start as u64,
    }
    .into_text()
}

/// The end of a stream read through a fixed-size ring: memory per command stays at
/// [`TAIL_BYTES`] however much it prints, and what fell out is counted.
#[derive(Debug, Default)]
pub(super) struct OutputTail {
    kept: VecDeque<u8>,
    dropped: u64,
}

impl OutputTail {
    pub(super) fn push(&mut self, chunk: &[u8]) {
        if chunk.len() >= TAIL_BYTES {
            self.dropped += (self.kept.len() + chunk.len() - TAIL_BYTES) as u64;
            self.kept.clear();
            self.kept.extend(&chunk[chunk.len() - TAIL_BYTES..]);
            return;
        }
        let over = (self.kept.len() + chunk.len()).saturating_sub(TAIL_BYTES);
        self.kept.drain(..over);
        self.dropped += over as u64;
        self.kept.extend(chunk);
    }

    /// The kept bytes as text, with the count of bytes cut in front.
    pub(super) fn into_text(self) -> String {
        let bytes: Vec<u8> = self.kept.into();
        let s = String::from_utf8_lossy(&bytes);
        if self.dropped > 0 {
            format!("[... {} bytes cut ...]\n{s}", self.dropped)
        } else {
            s.into_owned()
        }
    }
}

/// Where a command's output goes as it is read: a plain tail ([`OutputTail`]) or, for
/// a script of several commands, one tail per command ([`super::FrameReader`]).
pub(super) trait OutputSink: Send {
    fn push(&mut self, chunk: &[u8]);
}

impl OutputSink for OutputTail {
    fn push(&mut self, chunk: &[u8]) {
        OutputTail::push(self, chunk);
    }
}

/// How long a command's output is still read once its exit status has come while its
/// pipes stay open: a process it left running (`daemon &`, an init script's daemon)
/// holds them, and neither the command nor its step waits for that process, which may
/// run for months. What the command wrote before it exited arrives well within this,
/// even on a node or controller under heavy load.
pub const AFTER_EXIT: Duration = Duration::from_secs(5);

/// Everything a pipe yields, into `tail`, until it closes (or a read fails: the exit
/// status then tells what happened), or until [`AFTER_EXIT`] after `exited` turns true:
/// what a process the command left behind writes later is not the command's output.
async fn read_into_until<R: AsyncRead + Unpin, S: OutputSink>(
    pipe: Option<R>,
    mut tail: S,
    mut exited: watch::Receiver<bool>,
) -> S {
    let Some(mut pipe) = pipe else {
        return tail;
    };
    let late = async move {
        if exited.wait_for(|e| *e).await.is_err() {
            // No exit will be told: read to the end.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(AFTER_EXIT).await;
    };
    tokio::pin!(late);
    let mut buf = vec![0u8; 8192];
    loop {
        tokio::select! {
            // Cancel-safe: a read that loses the race has taken nothing.
            r = pipe.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => tail.push(&buf[..n]),
            },
            () = &mut late => break,
        }
    }
    tail
}

/// A command's two output pipes read into `out` and `err` while `wait` waits for its
/// exit: until the pipes close, or [`AFTER_EXIT`] after the exit when a process the
/// command left running holds them. The one place every transport collects output.
pub(super) async fn read_outputs<R1, R2, S1, S2, T>(
    stdout: Option<R1>,
    out: S1,
    stderr: Option<R2>,
    err: S2,
    wait: impl std::future::Future<Output = T>,
) -> (S1, S2, T)
where
    R1: AsyncRead + Unpin,
    R2: AsyncRead + Unpin,
    S1: OutputSink,
    S2: OutputSink,
{
    let (exited, gone) = watch::channel(false);
    let wait = async move {
        let status = wait.await;
        exited.send_replace(true);
        status
    };
    tokio::join!(
        read_into_until(stdout, out, gone.clone()),
        read_into_until(stderr, err, gone),
        wait
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_last_bytes_and_counts_the_rest() {
        let mut t = OutputTail::default();
        let total = TAIL_BYTES * 3 + 17;
        let data: Vec<u8> = (0..total).map(|i| b'a' + (i % 26) as u8).collect();
        for chunk in data.chunks(1000) {
            t.push(chunk);
        }
        assert_eq!(t.dropped, (total - TAIL_BYTES) as u64);
        let kept: Vec<u8> = t.kept.iter().copied().collect();
        assert_eq!(kept, data[total - TAIL_BYTES..]);
        let text = t.into_text();
        assert!(text.starts_with(&format!("[... {} bytes cut ...]\n", total - TAIL_BYTES)));
    }

    #[test]
    fn a_chunk_bigger_than_the_ring_replaces_it() {
        let mut t = OutputTail::default();
        t.push(b"head");
        t.push(&vec![b'x'; TAIL_BYTES + 5]);
        assert_eq!(t.kept.len(), TAIL_BYTES);
        assert_eq!(t.dropped, 9);
    }

    #[test]
    fn short_output_is_kept_whole() {
        let mut t = OutputTail::default();
        t.push(b"hello\n");
        assert_eq!(t.into_text(), "hello\n");
    }
}
