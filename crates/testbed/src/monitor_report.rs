//! What a monitor saw over its run.

use std::collections::BTreeMap;

/// The worst moments of a run, for asserting a rollout's availability limits: at most so
/// many nodes out of service at once, overall and in each group (an HA pair must never be
/// out together).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitorReport {
    /// How many times the scheduler's state was read. A report with few samples over a
    /// long run says the machine was too busy for the maximum to be trusted.
    pub samples: u64,
    /// The most nodes unavailable (`draining` or `drained`) in one sample.
    pub max_unavailable: usize,
    /// Per group given to the monitor: the most of its members unavailable in one sample
    /// (0 when none ever was).
    pub max_per_group: BTreeMap<String, usize>,
    /// The unavailable nodes of the first sample with `max_unavailable` of them, in the
    /// scheduler's node order.
    pub worst: Vec<String>,
}
