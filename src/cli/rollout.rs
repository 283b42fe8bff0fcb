//! `drover check`, `drover plan` and `drover run`.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::run_state::{self, Resume};
use super::selection::{
    Refusal, Target, TransportKind, extra_vars, limit, load, recheck_names, selected_steps, transport,
};
use crate::engine::{self, Class, Journal, Outcome, Prior, RolloutSpec, RunContext, RunLog, StopReason};
use crate::exit_code;
use crate::inventory::{Inventory, NodeId};
use crate::plan::{Exclusion, Plan, PlanInput};
use crate::project::Project;
use crate::report::{self, Style, check_json, render_check};
use crate::store::{Controller, NodeState, Store};
use crate::transport::{Connection, Connector, LocalConnector, SshConnector};

/// Options of `drover run` beyond the target.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub tags: Option<String>,
    /// `--extra-vars`/`-e`, in order.
    pub extra_vars: Vec<String>,
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
    let maintenance = match run_state::in_maintenance(&project) {
        Ok(m) => m,
        Err(r) => return refuse(err, r),
    };
    let input = match limit(&project.inventory, t.limit.as_deref()) {
        Ok(l) => PlanInput {
            limit: l,
            maintenance,
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
            plan.render_for(
                &project.inventory,
                window_text(&project, wf.window.as_deref()).as_deref(),
                Some(wf)
            )
        );
        let outside = wf.canary_outside_targets(&project.inventory);
        if !outside.is_empty() {
            let _ = writeln!(
                out,
                "  canary nodes not among the targets, left out: {} {}",
                outside.len(),
                project.inventory.names(&outside)
            );
        }
        let _ = writeln!(out, "  steps:");
        for s in &wf.steps {
            let check = if s.check.is_some() { "checked" } else { "unchecked" };
            let change = match s.change {
                crate::workflow::Change::Hot => "hot",
                crate::workflow::Change::Drain => "drain",
            };
            let _ = writeln!(out, "    - {} ({}, {change}, {check})", s.name, s.action.kind());
        }
        let _ = writeln!(
            out,
            "  (run checks every node first and batches only the nodes that need work)"
        );
    }
    exit_code::OK
}

/// The window as written, and whether it is open now.
fn window_text(project: &Project, name: Option<&str>) -> Option<String> {
    let now = engine::clock_from_env().now();
    name.and_then(|n| project.site.windows.get(n))
        .map(|w| format!("{w}; {}", crate::plan::window_status(w, now)))
}

fn names(inv: &Inventory, ids: &[NodeId]) -> Vec<String> {
    ids.iter().map(|i| inv.node(*i).name.clone()).collect()
}

fn plan_json(inv: &Inventory, plan: &Plan) -> serde_json::Value {
    json!({
        "workflow": plan.workflow,
        "version": plan.version,
        "excluded": plan.excluded.iter().map(|(i, r)| {
            let mut e = json!({"node": inv.node(*i).name, "reason": r});
            if let Some((_, why)) = plan.maintenance.iter().find(|(m, _)| m == i) {
                e["detail"] = json!(why);
            }
            e
        }).collect::<Vec<_>>(),
        "canary": names(inv, &plan.canary),
        "soak_seconds": plan.soak.as_secs(),
        "batches": plan.batches.iter().map(|b| names(inv, b)).collect::<Vec<_>>(),
        "budgets": plan.budgets,
        "window": plan.window,
    })
}

pub fn check(t: &Target, verbose: bool, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    VERBOSE.store(verbose, std::sync::atomic::Ordering::Relaxed);
    session(t, None, color, out, err)
}

/// `check -v`: ask the transport how each node was reached. A process-wide flag rather
/// than one more argument through the session, which `run` shares.
static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

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
        let extra = extra_vars(opts.map_or(&[][..], |o| o.extra_vars.as_slice()))?;
        recheck_names(&project, wf, &extra)?;
        let selected = selected_steps(wf, opts.and_then(|o| o.tags.as_deref()))?;
        let now = engine::clock_from_env().now();
        if let (Some(o), Some(w)) = (opts, &wf.window)
            && let Some(win) = project.site.windows.get(w)
            && !o.ignore_window
            && !o.dry_run
            && !win.may_start(now)
        {
            let next = win
                .next_open(now)
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
                maintenance: run_state::in_maintenance(&project)?,
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
    let verbose = VERBOSE.load(std::sync::atomic::Ordering::Relaxed);
    SshConnector::new(project.site.ssh_setup(verbose), &project.inventory)
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
    if resume.is_none() && all.nodes.is_empty() {
        let why = nothing_selected(inv, &all, t.limit.as_deref(), p.input.limit.as_ref());
        let _ = writeln!(err, "error: {why}");
        return exit_code::NOTHING_SELECTED;
    }
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
        // A dry run reads the state, if there is any, and creates nothing.
        let notice_store = store
            .clone()
            .or_else(|| run_state::open_store_read(&project).ok());
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
            color: t.color,
            timestamps: t.timestamps,
        }
    };
    let check_json_only = t.json && opts.is_none();
    let (screen, screen_rx) = report::control();
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
                report::report_with(erx, style, screen_rx).await;
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
        gates: engine::Gates {
            clock: engine::clock_from_env(),
            window: wf
                .window
                .as_ref()
                .filter(|_| opts.is_some_and(|o| !o.ignore_window))
                .and_then(|w| Some((w.clone(), project.site.windows.get(w)?.clone()))),
            store: store.clone(),
            poll: project.site.pause_poll,
            inventory: None,
        },
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
    // Set once the run is recorded: what the presses report on.
    let started: Started = Arc::new(Mutex::new(None));
    let ctrl_c = {
        let started = Arc::clone(&started);
        let running = opts.is_some();
        tokio::spawn(async move {
            let Ok(mut sigint) = sigint else { return };
            let mut n = 0;
            while sigint.recv().await.is_some() {
                n += 1;
                let run = started.lock().map(|g| g.clone()).unwrap_or_default();
                acknowledge(n, running, run.as_ref());
                let _ = itx.send(n);
            }
        })
    };
    // A resumed run checks only the nodes it has not finished, after waiting for those
    // a dead controller left rebooting.
    let mut resume_errors: HashMap<NodeId, String> = HashMap::new();
    let check_nodes: Vec<NodeId> = match &resume {
        Some(r) => {
            let mut stop = irx.clone();
            resume_errors = tokio::select! {
                e = await_rebooting(&cx, r) => e,
                () = engine::next_press(&mut stop) => {
                    wind_down(&ctrl_c, cx, reporter, None).await;
                    let _ = writeln!(err, "interrupted while waiting for rebooting nodes; nothing was run");
                    return exit_code::INTERRUPTED;
                }
            };
            all.nodes
                .iter()
                .copied()
                .filter(|n| {
                    // In maintenance: not even checked (the runner skips it), unless the
                    // dead run left it drained (it must be resumed).
                    let off_limits = p.input.maintenance.contains_key(n) && !r.drained.contains(n);
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
        let described = if VERBOSE.load(std::sync::atomic::Ordering::Relaxed) {
            conns.describe_all().await
        } else {
            Vec::new()
        };
        wind_down(&ctrl_c, cx, reporter, Some(conns)).await;
        if !t.json {
            let mut described: Vec<(String, String)> = described
                .into_iter()
                .map(|(id, d)| (inv.node(id).name.clone(), d))
                .collect();
            described.sort();
            for (name, d) in described {
                let _ = writeln!(out, "{name}: {d}");
            }
        }
        if t.json {
            let mut v = check_json(inv, &results);
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "maintenance".into(),
                    all.maintenance
                        .iter()
                        .map(|(i, why)| json!({"node": inv.node(*i).name, "reason": why}))
                        .collect(),
                );
            }
            let _ = writeln!(out, "{v}");
        } else {
            let _ = write!(out, "{}", render_check(inv, &results));
            if !all.maintenance.is_empty() {
                let ids: Vec<NodeId> = all.maintenance.iter().map(|(i, _)| *i).collect();
                let _ = writeln!(
                    out,
                    "  not checked (in maintenance): {} {}",
                    ids.len(),
                    inv.names(&ids)
                );
                for (id, why) in &all.maintenance {
                    let _ = writeln!(out, "    {}: {why}", inv.node(*id).name);
                }
            }
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
            held = held_by_earlier_runs(reader.as_ref(), inv, &found_drained, &run_id).await;
            let input = PlanInput {
                limit: p.input.limit.clone(),
                needing: Some(steps.keys().copied().collect()),
                failed_check,
                other_steps: unselected.iter().copied().collect(),
                already_unavailable: found_drained,
                held: held.keys().copied().collect(),
                drains: Some(drains.clone()),
                drain_steps: drain_selected,
                maintenance: p.input.maintenance.clone(),
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
    // The check's events are shown and its bar is gone before the report, the plan and
    // the prompt; no bar draws until the answer.
    screen.quiet().await;
    if !t.json {
        let _ = write!(out, "{}", render_check(inv, &results));
        if !unselected.is_empty() {
            let _ = writeln!(
                out,
                "  {} only steps outside --tags (e.g. drain steps): {}",
                match unselected.len() {
                    1 => "1 node needs".to_string(),
                    n => format!("{n} nodes need"),
                },
                inv.names(&unselected)
            );
        }
        let _ = write!(
            out,
            "{}",
            plan.render_for(
                inv,
                window_text(&project, wf.window.as_deref()).as_deref(),
                Some(wf)
            )
        );
        let mut held_sorted: Vec<_> = held.iter().collect();
        held_sorted.sort();
        for (id, why) in held_sorted {
            let _ = writeln!(out, "    {}: {why}", inv.node(*id).name);
        }
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
    screen.resume();
    let in_plan: HashSet<NodeId> = plan.nodes.iter().copied().collect();
    conns.keep_only(&|id| in_plan.contains(&id)).await;
    if *irx.borrow() > 0 {
        // Ctrl-C between the check and the start: start nothing.
        wind_down(&ctrl_c, cx, reporter, Some(conns)).await;
        let _ = writeln!(err, "interrupted; nothing was run");
        return exit_code::INTERRUPTED;
    }

    // The run's record and its leases come before the first node is touched, in one
    // transaction: a kill between the two cannot leave leases for a run that does not
    // exist.
    let Some(store) = store else {
        // Unreachable: a run that gets here is not a dry run, so it opened the store.
        wind_down(&ctrl_c, cx, reporter, Some(conns)).await;
        return exit_code::FAILURE;
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
                commit: None,
                plan: plan.to_record(inv, &drains),
                options: json!({
                    "tags": opts.tags,
                    "extra_vars": cx.extra_vars,
                    "limit": t.limit,
                    "ignore_window": opts.ignore_window,
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
    let mut waiting = irx.clone();
    if let Err(r) = run_state::begin(
        &store,
        &run_id,
        &names,
        record,
        &project.site.leases,
        &mut waiting,
        err,
    )
    .await
    {
        wind_down(&ctrl_c, cx, reporter, Some(conns)).await;
        return refuse(err, r);
    }
    if let Ok(mut g) = started.lock() {
        *g = Some((store.clone(), run_id.clone()));
    }
    if *irx.borrow() > 0 {
        // Ctrl-C while the run was being recorded: start nothing.
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
        wind_down(&ctrl_c, cx, reporter, Some(conns)).await;
        let _ = writeln!(
            err,
            "interrupted; nothing was run (run {run_id} is recorded as interrupted)"
        );
        return exit_code::INTERRUPTED;
    }
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let beat = run_state::heartbeat(
        store.clone(),
        run_id.clone(),
        project.site.leases.ttl,
        names.clone(),
        ctl_tx,
    );

    let skipped = Skipped::new(&plan, &held, &work.steps, &wf.steps, &p.selected);
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
    let outcome = final_outcome(inv, &plan, &skipped, &result);
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
    }
    // An interrupted run keeps the leases of the nodes it left unsure (in flight), so
    // nothing else takes them before `runs resume` or `runs cancel`; every other node
    // is free at once.
    let _ = store
        .finish_run(
            &run_id,
            vec![crate::store::Write::RunFinished {
                id: run_id.clone(),
                status,
                outcome: stored,
                at: jiff::Timestamp::now(),
            }],
            interrupted,
        )
        .await;
    wind_down(&ctrl_c, cx, reporter, Some(conns)).await;

    let report = Summary {
        inv,
        skipped: &skipped,
        result: &result,
        outcome,
        earlier: &earlier,
        unsure: &unsure,
        run_id: &run_id,
        log: log_path.as_deref(),
    };
    report.print(t.json, out)
}

/// The run and store the Ctrl-C presses report on, once the run is recorded.
type Started = Arc<Mutex<Option<(Store, String)>>>;

/// Answers a Ctrl-C on stderr, so the operator knows it was heard and what the next
/// press does; the third exits the process at once.
fn acknowledge(press: u32, running: bool, run: Option<&(Store, String)>) {
    let nodes = run
        .and_then(|(store, id)| store.nodes(id).ok())
        .unwrap_or_default();
    let in_flight: Vec<&crate::store::NodeRow> = nodes.iter().filter(|n| n.state.is_in_flight()).collect();
    match press {
        1 if run.is_some() => eprintln!(
            "\nstopping: no new node will start; {} in flight; Ctrl-C again to abort",
            super::plural(in_flight.len(), "node")
        ),
        1 if running => eprintln!("\nstopping: no node will be started; Ctrl-C again to abort"),
        1 => eprintln!("\nstopping the check"),
        2 if run.is_none() => eprintln!("\naborting; Ctrl-C again to exit at once"),
        2 => eprintln!(
            "\naborting: the steps in flight are stopped ({}); a drained node stays drained; Ctrl-C again to exit at once",
            super::plural(in_flight.len(), "node")
        ),
        _ => {
            let maybe: Vec<String> = nodes
                .iter()
                .filter(|n| {
                    n.drained_by_us
                        || matches!(
                            n.state,
                            NodeState::Draining | NodeState::Drained | NodeState::Rebooting
                        )
                })
                .filter(|n| n.state != NodeState::Succeeded && n.state != NodeState::Skipped)
                .map(|n| n.node.clone())
                .collect();
            match run {
                Some((_, id)) if !maybe.is_empty() => eprintln!(
                    "\nexiting now. These nodes may be left drained: {}\nhelp: `drover runs show {id}`, then `drover runs resume {id}` or `drover runs cancel {id}`",
                    crate::hostlist::compress(&maybe)
                ),
                Some((_, id)) => eprintln!(
                    "\nexiting now; no node is drained by this run\nhelp: `drover runs resume {id}` or `drover runs cancel {id}`"
                ),
                None => eprintln!("\nexiting now; nothing was started"),
            }
            std::process::exit(exit_code::INTERRUPTED);
        }
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
            super::plural(targets, "target"),
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

fn names_of(inv: &Inventory, ids: &[NodeId]) -> Vec<String> {
    names(inv, ids)
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

/// Ends a session: let the reporter print what is queued (it ends once the context,
/// which holds the last event sender, is dropped), close every ssh master still open,
/// and stop counting Ctrl-C.
async fn wind_down<K: Connector>(
    ctrl_c: &tokio::task::JoinHandle<()>,
    cx: Arc<RunContext<K>>,
    reporter: tokio::task::JoinHandle<()>,
    conns: Option<engine::Connections<K::Conn>>,
) {
    drop(cx);
    let _ = reporter.await;
    if let Some(c) = conns {
        c.close_all().await;
    }
    // Counted until here: a third press during the hooks, writes and closing above
    // still exits at once.
    ctrl_c.abort();
}

/// Planned nodes that the run did not work on, by why.
struct Skipped {
    /// Their checks found nothing to do.
    up_to_date: Vec<NodeId>,
    /// They need only steps that `--tags` did not select (drain steps, by default).
    other_steps: Vec<NodeId>,
    /// Whether drain steps are among what `--tags` left out for them.
    drain_unselected: bool,
    /// Their checks failed or they could not be reached: the run did not do all it was
    /// asked to.
    check_failed: Vec<NodeId>,
    /// Drained or down before the run (someone else's), left alone.
    drained_before: Vec<NodeId>,
    /// Left drained by an earlier run, with which run and why.
    held: Vec<(NodeId, String)>,
    /// Needed a drain that no disruption budget had room for.
    no_budget: Vec<NodeId>,
    /// Of the drained-before and held ones, those whose checks say they need the
    /// selected steps: work the run could not do.
    unavailable_needing: usize,
}

impl Skipped {
    fn new(
        plan: &Plan,
        held: &HashMap<NodeId, String>,
        steps: &HashMap<NodeId, Vec<usize>>,
        wf_steps: &[crate::workflow::Step],
        selected: &[bool],
    ) -> Skipped {
        let of = |why: Exclusion| -> Vec<NodeId> {
            let mut v: Vec<NodeId> = plan
                .excluded
                .iter()
                .filter(|(_, e)| *e == why)
                .map(|(i, _)| *i)
                .collect();
            v.sort();
            v
        };
        let drained_before = of(Exclusion::AlreadyUnavailable);
        let held_ids = of(Exclusion::HeldByRun);
        let unavailable_needing = drained_before
            .iter()
            .chain(&held_ids)
            .filter(|i| steps.contains_key(i))
            .count();
        let drain_unselected = wf_steps
            .iter()
            .zip(selected)
            .any(|(s, sel)| !*sel && s.change == crate::workflow::Change::Drain);
        Skipped {
            up_to_date: of(Exclusion::UpToDate),
            other_steps: of(Exclusion::NeedsOtherSteps),
            drain_unselected,
            check_failed: of(Exclusion::CheckFailed),
            drained_before,
            held: held_ids
                .into_iter()
                .map(|i| (i, held.get(&i).cloned().unwrap_or_default()))
                .collect(),
            no_budget: of(Exclusion::NoBudget),
            unavailable_needing,
        }
    }
}

/// The run's outcome with what the plan left out: nodes that needed a drain no budget had
/// room for (because held or down nodes fill it) stop the run like a `Blocked` rollout,
/// even when the rollout itself had nothing left to do.
///
/// Nodes put into maintenance during the run are not failures: a run whose only
/// shortfall is those is a success with work remaining (exit 10), not "completed with
/// failures".
fn final_outcome(inv: &Inventory, plan: &Plan, skipped: &Skipped, result: &engine::RunResult) -> Outcome {
    let outcome = match result.outcome.clone() {
        Some(Outcome::CompletedWithFailures { failed }) if failed == result.maintenance.len() => {
            Outcome::Succeeded
        }
        Some(o) => o,
        None => Outcome::Stopped {
            stop: StopReason::Interrupted,
        },
    };
    if !matches!(outcome, Outcome::Succeeded) {
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
    Outcome::Stopped {
        stop: StopReason::Blocked { node: *first, limit },
    }
}

/// What a run did, for the operator (or `--json`), and its exit code.
struct Summary<'a> {
    inv: &'a Inventory,
    skipped: &'a Skipped,
    result: &'a engine::RunResult,
    outcome: Outcome,
    /// A resumed run's nodes that had finished before it.
    earlier: &'a HashMap<NodeId, Prior>,
    /// Nodes in flight when an interrupted run ended: name, state, drained by the run.
    unsure: &'a [(String, NodeState, bool)],
    run_id: &'a str,
    log: Option<&'a std::path::Path>,
}

impl Summary<'_> {
    /// The exit code and the verdict line. Stable codes: a stop is 5, failed nodes 6,
    /// work the selection left undone 10 (`WORK_REMAINS`).
    fn verdict(&self) -> (i32, String) {
        let (inv, sk) = (self.inv, self.skipped);
        let ran = self.result.succeeded.len();
        let ran_text = || format!("succeeded on {}", super::plural(ran, "node"));
        match &self.outcome {
            Outcome::Stopped {
                stop: StopReason::Interrupted,
            } => (exit_code::INTERRUPTED, "STOPPED: interrupted".into()),
            Outcome::Stopped {
                stop: StopReason::Blocked { node, limit },
            } if sk.no_budget.contains(node) => {
                let who = if sk.held.is_empty() {
                    "nodes that were down before the run fill it".to_string()
                } else {
                    let held: Vec<NodeId> = sk.held.iter().map(|(i, _)| *i).collect();
                    format!(
                        "{} {} it",
                        inv.names(&held),
                        if held.len() == 1 { "fills" } else { "fill" }
                    )
                };
                let done = if ran == 0 {
                    "nothing was done".to_string()
                } else {
                    ran_text()
                };
                (
                    exit_code::RUN_STOPPED,
                    format!(
                        "STOPPED: {} cannot be taken down without breaking {limit}, and {who}; {done}",
                        inv.names(&sk.no_budget)
                    ),
                )
            }
            Outcome::Stopped {
                stop: stop @ StopReason::StateStore { .. },
            } => (
                exit_code::STATE_STORE_FAILED,
                format!("STOPPED: {}", describe_stop(inv, stop)),
            ),
            Outcome::Stopped {
                stop: stop @ StopReason::LeaseLost { .. },
            } => (
                exit_code::LEASE_LOST,
                format!("STOPPED: {}", describe_stop(inv, stop)),
            ),
            Outcome::Stopped { stop } => (
                exit_code::RUN_STOPPED,
                format!("STOPPED: {}", describe_stop(inv, stop)),
            ),
            Outcome::CompletedWithFailures { failed } => (
                exit_code::NODES_FAILED,
                format!(
                    "completed with {} within the failure budget",
                    super::plural(*failed, "failed node")
                ),
            ),
            Outcome::Succeeded if !sk.check_failed.is_empty() => {
                let n = sk.check_failed.len();
                let their = if n == 1 {
                    "its check and was"
                } else {
                    "their checks and were"
                };
                let text = if ran == 0 {
                    format!(
                        "nothing was done: {} failed {their} not touched",
                        super::plural(n, "node")
                    )
                } else {
                    format!(
                        "{}; {} failed {their} not touched",
                        ran_text(),
                        super::plural(n, "node")
                    )
                };
                (exit_code::NODES_FAILED, text)
            }
            Outcome::Succeeded
                if !sk.other_steps.is_empty()
                    || sk.unavailable_needing > 0
                    || !self.result.maintenance.is_empty() =>
            {
                let mut parts = Vec::new();
                if ran > 0 {
                    parts.push(ran_text());
                }
                let n = sk.other_steps.len();
                if n > 0 && sk.drain_unselected {
                    parts.push(format!(
                        "drain steps not selected: {} still {} them; run with --tags drain",
                        super::plural(n, "node"),
                        if n == 1 { "needs" } else { "need" }
                    ));
                } else if n > 0 {
                    parts.push(format!(
                        "{} still {} steps outside --tags",
                        super::plural(n, "node"),
                        if n == 1 { "needs" } else { "need" }
                    ));
                }
                let u = sk.unavailable_needing;
                if u > 0 {
                    parts.push(format!(
                        "{} {} the change but {} out of service and left alone",
                        super::plural(u, "node"),
                        if u == 1 { "needs" } else { "need" },
                        if u == 1 { "is" } else { "are" }
                    ));
                }
                let m = self.result.maintenance.len();
                if m > 0 {
                    parts.push(format!(
                        "{} went into maintenance during the run and {} left alone",
                        super::plural(m, "node"),
                        if m == 1 { "was" } else { "were" }
                    ));
                }
                (
                    exit_code::WORK_REMAINS,
                    format!("work remains: {}", parts.join("; ")),
                )
            }
            Outcome::Succeeded if ran == 0 && self.earlier.is_empty() => {
                (exit_code::OK, "nothing to do: every node is up to date".into())
            }
            Outcome::Succeeded => (exit_code::OK, "succeeded".into()),
        }
    }

    fn print(&self, json: bool, out: &mut dyn Write) -> i32 {
        let (inv, r, sk) = (self.inv, self.result, self.skipped);
        let (code, verdict) = self.verdict();
        // Inventory order, not the order nodes happened to finish in.
        let mut succeeded = r.succeeded.clone();
        succeeded.sort();
        let mut failed_with_errors = r.failed.clone();
        failed_with_errors.sort_by_key(|(i, _)| *i);
        let failed: Vec<NodeId> = failed_with_errors.iter().map(|(i, _)| *i).collect();
        let earlier = |want: fn(&Prior) -> bool| -> Vec<NodeId> {
            let mut v: Vec<NodeId> = self
                .earlier
                .iter()
                .filter(|(_, p)| want(p))
                .map(|(i, _)| *i)
                .collect();
            v.sort();
            v
        };
        let succeeded_earlier = earlier(|p| matches!(p, Prior::Succeeded));
        let failed_earlier = earlier(|p| matches!(p, Prior::Failed { .. }));
        let held_earlier = earlier(|p| matches!(p, Prior::Held));
        let skipped_earlier = earlier(|p| matches!(p, Prior::Skipped));
        let not_started: Vec<NodeId> = r
            .not_started
            .iter()
            .copied()
            .filter(|i| !self.earlier.contains_key(i))
            .collect();
        if json {
            let v = json!({
                "event": "summary",
                "run": self.run_id,
                "outcome": engine::outcome_json(&self.outcome, inv),
                "exit_code": code,
                "verdict": verdict,
                "succeeded": names(inv, &succeeded),
                "failed": failed_with_errors.iter().map(|(i, e)| json!({"node": inv.node(*i).name, "error": e})).collect::<Vec<_>>(),
                "held": r.held.iter().map(|(i, e)| json!({"node": inv.node(*i).name, "reason": e})).collect::<Vec<_>>(),
                "skipped": r.skipped.iter().map(|(i, e)| json!({"node": inv.node(*i).name, "reason": e})).collect::<Vec<_>>(),
                "not_started": names(inv, &not_started),
                "succeeded_earlier": names(inv, &succeeded_earlier),
                "failed_earlier": names(inv, &failed_earlier),
                "held_earlier": names(inv, &held_earlier),
                "skipped_earlier": names(inv, &skipped_earlier),
                "in_flight": self.unsure.iter().map(|(n, st, d)| json!({"node": n, "state": st, "drained_by_us": d})).collect::<Vec<_>>(),
                "up_to_date": names(inv, &sk.up_to_date),
                "needs_other_steps": names(inv, &sk.other_steps),
                "check_failed": names(inv, &sk.check_failed),
                "drained_before": names(inv, &sk.drained_before),
                "held_by_earlier_run": sk.held.iter().map(|(i, e)| json!({"node": inv.node(*i).name, "reason": e})).collect::<Vec<_>>(),
                "no_budget": names(inv, &sk.no_budget),
                "log": self.log.map(|d| d.display().to_string()),
            });
            let _ = writeln!(out, "{v}");
            return code;
        }
        let _ = writeln!(out, "\nrun {}: {verdict}", self.run_id);
        let line = |out: &mut dyn Write, label: &str, ids: &[NodeId]| {
            if !ids.is_empty() {
                let _ = writeln!(out, "  {label:<12}{:>6}  {}", ids.len(), inv.names(ids));
            }
        };
        line(out, "succeeded", &succeeded);
        line(out, "succeeded earlier", &succeeded_earlier);
        line(out, "failed", &failed);
        line(out, "failed earlier", &failed_earlier);
        let mut held: Vec<NodeId> = r.held.iter().map(|(i, _)| *i).collect();
        held.sort();
        let mut skipped_drain: Vec<NodeId> = r.skipped.iter().map(|(i, _)| *i).collect();
        skipped_drain.sort();
        line(out, "held", &held);
        line(out, "held earlier", &held_earlier);
        line(out, "skipped", &skipped_drain);
        line(out, "skipped earlier", &skipped_earlier);
        if !self.unsure.is_empty() {
            let list: Vec<String> = self
                .unsure
                .iter()
                .map(|(n, st, _)| format!("{n} ({st})"))
                .collect();
            let _ = writeln!(
                out,
                "  {:<12}{:>6}  {}",
                "in flight",
                self.unsure.len(),
                list.join(", ")
            );
        }
        line(out, "not started", &not_started);
        line(out, "up to date", &sk.up_to_date);
        line(out, "other steps", &sk.other_steps);
        line(out, "check failed", &sk.check_failed);
        line(out, "drained before", &sk.drained_before);
        let held_by: Vec<NodeId> = sk.held.iter().map(|(i, _)| *i).collect();
        line(out, "held by a run", &held_by);
        line(out, "no budget room", &sk.no_budget);
        for (id, e) in failed_with_errors
            .iter()
            .chain(&r.held)
            .chain(&r.skipped)
            .chain(&sk.held)
        {
            let _ = writeln!(out, "  {}: {}", inv.node(*id).name, e.replace('\n', "\n      "));
        }
        if !self.unsure.is_empty() {
            let _ = writeln!(
                out,
                "  the nodes in flight are still leased to the run: `drover runs resume {id}` finishes them, `drover runs cancel {id}` gives them up",
                id = self.run_id
            );
        }
        if let Some(d) = self.log {
            let _ = writeln!(out, "  log: {}", d.display());
        }
        code
    }
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
            format!(
                "{} failed in batch {batch}, its budget is {budget}",
                super::plural(*failed, "node")
            )
        }
        StopReason::RunBudget { failed, budget } => {
            format!(
                "{} failed, the run's budget is {budget}",
                super::plural(*failed, "node")
            )
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
