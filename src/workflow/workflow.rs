//! The checked workflow.

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Serialize;

use super::file_mode::FileMode;
use super::raw_workflow::{Change, NodeOrder, RebootVia};
use crate::inventory::{Inventory, NodeId};
use crate::site::DrainHooks;
use crate::units::Amount;

/// A workflow that passed validation: every reference resolves, every template parses.
#[derive(Debug, Clone, Serialize)]
pub struct Workflow {
    pub name: String,
    pub version: u32,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// The file it came from, as shown to users.
    pub file: String,
    /// Selectors, resolved against the inventory when a plan is made (the inventory can
    /// change between validation and run).
    pub targets: Vec<String>,
    pub exclude: Vec<String>,
    pub canary: Canary,
    pub strategy: Strategy,
    pub window: Option<String>,
    /// Overrides the site's drain hooks.
    pub drain: Option<DrainHooks>,
    /// `drain: { none: REASON }`: the workflow declares that its nodes need no drain, so
    /// its `change: drain` steps run without drain hooks (and only then).
    pub no_drain: Option<String>,
    /// With every decrypted (vault) value shown as `********`: what plans and records
    /// may show. Renders use [`Workflow::revealed`].
    pub vars: IndexMap<String, serde_json::Value>,
    /// The vars with vault values decrypted, and those plaintexts as secrets to mask;
    /// never serialized.
    #[serde(skip)]
    pub revealed: std::sync::Arc<super::revealed::Revealed>,
    /// Environment of controller-side commands: this workflow's `env:` (the site's is
    /// merged under it when a run starts).
    pub env: IndexMap<String, String>,
    /// `converge.every`: how often `drover serve` re-checks the targets and rolls out
    /// to drifted nodes; `None`: only when a new version is rolled out.
    pub converge: Option<Duration>,
    /// `unreachable:`: whether a target that cannot be connected to still gets its turn.
    pub unreachable: super::Unreachable,
    pub steps: Vec<Step>,
    /// Steps run on a node whose turn failed for good (after its retries), before it
    /// is held: detach it, notify, mark it for replacement. Best effort: their failure
    /// is added to the node's reason. Set by an alarm trigger's `quiesce.on_failure`.
    pub on_failure: Vec<Step>,
}

impl Workflow {
    /// The vars templates render with (vault values decrypted).
    pub fn render_vars(&self) -> &IndexMap<String, serde_json::Value> {
        self.revealed.vars.as_ref().unwrap_or(&self.vars)
    }

    /// `text` with every decrypted vault value masked (`********`).
    pub fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        self.revealed.secrets.redact(text)
    }

    /// Nodes an explicit `canary: { nodes }` names that are not targets (after
    /// `exclude`): the plan leaves them out of the canary phase, so validation warns.
    pub fn canary_outside_targets(&self, inv: &Inventory) -> Vec<NodeId> {
        let CanarySelect::Nodes(sel) = &self.canary.select else {
            return Vec::new();
        };
        let root = crate::yaml::Path::root();
        let (Ok(canary), Ok(targets), Ok(excluded)) = (
            inv.select(sel, &root),
            inv.select(&self.targets, &root),
            inv.select(&self.exclude, &root),
        ) else {
            return Vec::new();
        };
        let targets: std::collections::HashSet<NodeId> = targets.into_iter().collect();
        let excluded: std::collections::HashSet<NodeId> = excluded.into_iter().collect();
        canary
            .into_iter()
            .filter(|id| !targets.contains(id) || excluded.contains(id))
            .collect()
    }

    /// The longest any step may run: how long a resumed run waits for a step a dead
    /// controller left running.
    pub fn max_step_timeout(&self) -> Duration {
        self.steps
            .iter()
            .map(|s| s.timeout)
            .max()
            .unwrap_or(Duration::from_secs(60))
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CanarySelect {
    /// The inventory's `canary` list, among the targets.
    Inventory,
    Nodes(Vec<String>),
    Size(Amount),
}

#[derive(Debug, Clone, Serialize)]
pub struct Canary {
    pub select: CanarySelect,
    pub soak: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct Strategy {
    /// Never empty; the last entry repeats.
    pub batch: Vec<Amount>,
    pub max_unavailable: Amount,
    /// By inventory group name; `"*"` for every other group.
    pub max_unavailable_per_group: IndexMap<String, Amount>,
    /// Per Slurm partition (`scheduler: slurm` only).
    pub max_unavailable_per_partition: Option<Amount>,
    pub order: NodeOrder,
    /// None: any number of failures in a batch, as long as the run budget holds.
    pub failure_per_batch: Option<Amount>,
    pub failure_per_run: Amount,
    pub retries: RetryPolicy,
    pub all_at_once: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RetryPolicy {
    pub count: u32,
    pub delay: Duration,
    pub backoff: f64,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1 for the first retry).
    pub fn delay_before(&self, attempt: u32) -> Duration {
        let factor = self.backoff.powi(attempt.saturating_sub(1).min(64) as i32);
        let secs = (self.delay.as_secs_f64() * factor).min(self.max_delay.as_secs_f64());
        Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: String,
    pub action: Action,
    pub change: Change,
    pub check: Option<String>,
    pub when: Option<String>,
    pub timeout: Duration,
    /// None: the workflow's `strategy.retries.count`.
    pub retries: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Run(String),
    Copy(FileCopy),
    Template(FileCopy),
    Reboot(Reboot),
    WaitFor(WaitFor),
    Local(String),
    /// Runs on the controller (like `local`): a boundary for anything that batches a
    /// node's commands into one remote script.
    Ansible(AnsiblePlay),
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Run(_) => "run",
            Action::Copy(_) => "copy",
            Action::Template(_) => "template",
            Action::Reboot(_) => "reboot",
            Action::WaitFor(_) => "wait_for",
            Action::Local(_) => "local",
            Action::Ansible(_) => "ansible",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FileCopy {
    /// Resolved against the workflow file's directory.
    pub src: PathBuf,
    pub dest: String,
    pub mode: Option<FileMode>,
    pub owner: Option<String>,
    /// Never shown: no diff, no hash in the run log.
    pub secret: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Reboot {
    pub timeout: Duration,
    pub health: Vec<String>,
    /// Time between tries of the health commands.
    pub health_interval: Duration,
    /// With `via: slurm`, unused: slurmctld runs the site's `RebootProgram`.
    pub command: String,
    pub boot_id: String,
    pub via: RebootVia,
}

/// Time between tries of a reboot's health commands, unless the step says.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(5);

/// Reboots with systemd, which every supported distribution has.
pub const DEFAULT_REBOOT_COMMAND: &str = "systemctl reboot";
/// Changes with every boot of a Linux kernel.
pub const DEFAULT_BOOT_ID_COMMAND: &str = "cat /proc/sys/kernel/random/boot_id";

#[derive(Debug, Clone, Serialize)]
pub struct WaitFor {
    pub command: String,
    pub interval: Duration,
    pub timeout: Duration,
}

/// A checked `ansible:` step.
#[derive(Debug, Clone, Serialize)]
pub struct AnsiblePlay {
    /// The playbook or the role directory, resolved (after symlinks) inside the site.
    pub source: AnsibleSource,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    /// String values are templates.
    pub extra_vars: IndexMap<String, serde_json::Value>,
    /// `--check --diff` is the step's check when it has none.
    pub check_mode: bool,
    pub inventory_vars: IndexMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnsibleSource {
    Playbook(PathBuf),
    Role(PathBuf),
}
