//! A run's durable side: its record in the state store, the leases on its nodes, the
//! heartbeat that keeps them, and what a resumed run reads back.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::{Duration, Instant};

use super::selection::Refusal;
use crate::engine::{Outcome, Prior, StopReason};
use crate::exit_code;
use crate::inventory::{Inventory, NodeId};
use crate::project::Project;
use crate::site::{LeaseSettings, OnLeaseConflict};
use crate::store::{Controller, NodeState, RunDetail, RunStatus, Store, Write as StoreWrite};

/// The state database of a site.
pub fn open_store(project: &Project) -> Result<Store, Refusal> {
    let path = project.site.state_dir.join("drover.db");
    Store::open(&path)
        .map_err(|e| Refusal(format!("cannot open the state database: {e}"), exit_code::FAILURE))
}

/// `<UTC time>-<workflow>-<4 hex>`: sortable, readable, and unique even for two runs
/// started in the same second.
pub fn new_run_id(workflow: &str) -> String {
    let now = jiff::Timestamp::now();
    let salt = (now.subsec_nanosecond() as u32 ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{}-{workflow}-{salt:04x}", now.strftime("%Y%m%dT%H%M%SZ"))
}

/// Tells the operator about runs a dead controller left behind.
pub fn abandoned_notice(store: &Store, ttl: Duration, err: &mut dyn Write) {
    if let Ok(runs) = store.abandoned(jiff::Timestamp::now(), ttl) {
        for r in runs {
            let _ = writeln!(
                err,
                "note: run {} ({} v{}) was left running by a controller that is gone ({} pid {}); \
                 `drover runs resume {}` continues it",
                r.id, r.workflow, r.version, r.controller.host, r.controller.pid, r.id
            );
        }
    }
}

/// Leases `nodes` to `run`: at once, or after waiting for another run to release them,
/// as the site says.
pub async fn lease(
    store: &Store,
    run: &str,
    nodes: &[String],
    s: &LeaseSettings,
    err: &mut dyn Write,
) -> Result<(), Refusal> {
    let started = Instant::now();
    let mut told = false;
    loop {
        let conflicts = store
            .acquire_leases(run, nodes, jiff::Timestamp::now(), s.ttl)
            .map_err(|e| Refusal(format!("cannot lease the run's nodes: {e}"), exit_code::FAILURE))?;
        if conflicts.is_empty() {
            return Ok(());
        }
        let mut by_run: Vec<(String, Vec<String>)> = Vec::new();
        for c in &conflicts {
            match by_run.iter_mut().find(|(r, _)| *r == c.run) {
                Some((_, v)) => v.push(c.node.clone()),
                None => by_run.push((c.run.clone(), vec![c.node.clone()])),
            }
        }
        let what = by_run
            .iter()
            .map(|(r, v)| {
                format!(
                    "{} node(s) ({}) are in run {r}",
                    v.len(),
                    crate::hostlist::compress(v)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        if s.on_conflict == OnLeaseConflict::Refuse || started.elapsed() >= s.wait_timeout {
            return Err(Refusal(
                format!(
                    "{what}\nhelp: a node is in at most one run at a time; wait for that run, or set `leases.on_conflict: wait`"
                ),
                exit_code::NODES_LEASED,
            ));
        }
        if !told {
            let _ = writeln!(err, "waiting: {what}");
            told = true;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Renews the run's leases and records that its controller lives, every third of the
/// lease time, until aborted. A renewal that finds some of `nodes` leased by another
/// run (this one could not renew in time and the other took them over) tells the run,
/// through `lost`, which stops if any of them is unfinished.
pub fn heartbeat(
    store: Store,
    run: String,
    ttl: Duration,
    nodes: Vec<String>,
    lost: tokio::sync::mpsc::UnboundedSender<crate::engine::Control>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = ttl / 3;
        let nodes: HashSet<String> = nodes.into_iter().collect();
        loop {
            tokio::time::sleep(every).await;
            let now = jiff::Timestamp::now();
            // SQLite waits up to its busy timeout: not on the runtime's threads.
            let (s, r, want) = (store.clone(), run.clone(), nodes.len());
            let short = tokio::task::spawn_blocking(move || {
                let renewed = s.renew_leases(&r, now, ttl);
                renewed.is_ok_and(|n| n < want).then(|| s.leases())
            })
            .await;
            if let Ok(Some(Ok(leases))) = short {
                let taken: Vec<String> = leases
                    .into_iter()
                    .filter(|l| l.run != run && nodes.contains(&l.node))
                    .map(|l| l.node)
                    .collect();
                if !taken.is_empty() {
                    let _ = lost.send(crate::engine::Control::LeasesLost(taken));
                }
            }
            let _ = store
                .write(vec![StoreWrite::Heartbeat {
                    id: run.clone(),
                    controller: Controller::this(),
                    at: now,
                }])
                .await;
        }
    })
}

pub fn status_of(outcome: Option<&Outcome>) -> RunStatus {
    match outcome {
        Some(Outcome::Succeeded) => RunStatus::Succeeded,
        Some(Outcome::CompletedWithFailures { .. }) => RunStatus::CompletedWithFailures,
        Some(Outcome::Stopped {
            stop: StopReason::Interrupted,
        })
        | None => RunStatus::Interrupted,
        Some(Outcome::Stopped { .. }) => RunStatus::Stopped,
    }
}

/// What a resumed run needs from the record of a dead one.
pub struct Resume {
    pub run: String,
    pub detail: RunDetail,
    pub prior: HashMap<NodeId, Prior>,
    /// Left drained by the dead run.
    pub drained: HashSet<NodeId>,
    /// Caught mid-reboot: the workflow step and the boot id from before.
    pub rebooting: Vec<(NodeId, usize, String)>,
}

impl Resume {
    pub fn from_detail(detail: RunDetail, inv: &Inventory) -> Resume {
        let mut prior = HashMap::new();
        let mut drained = HashSet::new();
        let mut rebooting = Vec::new();
        for n in &detail.nodes {
            let Some(id) = inv.find(&n.node) else { continue };
            let p = match n.state {
                NodeState::Pending => continue,
                NodeState::Succeeded => Prior::Succeeded,
                NodeState::Failed => Prior::Failed {
                    drained: n.drained_by_us,
                },
                NodeState::Held => Prior::Held,
                NodeState::Skipped => Prior::Skipped,
                NodeState::Running
                | NodeState::Draining
                | NodeState::Drained
                | NodeState::Rebooting
                | NodeState::Resuming => {
                    if n.drained_by_us {
                        drained.insert(id);
                    }
                    if n.state == NodeState::Rebooting
                        && let Some(b) = &n.boot_id
                    {
                        rebooting.push((id, n.step, b.clone()));
                    }
                    Prior::InProgress {
                        attempt: n.attempt,
                        drained: n.drained_by_us,
                    }
                }
            };
            prior.insert(id, p);
        }
        Resume {
            run: detail.run.id.clone(),
            detail,
            prior,
            drained,
            rebooting,
        }
    }
}
