//! How drover reaches nodes: SSH (one multiplexed master per node) or the local machine.

mod connection;
mod exec_output;
mod local;
mod ssh;
mod transport_error;

pub use connection::{
    Connection, Connector, KILLED_EXIT, LOCKED_EXIT, TIMEOUT_EXIT, quote, ran_out_of_time, remote_script,
};
pub use exec_output::{ExecOutput, TAIL_BYTES, tail};
pub use local::{LocalConnection, LocalConnector};
pub use ssh::{SshConnection, SshConnector};
pub use transport_error::TransportError;
