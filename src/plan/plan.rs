//! Which nodes a run touches, in which phase and batch, under which budgets — computed
//! without touching a node, so `drover plan` shows exactly what `drover run` will do.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::rounding::budget_share;
use crate::budget::{Disruption, Limit};
use crate::inventory::{Inventory, NodeId};
use crate::slurm::SlurmView;
use crate::workflow::{CanarySelect, NodeOrder, Workflow};

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
    /// It was drained or down before the run started (someone else's): it counts
    /// against the disruption budgets and is not touched.
    AlreadyUnavailable,
    /// It was found drained because an earlier drover run left it so (failed after its
    /// drain, or held): out of service like `AlreadyUnavailable`, but the operator must
    /// hear which run holds it, not that someone else drained it.
    HeldByRun,
    /// It needs a drain, but a disruption budget it belongs to is already used up by
    /// nodes that were down before the run (an HA partner, say).
    NoBudget,
    /// In maintenance (`drover nodes maintenance on`): automation is off for it, so no
    /// run touches it, not even to check it. It may well be down: it counts against the
    /// disruption budgets.
    Maintenance,
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
            Exclusion::AlreadyUnavailable => "drained or down before the run",
            Exclusion::HeldByRun => "held by an earlier run",
            Exclusion::NoBudget => "no room in a disruption budget",
            Exclusion::Maintenance => "in maintenance",
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
    /// Every disruption limit the run must hold: `max_unavailable` first, then HA
    /// groups, then per-group budgets.
    pub limits: Vec<Limit>,
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
    /// Nodes unavailable before the run (drained by someone else, unreachable, or with a
    /// failed check): they count against every limit they belong to.
    pub unavailable_at_start: Vec<NodeId>,
    /// Why each node in maintenance is (who set it, since when, the reason).
    pub maintenance: Vec<(NodeId, String)>,
    /// With `order: soonest_idle`: each node in the run, in its order, with why it goes
    /// there (`idle`, `1 running job, idle by ...`).
    pub order: Vec<(NodeId, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Selector(String),
    #[error(
        "HA group `{group}` allows {max} of its {members} members unavailable at once, and this run drains all of them: \
         it could leave none up\nhelp: lower the group's max_unavailable below {members}, or leave a member out of the run"
    )]
    HaGroupAllDown {
        group: String,
        members: usize,
        max: usize,
    },
}

/// `(vm, hypervisor)` for every node that runs on another.
pub fn hosted_pairs(inv: &Inventory) -> Vec<(NodeId, NodeId)> {
    inv.ids()
        .filter_map(|id| inv.node(id).hosted_on.map(|h| (id, h)))
        .collect()
}

/// The run's disruption limits. An HA group that the run could take down entirely is
/// refused here, before any node is touched.
pub(super) fn limits(
    inv: &Inventory,
    wf: &Workflow,
    max_unavailable: usize,
    selected: &[NodeId],
    targets: &[NodeId],
    drains: &dyn Fn(&NodeId) -> bool,
) -> Result<Vec<Limit>, PlanError> {
    let targeted: HashSet<NodeId> = targets.iter().copied().collect();
    let mut out = vec![Limit {
        name: "max_unavailable".into(),
        max: max_unavailable,
        members: selected.to_vec(),
        already_out: 0,
        size: 0,
    }];
    for g in inv.ha_groups() {
        let draining: Vec<NodeId> = g
            .members
            .iter()
            .copied()
            .filter(|m| targeted.contains(m) && drains(m))
            .collect();
        if draining.is_empty() {
            continue;
        }
        let max = g.max_unavailable as usize;
        if draining.len() == g.members.len() && max >= g.members.len() {
            return Err(PlanError::HaGroupAllDown {
                group: g.name.clone(),
                members: g.members.len(),
                max,
            });
        }
        out.push(Limit {
            name: format!("HA group `{}`", g.name),
            max,
            members: g.members.clone(),
            already_out: 0,
            size: 0,
        });
    }
    let per_group = &wf.strategy.max_unavailable_per_group;
    if !per_group.is_empty() {
        for (name, members) in inv.groups() {
            let Some(amount) = per_group.get(name).or_else(|| per_group.get("*")) else {
                continue;
            };
            if !members.iter().any(|m| targeted.contains(m)) {
                continue;
            }
            out.push(Limit {
                name: format!("group `{name}`"),
                max: budget_share(*amount, members.len()).0,
                members: members.clone(),
                already_out: 0,
                size: 0,
            });
        }
        for name in per_group.keys() {
            if name != "*" && !inv.groups().contains_key(name) {
                return Err(PlanError::Selector(format!(
                    "max_unavailable_per_group names group `{name}`, which the inventory does not define"
                )));
            }
        }
    }
    Ok(out)
}

/// Topology: a node's VMs go in the same phase as the node or an earlier one, so the
/// rollout can finish them before it drains their host. A VM planned later than its
/// host is moved forward into the host's phase.
fn hosted_first(inv: &Inventory, canary: &mut Vec<NodeId>, batches: &mut [Vec<NodeId>]) {
    let mut phase_of: HashMap<NodeId, usize> = canary.iter().map(|id| (*id, 0)).collect();
    for (i, b) in batches.iter().enumerate() {
        phase_of.extend(b.iter().map(|id| (*id, i + 1)));
    }
    // Moving a VM forward can make a VM of its own late (nested hosts): repeat until
    // nothing moves. Each pass is linear; nesting is shallow.
    let mut moved = true;
    while moved {
        moved = false;
        let mut late: Vec<(NodeId, usize)> = phase_of
            .iter()
            .filter_map(|(vm, p)| {
                let hp = *phase_of.get(&inv.node(*vm).hosted_on?)?;
                (hp < *p).then_some((*vm, hp))
            })
            .collect();
        late.sort();
        for (vm, to) in late {
            phase_of.insert(vm, to);
            moved = true;
        }
    }
    let mut phases: Vec<Vec<NodeId>> = vec![Vec::new(); batches.len() + 1];
    for id in canary.iter().chain(batches.iter().flatten()) {
        phases[phase_of[id]].push(*id);
    }
    let mut phases = phases.into_iter();
    *canary = phases.next().unwrap_or_default();
    for (b, p) in batches.iter_mut().zip(phases) {
        *b = p;
    }
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
    /// Nodes found drained before the run (and not by this run).
    pub already_unavailable: HashSet<NodeId>,
    /// Of those, the ones an earlier run left drained (and holds, in its record).
    pub held: HashSet<NodeId>,
    /// After a check: the nodes that need a drain step. `None`: any node may.
    pub drains: Option<HashSet<NodeId>>,
    /// Whether the run's selected steps include drain steps at all.
    pub drain_steps: bool,
    /// Nodes in maintenance, with why (as the state store says).
    pub maintenance: HashMap<NodeId, String>,
    /// With `scheduler: slurm`: the cluster when the run was planned (partition budgets,
    /// nodes Slurm has out of service, `order: soonest_idle`).
    pub slurm: Option<SlurmView>,
}

/// Budgets per Slurm partition: `amount` of each partition's nodes (all of them, as
/// Slurm knows them), with the ones Slurm has out of service outside the run counted
/// from the start. Only partitions with a target in them.
pub(super) fn partition_limits(
    inv: &Inventory,
    wf: &Workflow,
    view: &SlurmView,
    selected: &[NodeId],
    targets: &[NodeId],
) -> Vec<Limit> {
    let Some(amount) = wf.strategy.max_unavailable_per_partition else {
        return Vec::new();
    };
    let selected: HashSet<NodeId> = selected.iter().copied().collect();
    let targeted: HashSet<NodeId> = targets.iter().copied().collect();
    let mut out = Vec::new();
    for (name, nodes) in view.partitions() {
        let mut members = Vec::new();
        let mut already_out = 0;
        for n in &nodes {
            match inv.find(n).filter(|id| selected.contains(id)) {
                Some(id) => members.push(id),
                None if view.unavailable(n) => already_out += 1,
                None => {}
            }
        }
        if !members.iter().any(|m| targeted.contains(m)) {
            continue;
        }
        members.sort();
        out.push(Limit {
            name: format!("partition `{name}`"),
            max: budget_share(amount, nodes.len()).0,
            members,
            already_out,
            size: nodes.len(),
        });
    }
    out
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
            } else if input.maintenance.contains_key(&id) {
                Some(Exclusion::Maintenance)
            } else if input.limit.as_ref().is_some_and(|l| !l.contains(&id)) {
                Some(Exclusion::NotInLimit)
            } else if input.already_unavailable.contains(&id) && input.held.contains(&id) {
                Some(Exclusion::HeldByRun)
            } else if input.already_unavailable.contains(&id)
                || input
                    .slurm
                    .as_ref()
                    .is_some_and(|v| v.unavailable(&inv.node(id).name))
            {
                Some(Exclusion::AlreadyUnavailable)
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
        let (max_unavailable, _) = budget_share(s.max_unavailable, targets.len() + excluded.len());
        let unavailable_at_start: Vec<NodeId> = excluded
            .iter()
            .filter(|(_, why)| {
                matches!(
                    why,
                    Exclusion::AlreadyUnavailable
                        | Exclusion::HeldByRun
                        | Exclusion::CheckFailed
                        | Exclusion::Maintenance
                )
            })
            .map(|(i, _)| *i)
            .collect();
        let mut selected_all: Vec<NodeId> = targets.clone();
        selected_all.extend(excluded.iter().map(|(i, _)| *i));
        selected_all.sort();
        let drains = |id: &NodeId| input.drain_steps && input.drains.as_ref().is_none_or(|d| d.contains(id));
        let mut limits = limits(inv, wf, max_unavailable, &selected_all, &targets, &drains)?;
        if let Some(view) = &input.slurm {
            limits.extend(partition_limits(inv, wf, view, &selected_all, &targets));
        }
        // Nodes that could never go down, however long the run waited: their budget is
        // used up by nodes that were down before it started.
        let mut before = Disruption::new(limits.clone(), hosted_pairs(inv));
        for id in &unavailable_at_start {
            before.take(*id);
        }
        targets.retain(|id| {
            if drains(id) && before.check(*id).is_err() {
                excluded.push((*id, Exclusion::NoBudget));
                false
            } else {
                true
            }
        });
        let target_set: HashSet<NodeId> = targets.iter().copied().collect();
        // Least impact first: a stable sort, so ties keep inventory order.
        let idle = |id: &NodeId| input.slurm.as_ref().map(|v| v.idle_order(&inv.node(*id).name));
        let soonest_idle = s.order == NodeOrder::SoonestIdle && input.slurm.is_some();
        if soonest_idle {
            targets.sort_by_key(|id| idle(id));
        }
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
        let mut canary = canary;
        if soonest_idle {
            canary.sort_by_key(|id| idle(id));
        }
        hosted_first(inv, &mut canary, &mut batches);
        batches.retain(|b| !b.is_empty());

        let budgets = Budgets {
            failures_per_batch: batches
                .iter()
                .map(|b| s.failure_per_batch.map(|a| a.of_floor(b.len())))
                .collect(),
            failures_per_run: s.failure_per_run.of_floor(targets.len()),
            max_unavailable,
            limits,
        };

        let mut nodes = canary.clone();
        nodes.extend(batches.iter().flatten().copied());
        let mut maintenance: Vec<(NodeId, String)> = excluded
            .iter()
            .filter(|(_, why)| *why == Exclusion::Maintenance)
            .filter_map(|(id, _)| Some((*id, input.maintenance.get(id)?.clone())))
            .collect();
        maintenance.sort();
        let order = if soonest_idle {
            nodes
                .iter()
                .filter_map(|id| Some((*id, idle(id)?.describe())))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Plan {
            order,
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
            unavailable_at_start,
            maintenance,
        })
    }

    /// The plan as an operator reads it.
    pub fn render(&self, inv: &Inventory, window: Option<&str>) -> String {
        self.render_for(inv, window, None)
    }

    /// [`Plan::render`], and with the workflow, how each budget given as a percentage
    /// was rounded (`5% of 128 = 6.4 → 6`).
    pub fn render_for(&self, inv: &Inventory, window: Option<&str>, wf: Option<&Workflow>) -> String {
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
            if r == Exclusion::Maintenance {
                for (id, why) in &self.maintenance {
                    let _ = writeln!(o, "    {}: {why}", inv.node(*id).name);
                }
            }
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
        let down: HashSet<NodeId> = self.unavailable_at_start.iter().copied().collect();
        for l in &self.budgets.limits {
            let already = l.members.iter().filter(|m| down.contains(m)).count() + l.already_out;
            let name = if l.name == "max_unavailable" {
                "max unavailable"
            } else {
                &l.name
            };
            let note = if already > 0 {
                format!(" ({already} already down)")
            } else {
                String::new()
            };
            let amount = wf.and_then(|w| {
                let s = &w.strategy;
                if l.name == "max_unavailable" {
                    Some(s.max_unavailable)
                } else if l.name.starts_with("partition `") {
                    s.max_unavailable_per_partition
                } else {
                    let group = l.name.strip_prefix("group `")?.strip_suffix('`')?;
                    s.max_unavailable_per_group
                        .get(group)
                        .or_else(|| s.max_unavailable_per_group.get("*"))
                        .copied()
                }
            });
            let size = if l.size > 0 { l.size } else { l.members.len() };
            let how = amount
                .and_then(|a| budget_share(a, size).1)
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            let _ = writeln!(o, "  {name}: at most {} at once{how}{note}", l.max);
        }
        if !self.order.is_empty() {
            let _ = writeln!(
                o,
                "  order: soonest_idle (idle first, then soonest idle by time limit, then fewest jobs):"
            );
            for (id, why) in &self.order {
                let _ = writeln!(o, "    {}: {why}", inv.node(*id).name);
            }
        }
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
        setup_with(INVENTORY, workflow)
    }

    fn setup_with(inventory: &str, workflow: &str) -> (Inventory, Workflow) {
        let (doc, _) = Document::parse("inventory.yml", inventory.into()).unwrap();
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
            site_drain: true,
            site_slurm: false,
            file_roots: &[std::path::PathBuf::from("/")],
            keyring: &crate::vault::Keyring::default(),
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

    const TOPOLOGY: &str = "
nodes:
  hv1: {}
  vm1: { hosted_on: hv1 }
  vm2: { hosted_on: hv1 }
  db[1-2]: {}
  web[1-3]: {}
groups:
  all: [hv1, vm1, vm2, \"db[1-2]\", \"web[1-3]\"]
  rack1: [hv1, vm1, vm2, db1]
ha_groups:
  db: { members: [\"db[1-2]\"] }
  wide: { members: [\"web[1-3]\"], max_unavailable: 3 }
";

    fn drain_wf(targets: &str, extra: &str) -> String {
        format!(
            "name: w\nversion: 1\ntargets: {{ nodes: {targets} }}\ncanary: {{ size: 0 }}\n{extra}\nsteps:\n  - name: s\n    run: \"true\"\n    change: drain\n"
        )
    }

    fn drain_input() -> PlanInput {
        PlanInput {
            drain_steps: true,
            ..PlanInput::default()
        }
    }

    #[test]
    fn an_ha_group_the_run_could_take_down_entirely_is_refused() {
        let (inv, w) = setup_with(TOPOLOGY, &drain_wf("[\"web[1-3]\"]", ""));
        let e = Plan::build(&inv, &w, &drain_input()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "HA group `wide` allows 3 of its 3 members unavailable at once, and this run drains all of them: \
             it could leave none up\nhelp: lower the group's max_unavailable below 3, or leave a member out of the run"
        );
        // Only two of the three targeted: one stays up whatever happens.
        let (inv, w) = setup_with(TOPOLOGY, &drain_wf("[\"web[1-2]\"]", ""));
        let p = Plan::build(&inv, &w, &drain_input()).unwrap();
        assert!(p.budgets.limits.iter().any(|l| l.name == "HA group `wide`"));
        // Hot changes take nothing down.
        let mut hot = drain_input();
        hot.drain_steps = false;
        let (inv, w) = setup_with(TOPOLOGY, &drain_wf("[\"web[1-3]\"]", ""));
        assert!(Plan::build(&inv, &w, &hot).is_ok());
    }

    #[test]
    fn a_node_whose_ha_partner_is_already_down_is_not_planned() {
        let (inv, w) = setup_with(
            TOPOLOGY,
            &drain_wf("[\"@all\"]", "strategy: { max_unavailable: 3 }")
                .replace("nodes: [\"@all\"]", "nodes: [\"@all\"], exclude: [web3]"),
        );
        let mut input = drain_input();
        input.already_unavailable = [inv.find("db2").unwrap()].into_iter().collect();
        let p = Plan::build(&inv, &w, &input).unwrap();
        let why = |n: &str| {
            p.excluded
                .iter()
                .find(|(i, _)| *i == inv.find(n).unwrap())
                .map(|(_, w)| *w)
        };
        assert_eq!(why("db2"), Some(Exclusion::AlreadyUnavailable));
        assert_eq!(why("db1"), Some(Exclusion::NoBudget));
        assert_eq!(why("web1"), None);
        let text = p.render(&inv, None);
        assert!(
            text.contains("HA group `db`: at most 1 at once (1 already down)"),
            "{text}"
        );
        assert!(
            text.contains("skipped (no room in a disruption budget): 2 db1,hv1"),
            "{text}"
        );
    }

    #[test]
    fn vms_are_planned_no_later_than_their_hypervisor() {
        // Batches of 1 in inventory order would put hv1 before its VMs.
        let (inv, w) = setup_with(
            TOPOLOGY,
            &drain_wf(
                "[hv1, vm1, vm2, web1]",
                "strategy: { batch: 1, max_unavailable: 3 }",
            ),
        );
        let p = Plan::build(&inv, &w, &drain_input()).unwrap();
        assert_eq!(names(&inv, &p.batches[0]), "hv1,vm[1-2]", "{:?}", p.batches);
        assert_eq!(names(&inv, &p.batches[1]), "web1");
        assert_eq!(p.batches.len(), 2, "emptied batches are dropped");
        assert_eq!(p.budgets.failures_per_batch.len(), 2);
    }

    #[test]
    fn per_group_budgets_resolve_against_the_group_size() {
        let (inv, w) = setup_with(
            TOPOLOGY,
            &drain_wf(
                "[\"@all\"]",
                "strategy: { max_unavailable_per_group: { rack1: \"50%\", \"*\": 1 } }",
            )
            .replace("nodes: [\"@all\"]", "nodes: [\"@all\"], exclude: [web3]"),
        );
        let mut input = drain_input();
        input.drains = Some(
            inv.ids()
                .filter(|i| inv.node(*i).name.starts_with("web"))
                .collect(),
        );
        let e = Plan::build(&inv, &w, &input);
        let p = e.unwrap();
        let of = |n: &str| p.budgets.limits.iter().find(|l| l.name == n).map(|l| l.max);
        assert_eq!(of("group `rack1`"), Some(2));
        assert_eq!(of("group `all`"), Some(1));
        assert_eq!(of("HA group `db`"), None, "no db node drains in this run");
    }
}
