//! A plan's phases — the canary, then each bulk batch — numbered in one place, for the
//! rollout, the run record and messages alike.

use std::collections::HashMap;

use super::plan::Plan;
use crate::inventory::NodeId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase<'a> {
    /// 0 is the canary phase when there is one, then the batches in order.
    pub index: usize,
    /// "canary" or "batch 2/4".
    pub name: String,
    pub nodes: &'a [NodeId],
    pub is_canary: bool,
    /// The bulk batch's number, from 1 (0 for the canary).
    pub batch: usize,
    /// Failed nodes the phase tolerates; `None`: only the run's budget applies.
    pub failure_budget: Option<usize>,
}

impl Plan {
    /// The phases in order: the canary (if any), then the batches.
    pub fn phases(&self) -> Vec<Phase<'_>> {
        let mut out = Vec::with_capacity(self.batches.len() + 1);
        if !self.canary.is_empty() {
            out.push(Phase {
                index: 0,
                name: "canary".into(),
                nodes: &self.canary,
                is_canary: true,
                batch: 0,
                failure_budget: Some(0),
            });
        }
        for (i, b) in self.batches.iter().enumerate() {
            out.push(Phase {
                index: out.len(),
                name: format!("batch {}/{}", i + 1, self.batches.len()),
                nodes: b,
                is_canary: false,
                batch: i + 1,
                failure_budget: self.budgets.failures_per_batch.get(i).copied().flatten(),
            });
        }
        out
    }

    /// Each node's phase index.
    pub fn phase_of(&self) -> HashMap<NodeId, usize> {
        self.phases()
            .iter()
            .flat_map(|p| p.nodes.iter().map(move |n| (*n, p.index)))
            .collect()
    }
}
