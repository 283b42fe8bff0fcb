//! A run from request to outcome: plan, check, leases and record, heartbeat, runner,
//! resume and wind-down. Nothing here prints: what happens is told as [`RunEvent`]s and
//! the end as an [`Outcome`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::json;
use tokio::sync::{broadcast, mpsc, watch};

use super::event::{Planned, RunEvent};
use super::event_hub::{BROADCAST_CAPACITY, EventHub};
use super::outcome::{Finished, Interruption, Outcome};
use super::refusal::{Refusal, RefusalKind};
use super::run_handle::RunHandle;
use super::run_request::{Answer, Mode, RunRequest};
use super::run_state::{self, Resume};
use super::skipped::Skipped;
use super::transport_kind::TransportKind;
use crate::engine::{self, Class, Journal, Prior, RolloutSpec, RunContext, RunLog, StopReason};
use crate::inventory::{Inventory, NodeId};
use crate::plan::{Exclusion, Plan, PlanInput};
use crate::store::{Controller, Store};
use crate::transport::{Connection, Connector, LocalConnector, SshConnector};

/// Starts a request on the current tokio runtime. Refuses at once what cannot start
/// now (a closed window, no ssh control directory); everything later is the outcome's.
pub fn start(mut req: RunRequest) -> Result<RunHandle, Refusal> {
    let project = Arc::clone(&req.project);
    let Some(wf) = project.workflows.get(req.workflow) else {
        return Err(Refusal::new(
            RefusalKind::InvalidConfig,
            "no such workflow in the site",
        ));
    };
    let now = engine::clock_from_env().now();
    // A resumed run never refuses at a closed window: it finishes what it began, and
    // waits for the window to start its next node.
    if let (Mode::Run { dry_run: false }, Some(w), false, true) = (
        req.mode,
        &wf.window,
        req.ignore_window,
        req.resume.is_none() && req.refuse_closed_window,
    ) && let Some(win) = project.site.windows.get(w)
        && !win.may_start(now)
    {
        let next = win
            .next_open(now)
            .map(|ts| format!("; it next opens at {}", ts.to_zoned(win.time_zone().clone())))
            .unwrap_or_default();
        return Err(Refusal::new(
            RefusalKind::WindowClosed,
            format!(
                "window `{w}` ({win}) is closed{next}\nhelp: wait, or pass --ignore-window to start anyway"
            ),
        ));
    }
    let run_id = req
        .resume
        .as_ref()
        .map_or_else(|| run_state::new_run_id(&wf.name), |r| r.run.clone());
    let (btx, events) = broadcast::channel(BROADCAST_CAPACITY);
    let (recorded_tx, recorded) = watch::channel(None);
    let id = run_id.clone();
    let task = match req.transport {
        TransportKind::Ssh => {
            let ssh =
                SshConnector::new(project.site.ssh_setup(req.verbose), &project.inventory).map_err(|e| {
                    Refusal::new(
                        RefusalKind::Failure,
                        format!("cannot create the ssh control directory: {e}"),
                    )
                })?;
            tokio::spawn(async move {
                let finish = ssh.clone();
                let outcome = flow(ssh, &mut req, id, btx, recorded_tx).await;
                // Stops commands of aborted nodes, then removes the control dir.
                finish.shutdown().await;
                outcome
            })
        }
        TransportKind::Local => {
            tokio::spawn(async move { flow(LocalConnector, &mut req, id, btx, recorded_tx).await })
        }
    };
    Ok(RunHandle {
        run_id,
        events,
        recorded,
        task,
    })
}

fn refused(kind: RefusalKind, message: impl Into<String>) -> Outcome {
    Outcome::Refused(Refusal::new(kind, message))
}

async fn flow<K: Connector>(
    connector: K,
    req: &mut RunRequest,
    run_id: String,
    btx: broadcast::Sender<RunEvent>,
    recorded: watch::Sender<Option<Store>>,
) -> Outcome {
    let project = Arc::clone(&req.project);
    let wf = &project.workflows[req.workflow];
    let inv = &project.inventory;
    let p = &req.selection;
    let resume = req.resume.take();
    let irx = req.interrupts.clone();
    let is_run = matches!(req.mode, Mode::Run { .. });
    let running = req.mode == Mode::Run { dry_run: false };
    // A resumed run replays its stored plan, with the nodes that drain as recorded.
    let (all, resumed_drains) = match &resume {
        Some(r) => match Plan::from_record(&r.detail.plan, inv, wf) {
            Ok(x) => x,
            Err(e) => return refused(RefusalKind::InvalidConfig, e.to_string()),
        },
        None => match Plan::build(
            inv,
            wf,
            &PlanInput {
                limit: p.limit.clone(),
                maintenance: p.maintenance.clone(),
                ..PlanInput::default()
            },
        ) {
            Ok(a) => (a, HashSet::new()),
            Err(e) => return refused(RefusalKind::InvalidConfig, e.to_string()),
        },
    };
    if resume.is_none() && all.nodes.is_empty() {
        let why = nothing_selected(inv, &all, p.limit_text.as_deref(), p.limit.as_ref());
        return refused(RefusalKind::NothingSelected, why);
    }
    let store = if running {
        match run_state::open_store(&project) {
            Ok(s) => Some(s),
            Err(r) => return Outcome::Refused(r),
        }
    } else {
        None
    };
    let (etx, erx) = engine::event_channel(engine::EVENT_CAPACITY);
    let hub = EventHub::spawn(erx, btx);
    if is_run && resume.is_none() {
        // A dry run reads the state, if there is any, and creates nothing.
        let notice_store = store.clone().or_else(|| open_store_read(&project));
        if let Some(s) = &notice_store {
            for n in run_state::abandoned_notices(s, project.site.leases.ttl) {
                hub.emit(RunEvent::Notice(n));
            }
        }
    }
    // A resumed run appends to the log its first controller started.
    let log = if running {
        let dir = project.site.state_dir.join("logs");
        let path = dir.join(format!("{run_id}.log"));
        match std::fs::create_dir_all(&dir).and_then(|()| RunLog::create(&path)) {
            Ok(log) => Some(log),
            Err(e) => {
                return refused(
                    RefusalKind::Failure,
                    format!("cannot create the run log {}: {e}", path.display()),
                );
            }
        }
    } else {
        None
    };
    let log_path = log.as_ref().map(|l| l.path().to_path_buf());

    let hooks = wf.drain.clone().or_else(|| project.site.drain.clone());
    let controller_env = crate::site::merge_env(&project.site.env, &wf.env);
    let slurm = hooks.as_ref().filter(|h| h.is_slurm()).map(|h| {
        crate::slurm::SlurmPoller::new(
            crate::slurm::SlurmClient::new(controller_env.clone()),
            h.poll_interval,
        )
    });
    let drain_selected = wf
        .steps
        .iter()
        .zip(&p.selected)
        .any(|(s, sel)| *sel && s.change == crate::workflow::Change::Drain);
    let cx = Arc::new(RunContext {
        connector,
        inventory: Arc::new(inv.clone()),
        workflow: Arc::new(crate::workflow::Workflow {
            env: crate::site::merge_env(&project.site.env, &wf.env),
            ..wf.clone()
        }),
        templates: Arc::clone(&project.templates),
        extra_vars: p.extra_vars.clone(),
        site: engine::site_context(&project.site),
        forks: project.site.ssh.forks as usize,
        keep_masters: project.site.ssh.keep_masters as usize,
        log,
        events: etx,
        files: engine::FileSources::default(),
        // Slurm's nodes are read once for all (the plan's `sinfo`), not probed one by one.
        probe_drained: is_run && drain_selected && hooks.as_ref().is_some_and(|h| !h.is_slurm()),
        slurm: slurm.clone(),
        hooks,
        locks: crate::transport::NodeLocks::new(project.site.lock_dir.clone(), &project.site.root, &run_id),
        journal: Journal::new(store.clone(), run_id.clone()),
        gates: engine::Gates {
            clock: engine::clock_from_env(),
            window: wf
                .window
                .as_ref()
                .filter(|_| is_run && !req.ignore_window)
                .and_then(|w| Some((w.clone(), project.site.windows.get(w)?.clone()))),
            store: store.clone(),
            poll: project.site.pause_poll,
            inventory: req.live_inventory.clone(),
        },
        diff: req.diff,
        settle: resume.as_ref().map_or_else(HashSet::new, |r| {
            r.prior
                .iter()
                .filter(|(_, p)| matches!(p, Prior::InProgress { .. }))
                .map(|(id, _)| *id)
                .collect()
        }),
    });
    // A resumed run checks only the nodes it has not finished, after waiting for those
    // a dead controller left rebooting.
    let mut resume_errors: HashMap<NodeId, String> = HashMap::new();
    let check_nodes: Vec<NodeId> = match &resume {
        Some(r) => {
            let mut stop = irx.clone();
            resume_errors = tokio::select! {
                e = await_rebooting(&cx, r) => e,
                () = engine::next_press(&mut stop) => {
                    wind_down(cx, None).await;
                    return Outcome::Interrupted(Interruption::WaitingForReboots);
                }
            };
            all.nodes
                .iter()
                .copied()
                .filter(|n| {
                    // In maintenance: not even checked (the runner skips it), unless the
                    // dead run left it drained (it must be resumed).
                    let off_limits = p.maintenance.contains_key(n) && !r.drained.contains(n);
                    !off_limits
                        && !resume_errors.contains_key(n)
                        && !matches!(
                            r.prior.get(n),
                            Some(Prior::Succeeded | Prior::Failed { .. } | Prior::Held | Prior::Skipped)
                        )
                })
                .collect()
        }
        None => all.nodes.clone(),
    };
    let checked = match engine::check_all(&cx, &check_nodes, &irx).await {
        Ok(checked) => checked,
        Err(engine::Interrupted) => {
            wind_down(cx, None).await;
            return Outcome::Interrupted(Interruption::Checking);
        }
    };
    let engine::Checked {
        results,
        mut conns,
        drained: mut found_drained,
    } = checked;

    let Mode::Run { dry_run } = req.mode else {
        let described = if req.verbose {
            conns.describe_all().await
        } else {
            Vec::new()
        };
        wind_down(cx, Some(conns)).await;
        return Outcome::Checked {
            results,
            described,
            maintenance: all.maintenance.clone(),
        };
    };

    // Each node runs its needed steps that the selection (--tags) selects.
    let mut steps: HashMap<NodeId, Vec<usize>> = HashMap::new();
    let mut failed_check = HashSet::new();
    for (id, r) in &results {
        if r.class == Class::Error {
            failed_check.insert(*id);
            continue;
        }
        let list: Vec<usize> = r
            .needed
            .iter()
            .copied()
            .filter(|i| p.selected.get(*i).copied().unwrap_or(false))
            .collect();
        if !list.is_empty() {
            steps.insert(*id, list);
        }
    }
    let drains: HashSet<NodeId> = steps
        .iter()
        .filter(|(_, l)| engine::needs_drain(wf, l))
        .map(|(id, _)| *id)
        .collect();
    let unselected: Vec<NodeId> = results
        .iter()
        .filter(|(id, r)| !r.needed.is_empty() && !steps.contains_key(id))
        .map(|(id, _)| *id)
        .collect();
    let mut work = engine::Work::default();
    let mut held: HashMap<NodeId, String> = HashMap::new();
    let plan = match &resume {
        Some(r) => {
            // The plan stands; what changed since is handled per node.
            for id in &failed_check {
                let e = results.get(id).and_then(|c| c.error.clone()).unwrap_or_default();
                work.errors.insert(*id, format!("check failed on resume: {e}"));
            }
            work.errors.extend(resume_errors);
            for id in &found_drained {
                if !r.drained.contains(id) {
                    work.skips.insert(
                        *id,
                        "drained by someone else since the run began; left alone".into(),
                    );
                }
            }
            work.drained = r.drained.clone();
            all.clone()
        }
        None => {
            let reader = store.clone().or_else(|| {
                crate::store::Store::open_read_only(&project.site.state_dir.join("drover.db")).ok()
            });
            // One `sinfo` and one `squeue` for the whole plan: nodes Slurm has out of
            // service, partitions, running jobs.
            let view = match &slurm {
                Some(sp) if drain_selected => match crate::slurm::SlurmView::read(sp.client()).await {
                    Ok(v) => Some(v),
                    Err(e) => {
                        wind_down(cx, Some(conns)).await;
                        return refused(
                            RefusalKind::Failure,
                            format!("cannot read the cluster's state from Slurm: {e}"),
                        );
                    }
                },
                _ => None,
            };
            if let Some(v) = &view {
                found_drained.extend(
                    results
                        .iter()
                        .filter(|(id, r)| r.class != Class::Error && v.unavailable(&inv.node(**id).name))
                        .map(|(id, _)| *id),
                );
            }
            held = held_by_earlier_runs(reader.as_ref(), inv, &found_drained, &run_id).await;
            let input = PlanInput {
                slurm: view,
                limit: p.limit.clone(),
                needing: Some(steps.keys().copied().collect()),
                failed_check,
                other_steps: unselected.iter().copied().collect(),
                already_unavailable: found_drained,
                held: held.keys().copied().collect(),
                drains: Some(drains.clone()),
                drain_steps: drain_selected,
                maintenance: p.maintenance.clone(),
            };
            match Plan::build(inv, wf, &input) {
                Ok(pl) => pl,
                Err(e) => {
                    wind_down(cx, Some(conns)).await;
                    return refused(RefusalKind::InvalidConfig, e.to_string());
                }
            }
        }
    };
    work.steps = steps;
    let planned = Arc::new(Planned {
        results,
        unselected,
        plan,
        held,
    });
    hub.emit(RunEvent::Planned(Arc::clone(&planned)));
    let plan = &planned.plan;
    if dry_run {
        wind_down(cx, Some(conns)).await;
        return Outcome::DryRun {
            plan: Box::new(plan.clone()),
        };
    }
    if plan.nodes.is_empty() && !req.record_when_idle && resume.is_none() {
        wind_down(cx, Some(conns)).await;
        return Outcome::NothingToDo;
    }
    if let Some(confirm) = req.confirm.take()
        && !plan.nodes.is_empty()
    {
        match confirm.await.unwrap_or(Answer::No) {
            Answer::Yes => {}
            Answer::No => {
                wind_down(cx, Some(conns)).await;
                return Outcome::Declined;
            }
            Answer::CannotAsk => {
                wind_down(cx, Some(conns)).await;
                return refused(
                    RefusalKind::Usage,
                    "`run` changes nodes: pass --yes to confirm when not at a terminal",
                );
            }
            Answer::Interrupted => {
                wind_down(cx, Some(conns)).await;
                return Outcome::Interrupted(Interruption::AtPrompt);
            }
        }
    }
    let in_plan: HashSet<NodeId> = plan.nodes.iter().copied().collect();
    // The masters kept from the check are those of the nodes whose turn comes first.
    let hold: HashSet<NodeId> = plan.nodes.iter().copied().take(cx.keep_masters).collect();
    conns.keep_only(&|id| in_plan.contains(&id), &hold).await;
    if *irx.borrow() > 0 {
        // Interrupted between the check and the start: start nothing.
        wind_down(cx, Some(conns)).await;
        return Outcome::Interrupted(Interruption::BeforeStart);
    }

    // The run's record and its leases come before the first node is touched, in one
    // transaction: a kill between the two cannot leave leases for a run that does not
    // exist.
    let Some(store) = store else {
        // Unreachable: a run that gets here is not a dry run, so it opened the store.
        wind_down(cx, Some(conns)).await;
        return refused(RefusalKind::Failure, "the state store is not open");
    };
    let earlier: HashMap<NodeId, Prior> = resume.as_ref().map_or_else(HashMap::new, |r| {
        r.prior
            .iter()
            .filter(|(_, p)| !matches!(p, Prior::InProgress { .. }))
            .map(|(id, p)| (*id, *p))
            .collect()
    });
    // Nodes a resumed run finished before are not leased again: it will not touch them.
    let names: Vec<String> = plan
        .nodes
        .iter()
        .filter(|i| !earlier.contains_key(i))
        .map(|i| inv.node(*i).name.clone())
        .collect();
    let now = jiff::Timestamp::now();
    let record = match &resume {
        Some(_) => crate::store::Write::RunResumed {
            id: run_id.clone(),
            controller: Controller::this(),
            at: now,
        },
        None => {
            let phase_of = plan.phase_of();
            crate::store::Write::RunCreated {
                id: run_id.clone(),
                workflow: wf.name.clone(),
                version: wf.version,
                commit: req.trigger.commit().map(String::from),
                plan: plan.to_record(inv, &drains),
                options: json!({
                    "tags": p.tags,
                    "extra_vars": cx.extra_vars,
                    "limit": p.limit_text,
                    "ignore_window": req.ignore_window,
                    "hold_failed": req.hold_failed,
                    "site": project.site.root.display().to_string(),
                }),
                controller: Controller::this(),
                at: now,
                nodes: plan
                    .nodes
                    .iter()
                    .map(|i| (inv.node(*i).name.clone(), phase_of.get(i).copied().unwrap_or(0)))
                    .collect(),
            }
        }
    };
    let mut records = vec![record];
    if resume.is_none() {
        records.push(crate::store::Write::RunTriggered {
            id: run_id.clone(),
            trigger: serde_json::to_value(&req.trigger).unwrap_or_default(),
        });
    }
    let mut waiting = irx.clone();
    if let Err(r) = run_state::begin(
        &store,
        &run_id,
        &names,
        records,
        &project.site.leases,
        &mut waiting,
        &|n| hub.emit(RunEvent::Notice(n)),
    )
    .await
    {
        wind_down(cx, Some(conns)).await;
        return Outcome::Refused(r);
    }
    let _ = recorded.send(Some(store.clone()));
    hub.emit(RunEvent::Recorded { run: run_id.clone() });
    if *irx.borrow() > 0 {
        // Interrupted while the run was being recorded: start nothing.
        let _ = store
            .finish_run(
                &run_id,
                vec![crate::store::Write::RunFinished {
                    id: run_id.clone(),
                    status: crate::store::RunStatus::Interrupted,
                    outcome: json!({"outcome": "stopped", "reason": "interrupted", "nothing_started": true}),
                    at: jiff::Timestamp::now(),
                }],
                true,
            )
            .await;
        wind_down(cx, Some(conns)).await;
        return Outcome::Interrupted(Interruption::WhileRecording);
    }
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let beat = run_state::heartbeat(
        store.clone(),
        run_id.clone(),
        project.site.leases.ttl,
        names.clone(),
        ctl_tx,
    );

    let skipped = Skipped::new(plan, &planned.held, &work.steps, &wf.steps, &p.selected);
    let spec = rollout_spec(
        &cx,
        plan,
        &work.steps,
        match &resume {
            Some(r) => (resumed_drains, r.prior.clone()),
            None => (drains, HashMap::new()),
        },
    );
    let result = engine::execute(Arc::clone(&cx), plan, work, &mut conns, spec, irx, ctl_rx).await;
    beat.abort();
    sweep_reservations(&cx, &run_id).await;
    let outcome = final_outcome(inv, plan, &skipped, &result);
    let status = run_state::status_of(Some(&outcome));
    let interrupted = status == crate::store::RunStatus::Interrupted;
    let unsure = if interrupted {
        run_state::in_flight(&store, &run_id).await
    } else {
        Vec::new()
    };
    let mut stored = engine::outcome_json(&outcome, inv);
    if let Some(o) = stored.as_object_mut() {
        if !unsure.is_empty() {
            o.insert(
                "unsure".into(),
                unsure
                    .iter()
                    .map(|(n, st, d)| json!({"node": n, "state": st, "drained_by_us": d}))
                    .collect(),
            );
        }
        if !skipped.other_steps.is_empty() {
            o.insert(
                "still_need_other_steps".into(),
                json!(names_of(inv, &skipped.other_steps)),
            );
        }
        if !skipped.check_failed.is_empty() {
            o.insert("check_failed".into(), json!(names_of(inv, &skipped.check_failed)));
        }
    }
    // The run's outcome as recorded, not the engine's alone: `runs watch` reads it from
    // this event, and must come to the verdict a local run comes to.
    cx.events.send(engine::RunEvent::RunFinished {
        outcome: stored.clone(),
    });
    let at = jiff::Timestamp::now();
    let mut finish = vec![crate::store::Write::RunFinished {
        id: run_id.clone(),
        status,
        outcome: stored,
        at,
    }];
    if let Some(hold) = &req.hold_failed {
        finish.push(hold.write(&run_id, at));
    }
    // An interrupted run keeps the leases of the nodes it left unsure (in flight), so
    // nothing else takes them before `runs resume` or `runs cancel`; every other node
    // is free at once.
    let _ = store.finish_run(&run_id, finish, interrupted).await;
    wind_down(cx, Some(conns)).await;
    Outcome::Finished(Box::new(Finished {
        run_id,
        skipped,
        result,
        outcome,
        earlier,
        unsure,
        log: log_path,
    }))
}

/// `drain.mode: reservation`: no reservation of the run outlives it, however it ended
/// (each node's turn deletes its own; this catches a turn aborted mid-way, or one whose
/// deletion failed). A node left drained stays out by its drain; an aborted one that
/// was still waiting for its reservation goes back to its users until `runs resume`.
async fn sweep_reservations<K: Connector>(cx: &Arc<RunContext<K>>, run_id: &str) {
    let (Some(h), Some(sp)) = (&cx.hooks, &cx.slurm) else {
        return;
    };
    if !h.by_reservation() {
        return;
    }
    let line = match sp.client().delete_reservations_of(run_id).await {
        Ok(gone) if gone.is_empty() => return,
        Ok(gone) => format!("reservations deleted at the run's end: {}", gone.join(", ")),
        Err(e) => format!("cannot delete the run's reservations: {e}; see `scontrol show reservation`"),
    };
    if let Some(log) = &cx.log {
        log.write("drover", &line);
    }
}

/// The site's store opened read-only, if there is one: a dry run creates nothing.
fn open_store_read(project: &crate::project::Project) -> Option<Store> {
    Store::open_read_only(&project.site.state_dir.join("drover.db")).ok()
}

/// Ends a request: drops the context, which holds the engine's last event sender (the
/// stream ends once the service's side is dropped too), and closes every connection
/// still open.
async fn wind_down<K: Connector>(cx: Arc<RunContext<K>>, conns: Option<engine::Connections<K::Conn>>) {
    drop(cx);
    if let Some(c) = conns {
        c.close_all().await;
    }
}

/// Why a run or check has no node to work on, naming the `--limit` when it is the cause.
fn nothing_selected(
    inv: &Inventory,
    plan: &Plan,
    limit: Option<&str>,
    limit_set: Option<&HashSet<NodeId>>,
) -> String {
    let of = |w: &[Exclusion]| -> Vec<NodeId> {
        plan.excluded
            .iter()
            .filter(|(i, e)| w.contains(e) && limit_set.is_none_or(|l| l.contains(i)))
            .map(|(i, _)| *i)
            .collect()
    };
    let in_limit: Vec<NodeId> = of(&[
        Exclusion::Blacklisted,
        Exclusion::NotWhitelisted,
        Exclusion::Excluded,
    ]);
    let mut outside: Vec<NodeId> = plan.excluded.iter().map(|(i, _)| *i).collect();
    outside.sort();
    let targets = plan.excluded.len();
    match limit {
        Some(l) if in_limit.is_empty() => format!(
            "nothing selected: --limit `{l}` selects none of the workflow's {} ({})",
            crate::report::plural(targets, "target"),
            inv.names(&outside)
        ),
        Some(l) => format!(
            "nothing selected: every target --limit `{l}` selects is blacklisted, not whitelisted or excluded by the workflow ({})",
            inv.names(&in_limit)
        ),
        None if targets == 0 => "nothing selected: the workflow's targets match no node".to_string(),
        None => format!(
            "nothing selected: every target of the workflow is blacklisted, not whitelisted or excluded ({})",
            inv.names(&in_limit)
        ),
    }
}

/// Nodes drained before this run that an earlier run left so, with why.
async fn held_by_earlier_runs(
    store: Option<&Store>,
    inv: &Inventory,
    drained: &HashSet<NodeId>,
    this_run: &str,
) -> HashMap<NodeId, String> {
    let Some(store) = store.cloned() else {
        return HashMap::new();
    };
    if drained.is_empty() {
        return HashMap::new();
    }
    let names: Vec<String> = drained.iter().map(|i| inv.node(*i).name.clone()).collect();
    let run = this_run.to_string();
    let found = tokio::task::spawn_blocking(move || store.held_by_earlier_runs(&names, &run))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    found
        .into_iter()
        .filter_map(|h| inv.find(&h.node).map(|id| (id, h.describe())))
        .collect()
}

/// The rollout's budgets and history for a plan. `(drains, prior)`: the nodes that need a
/// drain step, and where a resumed run's nodes stood.
fn rollout_spec<K: Connector>(
    cx: &RunContext<K>,
    plan: &Plan,
    steps: &HashMap<NodeId, Vec<usize>>,
    (drains, prior): (HashSet<NodeId>, HashMap<NodeId, Prior>),
) -> RolloutSpec {
    let inv = &cx.inventory;
    let mut disruption =
        crate::budget::Disruption::new(plan.budgets.limits.clone(), crate::plan::hosted_pairs(inv));
    for id in &plan.unavailable_at_start {
        disruption.take(*id);
    }
    let in_plan: HashSet<NodeId> = plan.nodes.iter().copied().collect();
    let mut hosted: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for id in &plan.nodes {
        if let Some(h) = inv.node(*id).hosted_on
            && in_plan.contains(&h)
        {
            hosted.entry(h).or_default().push(*id);
        }
    }
    RolloutSpec {
        retry: cx.workflow.strategy.retries,
        max_in_flight: cx.forks,
        step_retries: {
            let wf = Arc::clone(&cx.workflow);
            let steps = steps.clone();
            Box::new(move |node: NodeId, pos: usize| {
                steps
                    .get(&node)
                    .and_then(|s| s.get(pos))
                    .and_then(|i| wf.steps.get(*i))
                    .and_then(|s| s.retries)
            })
        },
        drains,
        disruption,
        hosted,
        prior,
        // `execute` reads these from the run's gates.
        window: None,
        now: jiff::Timestamp::UNIX_EPOCH,
        pause: None,
    }
}

/// Nodes a dead controller left rebooting: wait until each is back with a new boot id
/// and passes its reboot step's health checks. Returns the ones that did not.
async fn await_rebooting<K: Connector>(cx: &Arc<RunContext<K>>, r: &Resume) -> HashMap<NodeId, String> {
    let mut set = tokio::task::JoinSet::new();
    let mut node_of = HashMap::new();
    for (id, step, before) in r.rebooting.clone() {
        let cx = Arc::clone(cx);
        let handle = set.spawn(async move {
            let Some(crate::workflow::Action::Reboot(rb)) = cx.workflow.steps.get(step).map(|s| &s.action)
            else {
                return None;
            };
            let reason = cx.reason();
            let cycle = cx.cycle(id, &reason);
            engine::fault::panic_point("panic-reboot-wait", &cycle.job.node.name);
            let boot_cmd = match cycle.job.render(&rb.boot_id) {
                Ok(c) => c,
                Err(e) => return Some((id, e.to_string())),
            };
            let deadline = engine::Deadline::after(rb.timeout);
            match cycle
                .await_reboot(&boot_cmd, &before, deadline, Some(reboot_grace(rb.timeout)))
                .await
            {
                Ok(Some(conn)) => {
                    let conn = Some(conn);
                    let health = cycle.health(&conn, rb, deadline).await;
                    if let Some(c) = conn {
                        c.close().await;
                    }
                    health.err().map(|e| (id, e.to_string()))
                }
                // It never went down: the reboot was recorded but not issued. Its check
                // decides whether it still needs one.
                Ok(None) => None,
                Err(e) => Some((id, e.to_string())),
            }
        });
        node_of.insert(handle.id(), id);
    }
    let mut failed = HashMap::new();
    while let Some(j) = set.join_next_with_id().await {
        match j {
            Ok((_, Some((id, e)))) => {
                failed.insert(id, e);
            }
            Ok((_, None)) => {}
            // A wait that panicked did not see the node come back: it is not "fine".
            Err(e) => {
                if let Some(id) = node_of.get(&e.id()) {
                    failed.insert(
                        *id,
                        format!("waiting for its reboot: {}", engine::panic_message(e)),
                    );
                }
            }
        }
    }
    failed
}

/// How long a node a dead controller left "rebooting" may keep answering with its old
/// boot id before drover concludes the reboot was never issued (the controller died
/// between recording the reboot and sending it).
const REBOOT_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// The grace for a reboot step with `timeout`: never more than half of it. A grace as
/// long as the timeout would end in "did not come back in time" before it could conclude
/// "never issued", failing a node whose reboot simply had not been sent.
fn reboot_grace(timeout: std::time::Duration) -> std::time::Duration {
    REBOOT_GRACE.min(timeout / 2)
}

/// The run's outcome with what the plan left out: nodes that needed a drain no budget had
/// room for (because held or down nodes fill it) stop the run like a `Blocked` rollout,
/// even when the rollout itself had nothing left to do.
///
/// Nodes put into maintenance during the run are not failures: a run whose only
/// shortfall is those is a success with work remaining (exit 10), not "completed with
/// failures".
fn final_outcome(
    inv: &Inventory,
    plan: &Plan,
    skipped: &Skipped,
    result: &engine::RunResult,
) -> engine::Outcome {
    let outcome = match result.outcome.clone() {
        Some(engine::Outcome::CompletedWithFailures { failed }) if failed == result.maintenance.len() => {
            engine::Outcome::Succeeded
        }
        Some(o) => o,
        None => engine::Outcome::Stopped {
            stop: StopReason::Interrupted,
        },
    };
    // Nodes whose checks failed (unreachable, a check that errs) were never worked on,
    // so the run did not do what it was asked on them: it did not succeed, and nothing
    // reading its record (a commission, `runs watch`, a notification) may think so.
    let unchecked = skipped.check_failed.len();
    let outcome = match outcome {
        engine::Outcome::Succeeded if unchecked > 0 && skipped.no_budget.is_empty() => {
            engine::Outcome::CompletedWithFailures { failed: unchecked }
        }
        engine::Outcome::CompletedWithFailures { failed } => engine::Outcome::CompletedWithFailures {
            failed: failed + unchecked,
        },
        o => o,
    };
    if !matches!(outcome, engine::Outcome::Succeeded) {
        return outcome;
    }
    let Some(first) = skipped.no_budget.first() else {
        return outcome;
    };
    let mut before =
        crate::budget::Disruption::new(plan.budgets.limits.clone(), crate::plan::hosted_pairs(inv));
    for id in &plan.unavailable_at_start {
        before.take(*id);
    }
    let limit = before.check(*first).err().map_or_else(
        || "a disruption budget".to_string(),
        |b| format!("{}, at most {} at once", b.limit, b.max),
    );
    engine::Outcome::Stopped {
        stop: StopReason::Blocked { node: *first, limit },
    }
}

fn names_of(inv: &Inventory, ids: &[NodeId]) -> Vec<String> {
    ids.iter().map(|i| inv.node(*i).name.clone()).collect()
}
