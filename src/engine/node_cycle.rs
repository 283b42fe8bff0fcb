//! One node's whole turn in a run: drain it before its first drain step, run its steps
//! (a reboot waits for the node to come back with a new boot id and passes its health
//! checks), and resume it. Every transition is journaled before it is acted on, so a
//! killed controller never forgets a drained node.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::event::{RunEvent, StepStatus};
use super::journal::{Journal, Mark, StepRecord};
use super::node_work::NodeJob;
use crate::site::{DrainHooks, HookHost, OnDrainTimeout};
use crate::store::NodeState;
use crate::transport::{Connection, Connector, ExecOutput, LocalConnection, TransportError};
use crate::workflow::{Action, Change, Reboot};

/// How long one drain hook call may take.
const HOOK_TIMEOUT: Duration = Duration::from_secs(120);
/// Time between attempts to reach a rebooting node.
const REBOOT_POLL: Duration = Duration::from_secs(1);
/// How long the reboot command itself may take before the node goes away.
const REBOOT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

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
}

enum Drain {
    Drained,
    TimedOut,
    Failed(String),
}

/// Everything a node's turn needs.
pub struct NodeCycle<'a, K: Connector> {
    pub job: NodeJob<'a>,
    pub connector: &'a K,
    pub hooks: Option<&'a DrainHooks>,
    pub journal: &'a Journal,
    pub events: &'a UnboundedSender<RunEvent>,
    /// `drover: <workflow> v<version> run <id>`: what the scheduler shows as the reason.
    pub reason: &'a str,
}

impl<K: Connector> NodeCycle<'_, K> {
    fn name(&self) -> &str {
        &self.job.node.name
    }

    fn event(&self, state: &str, detail: Option<String>) {
        let _ = self.events.send(RunEvent::NodeDrain {
            node: self.name().to_string(),
            state: state.to_string(),
            detail,
        });
    }

    async fn mark(&self, state: NodeState, attempt: u32, step: usize, drained: bool) -> Result<(), String> {
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
    ) -> Result<(), String> {
        self.journal
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
            .await
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
        let wf = self.job.workflow;
        // Drained and confirmed by the `drained` hook in this attempt.
        let mut confirmed = false;
        let mut must_resume = drained;
        for (pos, &i) in steps.iter().enumerate().skip(from) {
            let step = &wf.steps[i];
            let fail = |error: String, drained: bool| NodeEnd::Failed { pos, error, drained };
            // Validation refuses a drain step without hooks unless the workflow declares
            // its nodes need no drain; "no hooks" never counts as "drained" otherwise.
            if step.change == Change::Drain && self.hooks.is_none() && wf.no_drain.is_none() {
                return fail(
                    format!(
                        "step `{}` needs a drained node, but no drain hooks are configured and the \
                         workflow does not declare `drain: {{ none: ... }}`",
                        step.name
                    ),
                    must_resume,
                );
            }
            if step.change == Change::Drain && !confirmed && self.hooks.is_some() {
                // Drained before the hook runs: a crash in between must not forget it.
                if let Err(e) = self.mark(NodeState::Draining, attempt, i, true).await {
                    return fail(e, must_resume);
                }
                must_resume = true;
                match self.drain(conn).await {
                    Drain::Drained => confirmed = true,
                    Drain::Failed(e) => return fail(e, true),
                    Drain::TimedOut => return self.drain_timed_out(conn, attempt, i).await,
                }
                if let Err(e) = self.mark(NodeState::Drained, attempt, i, true).await {
                    return fail(e, true);
                }
            }
            if let Err(e) = self.mark(NodeState::Running, attempt, i, must_resume).await {
                return fail(e, must_resume);
            }
            let started = Instant::now();
            let result = match &step.action {
                Action::Reboot(r) => self.reboot(conn, r, attempt, i, must_resume).await,
                _ => match conn.as_ref() {
                    Some(c) => self.job.step(c, step).await,
                    None => Err("no connection to the node".to_string()),
                },
            };
            let (status, error) = match &result {
                Ok(s) => (*s, None),
                Err(e) => (StepStatus::Failed, Some(e.clone())),
            };
            let _ = self.events.send(RunEvent::StepFinished {
                node: self.name().to_string(),
                step: step.name.clone(),
                status,
                duration: started.elapsed(),
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
                exit_code: None,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                output_tail: error.clone().unwrap_or_default(),
            };
            if let Err(e) = self.journal.step(self.name(), record).await {
                return fail(e, must_resume);
            }
            if let Err(e) = result {
                return fail(format!("step `{}`: {e}", step.name), must_resume);
            }
        }
        if must_resume {
            let end = steps.len();
            if let Err(e) = self.mark(NodeState::Resuming, attempt, end, true).await {
                return NodeEnd::Failed {
                    pos: end,
                    error: e,
                    drained: true,
                };
            }
            if let Err(e) = self.resume(conn).await {
                return NodeEnd::Failed {
                    pos: end,
                    error: e,
                    drained: true,
                };
            }
        }
        let done = self.mark(NodeState::Succeeded, attempt, steps.len(), false).await;
        match done {
            Ok(()) => NodeEnd::Done,
            Err(e) => NodeEnd::Failed {
                pos: steps.len(),
                error: e,
                drained: false,
            },
        }
    }

    /// Runs a drain hook template with `reason` in scope, where the site says.
    async fn hook(
        &self,
        conn: &Option<K::Conn>,
        what: &str,
        src: &str,
        reason: &str,
    ) -> Result<ExecOutput, String> {
        let Some(hooks) = self.hooks else {
            return Err("no drain hooks".into());
        };
        let mut cx = self.job.context.clone();
        cx["run"] = serde_json::Value::from(self.journal.run());
        cx["reason"] = serde_json::Value::from(reason);
        let cmd = self
            .job
            .templates
            .render(src, &cx)
            .map_err(|e| format!("{what} hook: template error: {e}"))?;
        let out: Result<ExecOutput, TransportError> = match hooks.run_on {
            HookHost::Controller => {
                LocalConnection::new(self.name())
                    .exec(&cmd, None, HOOK_TIMEOUT)
                    .await
            }
            HookHost::Node => match conn.as_ref() {
                Some(c) => c.exec(&cmd, None, HOOK_TIMEOUT).await,
                None => return Err(format!("{what} hook: no connection to the node")),
            },
        };
        self.job.log_exec(&format!("{what} hook"), &cmd, &out);
        out.map_err(|e| format!("{what} hook: {e}"))
    }

    async fn hook_ok(
        &self,
        conn: &Option<K::Conn>,
        what: &str,
        src: &str,
        reason: &str,
    ) -> Result<(), String> {
        let o = self.hook(conn, what, src, reason).await?;
        if o.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} hook exited with {}: {}",
                o.code.map_or("a signal".to_string(), |c| format!("code {c}")),
                o.last_lines(3)
            ))
        }
    }

    async fn drain(&self, conn: &Option<K::Conn>) -> Drain {
        let Some(h) = self.hooks else {
            return Drain::Drained;
        };
        self.event("draining", None);
        if let Err(e) = self.hook_ok(conn, "drain", &h.drain, self.reason).await {
            return Drain::Failed(e);
        }
        let started = Instant::now();
        let deadline = started + h.timeout;
        loop {
            if let Ok(o) = self.hook(conn, "drained", &h.drained, self.reason).await
                && o.success()
            {
                self.event(
                    "drained",
                    Some(format!(
                        "after {}",
                        humantime::format_duration(secs(started.elapsed()))
                    )),
                );
                return Drain::Drained;
            }
            if Instant::now() + h.poll_interval > deadline {
                return Drain::TimedOut;
            }
            tokio::time::sleep(h.poll_interval).await;
        }
    }

    async fn drain_timed_out(&self, conn: &Option<K::Conn>, attempt: u32, step: usize) -> NodeEnd {
        let Some(h) = self.hooks else {
            return NodeEnd::Skipped("no drain hooks".into());
        };
        let waited = humantime::format_duration(h.timeout);
        match h.on_timeout {
            OnDrainTimeout::GiveUp => {
                let why = format!("did not drain within {waited}; resumed untouched");
                if let Err(e) = self.mark(NodeState::Resuming, attempt, step, true).await {
                    return NodeEnd::Failed {
                        pos: 0,
                        error: e,
                        drained: true,
                    };
                }
                if let Err(e) = self.resume(conn).await {
                    return NodeEnd::Failed {
                        pos: 0,
                        error: format!("{why}, but {e}"),
                        drained: true,
                    };
                }
                self.event("skipped", Some(why.clone()));
                let _ = self
                    .mark_with(NodeState::Skipped, attempt, step, false, None, Some(why.clone()))
                    .await;
                NodeEnd::Skipped(why)
            }
            OnDrainTimeout::Hold => {
                let why = format!("did not drain within {waited}; held for a human");
                let reason = format!("{}: {why}", self.reason);
                // The scheduler's reason says why it is held; the drain stays.
                let _ = self.hook(conn, "drain", &h.drain, &reason).await;
                self.event("held", Some(why.clone()));
                let _ = self
                    .mark_with(NodeState::Held, attempt, step, true, None, Some(why.clone()))
                    .await;
                NodeEnd::Held(why)
            }
        }
    }

    /// Whether the scheduler says the node is drained now (before the run: by someone
    /// else). Any failure of the hook counts as "no".
    pub async fn is_drained(&self, conn: &Option<K::Conn>) -> bool {
        match self.hooks {
            Some(h) => self
                .hook(conn, "drained", &h.drained, self.reason)
                .await
                .is_ok_and(|o| o.success()),
            None => false,
        }
    }

    async fn resume(&self, conn: &Option<K::Conn>) -> Result<(), String> {
        let Some(h) = self.hooks else {
            return Ok(());
        };
        self.hook_ok(conn, "resume", &h.resume, self.reason).await?;
        self.event("resumed", None);
        Ok(())
    }

    /// Leaves a failed node drained, with a reason that names the run, the step and the
    /// error, so `sinfo -R` tells the next human what happened.
    pub async fn hold_failed(&self, conn: &Option<K::Conn>, error: &str) -> String {
        let first = error
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>();
        let reason = format!("{}: {first}", self.reason);
        if let Some(h) = self.hooks {
            let _ = self.hook(conn, "drain", &h.drain, &reason).await;
        }
        self.event("held", Some(first));
        reason
    }

    async fn boot_id(&self, c: &K::Conn, cmd: &str) -> Result<String, String> {
        let out = c.exec(cmd, None, Duration::from_secs(30)).await;
        self.job.log_exec("boot id", cmd, &out);
        let o = out.map_err(|e| format!("cannot read the boot id: {e}"))?;
        let id = o.stdout.trim().to_string();
        if !o.success() || id.is_empty() {
            return Err(format!(
                "cannot read the boot id with `{cmd}`: {}",
                o.last_lines(3)
            ));
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
    ) -> Result<StepStatus, String> {
        let boot_cmd = self.job.render(&r.boot_id)?;
        let command = self.job.render(&r.command)?;
        let before = match conn.as_ref() {
            Some(c) => self.boot_id(c, &boot_cmd).await?,
            None => return Err("no connection to the node".into()),
        };
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
        if let Some(c) = conn.as_ref() {
            let out = c.exec(&command, None, REBOOT_COMMAND_TIMEOUT).await;
            self.job.log_exec("reboot", &command, &out);
            // The connection may drop as the node goes down (an error, or ssh's 255);
            // a command that refuses (a typo, no permission) exits with its own code.
            if let Ok(o) = &out
                && let Some(code) = o.code
                && code != 0
                && code != 255
                && !o.timed_out
            {
                return Err(format!(
                    "reboot command exited with code {code}: {}",
                    o.last_lines(3)
                ));
            }
        }
        if let Some(c) = conn.take() {
            c.close().await;
        }
        let started = Instant::now();
        let back = self
            .await_reboot(&boot_cmd, &before, started + r.timeout, None)
            .await?;
        *conn = back;
        self.event(
            "back",
            Some(format!(
                "after {}",
                humantime::format_duration(secs(started.elapsed()))
            )),
        );
        self.health(conn, r).await?;
        Ok(StepStatus::Ok)
    }

    /// Waits until the node answers with a boot id other than `before`, and returns the
    /// new connection. Until it goes down it may still answer with the old one; with a
    /// `grace`, answering with the old one for that long means the reboot never
    /// happened (`Ok(None)`).
    pub async fn await_reboot(
        &self,
        boot_cmd: &str,
        before: &str,
        deadline: Instant,
        grace: Option<Duration>,
    ) -> Result<Option<K::Conn>, String> {
        let mut last;
        let mut old_since: Option<Instant> = None;
        loop {
            match self.connector.connect(self.job.node).await {
                Ok(c) => match self.boot_id(&c, boot_cmd).await {
                    Ok(id) if id != before => return Ok(Some(c)),
                    Ok(_) => {
                        last = "still up with the old boot id".into();
                        c.close().await;
                        let since = *old_since.get_or_insert_with(Instant::now);
                        if grace.is_some_and(|g| since.elapsed() >= g) {
                            return Ok(None);
                        }
                    }
                    Err(e) => {
                        last = e;
                        c.close().await;
                    }
                },
                Err(e) => last = e.to_string(),
            }
            if Instant::now() + REBOOT_POLL >= deadline {
                return Err(format!("did not come back from the reboot in time ({last})"));
            }
            tokio::time::sleep(REBOOT_POLL).await;
        }
    }

    /// Every health command must pass on the rebooted node before it is resumed.
    pub async fn health(&self, conn: &Option<K::Conn>, r: &Reboot) -> Result<(), String> {
        let Some(c) = conn.as_ref() else {
            return Err("no connection to the node".into());
        };
        for h in &r.health {
            let cmd = self.job.render(h)?;
            let out = c.exec(&cmd, None, r.timeout).await;
            self.job.log_exec("health check", &cmd, &out);
            let o = out.map_err(|e| format!("health check `{cmd}`: {e}"))?;
            if !o.success() {
                return Err(format!("health check `{cmd}` failed: {}", o.last_lines(3)));
            }
        }
        Ok(())
    }
}

/// Whole seconds, for messages.
fn secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}
