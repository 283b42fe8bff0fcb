//! What giving up a run writes: its unfinished nodes skipped (or held, when the run had
//! drained them), and the run finished as cancelled, which releases its leases. One
//! function for `drover runs cancel` and the API's abort, so both leave the same record.

use jiff::Timestamp;

use crate::store::{NodeState, RunDetail, RunStatus, Write};

pub struct Cancellation {
    /// To hand to `Store::finish_run_blocking`.
    pub writes: Vec<Write>,
    /// Nodes the run leaves drained, with why.
    pub left_drained: Vec<(String, String)>,
    pub skipped: Vec<String>,
}

pub fn cancellation(detail: &RunDetail, now: Timestamp) -> Cancellation {
    let id = &detail.run.id;
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
                "left drained: run {id} was cancelled while the node was {}; resume it in the scheduler once it is fine",
                n.state
            );
            left_drained.push((n.node.clone(), why.clone()));
            (NodeState::Held, why)
        } else if n.state == NodeState::Pending {
            skipped.push(n.node.clone());
            (NodeState::Skipped, format!("not started: run {id} was cancelled"))
        } else {
            skipped.push(n.node.clone());
            (
                NodeState::Skipped,
                format!(
                    "run {id} was cancelled while the node was {}; its last step may not have finished",
                    n.state
                ),
            )
        };
        writes.push(Write::Node {
            run: id.to_string(),
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
    writes.push(Write::RunFinished {
        id: id.to_string(),
        status: RunStatus::Cancelled,
        outcome: serde_json::json!({
            "outcome": "cancelled",
            "left_drained": drained_names,
            "skipped": skipped,
        }),
        at: now,
    });
    Cancellation {
        writes,
        left_drained,
        skipped,
    }
}
