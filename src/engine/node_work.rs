//! What happens on one node: its checks, and its steps. No decisions about other nodes
//! are made here; results go back to the runner.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::check_result::{CheckResult, Class, StepNeed, classify};
use super::deadline::{Deadline, poll_until};
use super::event::StepStatus;
use super::file_commands::{
    FRAMED_END, file_check, file_command, file_command_framed, file_command_inline, file_diff_probe,
};
use super::file_diff::{FileDiff, Wanted};
use super::file_sources::FileSources;
use super::files_check::{self, FileWant};
use super::run_log::RunLog;
use super::step_error::StepError;
use super::step_output::StepOutput;
use crate::inventory::Node;
use crate::template::TemplateEngine;
use crate::transport::{
    Connection, ExecOutput, ItemInput, LocalConnection, NodeLocks, Script, ShellLine, TransportError,
    shell_no_op,
};
use crate::workflow::{Action, Change, FileCopy, Step, Workflow};

/// How long one check may take (checks should be quick reads).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(120);

/// Everything a node's work needs besides its connection.
pub struct NodeJob<'a> {
    pub node: &'a Node,
    pub workflow: &'a Workflow,
    pub templates: &'a TemplateEngine,
    /// The template context: `node`, `vars`, `workflow`.
    pub context: serde_json::Value,
    /// Appended with every command and its output.
    pub log: Option<&'a RunLog>,
    /// `copy`/`template` sources, read once per run.
    pub files: &'a FileSources,
    /// The step locks `run` steps hold on the node.
    pub locks: &'a NodeLocks,
    /// `--diff`: the check also says how each file step would change its file.
    pub diff: bool,
    /// The node's inventory groups (for the inventory of `ansible:` steps).
    pub groups: Vec<String>,
}

/// The template context for a node: workflow vars overlaid with `--extra-vars`, and
/// the site's paths.
pub fn template_context(
    node: &Node,
    wf: &Workflow,
    extra: &serde_json::Map<String, serde_json::Value>,
    site: &serde_json::Value,
) -> serde_json::Value {
    let mut vars: serde_json::Map<String, serde_json::Value> = wf
        .render_vars()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    vars.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    json!({
        "node": node_context(node),
        "vars": vars,
        "workflow": { "name": wf.name, "version": wf.version },
        "site": site,
    })
}

/// The `node` template value. Hooks rendered outside a workflow (maintenance drains) use
/// it too, so `{{ node.* }}` means the same in every template drover renders.
pub fn node_context(node: &Node) -> serde_json::Value {
    json!({
        "name": node.name,
        "host": node.address.host,
        "port": node.address.port,
        "user": node.address.user,
        "vars": node.vars,
    })
}

/// The `site` template value: the site's directory and its `state_dir`, as absolute
/// paths (whatever directory drover was started in). A site simulated with the local
/// transport keeps each node's files under `{{ site.state_dir }}`, so nothing outside
/// it is touched.
pub fn site_context(site: &crate::site::Site) -> serde_json::Value {
    let abs = |p: &std::path::Path| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    json!({ "root": abs(&site.root), "state_dir": abs(&site.state_dir) })
}

impl NodeJob<'_> {
    pub fn render(&self, src: &str) -> Result<String, StepError> {
        Ok(self.templates.render(src, &self.context)?)
    }

    pub(super) fn log(&self, text: &str) {
        if let Some(log) = self.log {
            // A command a vault value was rendered into, or output that echoes one,
            // shows `********`.
            log.write(&self.node.name, &self.workflow.redact(text));
        }
    }

    pub(super) fn log_exec(&self, what: &str, cmd: &str, out: &Result<ExecOutput, TransportError>) {
        let mut s = format!("== {what}\n$ {cmd}\n");
        match out {
            Ok(o) => {
                s.push_str(&o.stdout);
                if !o.stderr.is_empty() {
                    let _ = write!(s, "[stderr]\n{}", o.stderr);
                }
                let _ = writeln!(
                    s,
                    "[exit {}{}]",
                    o.code.map_or("signal".to_string(), |c| c.to_string()),
                    if o.timed_out { ", timed out" } else { "" }
                );
            }
            Err(e) => {
                let _ = writeln!(s, "[transport error] {e}");
            }
        }
        self.log(&s);
    }

    /// Runs every check and classifies the node. A `copy`/`template` step without a
    /// check of its own is checked by comparing its file on the node (content hash,
    /// mode, owner). Two or more checks that need the node run as one script, in one
    /// round trip, each under its own time limit; the verdicts are the same as if each
    /// had run alone, in order (the first check that cannot answer decides the error).
    ///
    /// With `diff`, a file step's own comparison also reads how the file differs (in
    /// the same round trip); a file step with a `check:` of its own that says it is
    /// needed is compared afterwards, one more round trip for the nodes that need one.
    /// An `ansible:` step without a check runs its playbook in `--check --diff` mode
    /// on the controller. Errors and changes have vault values masked.
    /// The verdict for a node drover could not connect to, when the workflow says
    /// `unreachable: run`: no check can run, so every step that applies (`when`) is
    /// needed. `reason`: why it could not be reached, kept as the result's note.
    pub fn check_unreachable(&self, reason: &str) -> CheckResult {
        let steps = &self.workflow.steps;
        let mut needs = vec![StepNeed::NotApplicable; steps.len()];
        for (i, step) in steps.iter().enumerate() {
            let applies = match &step.when {
                None => true,
                Some(when) => match self.templates.eval_bool(when, &self.context) {
                    Ok(b) => b,
                    Err(e) => {
                        let e = format!("`when` of step `{}`: {e}", step.name);
                        return CheckResult::error(self.workflow.redact(&e).into_owned());
                    }
                },
            };
            if applies {
                needs[i] = StepNeed::Needed;
            }
        }
        let drain: Vec<bool> = steps
            .iter()
            .map(|s| s.change == crate::workflow::Change::Drain)
            .collect();
        let mut r = classify(&needs, &drain);
        // Shown under the node (check, run events) though it is not ERROR: why its checks
        // did not run.
        r.error = Some(format!(
            "{reason}; every step taken as needed (`unreachable: run`)"
        ));
        r
    }

    pub async fn check<C: Connection>(&self, conn: &C) -> CheckResult {
        let mut r = self.check_unmasked(conn).await;
        r.error = r.error.map(|e| self.workflow.redact(&e).into_owned());
        for c in &mut r.changes {
            *c = self.workflow.redact(c).into_owned();
        }
        // A template renders vault values into its file: its diff shows them masked.
        for d in &mut r.diffs {
            if let super::file_diff::ContentDiff::Text { unified, .. } = &mut d.content {
                *unified = self.workflow.redact(unified).into_owned();
            }
        }
        r
    }

    async fn check_unmasked<C: Connection>(&self, conn: &C) -> CheckResult {
        let steps = &self.workflow.steps;
        let mut needs = vec![StepNeed::NotApplicable; steps.len()];
        let mut probes: Vec<Probe> = Vec::new();
        let mut changes = Vec::new();
        let mut stopped: Option<String> = None;
        for (i, step) in steps.iter().enumerate() {
            if let Some(when) = &step.when {
                match self.templates.eval_bool(when, &self.context) {
                    Ok(false) => continue,
                    Ok(true) => {}
                    Err(e) => {
                        stopped = Some(format!("`when` of step `{}`: {e}", step.name));
                        break;
                    }
                }
            }
            let timeout = CHECK_TIMEOUT.min(step.timeout);
            let probe = match (&step.check, &step.action) {
                (Some(check), _) => self.render(check).map(|c| Probe {
                    step: i,
                    logged: c.clone(),
                    command: c,
                    timeout,
                    file: false,
                    diff: None,
                    want: None,
                }),
                (None, Action::Copy(fc) | Action::Template(fc)) => {
                    self.file_probe(i, fc, timeout, true).await
                }
                (None, Action::Ansible(play)) if play.check_mode => {
                    // The playbook itself, in check mode, on the controller: what would
                    // change is what the node needs.
                    match self.ansible(conn, step, play, true).await {
                        Ok((outcome, _)) if outcome.changed.is_empty() => needs[i] = StepNeed::Done,
                        Ok((outcome, _)) => {
                            needs[i] = StepNeed::Needed;
                            changes.extend(
                                outcome
                                    .changed
                                    .iter()
                                    .map(|t| format!("step `{}`: task `{t}`", step.name)),
                            );
                        }
                        Err(e) => {
                            stopped = Some(format!("check of step `{}` (ansible --check): {e}", step.name));
                            break;
                        }
                    }
                    continue;
                }
                (None, _) => {
                    needs[i] = StepNeed::Unchecked;
                    continue;
                }
            };
            match probe {
                Ok(p) => probes.push(p),
                Err(e) => {
                    stopped = Some(format!("check of step `{}`: {e}", step.name));
                    break;
                }
            }
        }
        let outs = self.run_probes(conn, &probes).await;
        let mut diffs = Vec::new();
        // File steps with a check of their own that found them needed: compared after.
        let mut compare_after = Vec::new();
        for (p, out) in probes.iter().zip(outs) {
            let step = &steps[p.step];
            // A file checked together with others was logged with them.
            if !p.shared() {
                self.log_probe(&format!("check `{}`", step.name), p, &out);
            }
            match out {
                Err(e) => return CheckResult::error(e.to_string()),
                Ok(o) if o.timed_out => {
                    return CheckResult::error(format!("check of step `{}` timed out", step.name));
                }
                Ok(o) => match o.code {
                    Some(0) if p.file => needs[p.step] = StepNeed::Current,
                    Some(0) => needs[p.step] = StepNeed::Done,
                    Some(1) => {
                        needs[p.step] = StepNeed::Needed;
                        match &p.diff {
                            Some(_) => diffs.extend(self.file_diff(p, &o)),
                            None if self.diff
                                && matches!(step.action, Action::Copy(_) | Action::Template(_)) =>
                            {
                                compare_after.push(p.step);
                            }
                            None => {}
                        }
                    }
                    code => {
                        let code = code.map_or("a signal".to_string(), |c| format!("code {c}"));
                        let tail = o.last_lines(3);
                        let detail = if tail.is_empty() {
                            String::new()
                        } else {
                            format!(": {tail}")
                        };
                        return CheckResult::error(format!(
                            "check of step `{}` exited with {code} (expected 0 = done or 1 = needed){detail}",
                            step.name
                        ));
                    }
                },
            }
        }
        if let Some(e) = stopped {
            return CheckResult::error(e);
        }
        let drain: Vec<bool> = steps.iter().map(|s| s.change == Change::Drain).collect();
        let mut result = classify(&needs, &drain);
        if result.class != Class::Good {
            result.changes = changes;
        }
        if !compare_after.is_empty() && result.class != Class::Good {
            diffs.extend(self.compare_after(conn, &compare_after).await);
        }
        // Only the files the node's steps would write.
        diffs.retain(|(i, _)| result.needed.contains(i));
        diffs.sort_by_key(|(i, _)| *i);
        result.diffs = diffs.into_iter().map(|(_, d)| d).collect();
        result
    }

    /// `--diff` of file steps whose own `check:` said they are needed: their files
    /// compared in one more round trip. A comparison that cannot answer shows no diff
    /// (the check has decided already).
    async fn compare_after<C: Connection>(&self, conn: &C, steps: &[usize]) -> Vec<(usize, FileDiff)> {
        let mut probes = Vec::new();
        for &i in steps {
            let step = &self.workflow.steps[i];
            if let Action::Copy(fc) | Action::Template(fc) = &step.action
                && let Ok(p) = self
                    .file_probe(i, fc, CHECK_TIMEOUT.min(step.timeout), false)
                    .await
            {
                probes.push(p);
            }
        }
        let outs = self.run_probes(conn, &probes).await;
        let mut diffs = Vec::new();
        for (p, out) in probes.iter().zip(outs) {
            self.log_probe(&format!("diff `{}`", self.workflow.steps[p.step].name), p, &out);
            if let Ok(o) = out
                && !o.timed_out
                && o.code == Some(1)
            {
                diffs.extend(self.file_diff(p, &o));
            }
        }
        diffs
    }

    /// The probe of a file step's file: [`file_check`], or with `diff` the
    /// [`file_diff_probe`] that also says how the file differs. `own_check`: the probe
    /// is the step's check (it has none of its own).
    async fn file_probe(
        &self,
        step: usize,
        fc: &FileCopy,
        timeout: Duration,
        own_check: bool,
    ) -> Result<Probe, StepError> {
        let action = &self.workflow.steps[step].action;
        let (content, hash) = self.file_content(action, fc).await?;
        let dest = self.templates.render_file(&fc.dest, &self.context)?;
        let (mode, owner) = (fc.mode.map(|m| m.0), fc.owner.as_deref());
        let command = if self.diff {
            file_diff_probe(&dest, &hash, mode, owner, fc.secret)
        } else {
            file_check(&dest, &hash, mode, owner)
        }
        .into_string();
        // A secret's hash is not written to the log, so its check runs alone (the
        // shared command's log would show it).
        let want = (!self.diff && !fc.secret).then(|| FileWant {
            dest: dest.clone(),
            hash: hash.clone(),
            mode,
            owner: owner.map(str::to_string),
        });
        Ok(Probe {
            step,
            logged: masked(&command, fc, &hash),
            command,
            timeout,
            file: own_check,
            diff: self.diff.then_some(DiffWant { dest, content }),
            want,
        })
    }

    /// What the node said of a file that differs, as a diff, with its step's index.
    fn file_diff(&self, p: &Probe, out: &ExecOutput) -> Option<(usize, FileDiff)> {
        let step = &self.workflow.steps[p.step];
        let (Action::Copy(fc) | Action::Template(fc)) = &step.action else {
            return None;
        };
        let want = p.diff.as_ref()?;
        let wanted = Wanted {
            content: &want.content,
            mode: fc.mode.map(|m| m.0),
            owner: fc.owner.as_deref(),
            secret: fc.secret,
        };
        FileDiff::from_probe(&step.name, &want.dest, &wanted, out).map(|d| (p.step, d))
    }

    /// Logs a probe as it ran, but without the file content a `--diff` probe read: the
    /// run log says how much was read, not what.
    fn log_probe(&self, what: &str, p: &Probe, out: &Result<ExecOutput, TransportError>) {
        match out {
            Ok(o) if p.diff.is_some() => {
                let mut lines = o.stdout.lines();
                let mut shown = String::new();
                for l in lines.by_ref() {
                    shown.push_str(l);
                    shown.push('\n');
                    if l.starts_with("drover-file ") {
                        break;
                    }
                }
                let read: usize = lines.map(str::len).sum();
                if read > 0 {
                    let _ = writeln!(
                        shown,
                        "[{read} bytes of the file's content in base64, read for --diff]"
                    );
                }
                let o = ExecOutput {
                    stdout: shown,
                    ..o.clone()
                };
                self.log_exec(what, &p.logged, &Ok(o));
            }
            _ => self.log_exec(what, &p.logged, out),
        }
    }

    /// Runs the checks' commands: one at a time when at most one of them needs the node
    /// (a command run alone costs the least), else every one that needs the node in one
    /// script, answering effect-free built-ins (`true`, `exit 1`) without the node. The
    /// own checks of file steps ([`Probe::shared`]) are one command for all their files
    /// ([`files_check`]), logged as such, each file's verdict given to its probe.
    async fn run_probes<C: Connection>(
        &self,
        conn: &C,
        probes: &[Probe],
    ) -> Vec<Result<ExecOutput, TransportError>> {
        let units = probe_units(probes);
        let remote = units.iter().filter(|u| u.command.is_some()).count();
        let mut outs: Vec<Option<Result<ExecOutput, TransportError>>> = vec![None; probes.len()];
        if remote < 2 {
            for u in &units {
                let out = match &u.command {
                    None => Ok(no_op_output(
                        shell_no_op(&probes[u.members[0]].command).unwrap_or(1),
                    )),
                    Some(c) => conn.exec(c.text(), None, u.timeout).await,
                };
                let failed = !matches!(&out, Ok(o) if !o.timed_out && matches!(o.code, Some(0 | 1)));
                self.give(probes, u, out, &mut outs);
                if failed {
                    // The first check that cannot answer decides; the rest need not run.
                    break;
                }
            }
        } else {
            let mut script = Script::new(false);
            for u in &units {
                if let Some(c) = &u.command {
                    c.push_to(&mut script, u.timeout, ItemInput::Null);
                }
            }
            // Held: a node that needs steps runs them in this session's shell at its
            // turn (unless its connection is released before: see `check_all`).
            let script = script.hold();
            let mut ran = match conn.exec_script(&script, None, None).await {
                Ok(r) => r,
                Err(e) => return vec![Err(e)],
            };
            let mut item = 0;
            for u in &units {
                let out = match &u.command {
                    None => Ok(no_op_output(
                        shell_no_op(&probes[u.members[0]].command).unwrap_or(1),
                    )),
                    Some(_) => {
                        item += 1;
                        ran.item(item - 1, u.timeout).map(|o| o.output)
                    }
                };
                self.give(probes, u, out, &mut outs);
            }
        }
        // In probe order, up to the first one that did not run.
        outs.into_iter().map_while(|o| o).collect()
    }

    /// Gives each probe of `unit` its outcome: a shared file check's output becomes each
    /// file's exit code (0 as wanted, 1 not), logged once as the command that ran; a
    /// shared check that could not answer gives every file its outcome.
    fn give(
        &self,
        probes: &[Probe],
        unit: &ProbeUnit,
        out: Result<ExecOutput, TransportError>,
        outs: &mut [Option<Result<ExecOutput, TransportError>>],
    ) {
        if !unit.shared {
            outs[unit.members[0]] = Some(out);
            return;
        }
        let names: Vec<String> = unit
            .members
            .iter()
            .map(|i| format!("`{}`", self.workflow.steps[probes[*i].step].name))
            .collect();
        if let Some(c) = &unit.command {
            self.log_exec(
                &format!("check {} (their files, in one command)", names.join(", ")),
                c.text(),
                &out,
            );
        }
        let wants: Vec<&FileWant> = unit
            .members
            .iter()
            .filter_map(|i| probes[*i].want.as_ref())
            .collect();
        let verdicts = match &out {
            Ok(o) if !o.timed_out && o.code == Some(0) => Some(files_check::verdicts(&wants, &o.stdout)),
            _ => None,
        };
        for (k, i) in unit.members.iter().enumerate() {
            outs[*i] = Some(match &verdicts {
                Some(v) => Ok(no_op_output(if v.get(k).copied().unwrap_or(false) {
                    0
                } else {
                    1
                })),
                None => out.clone(),
            });
        }
    }

    /// A file step's content (a copy's source, a template rendered for this node) and
    /// its sha256.
    async fn file_content(&self, action: &Action, fc: &FileCopy) -> Result<(Vec<u8>, String), StepError> {
        let src = self.files.get(&fc.src).await?;
        if !matches!(action, Action::Template(_)) {
            return Ok((src.bytes.clone(), src.sha256.clone()));
        }
        let text = String::from_utf8_lossy(&src.bytes);
        let content = self
            .templates
            .render_file(&text, &self.context)
            .map_err(|source| StepError::RenderFile {
                path: fc.src.clone(),
                source: Box::new(source),
            })?;
        let hash = hex::encode(Sha256::digest(content.as_bytes()));
        Ok((content.into_bytes(), hash))
    }

    /// Runs a `local:` step, on the controller: it needs no connection to the node.
    pub(super) async fn local_step(&self, step: &Step) -> Result<StepOutput, StepError> {
        let Action::Local(cmd) = &step.action else {
            return Err(StepError::NoConnection);
        };
        let cmd = self.render(cmd)?;
        let local = LocalConnection::new(&self.node.name).with_env(&self.workflow.env);
        let out = local.exec(&cmd, None, step.timeout).await;
        self.log_exec(&format!("local step `{}`", step.name), &cmd, &out);
        outcome(out, step.timeout)
    }

    /// Runs one step (not a reboot: that is the node cycle's, which can reconnect).
    pub(super) async fn step<C: Connection>(&self, conn: &C, step: &Step) -> Result<StepOutput, StepError> {
        match &step.action {
            Action::Run(cmd) => {
                let cmd = self.render(cmd)?;
                let out = conn.exec_locked(self.locks, &cmd, None, step.timeout).await;
                self.log_exec(&format!("step `{}`", step.name), &cmd, &out);
                outcome(out, step.timeout)
            }
            Action::Local(_) => self.local_step(step).await,
            Action::Ansible(play) => self.ansible(conn, step, play, false).await.map(|(_, out)| out),
            Action::Copy(fc) | Action::Template(fc) => {
                let (content, hash) = self.file_content(&step.action, fc).await?;
                self.put_file(conn, step, fc, content, &hash).await
            }
            Action::WaitFor(w) => {
                let cmd = self.render(&w.command)?;
                let what = format!("wait_for `{}`", step.name);
                poll_until(
                    Deadline::after(w.timeout),
                    w.interval,
                    Duration::from_secs(60),
                    |left| {
                        let (cmd, what) = (&cmd, &what);
                        async move {
                            let out = conn.exec(cmd, None, left).await;
                            self.log_exec(what, cmd, &out);
                            match out {
                                Ok(o) if o.success() => Ok(StepOutput::of(StepStatus::Ok, &o)),
                                Ok(o) => Err(o.last_lines(3)),
                                Err(e) => Err(e.to_string()),
                            }
                        }
                    },
                )
                .await
                .map_err(|last| StepError::StillFailing {
                    after: w.timeout,
                    last,
                })
            }
            Action::Reboot(_) => Err(StepError::RebootOutsideCycle),
        }
    }

    /// A step as one command of a script of steps, or `None` when it must run alone:
    /// it needs the controller (a `local:` step, an `ansible:` playbook, a `wait_for`'s
    /// polling, a reboot), or
    /// preparing it fails (it then runs alone, to fail as it always did).
    pub(super) async fn scripted(&self, step: &Step) -> Option<Scripted> {
        match &step.action {
            Action::Run(cmd) => {
                let command = self.render(cmd).ok()?;
                Some(Scripted {
                    logged: command.clone(),
                    command: NodeCommand::User(command),
                    input: Vec::new(),
                    inline: None,
                    file: false,
                })
            }
            Action::Copy(fc) | Action::Template(fc) => {
                let (content, hash) = self.file_content(&step.action, fc).await.ok()?;
                let dest = self.templates.render_file(&fc.dest, &self.context).ok()?;
                let (mode, owner) = (fc.mode.map(|m| m.0), fc.owner.as_deref());
                let cmd = file_command_framed(&dest, &hash, content.len(), mode, owner);
                let inline = file_command_inline(&dest, &hash, &content, mode, owner);
                let mut input = content;
                input.extend_from_slice(FRAMED_END);
                Some(Scripted {
                    logged: masked(cmd.as_str(), fc, &hash),
                    command: NodeCommand::Own(cmd),
                    input,
                    inline,
                    file: true,
                })
            }
            Action::Local(_) | Action::Ansible(_) | Action::WaitFor(_) | Action::Reboot(_) => None,
        }
    }

    /// Runs `steps` (prepared by [`Self::scripted`]) as one script: one round trip, one
    /// step lock (when one of them is a `run` step), the files' contents one after
    /// another on the script's input; it stops at the first step that fails. Each
    /// step's result (and how long it took, where the node could tell) is what it would
    /// have been alone, and each is logged as if it had run alone; the list ends with
    /// the first failure.
    pub(super) async fn run_scripted<C: Connection>(
        &self,
        conn: &C,
        steps: &[(&Step, Scripted)],
    ) -> Vec<(Result<StepOutput, StepError>, Option<Duration>)> {
        let mut script = Script::new(true);
        let mut input = Vec::new();
        for (step, s) in steps {
            match (&s.command, s.file) {
                (NodeCommand::Own(cmd), true) => {
                    script.push_own_file(cmd, s.inline.as_ref(), s.input.len(), step.timeout);
                }
                (command, _) => command.push_to(&mut script, step.timeout, ItemInput::Null),
            }
            input.extend_from_slice(&s.input);
        }
        let locked = steps.iter().any(|(_, s)| !s.file);
        let stdin = (!input.is_empty()).then_some(input);
        let mut ran = match conn
            .exec_script(&script, stdin, locked.then_some(self.locks))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                if let Some((step, s)) = steps.first() {
                    self.log_exec(&step_label(step, s.file), &s.logged, &Err(e.clone()));
                }
                return vec![(Err(e.into()), None)];
            }
        };
        let mut results = Vec::with_capacity(steps.len());
        for (k, (step, s)) in steps.iter().enumerate() {
            let out = ran.item(k, step.timeout);
            let elapsed = out.as_ref().ok().and_then(|o| o.elapsed);
            let out = out.map(|o| o.output);
            self.log_exec(&step_label(step, s.file), &s.logged, &out);
            let result = match out {
                Ok(o) if s.file && o.success() => {
                    let status = if o.stdout.trim_end().ends_with("unchanged") {
                        StepStatus::Unchanged
                    } else {
                        StepStatus::Changed
                    };
                    Ok(StepOutput::of(status, &o))
                }
                out => outcome(out, step.timeout),
            };
            let failed = result.is_err();
            results.push((result, elapsed));
            if failed {
                break;
            }
        }
        results
    }

    /// Uploads a file in one round trip: the node compares the content hash (and mode
    /// and owner) and only replaces the file, atomically, when something differs.
    async fn put_file<C: Connection>(
        &self,
        conn: &C,
        step: &Step,
        fc: &FileCopy,
        content: Vec<u8>,
        hash: &str,
    ) -> Result<StepOutput, StepError> {
        // The destination is a path, not shell code: rendered as plain text and quoted
        // once as a whole (`f='/x/a b'`), whatever it contains.
        let dest = self.templates.render_file(&fc.dest, &self.context)?;
        let cmd = file_command(&dest, hash, fc.mode.map(|m| m.0), fc.owner.as_deref());
        let cmd = cmd.as_str();
        let out = conn.exec(cmd, Some(content), step.timeout).await;
        self.log_exec(
            &format!("file step `{}`", step.name),
            &masked(cmd, fc, hash),
            &out,
        );
        let o = out?;
        if !o.success() {
            return outcome(Ok(o), step.timeout);
        }
        let status = if o.stdout.trim_end().ends_with("unchanged") {
            StepStatus::Unchanged
        } else {
            StepStatus::Changed
        };
        Ok(StepOutput::of(status, &o))
    }
}

/// Waits (up to `timeout`) until no step holds the node's step lock: a controller
/// killed mid-step leaves the command running on the node, and a resumed run waits for
/// it instead of checking, seeing the step still needed, and running it a second time
/// alongside.
pub fn settle_command(locks: &NodeLocks, node: &str, timeout: Duration) -> String {
    locks.settle(node, timeout).into_string()
}

/// A step prepared to run inside a script of steps.
pub(super) struct Scripted {
    /// What runs on the node.
    command: NodeCommand,
    /// What the log shows: the command, a secret file's hash masked.
    logged: String,
    /// A file step's content and [`FRAMED_END`], which travel on the script's input.
    input: Vec<u8>,
    /// A file step with its content in its text, for a held shell
    /// ([`Script::push_own_file`]); `None` for content a shell word cannot hold or past
    /// [`super::file_commands::INLINE_BYTES`].
    inline: Option<ShellLine>,
    file: bool,
}

/// A command of a script on the node: a user's (`run:`, `check:`), which gets a `sh -c`
/// of its own, or drover's own shell code, which runs in a subshell of the script
/// ([`Script::push_own`]).
enum NodeCommand {
    User(String),
    Own(ShellLine),
}

impl NodeCommand {
    /// The command's text, as it runs alone.
    fn text(&self) -> &str {
        match self {
            NodeCommand::User(c) => c,
            NodeCommand::Own(code) => code.as_str(),
        }
    }

    fn push_to(&self, script: &mut Script, timeout: Duration, input: ItemInput) {
        match self {
            NodeCommand::User(c) => script.push(c, timeout, input),
            NodeCommand::Own(code) => script.push_own(code, timeout, input),
        }
    }
}

/// One check's command on a node.
struct Probe {
    /// The step's index in the workflow.
    step: usize,
    command: String,
    /// What the log shows: the command, a secret file's hash masked.
    logged: String,
    timeout: Duration,
    /// A file step's own comparison (it has no `check:`): exit 0 means current.
    file: bool,
    /// With `--diff`: what the file step would write, for the diff.
    diff: Option<DiffWant>,
    /// Without `--diff`: what a file step wants of its file, for the shared check.
    want: Option<FileWant>,
}

struct DiffWant {
    dest: String,
    content: Vec<u8>,
}

impl Probe {
    /// A file step's own check that runs with the node's other such checks, as one
    /// command ([`files_check`]).
    fn shared(&self) -> bool {
        self.file && self.want.as_ref().is_some_and(FileWant::shareable)
    }
}

/// What runs on the node for one or more probes: one probe's command, or the shared
/// check of several files; `command` is `None` for a built-in answered without the node.
struct ProbeUnit {
    command: Option<NodeCommand>,
    timeout: Duration,
    /// The probes it answers, by index, in order.
    members: Vec<usize>,
    shared: bool,
}

/// The probes as units, in the order of their first probe: the shared file checks go
/// where the first of them was.
fn probe_units(probes: &[Probe]) -> Vec<ProbeUnit> {
    let shared: Vec<usize> = (0..probes.len()).filter(|i| probes[*i].shared()).collect();
    let wants: Vec<&FileWant> = shared.iter().filter_map(|i| probes[*i].want.as_ref()).collect();
    let mut groups = Vec::new();
    let mut next = 0;
    for g in files_check::groups(&wants) {
        let members: Vec<usize> = shared[next..next + g.len()].to_vec();
        next += g.len();
        let timeout = members
            .iter()
            .map(|i| probes[*i].timeout)
            .min()
            .unwrap_or(CHECK_TIMEOUT);
        let code = files_check::command(&g);
        groups.push(ProbeUnit {
            command: Some(NodeCommand::Own(code)),
            timeout,
            members,
            shared: true,
        });
    }
    let mut units: Vec<ProbeUnit> = Vec::new();
    for (i, p) in probes.iter().enumerate() {
        if p.shared() {
            if let Some(pos) = groups.iter().position(|g| g.members.first() == Some(&i)) {
                units.push(groups.swap_remove(pos));
            }
            continue;
        }
        units.push(ProbeUnit {
            command: shell_no_op(&p.command)
                .is_none()
                .then(|| NodeCommand::User(p.command.clone())),
            timeout: p.timeout,
            members: vec![i],
            shared: false,
        });
    }
    units
}

/// A file step's command as the run log shows it: a `secret: true` file's sha256 is
/// replaced, so the log holds nothing derived from its content.
fn masked(command: &str, fc: &FileCopy, hash: &str) -> String {
    if fc.secret {
        command.replace(hash, "<sha256 of the secret content>")
    } else {
        command.to_string()
    }
}

/// How the log names a step's command (as when it runs alone).
fn step_label(step: &Step, file: bool) -> String {
    if file {
        format!("file step `{}`", step.name)
    } else {
        format!("step `{}`", step.name)
    }
}

/// What `sh -c` gives an effect-free built-in (see [`shell_no_op`]).
fn no_op_output(code: i32) -> ExecOutput {
    ExecOutput {
        code: Some(code),
        stdout: String::new(),
        stderr: String::new(),
        timed_out: false,
    }
}

pub(super) fn outcome(
    out: Result<ExecOutput, TransportError>,
    timeout: Duration,
) -> Result<StepOutput, StepError> {
    let o = out?;
    if o.timed_out {
        return Err(StepError::TimedOut(timeout));
    }
    match o.code {
        Some(0) => Ok(StepOutput::of(StepStatus::Ok, &o)),
        Some(code) => Err(StepError::Exited {
            code,
            tail: o.last_lines(5),
        }),
        None => Err(StepError::Signal {
            tail: o.last_lines(5),
        }),
    }
}
