//! Disruption budgets: how many nodes of a set may be unavailable at once, counting each
//! member once whatever its reasons to be down (a VM goes down with its host).
//!
//! Below both `plan` (which resolves the budgets of a run) and `engine` (which admits
//! nodes within them): the model is theirs alike, and depends only on the inventory.

mod blocked;
mod disruption;
mod limit;

pub use blocked::Blocked;
pub use disruption::Disruption;
pub use limit::Limit;
