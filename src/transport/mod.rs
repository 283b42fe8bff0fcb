//! How drover reaches nodes: SSH (one multiplexed master per node) or the local machine.

mod connection;
mod control_dir;
mod exec_output;
mod frame_reader;
mod held_session;
mod host_key;
mod local;
mod node_lock;
mod remote_kill;
mod script;
mod shell_line;
mod simple_command;
mod ssh;
mod ssh_master;
mod ssh_options;
mod transport_error;

pub use connection::{
    Connection, Connector, KILLED_EXIT, LOCKED_EXIT, TIMEOUT_EXIT, quote, ran_out_of_time, remote_held,
    remote_script,
};
pub use control_dir::clean_dead;
pub use exec_output::{ExecOutput, TAIL_BYTES, tail};
pub use local::{LocalConnection, LocalConnector, shell_no_op};
pub use node_lock::{DEFAULT_LOCK_DIR, LockDir, NodeLocks};
pub use script::{ItemInput, ItemOutput, Script, ScriptOutput};
pub use shell_line::ShellLine;
pub use simple_command::SimpleCommand;
pub use ssh::{SshConnection, SshConnector};
pub use ssh_master::{DEFAULT_CONTROL_PERSIST, DEFAULT_SERVER_ALIVE, SshSetup};
pub use ssh_options::{HostKeyPolicy, RESERVED_OPTIONS, SshOptions};
pub use transport_error::TransportError;
