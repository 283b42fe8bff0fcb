//! The rollout's decisions — which node starts next, whether to retry, when to soak,
//! when to stop, whether a disruption budget has room — as a pure state machine. The
//! async runner only carries out its [`Action`]s and feeds it [`Input`]s, so every rule
//! here is tested without SSH.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use super::hold::Hold;
use crate::budget::Disruption;
use crate::inventory::NodeId;
use crate::plan::Plan;
use crate::store::Pause;
use crate::window::Window;
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
    /// No node left in the phase may go down: the disruption budgets are used up by
    /// nodes that stay unavailable (held for a human, or down since before the run).
    Blocked { node: NodeId, limit: String },
    /// The operator interrupted the run.
    Interrupted,
    /// The state store could not record a node's transition: nothing more may be done
    /// that the record would not show. The node it happened to is held or skipped, not
    /// failed (it is not the change's fault).
    StateStore { error: String },
    /// Another run took over leases of nodes this run had not finished (this run's
    /// heartbeat could not renew them in time): two runs must not work one node.
    LeaseLost { node: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// Every node in the plan succeeded.
    Succeeded,
    /// All nodes were attempted; some failed within the budgets, or were held or
    /// skipped because they did not drain in time.
    CompletedWithFailures {
        failed: usize,
    },
    Stopped {
        stop: StopReason,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A node finished all its steps (and is back in service).
    Succeeded(NodeId),
    /// A node's step failed (this attempt). `drained`: the node is left drained.
    Failed {
        node: NodeId,
        step: usize,
        drained: bool,
    },
    /// The node did not drain in time and is left drained for a human.
    Held(NodeId),
    /// The node did not drain in time and was resumed untouched.
    Skipped(NodeId),
    /// The node failed in a way a retry cannot mend (its resume-time check failed, its
    /// task panicked): it fails at once. `drained`: it is left drained.
    GaveUp {
        node: NodeId,
        drained: bool,
    },
    /// A retry's delay is over.
    RetryDue(NodeId),
    SoakOver,
    /// The operator pressed Ctrl-C: the same as `Stop(StopReason::Interrupted)`.
    Interrupt,
    /// Stop gracefully for `reason`: nothing new starts, nodes waiting for a retry fail,
    /// nodes in flight finish their attempt. The first reason given is the run's.
    Stop(StopReason),
    /// The time of day now, for the window.
    Clock(Timestamp),
    /// The pause in force for this run (global or its own), or none.
    Pause(Option<Pause>),
    /// The nodes in a new order of preference (`order: soonest_idle`, from a fresh
    /// `squeue`): the current phase's queued and parked nodes take their places from it
    /// (nodes it leaves out after those it names, in their old order); a resumed run's
    /// nodes left mid-work stay first. Nothing starts on it: the next start does.
    Reorder(Vec<NodeId>),
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
    /// `drained`: it is left drained, and must be held with a reason.
    NodeFailed {
        node: NodeId,
        drained: bool,
    },
    Soak(Duration),
    /// No new node starts until the hold is lifted (nodes in flight and retries of
    /// started nodes go on): announced when it begins or its reason changes.
    Hold(Hold),
    /// The hold is lifted: nodes start again.
    Unhold,
    /// The window next changes at this instant (it closes to new nodes, or opens): send
    /// [`Input::Clock`] then.
    WakeAt(Timestamp),
    Finished(Outcome),
}

/// Where a node stood when the controller running it died (from the state store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prior {
    Succeeded,
    /// `drained`: left drained and held.
    Failed {
        drained: bool,
    },
    Held,
    Skipped,
    /// Started and not finished: it is started again first (after a fresh check), and
    /// if the dead run drained it, it already holds its place in the budgets.
    InProgress {
        attempt: u32,
        drained: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeState {
    Pending,
    Running,
    RetryWait,
    Succeeded,
    Failed,
    Held,
    Skipped,
}

impl NodeState {
    fn is_final(self) -> bool {
        matches!(
            self,
            NodeState::Succeeded | NodeState::Failed | NodeState::Held | NodeState::Skipped
        )
    }
}

struct Phase {
    name: String,
    nodes: Vec<NodeId>,
    is_canary: bool,
    /// The bulk batch's number, from 1 (0: the canary).
    batch: usize,
    /// None: only the run budget.
    budget: Option<usize>,
}

/// What a rollout needs besides the plan.
pub struct RolloutSpec {
    pub retry: RetryPolicy,
    /// Most nodes worked on at once (the `forks` setting).
    pub max_in_flight: usize,
    /// Retries allowed per (node, step position); `None`: the strategy's count.
    pub step_retries: Box<dyn Fn(NodeId, usize) -> Option<u32> + Send>,
    /// Nodes whose steps include a drain step: each takes a place in every disruption
    /// limit it belongs to from its start until it is back in service.
    pub drains: HashSet<NodeId>,
    /// The limits, with the nodes unavailable before the run already taken.
    pub disruption: Disruption,
    /// For each node in the run, the nodes in the run that it hosts: they finish first.
    pub hosted: HashMap<NodeId, Vec<NodeId>>,
    /// A resumed run: where each node stood.
    pub prior: HashMap<NodeId, Prior>,
    /// The workflow's window, by name: no node starts outside it or past its cutoff.
    pub window: Option<(String, Window)>,
    /// The time of day at the start (later ones come as [`Input::Clock`]).
    pub now: Timestamp,
    /// The pause in force at the start (later ones come as [`Input::Pause`]).
    pub pause: Option<Pause>,
}

impl RolloutSpec {
    /// A spec with no drain nodes, limits or history.
    pub fn simple(retry: RetryPolicy, max_in_flight: usize) -> RolloutSpec {
        RolloutSpec {
            retry,
            max_in_flight,
            step_retries: Box::new(|_, _| None),
            drains: HashSet::new(),
            disruption: Disruption::default(),
            hosted: HashMap::new(),
            prior: HashMap::new(),
            window: None,
            now: Timestamp::UNIX_EPOCH,
            pause: None,
        }
    }
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
    /// Held or skipped: not done, but not failures of the change either.
    not_done: usize,
    run_budget: usize,
    in_flight: usize,
    retry_waits: usize,
    max_in_flight: usize,
    soak: Duration,
    soaking: bool,
    retry: RetryPolicy,
    step_retries: Box<dyn Fn(NodeId, usize) -> Option<u32> + Send>,
    drains: HashSet<NodeId>,
    disruption: Disruption,
    /// Nodes holding a place in the budgets (taken at start, or drained by a dead run).
    holding: HashSet<NodeId>,
    /// Nodes the last attempt left drained.
    drained: HashSet<NodeId>,
    hosted: HashMap<NodeId, Vec<NodeId>>,
    /// Each VM in the run → its host in the run.
    host_of: HashMap<NodeId, NodeId>,
    /// Queued hosts set aside until their VMs in the run are done, with how many are
    /// not yet: each VM's end counts its host down, so a host waiting for its VMs costs
    /// nothing per event (a queue of 1,000 waiting hypervisors was rescanned on every
    /// one).
    waiting_hosts: HashMap<NodeId, usize>,
    /// Resumed in-progress nodes start with this attempt number.
    resumed_attempt: HashMap<NodeId, u32>,
    /// Soak before the first phase (a resumed run whose canaries were done).
    soak_first: bool,
    stopping: Option<StopReason>,
    finished: bool,
    /// Queued drain nodes a full limit refused, by that limit (no empty lists). They
    /// are looked at again once it has room, so a long queue behind full budgets costs
    /// nothing per event.
    parked: BTreeMap<usize, VecDeque<NodeId>>,
    /// Each queued node's place in its phase's order, so unparked nodes keep it.
    rank: HashMap<NodeId, usize>,
    /// Nodes whose retry delay is over while `forks` nodes were in flight: they start
    /// first once one finishes (still counted in `retry_waits` until then).
    retries_due: VecDeque<NodeId>,
    window: Option<(String, Window)>,
    now: Timestamp,
    pause: Option<Pause>,
    /// What keeps new nodes from starting, as last announced.
    hold: Option<Hold>,
    /// The last [`Action::WakeAt`] given.
    wake: Option<Timestamp>,
}

impl Rollout {
    pub fn new(plan: &Plan, spec: RolloutSpec) -> Rollout {
        let phases = plan
            .phases()
            .into_iter()
            .map(|p| Phase {
                name: p.name,
                nodes: p.nodes.to_vec(),
                is_canary: p.is_canary,
                batch: p.batch,
                budget: p.failure_budget,
            })
            .collect();
        let states = plan.nodes.iter().map(|n| (*n, NodeState::Pending)).collect();
        let mut r = Rollout {
            phases,
            phase: 0,
            queue: VecDeque::new(),
            states,
            attempts: HashMap::new(),
            failed_in_phase: 0,
            failed_total: 0,
            not_done: 0,
            run_budget: plan.budgets.failures_per_run,
            in_flight: 0,
            retry_waits: 0,
            max_in_flight: spec.max_in_flight.max(1),
            soak: plan.soak,
            soaking: false,
            retry: spec.retry,
            step_retries: spec.step_retries,
            drains: spec.drains,
            disruption: spec.disruption,
            holding: HashSet::new(),
            drained: HashSet::new(),
            host_of: spec
                .hosted
                .iter()
                .flat_map(|(host, vms)| vms.iter().map(|vm| (*vm, *host)))
                .collect(),
            waiting_hosts: HashMap::new(),
            hosted: spec.hosted,
            resumed_attempt: HashMap::new(),
            soak_first: false,
            stopping: None,
            finished: false,
            parked: BTreeMap::new(),
            rank: HashMap::new(),
            retries_due: VecDeque::new(),
            window: spec.window,
            now: spec.now,
            pause: spec.pause,
            hold: None,
            wake: None,
        };
        r.restore(&spec.prior);
        r
    }

    /// Puts back what a dead controller left: finished nodes stay finished (and count
    /// against the budgets), drained nodes keep their place in the limits, and the run
    /// continues at the first phase with unfinished nodes.
    fn restore(&mut self, prior: &HashMap<NodeId, Prior>) {
        if prior.is_empty() {
            return;
        }
        let mut ids: Vec<NodeId> = prior.keys().copied().collect();
        ids.sort();
        for id in ids {
            if !self.states.contains_key(&id) {
                continue;
            }
            match prior[&id] {
                Prior::Succeeded => {
                    self.states.insert(id, NodeState::Succeeded);
                }
                Prior::Failed { drained } => {
                    self.states.insert(id, NodeState::Failed);
                    self.failed_total += 1;
                    if drained {
                        self.disruption.take(id);
                        self.holding.insert(id);
                    }
                }
                Prior::Held => {
                    self.states.insert(id, NodeState::Held);
                    self.not_done += 1;
                    self.disruption.take(id);
                    self.holding.insert(id);
                }
                Prior::Skipped => {
                    self.states.insert(id, NodeState::Skipped);
                    self.not_done += 1;
                }
                Prior::InProgress { attempt, drained } => {
                    self.resumed_attempt.insert(id, attempt.max(1));
                    if drained {
                        self.disruption.take(id);
                        self.holding.insert(id);
                        self.drained.insert(id);
                    }
                }
            }
        }
        let first_open = self
            .phases
            .iter()
            .position(|p| p.nodes.iter().any(|n| !self.state(*n).is_final()))
            .unwrap_or(self.phases.len());
        self.phase = first_open;
        let canary_done = self.phases.first().is_some_and(|p| p.is_canary) && first_open == 1;
        let untouched = self
            .phases
            .get(first_open)
            .is_some_and(|p| p.nodes.iter().all(|n| !prior.contains_key(n)));
        // The canaries finished before the crash and the bulk had not begun: the soak
        // may not have run out, so it runs again in full.
        self.soak_first = canary_done && untouched && !self.soak.is_zero();
        if let Some(p) = self.phases.get(first_open) {
            self.failed_in_phase = p
                .nodes
                .iter()
                .filter(|n| self.state(**n) == NodeState::Failed)
                .count();
        }
        // A crash between a failure and the stop it caused: stop again.
        let canary_failed = self
            .phases
            .first()
            .filter(|p| p.is_canary)
            .and_then(|p| p.nodes.iter().find(|n| self.state(**n) == NodeState::Failed));
        if let Some(node) = canary_failed {
            self.stopping = Some(StopReason::CanaryFailed { node: *node });
        } else if self.failed_total > self.run_budget {
            self.stopping = Some(StopReason::RunBudget {
                failed: self.failed_total,
                budget: self.run_budget,
            });
        }
    }

    fn state(&self, n: NodeId) -> NodeState {
        self.states.get(&n).copied().unwrap_or(NodeState::Pending)
    }

    pub fn failed(&self) -> usize {
        self.failed_total
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Members of each disruption limit unavailable now.
    pub fn unavailable(&self) -> &[usize] {
        self.disruption.counts()
    }

    /// What keeps new nodes from starting now, if anything: a pause, then the window.
    pub fn holding(&self) -> Option<&Hold> {
        self.hold.as_ref()
    }

    /// The hold that the pause, the window and the time of day make now.
    fn current_hold(&self) -> Option<Hold> {
        if let Some(pause) = &self.pause {
            return Some(Hold::Paused { pause: pause.clone() });
        }
        let (name, w) = self.window.as_ref()?;
        (!w.may_start(self.now)).then(|| Hold::Window {
            name: name.clone(),
            opens: w.next_open(self.now),
            tz: w.time_zone().clone(),
        })
    }

    /// Brings the hold up to date, announcing a change, and says when the window next
    /// changes. A stopping run announces no wait: nothing would start anyway.
    fn update_hold(&mut self, out: &mut Vec<Action>) {
        let hold = self.current_hold();
        if hold != self.hold && self.stopping.is_none() {
            out.push(match &hold {
                Some(h) => Action::Hold(h.clone()),
                None => Action::Unhold,
            });
        }
        self.hold = hold;
        let wake = self
            .window
            .as_ref()
            .and_then(|(_, w)| match w.last_start(self.now) {
                Some(last) => last.checked_add(jiff::SignedDuration::from_millis(1)).ok(),
                None => w.next_open(self.now),
            });
        if wake != self.wake
            && let Some(at) = wake
            && self.stopping.is_none()
        {
            out.push(Action::WakeAt(at));
        }
        self.wake = wake;
    }

    /// The first actions of the run.
    pub fn start(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.update_hold(&mut out);
        if self.stopping.is_some() {
            self.finish(&mut out);
        } else if self.soak_first && self.phase < self.phases.len() {
            self.soaking = true;
            self.phase -= 1;
            out.push(Action::Soak(self.soak));
        } else {
            let phase = self.phase;
            self.enter_phase(phase, &mut out);
            self.maybe_advance(&mut out);
        }
        out
    }

    pub fn handle(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        match input {
            Input::Reorder(order) => {
                self.reorder(&order);
                return out;
            }
            Input::Succeeded(node) => {
                if self.state(node) == NodeState::Running {
                    self.in_flight -= 1;
                    self.states.insert(node, NodeState::Succeeded);
                    self.vm_done(node);
                    self.drained.remove(&node);
                    self.release(node);
                }
            }
            Input::Held(node) | Input::Skipped(node) => {
                if self.state(node) == NodeState::Running {
                    self.in_flight -= 1;
                    self.not_done += 1;
                    if let Input::Held(_) = input {
                        // Still drained: it keeps its place in the budgets.
                        self.states.insert(node, NodeState::Held);
                        self.vm_done(node);
                        // A canary held (say, it did not drain in time) has not shown the
                        // change works: the run stops as for a failed canary, instead of
                        // saying "canary passed" and starting the batches.
                        if self.stopping.is_none() && self.phases.get(self.phase).is_some_and(|p| p.is_canary)
                        {
                            self.stopping = Some(StopReason::CanaryFailed { node });
                            self.clear_queue();
                            self.fail_retry_waits(&mut out);
                        }
                    } else {
                        self.states.insert(node, NodeState::Skipped);
                        self.vm_done(node);
                        self.drained.remove(&node);
                        self.release(node);
                    }
                }
            }
            Input::GaveUp { node, drained } => {
                if self.state(node) != NodeState::Running {
                    return out;
                }
                self.in_flight -= 1;
                if drained {
                    self.drained.insert(node);
                } else {
                    self.drained.remove(&node);
                }
                self.fail(node, &mut out);
            }
            Input::Failed { node, step, drained } => {
                if self.state(node) != NodeState::Running {
                    return out;
                }
                self.in_flight -= 1;
                if drained {
                    self.drained.insert(node);
                } else {
                    self.drained.remove(&node);
                }
                let failures = self
                    .attempts
                    .get(&node)
                    .map_or(0, |a| if a.1 == step { a.0 } else { 0 })
                    + 1;
                self.attempts.insert(node, (failures, step));
                let allowed = (self.step_retries)(node, step).unwrap_or(self.retry.count);
                if failures <= allowed && self.stopping.is_none() {
                    // It keeps its place in the budgets while it waits: it may well be
                    // drained, and giving the place away could starve its retry.
                    self.states.insert(node, NodeState::RetryWait);
                    self.retry_waits += 1;
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
                if self.state(node) != NodeState::RetryWait {
                    return out;
                }
                if self.stopping.is_some() {
                    self.retry_waits -= 1;
                    self.fail_quietly(node, &mut out);
                } else if !self.retries_due.contains(&node) {
                    // Started by `fill`, within `forks`, ahead of the queue.
                    self.retries_due.push_back(node);
                }
            }
            Input::SoakOver => {
                if self.soaking {
                    self.soaking = false;
                    let next = self.phase + 1;
                    self.enter_phase(next, &mut out);
                    self.maybe_advance(&mut out);
                    return out;
                }
            }
            Input::Interrupt | Input::Stop(_) => {
                if self.stopping.is_none() {
                    self.stopping = Some(match input {
                        Input::Stop(reason) => reason,
                        _ => StopReason::Interrupted,
                    });
                }
                self.clear_queue();
                self.fail_retry_waits(&mut out);
                if self.soaking {
                    self.soaking = false;
                }
            }
            Input::Clock(now) => self.now = now,
            Input::Pause(pause) => self.pause = pause,
        }
        self.update_hold(&mut out);
        self.fill(&mut out);
        self.maybe_advance(&mut out);
        out
    }

    /// `node` ended: if it is a VM whose host waits for it and was the last, the host
    /// goes back to its place in the queue.
    fn vm_done(&mut self, node: NodeId) {
        let Some(host) = self.host_of.get(&node).copied() else {
            return;
        };
        let Some(left) = self.waiting_hosts.get_mut(&host) else {
            return;
        };
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.waiting_hosts.remove(&host);
            self.requeue(host);
        }
    }

    /// Nodes waiting to start in the current phase (queued or parked under a full
    /// limit): a new order matters only if there are two.
    pub fn waiting(&self) -> usize {
        self.queue.len() + self.parked.values().map(VecDeque::len).sum::<usize>()
    }

    /// See [`Input::Reorder`].
    fn reorder(&mut self, order: &[NodeId]) {
        // A resumed run's nodes left mid-work keep their places ahead of the others.
        let first = self
            .rank
            .iter()
            .filter(|(n, _)| self.resumed_attempt.contains_key(n))
            .map(|(_, r)| r + 1)
            .max()
            .unwrap_or(0);
        let at: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let len = order.len();
        for (n, r) in self.rank.iter_mut() {
            if !self.resumed_attempt.contains_key(n) {
                *r = first + at.get(n).copied().unwrap_or(len + *r);
            }
        }
        let rank = &self.rank;
        let of = |n: &NodeId| rank.get(n).copied().unwrap_or(usize::MAX);
        self.queue.make_contiguous().sort_by_key(of);
        for p in self.parked.values_mut() {
            p.make_contiguous().sort_by_key(of);
        }
    }

    /// Puts a set-aside node back at its place in the queue (phase order).
    fn requeue(&mut self, n: NodeId) {
        let rank = self.rank_of(n);
        let at = self.queue.partition_point(|q| self.rank_of(*q) < rank);
        self.queue.insert(at, n);
    }

    /// How many of `host`'s VMs in the run have not ended.
    fn vms_left(&self, host: NodeId) -> usize {
        self.hosted.get(&host).map_or(0, |vms| {
            vms.iter().filter(|v| !self.state(**v).is_final()).count()
        })
    }

    fn release(&mut self, node: NodeId) {
        if self.holding.remove(&node) {
            self.disruption.release(node);
        }
    }

    /// A node that fails for good: drained, it stays held (and in the budgets).
    fn settle_failed(&mut self, node: NodeId, out: &mut Vec<Action>) {
        self.states.insert(node, NodeState::Failed);
        self.vm_done(node);
        self.failed_in_phase += 1;
        self.failed_total += 1;
        let drained = self.drained.contains(&node);
        if !drained {
            self.release(node);
        }
        out.push(Action::NodeFailed { node, drained });
    }

    fn fail(&mut self, node: NodeId, out: &mut Vec<Action>) {
        self.settle_failed(node, out);
        if self.stopping.is_some() {
            return;
        }
        let phase = &self.phases[self.phase];
        let batch_no = phase.batch;
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
            self.clear_queue();
            self.fail_retry_waits(out);
        }
    }

    /// A node whose retry the stop cancelled.
    fn fail_quietly(&mut self, node: NodeId, out: &mut Vec<Action>) {
        self.settle_failed(node, out);
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
            self.retry_waits -= 1;
            self.fail_quietly(node, out);
        }
    }

    fn enter_phase(&mut self, phase: usize, out: &mut Vec<Action>) {
        self.phase = phase;
        self.failed_in_phase = self.phases.get(phase).map_or(0, |p| {
            p.nodes
                .iter()
                .filter(|n| self.states.get(n) == Some(&NodeState::Failed))
                .count()
        });
        match self.phases.get(phase) {
            None => self.finish(out),
            Some(p) => {
                out.push(Action::PhaseStarted {
                    phase,
                    name: p.name.clone(),
                    nodes: p.nodes.len(),
                });
                // Resumed nodes that a dead run left mid-work go first: they may be
                // drained, holding budget that others wait for.
                let (mut first, rest): (VecDeque<NodeId>, VecDeque<NodeId>) = p
                    .nodes
                    .iter()
                    .copied()
                    .filter(|n| self.states.get(n) == Some(&NodeState::Pending))
                    .partition(|n| self.resumed_attempt.contains_key(n));
                first.extend(rest);
                self.queue = first;
                self.rank = self.queue.iter().enumerate().map(|(i, n)| (*n, i)).collect();
                self.fill(out);
            }
        }
    }

    /// Whether `node` starts without asking the budgets: it does not drain, or it holds
    /// its place already.
    fn bypasses_budgets(&self, node: NodeId) -> bool {
        !self.drains.contains(&node) || self.holding.contains(&node)
    }

    /// Whether `node` may start now, taking its place in the budgets if it drains.
    fn admit(&mut self, node: NodeId) -> bool {
        if self.bypasses_budgets(node) {
            return true;
        }
        // Topology: a host is drained only once everything on it in the run is done.
        if self
            .hosted
            .get(&node)
            .is_some_and(|vms| vms.iter().any(|v| !self.state(*v).is_final()))
        {
            return false;
        }
        if self.disruption.check(node).is_err() {
            return false;
        }
        self.disruption.take(node);
        self.holding.insert(node);
        true
    }

    /// Starts nodes whose retry is due, then queued nodes, up to the concurrency limit,
    /// in queue order, passing over nodes the budgets do not admit yet.
    fn fill(&mut self, out: &mut Vec<Action>) {
        if self.stopping.is_some() {
            return;
        }
        // A retry is part of a node's turn that began before: it goes first, soak or not
        // (the soak waits for it).
        while self.in_flight < self.max_in_flight
            && let Some(node) = self.retries_due.pop_front()
        {
            if self.state(node) != NodeState::RetryWait {
                continue;
            }
            self.retry_waits -= 1;
            let (failures, step) = self.attempts.get(&node).copied().unwrap_or((0, 0));
            self.states.insert(node, NodeState::Running);
            self.in_flight += 1;
            out.push(Action::Start {
                node,
                from_step: step,
                attempt: failures + 1,
            });
        }
        // Held: no new node, but the retries above are turns already begun (a drained
        // node must get back into service).
        if self.soaking || self.hold.is_some() {
            return;
        }
        self.unpark();
        loop {
            self.fill_from_queue(out);
            if self.in_flight >= self.max_in_flight || !self.unpark() {
                break;
            }
        }
    }

    /// Puts nodes parked under limits that have room again back in the queue: as many
    /// per limit as it has room for, since each either starts and takes a place or is
    /// parked under another full limit. Whether there were any; `fill` calls again
    /// until there are none, so room left by a node parked elsewhere goes to the next
    /// in line.
    fn unpark(&mut self) -> bool {
        let open: Vec<(usize, usize)> = self
            .parked
            .keys()
            .map(|l| (*l, self.disruption.room(*l)))
            .filter(|(_, room)| *room > 0)
            .collect();
        let mut moved = Vec::new();
        for (l, room) in &open {
            if let Some(nodes) = self.parked.get_mut(l) {
                let take = (*room).min(nodes.len());
                moved.extend(nodes.drain(..take));
                if nodes.is_empty() {
                    self.parked.remove(l);
                }
            }
        }
        // The queue stays in phase order: each node goes back to its place.
        for n in &moved {
            self.requeue(*n);
        }
        !moved.is_empty()
    }

    fn rank_of(&self, n: NodeId) -> usize {
        self.rank.get(&n).copied().unwrap_or(usize::MAX)
    }

    fn clear_queue(&mut self) {
        self.queue.clear();
        self.parked.clear();
        self.waiting_hosts.clear();
        self.retries_due.clear();
    }

    fn fill_from_queue(&mut self, out: &mut Vec<Action>) {
        let mut i = 0;
        while self.in_flight < self.max_in_flight && i < self.queue.len() {
            let node = self.queue[i];
            if !self.bypasses_budgets(node) {
                let left = self.vms_left(node);
                if left > 0 {
                    self.queue.remove(i);
                    self.waiting_hosts.insert(node, left);
                    continue;
                }
                if let Some(l) = self.disruption.full_limit(node) {
                    self.queue.remove(i);
                    self.parked.entry(l).or_default().push_back(node);
                    continue;
                }
            }
            if !self.admit(node) {
                i += 1;
                continue;
            }
            self.queue.remove(i);
            self.states.insert(node, NodeState::Running);
            self.in_flight += 1;
            let attempt = self.resumed_attempt.remove(&node).unwrap_or(1);
            if attempt > 1 {
                self.attempts.insert(node, (attempt - 1, 0));
            }
            out.push(Action::Start {
                node,
                from_step: 0,
                attempt,
            });
        }
    }

    fn maybe_advance(&mut self, out: &mut Vec<Action>) {
        if self.finished || self.soaking {
            return;
        }
        let Some(is_canary) = self.phases.get(self.phase).map(|p| p.is_canary) else {
            self.finish(out);
            return;
        };
        if self.stopping.is_none() && self.hold.is_none() && self.in_flight == 0 && self.retry_waits == 0 {
            // Nothing is running that could free a place: whatever is queued waits
            // forever. (A held rollout waits for its hold instead.)
            let waiting = self
                .queue
                .front()
                .or_else(|| self.parked.values().find_map(|p| p.front()))
                .or_else(|| self.waiting_hosts.keys().min())
                .copied();
            if let Some(node) = waiting {
                let limit = self
                    .disruption
                    .check(node)
                    .err()
                    .map_or_else(|| "a host waiting for its VMs".to_string(), |b| b.to_string());
                self.stopping = Some(StopReason::Blocked { node, limit });
                self.clear_queue();
            }
        }
        // Only the current phase's nodes run or wait for a retry, and its queue holds
        // exactly its pending nodes: counters answer what a scan of the phase would,
        // without making every event cost O(phase size).
        let busy = self.in_flight > 0
            || self.retry_waits > 0
            || (self.stopping.is_none()
                && (!self.queue.is_empty() || !self.parked.is_empty() || !self.waiting_hosts.is_empty()));
        if busy {
            return;
        }
        if self.stopping.is_some() {
            self.finish(out);
        } else if is_canary && !self.soak.is_zero() && self.phase + 1 < self.phases.len() {
            self.soaking = true;
            out.push(Action::Soak(self.soak));
        } else {
            let next = self.phase + 1;
            self.enter_phase(next, out);
            self.maybe_advance(out);
        }
    }

    fn finish(&mut self, out: &mut Vec<Action>) {
        if self.finished {
            return;
        }
        // A dead run's node it left drained, which this run stopped before it got to:
        // it fails here, drained, so it is held with a reason rather than left
        // drained without one.
        let mut left: Vec<NodeId> = self
            .drained
            .iter()
            .copied()
            .filter(|n| self.state(*n) == NodeState::Pending)
            .collect();
        left.sort();
        for node in left {
            self.settle_failed(node, out);
        }
        self.finished = true;
        let outcome = match &self.stopping {
            Some(s) => Outcome::Stopped { stop: s.clone() },
            None if self.failed_total + self.not_done > 0 => Outcome::CompletedWithFailures {
                failed: self.failed_total + self.not_done,
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
            order: vec![],
            maintenance: vec![],
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
        Rollout::new(p, RolloutSpec::simple(retry, forks))
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
            drained: false,
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
            drained: false,
        });
        r.handle(Input::Succeeded(NodeId(1)));
        let a = r.handle(Input::Failed {
            node: NodeId(2),
            step: 0,
            drained: false,
        });
        assert_eq!(
            starts(&a),
            vec![3, 4, 5],
            "two failures = the budget: next batch starts"
        );
        let a = r.handle(Input::Failed {
            node: NodeId(3),
            step: 0,
            drained: false,
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
            drained: false,
        });
        r.handle(Input::Failed {
            node: NodeId(1),
            step: 0,
            drained: false,
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
            drained: false,
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
            drained: false,
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
            drained: false,
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
            drained: false,
        });
        r.handle(Input::RetryDue(NodeId(0)));
        let a = r.handle(Input::Failed {
            node: NodeId(0),
            step: 0,
            drained: false,
        });
        assert!(a.contains(&Action::NodeFailed {
            node: NodeId(0),
            drained: false
        }));
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
    fn a_held_canary_stops_the_run() {
        let p = plan(&[0], &[&[1, 2]], None, 5, 5);
        let mut r = rollout(&p, no_retry(), 2);
        assert_eq!(starts(&r.start()), vec![0]);
        let a = r.handle(Input::Held(NodeId(0)));
        assert!(starts(&a).is_empty(), "{a:?}");
        assert_eq!(
            finished(&a),
            Some(Outcome::Stopped {
                stop: StopReason::CanaryFailed { node: NodeId(0) }
            })
        );
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
            drained: false,
        });
        // At once: waiting out a retry delay (minutes, with backoff) for a node that
        // will not be retried would only keep the operator waiting.
        let a = r.handle(Input::Interrupt);
        assert_eq!(
            a,
            vec![Action::NodeFailed {
                node: NodeId(0),
                drained: false
            }]
        );
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
            RolloutSpec {
                // Node 0's step may be retried; the others' may not.
                step_retries: Box::new(|node, _| Some(if node == NodeId(0) { 2 } else { 0 })),
                ..RolloutSpec::simple(no_retry(), 10)
            },
        );
        assert_eq!(starts(&r.start()), vec![0, 1, 2]);
        let a = r.handle(Input::Failed {
            node: NodeId(0),
            step: 0,
            drained: false,
        });
        assert!(matches!(a[..], [Action::RetryAfter { node: NodeId(0), .. }]));
        r.handle(Input::Succeeded(NodeId(2)));
        // Node 1 exceeds the run budget: the run stops, and node 0 will not be retried,
        // so nothing is left to wait for.
        let a = r.handle(Input::Failed {
            node: NodeId(1),
            step: 0,
            drained: false,
        });
        assert!(a.contains(&Action::NodeFailed {
            node: NodeId(1),
            drained: false
        }));
        assert!(a.contains(&Action::NodeFailed {
            node: NodeId(0),
            drained: false
        }));
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

    use crate::budget::{Disruption, Limit};

    fn drain_spec(max: usize, members: &[usize], drains: &[usize]) -> RolloutSpec {
        RolloutSpec {
            drains: drains.iter().map(|i| NodeId(*i)).collect(),
            disruption: Disruption::new(
                vec![Limit {
                    name: "max_unavailable".into(),
                    max,
                    members: members.iter().map(|i| NodeId(*i)).collect(),
                    already_out: 0,
                    size: 0,
                }],
                [],
            ),
            ..RolloutSpec::simple(no_retry(), 10)
        }
    }

    /// `order: soonest_idle` re-sorted when a place frees: the next node to start is
    /// the new order's first, whether it waited in the queue or parked under the full
    /// limit, and a node the new order leaves out keeps its old place after the others.
    #[test]
    fn a_new_order_decides_which_node_takes_the_next_free_place() {
        let p = plan(&[], &[&[0, 1, 2, 3]], None, 5, 0);
        let mut r = Rollout::new(&p, drain_spec(1, &[0, 1, 2, 3], &[0, 1, 2, 3]));
        assert_eq!(starts(&r.start()), vec![0]);
        assert_eq!(r.waiting(), 3);
        assert!(starts(&r.handle(Input::Reorder(vec![NodeId(3), NodeId(1)]))).is_empty());
        assert_eq!(starts(&r.handle(Input::Succeeded(NodeId(0)))), vec![3]);
        assert_eq!(starts(&r.handle(Input::Succeeded(NodeId(3)))), vec![1]);
        assert_eq!(starts(&r.handle(Input::Succeeded(NodeId(1)))), vec![2]);
        assert_eq!(
            finished(&r.handle(Input::Succeeded(NodeId(2)))),
            Some(Outcome::Succeeded)
        );
        // Without a new order: the plan's.
        let mut r = Rollout::new(&p, drain_spec(1, &[0, 1, 2, 3], &[0, 1, 2, 3]));
        r.start();
        assert_eq!(starts(&r.handle(Input::Succeeded(NodeId(0)))), vec![1]);
    }

    #[test]
    fn nodes_set_aside_by_a_full_limit_start_in_order_when_it_has_room() {
        // Racks a = {0, 2, 4}, b = {1, 3}, one node down per rack; two overall.
        let p = plan(&[], &[&[0, 1, 2, 3, 4]], None, 5, 0);
        let limit = |name: &str, max: usize, m: &[usize]| Limit {
            name: name.into(),
            max,
            members: m.iter().map(|i| NodeId(*i)).collect(),
            already_out: 0,
            size: 0,
        };
        let spec = RolloutSpec {
            drains: (0..5).map(NodeId).collect(),
            disruption: Disruption::new(
                vec![
                    limit("max_unavailable", 2, &[0, 1, 2, 3, 4]),
                    limit("group `a`", 1, &[0, 2, 4]),
                    limit("group `b`", 1, &[1, 3]),
                ],
                [],
            ),
            ..RolloutSpec::simple(no_retry(), 10)
        };
        let mut r = Rollout::new(&p, spec);
        assert_eq!(starts(&r.start()), vec![0, 1]);
        // Rack b frees a place: its next node starts, not rack a's.
        assert_eq!(starts(&r.handle(Input::Succeeded(NodeId(1)))), vec![3]);
        assert_eq!(starts(&r.handle(Input::Succeeded(NodeId(0)))), vec![2]);
        // The global limit has room after 3, but rack a is still full: 4 waits.
        assert!(starts(&r.handle(Input::Succeeded(NodeId(3)))).is_empty());
        assert_eq!(starts(&r.handle(Input::Succeeded(NodeId(2)))), vec![4]);
        let end = r.handle(Input::Succeeded(NodeId(4)));
        assert_eq!(finished(&end), Some(Outcome::Succeeded));
    }

    #[test]
    fn a_queue_held_up_only_by_full_limits_with_nothing_running_is_blocked() {
        let p = plan(&[], &[&[0, 1, 2]], None, 5, 0);
        let mut prior = HashMap::new();
        prior.insert(NodeId(0), Prior::Held);
        let spec = RolloutSpec {
            prior,
            ..drain_spec(1, &[0, 1, 2], &[0, 1, 2])
        };
        let mut r = Rollout::new(&p, spec);
        let out = r.start();
        assert!(starts(&out).is_empty());
        assert!(
            matches!(
                finished(&out),
                Some(Outcome::Stopped {
                    stop: StopReason::Blocked { node: NodeId(1), .. }
                })
            ),
            "{out:?}"
        );
    }

    #[test]
    fn drain_nodes_start_only_within_the_budget_and_hot_nodes_pass_them() {
        let p = plan(&[], &[&[0, 1, 2, 3]], None, 5, 0);
        // Nodes 0-2 drain, 3 is hot; two may be down at once.
        let mut r = Rollout::new(&p, drain_spec(2, &[0, 1, 2, 3], &[0, 1, 2]));
        assert_eq!(
            starts(&r.start()),
            vec![0, 1, 3],
            "node 2 waits; hot node 3 does not"
        );
        assert_eq!(r.unavailable(), &[2]);
        assert!(starts(&r.handle(Input::Succeeded(NodeId(3)))).is_empty());
        assert_eq!(starts(&r.handle(Input::Succeeded(NodeId(0)))), vec![2]);
    }

    #[test]
    fn a_failed_drained_node_keeps_its_place_and_a_full_budget_stops_the_run() {
        let p = plan(&[], &[&[0, 1, 2]], None, 5, 0);
        let mut r = Rollout::new(&p, drain_spec(1, &[0, 1, 2], &[0, 1, 2]));
        assert_eq!(starts(&r.start()), vec![0]);
        let a = r.handle(Input::Failed {
            node: NodeId(0),
            step: 0,
            drained: true,
        });
        assert!(a.contains(&Action::NodeFailed {
            node: NodeId(0),
            drained: true
        }));
        // Held drained, node 0 fills the budget for good: nothing can ever start.
        assert_eq!(
            finished(&a),
            Some(Outcome::Stopped {
                stop: StopReason::Blocked {
                    node: NodeId(1),
                    limit: "max_unavailable: 1 of at most 1 unavailable".into()
                }
            })
        );
    }

    #[test]
    fn a_node_failed_before_its_drain_gives_its_place_back() {
        let p = plan(&[], &[&[0, 1]], None, 5, 0);
        let mut r = Rollout::new(&p, drain_spec(1, &[0, 1], &[0, 1]));
        r.start();
        let a = r.handle(Input::Failed {
            node: NodeId(0),
            step: 0,
            drained: false,
        });
        assert_eq!(starts(&a), vec![1]);
    }

    #[test]
    fn a_host_waits_for_its_vms_in_the_run() {
        // Node 0 hosts node 1; both drain; the budget would allow both at once.
        let p = plan(&[], &[&[0, 1]], None, 5, 0);
        let mut spec = drain_spec(5, &[0, 1], &[0, 1]);
        spec.hosted = [(NodeId(0), vec![NodeId(1)])].into_iter().collect();
        let mut r = Rollout::new(&p, spec);
        assert_eq!(starts(&r.start()), vec![1]);
        assert_eq!(starts(&r.handle(Input::Succeeded(NodeId(1)))), vec![0]);
    }

    #[test]
    fn held_and_skipped_nodes_are_not_done() {
        let p = plan(&[], &[&[0, 1, 2]], None, 0, 0);
        let mut r = Rollout::new(&p, drain_spec(3, &[0, 1, 2], &[0, 1, 2]));
        r.start();
        r.handle(Input::Held(NodeId(0)));
        r.handle(Input::Skipped(NodeId(1)));
        assert_eq!(
            r.unavailable(),
            &[2],
            "held node 0 stays down; skipped node 1 is back"
        );
        let a = r.handle(Input::Succeeded(NodeId(2)));
        assert_eq!(
            finished(&a),
            Some(Outcome::CompletedWithFailures { failed: 2 }),
            "not failures of the change, so no budget stop; but not a success"
        );
    }

    #[test]
    fn a_resumed_run_continues_where_the_dead_one_stood() {
        let p = plan(&[0], &[&[1, 2], &[3, 4]], None, 5, 60);
        let mut spec = drain_spec(2, &[0, 1, 2, 3, 4], &[0, 1, 2, 3, 4]);
        spec.prior = [
            (NodeId(0), Prior::Succeeded),
            (NodeId(1), Prior::Succeeded),
            (
                NodeId(2),
                Prior::InProgress {
                    attempt: 2,
                    drained: true,
                },
            ),
        ]
        .into_iter()
        .collect();
        let mut r = Rollout::new(&p, spec);
        assert_eq!(r.unavailable(), &[1], "node 2 is still drained");
        let a = r.start();
        assert_eq!(
            a.iter()
                .filter_map(|x| match x {
                    Action::Start { node, attempt, .. } => Some((node.0, *attempt)),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            vec![(2, 2)],
            "batch 1 again, with only its unfinished node, at its attempt"
        );
        assert_eq!(starts(&r.handle(Input::Succeeded(NodeId(2)))), vec![3, 4]);
    }

    #[test]
    fn a_resume_after_the_canary_soaks_again() {
        let p = plan(&[0], &[&[1]], None, 5, 60);
        let mut spec = RolloutSpec::simple(no_retry(), 10);
        spec.prior = [(NodeId(0), Prior::Succeeded)].into_iter().collect();
        let mut r = Rollout::new(&p, spec);
        assert_eq!(r.start(), vec![Action::Soak(Duration::from_secs(60))]);
        assert_eq!(starts(&r.handle(Input::SoakOver)), vec![1]);
    }

    #[test]
    fn a_resume_after_a_failed_canary_stops_at_once() {
        let p = plan(&[0], &[&[1]], None, 5, 0);
        let mut spec = RolloutSpec::simple(no_retry(), 10);
        spec.prior = [(NodeId(0), Prior::Failed { drained: false })]
            .into_iter()
            .collect();
        let mut r = Rollout::new(&p, spec);
        assert_eq!(
            finished(&r.start()),
            Some(Outcome::Stopped {
                stop: StopReason::CanaryFailed { node: NodeId(0) }
            })
        );
    }

    #[test]
    fn a_node_that_gave_up_fails_at_once_whatever_its_retries() {
        let p = plan(&[], &[&[0, 1]], None, 5, 0);
        let retry = RetryPolicy {
            count: 5,
            ..no_retry()
        };
        let mut r = rollout(&p, retry, 10);
        r.start();
        let a = r.handle(Input::GaveUp {
            node: NodeId(0),
            drained: true,
        });
        assert_eq!(
            a,
            vec![Action::NodeFailed {
                node: NodeId(0),
                drained: true
            }]
        );
        assert_eq!(r.failed(), 1);
        assert_eq!(
            finished(&r.handle(Input::Succeeded(NodeId(1)))),
            Some(Outcome::CompletedWithFailures { failed: 1 })
        );
    }

    #[test]
    fn an_outside_stop_keeps_its_reason_and_lets_in_flight_finish() {
        let p = plan(&[], &[&[0, 1, 2]], None, 0, 0);
        let mut r = rollout(&p, no_retry(), 2);
        assert_eq!(starts(&r.start()), vec![0, 1]);
        let lost = StopReason::LeaseLost { node: "n2".into() };
        assert!(r.handle(Input::Stop(lost.clone())).is_empty());
        // A later Ctrl-C does not replace the first reason.
        r.handle(Input::Interrupt);
        assert!(starts(&r.handle(Input::Succeeded(NodeId(0)))).is_empty());
        assert_eq!(
            finished(&r.handle(Input::Skipped(NodeId(1)))),
            Some(Outcome::Stopped { stop: lost })
        );
    }

    /// Found by the property test: a retry whose delay ended while `forks` nodes ran
    /// started anyway, one over the limit.
    #[test]
    fn a_due_retry_waits_for_a_free_fork_and_goes_first() {
        let p = plan(&[], &[&[0, 1, 2]], None, 5, 0);
        let retry = RetryPolicy {
            count: 1,
            ..no_retry()
        };
        let mut r = rollout(&p, retry, 1);
        assert_eq!(starts(&r.start()), vec![0]);
        let a = r.handle(Input::Failed {
            node: NodeId(0),
            step: 1,
            drained: false,
        });
        assert_eq!(starts(&a), vec![1], "the fork is free while node 0 waits");
        assert!(starts(&r.handle(Input::RetryDue(NodeId(0)))).is_empty());
        assert_eq!(
            r.handle(Input::Succeeded(NodeId(1))),
            vec![Action::Start {
                node: NodeId(0),
                from_step: 1,
                attempt: 2
            }]
        );
        assert_eq!(starts(&r.handle(Input::Succeeded(NodeId(0)))), vec![2]);
    }

    /// Found by the property test: a dead run's drained node that the resumed run
    /// stopped before getting to was left drained without a reason.
    #[test]
    fn a_stop_fails_a_drained_node_the_dead_run_left_so_it_is_held() {
        let p = plan(&[], &[&[0, 1]], None, 5, 0);
        let mut spec = drain_spec(5, &[0, 1], &[0, 1]);
        spec.max_in_flight = 1;
        spec.prior = [
            (
                NodeId(0),
                Prior::InProgress {
                    attempt: 1,
                    drained: true,
                },
            ),
            (
                NodeId(1),
                Prior::InProgress {
                    attempt: 1,
                    drained: true,
                },
            ),
        ]
        .into_iter()
        .collect();
        let mut r = Rollout::new(&p, spec);
        assert_eq!(starts(&r.start()), vec![0]);
        r.handle(Input::Interrupt);
        let a = r.handle(Input::Succeeded(NodeId(0)));
        assert!(
            a.contains(&Action::NodeFailed {
                node: NodeId(1),
                drained: true
            }),
            "{a:?}"
        );
        assert_eq!(
            finished(&a),
            Some(Outcome::Stopped {
                stop: StopReason::Interrupted
            })
        );
    }

    fn business_hours(cutoff: Option<&str>) -> (String, Window) {
        let raw: crate::window::RawWindow = serde_json::from_value(serde_json::json!({
            "timezone": "Europe/Berlin",
            "days": ["mon-fri"],
            "start": "08:00",
            "end": "17:00",
            "cutoff": cutoff,
        }))
        .unwrap();
        ("business-hours".into(), Window::from_raw(&raw).unwrap())
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn holds(actions: &[Action]) -> Vec<Option<Hold>> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Hold(h) => Some(Some(h.clone())),
                Action::Unhold => Some(None),
                _ => None,
            })
            .collect()
    }

    fn windowed(p: &Plan, forks: usize, now: &str) -> Rollout {
        let mut spec = RolloutSpec::simple(no_retry(), forks);
        spec.window = Some(business_hours(Some("1h")));
        spec.now = at(now);
        Rollout::new(p, spec)
    }

    #[test]
    fn outside_the_window_nothing_starts_and_the_opening_starts_it() {
        // 2026-12-05 is a Saturday; the window opens Monday 08:00 Berlin (07:00 UTC).
        let p = plan(&[], &[&[0, 1]], None, 0, 0);
        let mut r = windowed(&p, 10, "2026-12-05T12:00:00Z");
        let a = r.start();
        assert!(starts(&a).is_empty(), "{a:?}");
        assert!(finished(&a).is_none());
        let h = holds(&a);
        assert_eq!(h.len(), 1);
        assert_eq!(
            h[0].as_ref().unwrap().to_string(),
            "window business-hours, opens Mon 2026-12-07 08:00 Europe/Berlin"
        );
        assert!(a.contains(&Action::WakeAt(at("2026-12-07T07:00:00Z"))), "{a:?}");
        // A look before the opening changes nothing and announces nothing again.
        let a = r.handle(Input::Clock(at("2026-12-07T06:59:59Z")));
        assert!(starts(&a).is_empty() && holds(&a).is_empty(), "{a:?}");
        let a = r.handle(Input::Clock(at("2026-12-07T07:00:00Z")));
        assert_eq!(starts(&a), vec![0, 1]);
        assert_eq!(holds(&a), vec![None], "it says it carries on");
        // Next: the cutoff, 1h before the 17:00 close (16:00 Berlin = 15:00 UTC).
        assert!(
            a.contains(&Action::WakeAt(at("2026-12-07T15:00:00.001Z"))),
            "{a:?}"
        );
    }

    #[test]
    fn the_cutoff_mid_run_holds_new_nodes_lets_in_flight_finish_and_the_next_opening_goes_on() {
        let p = plan(&[0], &[&[1, 2], &[3]], None, 0, 0);
        let mut r = windowed(&p, 10, "2026-12-07T14:00:00Z");
        assert_eq!(starts(&r.start()), vec![0]);
        // The cutoff passes while the canary runs: it finishes, the batch waits.
        let a = r.handle(Input::Clock(at("2026-12-07T15:30:00Z")));
        assert!(matches!(holds(&a)[..], [Some(Hold::Window { .. })]), "{a:?}");
        let a = r.handle(Input::Succeeded(NodeId(0)));
        assert!(starts(&a).is_empty(), "no new node past the cutoff: {a:?}");
        assert!(finished(&a).is_none(), "it waits, it does not end");
        assert!(
            !a.iter()
                .any(|x| matches!(x, Action::Finished(Outcome::Stopped { .. }))),
            "a held rollout is not Blocked"
        );
        assert_eq!(
            r.holding().unwrap().to_string(),
            "window business-hours, opens Tue 2026-12-08 08:00 Europe/Berlin"
        );
        let a = r.handle(Input::Clock(at("2026-12-08T07:00:00Z")));
        assert_eq!(starts(&a), vec![1, 2]);
        r.handle(Input::Succeeded(NodeId(1)));
        assert_eq!(starts(&r.handle(Input::Succeeded(NodeId(2)))), vec![3]);
        assert_eq!(
            finished(&r.handle(Input::Succeeded(NodeId(3)))),
            Some(Outcome::Succeeded)
        );
    }

    fn a_pause(by: &str) -> Pause {
        Pause {
            scope: crate::store::PauseScope::All,
            reason: Some("fixing the playbook".into()),
            by: by.into(),
            since: at("2026-12-07T09:00:00Z"),
        }
    }

    #[test]
    fn a_pause_holds_new_nodes_retries_of_started_ones_go_on_and_unpause_continues() {
        let p = plan(&[], &[&[0, 1, 2]], None, 5, 0);
        let retry = RetryPolicy {
            count: 1,
            ..no_retry()
        };
        let mut r = rollout(&p, retry, 1);
        assert_eq!(starts(&r.start()), vec![0]);
        let a = r.handle(Input::Pause(Some(a_pause("alice"))));
        assert_eq!(holds(&a).len(), 1);
        // Node 0 fails and retries: its turn began, so the retry runs while paused.
        let a = r.handle(Input::Failed {
            node: NodeId(0),
            step: 0,
            drained: true,
        });
        assert!(matches!(a[..], [Action::RetryAfter { .. }]), "{a:?}");
        assert_eq!(starts(&r.handle(Input::RetryDue(NodeId(0)))), vec![0]);
        let a = r.handle(Input::Succeeded(NodeId(0)));
        assert!(starts(&a).is_empty(), "paused: node 1 waits: {a:?}");
        assert!(finished(&a).is_none());
        // The same pause seen again is not announced again; another setter is.
        assert!(holds(&r.handle(Input::Pause(Some(a_pause("alice"))))).is_empty());
        assert_eq!(holds(&r.handle(Input::Pause(Some(a_pause("bob"))))).len(), 1);
        let a = r.handle(Input::Pause(None));
        assert_eq!(holds(&a), vec![None]);
        assert_eq!(starts(&a), vec![1]);
    }

    #[test]
    fn a_pause_at_the_start_starts_nothing_and_ctrl_c_ends_the_wait() {
        let p = plan(&[0], &[&[1]], None, 0, 0);
        let mut spec = RolloutSpec::simple(no_retry(), 4);
        spec.pause = Some(a_pause("alice"));
        let mut r = Rollout::new(&p, spec);
        let a = r.start();
        assert!(starts(&a).is_empty());
        assert_eq!(holds(&a).len(), 1);
        assert_eq!(
            finished(&r.handle(Input::Interrupt)),
            Some(Outcome::Stopped {
                stop: StopReason::Interrupted
            })
        );
    }

    #[test]
    fn a_pause_during_the_soak_holds_the_batches_after_it() {
        let p = plan(&[0], &[&[1]], None, 0, 30);
        let mut r = rollout(&p, no_retry(), 4);
        r.start();
        assert_eq!(
            r.handle(Input::Succeeded(NodeId(0))),
            vec![Action::Soak(Duration::from_secs(30))]
        );
        r.handle(Input::Pause(Some(a_pause("alice"))));
        let a = r.handle(Input::SoakOver);
        assert!(starts(&a).is_empty(), "{a:?}");
        assert!(finished(&a).is_none());
        assert_eq!(starts(&r.handle(Input::Pause(None))), vec![1]);
    }
}
