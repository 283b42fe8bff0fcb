//! Which nodes a run touches, in which phase and batch, under which budgets — computed
//! without touching a node, so `drover plan` shows exactly what `drover run` will do.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::inventory::{Inventory, NodeId};
use crate::workflow::{CanarySelect, Workflow};

/// Why a node selected by the workflow is not in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// On the inventory's blacklist: never touched.
    Blacklisted,
    /// The inventory has a whitelist and the node is not on it.
    NotWhitelisted,
    /// Listed under the workflow's `targets.exclude`.
    Excluded,
    /// Left out by `--limit`.
    NotInLimit,
    /// Its checks say it already has the change.
    UpToDate,
    /// Its checks failed or it could not be reached; see the check report.
    CheckFailed,
    /// It needs only steps that `--tags` did not select (drain steps, by default).
    NeedsOtherSteps,
}

impl Exclusion {
    pub fn describe(self) -> &'static str {
        match self {
            Exclusion::Blacklisted => "blacklisted",
            Exclusion::NotWhitelisted => "not on the whitelist",
            Exclusion::Excluded => "excluded by the workflow",
            Exclusion::NotInLimit => "outside --limit",
            Exclusion::UpToDate => "already up to date",
            Exclusion::CheckFailed => "check failed",
            Exclusion::NeedsOtherSteps => "needs only steps outside --tags",
        }
    }
}

/// The failure budget, resolved to node counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Budgets {
    /// Failed nodes tolerated per bulk batch, index-aligned with `Plan::batches`; `None`
    /// means only the run budget applies. Canary nodes tolerate no failure.
    pub failures_per_batch: Vec<Option<usize>>,
    /// Failed nodes tolerated in the whole run; one more stops it.
    pub failures_per_run: usize,
    /// Nodes that may be unavailable at once (enforced for drain steps).
    pub max_unavailable: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub workflow: String,
    pub version: u32,
    /// Every node in the run, canary first, then the batches in order.
    pub nodes: Vec<NodeId>,
    pub excluded: Vec<(NodeId, Exclusion)>,
    pub canary: Vec<NodeId>,
    pub soak: Duration,
    pub batches: Vec<Vec<NodeId>>,
    pub budgets: Budgets,
    pub window: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Selector(String),
}

/// What to plan over, besides the workflow itself.
#[derive(Debug, Clone, Default)]
pub struct PlanInput {
    /// `--limit`: only these nodes.
    pub limit: Option<HashSet<NodeId>>,
    /// After a check: nodes that need work. Others become `UpToDate`/`CheckFailed`.
    pub needing: Option<HashSet<NodeId>>,
    pub failed_check: HashSet<NodeId>,
    /// After a check: nodes that need only steps `--tags` left out.
    pub other_steps: HashSet<NodeId>,
}

impl Plan {
    pub fn build(inv: &Inventory, wf: &Workflow, input: &PlanInput) -> Result<Plan, PlanError> {
        let select = |entries: &[String]| -> Result<Vec<NodeId>, PlanError> {
            let mut out = Vec::new();
            let mut seen = BTreeSet::new();
            for e in entries {
                let ids = inv.resolve(e).map_err(|p| PlanError::Selector(p.message))?;
                out.extend(ids.into_iter().filter(|i| seen.insert(*i)));
            }
            Ok(out)
        };
        let selected = select(&wf.targets)?;
        let excluded_by_wf: HashSet<NodeId> = select(&wf.exclude)?.into_iter().collect();
        let blacklist: HashSet<NodeId> = inv.blacklist().iter().copied().collect();
        let whitelist: Option<HashSet<NodeId>> = inv.whitelist().map(|w| w.iter().copied().collect());

        let mut targets = Vec::new();
        let mut excluded = Vec::new();
        // Inventory order, not selector order: plans are stable when a workflow's target
        // list is reordered.
        let mut selected_sorted = selected;
        selected_sorted.sort();
        for id in selected_sorted {
            let why = if blacklist.contains(&id) {
                Some(Exclusion::Blacklisted)
            } else if whitelist.as_ref().is_some_and(|w| !w.contains(&id)) {
                Some(Exclusion::NotWhitelisted)
            } else if excluded_by_wf.contains(&id) {
                Some(Exclusion::Excluded)
            } else if input.limit.as_ref().is_some_and(|l| !l.contains(&id)) {
                Some(Exclusion::NotInLimit)
            } else if input.failed_check.contains(&id) {
                Some(Exclusion::CheckFailed)
            } else if input.other_steps.contains(&id) {
                Some(Exclusion::NeedsOtherSteps)
            } else if input.needing.as_ref().is_some_and(|n| !n.contains(&id)) {
                Some(Exclusion::UpToDate)
            } else {
                None
            };
            match why {
                Some(w) => excluded.push((id, w)),
                None => targets.push(id),
            }
        }

        let s = &wf.strategy;
        let target_set: HashSet<NodeId> = targets.iter().copied().collect();
        let canary: Vec<NodeId> = if s.all_at_once {
            Vec::new()
        } else {
            match &wf.canary.select {
                CanarySelect::Inventory => inv
                    .canary()
                    .iter()
                    .copied()
                    .filter(|i| target_set.contains(i))
                    .collect(),
                CanarySelect::Nodes(sel) => {
                    let mut c: Vec<NodeId> = select(sel)?
                        .into_iter()
                        .filter(|i| target_set.contains(i))
                        .collect();
                    c.sort();
                    c
                }
                CanarySelect::Size(a) => {
                    let n = a.of_ceil(targets.len()).min(targets.len());
                    targets[..n].to_vec()
                }
            }
        };
        let canary_set: HashSet<NodeId> = canary.iter().copied().collect();
        let bulk: Vec<NodeId> = targets
            .iter()
            .copied()
            .filter(|i| !canary_set.contains(i))
            .collect();

        let mut batches = Vec::new();
        if s.all_at_once {
            if !bulk.is_empty() {
                batches.push(bulk.clone());
            }
        } else {
            let mut rest = &bulk[..];
            let mut i = 0;
            while !rest.is_empty() {
                let amount = s.batch[i.min(s.batch.len() - 1)];
                let size = amount.of_ceil(bulk.len()).clamp(1, rest.len());
                batches.push(rest[..size].to_vec());
                rest = &rest[size..];
                i += 1;
            }
        }

        let budgets = Budgets {
            failures_per_batch: batches
                .iter()
                .map(|b| s.failure_per_batch.map(|a| a.of_floor(b.len())))
                .collect(),
            failures_per_run: s.failure_per_run.of_floor(targets.len()),
            max_unavailable: s.max_unavailable.of_ceil(targets.len() + excluded.len()).max(1),
        };

        let mut nodes = canary.clone();
        nodes.extend(batches.iter().flatten().copied());
        Ok(Plan {
            workflow: wf.name.clone(),
            version: wf.version,
            nodes,
            excluded,
            canary,
            soak: if s.all_at_once {
                Duration::ZERO
            } else {
                wf.canary.soak
            },
            batches,
            budgets,
            window: wf.window.clone(),
        })
    }

    /// The plan as an operator reads it.
    pub fn render(&self, inv: &Inventory, window: Option<&str>) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "plan for {} v{}: {} nodes",
            self.workflow,
            self.version,
            self.nodes.len()
        );
        let mut reasons: Vec<Exclusion> = Vec::new();
        for (_, r) in &self.excluded {
            if !reasons.contains(r) {
                reasons.push(*r);
            }
        }
        for r in reasons {
            let ids: Vec<NodeId> = self
                .excluded
                .iter()
                .filter(|(_, x)| *x == r)
                .map(|(i, _)| *i)
                .collect();
            let _ = writeln!(
                o,
                "  skipped ({}): {} {}",
                r.describe(),
                ids.len(),
                inv.names(&ids)
            );
        }
        if self.canary.is_empty() {
            let _ = writeln!(o, "  canary: none");
        } else {
            let soak = if self.soak.is_zero() {
                "no soak".to_string()
            } else {
                format!("then soak {}", humantime::format_duration(self.soak))
            };
            let _ = writeln!(
                o,
                "  canary: {} {} ({soak}; any failure stops the run)",
                self.canary.len(),
                inv.names(&self.canary)
            );
        }
        for (i, b) in self.batches.iter().enumerate() {
            let budget = match self.budgets.failures_per_batch.get(i).copied().flatten() {
                Some(n) => format!("; tolerates {n} failed"),
                None => String::new(),
            };
            let _ = writeln!(o, "  batch {}: {} {}{budget}", i + 1, b.len(), inv.names(b));
        }
        let _ = writeln!(
            o,
            "  failure budget: {} failed node{} in the run; one more stops it",
            self.budgets.failures_per_run,
            if self.budgets.failures_per_run == 1 {
                ""
            } else {
                "s"
            }
        );
        let _ = writeln!(o, "  max unavailable: {}", self.budgets.max_unavailable);
        match (&self.window, window) {
            (Some(name), Some(desc)) => {
                let _ = writeln!(o, "  window: {name} ({desc})");
            }
            (Some(name), None) => {
                let _ = writeln!(o, "  window: {name}");
            }
            _ => {
                let _ = writeln!(o, "  window: none (any time)");
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::RawInventory;
    use crate::template::TemplateEngine;
    use crate::workflow::{RawWorkflow, WorkflowContext};
    use crate::yaml::Document;

    const INVENTORY: &str = "
nodes:
  n[01-20]: {}
  mgmt1: {}
groups:
  all: [\"n[01-20]\", mgmt1]
canary: [n02, n01]
blacklist: [mgmt1]
";

    fn setup(workflow: &str) -> (Inventory, Workflow) {
        let (doc, _) = Document::parse("inventory.yml", INVENTORY.into()).unwrap();
        let (raw, _): (RawInventory, _) = doc.decode().unwrap();
        let inv = Inventory::from_raw(&raw).unwrap();
        let (doc, _) = Document::parse("w.yml", workflow.into()).unwrap();
        let (raw, _): (RawWorkflow, _) = doc.decode().unwrap();
        let templates = TemplateEngine::new();
        let cx = WorkflowContext {
            inventory: Some(&inv),
            windows: vec![],
            templates: &templates,
            dir: std::path::Path::new("."),
            tree: &doc.root,
        };
        let wf = Workflow::from_raw(&raw, "w.yml", &cx).unwrap();
        (inv, wf)
    }

    fn wf(extra: &str) -> String {
        format!(
            "name: w\nversion: 1\ntargets: {{ nodes: [\"@all\"], exclude: [n20] }}\n{extra}\nsteps:\n  - name: s\n    run: \"true\"\n    change: hot\n"
        )
    }

    fn names(inv: &Inventory, ids: &[NodeId]) -> String {
        inv.names(ids)
    }

    #[test]
    fn exclusions_canary_and_batches() {
        let (inv, w) = setup(&wf(
            "strategy: { batch: [1, \"10%\", \"50%\"], failure_budget: { per_batch: \"50%\", per_run: \"10%\" } }",
        ));
        let limit: HashSet<NodeId> = inv.ids().filter(|i| inv.node(*i).name != "n19").collect();
        let p = Plan::build(
            &inv,
            &w,
            &PlanInput {
                limit: Some(limit),
                ..PlanInput::default()
            },
        )
        .unwrap();
        let why = |r: Exclusion| -> Vec<NodeId> {
            p.excluded
                .iter()
                .filter(|(_, x)| *x == r)
                .map(|(i, _)| *i)
                .collect()
        };
        assert_eq!(names(&inv, &why(Exclusion::Blacklisted)), "mgmt1");
        assert_eq!(names(&inv, &why(Exclusion::Excluded)), "n20");
        assert_eq!(names(&inv, &why(Exclusion::NotInLimit)), "n19");
        // The inventory's canary list among the targets, in inventory order.
        assert_eq!(names(&inv, &p.canary), "n[01-02]");
        // Bulk n03..n18 = 16 nodes: 1, then ceil(10% of 16) = 2, then ceil(50%) = 8, then the rest.
        let sizes: Vec<usize> = p.batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![1, 2, 8, 5]);
        assert_eq!(names(&inv, &p.batches[0]), "n03");
        // Budgets round down: 50% of a batch of 1 tolerates none; 10% of 18 nodes is 1.
        assert_eq!(
            p.budgets.failures_per_batch,
            vec![Some(0), Some(1), Some(4), Some(2)]
        );
        assert_eq!(p.budgets.failures_per_run, 1);
        // Canary first, then the batches, every node once.
        assert_eq!(p.nodes.len(), 18);
        assert_eq!(p.nodes[..2], p.canary[..]);
    }

    #[test]
    fn after_a_check_nodes_are_planned_by_what_they_need() {
        let (inv, w) = setup(&wf(""));
        let id = |n: &str| inv.find(n).unwrap();
        let needing: HashSet<NodeId> = ["n01", "n05", "n06"].iter().map(|n| id(n)).collect();
        let input = PlanInput {
            needing: Some(needing),
            failed_check: [id("n07")].into_iter().collect(),
            other_steps: [id("n08")].into_iter().collect(),
            ..PlanInput::default()
        };
        let p = Plan::build(&inv, &w, &input).unwrap();
        assert_eq!(names(&inv, &p.nodes), "n[01,05-06]");
        assert_eq!(
            names(&inv, &p.canary),
            "n01",
            "n02 needs nothing: it is not a canary"
        );
        let of = |r: Exclusion| p.excluded.iter().filter(|(_, x)| *x == r).count();
        assert_eq!(of(Exclusion::CheckFailed), 1);
        assert_eq!(of(Exclusion::NeedsOtherSteps), 1);
        assert_eq!(of(Exclusion::UpToDate), 14);
        assert!(
            p.render(&inv, None)
                .contains("skipped (needs only steps outside --tags): 1 n08")
        );
    }

    #[test]
    fn canary_by_size_and_all_at_once() {
        let (inv, w) = setup(&wf("canary: { size: \"10%\", soak: 5m }"));
        let p = Plan::build(&inv, &w, &PlanInput::default()).unwrap();
        assert_eq!(names(&inv, &p.canary), "n[01-02]", "ceil(10% of 19)");
        assert_eq!(p.soak, Duration::from_secs(300));
        let (inv, w) = setup(&wf("strategy: { all_at_once: true }"));
        let p = Plan::build(&inv, &w, &PlanInput::default()).unwrap();
        assert!(p.canary.is_empty());
        assert_eq!(p.batches.len(), 1);
        assert_eq!(p.batches[0].len(), 19);
        assert_eq!(p.soak, Duration::ZERO);
    }
}
