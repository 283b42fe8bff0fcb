//! Real OpenSSH servers on loopback for tests and benchmarks.
//!
//! drover's job is running commands over SSH, so its tests must talk to real `sshd`s:
//! a mock would agree with whatever we believe about host keys, multiplexing, session
//! limits and dropped connections, and hide exactly the bugs those tests exist to find.
//! [`Testbed::start`] runs one `sshd` per node, each on its own loopback address, with
//! keys, `known_hosts`, an `ssh_config` and an inventory generated into a caller's dir.
//!
//! For drain cycles, [`FakeScheduler`] stands in for Slurm (its state is files, its jobs
//! take time to end), [`Monitor`] samples how many nodes are out of service at once, and
//! [`RebootService`] reboots nodes that ask for it (sshd down for a while, a new boot id).
//! [`SlurmCluster`] is the real thing: slurmctld and one slurmd per node, on one host.

mod atomic_write;
mod boot_files;
mod fake_scheduler;
mod known_hosts;
mod log_line;
mod monitor;
mod monitor_report;
mod port_lease;
mod process_tree;
mod reboot;
mod reboot_service;
mod safe_dir;
mod slurm_cluster;
mod slurm_job;
mod slurm_monitor;
mod ssh_client_config;
mod ssh_keygen;
mod ssh_probe;
mod sshd_config;
mod sshd_files;
mod sshd_fleet;
mod sshd_process;
mod sshd_version;
mod test_node;
mod testbed;
mod testbed_error;
mod testbed_options;
mod yaml_quote;

pub use fake_scheduler::{FakeScheduler, HOOKS};
pub use log_line::LogLine;
pub use monitor::Monitor;
pub use monitor_report::MonitorReport;
pub use reboot::Reboot;
pub use reboot_service::RebootService;
pub use slurm_cluster::{MAX_SLURM_NODES, SlurmCluster, SlurmNodeState, slurm_unavailable};
pub use slurm_job::SlurmJob;
pub use slurm_monitor::{SlurmMonitor, SlurmMonitorReport};
pub use test_node::TestNode;
pub use testbed::{MAX_NODES, Testbed};
pub use testbed_error::TestbedError;
pub use testbed_options::{SshAlgorithms, TestbedOptions};
