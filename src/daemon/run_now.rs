//! A rollout asked for by a person (a slash command): the site in force, an optional
//! `--limit`, a dry run or a real one, within the asker's node scope.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{oneshot, watch};

use super::daemon::Core;
use crate::inventory::{Inventory, NodeId};
use crate::service::{self, Mode, Outcome, RunRequest, Trigger};

/// What a run asked for by a person got: a sentence for them, and the run's id when one
/// started (its outcome is told to them again when it ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunNowAnswer {
    pub text: String,
    pub started: Option<String>,
}

impl From<String> for RunNowAnswer {
    fn from(text: String) -> RunNowAnswer {
        RunNowAnswer { text, started: None }
    }
}

pub(super) fn run_now(
    core: &mut Core,
    workflow: &str,
    limit: Option<&str>,
    dry_run: bool,
    scope: Option<&HashSet<String>>,
    trigger: Trigger,
    reply: oneshot::Sender<RunNowAnswer>,
) {
    let project = core.project();
    let inv = &project.inventory;
    let Some(wf) = project.workflows.iter().find(|w| w.name == workflow) else {
        let names: Vec<&str> = project.workflows.iter().map(|w| w.name.as_str()).collect();
        tell(
            reply,
            format!("No workflow `{workflow}`. Workflows: {}.", names.join(", ")),
        );
        return;
    };
    let targets = match resolve(inv, &wf.targets) {
        Ok(t) => t,
        Err(e) => {
            tell(reply, e);
            return;
        }
    };
    let limit_ids = match limit.map(|l| resolve(inv, &service::split_list(l))).transpose() {
        Ok(l) => l,
        Err(e) => {
            tell(reply, format!("--limit: {e}"));
            return;
        }
    };
    let touched: Vec<NodeId> = match &limit_ids {
        Some(l) => targets.iter().copied().filter(|t| l.contains(t)).collect(),
        None => targets.clone(),
    };
    if touched.is_empty() {
        tell(
            reply,
            format!("`{workflow}`: the limit selects none of its targets."),
        );
        return;
    }
    if let Some(scope) = scope {
        let outside = outside_scope(inv, &touched, scope);
        if !outside.is_empty() {
            tell(
                reply,
                format!(
                    "Sorry, you may not act on {} (outside your node scope, or in an HA group that is not wholly in it). Nothing was started.",
                    outside.join(", ")
                ),
            );
            return;
        }
    }
    if !dry_run && let Some(run) = core.active_run(workflow) {
        tell(
            reply,
            format!("A rollout of `{workflow}` is active (run {run}); nothing was started."),
        );
        return;
    }
    let (itx, irx) = watch::channel(0u32);
    let mut req = match RunRequest::new(Arc::clone(&project), workflow, trigger, irx) {
        Ok(r) => r,
        Err(r) => {
            tell(reply, format!("Not started: {r}"));
            return;
        }
    };
    if let Some(l) = limit_ids {
        req.selection.limit_text = limit.map(str::to_string);
        req.selection.limit = Some(l.into_iter().collect());
    }
    if dry_run {
        req.mode = Mode::Run { dry_run: true };
        match service::start(req) {
            Ok(handle) => {
                let project = Arc::clone(&project);
                tokio::spawn(async move {
                    let _keep = itx;
                    let text = match handle.outcome().await {
                        Outcome::DryRun { plan } => {
                            let names = |ids: &[NodeId]| {
                                let n: Vec<String> = ids
                                    .iter()
                                    .map(|i| project.inventory.node(*i).name.clone())
                                    .collect();
                                crate::hostlist::compress(&n)
                            };
                            let bulk: Vec<NodeId> = plan.batches.iter().flatten().copied().collect();
                            format!(
                                "Dry run of `{}`: canary {}; then {} nodes in {} batches: {}. Nothing was changed.",
                                plan.workflow,
                                if plan.canary.is_empty() {
                                    "none".to_string()
                                } else {
                                    names(&plan.canary)
                                },
                                bulk.len(),
                                plan.batches.len(),
                                if bulk.is_empty() {
                                    "none".to_string()
                                } else {
                                    names(&bulk)
                                }
                            )
                        }
                        Outcome::NothingToDo => "Dry run: every target is up to date.".to_string(),
                        Outcome::Refused(r) => format!("Dry run refused: {r}"),
                        other => format!("Dry run ended: {other:?}"),
                    };
                    tell(reply, text);
                });
            }
            Err(r) => {
                tell(reply, format!("Not planned: {r}"));
            }
        }
        return;
    }
    if core.start_request(workflow, req, itx) {
        let run = core.active_run(workflow).unwrap_or_default();
        let _ = reply.send(RunNowAnswer {
            text: format!("Started `{workflow}`: run {run}. Its progress follows in the run's thread."),
            started: Some(run),
        });
    } else {
        tell(
            reply,
            format!("`{workflow}` was not started: see the daemon's log."),
        );
    }
}

fn resolve(inv: &Inventory, entries: &[String]) -> Result<Vec<NodeId>, String> {
    let mut out = Vec::new();
    for e in entries {
        let ids = inv.resolve(e).map_err(|p| p.message)?;
        for id in ids {
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
    Ok(out)
}

/// The nodes of `nodes` the scope does not cover: a node outside it, or a node whose HA
/// group has a member outside it (acting on one member of an HA group needs
/// permission over all of them).
pub fn outside_scope(inv: &Inventory, nodes: &[NodeId], scope: &HashSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for &id in nodes {
        let node = inv.node(id);
        let mut ok = scope.contains(&node.name);
        if let Some(g) = node.ha_group.and_then(|g| inv.ha_groups().get(g)) {
            ok &= g.members.iter().all(|m| scope.contains(&inv.node(*m).name));
        }
        if !ok {
            out.push(node.name.clone());
        }
    }
    out
}

/// Answers with a sentence only (nothing started); a gone asker is no error.
fn tell(reply: oneshot::Sender<RunNowAnswer>, text: String) {
    let _ = reply.send(RunNowAnswer::from(text));
}
