//! Planning: from a workflow and an inventory to phases and batches of nodes.

mod phase;
#[expect(clippy::module_inception, reason = "the type is named after the concept")]
mod plan;
mod plan_record;
mod rounding;
mod window_status;

pub use phase::Phase;

pub use window_status::window_status;

pub use plan::{Budgets, Exclusion, Plan, PlanError, PlanInput, hosted_pairs};
