//! Exactly what a request came to. Front ends decide what it means for them (the CLI
//! maps it to its verdict and exit code).

use std::collections::HashMap;
use std::path::PathBuf;

use super::refusal::Refusal;
use super::skipped::Skipped;
use crate::engine::{self, CheckResult, Prior};
use crate::inventory::NodeId;
use crate::plan::Plan;
use crate::store::NodeState;

#[derive(Debug)]
pub enum Outcome {
    /// Nothing was run, for this reason.
    Refused(Refusal),
    /// Interrupted before any node was started.
    Interrupted(Interruption),
    /// A check-only request: every target's class.
    Checked {
        results: HashMap<NodeId, CheckResult>,
        /// How each node was reached, when asked (`check -v`).
        described: Vec<(NodeId, String)>,
        /// Targets in maintenance, not checked, with why.
        maintenance: Vec<(NodeId, String)>,
    },
    /// A dry run: the plan, and nothing done.
    DryRun { plan: Box<Plan> },
    /// The confirmation said no: nothing done.
    Declined,
    /// Every target is up to date (or left out), and the request asked not to record
    /// such a run (`record_when_idle: false`).
    NothingToDo,
    /// The run ran (perhaps to a stop).
    Finished(Box<Finished>),
}

/// When an interruption came, before anything was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    /// While a resumed run waited for nodes a dead controller left rebooting.
    WaitingForReboots,
    Checking,
    /// While the confirmation was asked for.
    AtPrompt,
    /// Between the plan and the run's record.
    BeforeStart,
    /// While the run was being recorded: it is recorded as interrupted.
    WhileRecording,
}

/// A run that started: what happened to every node, and why the rest was left.
#[derive(Debug)]
pub struct Finished {
    pub run_id: String,
    pub skipped: Skipped,
    pub result: engine::RunResult,
    /// The engine's outcome with what the plan left out (see `final_outcome`).
    pub outcome: engine::Outcome,
    /// A resumed run's nodes that had finished before it.
    pub earlier: HashMap<NodeId, Prior>,
    /// Nodes in flight when an interrupted run ended: name, state, drained by the run.
    pub unsure: Vec<(String, NodeState, bool)>,
    pub log: Option<PathBuf>,
}
