//! One node's whole turn in a run: drain it before its first drain step, run its steps
//! (a reboot waits for the node to come back with a new boot id and passes its health
//! checks), and resume it. Every transition is journaled before it is acted on, so a
//! killed controller never forgets a drained node.

use std::time::Duration;

use tokio::time::Instant;

use super::deadline::{Deadline, poll_until};
use super::event::{RunEvent, StepStatus};
use super::event_sender::EventSender;
use super::journal::{Journal, Mark, StepRecord};
use super::node_error::NodeError;
use super::node_work::{NodeJob, Scripted};
use super::step_error::StepError;
use super::step_output::StepOutput;
use crate::site::{DrainHooks, HookHost, OnDrainTimeout};
use crate::slurm::{NodeStatus, Reservation, SlurmPoller, parse_squeue};
use crate::store::NodeState;
use crate::transport::{Connection, Connector, ExecOutput, LocalConnection, TransportError};
use crate::workflow::{Action, Change, Reboot, RebootVia, Step, Workflow};

/// How long one drain hook call may take.
const HOOK_TIMEOUT: Duration = Duration::from_secs(120);
/// Time between attempts to reach a rebooting node.
const REBOOT_POLL: Duration = Duration::from_secs(1);
/// How long the reboot command itself may take before the node goes away.
const REBOOT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long reading the boot id may take.
const BOOT_ID_TIMEOUT: Duration = Duration::from_secs(30);

/// How a node's turn ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEnd {
    /// All steps ran and the node is back in service.
    Done,
    /// Step `pos` (of the node's list; the list's length means the resume hook) failed.
    /// `drained`: the node is still drained.
    Failed {
        pos: usize,
        error: String,
        drained: bool,
    },
    /// It did not drain in time and is left for a human.
    Held(String),
    /// It did not drain in time and was resumed untouched.
    Skipped(String),
    /// The state store could not record a transition, so the node was left as it was
    /// (`drained`: drained). Not the node's failure: the run stops.
    StoreFailed { error: String, drained: bool },
}

impl NodeEnd {
    /// With every decrypted vault value of `wf` masked in its reasons, before they reach
    /// the run record, events and the scheduler.
    pub fn redacted(self, wf: &Workflow) -> NodeEnd {
        let r = |s: String| wf.redact(&s).into_owned();
        match self {
            NodeEnd::Failed { pos, error, drained } => NodeEnd::Failed {
                pos,
                error: r(error),
                drained,
            },
            NodeEnd::Held(why) => NodeEnd::Held(r(why)),
            NodeEnd::Skipped(why) => NodeEnd::Skipped(r(why)),
            NodeEnd::StoreFailed { error, drained } => NodeEnd::StoreFailed {
                error: r(error),
                drained,
            },
            NodeEnd::Done => NodeEnd::Done,
        }
    }
}

enum Drain {
    Drained,
    /// `true`: the drain command was sent (in reservation mode it is not before the
    /// node is idle or its reservation starts).
    TimedOut(bool),
    Failed(NodeError),
}

/// How many times a reservation is asked for when Slurm refuses it (a job started on
/// the node between the `squeue` and the request) before the node is drained at once.
const RESERVE_TRIES: u32 = 3;

/// Everything a node's turn needs.
pub struct NodeCycle<'a, K: Connector> {
    pub job: NodeJob<'a>,
    pub connector: &'a K,
    pub hooks: Option<&'a DrainHooks>,
    pub journal: &'a Journal,
    pub events: &'a EventSender,
    /// `run <id>, <workflow> v<version>`: who drained the node, in every reason the
    /// scheduler shows (after what is going on: see [`NodeCycle::phase_reason`]).
    pub reason: &'a str,
    /// With `scheduler: slurm`: the shared `sinfo` poll that the `drained` and `resumed`
    /// waits use instead of one probe per node.
    pub slurm: Option<&'a SlurmPoller>,
}

/// A failed turn: `pos` and whether the node is still drained.
fn ended(pos: usize, e: NodeError, drained: bool) -> NodeEnd {
    match e {
        NodeError::Journal(j) => NodeEnd::StoreFailed {
            error: j.to_string(),
            drained,
        },
        e => NodeEnd::Failed {
            pos,
            error: e.to_string(),
            drained,
        },
    }
}

impl<K: Connector> NodeCycle<'_, K> {
    fn name(&self) -> &str {
        &self.job.node.name
    }

    /// What the scheduler shows: `drover: <what> (run <id>, <workflow> v<n>)`. What is
    /// going on comes first, because `sinfo -R` shows only 20 characters by default
    /// (`drover: patch failed`); a run id alone is longer than that.
    pub fn phase_reason(&self, what: &str) -> String {
        format!("drover: {what} ({})", self.reason)
    }

    /// With `scheduler: slurm`, the drained node's reason follows its turn (the drain
    /// command on a drained node only replaces the reason). Best effort: a reason that
    /// could not be updated is no reason to fail the node.
    async fn update_reason(&self, conn: &Option<K::Conn>, what: &str) {
        if let Some(h) = self.hooks
            && h.is_slurm()
        {
            let reason = self.phase_reason(what);
            let _ = self.hook(conn, "drain", &h.drain, &reason, HOOK_TIMEOUT).await;
        }
    }

    fn event(&self, state: &str, detail: Option<String>) {
        self.events.send(RunEvent::NodeDrain {
            node: self.name().to_string(),
            state: state.to_string(),
            detail,
        });
    }

    async fn mark(
        &self,
        state: NodeState,
        attempt: u32,
        step: usize,
        drained: bool,
    ) -> Result<(), NodeError> {
        self.mark_with(state, attempt, step, drained, None, None).await
    }

    async fn mark_with(
        &self,
        state: NodeState,
        attempt: u32,
        step: usize,
        drained: bool,
        boot_id: Option<String>,
        reason: Option<String>,
    ) -> Result<(), NodeError> {
        Ok(self
            .journal
            .node(
                self.name(),
                Mark {
                    state,
                    attempt,
                    step,
                    drained,
                    boot_id,
                    reason,
                },
            )
            .await?)
    }

    /// Runs `steps[from..]` (workflow step indices). `drained`: a previous attempt (or a
    /// dead controller) left the node drained, so it is resumed at the end even if no
    /// drain step is left to run.
    pub async fn run(
        &self,
        conn: &mut Option<K::Conn>,
        steps: &[usize],
        from: usize,
        attempt: u32,
        drained: bool,
    ) -> NodeEnd {
        let end = self.turn(conn, steps, from, attempt, drained).await;
        // A turn that did not end in service leaves no reservation behind: a node left
        // drained stays out by its drain, one given up goes back to its users.
        if !matches!(end, NodeEnd::Done) {
            let why = match &end {
                NodeEnd::Failed { .. } => "the node's turn failed",
                NodeEnd::Held(_) => "the node is held",
                NodeEnd::Skipped(_) => "the node was given up",
                _ => "the state store failed",
            };
            let _ = self.unreserve(why).await;
        }
        end
    }

    async fn turn(
        &self,
        conn: &mut Option<K::Conn>,
        steps: &[usize],
        from: usize,
        attempt: u32,
        drained: bool,
    ) -> NodeEnd {
        super::fault::panic_point("panic-node", self.name());
        let wf = self.job.workflow;
        // Drained and confirmed by the `drained` hook in this attempt.
        let mut confirmed = false;
        let mut must_resume = drained;
        let mut pos = from;
        while let Some(&i) = steps.get(pos) {
            let step = &wf.steps[i];
            // Validation refuses a drain step without hooks unless the workflow declares
            // its nodes need no drain; "no hooks" never counts as "drained" otherwise.
            if step.change == Change::Drain && self.hooks.is_none() && wf.no_drain.is_none() {
                return ended(
                    pos,
                    NodeError::NoDrainHooks {
                        step: step.name.clone(),
                    },
                    must_resume,
                );
            }
            // `unreachable: run`: a node that had no connection at its turn's start is
            // connected to when something must run on it (a step other than `local:`,
            // or node-side drain hooks); a `wait_for` waits for it to answer first.
            if conn.is_none() && wf.unreachable == crate::workflow::Unreachable::Run {
                let drain_on_node = step.change == Change::Drain
                    && !confirmed
                    && self.hooks.is_some_and(|h| h.run_on == HookHost::Node);
                if (drain_on_node || !matches!(step.action, Action::Local(_)))
                    && let Err(source) = self.connect_late(conn, &step.action).await
                {
                    let e = NodeError::Step {
                        step: step.name.clone(),
                        source,
                    };
                    return ended(pos, e, must_resume);
                }
            }
            if step.change == Change::Drain && !confirmed && self.hooks.is_some() {
                // Drained before the hook runs: a crash in between must not forget it.
                if let Err(e) = self.mark(NodeState::Draining, attempt, i, true).await {
                    return ended(pos, e, must_resume);
                }
                must_resume = true;
                match self.drain(conn).await {
                    Drain::Drained => confirmed = true,
                    Drain::Failed(e) => return ended(pos, e, true),
                    Drain::TimedOut(sent) => {
                        return self.drain_timed_out(conn, attempt, pos, i, sent).await;
                    }
                }
                if let Err(e) = self.mark(NodeState::Drained, attempt, i, true).await {
                    return ended(pos, e, true);
                }
            }
            if let Err(e) = self.mark(NodeState::Running, attempt, i, must_resume).await {
                return ended(pos, e, must_resume);
            }
            if confirmed && step.change == Change::Drain {
                self.update_reason(conn, &format!("{} running", step.name)).await;
            }
            // Steps that need no decision of the controller between them run as one
            // script, in one round trip; each is then marked, reported and recorded as
            // if it had run alone.
            let batch = match conn.as_ref() {
                Some(_) => self.batch_at(steps, pos, confirmed).await,
                None => Vec::new(),
            };
            if let (true, Some(c)) = (batch.len() >= 2, conn.as_ref()) {
                let started = Instant::now();
                let n = batch.len();
                let results = self.job.run_scripted(c, &batch).await;
                let share = started.elapsed() / u32::try_from(n).unwrap_or(1);
                for (k, (result, elapsed)) in results.into_iter().enumerate() {
                    let (p, idx) = (pos + k, steps[pos + k]);
                    if k > 0
                        && let Err(e) = self.mark(NodeState::Running, attempt, idx, must_resume).await
                    {
                        return ended(p, e, must_resume);
                    }
                    let result = result.map_err(|source| NodeError::Step {
                        step: wf.steps[idx].name.clone(),
                        source,
                    });
                    let duration = elapsed.unwrap_or(share);
                    if let Some(end) = self
                        .finish_step(p, idx, attempt, must_resume, result, duration)
                        .await
                    {
                        return end;
                    }
                }
                pos += n;
                continue;
            }
            let started = Instant::now();
            let result: Result<StepOutput, NodeError> = match &step.action {
                Action::Local(_) if conn.is_none() => {
                    self.job.local_step(step).await.map_err(|source| NodeError::Step {
                        step: step.name.clone(),
                        source,
                    })
                }
                Action::Reboot(r) => match self.reboot(conn, r, attempt, i, must_resume).await {
                    Err(NodeError::Journal(e)) => Err(NodeError::Journal(e)),
                    Err(e) => Err(NodeError::InStep {
                        step: step.name.clone(),
                        source: Box::new(e),
                    }),
                    ok => ok,
                },
                _ => match conn.as_ref() {
                    Some(c) => self.job.step(c, step).await,
                    None => Err(StepError::NoConnection),
                }
                .map_err(|source| NodeError::Step {
                    step: step.name.clone(),
                    source,
                }),
            };
            if let Some(end) = self
                .finish_step(pos, i, attempt, must_resume, result, started.elapsed())
                .await
            {
                return end;
            }
            pos += 1;
        }
        let end = steps.len();
        if must_resume {
            if let Err(e) = self.mark(NodeState::Resuming, attempt, end, true).await {
                return ended(end, e, true);
            }
            if let Err(e) = self.resume(conn).await {
                return ended(end, e, true);
            }
        }
        match self.mark(NodeState::Succeeded, attempt, end, false).await {
            Ok(()) => NodeEnd::Done,
            Err(e) => ended(end, e, false),
        }
    }

    /// Reports and records step `pos` (workflow step `i`) that ended with `result`
    /// after `duration`; `Some`: the node's turn ends here.
    async fn finish_step(
        &self,
        pos: usize,
        i: usize,
        attempt: u32,
        must_resume: bool,
        result: Result<StepOutput, NodeError>,
        duration: Duration,
    ) -> Option<NodeEnd> {
        let step = &self.job.workflow.steps[i];
        if let Err(NodeError::Journal(e)) = result {
            return Some(ended(pos, NodeError::Journal(e), must_resume));
        }
        let (status, exit_code, output_tail, error) = match &result {
            Ok(o) => (o.status, o.exit_code, o.output_tail.clone(), None),
            Err(e) => (
                StepStatus::Failed,
                e.exit_code(),
                e.output_tail(),
                Some(e.to_string()),
            ),
        };
        // Output that echoes a vault value is masked in events and the record.
        let wf = self.job.workflow;
        let output_tail = wf.redact(&output_tail).into_owned();
        let error = error.map(|e| wf.redact(&e).into_owned());
        self.events.send(RunEvent::StepFinished {
            node: self.name().to_string(),
            step: step.name.clone(),
            status,
            duration,
            error: error.clone(),
        });
        let record = StepRecord {
            step: step.name.clone(),
            position: pos,
            attempt,
            status: serde_json::to_value(status)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            exit_code,
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            output_tail: if output_tail.is_empty() {
                error.unwrap_or_default()
            } else {
                output_tail
            },
        };
        if let Err(e) = self.journal.step(self.name(), record).await {
            return Some(ended(pos, e.into(), must_resume));
        }
        match result {
            Err(e) => Some(ended(pos, e, must_resume)),
            Ok(_) => None,
        }
    }

    /// The steps from `pos` on that can run as one script: consecutive `run`, `copy`
    /// and `template` steps, up to (not including) a step that runs on the controller
    /// (`local:`, `ansible:`, see [`NodeJob::scripted`]), one that needs the controller
    /// first (a drain step before the node is drained, one without drain hooks) or
    /// that cannot be prepared. Fewer than two: the step runs alone.
    async fn batch_at(&self, steps: &[usize], pos: usize, confirmed: bool) -> Vec<(&Step, Scripted)> {
        let wf = self.job.workflow;
        let mut batch = Vec::new();
        for (k, &i) in steps.iter().enumerate().skip(pos) {
            let step = &wf.steps[i];
            if k > pos && step.change == Change::Drain {
                let unhooked = self.hooks.is_none() && wf.no_drain.is_none();
                if unhooked || (!confirmed && self.hooks.is_some()) {
                    break;
                }
            }
            match self.job.scripted(step).await {
                Some(s) => batch.push((step, s)),
                None => break,
            }
        }
        batch
    }

    /// Runs a drain hook template with `reason` in scope, where the site says, for at
    /// most `timeout`.
    async fn hook(
        &self,
        conn: &Option<K::Conn>,
        what: &'static str,
        src: &str,
        reason: &str,
        timeout: Duration,
    ) -> Result<ExecOutput, NodeError> {
        let fail = |source: StepError| NodeError::Hook { hook: what, source };
        let Some(hooks) = self.hooks else {
            return Err(fail(StepError::NoConnection));
        };
        let mut cx = self.job.context.clone();
        cx["run"] = serde_json::Value::from(self.journal.run());
        cx["reason"] = serde_json::Value::from(reason);
        let cmd = self.job.templates.render(src, &cx).map_err(|e| fail(e.into()))?;
        let out: Result<ExecOutput, TransportError> = match hooks.run_on {
            HookHost::Controller => {
                LocalConnection::new(self.name())
                    .with_env(&self.job.workflow.env)
                    .exec(&cmd, None, timeout)
                    .await
            }
            HookHost::Node => match conn.as_ref() {
                Some(c) => c.exec(&cmd, None, timeout).await,
                None => return Err(fail(StepError::NoConnection)),
            },
        };
        self.job.log_exec(&format!("{what} hook"), &cmd, &out);
        out.map_err(|e| fail(StepError::Transport(e)))
    }

    /// A hook that must exit 0.
    async fn hook_ok(
        &self,
        conn: &Option<K::Conn>,
        what: &'static str,
        src: &str,
        reason: &str,
        timeout: Duration,
    ) -> Result<(), NodeError> {
        let o = self.hook(conn, what, src, reason, timeout).await?;
        if o.success() {
            return Ok(());
        }
        let tail = o.last_lines(3);
        let source = match o.code {
            _ if o.timed_out => StepError::TimedOut(timeout),
            Some(code) => StepError::Exited { code, tail },
            None => StepError::Signal { tail },
        };
        Err(NodeError::Hook { hook: what, source })
    }

    /// Polls probe `what` until it exits 0 or `timeout` (from now) runs out; each poll
    /// may take only the time left. `Err`: the last failure.
    async fn poll_hook(
        &self,
        conn: &Option<K::Conn>,
        what: &'static str,
        src: &str,
        h: &DrainHooks,
        deadline: Deadline,
    ) -> Result<(), String> {
        if let Some(p) = self.slurm
            && h.is_slurm()
        {
            let ok: fn(&NodeStatus) -> bool = match what {
                "drained" => NodeStatus::drained,
                _ => NodeStatus::in_service,
            };
            return p.wait_for(self.name(), deadline, ok).await.map(drop);
        }
        poll_until(deadline, h.poll_interval, HOOK_TIMEOUT, |left| async move {
            match self.hook_ok(conn, what, src, self.reason, left).await {
                Ok(()) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
    }

    async fn drain(&self, conn: &Option<K::Conn>) -> Drain {
        let Some(h) = self.hooks else {
            return Drain::Drained;
        };
        // In reservation mode the time to drain counts from the reservation, not from
        // the drain command: `timeout` bounds the node's whole wait.
        let deadline = Deadline::after(h.timeout);
        let mut why = None;
        if let (true, Some(p)) = (h.by_reservation(), self.slurm) {
            match self.reserve(p, deadline).await {
                Some(w) => why = w,
                None => return Drain::TimedOut(false),
            }
        }
        self.event("draining", why);
        if let Err(e) = self
            .hook_ok(
                conn,
                "drain",
                &h.drain,
                &self.phase_reason("draining"),
                HOOK_TIMEOUT,
            )
            .await
        {
            return Drain::Failed(e);
        }
        let started = Instant::now();
        match self.poll_hook(conn, "drained", &h.drained, h, deadline).await {
            Ok(()) => {
                self.event(
                    "drained",
                    Some(format!(
                        "after {}",
                        humantime::format_duration(secs(started.elapsed()))
                    )),
                );
                Drain::Drained
            }
            Err(_) => Drain::TimedOut(true),
        }
    }

    /// `drain.mode: reservation`: makes (or, after a crash, finds) the node's
    /// maintenance reservation from the time limit of its last running job, then waits
    /// in the shared poll until the node runs no job — idle before the reservation, or
    /// the reservation has begun — so the backfill scheduler keeps it busy until then.
    /// `None`: the deadline passed first; `Some`: drain now, with why if the reservation
    /// was waited for. A reservation Slurm refuses (a job without a
    /// time limit, or one that keeps starting in between) is no failure: the node is
    /// drained at once, as without reservations, and the run says why.
    async fn reserve(&self, p: &SlurmPoller, deadline: Deadline) -> Option<Option<String>> {
        let client = p.client();
        let name = Reservation::name_for(self.journal.run(), self.name());
        let found = match client.reservations().await {
            Ok(all) => all.into_iter().find(|r| r.name == name),
            Err(e) => {
                self.event(
                    "reserving",
                    Some(format!("cannot list reservations ({e}); drained at once")),
                );
                return Some(None);
            }
        };
        if let Some(r) = found {
            self.event(
                "reserved",
                Some(format!(
                    "reservation {name} from {} found, made before the controller stopped; kept",
                    r.start
                )),
            );
        } else {
            let mut tries = 0;
            loop {
                tries += 1;
                let start = match client.squeue().await.map(|t| parse_squeue(&t)) {
                    Ok(jobs) => match jobs.get(self.name()) {
                        Some(j) if j.running > 0 => match &j.last_end {
                            Some(end) if end.as_str() > local_now().as_str() => end.clone(),
                            Some(_) => "now".to_string(),
                            None => {
                                self.event(
                                    "reserving",
                                    Some("a job without a time limit runs there: no reservation can start after it; drained at once".into()),
                                );
                                return Some(None);
                            }
                        },
                        _ => "now".to_string(),
                    },
                    Err(e) => {
                        self.event(
                            "reserving",
                            Some(format!("cannot read its jobs ({e}); drained at once")),
                        );
                        return Some(None);
                    }
                };
                match client.create_reservation(&name, self.name(), &start).await {
                    Ok(()) => {
                        super::fault::abort_point("abort-after-reservation", self.name());
                        let detail = match start.as_str() {
                            "now" => format!("reservation {name} from now: no job runs there"),
                            _ => {
                                format!("reservation {name} from {start}: it takes jobs that end before then")
                            }
                        };
                        self.event("reserved", Some(detail));
                        self.job
                            .log(&format!("reservation {name} of {} from {start}", self.name()));
                        break;
                    }
                    Err(e) if tries < RESERVE_TRIES => {
                        self.job
                            .log(&format!("reservation {name} refused ({e}); asking again"));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Err(e) => {
                        self.event(
                            "reserving",
                            Some(format!("Slurm refused reservation {name} ({e}); drained at once")),
                        );
                        return Some(None);
                    }
                }
            }
        }
        let s = p
            .wait_for(self.name(), deadline, NodeStatus::jobless)
            .await
            .ok()?;
        Some(Some(match s.base() {
            "maint" => format!("its reservation {name} began"),
            _ => format!("idle before its reservation {name}"),
        }))
    }

    /// Connects a node that has no connection: one try, or before a `wait_for` a try
    /// every `interval` until its `timeout` (the `wait_for` then runs as usual).
    async fn connect_late(&self, conn: &mut Option<K::Conn>, action: &Action) -> Result<(), StepError> {
        let connect = || async {
            let c = self.connector.connect(self.job.node).await;
            if let Err(e) = &c {
                self.job.log(&format!("not connected yet: {e}"));
            }
            c
        };
        let c = match action {
            Action::WaitFor(w) => {
                poll_until(Deadline::after(w.timeout), w.interval, w.timeout, |_| connect())
                    .await
                    .map_err(|e| StepError::StillFailing {
                        after: w.timeout,
                        last: format!("the node never answered: {e}"),
                    })?
            }
            _ => connect().await?,
        };
        self.job.log("connected: the node answers now");
        *conn = Some(c);
        Ok(())
    }

    /// Deletes the node's reservation, if `drain.mode: reservation` made one, saying
    /// why in the run's events and log.
    async fn unreserve(&self, why: &str) -> Result<(), NodeError> {
        let (Some(h), Some(p)) = (self.hooks, self.slurm) else {
            return Ok(());
        };
        if !h.by_reservation() {
            return Ok(());
        }
        let name = Reservation::name_for(self.journal.run(), self.name());
        let had = match p.client().reservations().await {
            Ok(all) => all.iter().any(|r| r.name == name),
            Err(_) => true,
        };
        if !had {
            return Ok(());
        }
        match p.client().delete_reservation(&name).await {
            Ok(()) => {
                self.event("unreserved", Some(format!("reservation {name} deleted: {why}")));
                self.job.log(&format!("reservation {name} deleted: {why}"));
                Ok(())
            }
            Err(e) => {
                self.job.log(&format!("cannot delete reservation {name}: {e}"));
                Err(NodeError::Reservation {
                    name,
                    error: e.to_string(),
                })
            }
        }
    }

    /// The drain of step `pos` (workflow step `step`) timed out.
    async fn drain_timed_out(
        &self,
        conn: &Option<K::Conn>,
        attempt: u32,
        pos: usize,
        step: usize,
        drain_sent: bool,
    ) -> NodeEnd {
        let Some(h) = self.hooks else {
            return NodeEnd::Skipped("no drain hooks".into());
        };
        let waited = humantime::format_duration(h.timeout);
        match h.on_timeout {
            OnDrainTimeout::GiveUp => {
                let why = format!("did not drain within {waited}; resumed untouched");
                if let Err(e) = self.mark(NodeState::Resuming, attempt, step, true).await {
                    return ended(pos, e, true);
                }
                // Never drained (reservation mode): its reservation goes, nothing to resume.
                let resumed = match drain_sent {
                    true => self.resume(conn).await,
                    false => self.unreserve("the node was given up").await,
                };
                if let Err(e) = resumed {
                    // A retry (if any) starts again at the step whose drain timed out.
                    return match e {
                        NodeError::Journal(_) => ended(pos, e, true),
                        e => NodeEnd::Failed {
                            pos,
                            error: format!("{why}, but {e}"),
                            drained: true,
                        },
                    };
                }
                self.event("skipped", Some(why.clone()));
                if let Err(e) = self
                    .mark_with(NodeState::Skipped, attempt, step, false, None, Some(why.clone()))
                    .await
                {
                    return ended(pos, e, false);
                }
                NodeEnd::Skipped(why)
            }
            OnDrainTimeout::Hold => {
                let why = format!("did not drain within {waited}; held for a human");
                let reason = format!(
                    "{}: jobs still running; held for a human: resume it, or let its jobs end and run again",
                    self.phase_reason(&format!("drain timed out after {waited}"))
                );
                // The scheduler's reason says why it is held; the drain stays.
                let _ = self.hook(conn, "drain", &h.drain, &reason, HOOK_TIMEOUT).await;
                self.event("held", Some(why.clone()));
                if let Err(e) = self
                    .mark_with(NodeState::Held, attempt, step, true, None, Some(why.clone()))
                    .await
                {
                    return ended(pos, e, true);
                }
                NodeEnd::Held(why)
            }
        }
    }

    /// Whether the scheduler says the node is drained now (before the run: by someone
    /// else). Any failure of the hook counts as "no".
    pub async fn is_drained(&self, conn: &Option<K::Conn>) -> bool {
        match self.hooks {
            Some(h) => self
                .hook(conn, "drained", &h.drained, self.reason, HOOK_TIMEOUT)
                .await
                .is_ok_and(|o| o.success()),
            None => false,
        }
    }

    /// The resume hook, then (with a `resumed` probe) the wait until the scheduler has
    /// the node back: until then it still holds its place in the budgets.
    async fn resume(&self, conn: &Option<K::Conn>) -> Result<(), NodeError> {
        let Some(h) = self.hooks else {
            return Ok(());
        };
        // A maintenance reservation would keep the node `maint`, out of service.
        self.unreserve("the node is resumed").await?;
        self.hook_ok(conn, "resume", &h.resume, self.reason, HOOK_TIMEOUT)
            .await?;
        if let Some(probe) = &h.resumed {
            self.poll_hook(conn, "resumed", probe, h, Deadline::after(h.timeout))
                .await
                .map_err(|last| NodeError::NotResumed {
                    waited: h.timeout,
                    last,
                })?;
        }
        self.event("resumed", None);
        Ok(())
    }

    /// Runs the workflow's `on_failure` steps on a node whose turn failed for good, in
    /// order, each reported like a step; a failing one ends them. Best effort: what
    /// happened is said in the node's reason, the node is held either way.
    pub async fn on_failure(&self, conn: &Option<K::Conn>) -> String {
        let wf = self.job.workflow;
        for step in &wf.on_failure {
            let started = Instant::now();
            let result = match conn {
                Some(c) => self.job.step(c, step).await.map_err(|e| e.to_string()),
                None => Err("no connection to the node".to_string()),
            };
            let error = result.as_ref().err().map(|e| wf.redact(e).into_owned());
            self.events.send(RunEvent::StepFinished {
                node: self.name().to_string(),
                step: format!("on_failure: {}", step.name),
                status: if error.is_some() {
                    StepStatus::Failed
                } else {
                    StepStatus::Ok
                },
                duration: started.elapsed(),
                error: error.clone(),
            });
            if let Some(e) = error {
                return format!("on_failure step `{}` failed: {}", step.name, first_line(&e));
            }
        }
        "on_failure steps ran".to_string()
    }

    /// Leaves a failed node drained, with a reason that names the step, the run and the
    /// error, and what to do, so `sinfo -R` tells the next human what happened.
    pub async fn hold_failed(&self, conn: &Option<K::Conn>, error: &str) -> String {
        let reason = self.failed_reason(error);
        if let Some(h) = self.hooks {
            let _ = self.hook(conn, "drain", &h.drain, &reason, HOOK_TIMEOUT).await;
        }
        self.event("held", Some(first_line(error)));
        reason
    }

    /// `drover: <step> failed (run <id>, <workflow> v<n>): <error>; held drained: ...`.
    pub fn failed_reason(&self, error: &str) -> String {
        let first = first_line(error);
        let (what, rest) = match first.strip_prefix("step `").and_then(|r| r.split_once("`: ")) {
            Some((step, rest)) => (format!("{step} failed"), rest.to_string()),
            None => ("failed".to_string(), first.clone()),
        };
        format!(
            "{}: {rest}; held drained: fix the node, then resume it or run the workflow again",
            self.phase_reason(&what)
        )
    }

    /// Reads the boot id, in at most `timeout`.
    async fn boot_id(&self, c: &K::Conn, cmd: &str, timeout: Duration) -> Result<String, NodeError> {
        let fail = |source: StepError| NodeError::BootId {
            cmd: cmd.to_string(),
            source,
        };
        let out = c.exec(cmd, None, timeout).await;
        self.job.log_exec("boot id", cmd, &out);
        let o = out.map_err(|e| fail(e.into()))?;
        let id = o.stdout.trim().to_string();
        if !o.success() || id.is_empty() {
            let tail = o.last_lines(3);
            return Err(fail(match o.code {
                _ if o.timed_out => StepError::TimedOut(timeout),
                Some(code) => StepError::Exited { code, tail },
                None => StepError::Signal { tail },
            }));
        }
        Ok(id)
    }

    async fn reboot(
        &self,
        conn: &mut Option<K::Conn>,
        r: &Reboot,
        attempt: u32,
        step: usize,
        drained: bool,
    ) -> Result<StepOutput, NodeError> {
        let boot_cmd = self.job.render(&r.boot_id).map_err(NodeError::Reboot)?;
        let command = match r.via {
            RebootVia::Ssh => Some(self.job.render(&r.command).map_err(NodeError::Reboot)?),
            RebootVia::Slurm => None,
        };
        let before = match conn.as_ref() {
            Some(c) => self.boot_id(c, &boot_cmd, BOOT_ID_TIMEOUT).await?,
            None => return Err(NodeError::Reboot(StepError::NoConnection)),
        };
        // Recorded before the reboot is asked for, by SSH or by Slurm: a controller that
        // dies after this waits for the new boot id when the run is resumed.
        self.mark_with(
            NodeState::Rebooting,
            attempt,
            step,
            drained,
            Some(before.clone()),
            None,
        )
        .await?;
        self.event("rebooting", None);
        super::fault::abort_point("abort-before-reboot", self.name());
        let slurm = match command {
            Some(command) => {
                self.ssh_reboot(conn, &command).await?;
                None
            }
            None => Some(self.slurm_reboot().await?),
        };
        if let Some(c) = conn.take() {
            c.close().await;
        }
        let started = Instant::now();
        let deadline = Deadline::after(r.timeout);
        let back = match slurm {
            None => self.await_reboot(&boot_cmd, &before, deadline, None).await,
            Some(p) => {
                let last = std::sync::Mutex::new(None);
                let back = tokio::select! {
                    back = self.await_reboot(&boot_cmd, &before, deadline, None) => back,
                    () = self.watch_slurm_reboot(p, deadline, &last) => {
                        self.await_reboot(&boot_cmd, &before, deadline, None).await
                    }
                };
                let last = last
                    .into_inner()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                back.map_err(|e| self.slurm_timed_out(r, e, last.as_ref()))
            }
        }?;
        *conn = back;
        self.event(
            "back",
            Some(format!(
                "after {}",
                humantime::format_duration(secs(started.elapsed()))
            )),
        );
        self.health(conn, r, deadline).await?;
        Ok(StepOutput::bare(StepStatus::Ok))
    }

    /// Runs the reboot `command` on the node.
    async fn ssh_reboot(&self, conn: &Option<K::Conn>, command: &str) -> Result<(), NodeError> {
        if let Some(c) = conn.as_ref() {
            let out = c.exec(command, None, REBOOT_COMMAND_TIMEOUT).await;
            self.job.log_exec("reboot", command, &out);
            // The connection may drop as the node goes down (an error, or ssh's 255);
            // a command that refuses (a typo, no permission) exits with its own code.
            if let Ok(o) = &out
                && let Some(code) = o.code
                && code != 0
                && code != 255
                && !o.timed_out
            {
                return Err(NodeError::RebootRefused {
                    code,
                    tail: o.last_lines(3),
                });
            }
        }
        Ok(())
    }

    /// `via: slurm`: asks slurmctld for the reboot (`scontrol reboot ASAP
    /// nextstate=DOWN`), with a reason that says who and why; the poller it returns
    /// watches Slurm's view of the reboot.
    async fn slurm_reboot(&self) -> Result<&SlurmPoller, NodeError> {
        let Some(p) = self.slurm else {
            return Err(NodeError::SlurmReboot(
                "`via: slurm` needs `drain: { scheduler: slurm }`".into(),
            ));
        };
        let reason = self.phase_reason("rebooting");
        let result = p.client().reboot(self.name(), &reason).await;
        self.job.log(&format!(
            "== reboot via Slurm\n$ scontrol reboot ASAP nextstate=DOWN reason='{reason}' {}\n[{}]\n",
            self.name(),
            match &result {
                Ok(()) => "ok".to_string(),
                Err(e) => e.to_string(),
            }
        ));
        result.map_err(|e| NodeError::SlurmReboot(e.to_string()))?;
        super::fault::abort_point("abort-after-slurm-reboot", self.name());
        Ok(p)
    }

    /// Reports Slurm's view of a reboot it was asked for: `reboot issued` once `sinfo`
    /// shows it pending or under way. Keeps `last` up to date with every state seen,
    /// for the error if the node does not come back; returns at `deadline`.
    async fn watch_slurm_reboot(
        &self,
        p: &SlurmPoller,
        deadline: Deadline,
        last: &std::sync::Mutex<Option<NodeStatus>>,
    ) {
        let seen = |s: &NodeStatus| {
            *last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(s.clone());
        };
        let issued = p
            .wait_for(self.name(), deadline, |s| {
                seen(s);
                s.rebooting()
            })
            .await;
        let Ok(s) = issued else { return };
        let detail = format!("Slurm shows {} {} ({})", self.name(), s.state, s.reason);
        self.job.log(&format!("== reboot issued\n{detail}\n"));
        self.event("reboot issued", Some(detail));
        // Only to keep `last` current: nothing satisfies it.
        let _ = p
            .wait_for(self.name(), deadline, |s| {
                seen(s);
                false
            })
            .await;
    }

    /// The reboot's `timeout` ran out: reported as `reboot timed out` with the state
    /// Slurm last showed (its own `reboot timed out` reason after `ResumeTimeout`).
    fn slurm_timed_out(&self, r: &Reboot, e: NodeError, last: Option<&NodeStatus>) -> NodeError {
        let NodeError::NotBack { last: why } = e else {
            return e;
        };
        let slurm = match last {
            Some(s) => format!("Slurm shows {} {} ({})", self.name(), s.state, s.reason),
            None => format!("Slurm showed no state of {}", self.name()),
        };
        let detail = format!(
            "not back within {}; {slurm}",
            humantime::format_duration(r.timeout)
        );
        self.job.log(&format!("== reboot timed out\n{detail}\n"));
        self.event("reboot timed out", Some(detail));
        NodeError::NotBack {
            last: format!("{why}; {slurm}"),
        }
    }

    /// Waits until the node answers with a boot id other than `before`, and returns the
    /// new connection. Until it goes down it may still answer with the old one; with a
    /// `grace`, answering with the old one for that long means the reboot never
    /// happened (`Ok(None)`).
    pub async fn await_reboot(
        &self,
        boot_cmd: &str,
        before: &str,
        deadline: Deadline,
        grace: Option<Duration>,
    ) -> Result<Option<K::Conn>, NodeError> {
        let old_since: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
        let old_since = &old_since;
        poll_until(deadline, REBOOT_POLL, BOOT_ID_TIMEOUT, |left| async move {
            match self.connector.connect(self.job.node).await {
                Ok(c) => match self.boot_id(&c, boot_cmd, left).await {
                    Ok(id) if id != before => Ok(Some(c)),
                    Ok(_) => {
                        c.close().await;
                        let since = *old_since
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .get_or_insert_with(Instant::now);
                        if grace.is_some_and(|g| since.elapsed() >= g) {
                            return Ok(None);
                        }
                        Err("still up with the old boot id".to_string())
                    }
                    Err(e) => {
                        c.close().await;
                        Err(e.to_string())
                    }
                },
                Err(e) => Err(e.to_string()),
            }
        })
        .await
        .map_err(|last| NodeError::NotBack { last })
    }

    /// Every health command must pass on the rebooted node before it is resumed. They
    /// are tried (all of them, in order) every `health_interval` until they pass or
    /// `deadline` (the reboot's timeout) passes: a service that takes a while to come
    /// up after boot is normal, and every site would otherwise write the same loop.
    pub async fn health(
        &self,
        conn: &Option<K::Conn>,
        r: &Reboot,
        deadline: Deadline,
    ) -> Result<(), NodeError> {
        let Some(c) = conn.as_ref() else {
            return Err(NodeError::Reboot(StepError::NoConnection));
        };
        if r.health.is_empty() {
            return Ok(());
        }
        let mut cmds = Vec::with_capacity(r.health.len());
        for h in &r.health {
            cmds.push(self.job.render(h).map_err(NodeError::Reboot)?);
        }
        let cmds = &cmds;
        poll_until(deadline, r.health_interval, r.timeout, |left| async move {
            for cmd in cmds {
                let out = c.exec(cmd, None, left).await;
                self.job.log_exec("health check", cmd, &out);
                match out {
                    Ok(o) if o.success() => {}
                    Ok(o) => return Err((cmd.clone(), format!("failed: {}", o.last_lines(3)))),
                    Err(e) => return Err((cmd.clone(), format!("failed: {e}"))),
                }
            }
            Ok(())
        })
        .await
        .map_err(|(cmd, last)| NodeError::Health { cmd, last })
    }
}

/// An error's first line, at most 200 characters: a reason is one line.
fn first_line(error: &str) -> String {
    error.lines().next().unwrap_or("").chars().take(200).collect()
}

/// Whole seconds, for messages.
/// Now as `squeue %e` prints times (slurmctld's local time, here the controller's), so
/// the two compare as strings.
fn local_now() -> String {
    jiff::Zoned::now().strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

fn secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}
