//! `scheduler: slurm`: drover's drain cycle through Slurm's own commands.
//!
//! The generic drain hooks run one `drained` command per node per poll; against Slurm
//! that is one `sinfo` (two slurmctld RPCs) per waiting node per interval. Here one
//! [`SlurmPoller`] runs a single `sinfo` per interval for every node waiting to drain
//! or to come back, and feeds each waiter. [`SlurmView`] is the cluster as the plan sees
//! it (states, partitions, running jobs): budgets count nodes Slurm already has out of
//! service, per partition, and `order: soonest_idle` puts the nodes that will be idle
//! soonest first.

mod node_status;
mod poller;
mod reservation;
mod slurm_client;
mod slurm_error;
mod slurm_view;

pub use node_status::{NodeStatus, parse_sinfo};
pub use poller::SlurmPoller;
pub use reservation::{Reservation, parse_reservations};
pub use slurm_client::SlurmClient;
pub use slurm_error::SlurmError;
pub use slurm_view::{IdleOrder, SlurmView, parse_squeue, soonest_idle};
