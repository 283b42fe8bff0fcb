//! `drover runs list|show|resume|cancel`: the runs in the state database.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use super::rollout::{Job, RunOptions, drive};
use super::run_state::ReadState;
use super::selection::{Refusal, Target, TransportKind};
use crate::exit_code;
use crate::project::Project;
use crate::service::{RunRequest, Trigger};
use crate::store::{PauseScope, RunStatus, Store};

fn refuse(err: &mut dyn Write, r: Refusal) -> i32 {
    let _ = writeln!(err, "error: {}", r.0);
    r.1
}

/// The site, its problems printed when it is invalid.
pub(super) fn load_project(site: &Path, color: bool, err: &mut dyn Write) -> Result<Project, i32> {
    Project::load(site).map_err(|diags| {
        for d in &diags {
            let _ = writeln!(err, "{}\n", d.render(color));
        }
        exit_code::INVALID_CONFIG
    })
}

/// For `resume` and `cancel`: the site, its store and run `id`, if this controller may
/// take the run over (see [`may_take_over`]).
fn take_over(
    site: &Path,
    id: &str,
    color: bool,
    err: &mut dyn Write,
    (alive, finished): (&str, &str),
) -> Result<(Project, Store, crate::store::RunDetail), i32> {
    let project = load_project(site, color, err)?;
    let store = super::run_state::open_store(&project).map_err(|r| refuse(err, r))?;
    let detail = detail(&store, id).map_err(|r| refuse(err, r))?;
    may_take_over(&store, &project, &detail.run, alive, finished).map_err(|r| refuse(err, r))?;
    Ok((project, store, detail))
}

/// For commands that only read: the store opened read-only. `Err(Ok(text))`: no run was
/// ever recorded at this site (nothing exists to read, and nothing was created).
fn load_read(site: &Path, color: bool, err: &mut dyn Write) -> Result<Store, Result<String, i32>> {
    let project = load_project(site, color, err).map_err(Err)?;
    super::run_state::open_store_read(&project).map_err(|r| match r {
        ReadState::NoRuns(why) => Ok(why),
        ReadState::Failed(r) => Err(refuse(err, r)),
    })
}

/// Whether this controller may take over run `r` (to resume or cancel it): only a run
/// that has not finished and whose controller is gone. `alive` and `finished` end the
/// refusals with what the command's user should do about them.
fn may_take_over(
    store: &Store,
    project: &Project,
    r: &crate::store::RunRow,
    alive: &str,
    finished: &str,
) -> Result<(), Refusal> {
    match r.status {
        RunStatus::Running => {
            let dead = store
                .abandoned(jiff::Timestamp::now(), project.site.leases.ttl)
                .is_ok_and(|v| v.iter().any(|a| a.id == r.id));
            if dead {
                Ok(())
            } else {
                Err(Refusal(
                    format!(
                        "run {} is still driven by {} pid {} (heartbeat {}){alive}",
                        r.id, r.controller.host, r.controller.pid, r.heartbeat_at
                    ),
                    exit_code::NODES_LEASED,
                ))
            }
        }
        RunStatus::Interrupted | RunStatus::Stopped => Ok(()),
        RunStatus::Succeeded | RunStatus::CompletedWithFailures | RunStatus::Cancelled => Err(Refusal(
            format!("run {} has finished ({}){finished}", r.id, r.status.label()),
            exit_code::USAGE,
        )),
    }
}

fn detail(store: &Store, id: &str) -> Result<crate::store::RunDetail, Refusal> {
    match store.run(id) {
        Ok(Some(d)) => Ok(d),
        Ok(None) => Err(Refusal(format!("no run `{id}`"), exit_code::USAGE)),
        Err(e) => Err(Refusal(e.to_string(), exit_code::FAILURE)),
    }
}

/// `runs list --state --workflow`: which runs to list (`None`: any).
pub struct RunFilter<'a> {
    pub state: Option<&'a str>,
    pub workflow: Option<&'a str>,
}

pub fn list(
    site: &Path,
    filter: &RunFilter<'_>,
    json: bool,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let state = match filter.state {
        None => None,
        Some(s) => match RunStatus::parse(s) {
            Some(st) => Some(st),
            None => {
                let known: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
                return refuse(
                    err,
                    Refusal::usage(format!("--state `{s}`: expected one of {}", known.join(", "))),
                );
            }
        },
    };
    let store = match load_read(site, color, err) {
        Ok(x) => x,
        Err(Ok(why)) => {
            if json {
                let _ = writeln!(out, "[]");
            } else {
                let _ = writeln!(out, "no runs yet: {why}");
            }
            return exit_code::OK;
        }
        Err(Err(c)) => return c,
    };
    let runs: Vec<_> = match store.runs() {
        Ok(r) => r
            .into_iter()
            .filter(|r| state.is_none_or(|s| r.status == s))
            .filter(|r| filter.workflow.is_none_or(|w| r.workflow == w))
            .collect(),
        Err(e) => return refuse(err, Refusal(e.to_string(), exit_code::FAILURE)),
    };
    let pauses = match store.pauses() {
        Ok(p) => p,
        Err(e) => return refuse(err, Refusal(e.to_string(), exit_code::FAILURE)),
    };
    let paused = |r: &crate::store::RunRow| paused_by(&pauses, r);
    if json {
        let rows: Vec<serde_json::Value> = runs
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                v["paused"] = serde_json::to_value(paused(r)).unwrap_or_default();
                v
            })
            .collect();
        let _ = writeln!(out, "{}", serde_json::Value::from(rows));
        return exit_code::OK;
    }
    for p in pauses.iter().filter(|p| p.scope == PauseScope::All) {
        let _ = writeln!(out, "{p}\n");
    }
    if runs.is_empty() {
        let _ = writeln!(out, "no runs yet");
        return exit_code::OK;
    }
    let _ = writeln!(
        out,
        "{:<44} {:<24} {:<24} {:>5} {:>5} {:>5} {:>5}",
        "RUN", "WORKFLOW", "STATUS", "OK", "FAIL", "HELD", "LEFT"
    );
    for r in runs {
        let c = &r.counts;
        let left = c.total() - c.finished();
        let _ = writeln!(
            out,
            "{:<44} {:<24} {:<24} {:>5} {:>5} {:>5} {:>5}",
            r.id,
            format!("{} v{}", r.workflow, r.version),
            match paused(&r) {
                Some(_) => format!("{} (paused)", r.status.label()),
                None => r.status.label().to_string(),
            },
            c.succeeded,
            // Nodes whose checks failed are not among the run's nodes, but failed it.
            c.failed + crate::report::check_failed(r.outcome.as_ref()).len(),
            c.held,
            left
        );
    }
    exit_code::OK
}

/// The pause that holds run `r`: its own, or the global one while it runs (a finished
/// run is not held by anything).
fn paused_by<'a>(
    pauses: &'a [crate::store::Pause],
    r: &crate::store::RunRow,
) -> Option<&'a crate::store::Pause> {
    pauses
        .iter()
        .find(|p| p.scope == PauseScope::Run(r.id.clone()))
        .or_else(|| {
            pauses
                .iter()
                .find(|p| p.scope == PauseScope::All && r.status == RunStatus::Running)
        })
}

pub fn show(site: &Path, id: &str, json: bool, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let store = match load_read(site, color, err) {
        Ok(x) => x,
        Err(Ok(why)) => return refuse(err, Refusal(format!("no run `{id}`: {why}"), exit_code::USAGE)),
        Err(Err(c)) => return c,
    };
    let detail = match detail(&store, id) {
        Ok(d) => d,
        Err(r) => return refuse(err, r),
    };
    let pauses = match store.pauses() {
        Ok(p) => p,
        Err(e) => return refuse(err, Refusal(e.to_string(), exit_code::FAILURE)),
    };
    let paused = paused_by(&pauses, &detail.run);
    if json {
        let mut v = serde_json::to_value(&detail).unwrap_or_default();
        v["paused"] = serde_json::to_value(paused).unwrap_or_default();
        let _ = writeln!(out, "{v}");
        return exit_code::OK;
    }
    let r = &detail.run;
    let _ = writeln!(
        out,
        "run {}: {} v{}, {}",
        r.id,
        r.workflow,
        r.version,
        r.status.label()
    );
    let _ = writeln!(
        out,
        "  started {} by {} pid {}; last heartbeat {}",
        r.started_at, r.controller.host, r.controller.pid, r.heartbeat_at
    );
    if let Some(f) = r.finished_at {
        let _ = writeln!(out, "  finished {f}");
    }
    if let Some(p) = paused {
        let _ = writeln!(out, "  {p}: no new node starts");
    }
    // A run that is not running and has nodes caught mid-cycle left them unsure.
    let unsure: Vec<String> = detail
        .nodes
        .iter()
        .filter(|n| r.status != RunStatus::Running && n.state.is_in_flight())
        .map(|n| format!("{} ({})", n.node, n.state))
        .collect();
    if !unsure.is_empty() {
        let _ = writeln!(
            out,
            "  unsure: {} in flight when it ended, still leased: {}\n  help: `drover runs resume {}` finishes them; `drover runs cancel {}` gives them up",
            super::plural(unsure.len(), "node"),
            unsure.join(", "),
            r.id,
            r.id
        );
    }
    for n in &detail.nodes {
        let drained = if n.drained_by_us {
            " (drained by this run)"
        } else {
            ""
        };
        let reason = n.reason.as_deref().map(|x| format!(": {x}")).unwrap_or_default();
        let attempt = if n.attempt > 1 {
            format!(", attempt {}", n.attempt)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {:<20} {}{attempt}{drained}{reason}",
            n.node,
            n.state.as_str()
        );
    }
    // Never worked on, so not among the nodes above.
    let unchecked = crate::report::check_failed(r.outcome.as_ref());
    if !unchecked.is_empty() {
        let _ = writeln!(
            out,
            "  check failed, not touched: {}",
            crate::hostlist::compress(&unchecked)
        );
    }
    exit_code::OK
}

/// Continues a run whose controller died (or was interrupted): finished nodes are left
/// alone; the others are re-checked, drained ones keep their place in the budgets.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site, straight from the command line"
)]
pub fn resume(
    site: &Path,
    id: &str,
    yes: bool,
    (requested, allow_local): (Option<TransportKind>, bool),
    json: bool,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let (project, store, detail) = match take_over(site, id, color, err, ("", "")) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let project = Arc::new(project);
    drop(store);
    // The interrupts are the command's own, set when it starts the request.
    let (_, unused) = tokio::sync::watch::channel(0u32);
    let req = match RunRequest::resume(Arc::clone(&project), detail, Trigger::cli(), unused) {
        Ok(r) => r,
        Err(r) => return refuse(err, r.into()),
    };
    let wf = &project.workflows[req.workflow];
    let transport = match super::selection::transport(&project.site, requested, allow_local, &wf.name, err) {
        Ok(k) => k,
        Err(r) => return refuse(err, r),
    };
    let t = Target {
        workflow: wf.name.clone(),
        site: site.to_path_buf(),
        limit: None,
        json,
        transport: Some(transport),
        allow_local,
        timestamps: false,
        color,
    };
    let opts = RunOptions {
        tags: req.selection.tags.clone(),
        extra_vars: Vec::new(),
        yes,
        dry_run: false,
        // A resumed run does not refuse at a closed window (it finishes what it began),
        // but it starts no new node outside it, unless the run was begun with
        // --ignore-window (`RunRequest::resume` reads it from the run's options).
        ignore_window: req.ignore_window,
        diff: false,
    };
    let workflow = req.workflow;
    let job = Job {
        project: Arc::clone(&project),
        workflow,
        selection: req.selection,
        transport,
        verbose: false,
        diff: false,
    };
    drive(job, &t, Some(&opts), req.resume, out, err)
}

/// `drain.mode: reservation`: the cancelled run's maintenance reservations, deleted
/// (its nodes' turns are over; a node left drained stays out by its drain).
fn cancel_reservations(project: &Project, workflow: &str, id: &str) -> Result<Vec<String>, String> {
    let wf = project.workflows.iter().find(|w| w.name == workflow);
    let hooks = wf.and_then(|w| w.drain.as_ref()).or(project.site.drain.as_ref());
    if !hooks.is_some_and(|h| h.by_reservation()) {
        return Ok(Vec::new());
    }
    let none = indexmap::IndexMap::new();
    let env = crate::site::merge_env(&project.site.env, wf.map_or(&none, |w| &w.env));
    let client = crate::slurm::SlurmClient::new(env);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(client.delete_reservations_of(id))
        .map_err(|e| e.to_string())
}

/// Gives up a run nobody drives any more: its leases are released, the run is marked
/// cancelled, and its nodes that are not finished are finished as they stand: drained
/// ones held (left drained, for a human, with a reason naming the cancelled run), the
/// rest skipped. Refuses a run whose controller is alive.
pub fn cancel(
    site: &Path,
    id: &str,
    json: bool,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let alive_or_finished = (": stop it there (Ctrl-C) first", "; there is nothing to cancel");
    let (project, store, detail) = match take_over(site, id, color, err, alive_or_finished) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let crate::service::GiveUp {
        writes,
        left_drained,
        skipped,
    } = crate::service::GiveUp::of(
        &detail,
        &crate::service::GiveUpReason::Cancelled,
        jiff::Timestamp::now(),
    );
    let leased = store
        .leases()
        .map(|l| l.iter().filter(|l| l.run == id).count())
        .unwrap_or(0);
    if let Err(e) = store.finish_run_blocking(id, writes, false) {
        return refuse(
            err,
            Refusal(format!("cannot cancel run {id}: {e}"), exit_code::FAILURE),
        );
    }
    let unreserved = cancel_reservations(&project, &detail.run.workflow, id);
    if json {
        let v = serde_json::json!({
            "run": id,
            "status": "cancelled",
            "reservations_deleted": unreserved.as_ref().ok(),
            "leases_released": leased,
            "left_drained": left_drained.iter().map(|(n, why)| serde_json::json!({"node": n, "reason": why})).collect::<Vec<_>>(),
            "skipped": skipped,
        });
        let _ = writeln!(out, "{v}");
        return exit_code::OK;
    }
    let _ = writeln!(
        out,
        "run {id} cancelled; released its {}",
        super::plural(leased, "lease")
    );
    match &unreserved {
        Ok(gone) if gone.is_empty() => {}
        Ok(gone) => {
            let _ = writeln!(out, "  reservations deleted: {}", gone.join(", "));
        }
        Err(e) => {
            let _ = writeln!(
                err,
                "warning: cannot delete the run's reservations: {e}; see `scontrol show reservation`"
            );
        }
    }
    if !skipped.is_empty() {
        let _ = writeln!(
            out,
            "  not finished, given up: {} {}",
            super::plural(skipped.len(), "node"),
            crate::hostlist::compress(&skipped)
        );
    }
    if left_drained.is_empty() {
        let _ = writeln!(out, "  no node is left drained by it");
    } else {
        let names: Vec<String> = left_drained.iter().map(|(n, _)| n.clone()).collect();
        let _ = writeln!(
            out,
            "  left drained, for a human: {} {}",
            super::plural(names.len(), "node"),
            crate::hostlist::compress(&names)
        );
        for (n, why) in &left_drained {
            let _ = writeln!(out, "    {n}: {why}");
        }
    }
    exit_code::OK
}
