//! `drover serve`: a long-running process that owns the site's rollouts.
//!
//! On start it resumes every run it left running (the service's resume path) before
//! anything else, then serves `/healthz` and `/metrics`, follows the site's source and
//! takes [`Action`]s from a channel (converge passes from its timers, rollouts asked
//! for by hand). The source is the git repository when the site sets `git:` (each
//! accepted commit is the site in force, and the workflows it changed roll out under
//! the [`RolloutQueue`]'s supersede rules), else the site's files, watched (a valid
//! edit is in force at once). One rollout per workflow at a time. A stop request
//! (SIGTERM) starts no new node, lets the nodes in flight finish their cycle within the
//! shutdown deadline (then aborts their steps, leaving what they drained recorded for
//! the next start), and returns.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use super::action::Action;
use super::daemon_error::DaemonError;
use super::http::{AppState, router};
use super::metrics::Metrics;
use super::rollout_queue::{QueueAction, RolloutQueue, RunEnd};
use super::run_order::{NotStarted, RunOrder, StartedRun};
use crate::api::{ApiContext, LiveRuns, TokenSet};
use crate::engine::{NodeFinal, RunEvent as EngineEvent};
use crate::inventory::Inventory;
use crate::project::Project;
use crate::service::{self, GiveUp, GiveUpReason, Outcome, RunEvent, RunRequest, Trigger};
use crate::source::{
    CommitInfo, FetchTrigger, GitSource, RolloutRequest, SiteChange, SiteSnapshot, SiteSource, SiteWatcher,
    SourceEvent, TreePins,
};
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
    /// How long a slash command's answer may take before the command is acknowledged
    /// and its answer posted to the command's `response_url` instead (Slack allows 3 s);
    /// zero: always so. Tests shrink it.
    pub slack_answer_within: Duration,
}

/// Within Slack's 3 s, with room for the way there and back.
pub const SLACK_ANSWER_WITHIN: Duration = Duration::from_millis(2500);

impl DaemonOptions {
    pub fn new(site: PathBuf) -> DaemonOptions {
        DaemonOptions {
            site,
            listen: None,
            shutdown_deadline: DEFAULT_SHUTDOWN_DEADLINE,
            converge: ConvergeClock::Timer,
            reload_site: true,
            slack_answer_within: SLACK_ANSWER_WITHIN,
        }
    }
}

/// A running daemon.
pub struct Daemon {
    /// Where `/healthz` and `/metrics` are served.
    pub addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    actions: mpsc::UnboundedSender<Action>,
    fetch: Option<FetchTrigger>,
    stop: watch::Sender<bool>,
    core: JoinHandle<()>,
    http: JoinHandle<std::io::Result<()>>,
    notifier: crate::notification::Notifier,
    /// systemd's `NOTIFY_SOCKET`, when run under it.
    systemd: Option<Arc<super::SdNotify>>,
}

impl Daemon {
    /// Loads the site, resumes the runs it left, binds the listener, starts following
    /// the site's source and taking actions.
    pub async fn start(opts: DaemonOptions) -> Result<Daemon, DaemonError> {
        let local = load(&opts.site)?;
        let store = service::open_store(&local).map_err(|r| DaemonError::StateStore(r.message))?;
        let metrics = Arc::new(Metrics::new());
        let (actions, actions_rx) = mpsc::unbounded_channel();
        let (runs_tx, runs_rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(false);
        let in_git = local.site.git.is_some();
        let left = left_runs(&store, local.site.leases.ttl);
        // A resumed run of an earlier commit finishes with that commit's site.
        let resume_commits: Vec<String> = left
            .iter()
            .filter_map(|l| l.recorded.commit().map(String::from))
            .collect();
        let mut source_stop = stop_rx.clone();
        let source = SiteSource::start(
            &opts.site,
            // The source keeps its own copy (the site its edits replace, the settings of
            // the clone).
            load(&opts.site)?,
            store.clone(),
            &resume_commits,
            async move {
                let _ = source_stop.wait_for(|s| *s).await;
            },
        )?;
        let (project, commit, src, earlier) = match source {
            SiteSource::Git {
                source,
                events,
                in_force,
                earlier,
            } => match in_force {
                Some(snap) => (
                    Arc::clone(&snap.project),
                    Some(snap.commit.clone()),
                    Source::Git { source, events },
                    earlier,
                ),
                None => (Arc::new(local), None, Source::Git { source, events }, earlier),
            },
            SiteSource::Files { watcher, changes } => (
                Arc::new(local),
                None,
                Source::Files {
                    _watcher: watcher,
                    changes,
                },
                HashMap::new(),
            ),
        };
        let fetch = match &src {
            Source::Git { source, .. } => Some(source.trigger.clone()),
            Source::Files { .. } => None,
        };
        if let Some(c) = &commit {
            metrics.set_commit(&c.sha);
            info!(commit = %c, "the commit in force");
        }
        let (inventory, inventory_rx) = watch::channel(Arc::new(project.inventory.clone()));
        let tokens = TokenSet::load(
            project
                .site
                .server
                .as_ref()
                .map_or(&[][..], |s| s.tokens.as_slice()),
        )
        .map_err(|e| DaemonError::Invalid(e.to_string()))?;
        if tokens.is_empty() {
            warn!("no API token in server.tokens: the API refuses every request (401)");
        }
        let (site_tx, site_rx) = watch::channel(Arc::clone(&project));
        let live = LiveRuns::default();
        let api = Arc::new(ApiContext {
            tokens,
            site: site_rx,
            store: store.clone(),
            live: live.clone(),
            actions: actions.clone(),
            reads: crate::api::ReadCache::default(),
        });
        let mut core = Core {
            site_tx,
            live,
            opts: opts.clone(),
            in_git,
            project,
            commit,
            store: store.clone(),
            metrics: Arc::clone(&metrics),
            active: HashMap::new(),
            waiting: HashMap::new(),
            queue: RolloutQueue::new(),
            timers: HashMap::new(),
            actions: actions.clone(),
            runs: runs_tx,
            stop: stop_rx.clone(),
            inventory,
            inventory_rx,
            earlier,
        };
        // Before anything else: what a previous daemon left running, then the versions
        // it had accepted and not yet rolled out (queued behind those runs, or started
        // now), as the rollout queue decided them when their commits arrived.
        core.resume_left_runs(left);
        core.restore_wanted();
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
        .map_err(|e| DaemonError::Secrets(e.to_string()))?;
        metrics.set_sinks(notifier.sink_ids().to_vec());
        let hooks = hooks_state(&core, actions.clone(), fetch.clone())?;
        let app = router(AppState {
            metrics: Arc::clone(&metrics),
            store,
            api,
        })
        .merge(crate::hooks::router(hooks));
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
        let systemd = super::SdNotify::from_env().map(Arc::new);
        let watchdog = systemd
            .as_ref()
            .and_then(|n| super::SdNotify::watchdog_interval().map(|every| (Arc::clone(n), every)));
        info!(%addr, "drover serve: listening");
        // Runs resumed, the listener bound: ready for what is ordered after it. Said
        // before the loop starts, because the loop's first act is a watchdog ping and
        // systemd must hear READY=1 first.
        if let Some(n) = &systemd {
            n.ready();
        }
        let core = tokio::spawn(core.run(actions_rx, runs_rx, src, deadline, watchdog));
        Ok(Daemon {
            addr,
            metrics,
            actions,
            fetch,
            stop,
            core,
            http,
            notifier,
            systemd,
        })
    }

    /// Where to send actions (extra converge passes, rollouts asked for by hand).
    pub fn actions(&self) -> mpsc::UnboundedSender<Action> {
        self.actions.clone()
    }

    /// Asks the git watcher to fetch now (the push webhook's handle); `None` when the
    /// site is not in git.
    pub fn fetch_trigger(&self) -> Option<FetchTrigger> {
        self.fetch.clone()
    }

    /// Stops: no new node starts, the nodes in flight finish their cycle within the
    /// shutdown deadline, every run's state is written; returns when all is done.
    pub async fn shutdown(self) -> Result<(), DaemonError> {
        if let Some(n) = &self.systemd {
            n.stopping();
        }
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

/// The hooks' shared state, their secrets read now (a missing one stops the start,
/// naming where it should come from).
fn hooks_state(
    core: &Core,
    actions: mpsc::UnboundedSender<Action>,
    fetch: Option<FetchTrigger>,
) -> Result<crate::hooks::HooksState, DaemonError> {
    let site = &core.project.site;
    let read = |what: &str, s: &crate::units::SecretRef| {
        s.read()
            .map(Arc::new)
            .map_err(|e| DaemonError::Secrets(format!("{what}: {e}")))
    };
    let slack = match &site.slack_commands.signing_secret {
        Some(s) => Some((
            read("slack.signing_secret", s)?,
            Arc::new(site.slack_commands.clone()),
        )),
        None => None,
    };
    let git_secret = site
        .hooks
        .git_secret
        .as_ref()
        .map(|s| read("hooks.git.secret", s))
        .transpose()?;
    // Read again with every alarm (a rotated file takes effect); read now so a missing
    // one stops the start.
    for t in &core.project.triggers {
        read(&format!("triggers.{}.secret", t.name), &t.secret)?;
    }
    Ok(crate::hooks::HooksState {
        slack,
        git_secret,
        actions,
        store: core.store.clone(),
        inventory: core.inventory_rx.clone(),
        site: core.site_tx.subscribe(),
        alarms: Arc::new(crate::hooks::AlarmQueues::default()),
        fetch,
        replay: Arc::new(crate::hooks::ReplayGuard::default()),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default(),
        answer_within: core.opts.slack_answer_within,
    })
}

fn load(site: &std::path::Path) -> Result<Project, DaemonError> {
    Project::load(site).map_err(|diags| DaemonError::Invalid(render(&diags)))
}

fn render(diags: &[crate::diag::Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.render(false))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Where the site in force comes from.
enum Source {
    Git {
        source: GitSource,
        events: mpsc::UnboundedReceiver<SourceEvent>,
    },
    Files {
        // Watches until dropped.
        _watcher: SiteWatcher,
        changes: mpsc::UnboundedReceiver<SiteChange>,
    },
}

/// A rollout the daemon drives.
struct Active {
    run_id: String,
    interrupts: Arc<watch::Sender<u32>>,
    /// The commit whose exported tree the run reads its files from.
    tree: Option<String>,
    /// Set when a newer commit superseded the run: its follower closes the record.
    superseded: watch::Sender<Option<String>>,
}

/// What a run's follower tells the loop.
enum RunMsg {
    /// The run's first phase after the canary began: a newer version now queues.
    CanaryPassed { run: String },
    Ended {
        workflow: String,
        run_id: String,
        end: RunEnd,
    },
}

/// The daemon's loop and what it owns.
pub(super) struct Core {
    /// The site in force, for the API.
    site_tx: watch::Sender<Arc<Project>>,
    /// The rollouts in flight, for the API.
    live: LiveRuns,
    opts: DaemonOptions,
    /// The site is followed in git: its files are not read again.
    in_git: bool,
    /// The site in force.
    project: Arc<Project>,
    /// The commit the site in force is from (git only; `None` before the first).
    commit: Option<CommitInfo>,
    store: Store,
    metrics: Arc<Metrics>,
    /// By workflow: at most one rollout each.
    active: HashMap<String, Active>,
    /// Rollouts asked for by hand that wait for their workflow's active one (newest wins).
    waiting: HashMap<String, Action>,
    /// Which commit's rollout starts, waits or supersedes.
    queue: RolloutQueue,
    /// Converge timers by workflow, with their period.
    timers: HashMap<String, (Duration, JoinHandle<()>)>,
    actions: mpsc::UnboundedSender<Action>,
    runs: mpsc::UnboundedSender<RunMsg>,
    stop: watch::Receiver<bool>,
    /// The inventory in force, watched by every run (nodes removed are not started).
    inventory: watch::Sender<Arc<Inventory>>,
    inventory_rx: watch::Receiver<Arc<Inventory>>,
    /// The sites of earlier commits whose runs a restart resumes, by sha (git only):
    /// each such run finishes the version it began, with its commit's files.
    earlier: HashMap<String, Arc<SiteSnapshot>>,
}

impl Core {
    async fn run(
        mut self,
        mut actions: mpsc::UnboundedReceiver<Action>,
        mut runs: mpsc::UnboundedReceiver<RunMsg>,
        src: Source,
        deadline: Duration,
        watchdog: Option<(Arc<super::SdNotify>, Duration)>,
    ) {
        let mut stop = self.stop.clone();
        // Fed from this loop, so a loop that is stuck starves systemd's watchdog.
        let mut feed = watchdog.map(|(n, every)| (n, tokio::time::interval(every)));
        let (pins, mut git_events, mut site_changes, git_task, _watcher) = match src {
            Source::Git { source, events } => {
                (Some(source.pins), Some(events), None, Some(source.task), None)
            }
            Source::Files { _watcher, changes } => (None, None, Some(changes), None, Some(_watcher)),
        };
        loop {
            tokio::select! {
                a = actions.recv() => match a {
                    Some(a) => self.act(a),
                    None => break,
                },
                Some(m) = runs.recv() => match m {
                    RunMsg::CanaryPassed { run } => self.queue.canary_passed(&run),
                    RunMsg::Ended { workflow, run_id, end } => self.end(&workflow, &run_id, end, pins.as_ref()),
                },
                Some(e) = recv(&mut git_events) => self.source(e, pins.as_ref()),
                Some(c) = recv(&mut site_changes) => self.site_changed(c),
                () = tick(&mut feed) => {
                    if let Some((n, _)) = &feed {
                        n.watchdog();
                    }
                }
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
        if !self.active.is_empty() {
            self.wind_down(&mut runs, deadline).await;
        }
        if let Some(t) = git_task {
            match t.await {
                Ok(Err(e)) => error!("the git watcher failed: {e}"),
                Err(e) if e.is_panic() => error!("the git watcher panicked"),
                _ => {}
            }
        }
        info!("stopped");
    }

    async fn wind_down(&mut self, runs: &mut mpsc::UnboundedReceiver<RunMsg>, deadline: Duration) {
        info!(
            rollouts = self.active.len(),
            "stopping: no new node starts; the nodes in flight finish their cycle"
        );
        for a in self.active.values() {
            let _ = a.interrupts.send(1);
        }
        let wind_down = tokio::time::timeout(deadline, self.drain_ended(runs)).await;
        if wind_down.is_err() {
            warn!(
                deadline = %humantime::format_duration(deadline),
                "the shutdown deadline passed: aborting the steps in flight (what they drained stays recorded for the next start)"
            );
            for a in self.active.values() {
                let _ = a.interrupts.send(2);
            }
            self.drain_ended(runs).await;
        }
    }

    async fn drain_ended(&mut self, runs: &mut mpsc::UnboundedReceiver<RunMsg>) {
        while !self.active.is_empty() {
            match runs.recv().await {
                Some(RunMsg::Ended { workflow, .. }) => {
                    self.active.remove(&workflow);
                }
                Some(RunMsg::CanaryPassed { .. }) => {}
                None => break,
            }
        }
    }

    /// The site in force from now on: its inventory for every run under way, its
    /// converge periods for the timers.
    fn set_project(&mut self, project: Arc<Project>) {
        if !Arc::ptr_eq(&project, &self.project) {
            self.inventory.send_replace(Arc::new(project.inventory.clone()));
            self.site_tx.send_replace(Arc::clone(&project));
        }
        self.project = project;
        self.reconcile_timers();
    }

    fn source(&mut self, e: SourceEvent, pins: Option<&TreePins>) {
        match e {
            SourceEvent::Accepted {
                site,
                rollouts,
                signature,
            } => self.accepted(&site, rollouts, signature.is_some(), pins),
            SourceEvent::Rejected { commit, why } => {
                let in_force = self
                    .commit
                    .as_ref()
                    .map_or_else(|| "none yet".to_string(), |c| c.short().to_string());
                warn!(
                    %commit,
                    %in_force,
                    "commit rejected: nothing of it runs, the commit in force stays\n{}",
                    why.render()
                );
            }
            SourceEvent::HistoryRewritten { from, to, followed } => {
                if followed {
                    warn!(%from, %to, "the branch was rewritten (a force-push): following it (git.allow_force_push)");
                } else {
                    warn!(%from, %to, "the branch was rewritten (a force-push): not followed; the commit in force stays (set git.allow_force_push: true to follow rewritten history)");
                }
            }
            SourceEvent::FetchFailed {
                error,
                failures,
                retry_in,
            } => {
                self.metrics.fetched(jiff::Timestamp::now(), false);
                warn!(failures, retry_in = %humantime::format_duration(retry_in), "{error}; runs in flight go on");
            }
            SourceEvent::FetchRecovered { after_failures } => {
                info!(after_failures, "fetching works again");
            }
            SourceEvent::Fetched { at } => self.metrics.fetched(at, true),
        }
    }

    fn accepted(
        &mut self,
        site: &SiteSnapshot,
        rollouts: Vec<RolloutRequest>,
        signed: bool,
        pins: Option<&TreePins>,
    ) {
        let old = self.commit.replace(site.commit.clone());
        self.metrics.set_commit(&site.commit.sha);
        self.set_project(Arc::clone(&site.project));
        let names: Vec<&str> = rollouts.iter().map(|r| r.workflow.as_str()).collect();
        info!(
            commit = %site.commit,
            signed,
            changed = %names.join(","),
            "commit accepted: the site in force{}",
            if names.is_empty() {
                " (it changes no workflow's content: nothing rolls out)"
            } else {
                ""
            }
        );
        let actions = self.queue.commit(rollouts);
        self.queue_actions(actions);
        if let (Some(old), Some(pins)) = (old, pins) {
            self.unpin_unused(&old.sha, pins);
        }
    }

    /// Unpins a commit's tree that neither the site in force nor a run uses any more.
    fn unpin_unused(&self, sha: &str, pins: &TreePins) {
        let used = self.commit.as_ref().is_some_and(|c| c.sha == sha)
            || self.active.values().any(|a| a.tree.as_deref() == Some(sha));
        if !used {
            pins.unpin(sha);
        }
    }

    fn site_changed(&mut self, c: SiteChange) {
        match c {
            SiteChange::Reloaded(p) => {
                info!(
                    nodes = p.inventory.nodes().len(),
                    workflows = p.workflows.len(),
                    "site reloaded: the edited site is in force"
                );
                self.set_project(p);
            }
            SiteChange::Rejected(diags) => {
                warn!(
                    "the edited site does not validate: ignored, the site in force stays\n{}",
                    render(&diags)
                );
            }
        }
    }

    fn queue_actions(&mut self, actions: Vec<QueueAction>) {
        for a in actions {
            match a {
                QueueAction::Start(r) => self.start_commit(r),
                QueueAction::Supersede { run, by } => {
                    let a = run
                        .as_deref()
                        .and_then(|id| self.active.values().find(|a| a.run_id == id));
                    match a {
                        Some(a) => {
                            info!(
                                workflow = %by.workflow,
                                run = %a.run_id,
                                commit = %by.commit,
                                "superseded: a newer commit changed the workflow during its canary; the canary stops gracefully (nodes in flight finish) and restarts at the new version"
                            );
                            a.superseded.send_replace(Some(by.commit.sha.clone()));
                            let _ = a.interrupts.send(1);
                        }
                        None => {
                            info!(workflow = %by.workflow, commit = %by.commit, "waits for the rollout being started");
                        }
                    }
                }
                QueueAction::Queue { behind, request } => {
                    info!(
                        workflow = %request.workflow,
                        run = behind.as_deref().unwrap_or(""),
                        commit = %request.commit,
                        "queued: the rollout under way is past its canary; it finishes, then this version rolls out"
                    );
                }
                QueueAction::Replaced { dropped, by } => {
                    info!(
                        workflow = %by.workflow,
                        dropped = %dropped.commit,
                        commit = %by.commit,
                        "a newer commit replaces the waiting one: only the newest rolls out"
                    );
                }
                QueueAction::Resume { run } => self.resume_run(&run, Trigger::Converge),
            }
        }
    }

    /// Starts the rollout of a commit's workflow, at the site in force (which has the
    /// workflow as that commit left it: a later commit changing it would have replaced
    /// this request).
    fn start_commit(&mut self, r: RolloutRequest) {
        let trigger = Trigger::GitCommit {
            sha: r.commit.sha.clone(),
            author: r.commit.author.clone(),
            subject: r.commit.subject.clone(),
        };
        if self.active.contains_key(&r.workflow) {
            // Not the queue's (it knows every run): waits like a rollout asked by hand.
            self.waiting.insert(
                r.workflow.clone(),
                Action::Rollout {
                    site: Arc::clone(&self.project),
                    workflow: r.workflow.clone(),
                    trigger,
                },
            );
            let next = self.queue.refused(&r.workflow);
            self.queue_actions(next);
            return;
        }
        let (itx, irx) = watch::channel(0u32);
        let started = match RunRequest::new(Arc::clone(&self.project), &r.workflow, trigger.clone(), irx) {
            Ok(req) => self.start(&r.workflow, req, itx, Some(r.clone())).is_ok(),
            Err(e) => {
                warn!(workflow = %r.workflow, %trigger, "rollout not started: {e}");
                false
            }
        };
        if !started {
            let next = self.queue.refused(&r.workflow);
            self.queue_actions(next);
        }
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
                self.set_project(site);
                let (itx, irx) = watch::channel(0u32);
                match RunRequest::new(Arc::clone(&self.project), &workflow, trigger, irx) {
                    Ok(req) => {
                        let _ = self.start(&workflow, req, itx, None);
                    }
                    Err(r) => warn!(%workflow, "rollout not started: {r}"),
                }
            }
            Action::Converge { workflow } => self.converge(&workflow),
            Action::RunNow {
                workflow,
                limit,
                dry_run,
                scope,
                trigger,
                reply,
            } => super::run_now::run_now(
                self,
                &workflow,
                limit.as_deref(),
                dry_run,
                scope.as_ref(),
                trigger,
                reply,
            ),
            Action::Abort { run, reply } => {
                let found = self.active.values().find(|a| a.run_id == run);
                if let Some(a) = found {
                    info!(%run, "stopping the run as asked: no new node starts");
                    let _ = a.interrupts.send(1);
                }
                let _ = reply.send(found.is_some());
            }
            Action::Run(order) => self.order(*order),
        }
    }

    /// The site in force, the active rollout of `workflow` (its run id) and a way to
    /// start one: what `run_now` needs of the loop.
    pub(super) fn project(&self) -> Arc<Project> {
        Arc::clone(&self.project)
    }

    pub(super) fn active_run(&self, workflow: &str) -> Option<String> {
        self.active.get(workflow).map(|a| a.run_id.clone())
    }

    pub(super) fn start_request(
        &mut self,
        workflow: &str,
        req: RunRequest,
        interrupts: watch::Sender<u32>,
    ) -> bool {
        self.start(workflow, req, interrupts, None).is_ok()
    }

    /// A run the API asked for: started now, or refused with why.
    fn order(&mut self, order: RunOrder) {
        let RunOrder {
            request,
            interrupts,
            reply,
        } = order;
        let workflow = request.project.workflows[request.workflow].name.clone();
        let answer = if *self.stop.borrow() {
            Err(NotStarted::Stopping)
        } else if let Some(a) = self.active.get(&workflow) {
            Err(NotStarted::Busy {
                workflow,
                run_id: a.run_id.clone(),
            })
        } else {
            self.start(&workflow, request, interrupts, None)
                .map_err(NotStarted::Refused)
        };
        let _ = reply.send(answer);
    }

    fn converge(&mut self, workflow: &str) {
        if let Some(a) = self.active.get(workflow) {
            debug!(%workflow, run = %a.run_id, "converge pass skipped: a rollout is active");
            return;
        }
        if self.in_git && self.commit.is_none() {
            info!(%workflow, "converge pass skipped: no commit of the repository is in force yet");
            return;
        }
        if self.opts.reload_site && !self.in_git {
            match load(&self.opts.site) {
                Ok(p) => self.set_project(Arc::new(p)),
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
                let _ = self.start(workflow, req, itx, None);
            }
            Err(r) => warn!(%workflow, "converge pass not started: {r}"),
        }
    }

    fn end(&mut self, workflow: &str, run_id: &str, end: RunEnd, pins: Option<&TreePins>) {
        self.live.remove(run_id);
        if self.active.get(workflow).is_some_and(|a| a.run_id == run_id)
            && let Some(a) = self.active.remove(workflow)
            && let (Some(sha), Some(pins)) = (a.tree, pins)
        {
            self.unpin_unused(&sha, pins);
        }
        if *self.stop.borrow() {
            return;
        }
        let next = self.queue.ended(run_id, end);
        self.queue_actions(next);
        if !self.active.contains_key(workflow)
            && let Some(next) = self.waiting.remove(workflow)
        {
            self.act(next);
        }
    }

    /// What the queue knows a run by: its commit (a commit's run), else the commit in
    /// force (converge passes, runs asked for by hand).
    fn request_for(&self, workflow: &str, trigger: &Trigger) -> RolloutRequest {
        let version = self
            .project
            .workflows
            .iter()
            .find(|w| w.name == workflow)
            .map_or(0, |w| w.version);
        let commit = match trigger {
            Trigger::GitCommit { sha, author, subject } => CommitInfo {
                sha: sha.clone(),
                author: author.clone(),
                subject: subject.clone(),
                time: jiff::Timestamp::UNIX_EPOCH,
            },
            _ => self.commit.clone().unwrap_or(CommitInfo {
                sha: String::new(),
                author: String::new(),
                subject: String::new(),
                time: jiff::Timestamp::UNIX_EPOCH,
            }),
        };
        RolloutRequest {
            workflow: workflow.to_string(),
            version,
            commit,
        }
    }

    /// Starts a run; `request` is the queue's (a commit's rollout), else the run is
    /// adopted as the workflow's rollout. Its id and events, or why it did not start.
    fn start(
        &mut self,
        workflow: &str,
        req: RunRequest,
        interrupts: watch::Sender<u32>,
        request: Option<RolloutRequest>,
    ) -> Result<StartedRun, String> {
        let tree = self.commit.as_ref().map(|c| c.sha.clone());
        self.start_with(workflow, req, interrupts, request, tree)
    }

    /// [`Core::start`], the run reading its files from commit `tree`'s export.
    fn start_with(
        &mut self,
        workflow: &str,
        mut req: RunRequest,
        interrupts: watch::Sender<u32>,
        request: Option<RolloutRequest>,
        tree: Option<String>,
    ) -> Result<StartedRun, String> {
        let interrupts = Arc::new(interrupts);
        // A daemon's rollout waits for its window, visibly, rather than being refused.
        req.refuse_closed_window = false;
        req.live_inventory = Some(self.inventory_rx.clone());
        let project = Arc::clone(&req.project);
        let trigger = req.trigger.clone();
        match service::start(req) {
            Ok(handle) => {
                info!(%workflow, run = %handle.run_id, %trigger, "rollout started");
                let started = StartedRun {
                    run_id: handle.run_id.clone(),
                    events: handle.events.resubscribe(),
                };
                self.live.insert(
                    &handle.run_id,
                    workflow,
                    handle.events.resubscribe(),
                    Arc::clone(&interrupts),
                );
                let request = request.unwrap_or_else(|| self.request_for(workflow, &trigger));
                self.queue.adopt(&handle.run_id, request);
                let (superseded, superseded_rx) = watch::channel(None);
                self.active.insert(
                    workflow.to_string(),
                    Active {
                        run_id: handle.run_id.clone(),
                        interrupts,
                        tree,
                        superseded,
                    },
                );
                tokio::spawn(follow(
                    handle,
                    workflow.to_string(),
                    project,
                    Arc::clone(&self.metrics),
                    self.runs.clone(),
                    superseded_rx,
                    self.store.clone(),
                ));
                Ok(started)
            }
            Err(r) => {
                warn!(%workflow, %trigger, "rollout not started: {r}");
                Err(r.to_string())
            }
        }
    }

    /// Resumes the runs a daemon started and left unfinished (see [`left_runs`]).
    fn resume_left_runs(&mut self, left: Vec<LeftRun>) {
        for l in left {
            self.resume_run(&l.id, l.recorded);
        }
        // Only what a resumed run needed; later commits bring their own sites.
        self.earlier.clear();
    }

    /// After a restart: the versions the git source accepted that no run records yet
    /// (queued behind a bulk, about to replace a superseded canary, or accepted just
    /// before the stop). Each goes through the queue again as when its commit arrived,
    /// so it waits for the run resumed before it, or supersedes that run's canary, or
    /// starts now (then under the windows and pauses like any rollout).
    fn restore_wanted(&mut self) {
        if !self.in_git || self.commit.is_none() {
            return;
        }
        let wanted = match self.store.unstarted_rollouts() {
            Ok(w) => w,
            Err(e) => {
                error!("cannot read the rollouts accepted before the restart: {e}");
                return;
            }
        };
        let mut requests = Vec::new();
        for w in wanted {
            let r = RolloutRequest::from_wanted(w);
            if !self.project.workflows.iter().any(|x| x.name == r.workflow) {
                info!(workflow = %r.workflow, commit = %r.commit, "accepted before the restart, not rolled out: the workflow is no longer in the site");
                continue;
            }
            info!(workflow = %r.workflow, commit = %r.commit, "accepted before the restart and not rolled out yet: queued again");
            requests.push(r);
        }
        let actions = self.queue.commit(requests);
        self.queue_actions(actions);
    }

    /// Resumes run `id` (`trigger` says who asks; the run keeps its own). A run of an
    /// earlier commit than the one in force resumes with that commit's site when the
    /// daemon has it (at start), so it finishes the version it began.
    fn resume_run(&mut self, id: &str, trigger: Trigger) {
        let detail = match self.store.run(id) {
            Ok(Some(d)) => d,
            _ => return,
        };
        let workflow = detail.run.workflow.clone();
        let version = detail.run.version;
        let recorded = self
            .store
            .trigger(id)
            .ok()
            .flatten()
            .and_then(|t| serde_json::from_value::<Trigger>(t).ok())
            .unwrap_or(trigger.clone());
        let (project, tree) = match recorded.commit().and_then(|sha| self.earlier.get(sha)) {
            Some(snap) => (Arc::clone(&snap.project), Some(snap.commit.sha.clone())),
            None => (
                Arc::clone(&self.project),
                self.commit.as_ref().map(|c| c.sha.clone()),
            ),
        };
        // An alarm trigger's run is of the workflow the trigger makes, not in the site's list.
        let project = match project.trigger(&workflow) {
            Some(t) if matches!(&recorded, Trigger::Webhook { name } if *name == workflow) => {
                Arc::new(project.with_workflow(t.run.clone()))
            }
            _ => project,
        };
        let past_canary = past_canary(&detail);
        let (itx, irx) = watch::channel(0u32);
        match RunRequest::resume(project, detail, trigger, irx) {
            Ok(req) => {
                info!(%workflow, run = %id, "resuming a run left unfinished");
                let mut request = self.request_for(&workflow, &recorded);
                request.version = version;
                if let Ok(started) = self.start_with(&workflow, req, itx, Some(request), tree)
                    && past_canary
                {
                    // Its canary passed before the stop: a newer version queues behind it.
                    self.queue.canary_passed(&started.run_id);
                }
            }
            Err(e) => warn!(%workflow, run = %id, "not resumed: {e}"),
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

/// A run a daemon started and left unfinished: interrupted by a stop, or still marked
/// running by a controller that is gone (kill -9). `recorded` is its own trigger.
struct LeftRun {
    id: String,
    recorded: Trigger,
}

/// The runs a restarted daemon resumes: one per workflow (the newest; an older one is
/// left), none started by hand (`drover run` leaves them to its operator).
fn left_runs(store: &Store, ttl: Duration) -> Vec<LeftRun> {
    let abandoned: Vec<String> = store
        .abandoned(jiff::Timestamp::now(), ttl)
        .map(|v| v.into_iter().map(|r| r.id).collect())
        .unwrap_or_default();
    let Ok(runs) = store.runs() else {
        warn!("cannot read the runs to resume");
        return Vec::new();
    };
    let mut out: Vec<LeftRun> = Vec::new();
    let mut workflows = std::collections::HashSet::new();
    // Newest first.
    for r in runs {
        let left = r.status == RunStatus::Interrupted
            || (r.status == RunStatus::Running && abandoned.contains(&r.id));
        if !left {
            continue;
        }
        let trigger = store
            .trigger(&r.id)
            .ok()
            .flatten()
            .and_then(|t| serde_json::from_value::<Trigger>(t).ok());
        let Some(recorded) = trigger.filter(|t| !matches!(t, Trigger::Cli { .. })) else {
            continue;
        };
        if !workflows.insert(r.workflow.clone()) {
            warn!(workflow = %r.workflow, run = %r.id, "left unfinished, not resumed: a newer run of the workflow is being resumed");
            continue;
        }
        out.push(LeftRun { id: r.id, recorded });
    }
    out
}

/// Whether a recorded run was past its canary: the plan has none, or every canary node
/// is done (the engine goes on at the first phase with unfinished nodes).
fn past_canary(detail: &crate::store::RunDetail) -> bool {
    let canary: Vec<&str> = detail
        .plan
        .get("canary")
        .and_then(|c| c.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    detail
        .nodes
        .iter()
        .filter(|n| canary.contains(&n.node.as_str()))
        .all(|n| n.state.is_final())
}

/// The next tick of an optional interval (never, without one).
async fn tick(feed: &mut Option<(Arc<super::SdNotify>, tokio::time::Interval)>) {
    match feed {
        Some((_, i)) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The next message of an optional channel (never, without one).
async fn recv<T>(rx: &mut Option<mpsc::UnboundedReceiver<T>>) -> Option<T> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
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

/// Follows one rollout: its events into the log and the metrics, its canary's end and
/// its own end back to the loop; a superseded run's record closed (cancelled, the nodes
/// it did not start skipped), so no later daemon resumes a version that no longer
/// matters.
async fn follow(
    mut handle: service::RunHandle,
    workflow: String,
    project: Arc<Project>,
    metrics: Arc<Metrics>,
    runs: mpsc::UnboundedSender<RunMsg>,
    superseded: watch::Receiver<Option<String>>,
    store: Store,
) {
    let run_id = handle.run_id.clone();
    let mut past_canary = false;
    loop {
        match handle.events.recv().await {
            Ok(RunEvent::Engine(EngineEvent::StepFinished {
                node, step, duration, ..
            })) => {
                metrics.observe_step(duration);
                debug!(run = %run_id, %node, %step, ms = duration.as_millis() as u64, "step finished");
            }
            Ok(RunEvent::Engine(EngineEvent::NodeStarted { node, attempt })) => {
                info!(run = %run_id, %node, attempt, "node started");
            }
            Ok(RunEvent::Engine(EngineEvent::NodeFinished {
                node, state, error, ..
            })) => {
                let why = error.as_deref().unwrap_or("");
                match state {
                    NodeFinal::Succeeded => info!(run = %run_id, %node, "node done"),
                    NodeFinal::Failed => warn!(run = %run_id, %node, error = why, "node failed"),
                    NodeFinal::Held => warn!(run = %run_id, %node, reason = why, "node held"),
                    NodeFinal::Skipped => info!(run = %run_id, %node, reason = why, "node skipped"),
                }
            }
            Ok(RunEvent::Engine(EngineEvent::PhaseStarted { phase, nodes })) => {
                info!(run = %run_id, %phase, nodes, "phase started");
                if !past_canary && phase != "canary" {
                    past_canary = true;
                    let _ = runs.send(RunMsg::CanaryPassed { run: run_id.clone() });
                }
            }
            Ok(RunEvent::Engine(EngineEvent::Waiting { text, .. })) => {
                // As the terminal says it: "waiting for window day, opens Mon ...".
                info!(run = %run_id, "waiting for {text}; nodes in flight go on");
            }
            Ok(RunEvent::Engine(EngineEvent::Continuing)) => {
                info!(run = %run_id, "continuing");
            }
            Ok(RunEvent::Engine(EngineEvent::NodeInMaintenance { node, reason })) => {
                info!(run = %run_id, %node, "not started: in {reason}");
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
    let outcome = handle.outcome().await;
    let mut end = RunEnd::Finished;
    match &outcome {
        Outcome::Finished(f) => {
            if let crate::engine::Outcome::Stopped { stop } = &f.outcome
                && *stop != crate::engine::StopReason::Interrupted
            {
                end = RunEnd::StoppedByBudget;
            }
            let outcome = crate::engine::outcome_json(&f.outcome, &project.inventory);
            info!(run = %run_id, %workflow, succeeded = f.result.succeeded.len(), failed = f.result.failed.len(), %outcome, "rollout ended");
        }
        Outcome::NothingToDo => info!(%workflow, "converged: every target is up to date"),
        Outcome::Refused(r) => warn!(%workflow, "rollout not run: {r}"),
        other => info!(run = %run_id, %workflow, outcome = ?other, "rollout ended"),
    }
    let by = superseded.borrow().clone();
    if let Some(by) = by {
        close_superseded(&store, &run_id, &by).await;
    }
    let _ = runs.send(RunMsg::Ended {
        workflow,
        run_id,
        end,
    });
}

/// A superseded run that stopped (interrupted, resumable) is closed for good. So is a
/// resumed run superseded before its resume took the record over: it is still marked
/// running by the dead controller that left it, and would hold its nodes' leases.
async fn close_superseded(store: &Store, run_id: &str, by: &str) {
    let read = {
        let (s, id) = (store.clone(), run_id.to_string());
        tokio::task::spawn_blocking(move || s.run(&id)).await
    };
    let Ok(Ok(Some(detail))) = read else { return };
    let left = match detail.run.status {
        RunStatus::Interrupted => true,
        RunStatus::Running => detail
            .run
            .controller
            .is_known_dead(&crate::store::Controller::this().host),
        _ => false,
    };
    if !left {
        return;
    }
    let g = GiveUp::of(
        &detail,
        &GiveUpReason::Superseded { by: by.to_string() },
        jiff::Timestamp::now(),
    );
    match store.finish_run(run_id, g.writes, false).await {
        Ok(_) => info!(
            run = %run_id,
            not_started = g.skipped.len(),
            "superseded run closed: the nodes it had not started are skipped"
        ),
        Err(e) => warn!(run = %run_id, "cannot close the superseded run: {e}"),
    }
    for (node, why) in &g.left_drained {
        warn!(run = %run_id, %node, "{why}");
    }
}
