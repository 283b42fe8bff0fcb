//! The run's log: every command drover ran on a node and what it printed.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// One file per run (`STATE_DIR/logs/RUN_ID.log`), every line prefixed with its node as
/// `pdsh` prints (`n001: ...`), so `grep '^n001: '` tells one node's story and `dshbak`
/// can regroup it.
///
/// One file rather than one per node: at 10,000 nodes, creating and reopening a file
/// per node and command was most of a no-op run's time (threads queueing on the log
/// directory's lock).
#[derive(Debug)]
pub struct RunLog {
    path: PathBuf,
    file: File,
}

impl RunLog {
    pub fn create(path: &Path) -> std::io::Result<RunLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(RunLog {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `text` for `node` in one `write` on an `O_APPEND` file, so entries of
    /// nodes working at the same time do not interleave. A full disk loses log lines,
    /// not the run.
    ///
    /// The entry's first line carries the time (UTC, milliseconds) after the prefix:
    /// `n001: 2026-12-01T17:57:10.487Z == step ...`.
    pub fn write(&self, node: &str, text: &str) {
        let mut buf = String::with_capacity(text.len() + 16 * (node.len() + 2) + 25);
        let stamp = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        for (i, line) in text.lines().enumerate() {
            buf.push_str(node);
            buf.push_str(": ");
            if i == 0 {
                buf.push_str(&stamp);
                buf.push(' ');
            }
            buf.push_str(line);
            buf.push('\n');
        }
        let _ = (&self.file).write_all(buf.as_bytes());
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
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8 * 200 * 3);
        for entry in lines.chunks(3) {
            let node = &entry[0][..4];
            let (prefix, rest) = entry[0].split_at(6);
            assert_eq!(prefix, format!("{node}: "));
            let (stamp, rest) = rest.split_once(' ').unwrap();
            assert!(stamp.parse::<jiff::Timestamp>().is_ok(), "{entry:?}");
            assert!(stamp.ends_with('Z') && stamp.len() == 24, "{stamp}");
            assert!(rest.starts_with("== step "), "{entry:?}");
            assert_eq!(entry[1], format!("{node}: $ true"));
            assert_eq!(entry[2], format!("{node}: [exit 0]"));
        }
    }
}
