//! The one stream of events a run produces. The terminal reporter, `--json` output and
//! (later) the state store and notifications all consume it.

use std::time::Duration;

use serde::Serialize;

use super::check_result::Class;
use super::hold::Hold;
use super::rollout::{Outcome, StopReason};
use crate::inventory::Inventory;

/// How a step ended on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Ran and exited 0.
    Ok,
    /// A file step wrote a new file.
    Changed,
    /// A file step found the file already as wanted.
    Unchanged,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum RunEvent {
    CheckStarted {
        nodes: usize,
    },
    NodeChecked {
        node: String,
        class: Class,
        needed: Vec<String>,
        error: Option<String>,
        /// With `--diff`: how the node's file steps would change their files.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        diffs: Vec<super::file_diff::FileDiff>,
    },
    PhaseStarted {
        phase: String,
        nodes: usize,
    },
    NodeStarted {
        node: String,
        attempt: u32,
    },
    StepFinished {
        node: String,
        step: String,
        status: StepStatus,
        #[serde(with = "millis")]
        duration: Duration,
        /// Last lines of output, for failures.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A node's drain cycle moved on: `draining`, `drained`, `rebooting`, `back`,
    /// `resumed`, `held`, `skipped`.
    NodeDrain {
        node: String,
        state: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    NodeRetry {
        node: String,
        attempt: u32,
        #[serde(with = "millis")]
        after: Duration,
    },
    NodeFinished {
        node: String,
        ok: bool,
        error: Option<String>,
    },
    Soak {
        #[serde(with = "millis")]
        duration: Duration,
    },
    /// No new node starts until `hold` is lifted; nodes in flight go on. `text` is the
    /// hold as the terminal shows it.
    Waiting {
        hold: Hold,
        text: String,
    },
    /// The hold is lifted: nodes start again.
    Continuing,
    /// A node that had not started was put into maintenance during the run: it is
    /// skipped, untouched.
    NodeInMaintenance {
        node: String,
        reason: String,
    },
    RunFinished {
        /// [`outcome_json`]: nodes by name.
        outcome: serde_json::Value,
    },
}

/// An outcome as JSON with nodes named (the state machine knows them by index).
pub fn outcome_json(outcome: &Outcome, inv: &Inventory) -> serde_json::Value {
    let mut v = serde_json::to_value(outcome).unwrap_or(serde_json::Value::Null);
    if let Outcome::Stopped {
        stop: StopReason::CanaryFailed { node } | StopReason::Blocked { node, .. },
    } = outcome
    {
        v["stop"]["node"] = serde_json::Value::from(inv.node(*node).name.clone());
    }
    v
}

mod millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}
