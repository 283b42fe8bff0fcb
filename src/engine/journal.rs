//! The engine's side of the state store: every node transition is written, and on disk,
//! before the engine acts on it, so a controller killed at any instant leaves a record
//! that says which nodes it may have drained.

use crate::store::{NodeState, Store, Write};

/// Where a node stands, as recorded.
#[derive(Debug, Clone)]
pub struct Mark {
    pub state: NodeState,
    pub attempt: u32,
    /// The workflow step index the node is at (or about to run).
    pub step: usize,
    /// Whether this run has the node drained.
    pub drained: bool,
    /// Read before a reboot, to tell afterwards whether it happened.
    pub boot_id: Option<String>,
    pub reason: Option<String>,
}

/// One step attempt's result.
#[derive(Debug, Clone)]
pub struct StepRecord {
    pub step: String,
    pub position: usize,
    pub attempt: u32,
    pub status: String,
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    pub output_tail: String,
}

/// A run's journal; without a store (dry runs, `check`) it records nothing.
#[derive(Clone)]
pub struct Journal {
    store: Option<Store>,
    run: String,
}

impl Journal {
    pub fn new(store: Option<Store>, run: String) -> Journal {
        Journal { store, run }
    }

    pub fn run(&self) -> &str {
        &self.run
    }

    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// Records a node's transition; returns once it is durable.
    pub async fn node(&self, node: &str, m: Mark) -> Result<(), String> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        store
            .write(vec![Write::Node {
                run: self.run.clone(),
                node: node.to_string(),
                state: m.state,
                attempt: m.attempt,
                step: m.step,
                drained_by_us: m.drained,
                boot_id: m.boot_id,
                reason: m.reason,
                at: jiff::Timestamp::now(),
            }])
            .await
            .map_err(|e| format!("cannot record the node's state, so it was not changed: {e}"))
    }

    pub async fn step(&self, node: &str, r: StepRecord) -> Result<(), String> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        store
            .write(vec![Write::Step {
                run: self.run.clone(),
                node: node.to_string(),
                step: r.step,
                position: r.position,
                attempt: r.attempt,
                status: r.status,
                exit_code: r.exit_code,
                duration_ms: r.duration_ms,
                output_tail: r.output_tail,
                at: jiff::Timestamp::now(),
            }])
            .await
            .map_err(|e| format!("cannot record the step's result: {e}"))
    }
}
