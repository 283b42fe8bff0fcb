//! `drover check`, `drover plan` and `drover run`: the CLI's side of a run. The run
//! itself is the service's ([`crate::service::start`]); this module turns the command
//! line into a request, renders the run's events (the reporter, the plan, the
//! confirmation prompt, answers to Ctrl-C) and its outcome (the verdict and exit code).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use serde_json::json;
use tokio::sync::{broadcast, oneshot, watch};

use super::run_state;
use super::selection::{
    Refusal, Target, TransportKind, extra_vars, limit, load, recheck_names, selected_steps, transport,
};
use crate::engine::{self, Class, Outcome, Prior, StopReason};
use crate::exit_code;
use crate::inventory::{Inventory, NodeId};
use crate::plan::{Plan, PlanInput};
use crate::project::Project;
use crate::report::{self, Paint, ReportControl, Style, check_json, diffs_json, render_check, render_diffs};
use crate::service::{
    self, Answer, Finished, Interruption, Mode, Planned, Resume, RunEvent, RunRequest, Selection, Skipped,
    Trigger,
};
use crate::store::{NodeState, Store};

/// Options of `drover run` beyond the target.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub tags: Option<String>,
    /// `--extra-vars`/`-e`, in order.
    pub extra_vars: Vec<String>,
    pub yes: bool,
    pub dry_run: bool,
    pub ignore_window: bool,
    /// `--diff`: show how each file step would change its file, with the plan.
    pub diff: bool,
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
    let mut input = match limit(&project.inventory, t.limit.as_deref()) {
        Ok(l) => PlanInput {
            limit: l,
            maintenance,
            ..PlanInput::default()
        },
        Err(r) => return refuse(err, r),
    };
    // With Slurm, the plan reads the cluster (on the controller; no node is touched).
    let hooks = wf.drain.as_ref().or(project.site.drain.as_ref());
    let mut slurm_note = None;
    if hooks.is_some_and(|h| h.is_slurm()) {
        let client = crate::slurm::SlurmClient::new(crate::site::merge_env(&project.site.env, &wf.env))
            .with_timeout(std::time::Duration::from_secs(10));
        match runtime().map(|rt| rt.block_on(crate::slurm::SlurmView::read(&client))) {
            Ok(Ok(v)) => input.slurm = Some(v),
            Ok(Err(e)) => {
                slurm_note = Some(format!(
                    "  (Slurm could not be read, so partition budgets, nodes Slurm has out and the order are not shown: {e})"
                ));
            }
            Err(code) => return code,
        }
    }
    let plan = match Plan::build(&project.inventory, wf, &input) {
        Ok(p) => p,
        Err(e) => return refuse(err, Refusal(e.to_string(), exit_code::INVALID_CONFIG)),
    };
    if t.json {
        let mut v = plan_json(&project.inventory, &plan);
        if let Some(h) = hooks.filter(|h| h.is_slurm()) {
            v["drain_mode"] = json!(h.mode);
        }
        let _ = writeln!(out, "{v}");
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
        if let Some(d) = hooks.and_then(|h| h.describe()) {
            let _ = writeln!(out, "  {d}");
        }
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
        if let Some(n) = &slurm_note {
            let _ = writeln!(out, "{n}");
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

pub(crate) fn plan_json(inv: &Inventory, plan: &Plan) -> serde_json::Value {
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

/// `drover check`; `diff`: also show how each file step would change its file.
pub fn check(
    t: &Target,
    verbose: bool,
    diff: bool,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    session(t, None, verbose, diff, color, out, err)
}

pub fn run(t: &Target, opts: &RunOptions, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    session(t, Some(opts), false, opts.diff, color, out, err)
}

/// Loads, checks every target, and for `run` plans and executes. `opts` is None for
/// `check`.
fn session(
    t: &Target,
    opts: Option<&RunOptions>,
    verbose: bool,
    diff: bool,
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
    let selection = (|| -> Result<Selection, Refusal> {
        let wf = &project.workflows[wi];
        let lim = limit(&project.inventory, t.limit.as_deref())?;
        let extra = extra_vars(opts.map_or(&[][..], |o| o.extra_vars.as_slice()))?;
        recheck_names(&project, wf, &extra)?;
        let selected = selected_steps(wf, opts.and_then(|o| o.tags.as_deref()))?;
        Ok(Selection {
            limit_text: t.limit.clone(),
            limit: lim,
            tags: opts.and_then(|o| o.tags.clone()),
            selected,
            extra_vars: extra,
            maintenance: run_state::in_maintenance(&project)?,
        })
    })();
    let selection = match selection {
        Ok(p) => p,
        Err(r) => return refuse(err, r),
    };
    let job = Job {
        project: Arc::new(project),
        workflow: wi,
        selection,
        transport,
        verbose,
        diff,
    };
    drive(job, t, opts, None, out, err)
}

/// What the command line resolved a request to.
pub(super) struct Job {
    pub(super) project: Arc<Project>,
    pub(super) workflow: usize,
    pub(super) selection: Selection,
    pub(super) transport: TransportKind,
    pub(super) verbose: bool,
    /// `--diff`.
    pub(super) diff: bool,
}

/// Runs a request through the service on a runtime of its own and renders it: the
/// reporter on a thread, the plan and the prompt, the verdict. `resume` is a run to
/// continue (`runs resume`).
pub(super) fn drive(
    job: Job,
    t: &Target,
    opts: Option<&RunOptions>,
    resume: Option<Resume>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let Ok(rt) = runtime() else {
        return exit_code::FAILURE;
    };
    let code = rt.block_on(consume(job, t, opts, resume, out, err));
    // A confirmation prompt answered by Ctrl-C leaves its stdin read blocked; dropping
    // the runtime would wait for it forever. Everything else has finished.
    rt.shutdown_background();
    code
}

async fn consume(
    job: Job,
    t: &Target,
    opts: Option<&RunOptions>,
    resume: Option<Resume>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let project = Arc::clone(&job.project);
    let wf = &project.workflows[job.workflow];
    let inv = &project.inventory;
    // Ctrl-C is counted from here on: the first stops the check or the run gracefully
    // (every ssh master is closed), the second aborts a run's steps.
    // The handler is installed before the run starts, not when a spawned task first
    // polls for it, so no press kills the process with masters open.
    let (itx, irx) = watch::channel(0u32);
    let sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    let (confirm_tx, confirm_rx) = oneshot::channel();
    let diff = job.diff;
    let mode = match opts {
        None => Mode::Check,
        Some(o) => Mode::Run { dry_run: o.dry_run },
    };
    let request = RunRequest {
        project: Arc::clone(&job.project),
        workflow: job.workflow,
        selection: job.selection,
        mode,
        resume,
        trigger: Trigger::cli(),
        transport: job.transport,
        ignore_window: opts.is_some_and(|o| o.ignore_window),
        verbose: job.verbose,
        interrupts: irx.clone(),
        confirm: Some(confirm_rx),
        record_when_idle: true,
        diff: job.diff,
        refuse_closed_window: true,
        live_inventory: None,
        hold_failed: None,
    };
    let mut handle = match service::start(request) {
        Ok(h) => h,
        Err(r) => return refuse(err, r.into()),
    };
    let run_id = handle.run_id.clone();
    let ctrl_c = {
        let recorded = handle.recorded.clone();
        let running = opts.is_some();
        let run_id = run_id.clone();
        tokio::spawn(async move {
            let Ok(mut sigint) = sigint else { return };
            let mut n = 0;
            while sigint.recv().await.is_some() {
                n += 1;
                let run = recorded.borrow().clone().map(|s| (s, run_id.clone()));
                acknowledge(n, running, run.as_ref());
                let _ = itx.send(n);
            }
        })
    };
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
    let rt = tokio::runtime::Handle::current();
    let reporter = tokio::task::spawn_blocking(move || {
        rt.block_on(async move {
            if check_json_only {
                // `check --json` prints one document at the end.
                let mut erx = erx;
                while erx.recv().await.is_some() {}
            } else {
                report::report_with(erx, style, screen_rx).await;
            }
        });
    });
    let mut confirm = Some(confirm_tx);
    loop {
        match handle.events.recv().await {
            Ok(RunEvent::Engine(e)) => etx.send(e),
            Ok(RunEvent::Notice(n)) => {
                let _ = writeln!(err, "{n}");
            }
            Ok(RunEvent::Planned(p)) => {
                let answer = planned(&project, &p, t, opts, &screen, &irx, out, err).await;
                if let (Some(tx), Some(a)) = (confirm.take(), answer) {
                    let _ = tx.send(a);
                }
            }
            Ok(RunEvent::Recorded { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
    // The reporter prints what is queued and ends with its channel.
    drop(etx);
    let _ = reporter.await;
    let outcome = handle.outcome().await;
    // Counted until here: a third press during the hooks, writes and closing still
    // exits at once.
    ctrl_c.abort();
    match outcome {
        service::Outcome::Refused(r) => refuse(err, r.into()),
        service::Outcome::Interrupted(i) => {
            let text = match i {
                Interruption::WaitingForReboots => {
                    "interrupted while waiting for rebooting nodes; nothing was run".to_string()
                }
                Interruption::Checking if opts.is_some() => {
                    "interrupted while checking; nothing was run".into()
                }
                Interruption::Checking => "interrupted while checking".into(),
                Interruption::AtPrompt => "\ninterrupted; nothing done".into(),
                Interruption::BeforeStart => "interrupted; nothing was run".into(),
                Interruption::WhileRecording => {
                    format!("interrupted; nothing was run (run {run_id} is recorded as interrupted)")
                }
            };
            let _ = writeln!(err, "{text}");
            exit_code::INTERRUPTED
        }
        service::Outcome::Checked {
            results,
            described,
            maintenance,
        } => {
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
                    if diff {
                        o.insert("diffs".into(), diffs_json(inv, &results));
                    }
                    o.insert(
                        "maintenance".into(),
                        maintenance
                            .iter()
                            .map(|(i, why)| json!({"node": inv.node(*i).name, "reason": why}))
                            .collect(),
                    );
                }
                let _ = writeln!(out, "{v}");
            } else {
                let _ = write!(out, "{}", render_check(inv, &results));
                if diff {
                    let _ = write!(out, "{}", render_diffs(inv, wf, &results, Paint(t.color)));
                }
                if !maintenance.is_empty() {
                    let ids: Vec<NodeId> = maintenance.iter().map(|(i, _)| *i).collect();
                    let _ = writeln!(
                        out,
                        "  not checked (in maintenance): {} {}",
                        ids.len(),
                        inv.names(&ids)
                    );
                    for (id, why) in &maintenance {
                        let _ = writeln!(out, "    {}: {why}", inv.node(*id).name);
                    }
                }
            }
            if results.values().any(|r| r.class == Class::Error) {
                exit_code::NODES_FAILED
            } else {
                exit_code::OK
            }
        }
        service::Outcome::DryRun { plan } => {
            if t.json {
                let _ = writeln!(out, "{}", plan_json(inv, &plan));
            }
            exit_code::OK
        }
        // Not asked for: the CLI records every run.
        service::Outcome::NothingToDo => exit_code::OK,
        service::Outcome::Declined => {
            let _ = writeln!(err, "nothing done");
            exit_code::OK
        }
        service::Outcome::Finished(f) => {
            let _ = wf;
            let Finished {
                run_id,
                skipped,
                result,
                outcome,
                earlier,
                unsure,
                log,
            } = *f;
            let report = Summary {
                inv,
                skipped: &skipped,
                result: &result,
                outcome,
                earlier: &earlier,
                unsure: &unsure,
                run_id: &run_id,
                log: log.as_deref(),
            };
            report.print(t.json, out)
        }
    }
}

/// Shows the check and the plan once the reporter has shown everything before them,
/// and for a run asks for the confirmation. Returns the answer for the service (`None`
/// for a dry run, which asks nothing).
#[allow(
    clippy::too_many_arguments,
    reason = "one call site; the pieces of one screen"
)]
async fn planned(
    project: &Project,
    p: &Planned,
    t: &Target,
    opts: Option<&RunOptions>,
    screen: &ReportControl,
    irx: &watch::Receiver<u32>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Option<Answer> {
    let inv = &project.inventory;
    let Some(wf) = project.workflows.iter().find(|w| w.name == p.plan.workflow) else {
        return Some(Answer::No);
    };
    // The check's events are shown and its bar is gone before the report, the plan and
    // the prompt; no bar draws until the answer.
    screen.quiet().await;
    if !t.json {
        let _ = write!(out, "{}", render_check(inv, &p.results));
        if opts.is_some_and(|o| o.diff) {
            let _ = write!(out, "{}", render_diffs(inv, wf, &p.results, Paint(t.color)));
        }
        if !p.unselected.is_empty() {
            let _ = writeln!(
                out,
                "  {} only steps outside --tags (e.g. drain steps): {}",
                match p.unselected.len() {
                    1 => "1 node needs".to_string(),
                    n => format!("{n} nodes need"),
                },
                inv.names(&p.unselected)
            );
        }
        let _ = write!(
            out,
            "{}",
            p.plan.render_for(
                inv,
                window_text(project, wf.window.as_deref()).as_deref(),
                Some(wf)
            )
        );
        if let Some(d) = wf
            .drain
            .as_ref()
            .or(project.site.drain.as_ref())
            .and_then(|h| h.describe())
        {
            let _ = writeln!(out, "  {d}");
        }
        let mut held_sorted: Vec<_> = p.held.iter().collect();
        held_sorted.sort();
        for (id, why) in held_sorted {
            let _ = writeln!(out, "    {}: {why}", inv.node(*id).name);
        }
    }
    let opts = opts?;
    if opts.dry_run {
        return None;
    }
    if !opts.yes && !p.plan.nodes.is_empty() {
        if !std::io::stdin().is_terminal() {
            return Some(Answer::CannotAsk);
        }
        let _ = write!(err, "run {} on {} nodes? [y/N] ", wf.name, p.plan.nodes.len());
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
            () = engine::next_press(&mut at_prompt) => return Some(Answer::Interrupted),
        };
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Some(Answer::No);
        }
    }
    screen.resume();
    Some(Answer::Yes)
}

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
            Outcome::CompletedWithFailures { failed } => {
                // Nodes that did not drain in time, and nodes whose checks failed, count
                // as failures too, but no step failed on them: say what each of them is.
                let r = self.result;
                let skipped = r
                    .skipped
                    .iter()
                    .filter(|(i, _)| !r.maintenance.contains(i))
                    .count();
                let (held, unchecked) = (r.held.len(), sk.check_failed.len());
                let failed_nodes = failed.saturating_sub(held + skipped + unchecked);
                let mut parts = Vec::new();
                if failed_nodes > 0 {
                    parts.push(super::plural(failed_nodes, "failed node"));
                }
                if held > 0 {
                    parts.push(format!(
                        "{} held (did not drain in time)",
                        super::plural(held, "node")
                    ));
                }
                if skipped > 0 {
                    parts.push(format!(
                        "{} skipped (did not drain in time; resumed untouched)",
                        super::plural(skipped, "node")
                    ));
                }
                let not_checked = (unchecked > 0).then(|| crate::report::not_checked(unchecked));
                let text = match (parts.is_empty(), not_checked) {
                    // Only checks failed: nothing the run started failed.
                    (true, Some(nc)) if ran == 0 => format!("nothing was done: {nc}"),
                    (true, Some(nc)) => format!("{}; {nc}", ran_text()),
                    (true, None) => format!(
                        "completed with {} within the failure budget",
                        super::plural(*failed, "failed node")
                    ),
                    (false, nc) => {
                        let done = format!("completed with {} within the failure budget", parts.join(", "));
                        match nc {
                            Some(nc) => format!("{done}; {nc}"),
                            None => done,
                        }
                    }
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
