//! Why a node's turn failed.

use super::journal_error::JournalError;
use super::step_error::StepError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum NodeError {
    /// The state store failed: not the node's fault, so the run stops instead of
    /// retrying or counting a failure.
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("step `{step}`: {source}")]
    Step {
        step: String,
        #[source]
        source: StepError,
    },
    /// A reboot step's failure, named after its step like any step's.
    #[error("step `{step}`: {source}")]
    InStep {
        step: String,
        #[source]
        source: Box<NodeError>,
    },
    #[error("{hook} hook: {source}")]
    Hook {
        hook: &'static str,
        #[source]
        source: StepError,
    },
    #[error("cannot read the boot id with `{cmd}`: {source}")]
    BootId {
        cmd: String,
        #[source]
        source: StepError,
    },
    #[error("reboot command exited with code {code}: {tail}")]
    RebootRefused { code: i32, tail: String },
    /// `via: slurm`: `scontrol reboot` failed or no Slurm poller is set up.
    #[error("Slurm did not take the reboot: {0}")]
    SlurmReboot(String),
    /// `drain.mode: reservation`: the node's reservation could not be deleted.
    #[error("cannot delete reservation {name}: {error}")]
    Reservation { name: String, error: String },
    #[error("did not come back from the reboot in time ({last})")]
    NotBack { last: String },
    #[error("health check `{cmd}` {last} (tried until the reboot's timeout)")]
    Health { cmd: String, last: String },
    /// `resumed` never passed: the scheduler does not have the node back.
    #[error("resumed, but the scheduler did not have it back in service within {} ({last})", humantime::format_duration(*waited))]
    NotResumed {
        waited: std::time::Duration,
        last: String,
    },
    #[error("{0}")]
    Reboot(StepError),
    #[error(
        "step `{step}` needs a drained node, but no drain hooks are configured and the \
         workflow does not declare `drain: {{ none: ... }}`"
    )]
    NoDrainHooks { step: String },
}

impl NodeError {
    /// The step's exit code, for the journal.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            NodeError::Step { source, .. } | NodeError::Reboot(source) => source.exit_code(),
            NodeError::RebootRefused { code, .. } => Some(*code),
            NodeError::InStep { source, .. } => source.exit_code(),
            _ => None,
        }
    }

    pub fn output_tail(&self) -> String {
        match self {
            NodeError::Step { source, .. } | NodeError::Reboot(source) => source.output_tail().to_string(),
            NodeError::RebootRefused { tail, .. } => tail.clone(),
            NodeError::Health { last, .. } | NodeError::NotBack { last } => last.clone(),
            NodeError::InStep { source, .. } => source.output_tail(),
            _ => String::new(),
        }
    }
}
