//! An `ansible:` step on one node: `ansible-playbook` on the controller, limited to the
//! node, reaching it through the node's own connection (its ssh master).
//!
//! It runs on the controller like a `local:` step: anything that batches a node's
//! commands into one remote script must end a batch before it and start a new one
//! after it.

use serde_json::{Map, Value};

use super::event::StepStatus;
use super::node_work::NodeJob;
use super::step_error::StepError;
use super::step_output::StepOutput;
use crate::ansible::{AnsibleError, Invocation, NodeReach, PlayOutcome, TaskEvent, Workdir};
use crate::transport::{Connection, LocalConnection};
use crate::workflow::{AnsiblePlay, AnsibleSource, Step};

/// The callback's results file is read whole, up to this (a playbook of thousands of
/// tasks stays far below).
const MAX_EVENTS_BYTES: u64 = 32 * 1024 * 1024;

impl NodeJob<'_> {
    /// Runs the play (with `check`: `--check --diff`) against this node alone.
    pub(super) async fn ansible<C: Connection>(
        &self,
        conn: &C,
        step: &Step,
        play: &AnsiblePlay,
        check: bool,
    ) -> Result<(PlayOutcome, StepOutput), StepError> {
        let program = crate::ansible::find_playbook().map_err(|why| {
            StepError::Ansible(AnsibleError::Prepare(format!(
                "{why}; {}",
                crate::ansible::INSTALL_HINT
            )))
        })?;
        let reach = match conn.client_ssh_args().await? {
            Some(args) => NodeReach::Ssh(args),
            None => NodeReach::Local,
        };
        let mut host_vars: Map<String, Value> = self
            .node
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        host_vars.extend(play.inventory_vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut extra_vars = Map::new();
        for (k, v) in &play.extra_vars {
            extra_vars.insert(k.clone(), self.render_value(v)?);
        }
        let (playbook, role) = match &play.source {
            AnsibleSource::Playbook(p) => (Some(p.as_path()), None),
            AnsibleSource::Role(r) => (None, Some(r.as_path())),
        };
        let inv = Invocation {
            program: &program,
            playbook,
            role,
            node: &self.node.name,
            host: &self.node.address.host,
            port: self.node.address.port,
            user: self.node.address.user.as_deref(),
            reach,
            host_vars,
            groups: self.groups.clone(),
            tags: &play.tags,
            skip_tags: &play.skip_tags,
            extra_vars,
            check,
            vault_password: self.workflow.revealed.vault_password.as_deref(),
        };
        let prepare = |e: std::io::Error| StepError::Ansible(AnsibleError::Prepare(e.to_string()));
        let dir = Workdir::new().map_err(prepare)?;
        let prepared = inv.prepare(&dir).map_err(prepare)?;
        let env: Vec<(&String, &String)> = self
            .workflow
            .env
            .iter()
            .chain(prepared.env.iter().map(|(k, v)| (k, v)))
            .collect();
        let local = LocalConnection::new(&self.node.name).with_env(env);
        let cmd = prepared.command.as_str();
        let out = local.exec(cmd, None, step.timeout).await;
        let what = if check {
            format!("ansible check `{}`", step.name)
        } else {
            format!("ansible step `{}`", step.name)
        };
        self.log_exec(&what, cmd, &out);
        let o = out?;
        if o.timed_out {
            return Err(StepError::TimedOut(step.timeout));
        }
        let events = crate::bounded_read::read_regular_text(&dir.events(), Some(MAX_EVENTS_BYTES))
            .map(|t| TaskEvent::parse_lines(&t))
            .unwrap_or_default();
        let outcome = PlayOutcome::judge(&self.node.name, o.code, &events, &o.last_lines(5))
            .map_err(StepError::Ansible)?;
        let status = if outcome.changed.is_empty() {
            StepStatus::Unchanged
        } else {
            StepStatus::Changed
        };
        let output = StepOutput::of(status, &o);
        Ok((outcome, output))
    }

    /// Strings at any depth are templates, rendered as text.
    fn render_value(&self, v: &Value) -> Result<Value, StepError> {
        Ok(match v {
            Value::String(t) => Value::String(self.templates.render_file(t, &self.context)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|x| self.render_value(x))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| Ok((k.clone(), self.render_value(x)?)))
                    .collect::<Result<_, StepError>>()?,
            ),
            other => other.clone(),
        })
    }
}
