//! Why a node could not be reached or a command not run.

/// A transport failure is about the connection, not the command: a command that ran
/// and failed is an [`ExecOutput`](super::ExecOutput) with a non-zero code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to {node}: {message}")]
    Connect { node: String, message: String },
    #[error("host key of {node} is not trusted: {message}")]
    HostKey { node: String, message: String },
    #[error("lost connection to {node} while running a command: {message}")]
    Lost { node: String, message: String },
    #[error("cannot run a command on {node}: {message}")]
    Spawn { node: String, message: String },
}
