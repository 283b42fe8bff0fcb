//! A started request: its run id, its events and, at the end, its outcome.

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use super::event::RunEvent;
use super::outcome::Outcome;
use super::refusal::{Refusal, RefusalKind};
use crate::store::Store;

pub struct RunHandle {
    /// The run's id: a new one, or the resumed run's.
    pub run_id: String,
    /// Every event from the start, in order; ends when the run has wound down. More
    /// consumers: [`broadcast::Receiver::resubscribe`] (from that moment on).
    pub events: broadcast::Receiver<RunEvent>,
    /// The store the run is recorded in, once it is (the CLI's Ctrl-C answers read
    /// the run's nodes from it).
    pub recorded: watch::Receiver<Option<Store>>,
    pub(super) task: JoinHandle<Outcome>,
}

impl RunHandle {
    /// Waits for the request to end: every node done or stopped at a safe point, the
    /// store written, every connection closed.
    pub async fn outcome(self) -> Outcome {
        match self.task.await {
            Ok(o) => o,
            Err(e) => Outcome::Refused(Refusal::new(
                RefusalKind::Failure,
                format!("the run's task ended abnormally: {e}"),
            )),
        }
    }
}
