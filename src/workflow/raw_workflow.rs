//! A workflow file as written (`workflows/*.yml`).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::file_mode::FileMode;
use super::raw_workflow_drain::RawWorkflowDrain;
use crate::units::{Amount, BatchSizes, HumanDuration};

/// One change to roll across a fleet: which nodes, in what order, under which budgets,
/// and the steps that make it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "drover workflow")]
pub struct RawWorkflow {
    /// Unique name; used in run ids, logs and scheduler drain reasons.
    pub name: String,
    /// A positive integer, raised with every change to the steps.
    #[schemars(range(min = 1))]
    pub version: i64,
    /// What the change does and why, for the people approving it.
    #[serde(default)]
    pub description: Option<String>,
    /// Free-form labels (`security`, `kernel`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Which nodes the workflow applies to.
    pub targets: RawTargets,
    /// Which targets go first. Default: the inventory's canary list (`@canary`) among
    /// the targets, with no soak time.
    #[serde(default)]
    pub canary: Option<RawCanary>,
    /// How the bulk of the nodes is rolled.
    #[serde(default)]
    pub strategy: RawStrategy,
    /// A maintenance window from the site config (`windows:` in drover.yml); no node is
    /// started outside it.
    #[serde(default)]
    pub window: Option<String>,
    /// Drain hooks for this workflow's nodes, replacing the site's (for services outside
    /// the scheduler, such as an HA pair behind a virtual IP), or `{ none: "reason" }`:
    /// its nodes need no drain. Without either (here or in the site), a `change: drain`
    /// step is an error.
    #[serde(default)]
    pub drain: Option<RawWorkflowDrain>,
    /// Values for templates, as `vars.NAME`. A value may be Ansible Vault-encrypted
    /// inline (`!vault |`, decrypted with drover.yml's `vault:` password).
    #[serde(default)]
    pub vars: IndexMap<String, serde_json::Value>,
    /// YAML files of more vars (relative to the workflow file, inside the site), each
    /// plain or encrypted whole with `ansible-vault encrypt`; over `vars`, later files
    /// winning, as in Ansible.
    #[serde(default)]
    pub vars_files: Vec<String>,
    /// Environment variables for commands run on the controller (drain hooks with
    /// `run_on: controller`, `local:` steps), over the site's `env:`.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// Keep the targets at this version when `drover serve` runs: every `every`, the
    /// daemon checks the targets again and rolls out to the nodes that drifted (not
    /// GOOD) or joined the inventory, under the same window, budgets and leases.
    #[serde(default)]
    pub converge: Option<RawConverge>,
    /// A target drover cannot connect to: `error` (default) makes it ERROR and leaves it
    /// alone; `run` treats it as needing every selected step (no check can say
    /// otherwise) and starts its turn without a connection, so `local:` steps and
    /// controller-side drain hooks run, and the node is connected to at the first step
    /// that runs on it: for a workflow that replaces a dead node (rebuild it with a cloud
    /// CLI, then configure it).
    #[serde(default)]
    pub unreachable: Unreachable,
    /// What to do on each node, in order.
    pub steps: Vec<RawStep>,
}

/// What a workflow does with a target it cannot connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unreachable {
    /// It is ERROR, and nothing runs for it.
    #[default]
    Error,
    /// It needs every selected step, and its turn starts without a connection.
    Run,
}

/// `converge: { every: 1h }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConverge {
    /// How often the daemon re-checks the targets (at least 1s, at most 7 days).
    pub every: HumanDuration,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTargets {
    /// Node names, host lists (`n[001-128]`) or `@group`.
    pub nodes: Vec<String>,
    /// Left out even if selected above.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// Canary selection: exactly one of `nodes` or `size`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCanary {
    /// Node names, host lists or `@group` (such as `@canary`); only targeted nodes count.
    pub nodes: Option<Vec<String>>,
    /// The first N (or N%) of the targets, in inventory order. `0` means no canary phase.
    pub size: Option<Amount>,
    /// How long to wait after the canaries succeed before the bulk starts.
    pub soak: Option<HumanDuration>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStrategy {
    /// Nodes per bulk batch: `5`, `"10%"` of the bulk, or a list whose last entry
    /// repeats (`[1, "10%", "50%"]`). Default `"10%"`.
    pub batch: Option<BatchSizes>,
    /// Most nodes that may be unavailable (drained, rebooting, or already down) at once,
    /// across the targets. Default `"10%"` (at least one node).
    pub max_unavailable: Option<Amount>,
    /// Most nodes of one inventory group unavailable at once (count or % of the group),
    /// by group name, such as a rack that shares a power feed: `{ rack01: 2 }`. The key
    /// `"*"` applies to every group not named.
    #[serde(default)]
    pub max_unavailable_per_group: IndexMap<String, Amount>,
    /// With `scheduler: slurm`: most nodes of each Slurm partition unavailable at once
    /// (count or % of the partition's nodes, all of them, not only the run's). Nodes
    /// Slurm already has out of service (down, drained, draining, failing, in a
    /// maintenance reservation, rebooting, not responding) count; a node in several
    /// partitions counts in each.
    pub max_unavailable_per_partition: Option<Amount>,
    /// Which nodes go first: `inventory` (default) or, with `scheduler: slurm`,
    /// `soonest_idle`: idle nodes first, then those whose running jobs end soonest (by
    /// their time limits), then those with the fewest running jobs (read from `squeue`
    /// when the run is planned).
    #[serde(default)]
    pub order: NodeOrder,
    /// Failures tolerated before the rollout stops for a human. Default: none tolerated.
    #[serde(default)]
    pub failure_budget: RawFailureBudget,
    /// Per-node retries of a failed step, with delay and backoff.
    #[serde(default)]
    pub retries: RawRetries,
    /// For changes that cannot be rolled (a cluster-wide config switch): every target in
    /// one batch, no canary phase.
    #[serde(default)]
    pub all_at_once: bool,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFailureBudget {
    /// Failed nodes tolerated in one batch (count or % of the batch); one more stops.
    pub per_batch: Option<Amount>,
    /// Failed nodes tolerated in the whole run (count or % of the targets); one more stops.
    pub per_run: Option<Amount>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetries {
    /// Attempts after the first failure (default 0).
    pub count: Option<u32>,
    /// Wait before the first retry (default 10s).
    pub delay: Option<HumanDuration>,
    /// Factor the delay grows by after each retry (default 2.0).
    pub backoff: Option<f64>,
    /// Longest wait between retries (default 5m).
    pub max_delay: Option<HumanDuration>,
}

/// The order nodes go in, within the canary and the bulk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeOrder {
    /// Inventory order.
    #[default]
    Inventory,
    /// Least user impact first (Slurm only): idle nodes, then the soonest idle, then the
    /// fewest running jobs.
    SoonestIdle,
}

/// Who reboots a node in a `reboot:` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RebootVia {
    /// The step's `command`, run on the node over SSH.
    #[default]
    Ssh,
    /// Slurm: `scontrol reboot ASAP nextstate=DOWN reason=...` on the controller, so
    /// slurmctld knows the node is rebooting (`sinfo` shows `reboot_issued`) and the
    /// site's `RebootProgram` does it. The node comes back `down`, out of service until
    /// drover's health checks pass and it is resumed.
    Slurm,
}

/// Whether a step is safe on a live node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Safe while the node runs jobs or serves traffic (package installs, most
    /// security updates).
    Hot,
    /// Needs the node drained from its scheduler first (kernel, firmware, reboots).
    Drain,
}

/// A step: a name, exactly one action (`run`, `copy`, `template`, `reboot`, `wait_for`,
/// `local`, `ansible`), and whether it is `hot` or `drain`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub name: String,
    /// A shell command run on the node. Template values are shell-quoted unless piped
    /// through `| raw`.
    pub run: Option<String>,
    /// Upload a file as it is.
    pub copy: Option<RawCopy>,
    /// Upload a file rendered as a template.
    pub template: Option<RawCopy>,
    /// Reboot the node, wait for it to come back, check its health.
    pub reboot: Option<RawReboot>,
    /// Poll a command on the node until it succeeds.
    pub wait_for: Option<RawWaitFor>,
    /// A shell command run on the controller, once per node.
    pub local: Option<String>,
    /// An Ansible playbook (or role) run on the controller against this one node, with
    /// drover's inventory and SSH settings. Without a `check`, the same playbook run
    /// with `--check --diff` is the step's check.
    pub ansible: Option<RawAnsible>,
    /// `hot` (safe on a live node) or `drain` (the node is drained first).
    pub change: Option<Change>,
    /// A command that says whether the node still needs this step: exit 0 = already
    /// done, 1 = needed, anything else = error.
    pub check: Option<String>,
    /// A condition (template expression) that must be true for the step to apply to a
    /// node, e.g. `node.vars.gpu`.
    pub when: Option<String>,
    /// Longest the step may run on one node (default 10m).
    pub timeout: Option<HumanDuration>,
    /// Retries of this step, overriding `strategy.retries.count`.
    pub retries: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCopy {
    /// File on the controller, relative to the workflow file's directory.
    pub src: String,
    /// Absolute path on the node.
    pub dest: String,
    /// Octal file mode as a quoted string, e.g. `"0644"`.
    pub mode: Option<FileMode>,
    /// Owner, as `user` or `user:group`.
    pub owner: Option<String>,
    /// The content is secret (keys, passwords): `--diff` never shows it (only
    /// "content differs (secret)") and never reads the file on the node, and the run log
    /// shows no hash of it (default false).
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReboot {
    /// How long to wait for the node to come back (default 15m).
    pub timeout: Option<HumanDuration>,
    /// Commands that must all succeed on the rebooted node before it is resumed.
    #[serde(default)]
    pub health: Vec<String>,
    /// Time between tries of the health commands, which are tried until they all pass
    /// or `timeout` (counted from the reboot) runs out (default 5s).
    pub health_interval: Option<HumanDuration>,
    /// The command that reboots the node (default `systemctl reboot`). It may return
    /// before the node goes down, or lose its connection as it does. Not with
    /// `via: slurm`.
    pub command: Option<String>,
    /// Who reboots the node: `ssh` (default: `command` on the node) or `slurm`
    /// (`scontrol reboot ASAP nextstate=DOWN` from the controller, with the site's
    /// `RebootProgram`; needs `scheduler: slurm`). Either way the new boot id, read over
    /// SSH, is the proof that the node rebooted, and the health checks run over SSH.
    #[serde(default)]
    pub via: RebootVia,
    /// Prints an id that changes with every boot (default
    /// `cat /proc/sys/kernel/random/boot_id`): how drover knows the node really rebooted.
    pub boot_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWaitFor {
    /// Polled until it exits 0.
    pub command: String,
    /// Time between polls (default 5s).
    pub interval: Option<HumanDuration>,
    /// Give up after this long (default 10m).
    pub timeout: Option<HumanDuration>,
}

/// `ansible-playbook` against one node: exactly one of `playbook` or `role`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAnsible {
    /// A playbook file, relative to the workflow file's directory, inside the site.
    pub playbook: Option<String>,
    /// A role directory, relative to the workflow file's directory, inside the site:
    /// drover runs it in a play of its own (`hosts: all`).
    pub role: Option<String>,
    /// Only tasks with these tags (`--tags`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Not the tasks with these tags (`--skip-tags`).
    #[serde(default)]
    pub skip_tags: Vec<String>,
    /// Extra vars (`-e`, highest precedence in Ansible). String values are templates
    /// (`{{ node.name }}`, `{{ vars.x }}`), rendered as text.
    #[serde(default)]
    pub extra_vars: IndexMap<String, serde_json::Value>,
    /// Whether `--check --diff` is the step's check when it has no `check` (default
    /// true). `false`: an unchecked helper step, for playbooks that cannot tell in
    /// check mode.
    pub check_mode: Option<bool>,
    /// Host vars for this node in the generated inventory, over its inventory `vars`.
    #[serde(default)]
    pub inventory_vars: IndexMap<String, serde_json::Value>,
}
