//! The run's log: every command drover ran on a node and what it printed.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// Entries queued for the writer thread before new ones are dropped.
const QUEUE: usize = 4096;

/// One file per run (`STATE_DIR/logs/RUN_ID.log`), every line prefixed with its node as
/// `pdsh` prints (`n001: ...`), so `grep '^n001: '` tells one node's story and `dshbak`
/// can regroup it.
///
/// One file rather than one per node: at 10,000 nodes, creating and reopening a file
/// per node and command was most of a no-op run's time (threads queueing on the log
/// directory's lock).
///
/// Writes go to a thread of their own, so a slow disk never stalls the async runtime's
/// threads (and with them every node's work); a queue that stays full (the disk cannot
/// keep up at all) drops entries and says how many in the log.
#[derive(Debug)]
pub struct RunLog {
    path: PathBuf,
    tx: Mutex<Option<SyncSender<String>>>,
    dropped: Arc<AtomicU64>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl RunLog {
    pub fn create(path: &Path) -> std::io::Result<RunLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let (tx, rx) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&dropped);
        let writer = std::thread::Builder::new()
            .name("drover-run-log".into())
            .spawn(move || write_all(&file, &rx, &counter))?;
        Ok(RunLog {
            path: path.to_path_buf(),
            tx: Mutex::new(Some(tx)),
            dropped,
            writer: Mutex::new(Some(writer)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `text` for `node`; it is appended in one `write` on an `O_APPEND` file, so
    /// entries of nodes working at the same time do not interleave. A full disk loses
    /// log lines, not the run.
    pub fn write(&self, node: &str, text: &str) {
        let mut buf = String::with_capacity(text.len() + 16 * (node.len() + 2));
        for line in text.lines() {
            buf.push_str(node);
            buf.push_str(": ");
            buf.push_str(line);
            buf.push('\n');
        }
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = tx.as_ref()
            && let Err(TrySendError::Full(_)) = tx.try_send(buf)
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes everything queued and stops the writer.
    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(PoisonError::into_inner).take();
        let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(w) = writer {
            let _ = w.join();
        }
    }
}

impl Drop for RunLog {
    fn drop(&mut self) {
        self.close();
    }
}

fn write_all(mut file: &File, rx: &Receiver<String>, dropped: &AtomicU64) {
    while let Ok(entry) = rx.recv() {
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let _ = file.write_all(
                format!("drover: [{lost} log entries dropped: the disk was too slow]\n").as_bytes(),
            );
        }
        let _ = file.write_all(entry.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn entries_of_concurrent_nodes_stay_whole_and_prefixed() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(RunLog::create(&dir.path().join("run.log")).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    for i in 0..200 {
                        log.write(&format!("n{t:03}"), &format!("== step {i}\n$ true\n[exit 0]\n"));
                        if i % 50 == 0 {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        log.close();
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8 * 200 * 3);
        for entry in lines.chunks(3) {
            let node = &entry[0][..4];
            assert!(entry[0].starts_with(&format!("{node}: == step ")), "{entry:?}");
            assert_eq!(entry[1], format!("{node}: $ true"));
            assert_eq!(entry[2], format!("{node}: [exit 0]"));
        }
    }
}
