//! `drover check`, `drover plan` and `drover run`.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::run_state::{self, Resume};
use super::selection::{Refusal, Target, TransportKind, extra_vars, limit, load, selected_steps, transport};
use crate::engine::{self, Class, Journal, Outcome, Prior, RolloutSpec, RunContext, RunLog, StopReason};
use crate::exit_code;
use crate::inventory::{Inventory, NodeId};
use crate::plan::{Exclusion, Plan, PlanInput};
use crate::project::Project;
use crate::report::{self, Style, check_json, render_check};
use crate::store::Controller;
use crate::transport::{Connection, Connector, LocalConnector, SshConnector};

/// Options of `drover run` beyond the target.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub tags: Option<String>,
    pub extra_vars: Option<String>,
    pub yes: bool,
    pub dry_run: bool,
    pub ignore_window: bool,
}

fn runtime() -> Result<tokio::runtime::Runtime, i32> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|_| exit_code::FAILURE)
}

fn refuse(err: &mut dyn Write, r: Refusal) -> i32 {
    let _ = writeln!(err, "error: {}", r.0);
    r.1
}

pub fn plan(t: &Target, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let (project, wi) = match load(t, color, err) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let wf = &project.workflows[wi];
    let input = match limit(&project.inventory, t.limit.as_deref()) {
        Ok(l) => PlanInput {
            limit: l,
            ..PlanInput::default()
        },
        Err(r) => return refuse(err, r),
    };
    let plan = match Plan::build(&project.inventory, wf, &input) {
        Ok(p) => p,
        Err(e) => return refuse(err, Refusal(e.to_string(), exit_code::INVALID_CONFIG)),
    };
    if t.json {
        let _ = writeln!(out, "{}", plan_json(&project.inventory, &plan));
    } else {
        let _ = write!(
            out,
            "{}",
            plan.render(
                &project.inventory,
                window_text(&project, wf.window.as_deref()).as_deref()
            )
        );
        let _ = writeln!(out, "  steps:");
        for s in &wf.steps {
            let check = if s.check.is_some() { "checked" } else { "unchecked" };
            let _ = writeln!(
                out,
                "    - {} ({}, {:?}, {check})",
                s.name,
                s.action.kind(),
                s.change
            );
        }
        let _ = writeln!(
            out,
            "  (run checks every node first and batches only the nodes that need work)"
        );
    }
    exit_code::OK
}

fn window_text(project: &Project, name: Option<&str>) -> Option<String> {
    name.and_then(|n| project.site.windows.get(n))
        .map(ToString::to_string)
}

fn names(inv: &Inventory, ids: &[NodeId]) -> Vec<String> {
    ids.iter().map(|i| inv.node(*i).name.clone()).collect()
}

fn plan_json(inv: &Inventory, plan: &Plan) -> serde_json::Value {
    json!({
        "workflow": plan.workflow,
        "version": plan.version,
        "excluded": plan.excluded.iter().map(|(i, r)| json!({"node": inv.node(*i).name, "reason": r})).collect::<Vec<_>>(),
        "canary": names(inv, &plan.canary),
        "soak_seconds": plan.soak.as_secs(),
        "batches": plan.batches.iter().map(|b| names(inv, b)).collect::<Vec<_>>(),
        "budgets": plan.budgets,
        "window": plan.window,
    })
}

pub fn check(t: &Target, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    session(t, None, color, out, err)
}

pub fn run(t: &Target, opts: &RunOptions, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    session(t, Some(opts), color, out, err)
}

/// Loads, checks every target, and for `run` plans and executes. `opts` is None for
/// `check`.
fn session(
    t: &Target,
    opts: Option<&RunOptions>,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let (project, wi) = match load(t, color, err) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let transport = match transport(&project.site, t.transport, t.allow_local, &t.workflow, err) {
        Ok(k) => k,
        Err(r) => return refuse(err, r),
    };
    let prepared = (|| -> Result<Prepared, Refusal> {
        let wf = &project.workflows[wi];
        let lim = limit(&project.inventory, t.limit.as_deref())?;
        let extra = extra_vars(opts.and_then(|o| o.extra_vars.as_deref()))?;
        let selected = selected_steps(wf, opts.and_then(|o| o.tags.as_deref()))?;
        if let (Some(o), Some(w)) = (opts, &wf.window)
            && let Some(win) = project.site.windows.get(w)
            && !o.ignore_window
            && !o.dry_run
            && !win.may_start(jiff::Timestamp::now())
        {
            let next = win
                .next_open(jiff::Timestamp::now())
                .map(|ts| format!("; it next opens at {}", ts.to_zoned(win.time_zone().clone())))
                .unwrap_or_default();
            return Err(Refusal(
                format!(
                    "window `{w}` ({win}) is closed{next}\nhelp: wait, or pass --ignore-window to start anyway"
                ),
                exit_code::WINDOW_CLOSED,
            ));
        }
        Ok(Prepared {
            input: PlanInput {
                limit: lim,
                ..PlanInput::default()
            },
            extra,
            selected,
        })
    })();
    let prepared = match prepared {
        Ok(p) => p,
        Err(r) => return refuse(err, r),
    };
    let Ok(rt) = runtime() else {
        return exit_code::FAILURE;
    };
    let project = Arc::new(project);
    let code = rt.block_on(async {
        match transport {
            TransportKind::Ssh => match ssh(&project) {
                Ok(c) => {
                    let finish = c.clone();
                    let code = flow(c, project, wi, t, opts, prepared, None, out, err).await;
                    // Stops commands of aborted nodes, then removes the control dir.
                    finish.shutdown().await;
                    code
                }
                Err(e) => refuse(err, Refusal(e, exit_code::FAILURE)),
            },
            TransportKind::Local => {
                flow(LocalConnector, project, wi, t, opts, prepared, None, out, err).await
            }
        }
    });
    // A confirmation prompt answered by Ctrl-C leaves its stdin read blocked; dropping
    // the runtime would wait for it forever. Everything else has finished.
    rt.shutdown_background();
    code
}

pub(super) struct Prepared {
    pub(super) input: PlanInput,
    pub(super) extra: serde_json::Map<String, serde_json::Value>,
    pub(super) selected: Vec<bool>,
}

fn ssh(project: &Project) -> Result<SshConnector, String> {
    SshConnector::new(project.site.ssh_setup(false), &project.inventory)
        .map_err(|e| format!("cannot create the ssh control directory: {e}"))
}

#[allow(
    clippy::too_many_arguments,
    reason = "two call sites; a struct would only rename them"
)]
pub(super) async fn flow<K: Connector>(
    connector: K,
    project: Arc<Project>,
    wi: usize,
    t: &Target,
    opts: Option<&RunOptions>,
    p: Prepared,
    resume: Option<Resume>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let wf = &project.workflows[wi];
    let inv = &project.inventory;
    // A resumed run replays its stored plan, with the nodes that drain as recorded.
    let (all, resumed_drains) = match &resume {
        Some(r) => match Plan::from_record(&r.detail.plan, inv, wf) {
            Ok(x) => x,
            Err(e) => return refuse(err, Refusal(e.to_string(), exit_code::INVALID_CONFIG)),
        },
        None => match Plan::build(inv, wf, &p.input) {
            Ok(a) => (a, HashSet::new()),
            Err(e) => return refuse(err, Refusal(e.to_string(), exit_code::INVALID_CONFIG)),
        },
    };
    let running = opts.is_some_and(|o| !o.dry_run);
    let run_id = resume
        .as_ref()
        .map_or_else(|| run_state::new_run_id(&wf.name), |r| r.run.clone());
    let store = if running {
        match run_state::open_store(&project) {
            Ok(s) => Some(s),
            Err(r) => return refuse(err, r),
        }
    } else {
        None
    };
    if opts.is_some() && resume.is_none() {
        let notice_store = store.clone().or_else(|| run_state::open_store(&project).ok());
        if let Some(s) = &notice_store {
            run_state::abandoned_notice(s, project.site.leases.ttl, err);
        }
    }
    // A resumed run appends to the log its first controller started.
    let log = if running {
        let dir = project.site.state_dir.join("logs");
        let path = dir.join(format!("{run_id}.log"));
        match std::fs::create_dir_all(&dir).and_then(|()| RunLog::create(&path)) {
            Ok(log) => Some(log),
            Err(e) => {
                return refuse(
                    err,
                    Refusal(
                        format!("cannot create the run log {}: {e}", path.display()),
                        exit_code::FAILURE,
                    ),
                );
            }
        }
    } else {
        None
    };
    let log_path = log.as_ref().map(|l| l.path().to_path_buf());

    let (etx, erx) = engine::event_channel(engine::EVENT_CAPACITY);
    let style = if t.json {
        Style::Json
    } else {
        Style::Human {
            bars: std::io::stderr().is_terminal(),
        }
    };
    let check_json_only = t.json && opts.is_none();
    // Its writes to stdout block (a paused terminal, an unread pipe): on a thread of
    // its own, not one of the runtime's, and the run does not wait for it.
    let handle = tokio::runtime::Handle::current();
    let reporter = tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            if check_json_only {
                // `check --json` prints one document at the end.
                let mut erx = erx;
                while erx.recv().await.is_some() {}
            } else {
                report::report(erx, style).await;
            }
        });
    });
    let hooks = wf.drain.clone().or_else(|| project.site.drain.clone());
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
        extra_vars: p.extra,
        site: engine::site_context(&project.site),
        forks: project.site.ssh.forks as usize,
        log,
        events: etx,
        files: engine::FileSources::default(),
        probe_drained: opts.is_some() && drain_selected && hooks.is_some(),
        hooks,
        locks: crate::transport::NodeLocks::new(project.site.lock_dir.clone(), &project.site.root, &run_id),
        journal: Journal::new(store.clone(), run_id.clone()),
        settle: resume.as_ref().map_or_else(HashSet::new, |r| {
            r.prior
                .iter()
                .filter(|(_, p)| matches!(p, Prior::InProgress { .. }))
                .map(|(id, _)| *id)
                .collect()
        }),
    });
    // Ctrl-C is counted from here on: the first stops the check or the run gracefully
    // (every ssh master is closed), the second aborts a run's steps.
    // The handler is installed here, not when a spawned task first polls for it, so no
    // press between now and then kills the process with masters open.
    let (itx, irx) = watch::channel(0u32);
    let sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    let ctrl_c = tokio::spawn(async move {
        let Ok(mut sigint) = sigint else { return };
        let mut n = 0;
        while sigint.recv().await.is_some() {
            n += 1;
            let _ = itx.send(n);
            if n >= 2 {
                break;
            }
        }
    });

    // A resumed run checks only the nodes it has not finished, after waiting for those
    // a dead controller left rebooting.
    let mut resume_errors: HashMap<NodeId, String> = HashMap::new();
    let check_nodes: Vec<NodeId> = match &resume {
        Some(r) => {
            resume_errors = await_rebooting(&cx, r).await;
            all.nodes
                .iter()
                .copied()
                .filter(|n| {
                    !resume_errors.contains_key(n)
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
            wind_down(&ctrl_c, cx, reporter, None).await;
            let what = if opts.is_some() { "; nothing was run" } else { "" };
            let _ = writeln!(err, "interrupted while checking{what}");
            return exit_code::INTERRUPTED;
        }
    };
    let engine::Checked {
        results,
        mut conns,
        drained: found_drained,
    } = checked;

    let Some(opts) = opts else {
        wind_down(&ctrl_c, cx, reporter, Some(conns)).await;
        if t.json {
            let _ = writeln!(out, "{}", check_json(inv, &results));
        } else {
            let _ = write!(out, "{}", render_check(inv, &results));
        }
        return if results.values().any(|r| r.class == Class::Error) {
            exit_code::NODES_FAILED
        } else {
            exit_code::OK
        };
    };

    // Each node runs its needed steps that --tags selects.
    let mut steps: HashMap<NodeId, Vec<usize>> = HashMap::new();
    let mut failed_check = HashSet::new();
    for (id, r) in &results {
        if r.class == Class::Error {
            failed_check.insert(*id);
            continue;
        }
        let list: Vec<usize> = r.needed.iter().copied().filter(|i| p.selected[*i]).collect();
        if !list.is_empty() {
            steps.insert(*id, list);
        }
    }
    let drains: HashSet<NodeId> = steps
        .iter()
        .filter(|(_, l)| {
            l.iter()
                .any(|i| wf.steps[*i].change == crate::workflow::Change::Drain)
        })
        .map(|(id, _)| *id)
        .collect();
    let unselected: Vec<NodeId> = results
        .iter()
        .filter(|(id, r)| !r.needed.is_empty() && !steps.contains_key(id))
        .map(|(id, _)| *id)
        .collect();
    let mut work = engine::Work::default();
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
            let input = PlanInput {
                limit: p.input.limit.clone(),
                needing: Some(steps.keys().copied().collect()),
                failed_check,
                other_steps: unselected.iter().copied().collect(),
                already_unavailable: found_drained,
                drains: Some(drains.clone()),
                drain_steps: drain_selected,
            };
            match Plan::build(inv, wf, &input) {
                Ok(pl) => pl,
                Err(e) => {
                    wind_down(&ctrl_c, cx, reporter, Some(conns)).await;
                    return refuse(err, Refusal(e.to_string(), exit_code::INVALID_CONFIG));
                }
            }
        }
    };
    work.steps = steps;
    if !t.json {
        let _ = write!(out, "{}", render_check(inv, &results));
        if !unselected.is_empty() {
            let _ = writeln!(
                out,
                "  {} node(s) need only steps outside --tags (e.g. drain steps): {}",
                unselected.len(),
                inv.names(&unselected)
            );
        }
        let _ = write!(
            out,
            "{}",
            plan.render(inv, window_text(&project, wf.window.as_deref()).as_deref())
        );
    }
    if opts.dry_run {
        wind_down(&ctrl_c, cx, reporter, Some(conns)).await;
        if t.json {
            let _ = writeln!(out, "{}", plan_json(inv, &plan));
        }
        return exit_code::OK;
    }
    if !opts.yes && !plan.nodes.is_empty() {
        if !std::io::stdin().is_terminal() {
            wind_down(&ctrl_c, cx, reporter, Some(conns)).await;
            return refuse(
                err,
                Refusal::usage("`run` changes nodes: pass --yes to confirm when not at a terminal"),
            );
        }
        let _ = write!(err, "run {} on {} nodes? [y/N] ", wf.name, plan.nodes.len());
        let _ = err.flush();
        // Ctrl-C no longer ends the process (it is counted), so the prompt listens for it.
        let mut at_prompt = irx.clone();
        let read = tokio::task::spawn_blocking(|| {
            let mut answer = String::new();
            let _ = std::io::stdin().read_line(&mut answer);
            answer
        });
        let answer = tokio::select! {
            a = read => a.unwrap_or_default(),
            () = engine::next_press(&mut at_prompt) => {
                wind_down(&ctrl_c, cx, reporter, Some(conns)).await;
                let _ = writeln!(err, "\ninterrupted; nothing done");
                return exit_code::INTERRUPTED;
            }
        };
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            wind_down(&ctrl_c, cx, reporter, Some(conns)).await;
            let _ = writeln!(err, "nothing done");
            return exit_code::OK;
        }
    }
    let in_plan: HashSet<NodeId> = plan.nodes.iter().copied().collect();
    conns.keep_only(&|id| in_plan.contains(&id)).await;
    if *irx.borrow() > 0 {
        // Ctrl-C between the check and the start: start nothing.
        wind_down(&ctrl_c, cx, reporter, Some(conns)).await;
        let _ = writeln!(err, "interrupted; nothing was run");
        return exit_code::INTERRUPTED;
    }

    // The run's record and its leases come before the first node is touched.
    let Some(store) = store else {
        // Unreachable: a run that gets here is not a dry run, so it opened the store.
        wind_down(&ctrl_c, cx, reporter, Some(conns)).await;
        return exit_code::FAILURE;
    };
    let names: Vec<String> = plan.nodes.iter().map(|i| inv.node(*i).name.clone()).collect();
    if let Err(r) = run_state::lease(&store, &run_id, &names, &project.site.leases, err).await {
        wind_down(&ctrl_c, cx, reporter, Some(conns)).await;
        return refuse(err, r);
    }
    let now = jiff::Timestamp::now();
    let record = match &resume {
        Some(_) => crate::store::Write::RunResumed {
            id: run_id.clone(),
            controller: Controller::this(),
            at: now,
        },
        None => {
            let phase_of = |id: &NodeId| -> usize {
                if plan.canary.contains(id) {
                    0
                } else {
                    let offset = usize::from(!plan.canary.is_empty());
                    plan.batches
                        .iter()
                        .position(|b| b.contains(id))
                        .map_or(0, |i| i + offset)
                }
            };
            crate::store::Write::RunCreated {
                id: run_id.clone(),
                workflow: wf.name.clone(),
                version: wf.version,
                commit: None,
                plan: plan.to_record(inv, &drains),
                options: json!({
                    "tags": opts.tags,
                    "extra_vars": cx.extra_vars,
                    "limit": t.limit,
                    "site": project.site.root.display().to_string(),
                }),
                controller: Controller::this(),
                at: now,
                nodes: plan
                    .nodes
                    .iter()
                    .map(|i| (inv.node(*i).name.clone(), phase_of(i)))
                    .collect(),
            }
        }
    };
    if let Err(e) = store.write(vec![record]).await {
        let _ = store.release_leases(&run_id, None);
        wind_down(&ctrl_c, cx, reporter, Some(conns)).await;
        return refuse(
            err,
            Refusal(format!("cannot record the run: {e}"), exit_code::FAILURE),
        );
    }
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let beat = run_state::heartbeat(
        store.clone(),
        run_id.clone(),
        project.site.leases.ttl,
        names.clone(),
        ctl_tx,
    );

    let spec = rollout_spec(
        &cx,
        &plan,
        &work.steps,
        match &resume {
            Some(r) => (resumed_drains, r.prior.clone()),
            None => (drains, HashMap::new()),
        },
    );
    let result = engine::execute(Arc::clone(&cx), &plan, work, &mut conns, spec, irx, ctl_rx).await;
    beat.abort();
    let status = run_state::status_of(result.outcome.as_ref());
    let outcome = result
        .outcome
        .as_ref()
        .map_or(serde_json::Value::Null, |o| engine::outcome_json(o, inv));
    let _ = store
        .write(vec![crate::store::Write::RunFinished {
            id: run_id.clone(),
            status,
            outcome,
            at: jiff::Timestamp::now(),
        }])
        .await;
    // An interrupted run keeps its leases until they expire: `runs resume` takes them
    // back, and no other run takes its drained nodes meanwhile.
    if status != crate::store::RunStatus::Interrupted {
        let _ = store.release_leases(&run_id, None);
    }
    wind_down(&ctrl_c, cx, reporter, Some(conns)).await;

    let skipped = Skipped::new(&plan);
    summary(inv, &skipped, &result, &run_id, log_path.as_deref(), t.json, out)
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
    let mut disruption = engine::Disruption::new(plan.budgets.limits.clone(), crate::plan::hosted_pairs(inv));
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
                .await_reboot(&boot_cmd, &before, deadline, Some(REBOOT_GRACE))
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
/// boot id before drover concludes the reboot was never issued.
const REBOOT_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Ends a session: stop counting Ctrl-C, let the reporter print what is queued (it ends
/// once the context, which holds the last event sender, is dropped), and close every ssh
/// master still open.
async fn wind_down<K: Connector>(
    ctrl_c: &tokio::task::JoinHandle<()>,
    cx: Arc<RunContext<K>>,
    reporter: tokio::task::JoinHandle<()>,
    conns: Option<engine::Connections<K::Conn>>,
) {
    ctrl_c.abort();
    drop(cx);
    let _ = reporter.await;
    if let Some(c) = conns {
        c.close_all().await;
    }
}

/// Planned nodes that the run did not work on, by why.
struct Skipped {
    /// Their checks found nothing to do.
    up_to_date: Vec<NodeId>,
    /// They need only steps that `--tags` did not select (drain steps, by default).
    other_steps: Vec<NodeId>,
    /// Their checks failed or they could not be reached: the run did not do all it was
    /// asked to.
    check_failed: Vec<NodeId>,
}

impl Skipped {
    fn new(plan: &Plan) -> Skipped {
        let of = |why: Exclusion| -> Vec<NodeId> {
            plan.excluded
                .iter()
                .filter(|(_, e)| *e == why)
                .map(|(i, _)| *i)
                .collect()
        };
        Skipped {
            up_to_date: of(Exclusion::UpToDate),
            other_steps: of(Exclusion::NeedsOtherSteps),
            check_failed: of(Exclusion::CheckFailed),
        }
    }
}

fn summary(
    inv: &Inventory,
    skipped: &Skipped,
    r: &engine::RunResult,
    run_id: &str,
    log: Option<&std::path::Path>,
    json: bool,
    out: &mut dyn Write,
) -> i32 {
    let outcome = r.outcome.clone().unwrap_or(Outcome::Stopped {
        stop: StopReason::Interrupted,
    });
    let code = match &outcome {
        // Nodes whose checks failed were not worked on: not everything asked for was
        // done, as `check` reports too.
        Outcome::Succeeded if !skipped.check_failed.is_empty() => exit_code::NODES_FAILED,
        Outcome::Succeeded => exit_code::OK,
        Outcome::CompletedWithFailures { .. } => exit_code::NODES_FAILED,
        Outcome::Stopped {
            stop: StopReason::Interrupted,
        } => exit_code::INTERRUPTED,
        Outcome::Stopped {
            stop: StopReason::StateStore { .. },
        } => exit_code::STATE_STORE_FAILED,
        Outcome::Stopped {
            stop: StopReason::LeaseLost { .. },
        } => exit_code::LEASE_LOST,
        Outcome::Stopped { .. } => exit_code::RUN_STOPPED,
    };
    // Inventory order, not the order nodes happened to finish in.
    let mut succeeded = r.succeeded.clone();
    succeeded.sort();
    let mut failed_with_errors = r.failed.clone();
    failed_with_errors.sort_by_key(|(i, _)| *i);
    let failed: Vec<NodeId> = failed_with_errors.iter().map(|(i, _)| *i).collect();
    if json {
        let v = json!({
            "event": "summary",
            "run": run_id,
            "outcome": engine::outcome_json(&outcome, inv),
            "succeeded": names(inv, &succeeded),
            "failed": failed_with_errors.iter().map(|(i, e)| json!({"node": inv.node(*i).name, "error": e})).collect::<Vec<_>>(),
            "held": r.held.iter().map(|(i, e)| json!({"node": inv.node(*i).name, "reason": e})).collect::<Vec<_>>(),
            "skipped": r.skipped.iter().map(|(i, e)| json!({"node": inv.node(*i).name, "reason": e})).collect::<Vec<_>>(),
            "not_started": names(inv, &r.not_started),
            "up_to_date": names(inv, &skipped.up_to_date),
            "needs_other_steps": names(inv, &skipped.other_steps),
            "check_failed": names(inv, &skipped.check_failed),
            "log": log.map(|d| d.display().to_string()),
        });
        let _ = writeln!(out, "{v}");
        return code;
    }
    let verdict = match &outcome {
        Outcome::Succeeded if !skipped.check_failed.is_empty() => format!(
            "succeeded on the nodes it ran on; {} node(s) failed their check and were not touched",
            skipped.check_failed.len()
        ),
        Outcome::Succeeded => "succeeded".to_string(),
        Outcome::CompletedWithFailures { failed } => {
            format!("completed with {failed} failed node(s) within the failure budget")
        }
        Outcome::Stopped { stop } => format!("STOPPED: {}", describe_stop(inv, stop)),
    };
    let _ = writeln!(out, "\nrun {run_id}: {verdict}");
    let line = |out: &mut dyn Write, label: &str, ids: &[NodeId]| {
        if !ids.is_empty() {
            let _ = writeln!(out, "  {label:<12}{:>6}  {}", ids.len(), inv.names(ids));
        }
    };
    line(out, "succeeded", &succeeded);
    line(out, "failed", &failed);
    let mut held: Vec<NodeId> = r.held.iter().map(|(i, _)| *i).collect();
    held.sort();
    let mut skipped_drain: Vec<NodeId> = r.skipped.iter().map(|(i, _)| *i).collect();
    skipped_drain.sort();
    line(out, "held", &held);
    line(out, "skipped", &skipped_drain);
    line(out, "not started", &r.not_started);
    line(out, "up to date", &skipped.up_to_date);
    line(out, "other steps", &skipped.other_steps);
    line(out, "check failed", &skipped.check_failed);
    for (id, e) in failed_with_errors.iter().chain(&r.held).chain(&r.skipped) {
        let _ = writeln!(out, "  {}: {}", inv.node(*id).name, e.replace('\n', "\n      "));
    }
    if let Some(d) = log {
        let _ = writeln!(out, "  log: {}", d.display());
    }
    code
}

fn describe_stop(inv: &Inventory, s: &StopReason) -> String {
    match s {
        StopReason::CanaryFailed { node } => {
            format!("canary {} failed; no bulk node was touched", inv.node(*node).name)
        }
        StopReason::BatchBudget {
            batch,
            failed,
            budget,
        } => {
            format!("{failed} nodes failed in batch {batch}, its budget is {budget}")
        }
        StopReason::RunBudget { failed, budget } => {
            format!("{failed} nodes failed, the run's budget is {budget}")
        }
        StopReason::Blocked { node, limit } => format!(
            "{} cannot be taken down without breaking a disruption budget ({limit}), and nothing running could free a place",
            inv.node(*node).name
        ),
        StopReason::Interrupted => "interrupted".into(),
        StopReason::StateStore { error } => {
            format!("the state store cannot record the run ({error}); nothing more was started")
        }
        StopReason::LeaseLost { node } => format!(
            "another run took over the lease of {node}, which this run had not finished; nothing more was started"
        ),
    }
}
