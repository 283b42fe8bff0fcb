//! A plan as the state store keeps it, by node name, so a resumed run does exactly the
//! plan it started with even if the inventory's order changed since.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::plan::{Budgets, Exclusion, Plan, PlanError, limits};
use crate::budget::Limit;
use crate::inventory::{Inventory, NodeId};
use crate::workflow::Workflow;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PlanRecord {
    workflow: String,
    version: u32,
    canary: Vec<String>,
    batches: Vec<Vec<String>>,
    soak_ms: u64,
    failures_per_batch: Vec<Option<usize>>,
    failures_per_run: usize,
    max_unavailable: usize,
    /// Selected but not in the run, for the `max_unavailable` limit's members.
    excluded: Vec<String>,
    unavailable_at_start: Vec<String>,
    drains: Vec<String>,
    window: Option<String>,
    /// Slurm partition budgets as planned (they come from `sinfo` at the start, which a
    /// resumed run does not read again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    partition_limits: Vec<StoredLimit>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredLimit {
    name: String,
    max: usize,
    members: Vec<String>,
    already_out: usize,
    size: usize,
}

impl Plan {
    /// `drains`: the nodes that need a drain step.
    pub fn to_record(&self, inv: &Inventory, drains: &HashSet<NodeId>) -> serde_json::Value {
        let names = |ids: &[NodeId]| ids.iter().map(|i| inv.node(*i).name.clone()).collect::<Vec<_>>();
        let mut drains: Vec<NodeId> = drains.iter().copied().collect();
        drains.sort();
        let excluded: Vec<NodeId> = self.excluded.iter().map(|(i, _)| *i).collect();
        let r = PlanRecord {
            workflow: self.workflow.clone(),
            version: self.version,
            canary: names(&self.canary),
            batches: self.batches.iter().map(|b| names(b)).collect(),
            soak_ms: u64::try_from(self.soak.as_millis()).unwrap_or(u64::MAX),
            failures_per_batch: self.budgets.failures_per_batch.clone(),
            failures_per_run: self.budgets.failures_per_run,
            max_unavailable: self.budgets.max_unavailable,
            excluded: names(&excluded),
            unavailable_at_start: names(&self.unavailable_at_start),
            drains: names(&drains),
            window: self.window.clone(),
            partition_limits: self
                .budgets
                .limits
                .iter()
                .filter(|l| l.name.starts_with("partition `"))
                .map(|l| StoredLimit {
                    name: l.name.clone(),
                    max: l.max,
                    members: names(&l.members),
                    already_out: l.already_out,
                    size: l.size,
                })
                .collect(),
        };
        serde_json::to_value(r).unwrap_or(serde_json::Value::Null)
    }

    /// The stored plan, against today's inventory: limits are recomputed from it (an
    /// HA group added since is honoured). Returns the plan and the nodes that drain.
    pub fn from_record(
        v: &serde_json::Value,
        inv: &Inventory,
        wf: &Workflow,
    ) -> Result<(Plan, HashSet<NodeId>), PlanError> {
        let r: PlanRecord = serde_json::from_value(v.clone())
            .map_err(|e| PlanError::Selector(format!("the stored plan cannot be read: {e}")))?;
        let id = |n: &String| {
            inv.find(n).ok_or_else(|| {
                PlanError::Selector(format!(
                    "node `{n}` of the stored plan is no longer in the inventory"
                ))
            })
        };
        let ids = |v: &[String]| v.iter().map(id).collect::<Result<Vec<NodeId>, PlanError>>();
        let canary = ids(&r.canary)?;
        let batches = r.batches.iter().map(|b| ids(b)).collect::<Result<Vec<_>, _>>()?;
        let mut nodes = canary.clone();
        nodes.extend(batches.iter().flatten().copied());
        // Names that left the inventory only shrink the limit's member list.
        let excluded: Vec<NodeId> = r.excluded.iter().filter_map(|n| inv.find(n)).collect();
        let unavailable_at_start: Vec<NodeId> = r
            .unavailable_at_start
            .iter()
            .filter_map(|n| inv.find(n))
            .collect();
        let drains: HashSet<NodeId> = r.drains.iter().filter_map(|n| inv.find(n)).collect();
        let mut selected = nodes.clone();
        selected.extend(excluded.iter().copied());
        selected.sort();
        let mut limits = limits(inv, wf, r.max_unavailable, &selected, &nodes, &|n| {
            drains.contains(n)
        })?;
        limits.extend(r.partition_limits.iter().map(|l| Limit {
            name: l.name.clone(),
            max: l.max,
            members: l.members.iter().filter_map(|n| inv.find(n)).collect(),
            already_out: l.already_out,
            size: l.size,
        }));
        let plan = Plan {
            workflow: r.workflow,
            version: r.version,
            nodes,
            excluded: excluded.into_iter().map(|i| (i, Exclusion::Excluded)).collect(),
            canary,
            soak: Duration::from_millis(r.soak_ms),
            batches,
            budgets: Budgets {
                failures_per_batch: r.failures_per_batch,
                failures_per_run: r.failures_per_run,
                max_unavailable: r.max_unavailable,
                limits,
            },
            window: r.window,
            unavailable_at_start,
            order: Vec::new(),
            // Maintenance is read when the run resumes, not replayed from the record.
            maintenance: Vec::new(),
        };
        Ok((plan, drains))
    }
}
