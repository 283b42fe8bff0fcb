//! The planned nodes a run did not work on, by why: what its verdict is made of.

use std::collections::HashMap;

use crate::inventory::NodeId;
use crate::plan::{Exclusion, Plan};

/// Planned nodes that the run did not work on, by why.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// Their checks found nothing to do.
    pub up_to_date: Vec<NodeId>,
    /// They need only steps that `--tags` did not select (drain steps, by default).
    pub other_steps: Vec<NodeId>,
    /// Whether drain steps are among what `--tags` left out for them.
    pub drain_unselected: bool,
    /// Their checks failed or they could not be reached: the run did not do all it was
    /// asked to.
    pub check_failed: Vec<NodeId>,
    /// Drained or down before the run (someone else's), left alone.
    pub drained_before: Vec<NodeId>,
    /// Left drained by an earlier run, with which run and why.
    pub held: Vec<(NodeId, String)>,
    /// Needed a drain that no disruption budget had room for.
    pub no_budget: Vec<NodeId>,
    /// Of the drained-before and held ones, those whose checks say they need the
    /// selected steps: work the run could not do.
    pub unavailable_needing: usize,
}

impl Skipped {
    pub(super) fn new(
        plan: &Plan,
        held: &HashMap<NodeId, String>,
        steps: &HashMap<NodeId, Vec<usize>>,
        wf_steps: &[crate::workflow::Step],
        selected: &[bool],
    ) -> Skipped {
        let of = |why: Exclusion| -> Vec<NodeId> {
            let mut v: Vec<NodeId> = plan
                .excluded
                .iter()
                .filter(|(_, e)| *e == why)
                .map(|(i, _)| *i)
                .collect();
            v.sort();
            v
        };
        let drained_before = of(Exclusion::AlreadyUnavailable);
        let held_ids = of(Exclusion::HeldByRun);
        let unavailable_needing = drained_before
            .iter()
            .chain(&held_ids)
            .filter(|i| steps.contains_key(i))
            .count();
        let drain_unselected = wf_steps
            .iter()
            .zip(selected)
            .any(|(s, sel)| !*sel && s.change == crate::workflow::Change::Drain);
        Skipped {
            up_to_date: of(Exclusion::UpToDate),
            other_steps: of(Exclusion::NeedsOtherSteps),
            drain_unselected,
            check_failed: of(Exclusion::CheckFailed),
            drained_before,
            held: held_ids
                .into_iter()
                .map(|i| (i, held.get(&i).cloned().unwrap_or_default()))
                .collect(),
            no_budget: of(Exclusion::NoBudget),
            unavailable_needing,
        }
    }
}
