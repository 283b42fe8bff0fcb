//! What a newly accepted commit does to the rollouts already under way: the daemon's
//! supersede rules, as a pure state machine (no I/O, no clock), so every rule is
//! tested without a node.
//!
//! The rules, per workflow (each workflow has at most one rollout at a time):
//! - nothing under way: **start** the new version;
//! - under way and still in its **canary** phase (or just starting): **supersede** it:
//!   stop it gracefully (nodes in flight finish their cycle) and, once it has ended,
//!   start the canary again at the new version — a canary proves one version, and the
//!   old one no longer matters;
//! - under way in **bulk** (its canary passed): **queue** the new version behind it; the
//!   old version finishes (half a fleet on each is worse than a finished rollout), then
//!   the new one rolls, canary first;
//! - **stopped by its failure budget**: it waits for a human (it is not retried on the
//!   next poll); a newer commit of that workflow, or an explicit resume, continues it;
//! - several versions arriving while one waits: only the newest is kept (the one it
//!   replaces is reported), since each commit's site is complete in itself.

use std::collections::BTreeMap;

use crate::source::RolloutRequest;

/// Where a rollout stands, as far as superseding goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutPhase {
    /// Asked to start; no run yet, or its canary phase.
    Canary,
    /// Its canary passed: batches are rolling.
    Bulk,
    /// Stopped by its failure budget: waits for a human or a newer commit.
    Stopped,
}

/// A rollout the daemon drives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveRollout {
    /// `None` between [`QueueAction::Start`] and [`RolloutQueue::started`].
    pub run: Option<String>,
    pub request: RolloutRequest,
    pub phase: RolloutPhase,
}

/// How a run of the daemon ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every node done (succeeded, or failed within budget), or superseded and stopped.
    Finished,
    /// Its failure budget stopped it.
    StoppedByBudget,
}

/// What the daemon is to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueAction {
    /// Start a rollout (canary first), then report its run id with `started`.
    Start(RolloutRequest),
    /// Stop `run` gracefully; `by` starts when it has ended.
    Supersede { run: Option<String>, by: RolloutRequest },
    /// `request` waits for `behind` (in bulk) to end.
    Queue {
        behind: Option<String>,
        request: RolloutRequest,
    },
    /// `dropped` was waiting and is replaced by a newer version; it never runs.
    Replaced {
        dropped: RolloutRequest,
        by: RolloutRequest,
    },
    /// Resume the stopped `run` (an operator asked).
    Resume { run: String },
}

#[derive(Debug, Default)]
pub struct RolloutQueue {
    active: BTreeMap<String, ActiveRollout>,
    /// What starts once the workflow's active rollout has ended.
    waiting: BTreeMap<String, RolloutRequest>,
}

impl RolloutQueue {
    pub fn new() -> RolloutQueue {
        RolloutQueue::default()
    }

    /// The workflows a newly accepted commit changed.
    pub fn commit(&mut self, requests: Vec<RolloutRequest>) -> Vec<QueueAction> {
        let mut actions = Vec::new();
        for r in requests {
            self.one(r, &mut actions);
        }
        actions
    }

    fn one(&mut self, r: RolloutRequest, actions: &mut Vec<QueueAction>) {
        let w = r.workflow.clone();
        let Some(active) = self.active.get(&w) else {
            self.start(r, actions);
            return;
        };
        if active.request.commit.sha == r.commit.sha
            || self.waiting.get(&w).is_some_and(|x| x.commit.sha == r.commit.sha)
        {
            return;
        }
        let run = active.run.clone();
        match active.phase {
            RolloutPhase::Stopped => {
                // The stopped run is over; the newer version continues from here.
                self.active.remove(&w);
                self.start(r, actions);
            }
            RolloutPhase::Canary | RolloutPhase::Bulk => {
                if let Some(dropped) = self.waiting.insert(w, r.clone()) {
                    // The stop (or the wait) is already under way.
                    actions.push(QueueAction::Replaced { dropped, by: r });
                } else if active.phase == RolloutPhase::Canary {
                    actions.push(QueueAction::Supersede { run, by: r });
                } else {
                    actions.push(QueueAction::Queue {
                        behind: run,
                        request: r,
                    });
                }
            }
        }
    }

    fn start(&mut self, r: RolloutRequest, actions: &mut Vec<QueueAction>) {
        self.active.insert(
            r.workflow.clone(),
            ActiveRollout {
                run: None,
                request: r.clone(),
                phase: RolloutPhase::Canary,
            },
        );
        actions.push(QueueAction::Start(r));
    }

    /// The run a [`QueueAction::Start`] of `workflow` began.
    pub fn started(&mut self, workflow: &str, run: &str) {
        if let Some(a) = self.active.get_mut(workflow) {
            a.run = Some(run.to_string());
        }
    }

    /// A run the daemon began other than for a commit (a converge pass, an API request,
    /// a run resumed after a restart) is the workflow's rollout now: newer commits
    /// supersede or queue behind it like any other. `request` names the version and
    /// the commit in force it runs.
    pub fn adopt(&mut self, run: &str, request: RolloutRequest) {
        self.active.insert(
            request.workflow.clone(),
            ActiveRollout {
                run: Some(run.to_string()),
                request,
                phase: RolloutPhase::Canary,
            },
        );
    }

    /// A [`QueueAction::Start`] could not begin (the service refused it): the
    /// workflow's rollout is over, and what waited for it starts.
    pub fn refused(&mut self, workflow: &str) -> Vec<QueueAction> {
        if self.active.get(workflow).is_none_or(|a| a.run.is_some()) {
            return Vec::new();
        }
        self.active.remove(workflow);
        let mut actions = Vec::new();
        if let Some(next) = self.waiting.remove(workflow) {
            self.start(next, &mut actions);
        }
        actions
    }

    /// The run's canary passed: a newer version now waits for it.
    pub fn canary_passed(&mut self, run: &str) {
        if let Some(a) = self.by_run(run) {
            a.phase = RolloutPhase::Bulk;
        }
    }

    /// The run ended: what waited for it starts; a run its failure budget stopped, with
    /// nothing newer waiting, stays stopped for a human.
    pub fn ended(&mut self, run: &str, end: RunEnd) -> Vec<QueueAction> {
        let Some(w) = self
            .active
            .iter()
            .find(|(_, a)| a.run.as_deref() == Some(run))
            .map(|(w, _)| w.clone())
        else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        match self.waiting.remove(&w) {
            Some(next) => {
                self.active.remove(&w);
                self.start(next, &mut actions);
            }
            None if end == RunEnd::StoppedByBudget => {
                if let Some(a) = self.active.get_mut(&w) {
                    a.phase = RolloutPhase::Stopped;
                }
            }
            None => {
                self.active.remove(&w);
            }
        }
        actions
    }

    /// An operator resumes a workflow's stopped rollout.
    pub fn resume(&mut self, workflow: &str) -> Option<QueueAction> {
        let a = self.active.get_mut(workflow)?;
        if a.phase != RolloutPhase::Stopped {
            return None;
        }
        a.phase = RolloutPhase::Bulk;
        Some(QueueAction::Resume { run: a.run.clone()? })
    }

    pub fn active(&self, workflow: &str) -> Option<&ActiveRollout> {
        self.active.get(workflow)
    }

    pub fn waiting(&self, workflow: &str) -> Option<&RolloutRequest> {
        self.waiting.get(workflow)
    }

    fn by_run(&mut self, run: &str) -> Option<&mut ActiveRollout> {
        self.active.values_mut().find(|a| a.run.as_deref() == Some(run))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::source::CommitInfo;

    fn req(w: &str, sha: &str) -> RolloutRequest {
        RolloutRequest {
            workflow: w.into(),
            version: 1,
            commit: CommitInfo {
                sha: sha.into(),
                author: "ada".into(),
                subject: sha.into(),
                time: jiff::Timestamp::UNIX_EPOCH,
            },
        }
    }

    fn started(q: &mut RolloutQueue, actions: &[QueueAction], run: &str) {
        for a in actions {
            if let QueueAction::Start(r) = a {
                q.started(&r.workflow, run);
            }
        }
    }

    #[test]
    fn a_new_version_during_canary_supersedes_it() {
        let mut q = RolloutQueue::new();
        let a = q.commit(vec![req("up", "c1")]);
        assert_eq!(a, [QueueAction::Start(req("up", "c1"))]);
        started(&mut q, &a, "r1");
        let a = q.commit(vec![req("up", "c2")]);
        assert_eq!(
            a,
            [QueueAction::Supersede {
                run: Some("r1".into()),
                by: req("up", "c2")
            }]
        );
        // The canary restarts at c2 once r1 has stopped.
        assert_eq!(
            q.ended("r1", RunEnd::Finished),
            [QueueAction::Start(req("up", "c2"))]
        );
        assert_eq!(q.active("up").unwrap().request.commit.sha, "c2");
    }

    #[test]
    fn an_adopted_converge_pass_is_superseded_and_a_refused_start_lets_the_next_one_go() {
        let mut q = RolloutQueue::new();
        q.adopt("conv", req("up", "c0"));
        assert_eq!(
            q.commit(vec![req("up", "c1")]),
            [QueueAction::Supersede {
                run: Some("conv".into()),
                by: req("up", "c1")
            }]
        );
        assert_eq!(
            q.ended("conv", RunEnd::Finished),
            [QueueAction::Start(req("up", "c1"))]
        );
        // c1 could not start (refused); c2 arrived meanwhile and starts instead.
        assert!(matches!(
            q.commit(vec![req("up", "c2")]).as_slice(),
            [QueueAction::Supersede { run: None, .. }]
        ));
        assert_eq!(q.refused("up"), [QueueAction::Start(req("up", "c2"))]);
        assert_eq!(q.refused("other"), []);
        q.started("up", "r2");
        assert_eq!(q.refused("up"), [], "a started run is not refused");
        assert_eq!(q.ended("r2", RunEnd::Finished), []);
        assert!(q.active("up").is_none());
    }

    #[test]
    fn a_new_version_during_bulk_queues_until_it_finishes() {
        let mut q = RolloutQueue::new();
        let a = q.commit(vec![req("up", "c1")]);
        started(&mut q, &a, "r1");
        q.canary_passed("r1");
        assert_eq!(
            q.commit(vec![req("up", "c2")]),
            [QueueAction::Queue {
                behind: Some("r1".into()),
                request: req("up", "c2")
            }]
        );
        // A third version replaces the waiting one; only the newest rolls.
        assert_eq!(
            q.commit(vec![req("up", "c3")]),
            [QueueAction::Replaced {
                dropped: req("up", "c2"),
                by: req("up", "c3")
            }]
        );
        assert_eq!(
            q.ended("r1", RunEnd::Finished),
            [QueueAction::Start(req("up", "c3"))]
        );
    }

    #[test]
    fn a_rollout_stopped_by_its_budget_waits_for_a_human_or_a_newer_commit() {
        let mut q = RolloutQueue::new();
        let a = q.commit(vec![req("up", "c1")]);
        started(&mut q, &a, "r1");
        q.canary_passed("r1");
        assert!(q.ended("r1", RunEnd::StoppedByBudget).is_empty());
        assert_eq!(q.active("up").unwrap().phase, RolloutPhase::Stopped);
        // The same commit again (a re-poll) does not retry it.
        assert!(q.commit(vec![req("up", "c1")]).is_empty());
        assert_eq!(q.resume("up"), Some(QueueAction::Resume { run: "r1".into() }));

        let mut q = RolloutQueue::new();
        let a = q.commit(vec![req("up", "c1")]);
        started(&mut q, &a, "r1");
        q.ended("r1", RunEnd::StoppedByBudget);
        assert_eq!(
            q.commit(vec![req("up", "c2")]),
            [QueueAction::Start(req("up", "c2"))]
        );
    }

    #[test]
    fn workflows_are_independent_and_a_finished_rollout_leaves_nothing_behind() {
        let mut q = RolloutQueue::new();
        let a = q.commit(vec![req("a", "c1"), req("b", "c1")]);
        assert_eq!(a.len(), 2);
        q.started("a", "ra");
        q.started("b", "rb");
        q.canary_passed("rb");
        let a = q.commit(vec![req("a", "c2"), req("b", "c2")]);
        assert!(matches!(a[0], QueueAction::Supersede { .. }));
        assert!(matches!(a[1], QueueAction::Queue { .. }));
        assert!(q.ended("unknown", RunEnd::Finished).is_empty());
        q.ended("ra", RunEnd::Finished);
        q.started("a", "ra2");
        assert!(q.ended("ra2", RunEnd::Finished).is_empty());
        assert!(q.active("a").is_none());
    }

    #[derive(Debug, Clone)]
    enum Input {
        Commit,
        CanaryPassed,
        Finished,
        Budget,
    }

    fn input() -> impl Strategy<Value = Input> {
        prop_oneof![
            Just(Input::Commit),
            Just(Input::CanaryPassed),
            Just(Input::Finished),
            Just(Input::Budget),
        ]
    }

    proptest! {
        /// One workflow, any interleaving: at most one run at a time; no version starts
        /// twice in a row; a version superseded or replaced never starts; and once
        /// everything has ended without a budget stop, the newest commit is the one that
        /// ran last.
        #[test]
        fn the_newest_commit_is_the_last_to_run(inputs in proptest::collection::vec(input(), 1..40)) {
            let mut q = RolloutQueue::new();
            let mut run_no = 0;
            let mut running: Option<(String, String)> = None; // (run, sha)
            let mut started_shas: Vec<String> = Vec::new();
            let mut newest: Option<String> = None;
            let mut commit_no = 0;
            let mut apply = |q: &mut RolloutQueue, actions: Vec<QueueAction>, running: &mut Option<(String, String)>, started_shas: &mut Vec<String>| {
                for a in actions {
                    if let QueueAction::Start(r) = a {
                        prop_assert!(running.is_none(), "two runs at once");
                        run_no += 1;
                        let id = format!("r{run_no}");
                        q.started(&r.workflow, &id);
                        *running = Some((id, r.commit.sha.clone()));
                        started_shas.push(r.commit.sha);
                    }
                }
                Ok(())
            };
            for i in inputs {
                match i {
                    Input::Commit => {
                        commit_no += 1;
                        let sha = format!("c{commit_no}");
                        newest = Some(sha.clone());
                        let a = q.commit(vec![req("w", &sha)]);
                        apply(&mut q, a, &mut running, &mut started_shas)?;
                    }
                    Input::CanaryPassed => {
                        if let Some((r, _)) = &running { q.canary_passed(r) }
                    }
                    Input::Finished | Input::Budget => {
                        if let Some((r, _)) = running.take() {
                            let end = if matches!(i, Input::Budget) { RunEnd::StoppedByBudget } else { RunEnd::Finished };
                            let a = q.ended(&r, end);
                            apply(&mut q, a, &mut running, &mut started_shas)?;
                        }
                    }
                }
            }
            // Wind down: finish whatever runs, until nothing is left.
            while let Some((r, _)) = running.take() {
                let a = q.ended(&r, RunEnd::Finished);
                apply(&mut q, a, &mut running, &mut started_shas)?;
            }
            let mut sorted = started_shas.clone();
            sorted.dedup();
            prop_assert_eq!(&sorted, &started_shas, "a version started twice in a row");
            if let Some(n) = newest {
                prop_assert_eq!(started_shas.last(), Some(&n));
            }
            prop_assert!(q.active("w").is_none_or(|a| a.phase == RolloutPhase::Stopped));
        }
    }
}
