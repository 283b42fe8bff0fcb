//! The async side of a run: opens one connection per node, runs checks in parallel,
//! then drives the [`Rollout`] state machine — spawning a task per node, sleeping for
//! retries and soak, holding failed drained nodes, and turning Ctrl-C into a graceful
//! stop (first) or abort (second).
//!
//! Every task the run spawns is supervised: node tasks, check tasks and hold tasks are
//! joined as they end, and one that panicked becomes its node's failure (a node task's
//! node is assumed drained and held with the panic as the reason), so a bug in one
//! node's turn never leaves the run waiting for a report that will not come.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::{Id, JoinError, JoinSet};

use super::check_result::{CheckResult, Class};
use super::clock::Clock;
use super::control::Control;
use super::event::{NodeFinal, RunEvent};
use super::event_sender::EventSender;
use super::file_sources::FileSources;
use super::hold::Hold;
use super::journal::{Journal, Mark};
use super::node_cycle::{NodeCycle, NodeEnd};
use super::node_work::NodeJob;
use super::rollout::{Action, Input, Outcome, Rollout, RolloutSpec, StopReason};
use super::run_log::RunLog;
use crate::inventory::{Inventory, NodeId};
use crate::plan::Plan;
use crate::site::{DrainHooks, HookHost};
use crate::slurm::SlurmPoller;
use crate::store::{NodeState, Store};
use crate::template::TemplateEngine;
use crate::transport::{Connection, Connector, NodeLocks};
use crate::window::Window;
use crate::workflow::Workflow;

/// What may hold a rollout besides its own rules — the workflow's window, a pause, a
/// node put into maintenance — and how the runner watches them: it looks every `poll`
/// (and when the window next changes) and feeds the state machine what it saw.
#[derive(Clone)]
pub struct Gates {
    /// The time of day, for the window.
    pub clock: Arc<dyn Clock>,
    /// The workflow's window by name; `None`: none, or `--ignore-window`.
    pub window: Option<(String, Window)>,
    /// Where pauses and maintenance are read; `None` (a dry run): nothing can pause it.
    pub store: Option<Store>,
    pub poll: std::time::Duration,
    /// The inventory in force, when it can change while the run goes on (the daemon's
    /// live site): a node no longer in it whose turn has not begun is not started
    /// ("removed from the inventory"). `None`: the run's own inventory is final.
    pub inventory: Option<watch::Receiver<Arc<Inventory>>>,
}

impl Default for Gates {
    /// No window and no store: nothing holds the run.
    fn default() -> Gates {
        Gates {
            clock: Arc::new(super::clock::SystemClock),
            window: None,
            store: None,
            poll: std::time::Duration::from_secs(5),
            inventory: None,
        }
    }
}

/// What every node task shares.
pub struct RunContext<K: Connector> {
    pub connector: K,
    pub inventory: Arc<Inventory>,
    pub workflow: Arc<Workflow>,
    pub templates: Arc<TemplateEngine>,
    /// `--extra-vars`, over the workflow's vars.
    pub extra_vars: serde_json::Map<String, serde_json::Value>,
    /// The `site` template value ([`super::node_work::site_context`]).
    pub site: serde_json::Value,
    pub forks: usize,
    /// Most masters kept open from a node's check to its turn (`ssh.keep_masters`), for
    /// nodes with work to do: such a node then connects once.
    pub keep_masters: usize,
    /// Every command and its output, by node.
    pub log: Option<RunLog>,
    pub events: EventSender,
    /// The workflow's drain hooks, else the site's.
    pub hooks: Option<DrainHooks>,
    /// Ask the `drained` hook of every checked node, to find nodes drained before the
    /// run (they count against the budgets and are left alone).
    pub probe_drained: bool,
    pub journal: Journal,
    /// Nodes a dead controller left mid-step: their checks wait for any step still
    /// running there (see [`super::node_work::settle_command`]).
    pub settle: HashSet<NodeId>,
    /// `copy`/`template` sources, read once per run.
    pub files: FileSources,
    /// The step locks on the nodes.
    pub locks: NodeLocks,
    /// With `scheduler: slurm`: the one `sinfo` per poll every waiting node shares.
    pub slurm: Option<SlurmPoller>,
    /// The window, pauses and maintenance.
    pub gates: Gates,
    /// `--diff`: checks say how each file step would change its file.
    pub diff: bool,
}

/// Open connections, kept from the check through the run. A node's task takes its
/// connection and gives it back (a reboot replaces it).
pub struct Connections<C>(HashMap<NodeId, C>);

impl<C: Connection> Connections<C> {
    pub fn take(&mut self, id: NodeId) -> Option<C> {
        self.0.remove(&id)
    }

    pub fn put(&mut self, id: NodeId, c: C) {
        self.0.insert(id, c);
    }

    /// Closes the connections of nodes the run will not use and releases the masters of
    /// the others (they reopen at the node's turn) except those of `hold`, the nodes
    /// whose turn comes first, so a 2,000-node check does not keep 2,000 ssh processes
    /// alive through a long rollout while the first nodes connect only once.
    pub async fn keep_only(&mut self, keep: &(dyn Fn(NodeId) -> bool + Sync), hold: &HashSet<NodeId>) {
        let drop_ids: Vec<NodeId> = self.0.keys().copied().filter(|id| !keep(*id)).collect();
        let mut set = JoinSet::new();
        for id in drop_ids {
            if let Some(c) = self.0.remove(&id) {
                set.spawn(c.close());
            }
        }
        while set.join_next().await.is_some() {}
        // Together: a release waits (bounded) for a held shell to exit, and a node that
        // stopped answering must not delay the others'.
        let releases = self
            .0
            .iter()
            .filter(|(id, _)| !hold.contains(id))
            .map(|(_, c)| c.release());
        futures_util::future::join_all(releases).await;
    }

    /// How each open connection reaches its node ([`Connection::describe`]).
    pub async fn describe_all(&self) -> Vec<(NodeId, String)> {
        let mut v = Vec::new();
        for (id, c) in &self.0 {
            if let Some(d) = c.describe().await {
                v.push((*id, d));
            }
        }
        v
    }

    pub async fn close_all(self) {
        let mut set = JoinSet::new();
        for (_, c) in self.0 {
            set.spawn(c.close());
        }
        while set.join_next().await.is_some() {}
    }
}

impl<K: Connector> RunContext<K> {
    pub fn job(&self, id: NodeId) -> NodeJob<'_> {
        let node = self.inventory.node(id);
        NodeJob {
            node,
            workflow: &self.workflow,
            templates: &self.templates,
            context: super::node_work::template_context(node, &self.workflow, &self.extra_vars, &self.site),
            log: self.log.as_ref(),
            files: &self.files,
            locks: &self.locks,
            diff: self.diff,
            groups: self
                .inventory
                .groups()
                .iter()
                .filter(|(_, members)| members.contains(&id))
                .map(|(g, _)| g.clone())
                .collect(),
        }
    }

    /// `run <id>, <workflow> v<version>`: who drained a node, in every reason.
    pub fn reason(&self) -> String {
        format!(
            "run {}, {} v{}",
            self.journal.run(),
            self.workflow.name,
            self.workflow.version,
        )
    }

    pub fn cycle<'a>(&'a self, id: NodeId, reason: &'a str) -> NodeCycle<'a, K> {
        NodeCycle {
            job: self.job(id),
            connector: &self.connector,
            hooks: self.hooks.as_ref(),
            journal: &self.journal,
            events: &self.events,
            reason,
            slurm: self.slurm.as_ref(),
        }
    }
}

/// What a panicked task said, for the reason it leaves.
pub fn panic_message(e: JoinError) -> String {
    if !e.is_panic() {
        return "its task was cancelled".into();
    }
    let payload = e.into_panic();
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    format!("drover bug: its task panicked ({msg})")
}

/// Resolves at the next Ctrl-C press counted by `interrupts` (at once if one is pending),
/// and never once nobody can press it any more (the sender is gone).
pub async fn next_press(interrupts: &mut watch::Receiver<u32>) {
    if interrupts.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Whether Ctrl-C was pressed at all.
fn pressed(interrupts: &watch::Receiver<u32>) -> bool {
    *interrupts.borrow() > 0
}

/// The check was interrupted with Ctrl-C: the connections it opened are closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted;

/// What the check found.
pub struct Checked<C> {
    pub results: HashMap<NodeId, CheckResult>,
    pub conns: Connections<C>,
    /// Nodes whose `drained` hook said they were already drained.
    pub drained: HashSet<NodeId>,
}

/// Connects to every node and runs its checks, `forks` nodes at a time.
///
/// Ctrl-C (a press counted by `interrupts`) stops the check: no new node is connected,
/// running checks are abandoned, and every connection is closed before this returns
/// `Err(Interrupted)`. Connecting is never abandoned halfway: an `ssh` killed between
/// authenticating and binding its control socket would go on as an unmanaged
/// connection, so a connect in progress finishes (within `connect_timeout`) and is
/// closed. A check that panics makes its node ERROR, with the panic as the error.
pub async fn check_all<K: Connector>(
    cx: &Arc<RunContext<K>>,
    nodes: &[NodeId],
    interrupts: &watch::Receiver<u32>,
) -> Result<Checked<K::Conn>, Interrupted> {
    cx.events.send(RunEvent::CheckStarted { nodes: nodes.len() });
    let sem = Arc::new(Semaphore::new(cx.forks.max(1)));
    // Masters kept after their check (nodes with work to do), at most `keep_masters`.
    let kept = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut set = JoinSet::new();
    let mut node_of: HashMap<Id, NodeId> = HashMap::with_capacity(nodes.len());
    for &id in nodes {
        let cx = Arc::clone(cx);
        let sem = Arc::clone(&sem);
        let kept = Arc::clone(&kept);
        let mut stop = interrupts.clone();
        let handle = set.spawn(async move {
            if pressed(&stop) {
                return None;
            }
            let _permit = tokio::select! {
                permit = sem.acquire_owned() => permit,
                () = next_press(&mut stop) => return None,
            };
            let job = cx.job(id);
            super::fault::panic_point("panic-check", &job.node.name);
            let (result, conn) = match cx.connector.connect(job.node).await {
                Ok(conn) => {
                    if pressed(&stop) {
                        conn.close().await;
                        return None;
                    }
                    if cx.settle.contains(&id) {
                        let wait = super::node_work::settle_command(
                            &cx.locks,
                            &job.node.name,
                            cx.workflow.max_step_timeout(),
                        );
                        let _ = conn.exec(&wait, None, cx.workflow.max_step_timeout()).await;
                    }
                    let result = tokio::select! {
                        r = job.check(&conn) => r,
                        () = next_press(&mut stop) => {
                            conn.close().await;
                            return None;
                        }
                    };
                    (result, Some(conn))
                }
                Err(e) if cx.workflow.unreachable == crate::workflow::Unreachable::Run => {
                    (job.check_unreachable(&e.to_string()), None)
                }
                Err(e) => (CheckResult::error(e.to_string()), None),
            };
            let drained = if cx.probe_drained && result.class != Class::Error {
                let reason = cx.reason();
                let cycle = cx.cycle(id, &reason);
                let probe = cycle.is_drained(&conn);
                tokio::select! {
                    d = probe => d,
                    () = next_press(&mut stop) => false,
                }
            } else {
                false
            };
            // A node with work to do keeps its master for its turn (one connection per
            // node), up to `keep_masters`; the others' masters are reopened when their
            // turn comes, so no more than `forks` + `keep_masters` are open during the
            // check.
            if let Some(c) = &conn {
                let keep = !result.needed.is_empty()
                    && kept
                        .fetch_update(
                            std::sync::atomic::Ordering::Relaxed,
                            std::sync::atomic::Ordering::Relaxed,
                            |n| (n < cx.keep_masters).then_some(n + 1),
                        )
                        .is_ok();
                if !keep {
                    c.release().await;
                }
            }
            cx.events.send(RunEvent::NodeChecked {
                node: job.node.name.clone(),
                class: result.class,
                needed: result
                    .needed
                    .iter()
                    .map(|i| cx.workflow.steps[*i].name.clone())
                    .collect(),
                error: result.error.clone(),
                diffs: result.diffs.clone(),
            });
            Some((id, result, conn, drained))
        });
        node_of.insert(handle.id(), id);
    }
    let mut results = HashMap::new();
    let mut conns = HashMap::new();
    let mut drained = HashSet::new();
    while let Some(joined) = set.join_next_with_id().await {
        match joined {
            Ok((_, Some((id, r, c, d)))) => {
                results.insert(id, r);
                if let Some(c) = c {
                    conns.insert(id, c);
                }
                if d {
                    drained.insert(id);
                }
            }
            Ok((_, None)) => {}
            Err(e) => {
                let Some(id) = node_of.get(&e.id()).copied() else {
                    continue;
                };
                if !e.is_panic() {
                    continue;
                }
                let error = format!("check failed: {}", panic_message(e));
                cx.events.send(RunEvent::NodeChecked {
                    node: cx.inventory.node(id).name.clone(),
                    class: Class::Error,
                    needed: vec![],
                    error: Some(error.clone()),
                    diffs: Vec::new(),
                });
                results.insert(id, CheckResult::error(error));
            }
        }
    }
    let conns = Connections(conns);
    if pressed(interrupts) {
        conns.close_all().await;
        return Err(Interrupted);
    }
    Ok(Checked {
        results,
        conns,
        drained,
    })
}

/// What happened to each node of a run.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    pub succeeded: Vec<NodeId>,
    /// With the last error.
    pub failed: Vec<(NodeId, String)>,
    /// Did not drain in time; left drained for a human, with why.
    pub held: Vec<(NodeId, String)>,
    /// Did not drain in time; resumed untouched, with why.
    pub skipped: Vec<(NodeId, String)>,
    /// Planned but never started (the run stopped first).
    pub not_started: Vec<NodeId>,
    /// Of the skipped, those put into maintenance during the run (left alone before
    /// their turn): not failures of the change, work that remains.
    pub maintenance: Vec<NodeId>,
    pub outcome: Option<Outcome>,
    /// The second Ctrl-C: tasks were aborted mid-step.
    pub aborted: bool,
}

/// What a node task reports back: its connection too, which a reboot may have replaced.
struct Report<C> {
    node: NodeId,
    conn: Option<C>,
    end: NodeEnd,
}

/// What each node of the run is to do.
#[derive(Debug, Clone, Default)]
pub struct Work {
    /// The workflow step indices each node runs.
    pub steps: HashMap<NodeId, Vec<usize>>,
    /// Nodes that fail when started, untouched (a resumed run's node whose check failed).
    pub errors: HashMap<NodeId, String>,
    /// Nodes skipped when started, untouched (drained by someone else since).
    pub skips: HashMap<NodeId, String>,
    /// Nodes a previous attempt or a dead controller left drained: resumed at the end of
    /// their turn.
    pub drained: HashSet<NodeId>,
}

/// The run's bookkeeping between the state machine and its tasks.
struct Dispatch<K: Connector> {
    cx: Arc<RunContext<K>>,
    steps: Arc<HashMap<NodeId, Vec<usize>>>,
    errors: HashMap<NodeId, String>,
    skips: HashMap<NodeId, String>,
    result: RunResult,
    last_error: HashMap<NodeId, String>,
    started: HashSet<NodeId>,
    /// Nodes with a final state (for lost leases: only unfinished ones matter).
    finished: HashSet<NodeId>,
    left_drained: HashSet<NodeId>,
    /// Inputs decided without a task (untouched nodes), handled before waiting.
    inbox: VecDeque<Input>,
    tx: mpsc::UnboundedSender<Input>,
    rtx: mpsc::UnboundedSender<Report<K::Conn>>,
    /// Node tasks, by task id.
    tasks: JoinSet<()>,
    task_node: HashMap<Id, NodeId>,
    /// Retry and soak timers: aborted at the end. Each with the input it sends, which a
    /// timer that died without sending it is taken to have sent.
    timers: JoinSet<()>,
    timer_input: HashMap<Id, Input>,
    /// Holding failed nodes: never aborted, always awaited.
    holds: JoinSet<()>,
    hold_node: HashMap<Id, NodeId>,
    /// Nodes found in maintenance since the run began, with the maintenance: skipped,
    /// untouched, if their turn had not begun.
    maintenance: HashMap<NodeId, String>,
    /// Nodes removed from the inventory in force since the run began: skipped, untouched,
    /// if their turn had not begun.
    removed: HashSet<NodeId>,
    /// When the window next changes ([`Action::WakeAt`]).
    wake: Option<jiff::Timestamp>,
}

impl<K: Connector> Dispatch<K> {
    fn name(&self, node: NodeId) -> String {
        self.cx.inventory.node(node).name.clone()
    }

    fn finish_node(&mut self, node: NodeId, state: NodeFinal, error: Option<String>) {
        self.finished.insert(node);
        self.cx.events.send(RunEvent::NodeFinished {
            node: self.name(node),
            ok: state == NodeFinal::Succeeded,
            state,
            error,
        });
    }

    /// Skips `node` at its start, untouched: reported, and recorded like a node whose
    /// own cycle skipped it (the write is awaited with the holds before the run ends, so
    /// the record never shows a node the run gave up as still pending).
    fn skip_at_start(&mut self, node: NodeId, why: String) {
        self.result.skipped.push((node, why.clone()));
        self.finish_node(node, NodeFinal::Skipped, Some(why.clone()));
        self.inbox.push_back(Input::Skipped(node));
        let journal = self.cx.journal.clone();
        let name = self.name(node);
        self.holds.spawn(async move {
            let mark = super::journal::Mark {
                state: crate::store::NodeState::Skipped,
                attempt: 0,
                step: 0,
                drained: false,
                boot_id: None,
                reason: Some(why),
            };
            if let Err(e) = journal.node(&name, mark).await {
                tracing::warn!(node = %name, "cannot record the node as skipped: {e}");
            }
        });
    }

    /// Whether `node` may be drained when its task died without saying: it has drain
    /// hooks and a drain step, or a previous attempt left it drained.
    fn maybe_drained(&self, node: NodeId) -> bool {
        self.left_drained.contains(&node)
            || (self.cx.hooks.is_some()
                && self
                    .steps
                    .get(&node)
                    .is_some_and(|list| super::check_result::needs_drain(&self.cx.workflow, list)))
    }

    fn act(&mut self, action: Action, conns: &mut Connections<K::Conn>) {
        match action {
            Action::PhaseStarted { name, nodes, .. } => {
                self.cx.events.send(RunEvent::PhaseStarted { phase: name, nodes });
            }
            Action::Start {
                node,
                from_step,
                attempt,
            } => {
                let was_drained = self.left_drained.contains(&node);
                // Maintenance since the run began: a node whose turn has not begun is
                // left alone (one the turn of which began, or a dead run drained, goes
                // on: it must get back into service).
                if !self.started.contains(&node)
                    && !was_drained
                    && let Some(why) = self.maintenance.get(&node).cloned()
                {
                    self.started.insert(node);
                    self.cx.events.send(RunEvent::NodeInMaintenance {
                        node: self.name(node),
                        reason: why.clone(),
                    });
                    self.result.maintenance.push(node);
                    self.skip_at_start(node, format!("in {why}"));
                    return;
                }
                if !self.started.contains(&node) && !was_drained && self.removed.contains(&node) {
                    self.started.insert(node);
                    self.skip_at_start(node, "removed from the inventory".to_string());
                    return;
                }
                self.started.insert(node);
                // Untouched: a retry could only return the same stored answer.
                if let Some(e) = self.errors.get(&node) {
                    self.last_error.insert(node, e.clone());
                    self.inbox.push_back(Input::GaveUp {
                        node,
                        drained: was_drained,
                    });
                    return;
                }
                if let Some(why) = self.skips.get(&node).cloned() {
                    self.left_drained.remove(&node);
                    self.skip_at_start(node, why);
                    return;
                }
                let cx = Arc::clone(&self.cx);
                let rtx = self.rtx.clone();
                let steps = Arc::clone(&self.steps);
                let conn = conns.take(node);
                let handle = self.tasks.spawn(async move {
                    let name = cx.inventory.node(node).name.clone();
                    cx.events.send(RunEvent::NodeStarted {
                        node: name.clone(),
                        attempt,
                    });
                    let list = steps.get(&node).cloned().unwrap_or_default();
                    let mut conn = match conn {
                        Some(c) => Some(c),
                        None if list.is_empty() => None,
                        None => match cx.connector.connect(cx.inventory.node(node)).await {
                            Ok(c) => Some(c),
                            // The workflow runs its turn anyway: its first steps (a
                            // rebuild on the controller) may be what brings it back;
                            // the cycle connects at the first step that runs on it.
                            Err(_) if cx.workflow.unreachable == crate::workflow::Unreachable::Run => None,
                            Err(e) => {
                                // Unreachable with work to do: nothing is touched (not
                                // even drained).
                                let end = NodeEnd::Failed {
                                    pos: from_step,
                                    error: format!("no connection to the node: {e}"),
                                    drained: was_drained,
                                };
                                let _ = rtx.send(Report {
                                    node,
                                    conn: None,
                                    end,
                                });
                                return;
                            }
                        },
                    };
                    let reason = cx.reason();
                    let end = cx
                        .cycle(node, &reason)
                        .run(&mut conn, &list, from_step, attempt, was_drained)
                        .await;
                    // The node's turn is over: its master is not held while the run goes
                    // on (a retry or a hold reopens it).
                    if let Some(c) = &conn {
                        c.release().await;
                    }
                    let _ = rtx.send(Report { node, conn, end });
                });
                self.task_node.insert(handle.id(), node);
            }
            Action::RetryAfter { node, after, attempt } => {
                self.cx.events.send(RunEvent::NodeRetry {
                    node: self.name(node),
                    attempt,
                    after,
                });
                self.timer(after, Input::RetryDue(node));
            }
            Action::NodeFailed { node, drained } => {
                let error = self
                    .last_error
                    .get(&node)
                    .cloned()
                    .unwrap_or_else(|| "the run stopped before this node's turn was over".into());
                self.result.failed.push((node, error.clone()));
                self.finish_node(node, NodeFinal::Failed, Some(error.clone()));
                let cx = Arc::clone(&self.cx);
                let conn = conns.take(node);
                let handle = self.holds.spawn(async move {
                    hold(cx, node, conn, drained, error).await;
                });
                self.hold_node.insert(handle.id(), node);
            }
            Action::Soak(d) => {
                self.cx.events.send(RunEvent::Soak { duration: d });
                self.timer(d, Input::SoakOver);
            }
            Action::Hold(hold) => {
                let text = hold.to_string();
                if let Hold::Window { name, opens, .. } = &hold {
                    self.cx.journal.waiting_for_window(name, *opens, &text);
                }
                self.cx.events.send(RunEvent::Waiting { hold, text });
            }
            Action::Unhold => self.cx.events.send(RunEvent::Continuing),
            Action::WakeAt(at) => self.wake = Some(at),
            Action::Finished(o) => {
                self.result.outcome = Some(o);
            }
        }
    }

    /// Whether anything can hold the run, so the runner must look.
    fn watches_gates(&self) -> bool {
        self.cx.gates.store.is_some() || self.cx.gates.window.is_some() || self.cx.gates.inventory.is_some()
    }

    /// How long until the next look: the poll interval, or less if the window changes
    /// sooner.
    fn next_look(&self) -> std::time::Duration {
        let poll = self.cx.gates.poll;
        let Some(at) = self.wake else { return poll };
        let now = self.cx.gates.clock.now();
        let until = std::time::Duration::try_from(at.duration_since(now)).unwrap_or_default();
        until.min(poll)
    }

    /// Reads the clock, the pause and the nodes in maintenance, as inputs.
    fn look(&mut self) -> Vec<Input> {
        self.read_removed();
        let g = &self.cx.gates;
        let mut inputs = vec![Input::Clock(g.clock.now())];
        let Some(store) = &g.store else {
            return inputs;
        };
        // A read that fails keeps what was read last: the next look tries again.
        if let Ok(pause) = store.pause_holding(self.cx.journal.run()) {
            inputs.push(Input::Pause(pause));
        }
        self.read_maintenance();
        inputs
    }

    /// Nodes put into maintenance: from now on, those whose turn has not begun are
    /// skipped. (Taking a node out of maintenance mid-run does not bring it back: the
    /// plan left it out, or it was skipped.)
    fn read_maintenance(&mut self) {
        let Some(store) = &self.cx.gates.store else {
            return;
        };
        if let Ok(nodes) = store.in_maintenance() {
            for m in nodes {
                if let Some(id) = self.cx.inventory.find(&m.node) {
                    self.maintenance.insert(id, m.to_string());
                }
            }
        }
    }

    /// Nodes of the run that the inventory in force no longer has.
    fn read_removed(&mut self) {
        let Some(live) = &self.cx.gates.inventory else {
            return;
        };
        let live = live.borrow().clone();
        for id in self.cx.inventory.ids() {
            if !self.started.contains(&id) && live.find(&self.cx.inventory.node(id).name).is_none() {
                self.removed.insert(id);
            }
        }
    }

    /// Sends `input` after `after`.
    fn timer(&mut self, after: std::time::Duration, input: Input) {
        let tx = self.tx.clone();
        let sent = input.clone();
        let handle = self.timers.spawn(async move {
            tokio::time::sleep(after).await;
            let _ = tx.send(sent);
        });
        self.timer_input.insert(handle.id(), input);
    }

    /// A timer ended; one that panicked did not send its input, so it is sent now
    /// (the state machine ignores one that came twice).
    fn on_timer_end(&mut self, joined: Result<(Id, ()), JoinError>) {
        let id = match &joined {
            Ok((id, ())) => *id,
            Err(e) => e.id(),
        };
        let input = self.timer_input.remove(&id);
        if let (Err(e), Some(input)) = (joined, input)
            && e.is_panic()
        {
            self.inbox.push_back(input);
        }
    }

    /// A node task's report, as the state machine's inputs.
    fn on_report(&mut self, Report { node, conn, end }: Report<K::Conn>, conns: &mut Connections<K::Conn>) {
        if let Some(c) = conn {
            conns.put(node, c);
        }
        let end = end.redacted(&self.cx.workflow);
        match end {
            NodeEnd::Done => {
                self.left_drained.remove(&node);
                self.result.succeeded.push(node);
                self.finish_node(node, NodeFinal::Succeeded, None);
                self.inbox.push_back(Input::Succeeded(node));
            }
            NodeEnd::Failed { pos, error, drained } => {
                if drained {
                    self.left_drained.insert(node);
                } else {
                    self.left_drained.remove(&node);
                }
                self.last_error.insert(node, error);
                self.inbox.push_back(Input::Failed {
                    node,
                    step: pos,
                    drained,
                });
            }
            NodeEnd::Held(why) => {
                self.result.held.push((node, why.clone()));
                self.finish_node(node, NodeFinal::Held, Some(why));
                self.inbox.push_back(Input::Held(node));
            }
            NodeEnd::Skipped(why) => {
                self.left_drained.remove(&node);
                self.result.skipped.push((node, why.clone()));
                self.finish_node(node, NodeFinal::Skipped, Some(why));
                self.inbox.push_back(Input::Skipped(node));
            }
            NodeEnd::StoreFailed { error, drained } => {
                // Left as it is: drained, it stays drained and keeps its place.
                let why = format!("left as it was: {error}");
                self.inbox
                    .push_back(Input::Stop(StopReason::StateStore { error }));
                if drained {
                    self.finish_node(node, NodeFinal::Held, Some(why.clone()));
                    self.result.held.push((node, why));
                    self.inbox.push_back(Input::Held(node));
                } else {
                    self.finish_node(node, NodeFinal::Skipped, Some(why.clone()));
                    self.left_drained.remove(&node);
                    self.result.skipped.push((node, why));
                    self.inbox.push_back(Input::Skipped(node));
                }
            }
        }
    }

    /// A node task ended; one that panicked is its node's failure, for good.
    fn on_task_end(&mut self, joined: Result<(Id, ()), JoinError>) {
        let id = match &joined {
            Ok((id, ())) => *id,
            Err(e) => e.id(),
        };
        let Some(node) = self.task_node.remove(&id) else {
            return;
        };
        let Err(e) = joined else { return };
        if !e.is_panic() {
            return;
        }
        let drained = self.maybe_drained(node);
        if drained {
            self.left_drained.insert(node);
        }
        let error = panic_message(e);
        self.cx.events.send(RunEvent::NodeDrain {
            node: self.name(node),
            state: "crashed".into(),
            detail: Some(error.clone()),
        });
        self.last_error.insert(node, error);
        self.inbox.push_back(Input::GaveUp { node, drained });
    }

    /// A hold task ended; one that panicked leaves its node failed (as recorded) and
    /// says so.
    fn on_hold_end(&mut self, joined: Result<(Id, ()), JoinError>) {
        let id = match &joined {
            Ok((id, ())) => *id,
            Err(e) => e.id(),
        };
        let Some(node) = self.hold_node.remove(&id) else {
            return;
        };
        if let Err(e) = joined
            && e.is_panic()
        {
            self.cx.events.send(RunEvent::NodeDrain {
                node: self.name(node),
                state: "crashed".into(),
                detail: Some(format!("holding the failed node: {}", panic_message(e))),
            });
        }
    }

    /// Nodes whose leases another run took: the run stops if one is unfinished.
    fn on_control(&mut self, c: Control) {
        match c {
            Control::Stop(reason) => self.inbox.push_back(Input::Stop(reason)),
            Control::LeasesLost(names) => {
                let lost = names.into_iter().find(|n| {
                    self.cx
                        .inventory
                        .find(n)
                        .is_some_and(|id| !self.finished.contains(&id))
                });
                if let Some(node) = lost {
                    self.inbox.push_back(Input::Stop(StopReason::LeaseLost { node }));
                }
            }
        }
    }
}

/// Leaves a failed node as a human should find it: drained ones keep the drain, with a
/// reason naming the run and the error; the journal says it failed.
async fn hold<K: Connector>(
    cx: Arc<RunContext<K>>,
    node: NodeId,
    conn: Option<K::Conn>,
    drained: bool,
    error: String,
) {
    let name = cx.inventory.node(node).name.clone();
    let mut conn = conn;
    // A node whose task died took its connection along; node-side hooks need one.
    if drained && conn.is_none() && cx.hooks.as_ref().is_some_and(|h| h.run_on == HookHost::Node) {
        conn = cx.connector.connect(cx.inventory.node(node)).await.ok();
    }
    let error = if cx.workflow.on_failure.is_empty() {
        error
    } else {
        if conn.is_none() {
            conn = cx.connector.connect(cx.inventory.node(node)).await.ok();
        }
        let base = cx.reason();
        let ran = cx.cycle(node, &base).on_failure(&conn).await;
        format!("{error} ({ran})")
    };
    let reason = if drained {
        let base = cx.reason();
        cx.cycle(node, &base).hold_failed(&conn, &error).await
    } else {
        error
    };
    let _ = cx
        .journal
        .node(
            &name,
            Mark {
                state: NodeState::Failed,
                attempt: 0,
                step: 0,
                drained,
                boot_id: None,
                reason: Some(reason),
            },
        )
        .await;
    if let Some(c) = conn {
        c.close().await;
    }
}

/// Whether `input` ends a node's turn, so another node may take its place.
fn frees_a_place(input: &Input) -> bool {
    matches!(
        input,
        Input::Succeeded(_)
            | Input::Failed { .. }
            | Input::Held(_)
            | Input::Skipped(_)
            | Input::GaveUp { .. }
    )
}

/// `order: soonest_idle` now: `nodes` sorted by the jobs one `squeue` shows running
/// (see [`crate::slurm::soonest_idle`]). `None` if Slurm cannot be read: the order
/// stays as it was. The new order goes to the run log.
async fn fresh_order<K: Connector>(cx: &RunContext<K>, nodes: &[(NodeId, String)]) -> Option<Vec<NodeId>> {
    let sp = cx.slurm.as_ref()?;
    let jobs = crate::slurm::parse_squeue(&sp.client().squeue().await.ok()?);
    let named: Vec<(NodeId, &str)> = nodes.iter().map(|(i, n)| (*i, n.as_str())).collect();
    let order = crate::slurm::soonest_idle(&named, &jobs);
    if let Some(log) = &cx.log {
        let names: Vec<&str> = order
            .iter()
            .map(|i| cx.inventory.node(*i).name.as_str())
            .collect();
        log.write(
            "drover",
            &format!("order: soonest_idle from squeue now: {}", names.join(", ")),
        );
    }
    Some(order)
}

/// Runs the plan. `spec` carries the budgets and, for a resumed run, where each node
/// stood. `interrupts` counts Ctrl-C presses; `control` carries other reasons to stop
/// (lost leases), and may be a receiver whose sender is gone.
pub async fn execute<K: Connector>(
    cx: Arc<RunContext<K>>,
    plan: &Plan,
    work: Work,
    conns: &mut Connections<K::Conn>,
    spec: RolloutSpec,
    mut interrupts: watch::Receiver<u32>,
    mut control: mpsc::UnboundedReceiver<Control>,
) -> RunResult {
    let Work {
        steps,
        errors,
        skips,
        drained,
    } = work;
    let mut spec = spec;
    spec.window = cx.gates.window.clone();
    spec.now = cx.gates.clock.now();
    spec.pause = cx
        .gates
        .store
        .as_ref()
        .and_then(|s| s.pause_holding(cx.journal.run()).ok().flatten());
    let mut rollout = Rollout::new(plan, spec);
    // `order: soonest_idle` with Slurm: the plan's order is the first guess; each time a
    // turn ends (a place frees) the next node is chosen from a fresh `squeue`.
    let resort: Vec<(NodeId, String)> = match (&cx.slurm, plan.order.is_empty()) {
        (Some(_), false) => plan
            .nodes
            .iter()
            .map(|id| (*id, cx.inventory.node(*id).name.clone()))
            .collect(),
        _ => Vec::new(),
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
    let (rtx, mut rrx) = mpsc::unbounded_channel::<Report<K::Conn>>();
    let mut d = Dispatch {
        cx: Arc::clone(&cx),
        steps: Arc::new(steps),
        errors,
        skips,
        result: RunResult::default(),
        last_error: HashMap::new(),
        started: HashSet::new(),
        finished: HashSet::new(),
        left_drained: drained,
        inbox: VecDeque::new(),
        tx,
        rtx,
        tasks: JoinSet::new(),
        task_node: HashMap::new(),
        timers: JoinSet::new(),
        timer_input: HashMap::new(),
        holds: JoinSet::new(),
        hold_node: HashMap::new(),
        maintenance: HashMap::new(),
        removed: HashSet::new(),
        wake: None,
    };
    let mut control_open = true;
    // A resumed run's plan is the recorded one: nodes put into maintenance since are
    // skipped from the first start on.
    d.read_maintenance();
    let watch_gates = d.watches_gates();
    let look = tokio::time::sleep(d.next_look());
    tokio::pin!(look);

    // A press that came after the caller's last check (while the lease wait or the run
    // record took their time) is honoured before any node starts, not after a wave of
    // up to `forks` nodes has begun.
    let mut pending = if pressed(&interrupts) {
        rollout.handle(Input::Interrupt)
    } else {
        rollout.start()
    };
    loop {
        for action in pending.drain(..) {
            d.act(action, conns);
        }
        if d.result.outcome.is_some() {
            break;
        }
        if let Some(input) = d.inbox.pop_front() {
            if !resort.is_empty()
                && frees_a_place(&input)
                && rollout.waiting() > 1
                && let Some(order) = fresh_order(&cx, &resort).await
            {
                pending = rollout.handle(Input::Reorder(order));
                pending.extend(rollout.handle(input));
            } else {
                pending = rollout.handle(input);
            }
            continue;
        }
        tokio::select! {
            report = rrx.recv() => {
                // Never None: `d` holds a sender.
                if let Some(r) = report {
                    d.on_report(r, conns);
                }
            }
            input = rx.recv() => {
                if let Some(input) = input {
                    pending = rollout.handle(input);
                }
            }
            Some(joined) = d.tasks.join_next_with_id(), if !d.tasks.is_empty() => {
                d.on_task_end(joined);
            }
            Some(joined) = d.holds.join_next_with_id(), if !d.holds.is_empty() => {
                d.on_hold_end(joined);
            }
            Some(joined) = d.timers.join_next_with_id(), if !d.timers.is_empty() => {
                d.on_timer_end(joined);
            }
            () = &mut look, if watch_gates => {
                for input in d.look() {
                    let actions = rollout.handle(input);
                    pending.extend(actions);
                }
                look.as_mut().reset(tokio::time::Instant::now() + d.next_look());
            }
            c = control.recv(), if control_open => match c {
                Some(c) => d.on_control(c),
                None => control_open = false,
            },
            // Not `interrupts.changed()` with a `pending()` in the handler when the
            // sender is gone: awaiting in a handler blocks the whole loop, and the run
            // would never see its nodes finish.
            () = next_press(&mut interrupts) => {
                let presses = *interrupts.borrow();
                if presses >= 2 {
                    d.tasks.abort_all();
                    d.result.aborted = true;
                    d.result.outcome = Some(Outcome::Stopped { stop: StopReason::Interrupted });
                    break;
                }
                pending = rollout.handle(Input::Interrupt);
            }
        }
    }
    // Retry and soak timers may still be sleeping; nodes are all settled.
    d.timers.abort_all();
    while d.timers.join_next().await.is_some() {}
    while let Some(joined) = d.tasks.join_next_with_id().await {
        d.on_task_end(joined);
    }
    while let Some(joined) = d.holds.join_next_with_id().await {
        d.on_hold_end(joined);
    }
    let mut result = d.result;
    result.not_started = plan
        .nodes
        .iter()
        .copied()
        .filter(|n| !d.started.contains(n))
        .collect();
    // `RunFinished` is the caller's to send: the run's outcome also counts the nodes the
    // plan left out (`service::session`), which the engine does not see.
    result
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::plan::PlanInput;
    use crate::project::Project;
    use crate::transport::LocalConnector;

    /// Three nodes and one workflow whose step runs `run` after checking with `check`.
    fn project(dir: &Path, check: &str) -> Project {
        let files = [
            (
                "drover.yml",
                "inventory: inventory.yml\nworkflows: workflows\n".to_string(),
            ),
            (
                "inventory.yml",
                "nodes:\n  n[1-3]: {}\ngroups:\n  all: [\"n[1-3]\"]\n".to_string(),
            ),
            (
                "workflows/w.yml",
                format!(
                    "name: w\nversion: 1\ntargets:\n  nodes: [\"@all\"]\nstrategy:\n  batch: [\"100%\"]\n\
                     steps:\n- name: s\n  run: \"true\"\n  check: {check}\n  change: hot\n"
                ),
            ),
        ];
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Project::load(dir).unwrap()
    }

    /// Runs the first step on every planned node, in a task of its own, so the test can
    /// act on the run while it goes on.
    fn spawn_first_steps(
        cx: &Arc<RunContext<LocalConnector>>,
        p: &Project,
    ) -> tokio::task::JoinHandle<RunResult> {
        let plan = Plan::build(&p.inventory, &p.workflows[0], &PlanInput::default()).unwrap();
        let work = Work {
            steps: plan.nodes.iter().map(|id| (*id, vec![0])).collect(),
            ..Work::default()
        };
        let spec = RolloutSpec::simple(cx.workflow.strategy.retries, 1);
        let cx = Arc::clone(cx);
        tokio::spawn(async move {
            let (_itx, irx) = watch::channel(0u32);
            let (_ctx, ctl) = mpsc::unbounded_channel();
            let mut conns = Connections(HashMap::new());
            execute(cx, &plan, work, &mut conns, spec, irx, ctl).await
        })
    }

    fn context(p: &Project) -> Arc<RunContext<LocalConnector>> {
        let (events, _) = super::super::event_sender::event_channel(16);
        Arc::new(RunContext {
            connector: LocalConnector,
            inventory: Arc::new(p.inventory.clone()),
            workflow: Arc::new(p.workflows[0].clone()),
            templates: Arc::new(TemplateEngine::new()),
            extra_vars: serde_json::Map::new(),
            site: serde_json::Value::Null,
            forks: 2,
            keep_masters: 2,
            log: None,
            events,
            hooks: None,
            probe_drained: false,
            journal: Journal::new(None, "test".into()),
            settle: HashSet::new(),
            files: FileSources::default(),
            locks: NodeLocks::default(),
            slurm: None,
            gates: Gates::default(),
            diff: false,
        })
    }

    /// Benchmarks and embedders pass a receiver whose sender they do not keep: nobody
    /// can press Ctrl-C, and the run must still see its nodes finish.
    #[tokio::test]
    async fn a_run_finishes_when_nobody_can_press_ctrl_c() {
        let dir = tempfile::tempdir().unwrap();
        let p = project(dir.path(), "\"false\"");
        let cx = context(&p);
        let plan = Plan::build(&p.inventory, &p.workflows[0], &PlanInput::default()).unwrap();
        let (itx, irx) = watch::channel(0u32);
        drop(itx);
        let mut checked = check_all(&cx, &plan.nodes, &irx).await.unwrap();
        let work = Work {
            steps: checked
                .results
                .iter()
                .map(|(id, r)| (*id, r.needed.clone()))
                .collect(),
            ..Work::default()
        };
        let spec = RolloutSpec::simple(cx.workflow.strategy.retries, cx.forks);
        let (_, ctl) = mpsc::unbounded_channel();
        let run = execute(Arc::clone(&cx), &plan, work, &mut checked.conns, spec, irx, ctl);
        let r = tokio::time::timeout(Duration::from_secs(20), run)
            .await
            .expect("the run hung");
        assert_eq!(r.outcome, Some(Outcome::Succeeded));
        assert_eq!(r.succeeded.len(), 3);
    }

    #[tokio::test]
    async fn ctrl_c_stops_a_check_without_waiting_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = project(dir.path(), "sleep 30");
        let cx = context(&p);
        let plan = Plan::build(&p.inventory, &p.workflows[0], &PlanInput::default()).unwrap();
        let (itx, irx) = watch::channel(0u32);
        let started = Instant::now();
        let press = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _ = itx.send(1);
            itx
        });
        assert!(check_all(&cx, &plan.nodes, &irx).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(10));
        drop(press.await);
    }

    /// A press pending when `execute` is called (it came after the CLI's last check)
    /// starts no node: the step would create a file on each node it started.
    #[tokio::test]
    async fn a_pending_ctrl_c_starts_no_node() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("started");
        let p = project(dir.path(), "\"false\"");
        let mut wf = p.workflows[0].clone();
        wf.steps[0].action = crate::workflow::Action::Run(format!("touch {}", marker.display()));
        let mut cx = Arc::into_inner(context(&p)).unwrap();
        cx.workflow = Arc::new(wf);
        let cx = Arc::new(cx);
        let plan = Plan::build(&p.inventory, &p.workflows[0], &PlanInput::default()).unwrap();
        let work = Work {
            steps: plan.nodes.iter().map(|id| (*id, vec![0])).collect(),
            ..Work::default()
        };
        let spec = RolloutSpec::simple(cx.workflow.strategy.retries, cx.forks);
        let (_itx, irx) = watch::channel(1u32);
        let (_ctx, ctl) = mpsc::unbounded_channel();
        let mut conns = Connections(HashMap::new());
        let run = execute(Arc::clone(&cx), &plan, work, &mut conns, spec, irx, ctl);
        let r = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("the run hung");
        assert_eq!(
            r.outcome,
            Some(Outcome::Stopped {
                stop: StopReason::Interrupted
            })
        );
        assert!(r.succeeded.is_empty());
        assert_eq!(r.not_started.len(), 3);
        assert!(!marker.exists(), "a node ran its step after Ctrl-C");
    }

    /// A resumed run's node whose check failed is failed at once: a retry would only
    /// return the same stored error after the whole backoff series.
    #[tokio::test]
    async fn an_untouched_node_fails_without_retries() {
        let dir = tempfile::tempdir().unwrap();
        let p = project(dir.path(), "\"false\"");
        let cx = context(&p);
        let plan = Plan::build(&p.inventory, &p.workflows[0], &PlanInput::default()).unwrap();
        let n2 = p.inventory.find("n2").unwrap();
        let work = Work {
            steps: plan.nodes.iter().map(|id| (*id, vec![0])).collect(),
            errors: [(n2, "check failed: unreachable".to_string())]
                .into_iter()
                .collect(),
            ..Work::default()
        };
        let retry = crate::workflow::RetryPolicy {
            count: 3,
            delay: Duration::from_secs(30),
            backoff: 1.0,
            max_delay: Duration::from_secs(30),
        };
        let mut spec = RolloutSpec::simple(retry, cx.forks);
        spec.step_retries = Box::new(|_, _| None);
        let (_itx, irx) = watch::channel(0u32);
        let (_ctx, ctl) = mpsc::unbounded_channel();
        let mut conns = Connections(HashMap::new());
        let run = execute(Arc::clone(&cx), &plan, work, &mut conns, spec, irx, ctl);
        let r = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("waited for retries");
        assert_eq!(r.failed, vec![(n2, "check failed: unreachable".to_string())]);
        assert!(matches!(
            r.outcome,
            Some(Outcome::Stopped {
                stop: StopReason::RunBudget { failed: 1, .. }
            })
        ));
    }

    /// The window applies all the time: a run that reaches the cutoff mid-run lets its
    /// node in flight finish, starts no other, says why, and carries on at the next
    /// opening. The clock is the test's; the nodes run real `sh`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_that_reaches_the_cutoff_waits_for_the_next_opening() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let p = project(dir.path(), "\"false\"");
        let mut wf = p.workflows[0].clone();
        wf.steps[0].action = crate::workflow::Action::Run(format!(
            "touch {d}/started-$DROVER_NODE; while [ ! -e {d}/release ]; do sleep 0.02; done"
        ));
        let raw: crate::window::RawWindow = serde_json::from_value(serde_json::json!({
            "timezone": "Europe/Berlin", "days": ["mon-fri"], "start": "08:00", "end": "17:00", "cutoff": "1h",
        }))
        .unwrap();
        // Monday 2026-12-07, 10:00 in Berlin.
        let clock = super::super::clock::ManualClock::new("2026-12-07T09:00:00Z".parse().unwrap());
        let (events, mut erx) = super::super::event_sender::event_channel(64);
        let mut cx = Arc::into_inner(context(&p)).unwrap();
        cx.workflow = Arc::new(wf);
        cx.forks = 1;
        cx.events = events;
        cx.gates = Gates {
            clock: Arc::new(clock.clone()),
            window: Some((
                "business-hours".into(),
                crate::window::Window::from_raw(&raw).unwrap(),
            )),
            store: None,
            poll: Duration::from_millis(20),
            inventory: None,
        };
        let cx = Arc::new(cx);
        let run = spawn_first_steps(&cx, &p);
        let started = |n: &str| dir.path().join(format!("started-{n}")).exists();
        let wait_for = |what: &dyn Fn() -> bool| {
            let t = Instant::now();
            while !what() {
                assert!(t.elapsed() < Duration::from_secs(10), "timed out");
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        wait_for(&|| started("n1"));
        // 16:30 in Berlin: past the cutoff, with n1 in flight.
        clock.set("2026-12-07T15:30:00Z".parse().unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
        std::fs::write(dir.path().join("release"), "").unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!started("n2"), "a node started past the cutoff");
        assert!(!run.is_finished(), "the run waits; it does not end");
        // Tuesday 08:00 in Berlin.
        clock.set("2026-12-08T07:00:00Z".parse().unwrap());
        let r = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("the run did not carry on")
            .unwrap();
        assert_eq!(r.outcome, Some(Outcome::Succeeded));
        assert_eq!(r.succeeded.len(), 3);
        let mut seen = Vec::new();
        while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(100), erx.recv()).await {
            match ev {
                RunEvent::Waiting { text, .. } => seen.push(format!("waiting: {text}")),
                RunEvent::Continuing => seen.push("continuing".into()),
                RunEvent::NodeStarted { node, .. } => seen.push(format!("start {node}")),
                _ => {}
            }
        }
        assert_eq!(
            seen,
            [
                "start n1",
                "waiting: window business-hours, opens Tue 2026-12-08 08:00 Europe/Berlin",
                "continuing",
                "start n2",
                "start n3",
            ]
        );
    }

    /// The daemon's live inventory loses a node while the run is in flight: the node is
    /// not started, and says why; the others go on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_removed_from_the_inventory_mid_run_is_not_started() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let p = project(dir.path(), "\"false\"");
        let mut wf = p.workflows[0].clone();
        wf.steps[0].action = crate::workflow::Action::Run(format!(
            "touch {d}/started-$DROVER_NODE; while [ ! -e {d}/release ]; do sleep 0.02; done"
        ));
        let (live_tx, live_rx) = watch::channel(Arc::new(p.inventory.clone()));
        let mut cx = Arc::into_inner(context(&p)).unwrap();
        cx.workflow = Arc::new(wf);
        cx.forks = 1;
        cx.gates.poll = Duration::from_millis(20);
        cx.gates.inventory = Some(live_rx);
        let cx = Arc::new(cx);
        let run = spawn_first_steps(&cx, &p);
        let t = Instant::now();
        while !dir.path().join("started-n1").exists() {
            assert!(t.elapsed() < Duration::from_secs(10), "n1 never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // n3 leaves the inventory while n1 is in flight (n2 stays).
        let raw: crate::inventory::RawInventory =
            serde_json::from_value(serde_json::json!({"nodes": {"n1": {}, "n2": {}}})).unwrap();
        live_tx
            .send(Arc::new(Inventory::from_raw(&raw).unwrap()))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        std::fs::write(dir.path().join("release"), "").unwrap();
        let r = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("the run hung")
            .unwrap();
        let n3 = p.inventory.find("n3").unwrap();
        assert_eq!(r.skipped, vec![(n3, "removed from the inventory".to_string())]);
        assert_eq!(r.succeeded.len(), 2);
        assert!(!dir.path().join("started-n3").exists(), "n3 was touched");
    }
}
