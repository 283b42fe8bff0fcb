//! The rollout's decisions — which node starts next, whether to retry, when to soak,
//! when to stop — as a pure state machine. The async runner only carries out its
//! [`Action`]s and feeds it [`Input`]s, so every rule here is tested without SSH.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde::Serialize;

use crate::inventory::NodeId;
use crate::plan::Plan;
use crate::workflow::RetryPolicy;

/// Why a run stopped early. The run is left for a human: no new node starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum StopReason {
    /// A canary failed: the bulk is never touched.
    CanaryFailed { node: NodeId },
    /// More nodes failed in one batch than its budget allows.
    BatchBudget {
        batch: usize,
        failed: usize,
        budget: usize,
    },
    /// More nodes failed in the run than its budget allows.
    RunBudget { failed: usize, budget: usize },
    /// The operator interrupted the run.
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// Every node in the plan succeeded.
    Succeeded,
    /// All nodes were attempted; some failed within the budgets.
    CompletedWithFailures {
        failed: usize,
    },
    Stopped {
        stop: StopReason,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A node finished all its steps.
    Succeeded(NodeId),
    /// A node's step failed (this attempt).
    Failed {
        node: NodeId,
        step: usize,
    },
    /// A retry's delay is over.
    RetryDue(NodeId),
    SoakOver,
    Interrupt,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A phase begins: 0 is the canary phase (if any), then the batches.
    PhaseStarted {
        phase: usize,
        name: String,
        nodes: usize,
    },
    /// Run a node's needed steps from `from_step` (an index into its needed steps).
    Start {
        node: NodeId,
        from_step: usize,
        attempt: u32,
    },
    RetryAfter {
        node: NodeId,
        after: Duration,
        attempt: u32,
    },
    /// The node failed for good (retries exhausted, or stopped before a retry).
    NodeFailed {
        node: NodeId,
    },
    Soak(Duration),
    Finished(Outcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeState {
    Pending,
    Running,
    RetryWait,
    Succeeded,
    Failed,
}

struct Phase {
    name: String,
    nodes: Vec<NodeId>,
    is_canary: bool,
    /// None: only the run budget.
    budget: Option<usize>,
}

pub struct Rollout {
    phases: Vec<Phase>,
    phase: usize,
    queue: VecDeque<NodeId>,
    states: HashMap<NodeId, NodeState>,
    /// Failures of the current attempt chain per node, and the step each stands at.
    attempts: HashMap<NodeId, (u32, usize)>,
    failed_in_phase: usize,
    failed_total: usize,
    run_budget: usize,
    in_flight: usize,
    max_in_flight: usize,
    soak: Duration,
    soaking: bool,
    retry: RetryPolicy,
    /// Retries allowed per step (`None`: the strategy's count).
    step_retries: Box<dyn Fn(NodeId, usize) -> Option<u32> + Send>,
    stopping: Option<StopReason>,
    finished: bool,
}

impl Rollout {
    /// `max_in_flight` bounds the nodes worked on at once (the `forks` setting).
    pub fn new(
        plan: &Plan,
        retry: RetryPolicy,
        max_in_flight: usize,
        step_retries: Box<dyn Fn(NodeId, usize) -> Option<u32> + Send>,
    ) -> Rollout {
        let mut phases = Vec::new();
        if !plan.canary.is_empty() {
            phases.push(Phase {
                name: "canary".into(),
                nodes: plan.canary.clone(),
                is_canary: true,
                budget: Some(0),
            });
        }
        for (i, b) in plan.batches.iter().enumerate() {
            phases.push(Phase {
                name: format!("batch {}/{}", i + 1, plan.batches.len()),
                nodes: b.clone(),
                is_canary: false,
                budget: plan.budgets.failures_per_batch.get(i).copied().flatten(),
            });
        }
        let states = plan.nodes.iter().map(|n| (*n, NodeState::Pending)).collect();
        Rollout {
            phases,
            phase: 0,
            queue: VecDeque::new(),
            states,
            attempts: HashMap::new(),
            failed_in_phase: 0,
            failed_total: 0,
            run_budget: plan.budgets.failures_per_run,
            in_flight: 0,
            max_in_flight: max_in_flight.max(1),
            soak: plan.soak,
            soaking: false,
            retry,
            step_retries,
            stopping: None,
            finished: false,
        }
    }

    pub fn failed(&self) -> usize {
        self.failed_total
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The first actions of the run.
    pub fn start(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.enter_phase(0, &mut out);
        out
    }

    pub fn handle(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        match input {
            Input::Succeeded(node) => {
                if self.states.get(&node) == Some(&NodeState::Running) {
                    self.in_flight -= 1;
                    self.states.insert(node, NodeState::Succeeded);
                }
            }
            Input::Failed { node, step } => {
                if self.states.get(&node) != Some(&NodeState::Running) {
                    return out;
                }
                self.in_flight -= 1;
                let failures = self
                    .attempts
                    .get(&node)
                    .map_or(0, |a| if a.1 == step { a.0 } else { 0 })
                    + 1;
                self.attempts.insert(node, (failures, step));
                let allowed = (self.step_retries)(node, step).unwrap_or(self.retry.count);
                if failures <= allowed && self.stopping.is_none() {
                    self.states.insert(node, NodeState::RetryWait);
                    out.push(Action::RetryAfter {
                        node,
                        after: self.retry.delay_before(failures),
                        attempt: failures + 1,
                    });
                } else {
                    self.fail(node, &mut out);
                }
            }
            Input::RetryDue(node) => {
                if self.states.get(&node) != Some(&NodeState::RetryWait) {
                    return out;
                }
                if self.stopping.is_some() {
                    self.states.insert(node, NodeState::Failed);
                    self.failed_total += 1;
                    out.push(Action::NodeFailed { node });
                } else {
                    let (failures, step) = self.attempts.get(&node).copied().unwrap_or((0, 0));
                    self.states.insert(node, NodeState::Running);
                    self.in_flight += 1;
                    out.push(Action::Start {
                        node,
                        from_step: step,
                        attempt: failures + 1,
                    });
                }
            }
            Input::SoakOver => {
                if self.soaking {
                    self.soaking = false;
                    let next = self.phase + 1;
                    self.enter_phase(next, &mut out);
                    return out;
                }
            }
            Input::Interrupt => {
                if self.stopping.is_none() {
                    self.stopping = Some(StopReason::Interrupted);
                }
                self.queue.clear();
                self.fail_retry_waits(&mut out);
                if self.soaking {
                    self.soaking = false;
                }
            }
        }
        self.fill(&mut out);
        self.maybe_advance(&mut out);
        out
    }

    fn fail(&mut self, node: NodeId, out: &mut Vec<Action>) {
        self.states.insert(node, NodeState::Failed);
        self.failed_in_phase += 1;
        self.failed_total += 1;
        out.push(Action::NodeFailed { node });
        if self.stopping.is_some() {
            return;
        }
        let phase = &self.phases[self.phase];
        let batch_no = if self.phases.first().is_some_and(|p| p.is_canary) {
            self.phase
        } else {
            self.phase + 1
        };
        self.stopping = if phase.is_canary {
            Some(StopReason::CanaryFailed { node })
        } else if phase.budget.is_some_and(|b| self.failed_in_phase > b) {
            Some(StopReason::BatchBudget {
                batch: batch_no,
                failed: self.failed_in_phase,
                budget: phase.budget.unwrap_or(0),
            })
        } else if self.failed_total > self.run_budget {
            Some(StopReason::RunBudget {
                failed: self.failed_total,
                budget: self.run_budget,
            })
        } else {
            None
        };
        if self.stopping.is_some() {
            self.queue.clear();
            self.fail_retry_waits(out);
        }
    }

    /// Once the run stops, nodes waiting for a retry will not get it: they fail now
    /// rather than when their timer (possibly minutes away) runs out.
    fn fail_retry_waits(&mut self, out: &mut Vec<Action>) {
        let mut waiting: Vec<NodeId> = self
            .states
            .iter()
            .filter(|(_, s)| **s == NodeState::RetryWait)
            .map(|(n, _)| *n)
            .collect();
        waiting.sort();
        for node in waiting {
            self.states.insert(node, NodeState::Failed);
            self.failed_total += 1;
            out.push(Action::NodeFailed { node });
        }
    }

    fn enter_phase(&mut self, phase: usize, out: &mut Vec<Action>) {
        self.phase = phase;
        self.failed_in_phase = 0;
        match self.phases.get(phase) {
            None => self.finish(out),
            Some(p) => {
                out.push(Action::PhaseStarted {
                    phase,
                    name: p.name.clone(),
                    nodes: p.nodes.len(),
                });
                self.queue = p.nodes.iter().copied().collect();
                self.fill(out);
            }
        }
    }

    /// Starts queued nodes up to the concurrency limit.
    fn fill(&mut self, out: &mut Vec<Action>) {
        if self.stopping.is_some() || self.soaking {
            return;
        }
        while self.in_flight < self.max_in_flight {
            let Some(node) = self.queue.pop_front() else { break };
            self.states.insert(node, NodeState::Running);
            self.in_flight += 1;
            out.push(Action::Start {
                node,
                from_step: 0,
                attempt: 1,
            });
        }
    }

    fn maybe_advance(&mut self, out: &mut Vec<Action>) {
        if self.finished || self.soaking {
            return;
        }
        let Some(p) = self.phases.get(self.phase) else {
            self.finish(out);
            return;
        };
        let busy = p.nodes.iter().any(|n| {
            matches!(
                self.states.get(n),
                Some(NodeState::Running | NodeState::RetryWait)
            ) || (self.stopping.is_none() && self.states.get(n) == Some(&NodeState::Pending))
        });
        if busy {
            return;
        }
        if self.stopping.is_some() {
            self.finish(out);
        } else if p.is_canary && !self.soak.is_zero() && self.phase + 1 < self.phases.len() {
            self.soaking = true;
            out.push(Action::Soak(self.soak));
        } else {
            let next = self.phase + 1;
            self.enter_phase(next, out);
        }
    }

    fn finish(&mut self, out: &mut Vec<Action>) {
        if self.finished {
            return;
        }
        self.finished = true;
        let outcome = match &self.stopping {
            Some(s) => Outcome::Stopped { stop: s.clone() },
            None if self.failed_total > 0 => Outcome::CompletedWithFailures {
                failed: self.failed_total,
            },
            None => Outcome::Succeeded,
        };
        out.push(Action::Finished(outcome));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Budgets;

    fn plan(
        canary: &[usize],
        batches: &[&[usize]],
        per_batch: Option<usize>,
        per_run: usize,
        soak: u64,
    ) -> Plan {
        let ids = |v: &[usize]| v.iter().map(|i| NodeId(*i)).collect::<Vec<_>>();
        let canary = ids(canary);
        let batches: Vec<Vec<NodeId>> = batches.iter().map(|b| ids(b)).collect();
        let mut nodes = canary.clone();
        nodes.extend(batches.iter().flatten());
        Plan {
            workflow: "w".into(),
            version: 1,
            nodes,
            excluded: vec![],
            canary,
            soak: Duration::from_secs(soak),
            budgets: Budgets {
                failures_per_batch: batches.iter().map(|_| per_batch).collect(),
                failures_per_run: per_run,
                max_unavailable: 1,
                limits: vec![],
            },
            batches,
            window: None,
            unavailable_at_start: vec![],
        }
    }

    fn no_retry() -> RetryPolicy {
        RetryPolicy {
            count: 0,
            delay: Duration::from_secs(1),
            backoff: 2.0,
            max_delay: Duration::from_secs(60),
        }
    }

    fn rollout(p: &Plan, retry: RetryPolicy, forks: usize) -> Rollout {
        Rollout::new(p, retry, forks, Box::new(|_, _| None))
    }

    fn starts(actions: &[Action]) -> Vec<usize> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Start { node, .. } => Some(node.0),
                _ => None,
            })
            .collect()
    }

    fn finished(actions: &[Action]) -> Option<Outcome> {
        actions.iter().find_map(|a| match a {
            Action::Finished(o) => Some(o.clone()),
            _ => None,
        })
    }

    #[test]
    fn canary_first_then_soak_then_batches_in_order() {
        let p = plan(&[0], &[&[1, 2], &[3]], None, 0, 60);
        let mut r = rollout(&p, no_retry(), 10);
        let a = r.start();
        assert_eq!(starts(&a), vec![0]);
        let a = r.handle(Input::Succeeded(NodeId(0)));
        assert_eq!(a, vec![Action::Soak(Duration::from_secs(60))]);
        let a = r.handle(Input::SoakOver);
        assert_eq!(starts(&a), vec![1, 2]);
        assert!(
            starts(&r.handle(Input::Succeeded(NodeId(1)))).is_empty(),
            "batch 2 waits for batch 1"
        );
        assert_eq!(starts(&r.handle(Input::Succeeded(NodeId(2)))), vec![3]);
        assert_eq!(
            finished(&r.handle(Input::Succeeded(NodeId(3)))),
            Some(Outcome::Succeeded)
        );
    }

    #[test]
    fn a_failed_canary_stops_before_any_bulk_node() {
        let p = plan(&[0, 1], &[&[2, 3]], Some(5), 5, 0);
        let mut r = rollout(&p, no_retry(), 10);
        assert_eq!(starts(&r.start()), vec![0, 1]);
        let a = r.handle(Input::Failed {
            node: NodeId(0),
            step: 0,
        });
        assert!(starts(&a).is_empty());
        assert!(finished(&a).is_none(), "the other canary is still running");
        let a = r.handle(Input::Succeeded(NodeId(1)));
        assert_eq!(
            finished(&a),
            Some(Outcome::Stopped {
                stop: StopReason::CanaryFailed { node: NodeId(0) }
            })
        );
        assert!(starts(&a).is_empty());
    }

    #[test]
    fn run_budget_exactly_at_the_limit_continues_one_more_stops() {
        // Budget 2: the 2nd failure is tolerated, the 3rd stops the run.
        let p = plan(&[], &[&[0, 1, 2], &[3, 4, 5], &[6]], None, 2, 0);
        let mut r = rollout(&p, no_retry(), 10);
        r.start();
        r.handle(Input::Failed {
            node: NodeId(0),
            step: 0,
        });
        r.handle(Input::Succeeded(NodeId(1)));
        let a = r.handle(Input::Failed {
            node: NodeId(2),
            step: 0,
        });
        assert_eq!(
            starts(&a),
            vec![3, 4, 5],
            "two failures = the budget: next batch starts"
        );
        let a = r.handle(Input::Failed {
            node: NodeId(3),
            step: 0,
        });
        assert!(starts(&a).is_empty());
        r.handle(Input::Succeeded(NodeId(4)));
        let a = r.handle(Input::Succeeded(NodeId(5)));
        assert_eq!(
            finished(&a),
            Some(Outcome::Stopped {
                stop: StopReason::RunBudget { failed: 3, budget: 2 }
            })
        );
    }

    #[test]
    fn batch_budget_boundaries() {
        let p = plan(&[], &[&[0, 1, 2], &[3]], Some(1), 10, 0);
        let mut r = rollout(&p, no_retry(), 10);
        r.start();
        r.handle(Input::Failed {
            node: NodeId(0),
            step: 0,
        });
        r.handle(Input::Failed {
            node: NodeId(1),
            step: 0,
        });
        let a = r.handle(Input::Succeeded(NodeId(2)));
        assert_eq!(
            finished(&a),
            Some(Outcome::Stopped {
                stop: StopReason::BatchBudget {
                    batch: 1,
                    failed: 2,
                    budget: 1
                }
            })
        );
        // One failure in the batch is within the budget.
        let mut r = rollout(&p, no_retry(), 10);
        r.start();
        r.handle(Input::Failed {
            node: NodeId(0),
            step: 0,
        });
        r.handle(Input::Succeeded(NodeId(1)));
        assert_eq!(starts(&r.handle(Input::Succeeded(NodeId(2)))), vec![3]);
        assert_eq!(
            finished(&r.handle(Input::Succeeded(NodeId(3)))),
            Some(Outcome::CompletedWithFailures { failed: 1 })
        );
    }

    #[test]
    fn retries_with_backoff_then_success_resume_at_the_failed_step() {
        let p = plan(&[], &[&[0]], None, 0, 0);
        let retry = RetryPolicy {
            count: 2,
            delay: Duration::from_secs(10),
            backoff: 3.0,
            max_delay: Duration::from_secs(60),
        };
        let mut r = rollout(&p, retry, 10);
        r.start();
        let a = r.handle(Input::Failed {
            node: NodeId(0),
            step: 2,
        });
        assert_eq!(
            a,
            vec![Action::RetryAfter {
                node: NodeId(0),
                after: Duration::from_secs(10),
                attempt: 2
            }]
        );
        assert_eq!(
            r.handle(Input::RetryDue(NodeId(0))),
            vec![Action::Start {
                node: NodeId(0),
                from_step: 2,
                attempt: 2
            }]
        );
        let a = r.handle(Input::Failed {
            node: NodeId(0),
            step: 2,
        });
        assert_eq!(
            a,
            vec![Action::RetryAfter {
                node: NodeId(0),
                after: Duration::from_secs(30),
                attempt: 3
            }]
        );
        r.handle(Input::RetryDue(NodeId(0)));
        assert_eq!(
            finished(&r.handle(Input::Succeeded(NodeId(0)))),
            Some(Outcome::Succeeded)
        );
    }

    #[test]
    fn retries_exhausted_fail_the_node() {
        let p = plan(&[], &[&[0]], None, 0, 0);
        let retry = RetryPolicy {
            count: 1,
            ..no_retry()
        };
        let mut r = rollout(&p, retry, 10);
        r.start();
        r.handle(Input::Failed {
            node: NodeId(0),
            step: 0,
        });
        r.handle(Input::RetryDue(NodeId(0)));
        let a = r.handle(Input::Failed {
            node: NodeId(0),
            step: 0,
        });
        assert!(a.contains(&Action::NodeFailed { node: NodeId(0) }));
        assert_eq!(
            finished(&a),
            Some(Outcome::Stopped {
                stop: StopReason::RunBudget { failed: 1, budget: 0 }
            })
        );
    }

    #[test]
    fn concurrency_is_bounded_by_forks() {
        let p = plan(&[], &[&[0, 1, 2, 3, 4]], None, 0, 0);
        let mut r = rollout(&p, no_retry(), 2);
        assert_eq!(starts(&r.start()), vec![0, 1]);
        assert_eq!(starts(&r.handle(Input::Succeeded(NodeId(0)))), vec![2]);
        assert_eq!(starts(&r.handle(Input::Succeeded(NodeId(1)))), vec![3]);
    }

    #[test]
    fn interrupt_starts_nothing_new_and_lets_in_flight_finish() {
        let p = plan(&[], &[&[0, 1, 2], &[3]], None, 0, 0);
        let mut r = rollout(&p, no_retry(), 2);
        r.start();
        let a = r.handle(Input::Interrupt);
        assert!(a.is_empty());
        assert!(starts(&r.handle(Input::Succeeded(NodeId(0)))).is_empty());
        let a = r.handle(Input::Succeeded(NodeId(1)));
        assert_eq!(
            finished(&a),
            Some(Outcome::Stopped {
                stop: StopReason::Interrupted
            })
        );
    }

    #[test]
    fn a_stop_fails_nodes_waiting_for_a_retry_instead_of_retrying() {
        let p = plan(&[], &[&[0, 1]], None, 0, 0);
        let retry = RetryPolicy {
            count: 3,
            ..no_retry()
        };
        let mut r = rollout(&p, retry, 10);
        r.start();
        r.handle(Input::Failed {
            node: NodeId(0),
            step: 0,
        });
        // At once: waiting out a retry delay (minutes, with backoff) for a node that
        // will not be retried would only keep the operator waiting.
        let a = r.handle(Input::Interrupt);
        assert_eq!(a, vec![Action::NodeFailed { node: NodeId(0) }]);
        assert_eq!(r.failed(), 1);
        let a = r.handle(Input::Succeeded(NodeId(1)));
        assert_eq!(
            finished(&a),
            Some(Outcome::Stopped {
                stop: StopReason::Interrupted
            })
        );
        assert!(r.handle(Input::RetryDue(NodeId(0))).is_empty());
    }

    #[test]
    fn a_budget_stop_does_not_wait_for_retry_timers() {
        let p = plan(&[], &[&[0, 1, 2]], None, 0, 0);
        let mut r = Rollout::new(
            &p,
            no_retry(),
            10,
            // Node 0's step may be retried; the others' may not.
            Box::new(|node, _| Some(if node == NodeId(0) { 2 } else { 0 })),
        );
        assert_eq!(starts(&r.start()), vec![0, 1, 2]);
        let a = r.handle(Input::Failed {
            node: NodeId(0),
            step: 0,
        });
        assert!(matches!(a[..], [Action::RetryAfter { node: NodeId(0), .. }]));
        r.handle(Input::Succeeded(NodeId(2)));
        // Node 1 exceeds the run budget: the run stops, and node 0 will not be retried,
        // so nothing is left to wait for.
        let a = r.handle(Input::Failed {
            node: NodeId(1),
            step: 0,
        });
        assert!(a.contains(&Action::NodeFailed { node: NodeId(1) }));
        assert!(a.contains(&Action::NodeFailed { node: NodeId(0) }));
        assert_eq!(
            finished(&a),
            Some(Outcome::Stopped {
                stop: StopReason::RunBudget { failed: 1, budget: 0 }
            })
        );
    }

    #[test]
    fn an_empty_plan_succeeds_at_once() {
        let p = plan(&[], &[], None, 0, 0);
        let mut r = rollout(&p, no_retry(), 2);
        assert_eq!(finished(&r.start()), Some(Outcome::Succeeded));
    }
}
