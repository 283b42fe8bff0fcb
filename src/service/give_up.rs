//! Giving up a run nobody will continue: `drover runs cancel`, and a canary the daemon
//! stopped because a newer commit superseded it (a restarted daemon must not resume a
//! version that no longer matters). One computation for both, so a superseded run's
//! drained nodes are held for a human exactly as a cancelled run's are.

use crate::store::{NodeState, RunDetail, RunStatus, Write};

/// What giving a run up writes, and what it leaves.
#[derive(Debug)]
pub struct GiveUp {
    /// The nodes' final states and the run's end, for one `finish_run`.
    pub writes: Vec<Write>,
    /// Nodes the run left drained (held for a human), with why.
    pub left_drained: Vec<(String, String)>,
    /// Nodes not finished, now skipped.
    pub skipped: Vec<String>,
}

/// Why a run is given up, as its nodes' reasons and its outcome say it.
#[derive(Debug, Clone)]
pub enum GiveUpReason {
    /// `drover runs cancel`.
    Cancelled,
    /// A newer commit of the workflow replaced it during its canary.
    Superseded { by: String },
}

impl GiveUp {
    /// Finishes every node of `detail` that is not finished as it stands: drained ones
    /// held (left drained, with a reason naming the run), the rest skipped; the run ends
    /// `cancelled`, its outcome saying why.
    pub fn of(detail: &RunDetail, why: &GiveUpReason, now: jiff::Timestamp) -> GiveUp {
        let id = &detail.run.id;
        let because = match why {
            GiveUpReason::Cancelled => format!("run {id} was cancelled"),
            GiveUpReason::Superseded { by } => {
                format!("run {id} was superseded by commit {}", by.get(..12).unwrap_or(by))
            }
        };
        let mut writes = Vec::new();
        let mut left_drained = Vec::new();
        let mut skipped = Vec::new();
        for n in &detail.nodes {
            if n.state.is_final() {
                if n.drained_by_us && matches!(n.state, NodeState::Failed | NodeState::Held) {
                    left_drained.push((n.node.clone(), n.reason.clone().unwrap_or_default()));
                }
                continue;
            }
            let (state, reason) = if n.drained_by_us {
                let why = format!(
                    "left drained: {because} while the node was {}; resume it in the scheduler once it is fine",
                    n.state
                );
                left_drained.push((n.node.clone(), why.clone()));
                (NodeState::Held, why)
            } else if n.state == NodeState::Pending {
                skipped.push(n.node.clone());
                (NodeState::Skipped, format!("not started: {because}"))
            } else {
                skipped.push(n.node.clone());
                (
                    NodeState::Skipped,
                    format!(
                        "{because} while the node was {}; its last step may not have finished",
                        n.state
                    ),
                )
            };
            writes.push(Write::Node {
                run: id.clone(),
                node: n.node.clone(),
                state,
                attempt: n.attempt,
                step: n.step,
                drained_by_us: n.drained_by_us,
                boot_id: n.boot_id.clone(),
                reason: Some(reason),
                at: now,
            });
        }
        let drained_names: Vec<&str> = left_drained.iter().map(|(n, _)| n.as_str()).collect();
        let mut outcome = serde_json::json!({
            "outcome": "cancelled",
            "left_drained": drained_names,
            "skipped": skipped,
        });
        if let GiveUpReason::Superseded { by } = why {
            outcome["outcome"] = "superseded".into();
            outcome["by"] = by.clone().into();
        }
        writes.push(Write::RunFinished {
            id: id.clone(),
            status: RunStatus::Cancelled,
            outcome,
            at: now,
        });
        GiveUp {
            writes,
            left_drained,
            skipped,
        }
    }
}
