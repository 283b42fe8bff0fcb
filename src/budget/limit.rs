//! One disruption budget, resolved: a name for operators, a count and its members.

use serde::Serialize;

use crate::inventory::NodeId;

/// One budget: at most `max` of `members` unavailable at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limit {
    /// As shown to operators: "max_unavailable", "HA group `db`", "group `rack01`".
    pub name: String,
    pub max: usize,
    /// Not in JSON plans: `max_unavailable` lists every target.
    #[serde(skip)]
    pub members: Vec<NodeId>,
}
