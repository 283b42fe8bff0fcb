//! One running `sshd`.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};

use super::sshd_files::SshdFiles;
use super::testbed_error::TestbedError;

/// The sshd binary. An absolute path is required: sshd re-executes itself for every
/// connection and refuses to start from a relative one.
pub(crate) const SSHD: &str = "/usr/sbin/sshd";

/// `sshd -D -e`: in the foreground, so it stays our child (we know its pid and can reap
/// it) and logging to stderr, which goes to a per-node log file rather than a pipe: a
/// pipe nobody reads would fill up and block sshd in the middle of a test.
#[derive(Debug)]
pub(crate) struct SshdProcess {
    child: Child,
    /// Set once the exit has been collected: from then on the pid may belong to an
    /// unrelated process and must never be signalled.
    status: Option<ExitStatus>,
    log: PathBuf,
    /// Where this run's output starts in the log, which earlier runs of the node share.
    log_start: u64,
}

impl SshdProcess {
    pub(crate) fn spawn(files: &SshdFiles) -> Result<SshdProcess, TestbedError> {
        let log_path = files.log();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| TestbedError::io("open sshd log", &log_path, e))?;
        let log_start = log
            .metadata()
            .map_err(|e| TestbedError::io("read size of sshd log", &log_path, e))?
            .len();
        let log2 = log
            .try_clone()
            .map_err(|e| TestbedError::io("open sshd log", &log_path, e))?;
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(files.config())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| TestbedError::spawn(SSHD, "openssh-server", e))?;
        Ok(SshdProcess {
            child,
            status: None,
            log: log_path,
            log_start,
        })
    }

    /// The pid, while it is still ours: until the exit has been collected, even a dead
    /// sshd's pid stays reserved (as a zombie) and is safe to signal.
    pub(crate) fn pid(&self) -> Option<u32> {
        match self.status {
            None => Some(self.child.id()),
            Some(_) => None,
        }
    }

    /// How sshd exited, if it has.
    pub(crate) fn exit_status(&mut self) -> Result<Option<ExitStatus>, TestbedError> {
        if self.status.is_none() {
            self.status = self.child.try_wait().map_err(|e| TestbedError::Spawn {
                program: SSHD.to_string(),
                source: e,
            })?;
        }
        Ok(self.status)
    }

    /// Kills sshd if it still runs (normally [`ProcessTree::kill_all`] already did, along
    /// with its sessions) and reaps it, so no zombie and no listener remain.
    ///
    /// [`ProcessTree::kill_all`]: super::process_tree::ProcessTree::kill_all
    pub(crate) fn reap(mut self) -> Result<ExitStatus, TestbedError> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        // Fails only if it was already reaped, which `wait` then reports.
        let _ = self.child.kill();
        self.child.wait().map_err(|e| TestbedError::Spawn {
            program: SSHD.to_string(),
            source: e,
        })
    }

    /// What this sshd has written to stderr so far, for error messages.
    pub(crate) fn stderr(&self) -> String {
        let mut bytes = Vec::new();
        let read = std::fs::File::open(&self.log).and_then(|mut f| {
            f.seek(SeekFrom::Start(self.log_start))?;
            f.read_to_end(&mut bytes)
        });
        // sshd -e ends its lines with "\r\n".
        let text = String::from_utf8_lossy(&bytes).replace("\r\n", "\n");
        match read {
            Err(e) => format!("(could not read {}: {e})", self.log.display()),
            Ok(_) if text.trim().is_empty() => "(nothing)".to_string(),
            Ok(_) => text.trim().to_string(),
        }
    }
}
