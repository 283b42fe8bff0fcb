//! A run's durable side: its record in the state store, the leases on its nodes, the
//! heartbeat that keeps them, and what a resumed run reads back.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::refusal::{Refusal, RefusalKind};
use crate::engine::{Outcome, Prior, StopReason};
use crate::inventory::{Inventory, NodeId};
use crate::project::Project;
use crate::site::{LeaseSettings, OnLeaseConflict};
use crate::store::{Controller, NodeState, RunDetail, RunStatus, Store, StoreError, Write as StoreWrite};

/// The state database of a site, for a run: created if missing.
pub fn open_store(project: &Project) -> Result<Store, Refusal> {
    let path = project.site.state_dir.join("drover.db");
    Store::open(&path).map_err(|e| Refusal::new(RefusalKind::Failure, store_error_text(&e)))
}

/// The nodes of the inventory in maintenance, with why, read-only. No state yet: none.
/// A state that cannot be read refuses: a run that cannot tell which nodes are off
/// limits must not start.
pub fn in_maintenance(project: &Project) -> Result<HashMap<NodeId, String>, Refusal> {
    let path = project.site.state_dir.join("drover.db");
    let store = match Store::open_read_only(&path) {
        Ok(s) => s,
        Err(StoreError::Missing { .. }) => return Ok(HashMap::new()),
        Err(e) => return Err(Refusal::new(RefusalKind::Failure, store_error_text(&e))),
    };
    let nodes = store
        .in_maintenance()
        .map_err(|e| Refusal::new(RefusalKind::Failure, store_error_text(&e)))?;
    Ok(nodes
        .into_iter()
        .filter_map(|m| Some((project.inventory.find(&m.node)?, m.to_string())))
        .collect())
}

/// A store error as one message; errors that already name the file and say what to do
/// are not prefixed again.
pub fn store_error_text(e: &StoreError) -> String {
    match e {
        StoreError::Open { .. }
        | StoreError::CreateDir { .. }
        | StoreError::Create { .. }
        | StoreError::NotDrover { .. }
        | StoreError::Locked { .. }
        | StoreError::TooNew { .. }
        | StoreError::NoWal { .. } => e.to_string(),
        e => format!("cannot open the state database: {e}"),
    }
}

/// `<UTC time>-<workflow>-<4 hex>`: sortable, readable, and unique even for two runs
/// started in the same second.
pub fn new_run_id(workflow: &str) -> String {
    let now = jiff::Timestamp::now();
    let salt = (now.subsec_nanosecond() as u32 ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{}-{workflow}-{salt:04x}", now.strftime("%Y%m%dT%H%M%SZ"))
}

/// Notes for the operator about runs a dead controller left behind.
pub fn abandoned_notices(store: &Store, ttl: Duration) -> Vec<String> {
    let Ok(runs) = store.abandoned(jiff::Timestamp::now(), ttl) else {
        return Vec::new();
    };
    runs.into_iter()
        .map(|r| {
            format!(
                "note: run {} ({} v{}) was left running by a controller that is gone ({} pid {}); \
                 `drover runs resume {}` continues it",
                r.id, r.workflow, r.version, r.controller.host, r.controller.pid, r.id
            )
        })
        .collect()
}

/// Starts the run durably: leases `nodes` to `run` and records `records` in one
/// transaction, at once or after waiting for another run to release them, as the site
/// says. A Ctrl-C while waiting gives up with nothing taken.
pub async fn begin(
    store: &Store,
    run: &str,
    nodes: &[String],
    records: Vec<StoreWrite>,
    s: &LeaseSettings,
    interrupts: &mut watch::Receiver<u32>,
    notice: &(dyn Fn(String) + Sync),
) -> Result<(), Refusal> {
    let started = Instant::now();
    let mut told = false;
    loop {
        let conflicts = store
            .begin_run(run, nodes, jiff::Timestamp::now(), s.ttl, records.clone())
            .await
            .map_err(|e| {
                Refusal::new(
                    RefusalKind::Failure,
                    format!("cannot record the run and lease its nodes: {e}"),
                )
            })?;
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
                    "{} ({}) {} in run {r}",
                    crate::report::plural(v.len(), "node"),
                    crate::hostlist::compress(v),
                    if v.len() == 1 { "is" } else { "are" }
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let elapsed = started.elapsed();
        if s.on_conflict == OnLeaseConflict::Refuse || elapsed >= s.wait_timeout {
            let other = &by_run[0].0;
            return Err(Refusal::new(
                RefusalKind::NodesLeased,
                format!(
                    "{what}\nhelp: a node is in at most one run at a time. Wait for that run to finish; \
                     if its controller is gone, continue it with `drover runs resume {other}` or release \
                     its nodes with `drover runs cancel {other}`; or set `leases.on_conflict: wait`"
                ),
            ));
        }
        if !told {
            notice(format!("waiting: {what}"));
            told = true;
        }
        let nap = Duration::from_secs(2).min(s.wait_timeout.saturating_sub(elapsed));
        tokio::select! {
            () = tokio::time::sleep(nap) => {}
            () = crate::engine::next_press(interrupts) => {
                return Err(Refusal::new(
                    RefusalKind::Interrupted,
                    "interrupted while waiting for other runs' leases; nothing was run",
                ));
            }
        }
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
            // Through the store's writer thread: SQLite's lock waits stay off the
            // runtime's threads.
            let renewed = store.renew_leases(&run, now, ttl).await;
            if renewed.is_ok_and(|n| n < nodes.len()) {
                // Fewer than taken: finished nodes gave theirs back, or another run took
                // some over. Only the latter matters.
                let s = store.clone();
                let leases = tokio::task::spawn_blocking(move || s.leases()).await;
                if let Ok(Ok(leases)) = leases {
                    let taken: Vec<String> = leases
                        .into_iter()
                        .filter(|l| l.run != run && nodes.contains(&l.node))
                        .map(|l| l.node)
                        .collect();
                    if !taken.is_empty() {
                        let _ = lost.send(crate::engine::Control::LeasesLost(taken));
                    }
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

/// The run's nodes that were in flight (started, not finished) as last recorded, with
/// whether the run has them drained: what an interrupted run leaves unsure.
pub async fn in_flight(store: &Store, run: &str) -> Vec<(String, NodeState, bool)> {
    let (store, run) = (store.clone(), run.to_string());
    tokio::task::spawn_blocking(move || store.nodes(&run))
        .await
        .ok()
        .and_then(Result::ok)
        .map(|nodes| {
            nodes
                .into_iter()
                .filter(|n| n.state.is_in_flight())
                .map(|n| (n.node, n.state, n.drained_by_us))
                .collect()
        })
        .unwrap_or_default()
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
