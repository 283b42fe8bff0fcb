//! One disruption budget, resolved: a name for operators, a count and its members.

use serde::Serialize;

use crate::inventory::NodeId;

/// One budget: at most `max` of `members` unavailable at once.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Limit {
    /// As shown to operators: "max_unavailable", "HA group `db`", "group `rack01`".
    pub name: String,
    pub max: usize,
    /// Not in JSON plans: `max_unavailable` lists every target.
    #[serde(skip)]
    pub members: Vec<NodeId>,
    /// Unavailable nodes of the limit outside `members`, counted from the start: a Slurm
    /// partition's nodes that are down or drained but not in the run (or not in the
    /// inventory at all).
    #[serde(skip_serializing_if = "is_zero")]
    pub already_out: usize,
    /// The whole set's size, when it has more than `members` and `already_out` (a
    /// partition's nodes outside the inventory): what a percentage is of. 0: members.
    #[serde(skip_serializing_if = "is_zero")]
    pub size: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
