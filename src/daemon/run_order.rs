//! A run the API asks the daemon's loop to start: the request, its stop handle, and
//! where to answer (the run's id and its events from the start, or why it did not
//! start).

use tokio::sync::{broadcast, oneshot, watch};

use crate::service::{RunEvent, RunRequest};

pub struct RunOrder {
    pub request: RunRequest,
    pub interrupts: watch::Sender<u32>,
    pub reply: oneshot::Sender<Result<StartedRun, NotStarted>>,
}

/// A run the loop started.
pub struct StartedRun {
    pub run_id: String,
    /// Every event of the run from its start.
    pub events: broadcast::Receiver<RunEvent>,
}

/// Why the loop did not start it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotStarted {
    /// A rollout of the workflow is active (one per workflow at a time).
    Busy { workflow: String, run_id: String },
    /// The service refused it.
    Refused(String),
    /// The daemon is stopping.
    Stopping,
}

impl std::fmt::Display for NotStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotStarted::Busy { workflow, run_id } => {
                write!(
                    f,
                    "a rollout of `{workflow}` is active (run {run_id}): one per workflow at a time"
                )
            }
            NotStarted::Refused(m) => f.write_str(m),
            NotStarted::Stopping => f.write_str("the daemon is stopping"),
        }
    }
}

impl std::fmt::Debug for RunOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOrder")
            .field("workflow", &self.request.workflow)
            .field("trigger", &self.request.trigger)
            .finish_non_exhaustive()
    }
}
