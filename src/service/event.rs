//! What a run tells its consumers while it goes: everything the CLI's reporter shows,
//! as data (the service prints nothing).

use std::collections::HashMap;
use std::sync::Arc;

use crate::engine::{self, CheckResult};
use crate::inventory::NodeId;
use crate::plan::Plan;

#[derive(Debug, Clone)]
pub enum RunEvent {
    /// The engine's own events: checks, phases, node progress, steps, stops.
    Engine(engine::RunEvent),
    /// A note for the operator: runs a dead controller left behind, a wait for
    /// another run's leases.
    Notice(String),
    /// Every target is checked and the run is planned; a run that asks for a
    /// confirmation waits for it after this.
    Planned(Arc<Planned>),
    /// The run and its leases are recorded: from here on it is in the store.
    Recorded { run: String },
}

/// The check's results and the plan built from them.
#[derive(Debug)]
pub struct Planned {
    pub results: HashMap<NodeId, CheckResult>,
    /// Nodes that need only steps the selection (`--tags`) left out.
    pub unselected: Vec<NodeId>,
    pub plan: Plan,
    /// Nodes an earlier run left drained, with why.
    pub held: HashMap<NodeId, String>,
}
