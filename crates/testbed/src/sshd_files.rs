//! Where one node's sshd keeps its files.

use std::path::{Path, PathBuf};

/// Every sshd gets its own directory (`<dir>/sshd/node001/`) so that restarting, re-keying
/// or killing one node never touches another's files, and so its command line (which
/// names its config) identifies it.
#[derive(Debug, Clone)]
pub(crate) struct SshdFiles {
    dir: PathBuf,
}

impl SshdFiles {
    pub(crate) fn new(testbed_dir: &Path, node: &str) -> SshdFiles {
        SshdFiles {
            dir: testbed_dir.join("sshd").join(node),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn config(&self) -> PathBuf {
        self.dir.join("sshd_config")
    }

    /// The private host key; ssh-keygen writes the public half next to it with `.pub`.
    pub(crate) fn host_key(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key")
    }

    pub(crate) fn pid_file(&self) -> PathBuf {
        self.dir.join("sshd.pid")
    }

    /// sshd's stderr (it runs with `-e`), appended to across restarts: the evidence when a
    /// node fails to start or a session is refused.
    pub(crate) fn log(&self) -> PathBuf {
        self.dir.join("sshd.log")
    }
}
