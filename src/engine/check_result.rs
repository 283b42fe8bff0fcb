//! What a node's checks found.

use serde::{Deserialize, Serialize};

/// The change detector's verdict for one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Class {
    /// Nothing to do.
    Good,
    /// Only hot steps are needed: safe on a live node.
    Hot,
    /// A drain step is needed: the node must be drained first.
    Drain,
    /// A check failed or the node could not be reached.
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub class: Class,
    /// Indices of the workflow's steps this node needs, in order.
    pub needed: Vec<usize>,
    pub error: Option<String>,
    /// With `--diff`: how each file step the node needs would change its file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diffs: Vec<super::file_diff::FileDiff>,
    /// What the checks found would change (`ansible:` steps in check mode: `step
    /// \`x\`: task \`y\``), the inconsistencies `drover check` lists per node.
    pub changes: Vec<String>,
}

impl CheckResult {
    pub fn error(message: String) -> Self {
        CheckResult {
            class: Class::Error,
            needed: Vec::new(),
            error: Some(message),
            diffs: Vec::new(),
            changes: Vec::new(),
        }
    }
}

/// The verdict of one step's check on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepNeed {
    /// `when` is false: the step does not apply to this node.
    NotApplicable,
    /// The check exited 0.
    Done,
    /// The check exited 1.
    Needed,
    /// No check: runs whenever the node needs any checked step.
    Unchecked,
    /// A file step (without a check of its own) whose file on the node already has the
    /// content, mode and owner it would write: done, like a check that exited 0, but it
    /// runs (and reports `unchanged`) alongside the node's needed steps, as a file step
    /// always did, unless that alone would drain a node that needs no drain.
    Current,
}

/// Classifies a node from its steps' verdicts. `drain[i]` tells whether step `i` is
/// drain-tagged. Unchecked steps are helpers (an `apt-get update` before an upgrade):
/// they are needed when a checked step is, or when no step has a check at all.
/// Whether running workflow steps `steps` takes the node out of service (one of them is a
/// drain step): the one place the run, its record and its budgets ask.
pub fn needs_drain(wf: &crate::workflow::Workflow, steps: &[usize]) -> bool {
    steps.iter().any(|i| {
        wf.steps
            .get(*i)
            .is_some_and(|s| s.change == crate::workflow::Change::Drain)
    })
}

pub fn classify(needs: &[StepNeed], drain: &[bool]) -> CheckResult {
    let any_checked = needs
        .iter()
        .any(|n| matches!(n, StepNeed::Done | StepNeed::Needed | StepNeed::Current));
    let any_needed =
        needs.contains(&StepNeed::Needed) || (!any_checked && needs.contains(&StepNeed::Unchecked));
    let drains = |i: &usize| drain.get(*i).copied().unwrap_or(false);
    let mut needed: Vec<usize> = if any_needed {
        needs
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n, StepNeed::Needed | StepNeed::Unchecked))
            .map(|(i, _)| i)
            .collect()
    } else {
        Vec::new()
    };
    let class = if needed.iter().any(drains) {
        Class::Drain
    } else if needed.is_empty() {
        Class::Good
    } else {
        Class::Hot
    };
    if any_needed {
        let current = needs
            .iter()
            .enumerate()
            .filter(|(i, n)| **n == StepNeed::Current && (class == Class::Drain || !drains(i)))
            .map(|(i, _)| i);
        needed.extend(current);
        needed.sort_unstable();
    }
    CheckResult {
        class,
        needed,
        error: None,
        diffs: Vec::new(),
        changes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::StepNeed::*;
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(classify(&[Done, Done], &[false, true]).class, Class::Good);
        assert_eq!(classify(&[Needed, Done], &[false, true]).class, Class::Hot);
        assert_eq!(classify(&[Done, Needed], &[false, true]).class, Class::Drain);
        // A helper step rides along with the checked step that needs it.
        let r = classify(&[Unchecked, Needed, Done], &[false, false, false]);
        assert_eq!((r.class, r.needed), (Class::Hot, vec![0, 1]));
        // ... and does nothing when every checked step is done.
        assert_eq!(classify(&[Unchecked, Done], &[false, false]).class, Class::Good);
        // Without any check, every applicable step is needed.
        let r = classify(&[Unchecked, NotApplicable, Unchecked], &[false, false, true]);
        assert_eq!((r.class, r.needed), (Class::Drain, vec![0, 2]));
        assert_eq!(classify(&[NotApplicable], &[true]).class, Class::Good);
    }

    #[test]
    fn a_current_file_is_done_but_rides_along_without_draining_a_hot_node() {
        // Every file current, nothing else to do: GOOD, even without other checks.
        assert_eq!(classify(&[Current, Current], &[false, false]).class, Class::Good);
        assert_eq!(
            classify(&[Current, Unchecked], &[false, false]).class,
            Class::Good
        );
        // One drifted file makes the node HOT, and the current one runs along.
        let r = classify(&[Current, Needed, Unchecked], &[false, false, false]);
        assert_eq!((r.class, r.needed), (Class::Hot, vec![0, 1, 2]));
        // A drain-tagged current file does not drain a node that needs only hot steps...
        let r = classify(&[Current, Needed], &[true, false]);
        assert_eq!((r.class, r.needed), (Class::Hot, vec![1]));
        // ... and runs along on a node drained anyway.
        let r = classify(&[Current, Needed], &[true, true]);
        assert_eq!((r.class, r.needed), (Class::Drain, vec![0, 1]));
    }
}
