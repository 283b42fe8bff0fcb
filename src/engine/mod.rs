//! The rollout engine: checks, the rollout state machine, per-node work and the async
//! runner that connects them.

mod check_result;
mod disruption;
mod event;
mod journal;
mod node_cycle;
mod node_work;
mod rollout;
mod run_log;
mod runner;

pub use check_result::{CheckResult, Class, StepNeed, classify};
pub use disruption::{Blocked, Disruption, Limit};
pub use event::{RunEvent, StepStatus, outcome_json};
pub use journal::{Journal, Mark, StepRecord};
pub use node_cycle::{NodeCycle, NodeEnd};
pub use node_work::{CHECK_TIMEOUT, NodeJob, site_context, template_context};
pub use rollout::{Action, Input, Outcome, Prior, Rollout, RolloutSpec, StopReason};
pub use run_log::RunLog;
pub use runner::{
    Checked, Connections, Interrupted, RunContext, RunResult, Work, check_all, execute, next_press,
};
