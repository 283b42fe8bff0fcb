//! The rollout engine: checks, the rollout state machine, per-node work and the async
//! runner that connects them.

mod ansible_work;
mod check_result;
mod clock;
mod control;
mod deadline;
mod event;
mod event_sender;
pub mod fault;
mod file_commands;
mod file_diff;
mod file_sources;
mod files_check;
mod hold;
mod journal;
mod journal_error;
mod node_cycle;
mod node_error;
mod node_work;
mod rollout;
#[cfg(test)]
mod rollout_proptest;
mod run_log;
mod runner;
mod step_error;
mod step_output;

pub use check_result::{CheckResult, Class, StepNeed, classify, needs_drain};
pub use clock::{Clock, FileClock, ManualClock, SystemClock, clock_from_env};
pub use control::Control;
pub use deadline::{Deadline, later, poll_until};
pub use event::{NodeFinal, RunEvent, StepStatus, outcome_json};
pub use event_sender::{EVENT_CAPACITY, EventReceiver, EventSender, event_channel};
pub use file_commands::DIFF_BYTES;
pub use file_diff::{ContentDiff, Differs, FileDiff};
pub use file_sources::{FileSources, Source};
pub use hold::Hold;
pub use journal::{Journal, Mark, StepRecord};
pub use journal_error::JournalError;
pub use node_cycle::{NodeCycle, NodeEnd};
pub use node_error::NodeError;
pub use node_work::{CHECK_TIMEOUT, NodeJob, node_context, site_context, template_context};
pub use rollout::{Action, Input, Outcome, Prior, Rollout, RolloutSpec, StopReason};
pub use run_log::RunLog;
pub use runner::{
    Checked, Connections, Gates, Interrupted, RunContext, RunResult, Work, check_all, execute, next_press,
    panic_message,
};
pub use step_error::StepError;
pub use step_output::StepOutput;
