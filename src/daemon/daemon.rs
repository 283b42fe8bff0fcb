//! `drover serve`: a long-running process that owns the site's rollouts.
//!
//! On start it resumes every run it left running (the service's resume path) before
//! anything else, then serves `/healthz` and `/metrics`, and takes [`Action`]s from a
//! channel: rollouts (from the git watcher) and converge passes (from its timers). One
//! rollout per workflow at a time. A stop request (SIGTERM) starts no new node, lets
//! the nodes in flight finish their cycle within the shutdown deadline (then aborts
//! their steps, leaving what they drained recorded for the next start), and returns.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::action::Action;
use super::daemon_error::DaemonError;
use super::http::{AppState, router};
use super::metrics::Metrics;
use crate::engine::RunEvent as EngineEvent;
use crate::project::Project;
use crate::service::{self, Outcome, RunEvent, RunRequest, Trigger};
use crate::store::{RunStatus, Store};

/// Where the listener binds when the site has no `server.listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";

/// How long a stop waits for the nodes in flight by default.
pub const DEFAULT_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(120);

/// Where converge passes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvergeClock {
    /// A timer per workflow with `converge.every`, first due one period after start.
    Timer,
    /// No timers: passes only when an [`Action::Converge`] is sent (tests drive them).
    Manual,
}

#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub site: PathBuf,
    /// Overrides `server.listen` (tests bind `127.0.0.1:0`).
    pub listen: Option<SocketAddr>,
    pub shutdown_deadline: Duration,
    pub converge: ConvergeClock,
    /// Whether a converge pass reads the site from its files again first (so an edited
    /// inventory is picked up). A site followed in git sets this off: its snapshots come
    /// with [`Action::Rollout`].
    pub reload_site: bool,
}

impl DaemonOptions {
    pub fn new(site: PathBuf) -> DaemonOptions {
        DaemonOptions {
            site,
            listen: None,
            shutdown_deadline: DEFAULT_SHUTDOWN_DEADLINE,
            converge: ConvergeClock::Timer,
            reload_site: true,
        }
    }
}

/// A running daemon.
pub struct Daemon {
    /// Where `/healthz` and `/metrics` are served.
    pub addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    actions: mpsc::UnboundedSender<Action>,
    stop: watch::Sender<bool>,
    core: JoinHandle<()>,
    http: JoinHandle<std::io::Result<()>>,
    notifier: crate::notification::Notifier,
}

impl Daemon {
    /// Loads the site, resumes the runs it left, binds the listener and starts taking
    /// actions.
    pub async fn start(opts: DaemonOptions) -> Result<Daemon, DaemonError> {
        let project = load(&opts.site)?;
        let store = service::open_store(&project).map_err(|r| DaemonError::StateStore(r.message))?;
        let metrics = Arc::new(Metrics::new());
        let (actions, actions_rx) = mpsc::unbounded_channel();
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(false);
        let mut core = Core {
            opts: opts.clone(),
            project: Arc::new(project),
            store: store.clone(),
            metrics: Arc::clone(&metrics),
            active: HashMap::new(),
            waiting: HashMap::new(),
            timers: HashMap::new(),
            actions: actions.clone(),
            ended: ended_tx,
            stop: stop_rx.clone(),
        };
        // Before anything else: what a previous daemon left running.
        core.resume_left_runs();
        let addr = opts
            .listen
            .or_else(|| core.project.site.server.as_ref().map(|s| s.listen))
            .unwrap_or_else(|| {
                DEFAULT_LISTEN
                    .parse()
                    .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8470)))
            });
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| DaemonError::Listen { addr, source })?;
        let addr = listener.local_addr().map_err(DaemonError::Http)?;
        let notifier = crate::notification::Notifier::spawn(
            store.clone(),
            &core.project.site.notifications,
            stop_rx.clone(),
        )
        .map_err(|e| DaemonError::Notifications(e.to_string()))?;
        let app = router(AppState {
            metrics: Arc::clone(&metrics),
            store,
        });
        let mut http_stop = stop_rx.clone();
        let http = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = http_stop.wait_for(|s| *s).await;
                })
                .await
        });
        core.reconcile_timers();
        let deadline = opts.shutdown_deadline;
        let core = tokio::spawn(core.run(actions_rx, ended_rx, deadline));
        info!(%addr, "drover serve: listening");
        Ok(Daemon {
            addr,
            metrics,
            actions,
            stop,
            core,
            http,
            notifier,
        })
    }

    /// Where to send actions (the git watcher's rollouts, extra converge passes).
    pub fn actions(&self) -> mpsc::UnboundedSender<Action> {
        self.actions.clone()
    }

    /// Stops: no new node starts, the nodes in flight finish their cycle within the
    /// shutdown deadline, every run's state is written; returns when all is done.
    pub async fn shutdown(self) -> Result<(), DaemonError> {
        let _ = self.stop.send(true);
        let _ = self.core.await;
        // Whatever is not sent yet stays in the outbox for the next start.
        self.notifier.join().await;
        match self.http.await {
            Ok(Err(e)) => Err(DaemonError::Http(e)),
            _ => Ok(()),
        }
    }
}

fn load(site: &std::path::Path) -> Result<Project, DaemonError> {
    Project::load(site).map_err(|diags| {
        DaemonError::Invalid(
            diags
                .iter()
                .map(|d| d.render(false))
                .collect::<Vec<_>>()
                .join("\n\n"),
        )
    })
}

/// A rollout the daemon drives.
struct Active {
    run_id: String,
    interrupts: watch::Sender<u32>,
}

/// A rollout that ended.
struct Ended {
    workflow: String,
    run_id: String,
}

/// The daemon's loop and what it owns.
struct Core {
    opts: DaemonOptions,
    /// The site in force.
    project: Arc<Project>,
    store: Store,
    metrics: Arc<Metrics>,
    /// By workflow: at most one rollout each.
    active: HashMap<String, Active>,
    /// Rollouts that wait for their workflow's active one, by workflow (newest wins).
    waiting: HashMap<String, Action>,
    /// Converge timers by workflow, with their period.
    timers: HashMap<String, (Duration, JoinHandle<()>)>,
    actions: mpsc::UnboundedSender<Action>,
    ended: mpsc::UnboundedSender<Ended>,
    stop: watch::Receiver<bool>,
}

impl Core {
    async fn run(
        mut self,
        mut actions: mpsc::UnboundedReceiver<Action>,
        mut ended: mpsc::UnboundedReceiver<Ended>,
        deadline: Duration,
    ) {
        let mut stop = self.stop.clone();
        loop {
            tokio::select! {
                a = actions.recv() => match a {
                    Some(a) => self.act(a),
                    None => break,
                },
                Some(e) = ended.recv() => self.end(e),
                r = stop.wait_for(|s| *s) => {
                    let _ = r;
                    break;
                }
            }
        }
        for (_, (_, t)) in self.timers.drain() {
            t.abort();
        }
        self.waiting.clear();
        if self.active.is_empty() {
            info!("stopped");
            return;
        }
        info!(
            rollouts = self.active.len(),
            "stopping: no new node starts; the nodes in flight finish their cycle"
        );
        for a in self.active.values() {
            let _ = a.interrupts.send(1);
        }
        let wind_down = tokio::time::timeout(deadline, async {
            while !self.active.is_empty() {
                match ended.recv().await {
                    Some(e) => {
                        self.active.remove(&e.workflow);
                    }
                    None => break,
                }
            }
        })
        .await;
        if wind_down.is_err() {
            warn!(
                deadline = %humantime::format_duration(deadline),
                "the shutdown deadline passed: aborting the steps in flight (what they drained stays recorded for the next start)"
            );
            for a in self.active.values() {
                let _ = a.interrupts.send(2);
            }
            while !self.active.is_empty() {
                match ended.recv().await {
                    Some(e) => {
                        self.active.remove(&e.workflow);
                    }
                    None => break,
                }
            }
        }
        info!("stopped");
    }

    fn act(&mut self, a: Action) {
        match a {
            Action::Rollout {
                site,
                workflow,
                trigger,
            } => {
                if let Some(active) = self.active.get(&workflow) {
                    info!(%workflow, run = %active.run_id, %trigger, "rollout waits for the active one");
                    self.waiting.insert(
                        workflow.clone(),
                        Action::Rollout {
                            site,
                            workflow,
                            trigger,
                        },
                    );
                    return;
                }
                self.project = site;
                self.reconcile_timers();
                let (itx, irx) = watch::channel(0u32);
                match RunRequest::new(Arc::clone(&self.project), &workflow, trigger, irx) {
                    Ok(req) => self.start(&workflow, req, itx),
                    Err(r) => warn!(%workflow, "rollout not started: {r}"),
                }
            }
            Action::Converge { workflow } => self.converge(&workflow),
        }
    }

    fn converge(&mut self, workflow: &str) {
        if let Some(a) = self.active.get(workflow) {
            debug!(%workflow, run = %a.run_id, "converge pass skipped: a rollout is active");
            return;
        }
        if self.opts.reload_site {
            match load(&self.opts.site) {
                Ok(p) => {
                    self.project = Arc::new(p);
                    self.reconcile_timers();
                }
                Err(e) => warn!(%workflow, "converging with the last valid site: {e}"),
            }
        }
        let Some(wf) = self.project.workflows.iter().find(|w| w.name == workflow) else {
            warn!(%workflow, "converge pass skipped: the workflow is no longer in the site");
            return;
        };
        if let Some(run) = waits_for_human(&self.store, &wf.name, wf.version) {
            info!(%workflow, %run, version = wf.version, "converge pass skipped: the last rollout of this version was stopped and waits for a human (resume it, or roll out a new version)");
            return;
        }
        let (itx, irx) = watch::channel(0u32);
        match RunRequest::new(Arc::clone(&self.project), workflow, Trigger::Converge, irx) {
            Ok(mut req) => {
                // A pass that finds every node GOOD records no run.
                req.record_when_idle = false;
                self.start(workflow, req, itx);
            }
            Err(r) => warn!(%workflow, "converge pass not started: {r}"),
        }
    }

    fn end(&mut self, e: Ended) {
        if self.active.get(&e.workflow).is_some_and(|a| a.run_id == e.run_id) {
            self.active.remove(&e.workflow);
        }
        if *self.stop.borrow() {
            return;
        }
        if let Some(next) = self.waiting.remove(&e.workflow) {
            self.act(next);
        }
    }

    fn start(&mut self, workflow: &str, req: RunRequest, interrupts: watch::Sender<u32>) {
        let project = Arc::clone(&req.project);
        let trigger = req.trigger.clone();
        match service::start(req) {
            Ok(handle) => {
                info!(%workflow, run = %handle.run_id, %trigger, "rollout started");
                self.active.insert(
                    workflow.to_string(),
                    Active {
                        run_id: handle.run_id.clone(),
                        interrupts,
                    },
                );
                tokio::spawn(follow(
                    handle,
                    workflow.to_string(),
                    project,
                    Arc::clone(&self.metrics),
                    self.ended.clone(),
                ));
            }
            Err(r) => warn!(%workflow, %trigger, "rollout not started: {r}"),
        }
    }

    /// Resumes the runs a daemon started and left unfinished: interrupted by a stop,
    /// or still marked running by a controller that is gone (kill -9). Runs started by
    /// hand (`drover run`) are left to their operator.
    fn resume_left_runs(&mut self) {
        let ttl = self.project.site.leases.ttl;
        let abandoned: Vec<String> = self
            .store
            .abandoned(jiff::Timestamp::now(), ttl)
            .map(|v| v.into_iter().map(|r| r.id).collect())
            .unwrap_or_default();
        let Ok(runs) = self.store.runs() else {
            warn!("cannot read the runs to resume");
            return;
        };
        // Newest first: one run per workflow is resumed; an older one is left.
        for r in runs {
            let left = r.status == RunStatus::Interrupted
                || (r.status == RunStatus::Running && abandoned.contains(&r.id));
            if !left {
                continue;
            }
            let trigger = self
                .store
                .trigger(&r.id)
                .ok()
                .flatten()
                .and_then(|t| serde_json::from_value::<Trigger>(t).ok());
            let Some(trigger) = trigger.filter(|t| !matches!(t, Trigger::Cli { .. })) else {
                continue;
            };
            if self.active.contains_key(&r.workflow) {
                warn!(workflow = %r.workflow, run = %r.id, "left unfinished, not resumed: a newer run of the workflow is being resumed");
                continue;
            }
            let detail = match self.store.run(&r.id) {
                Ok(Some(d)) => d,
                _ => continue,
            };
            let (itx, irx) = watch::channel(0u32);
            match RunRequest::resume(Arc::clone(&self.project), detail, trigger, irx) {
                Ok(req) => {
                    info!(workflow = %r.workflow, run = %r.id, "resuming a run left unfinished");
                    self.start(&r.workflow, req, itx);
                }
                Err(e) => warn!(workflow = %r.workflow, run = %r.id, "not resumed: {e}"),
            }
        }
    }

    /// One timer per workflow with `converge.every`, matching the site in force.
    fn reconcile_timers(&mut self) {
        if self.opts.converge != ConvergeClock::Timer {
            return;
        }
        let want: HashMap<String, Duration> = self
            .project
            .workflows
            .iter()
            .filter_map(|w| w.converge.map(|e| (w.name.clone(), e)))
            .collect();
        self.timers.retain(|name, (every, task)| {
            let keep = want.get(name) == Some(every);
            if !keep {
                task.abort();
            }
            keep
        });
        for (name, every) in want {
            if self.timers.contains_key(&name) {
                continue;
            }
            let tx = self.actions.clone();
            let workflow = name.clone();
            let task = tokio::spawn(async move {
                let start = tokio::time::Instant::now() + every;
                let mut tick = tokio::time::interval_at(start, every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    if tx
                        .send(Action::Converge {
                            workflow: workflow.clone(),
                        })
                        .is_err()
                    {
                        break;
                    }
                }
            });
            self.timers.insert(name, (every, task));
        }
    }
}

/// The latest run of `workflow` at `version`, when it was stopped (by a failure
/// budget, a failed canary, a blocked budget): such a rollout waits for a human.
fn waits_for_human(store: &Store, workflow: &str, version: u32) -> Option<String> {
    let runs = store.runs().ok()?;
    let last = runs
        .into_iter()
        .find(|r| r.workflow == workflow && r.version == version)?;
    (last.status == RunStatus::Stopped).then_some(last.id)
}

/// Follows one rollout: its events into the log and the metrics, its outcome into the
/// log, and its end back to the loop.
async fn follow(
    mut handle: service::RunHandle,
    workflow: String,
    project: Arc<Project>,
    metrics: Arc<Metrics>,
    ended: mpsc::UnboundedSender<Ended>,
) {
    let run_id = handle.run_id.clone();
    loop {
        match handle.events.recv().await {
            Ok(RunEvent::Engine(EngineEvent::StepFinished {
                node, step, duration, ..
            })) => {
                metrics.observe_step(duration);
                debug!(run = %run_id, %node, %step, ms = duration.as_millis() as u64, "step finished");
            }
            Ok(RunEvent::Engine(EngineEvent::NodeFinished { node, ok, error })) => {
                if ok {
                    info!(run = %run_id, %node, "node done");
                } else {
                    warn!(run = %run_id, %node, error = error.as_deref().unwrap_or(""), "node failed");
                }
            }
            Ok(RunEvent::Engine(EngineEvent::PhaseStarted { phase, nodes })) => {
                info!(run = %run_id, %phase, nodes, "phase started");
            }
            Ok(RunEvent::Planned(p)) => {
                info!(run = %run_id, %workflow, nodes = p.plan.nodes.len(), "planned");
            }
            Ok(RunEvent::Notice(n)) => info!(run = %run_id, "{n}"),
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                debug!(run = %run_id, missed = n, "events missed");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
        }
    }
    match handle.outcome().await {
        Outcome::Finished(f) => {
            let outcome = crate::engine::outcome_json(&f.outcome, &project.inventory);
            info!(run = %run_id, %workflow, succeeded = f.result.succeeded.len(), failed = f.result.failed.len(), %outcome, "rollout ended");
        }
        Outcome::NothingToDo => info!(%workflow, "converged: every target is up to date"),
        Outcome::Refused(r) => warn!(%workflow, "rollout not run: {r}"),
        other => info!(run = %run_id, %workflow, outcome = ?other, "rollout ended"),
    }
    let _ = ended.send(Ended { workflow, run_id });
}
