//! What the world outside the run can tell it while it runs, besides Ctrl-C.

use super::rollout::StopReason;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// The heartbeat found these nodes' leases held by another run: the run stops if
    /// any of them is not finished yet (two runs must not work one node).
    LeasesLost(Vec<String>),
    /// Stop gracefully, for this reason.
    Stop(StopReason),
}
