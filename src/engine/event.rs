//! The one stream of events a run produces. The terminal reporter, `--json` output and
//! (later) the state store and notifications all consume it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::check_result::Class;
use super::hold::Hold;
use super::rollout::{Outcome, StopReason};
use crate::inventory::Inventory;

/// How a step ended on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// How a node's part in a run ended, as [`RunEvent::NodeFinished`] says it: a node the
/// run held for a human or skipped untouched did not fail, and is not shown as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeFinal {
    Succeeded,
    Failed,
    /// Left for a human (drained, or its drain timed out), with the reason in `error`.
    Held,
    /// Never changed: in maintenance, gone from the inventory, given up before its
    /// steps; the reason in `error`.
    Skipped,
}

/// Deserializable too: `drover runs watch` reads them back from the daemon's event
/// stream and shows them with the same reporter as a local run.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
        /// `state` is `succeeded` (kept for consumers that only ask "did it work").
        ok: bool,
        state: NodeFinal,
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

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        <u64 as serde::Deserialize>::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{ContentDiff, FileDiff, Hold};
    use crate::store::{Pause, PauseScope};

    /// Every kind of event reads back as it was written: `drover runs watch` shows what
    /// the daemon streams with the reporter of a local run, so nothing may be lost or
    /// refused on the way.
    #[test]
    fn every_event_reads_back_from_its_json() {
        let events = vec![
            RunEvent::CheckStarted { nodes: 3 },
            RunEvent::NodeChecked {
                node: "n1".into(),
                class: Class::Drain,
                needed: vec!["patch".into()],
                error: Some("boom".into()),
                diffs: vec![FileDiff {
                    step: "conf".into(),
                    dest: "/etc/x".into(),
                    content: ContentDiff::Text {
                        unified: "@@ -1 +1 @@\n-a\n+b\n".into(),
                        truncated: false,
                        node_bytes: Some(2),
                        new_bytes: 2,
                    },
                    mode: None,
                    owner: None,
                }],
            },
            RunEvent::PhaseStarted {
                phase: "canary".into(),
                nodes: 1,
            },
            RunEvent::NodeStarted {
                node: "n1".into(),
                attempt: 2,
            },
            RunEvent::StepFinished {
                node: "n1".into(),
                step: "patch".into(),
                status: StepStatus::Failed,
                duration: Duration::from_millis(1500),
                error: Some("exit 1".into()),
            },
            RunEvent::NodeDrain {
                node: "n1".into(),
                state: "drained".into(),
                detail: None,
            },
            RunEvent::NodeRetry {
                node: "n1".into(),
                attempt: 2,
                after: Duration::from_secs(3),
            },
            RunEvent::NodeFinished {
                node: "n1".into(),
                ok: false,
                state: NodeFinal::Failed,
                error: Some("exit 1".into()),
            },
            RunEvent::Soak {
                duration: Duration::from_secs(60),
            },
            RunEvent::Waiting {
                hold: Hold::Window {
                    name: "day".into(),
                    opens: Some("2026-12-07T07:00:00Z".parse().unwrap()),
                    tz: jiff::tz::TimeZone::UTC,
                },
                text: "window day, opens Mon 2026-12-07 07:00 UTC".into(),
            },
            RunEvent::Waiting {
                hold: Hold::Paused {
                    pause: Pause {
                        scope: PauseScope::Run("w-1".into()),
                        reason: Some("lunch".into()),
                        by: "alice".into(),
                        since: "2026-12-01T20:15:00Z".parse().unwrap(),
                    },
                },
                text: "paused".into(),
            },
            RunEvent::Continuing,
            RunEvent::NodeInMaintenance {
                node: "n2".into(),
                reason: "maintenance by bob".into(),
            },
            RunEvent::RunFinished {
                outcome: serde_json::json!({"outcome": "succeeded"}),
            },
        ];
        for ev in events {
            let json = serde_json::to_value(&ev).unwrap();
            let back: RunEvent = serde_json::from_value(json.clone())
                .unwrap_or_else(|e| panic!("{json} does not read back: {e}"));
            assert_eq!(serde_json::to_value(&back).unwrap(), json);
        }
    }
}
