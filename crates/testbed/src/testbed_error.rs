//! Everything that can go wrong starting, stopping or restarting a testbed.

use std::path::PathBuf;
use std::time::Duration;

/// Each failure names the node, file or program involved, and a failed `sshd` brings its
/// own stderr along: a test that cannot start its servers is otherwise undebuggable,
/// because the servers are gone by the time anyone looks.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    #[error("a testbed needs between 1 and {max} nodes, not {requested}")]
    NodeCount { requested: usize, max: usize },

    #[error(
        "testbed directory `{}` cannot be used: {reason} (ssh and sshd configs would \
         misread it; use a plain temp dir)",
        path.display()
    )]
    UnsupportedDir { path: PathBuf, reason: String },

    #[error("could not {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("`{program}` not found: install the `{package}` package")]
    MissingProgram { program: String, package: &'static str },

    #[error("could not run `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },

    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        command: String,
        status: String,
        stderr: String,
    },

    #[error("could not read the OpenSSH version from `{command}`: {output}")]
    UnknownSshdVersion { command: String, output: String },

    #[error("sshd for {node} exited during startup ({status}); its stderr:\n{stderr}")]
    SshdExited {
        node: String,
        status: String,
        stderr: String,
    },

    #[error(
        "sshd for {node} did not accept connections on {address} within {waited:?}; its \
         stderr:\n{stderr}"
    )]
    SshdNotListening {
        node: String,
        address: String,
        waited: Duration,
        stderr: String,
    },

    #[error("no port in {first}..={last} is free on every testbed address; is a stale testbed running?")]
    NoFreePort { first: u16, last: u16 },

    #[error("no node {index}: the testbed has {count} nodes (indices are 0-based)")]
    NoSuchNode { index: usize, count: usize },

    #[error("the testbed was dropped: its nodes cannot be started again")]
    ShutDown,

    #[error(
        "node name `{name}` cannot be used: only letters, digits and `._-`, not starting \
         with `.` (names become file names and go unquoted into hook commands)"
    )]
    UnsupportedNodeName { name: String },

    #[error("the fake scheduler has no node `{node}`")]
    UnknownSchedulerNode { node: String },

    #[error("`{state}` is not a scheduler state: expected `idle`, `draining` or `drained`")]
    UnknownSchedulerState { state: String },

    #[error("{done} of {expected} reboots were done after {waited:?}")]
    RebootsPending {
        expected: usize,
        done: usize,
        waited: Duration,
    },

    #[error("could not start the {what} thread: {source}")]
    Thread {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl TestbedError {
    /// The error for a program that could not be started: naming the Debian package when
    /// it is simply not installed, since that is the usual cause on a fresh CI machine.
    pub(crate) fn spawn(program: &str, package: &'static str, source: std::io::Error) -> TestbedError {
        if source.kind() == std::io::ErrorKind::NotFound {
            TestbedError::MissingProgram {
                program: program.to_string(),
                package,
            }
        } else {
            TestbedError::Spawn {
                program: program.to_string(),
                source,
            }
        }
    }

    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> TestbedError {
        TestbedError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether an sshd died because another process holds its address and port, which
    /// [`Testbed::start`](super::Testbed::start) answers by moving to another port.
    pub(crate) fn is_address_in_use(&self) -> bool {
        match self {
            TestbedError::SshdExited { stderr, .. } => stderr.contains("Address already in use"),
            _ => false,
        }
    }
}
