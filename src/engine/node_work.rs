//! What happens on one node: its checks, and its steps. No decisions about other nodes
//! are made here; results go back to the runner.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::check_result::{CheckResult, StepNeed, classify};
use super::deadline::{Deadline, poll_until};
use super::event::StepStatus;
use super::file_sources::FileSources;
use super::run_log::RunLog;
use super::step_error::StepError;
use super::step_output::StepOutput;
use crate::inventory::Node;
use crate::template::TemplateEngine;
use crate::transport::{Connection, ExecOutput, LocalConnection, NodeLocks, ShellLine, TransportError};
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
        "node": {
            "name": node.name,
            "host": node.address.host,
            "port": node.address.port,
            "user": node.address.user,
            "vars": node.vars,
        },
        "vars": vars,
        "workflow": { "name": wf.name, "version": wf.version },
        "site": site,
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

    fn log(&self, text: &str) {
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

    /// Runs every check and classifies the node; errors and changes with vault values
    /// masked.
    pub async fn check<C: Connection>(&self, conn: &C) -> CheckResult {
        let mut r = self.check_unmasked(conn).await;
        r.error = r.error.map(|e| self.workflow.redact(&e).into_owned());
        for c in &mut r.changes {
            *c = self.workflow.redact(c).into_owned();
        }
        r
    }

    async fn check_unmasked<C: Connection>(&self, conn: &C) -> CheckResult {
        let steps = &self.workflow.steps;
        let mut needs = Vec::with_capacity(steps.len());
        let mut changes = Vec::new();
        for step in steps {
            if let Some(when) = &step.when {
                match self.templates.eval_bool(when, &self.context) {
                    Ok(false) => {
                        needs.push(StepNeed::NotApplicable);
                        continue;
                    }
                    Ok(true) => {}
                    Err(e) => return CheckResult::error(format!("`when` of step `{}`: {e}", step.name)),
                }
            }
            let Some(check) = &step.check else {
                // An `ansible:` step without a `check` asks the playbook itself, in
                // check mode: what would change is what the node needs.
                if let Action::Ansible(play) = &step.action
                    && play.check_mode
                {
                    match self.ansible(conn, step, play, true).await {
                        Ok((outcome, _)) if outcome.changed.is_empty() => needs.push(StepNeed::Done),
                        Ok((outcome, _)) => {
                            needs.push(StepNeed::Needed);
                            changes.extend(
                                outcome
                                    .changed
                                    .iter()
                                    .map(|t| format!("step `{}`: task `{t}`", step.name)),
                            );
                        }
                        Err(e) => {
                            return CheckResult::error(format!(
                                "check of step `{}` (ansible --check): {e}",
                                step.name
                            ));
                        }
                    }
                    continue;
                }
                needs.push(StepNeed::Unchecked);
                continue;
            };
            let cmd = match self.render(check) {
                Ok(c) => c,
                Err(e) => return CheckResult::error(format!("check of step `{}`: {e}", step.name)),
            };
            let out = conn.exec(&cmd, None, CHECK_TIMEOUT.min(step.timeout)).await;
            self.log_exec(&format!("check `{}`", step.name), &cmd, &out);
            match out {
                Err(e) => return CheckResult::error(e.to_string()),
                Ok(o) if o.timed_out => {
                    return CheckResult::error(format!("check of step `{}` timed out", step.name));
                }
                Ok(o) => match o.code {
                    Some(0) => needs.push(StepNeed::Done),
                    Some(1) => needs.push(StepNeed::Needed),
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
        let drain: Vec<bool> = steps.iter().map(|s| s.change == Change::Drain).collect();
        let mut result = classify(&needs, &drain);
        if result.class != super::check_result::Class::Good {
            result.changes = changes;
        }
        result
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
            Action::Local(cmd) => {
                let cmd = self.render(cmd)?;
                let local = LocalConnection::new(&self.node.name).with_env(&self.workflow.env);
                let out = local.exec(&cmd, None, step.timeout).await;
                self.log_exec(&format!("local step `{}`", step.name), &cmd, &out);
                outcome(out, step.timeout)
            }
            Action::Ansible(play) => self.ansible(conn, step, play, false).await.map(|(_, out)| out),
            Action::Copy(fc) => {
                let src = self.files.get(&fc.src).await?;
                self.put_file(conn, step, fc, src.bytes.clone(), &src.sha256)
                    .await
            }
            Action::Template(fc) => {
                let src = self.files.get(&fc.src).await?;
                let text = String::from_utf8_lossy(&src.bytes);
                let content = self
                    .templates
                    .render_file(&text, &self.context)
                    .map_err(|source| StepError::RenderFile {
                        path: fc.src.clone(),
                        source: Box::new(source),
                    })?;
                let hash = hex::encode(Sha256::digest(content.as_bytes()));
                self.put_file(conn, step, fc, content.into_bytes(), &hash).await
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
        self.log_exec(&format!("file step `{}`", step.name), cmd, &out);
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

/// The node-side script of a file step: compare the content hash (and mode and owner)
/// of `dest` with the upload on stdin, and replace the file atomically only when they
/// differ. Every value is quoted by [`ShellLine`].
pub fn file_command(dest: &str, hash: &str, mode: Option<u32>, owner: Option<&str>) -> ShellLine {
    let mut same = ShellLine::new()
        .code("[ -f \"$f\" ] && [ \"$(sha256sum < \"$f\" | cut -d' ' -f1)\" = ")
        .value(hash)
        .code(" ]");
    let mut apply = ShellLine::new();
    if let Some(m) = mode {
        let m = format!("{m:o}");
        same = same
            .code(" && [ \"$(stat -c %a \"$f\")\" = ")
            .value(&m)
            .code(" ]");
        apply = apply.code(" && chmod ").value(&m).code(" \"$t\"");
    }
    if let Some(o) = owner {
        let want = match o.split_once(':') {
            Some(_) => ShellLine::new().value(o),
            None => ShellLine::new()
                .value(format!("{o}:"))
                .code("\"$(id -gn ")
                .value(o)
                .code(")\""),
        };
        same = same
            .code(" && [ \"$(stat -c %U:%G \"$f\")\" = ")
            .line(&want)
            .code(" ]");
        apply = apply.code(" && chown ").value(o).code(" \"$t\"");
    }
    ShellLine::new()
        .code("f=")
        .value(dest)
        .code("; case \"$f\" in /*) ;; *) echo \"destination $f is not an absolute path\" >&2; exit 2;; esac; if ")
        .line(&same)
        .code("; then echo unchanged; else t=$(mktemp \"$f.drover.XXXXXX\") && cat > \"$t\"")
        .line(&apply)
        .code(" && mv -f \"$t\" \"$f\" && echo changed || { rm -f \"$t\"; exit 1; }; fi")
}

/// Waits (up to `timeout`) until no step holds the node's step lock: a controller
/// killed mid-step leaves the command running on the node, and a resumed run waits for
/// it instead of checking, seeing the step still needed, and running it a second time
/// alongside.
pub fn settle_command(locks: &NodeLocks, node: &str, timeout: Duration) -> String {
    locks.settle(node, timeout).into_string()
}

fn outcome(out: Result<ExecOutput, TransportError>, timeout: Duration) -> Result<StepOutput, StepError> {
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
