//! Per alarm trigger: the nodes waiting for a run and the nodes in one, and the one task
//! that starts the trigger's runs, one after the other, through the daemon's loop like
//! the API's runs. An alarm for a node waiting or in a run is coalesced into it; one for
//! a node cooling down (a run started on it within the trigger's `cooldown`, recorded
//! in the store so a restart keeps it) starts nothing.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{Mutex, broadcast, oneshot, watch};
use tracing::{info, warn};

use super::hooks_state::HooksState;
use crate::daemon::{Action, NotStarted, RunOrder};
use crate::project::AlarmTrigger;
use crate::service::{RunRequest, Trigger};
use crate::store::{NodeState, StoreError, Write};

/// How long the queue waits before asking again while a run of the trigger (one a
/// restarted daemon resumed) is still active.
const BUSY_RETRY: Duration = Duration::from_secs(2);

/// What became of an alarm's nodes.
#[derive(Debug, Default)]
pub struct Offered {
    /// The workflow the trigger runs.
    pub workflow: String,
    /// A run is asked for on these.
    pub accepted: Vec<String>,
    /// A run started on these within the cooldown, which ends then.
    pub cooling_down: Vec<(String, Timestamp)>,
    /// Waiting for a run of the trigger, or in one: this alarm adds nothing.
    pub coalesced: Vec<String>,
}

#[derive(Debug, Default)]
struct Queue {
    pending: BTreeSet<String>,
    in_run: BTreeSet<String>,
    worker: bool,
}

/// Every trigger's queue, by trigger name.
#[derive(Debug, Default)]
pub struct AlarmQueues {
    /// One lock for the check and the write of cooldowns: concurrent alarms for a node
    /// cannot both find it cool.
    queues: Mutex<HashMap<String, Queue>>,
}

impl AlarmQueues {
    /// Takes an alarm for `nodes` (in the inventory, targets of the trigger's workflow).
    pub async fn offer(
        self: &Arc<Self>,
        s: &HooksState,
        t: &AlarmTrigger,
        nodes: Vec<String>,
    ) -> Result<Offered, StoreError> {
        let mut queues = self.queues.lock().await;
        let q = queues.entry(t.name.clone()).or_default();
        let now = Timestamp::now();
        let cooling: HashMap<String, Timestamp> = s
            .store
            .alarm_cooldowns(&t.name, now)?
            .into_iter()
            .map(|c| (c.node, c.until))
            .collect();
        let mut o = Offered {
            workflow: t.workflow.clone(),
            ..Offered::default()
        };
        for n in nodes {
            if q.pending.contains(&n) || q.in_run.contains(&n) {
                o.coalesced.push(n);
            } else if let Some(until) = cooling.get(&n) {
                o.cooling_down.push((n, *until));
            } else {
                o.accepted.push(n);
            }
        }
        if !t.cooldown.is_zero() && !o.accepted.is_empty() {
            let until = now
                .checked_add(jiff::SignedDuration::try_from(t.cooldown).unwrap_or(jiff::SignedDuration::MAX))
                .unwrap_or(Timestamp::MAX);
            let writes = o
                .accepted
                .iter()
                .map(|n| Write::AlarmCooldown {
                    trigger: t.name.clone(),
                    node: n.clone(),
                    until,
                    run: None,
                    at: now,
                })
                .collect();
            s.store.write(writes).await?;
        }
        q.pending.extend(o.accepted.iter().cloned());
        if !o.accepted.is_empty() && !q.worker {
            q.worker = true;
            tokio::spawn(Arc::clone(self).work(s.clone(), t.name.clone()));
        }
        Ok(o)
    }

    /// Starts the trigger's runs while nodes wait, one run at a time.
    async fn work(self: Arc<Self>, s: HooksState, name: String) {
        loop {
            let nodes: Vec<String> = {
                let mut queues = self.queues.lock().await;
                let q = queues.entry(name.clone()).or_default();
                if q.pending.is_empty() {
                    q.worker = false;
                    return;
                }
                let nodes = std::mem::take(&mut q.pending);
                q.in_run.extend(nodes.iter().cloned());
                nodes.into_iter().collect()
            };
            run(&s, &name, &nodes).await;
            let mut queues = self.queues.lock().await;
            let q = queues.entry(name.clone()).or_default();
            for n in &nodes {
                q.in_run.remove(n);
            }
        }
    }
}

/// One run of the trigger's workflow on `nodes`, with the site in force; its failed
/// nodes are then put into maintenance with why.
async fn run(s: &HooksState, name: &str, nodes: &[String]) {
    let started = loop {
        let project = s.site.borrow().clone();
        let Some(t) = project.trigger(name) else {
            warn!(hook = %name, "the trigger is no longer in the site: its alarms' nodes are dropped");
            return;
        };
        let site = Arc::new(project.with_workflow(t.run.clone()));
        let limit: std::collections::HashSet<_> =
            nodes.iter().filter_map(|n| site.inventory.find(n)).collect();
        if limit.is_empty() {
            warn!(hook = %name, "the alarm's nodes are no longer in the inventory");
            return;
        }
        let (itx, irx) = watch::channel(0u32);
        let mut req = match RunRequest::new(
            Arc::clone(&site),
            name,
            Trigger::Webhook {
                name: name.to_string(),
            },
            irx,
        ) {
            Ok(r) => r,
            Err(r) => {
                warn!(hook = %name, "alarm run not started: {r}");
                return;
            }
        };
        req.hold_failed = Some(crate::service::FailedHold {
            by: format!("hook:{name}"),
            what: format!("alarm `{name}`"),
        });
        req.selection.limit_text = Some(crate::hostlist::compress(nodes));
        req.selection.limit = Some(limit);
        let (reply, answer) = oneshot::channel();
        let order = RunOrder {
            request: req,
            interrupts: itx,
            reply,
        };
        if s.actions.send(Action::Run(Box::new(order))).is_err() {
            return;
        }
        match answer.await {
            Ok(Ok(started)) => break started,
            Ok(Err(NotStarted::Busy { run_id, .. })) => {
                info!(hook = %name, run = %run_id, "a run of the trigger is active: the alarm's run waits for it");
                tokio::time::sleep(BUSY_RETRY).await;
            }
            Ok(Err(e)) => {
                warn!(hook = %name, "alarm run not started: {e}");
                return;
            }
            Err(_) => return,
        }
    };
    let run_id = started.run_id.clone();
    info!(hook = %name, run = %run_id, nodes = %crate::hostlist::compress(nodes), "alarm run started");
    let mut events = started.events;
    // The events end when the run has wound down and its record is written.
    while let Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) = events.recv().await {}
    say_held(s, name, &run_id);
}

/// Says which nodes the run held: the run put its failed nodes into maintenance in
/// the transaction that ended it ([`crate::service::FailedHold`]).
fn say_held(s: &HooksState, name: &str, run_id: &str) {
    let held: Vec<String> = match s.store.run(run_id) {
        Ok(Some(d)) => d
            .nodes
            .into_iter()
            .filter(|n| n.state == NodeState::Failed)
            .map(|n| n.node)
            .collect(),
        Ok(None) => return,
        Err(e) => {
            warn!(hook = %name, run = %run_id, "cannot read the alarm run's nodes: {e}");
            return;
        }
    };
    if !held.is_empty() {
        warn!(hook = %name, run = %run_id, nodes = %crate::hostlist::compress(&held), "alarm run failed: nodes held in maintenance");
    }
}
