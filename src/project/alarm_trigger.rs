//! An alarm trigger as checked: the workflow an alarm runs (the named workflow with the
//! trigger's quiesce steps around its own), how the alarm names its nodes, its secret
//! and its cooldown.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use indexmap::IndexMap;

use crate::diag::{Problem, did_you_mean};
use crate::inventory::check_node_name;
use crate::site::RawTrigger;
use crate::units::{Amount, SecretRef, limits};
use crate::workflow::{Action, Canary, CanarySelect, Change, Step, Workflow, WorkflowContext, check_steps};
use crate::yaml::Path;

/// Without `cooldown:`: an alarm storm on one node starts at most one run per 10 minutes.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(600);

/// Names taken by the built-in hooks (`/hooks/slack`, `/hooks/git`).
const RESERVED: [&str; 2] = ["slack", "git"];

#[derive(Debug, Clone)]
pub struct AlarmTrigger {
    /// Its path, `/hooks/{name}`, and the name its runs record as their trigger.
    pub name: String,
    /// The workflow it was made from.
    pub workflow: String,
    pub secret: SecretRef,
    /// The JSON Pointer to the alarm's node names.
    pub nodes_from: String,
    pub cooldown: Duration,
    /// What an alarm runs: `workflow` named after the trigger, its steps between the
    /// `before` and `after` steps, the `on_failure` steps set, no canary phase (the
    /// alarm names the nodes), no converge timer.
    pub run: Workflow,
}

/// Which JSON value at `nodes_from` is not a list of node names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlarmNodesError {
    #[error("the alarm has nothing at `{0}` (`nodes_from`)")]
    Missing(String),
    #[error("`{at}` is {found}: expected a string of node names or host lists, or an array of them")]
    NotNames { at: String, found: String },
}

impl AlarmTrigger {
    /// The node selectors the alarm `body` names at `nodes_from`, as written there.
    pub fn selectors(&self, body: &serde_json::Value) -> Result<Vec<String>, AlarmNodesError> {
        let v = body
            .pointer(&self.nodes_from)
            .ok_or_else(|| AlarmNodesError::Missing(self.nodes_from.clone()))?;
        let not_names = |found: &serde_json::Value| AlarmNodesError::NotNames {
            at: self.nodes_from.clone(),
            found: kind(found).to_string(),
        };
        let mut out = Vec::new();
        match v {
            serde_json::Value::String(s) => out.extend(crate::service::split_list(s)),
            serde_json::Value::Array(items) => {
                for i in items {
                    match i {
                        serde_json::Value::String(s) => out.extend(crate::service::split_list(s)),
                        other => return Err(not_names(other)),
                    }
                }
            }
            other => return Err(not_names(other)),
        }
        Ok(out)
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array holding something other than strings",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Checks `triggers:` against the workflows loaded (`declared`: every name a workflow
/// file declares, valid or not: one whose file has errors is reported there). `cx` is
/// the site config's (its tree, its directory).
pub(super) fn check_triggers(
    raw: &IndexMap<String, RawTrigger>,
    workflows: &[Workflow],
    declared: &BTreeSet<String>,
    cx: &WorkflowContext<'_>,
    site_drain: bool,
    p: &mut Vec<Problem>,
) -> Vec<AlarmTrigger> {
    let mut out = Vec::new();
    for (name, t) in raw {
        let at = Path::root().key("triggers").key(name.clone());
        let before = p.len();
        if let Err(m) = check_node_name(name) {
            p.push(Problem::key(at.clone(), m.replace("node name", "trigger name")));
        }
        if RESERVED.contains(&name.as_str()) {
            p.push(Problem::key(
                at.clone(),
                format!("`{name}` is taken by the built-in `/hooks/{name}`: name the trigger otherwise"),
            ));
        }
        if declared.contains(name) {
            p.push(
                Problem::key(at.clone(), format!("trigger `{name}` has the name of a workflow")).with_help(
                    "an alarm's runs are recorded under the trigger's name: give it a name of its own",
                ),
            );
        }
        if !t.nodes_from.starts_with('/') {
            p.push(
                Problem::value(
                    at.key("nodes_from"),
                    format!("`{}` is not a JSON Pointer", t.nodes_from),
                )
                .with_help("a JSON Pointer starts with `/`, such as `/alert/host` or `/nodes`"),
            );
        }
        let cooldown = t.cooldown.map_or(DEFAULT_COOLDOWN, |d| d.get());
        limits::TRIGGER_COOLDOWN.check_duration(at.key("cooldown"), cooldown, p);
        let Some(base) = workflows.iter().find(|w| w.name == t.workflow) else {
            if !declared.contains(&t.workflow) {
                let pr = Problem::value(
                    at.key("workflow"),
                    format!("no workflow named `{}` for trigger `{name}`", t.workflow),
                );
                p.push(
                    match did_you_mean(&t.workflow, declared.iter().map(String::as_str)) {
                        Some(m) => pr.with_help(format!("did you mean `{m}`?")),
                        None => pr.with_help("name a workflow of the site's workflows directory"),
                    },
                );
            }
            continue;
        };
        let q = at.key("quiesce");
        let mut taken: HashMap<String, String> = base
            .steps
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    format!("step `{}` of workflow `{}`", s.name, base.name),
                )
            })
            .collect();
        let lists = [
            ("before", &t.quiesce.before),
            ("after", &t.quiesce.after),
            ("on_failure", &t.quiesce.on_failure),
        ];
        let mut checked: Vec<Vec<Step>> = Vec::new();
        for (key, steps) in lists {
            let list_at = q.key(key);
            let steps_ok = check_steps(steps, &list_at, cx, &mut taken, p);
            let drains = base.drain.is_some() || base.no_drain.is_some() || site_drain;
            for (i, s) in steps.iter().enumerate() {
                if s.change == Some(Change::Drain) && (!drains || key == "on_failure") {
                    p.push(
                        Problem::value(
                            list_at.index(i).key("change"),
                            if key == "on_failure" {
                                format!("on_failure step `{}` is `change: drain`: on_failure steps run on the node as its failure left it, without a drain cycle", s.name)
                            } else {
                                format!("step `{}` is `change: drain`, but workflow `{}` has no drain hooks", s.name, base.name)
                            },
                        )
                        .with_help("use `change: hot`"),
                    );
                }
            }
            if key == "on_failure" {
                for (i, s) in steps_ok.iter().enumerate() {
                    if matches!(s.action, Action::Reboot(_)) {
                        p.push(Problem::value(
                            list_at.index(i),
                            format!(
                                "on_failure step `{}` reboots: a failed node is held as it is, not rebooted",
                                s.name
                            ),
                        ));
                    }
                }
            }
            checked.push(steps_ok);
        }
        if p.len() > before {
            continue;
        }
        let mut lists = checked.into_iter();
        let (pre, post, on_failure) = (
            lists.next().unwrap_or_default(),
            lists.next().unwrap_or_default(),
            lists.next().unwrap_or_default(),
        );
        let mut run = base.clone();
        run.name = name.clone();
        run.converge = None;
        run.canary = Canary {
            select: CanarySelect::Size(Amount::Count(0)),
            soak: Duration::ZERO,
        };
        run.steps = pre
            .into_iter()
            .chain(base.steps.iter().cloned())
            .chain(post)
            .collect();
        run.on_failure = on_failure;
        out.push(AlarmTrigger {
            name: name.clone(),
            workflow: base.name.clone(),
            secret: t.secret.clone(),
            nodes_from: t.nodes_from.clone(),
            cooldown,
            run,
        });
    }
    out
}
