//! The rollouts the daemon is driving now, as the API sees them: each run's event
//! stream (to subscribe to) and its stop handle. The daemon's loop registers a run when
//! it starts it and removes it when it has wound down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};

use crate::service::RunEvent;

struct LiveRun {
    workflow: String,
    /// Kept only to subscribe from (a receiver nobody reads never holds the sender up).
    events: broadcast::Receiver<RunEvent>,
    interrupts: Arc<watch::Sender<u32>>,
}

/// Shared between the daemon's loop and the API's handlers.
#[derive(Clone, Default)]
pub struct LiveRuns {
    runs: Arc<Mutex<HashMap<String, LiveRun>>>,
}

impl LiveRuns {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, LiveRun>> {
        // A handler that panicked holding the lock left the map whole: keep using it.
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn insert(
        &self,
        run_id: &str,
        workflow: &str,
        events: broadcast::Receiver<RunEvent>,
        interrupts: Arc<watch::Sender<u32>>,
    ) {
        self.lock().insert(
            run_id.to_string(),
            LiveRun {
                workflow: workflow.to_string(),
                events,
                interrupts,
            },
        );
    }

    pub fn remove(&self, run_id: &str) {
        self.lock().remove(run_id);
    }

    /// The run's events from now on, while it is live.
    pub fn subscribe(&self, run_id: &str) -> Option<broadcast::Receiver<RunEvent>> {
        self.lock().get(run_id).map(|r| r.events.resubscribe())
    }

    /// Asks a live run to stop: `level` 1 starts no new node and lets the nodes in
    /// flight finish their cycle (so none is left drained), 2 also aborts their steps.
    /// False when the run is not live.
    pub fn interrupt(&self, run_id: &str, level: u32) -> bool {
        match self.lock().get(run_id) {
            Some(r) => {
                r.interrupts.send_modify(|n| *n = (*n).max(level));
                true
            }
            None => false,
        }
    }

    /// `(run id, workflow)` of every live run, by run id.
    pub fn list(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .lock()
            .iter()
            .map(|(id, r)| (id.clone(), r.workflow.clone()))
            .collect();
        v.sort();
        v
    }
}
