//! The async side of a run: opens one connection per node, runs checks in parallel,
//! then drives the [`Rollout`] state machine — spawning a task per node, sleeping for
//! retries and soak, holding failed drained nodes, and turning Ctrl-C into a graceful
//! stop (first) or abort (second).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::check_result::CheckResult;
use super::event::RunEvent;
use super::journal::{Journal, Mark};
use super::node_cycle::{NodeCycle, NodeEnd};
use super::node_work::NodeJob;
use super::rollout::{Action, Input, Outcome, Rollout, RolloutSpec, StopReason};
use super::run_log::RunLog;
use crate::inventory::{Inventory, NodeId};
use crate::plan::Plan;
use crate::site::DrainHooks;
use crate::store::NodeState;
use crate::template::TemplateEngine;
use crate::transport::{Connection, Connector};
use crate::workflow::Workflow;

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
    /// Every command and its output, by node.
    pub log: Option<RunLog>,
    pub events: mpsc::UnboundedSender<RunEvent>,
    /// The workflow's drain hooks, else the site's.
    pub hooks: Option<DrainHooks>,
    /// Ask the `drained` hook of every checked node, to find nodes drained before the
    /// run (they count against the budgets and are left alone).
    pub probe_drained: bool,
    pub journal: Journal,
    /// Nodes a dead controller left mid-step: their checks wait for any step still
    /// running there (see [`super::node_work::settle_command`]).
    pub settle: HashSet<NodeId>,
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

    /// Closes the masters of nodes the run will not use, so a 2,000-node check does not
    /// keep 2,000 ssh processes alive through a long rollout.
    pub async fn keep_only(&mut self, keep: &dyn Fn(NodeId) -> bool) {
        let drop_ids: Vec<NodeId> = self.0.keys().copied().filter(|id| !keep(*id)).collect();
        let mut set = JoinSet::new();
        for id in drop_ids {
            if let Some(c) = self.0.remove(&id) {
                set.spawn(c.close());
            }
        }
        while set.join_next().await.is_some() {}
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
        }
    }

    /// `drover: <workflow> v<version> run <id>`: the scheduler's drain reason.
    pub fn reason(&self) -> String {
        format!(
            "drover: {} v{} run {}",
            self.workflow.name,
            self.workflow.version,
            self.journal.run()
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
        }
    }
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
/// closed.
pub async fn check_all<K: Connector>(
    cx: &Arc<RunContext<K>>,
    nodes: &[NodeId],
    interrupts: &watch::Receiver<u32>,
) -> Result<Checked<K::Conn>, Interrupted> {
    let _ = cx.events.send(RunEvent::CheckStarted { nodes: nodes.len() });
    let sem = Arc::new(Semaphore::new(cx.forks.max(1)));
    let mut set = JoinSet::new();
    for &id in nodes {
        let cx = Arc::clone(cx);
        let sem = Arc::clone(&sem);
        let mut stop = interrupts.clone();
        set.spawn(async move {
            if pressed(&stop) {
                return None;
            }
            let _permit = tokio::select! {
                permit = sem.acquire_owned() => permit,
                () = next_press(&mut stop) => return None,
            };
            let job = cx.job(id);
            let (result, conn) = match cx.connector.connect(job.node).await {
                Ok(conn) => {
                    if pressed(&stop) {
                        conn.close().await;
                        return None;
                    }
                    if cx.settle.contains(&id) {
                        let wait =
                            super::node_work::settle_command(&job.node.name, cx.workflow.max_step_timeout());
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
                Err(e) => (CheckResult::error(e.to_string()), None),
            };
            let drained = if cx.probe_drained && result.class != super::check_result::Class::Error {
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
            let _ = cx.events.send(RunEvent::NodeChecked {
                node: job.node.name.clone(),
                class: result.class,
                needed: result
                    .needed
                    .iter()
                    .map(|i| cx.workflow.steps[*i].name.clone())
                    .collect(),
                error: result.error.clone(),
            });
            Some((id, result, conn, drained))
        });
    }
    let mut results = HashMap::new();
    let mut conns = HashMap::new();
    let mut drained = HashSet::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(Some((id, r, c, d))) = joined {
            results.insert(id, r);
            if let Some(c) = c {
                conns.insert(id, c);
            }
            if d {
                drained.insert(id);
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

/// Runs the plan. `spec` carries the budgets and, for a resumed run, where each node
/// stood. `interrupts` counts Ctrl-C presses.
pub async fn execute<K: Connector>(
    cx: Arc<RunContext<K>>,
    plan: &Plan,
    work: Work,
    conns: &mut Connections<K::Conn>,
    spec: RolloutSpec,
    mut interrupts: watch::Receiver<u32>,
) -> RunResult {
    let Work {
        steps,
        errors,
        skips,
        drained,
    } = work;
    let steps = Arc::new(steps);
    let mut rollout = Rollout::new(plan, spec);
    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
    let (rtx, mut rrx) = mpsc::unbounded_channel::<Report<K::Conn>>();
    let mut tasks = JoinSet::new();
    // Holding failed nodes: never aborted, always awaited.
    let mut holds = JoinSet::new();
    let mut result = RunResult::default();
    let mut last_error: HashMap<NodeId, String> = HashMap::new();
    let mut started = HashSet::new();
    let mut left_drained = drained;

    let mut pending = rollout.start();
    loop {
        for action in pending.drain(..) {
            match action {
                Action::PhaseStarted { name, nodes, .. } => {
                    let _ = cx.events.send(RunEvent::PhaseStarted { phase: name, nodes });
                }
                Action::Start {
                    node,
                    from_step,
                    attempt,
                } => {
                    started.insert(node);
                    let cx = Arc::clone(&cx);
                    let rtx = rtx.clone();
                    let steps = Arc::clone(&steps);
                    let conn = conns.take(node);
                    let was_drained = left_drained.contains(&node);
                    let untouched = errors
                        .get(&node)
                        .map(|e| NodeEnd::Failed {
                            pos: from_step,
                            error: e.clone(),
                            drained: was_drained,
                        })
                        .or_else(|| skips.get(&node).map(|why| NodeEnd::Skipped(why.clone())));
                    tasks.spawn(async move {
                        let name = cx.inventory.node(node).name.clone();
                        let _ = cx.events.send(RunEvent::NodeStarted {
                            node: name.clone(),
                            attempt,
                        });
                        let mut conn = match conn {
                            Some(c) => Some(c),
                            None => cx.connector.connect(cx.inventory.node(node)).await.ok(),
                        };
                        let list = steps.get(&node).cloned().unwrap_or_default();
                        let reason = cx.reason();
                        // Unreachable with work to do: nothing is touched (not even drained).
                        let end = if let Some(end) = untouched {
                            end
                        } else if conn.is_none() && !list.is_empty() {
                            NodeEnd::Failed {
                                pos: from_step,
                                error: "no connection to the node".into(),
                                drained: was_drained,
                            }
                        } else {
                            cx.cycle(node, &reason)
                                .run(&mut conn, &list, from_step, attempt, was_drained)
                                .await
                        };
                        let _ = rtx.send(Report { node, conn, end });
                    });
                }
                Action::RetryAfter { node, after, attempt } => {
                    let _ = cx.events.send(RunEvent::NodeRetry {
                        node: cx.inventory.node(node).name.clone(),
                        attempt,
                        after,
                    });
                    let tx = tx.clone();
                    tasks.spawn(async move {
                        tokio::time::sleep(after).await;
                        let _ = tx.send(Input::RetryDue(node));
                    });
                }
                Action::NodeFailed { node, drained } => {
                    let error = last_error
                        .get(&node)
                        .cloned()
                        .unwrap_or_else(|| "run stopped before its retry".into());
                    let _ = cx.events.send(RunEvent::NodeFinished {
                        node: cx.inventory.node(node).name.clone(),
                        ok: false,
                        error: Some(error.clone()),
                    });
                    result.failed.push((node, error.clone()));
                    let cx = Arc::clone(&cx);
                    let conn = conns.take(node);
                    holds.spawn(async move {
                        let name = cx.inventory.node(node).name.clone();
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
                    });
                }
                Action::Soak(d) => {
                    let _ = cx.events.send(RunEvent::Soak { duration: d });
                    let tx = tx.clone();
                    tasks.spawn(async move {
                        tokio::time::sleep(d).await;
                        let _ = tx.send(Input::SoakOver);
                    });
                }
                Action::Finished(o) => {
                    result.outcome = Some(o);
                }
            }
        }
        if result.outcome.is_some() {
            break;
        }
        tokio::select! {
            report = rrx.recv() => {
                let Some(Report { node, conn, end }) = report else { break };
                if let Some(c) = conn {
                    conns.put(node, c);
                }
                let name = cx.inventory.node(node).name.clone();
                let input = match end {
                    NodeEnd::Done => {
                        left_drained.remove(&node);
                        result.succeeded.push(node);
                        let _ = cx.events.send(RunEvent::NodeFinished { node: name, ok: true, error: None });
                        Input::Succeeded(node)
                    }
                    NodeEnd::Failed { pos, error, drained } => {
                        if drained {
                            left_drained.insert(node);
                        } else {
                            left_drained.remove(&node);
                        }
                        last_error.insert(node, error);
                        Input::Failed { node, step: pos, drained }
                    }
                    NodeEnd::Held(why) => {
                        result.held.push((node, why.clone()));
                        let _ = cx.events.send(RunEvent::NodeFinished { node: name, ok: false, error: Some(why) });
                        Input::Held(node)
                    }
                    NodeEnd::Skipped(why) => {
                        left_drained.remove(&node);
                        result.skipped.push((node, why.clone()));
                        let _ = cx.events.send(RunEvent::NodeFinished { node: name, ok: false, error: Some(why) });
                        Input::Skipped(node)
                    }
                };
                pending = rollout.handle(input);
            }
            input = rx.recv() => {
                let Some(input) = input else { break };
                pending = rollout.handle(input);
            }
            // Not `interrupts.changed()` with a `pending()` in the handler when the
            // sender is gone: awaiting in a handler blocks the whole loop, and the run
            // would never see its nodes finish.
            () = next_press(&mut interrupts) => {
                let presses = *interrupts.borrow();
                if presses >= 2 {
                    tasks.abort_all();
                    result.aborted = true;
                    result.outcome = Some(Outcome::Stopped { stop: StopReason::Interrupted });
                    break;
                }
                pending = rollout.handle(Input::Interrupt);
            }
        }
    }
    // Retry and soak timers may still be sleeping; nodes are all settled.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    while holds.join_next().await.is_some() {}
    result.not_started = plan
        .nodes
        .iter()
        .copied()
        .filter(|n| !started.contains(n))
        .collect();
    if let Some(o) = &result.outcome {
        let _ = cx.events.send(RunEvent::RunFinished {
            outcome: super::event::outcome_json(o, &cx.inventory),
        });
    }
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

    fn context(p: &Project) -> Arc<RunContext<LocalConnector>> {
        let (events, _) = mpsc::unbounded_channel();
        Arc::new(RunContext {
            connector: LocalConnector,
            inventory: Arc::new(p.inventory.clone()),
            workflow: Arc::new(p.workflows[0].clone()),
            templates: Arc::new(TemplateEngine::new()),
            extra_vars: serde_json::Map::new(),
            site: serde_json::Value::Null,
            forks: 2,
            log: None,
            events,
            hooks: None,
            probe_drained: false,
            journal: Journal::new(None, "test".into()),
            settle: HashSet::new(),
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
        let run = execute(Arc::clone(&cx), &plan, work, &mut checked.conns, spec, irx);
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
}
