//! The API's request and response bodies, from which its OpenAPI document is
//! generated. Records the store already defines (runs, nodes of a run) are passed as
//! they serialize there (`drover runs show --json` prints the same).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /runs`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunStartRequest {
    /// The workflow's name.
    pub workflow: String,
    /// Nodes to limit the run to (names, host lists, `@group`, comma-separated), like
    /// `--limit`.
    #[serde(default)]
    pub limit: Option<String>,
    /// Steps to run by tag, like `--tags`.
    #[serde(default)]
    pub tags: Option<String>,
    /// Variables over the workflow's (these win).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub extra_vars: Option<serde_json::Map<String, serde_json::Value>>,
    /// Plan only: the response is the plan, nothing runs.
    #[serde(default)]
    pub dry_run: bool,
}

/// A run that was started.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct RunStarted {
    pub run_id: String,
    pub workflow: String,
}

/// A dry run's answer.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct DryRunPlan {
    pub workflow: String,
    /// The plan, as `drover run --dry-run --json` prints it.
    #[schema(value_type = Object)]
    pub plan: serde_json::Value,
}

/// `POST /runs/{id}/abort`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbortRequest {
    /// Also abort the steps in flight (a node may be left drained, and is then held
    /// with the reason). Without it the nodes in flight finish their cycle first.
    #[serde(default)]
    pub force: bool,
}

/// The answer to a run's abort, pause or resume.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct RunControlled {
    pub run_id: String,
    /// `aborting`, `paused`, `resumed`.
    pub action: String,
}

/// `GET /runs` (filters).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    /// `running`, `succeeded`, `completed_with_failures`, `stopped`, `interrupted`,
    /// `cancelled`.
    pub state: Option<String>,
    pub workflow: Option<String>,
}

/// `GET /runs`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct RunList {
    /// Newest first, as `drover runs list --json`.
    #[schema(value_type = Vec<Object>)]
    pub runs: Vec<serde_json::Value>,
}

/// `POST /pause`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    pub reason: Option<String>,
}

/// `GET /status`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct DaemonStatus {
    /// The git commit in force, when the site is followed in git.
    pub commit: Option<String>,
    /// The last commit the watcher looked at (accepted or not).
    pub last_seen_commit: Option<String>,
    /// Commits the watcher refused, newest first, with their diagnostics.
    #[schema(value_type = Vec<Object>)]
    pub rejected_commits: Vec<serde_json::Value>,
    /// The pause of every run, if set: by whom, since when, why.
    #[schema(value_type = Object)]
    pub paused: Option<serde_json::Value>,
    /// Pauses of single runs.
    #[schema(value_type = Vec<Object>)]
    pub paused_runs: Vec<serde_json::Value>,
    /// Every window: open or not, and when that changes.
    pub windows: Vec<WindowState>,
    /// The rollouts in flight.
    pub active_runs: Vec<RunStarted>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct WindowState {
    pub name: String,
    pub open: bool,
    /// When it closes (open) or next opens (closed), RFC 3339.
    pub next_change: Option<String>,
}

/// `GET /nodes`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct NodesQuery {
    /// A subset: names and host lists, comma-separated (`n[001-004],gpu1`). Empty: every
    /// node. A name the inventory does not have is ignored.
    pub names: Option<String>,
}

/// `GET /nodes`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct NodeList {
    pub nodes: Vec<NodeInfo>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct NodeInfo {
    pub name: String,
    /// `host`, `host:port` or `user@host:port`.
    pub address: String,
    pub groups: Vec<String>,
    pub ha_group: Option<String>,
    /// `discovered`, `commissioned`, `maintenance`, `decommissioned`, or `inventory`
    /// (no lifecycle state recorded: simply in the inventory). An inventory node with no
    /// state that discovery reached at its address is `discovered`.
    pub lifecycle: String,
    pub maintenance: Option<MaintenanceInfo>,
    /// For each workflow, the version (and commit) its last successful run on the node
    /// was at.
    pub workflows: Vec<NodeWorkflow>,
    /// False for a host discovery reached that the inventory does not have (named by
    /// its address; add it to the inventory to commission it).
    pub in_inventory: bool,
    /// What discovery recorded at this node's address, if it probed it.
    pub discovered: Option<DiscoveredFacts>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct MaintenanceInfo {
    pub reason: Option<String>,
    pub by: String,
    pub since: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct NodeWorkflow {
    pub workflow: String,
    pub version: u32,
    pub commit: Option<String>,
    pub run_id: String,
}

/// `POST /nodes/commission` and `/nodes/decommission`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodesRequest {
    /// Node names or host lists; every one must be in the inventory.
    pub nodes: Vec<String>,
    /// Variables over the lifecycle workflow's (these win).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub extra_vars: Option<serde_json::Map<String, serde_json::Value>>,
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    On,
    Off,
}

/// `POST /nodes/maintenance`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequest {
    pub nodes: Vec<String>,
    pub state: Switch,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub extra_vars: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A lifecycle operation's answer.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct LifecycleStarted {
    /// `commission`, `decommission`, `maintenance`.
    pub operation: String,
    pub nodes: Vec<String>,
    /// The run of the lifecycle workflow, when the site names one.
    pub run_id: Option<String>,
    /// The state the nodes are in now, or will be when the run ends.
    pub state: String,
}

/// `POST /nodes/discover`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoverRequest {
    /// `host`, `host:port`, `user@host:port`; the host a DNS name, an IPv4 literal or
    /// an IPv6 literal (`[v6]:port` with a port). An empty list, or any address that
    /// is not one, refuses the whole request (422 listing every bad one), and nothing
    /// is probed.
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct DiscoverResult {
    /// One per distinct address, in the request's order.
    pub results: Vec<Discovered>,
}

/// How the probe of one address ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiscoverStatus {
    /// Reached: recorded as `discovered` with its facts and host key.
    Discovered,
    /// No connection, no login, no answer in time, or the facts command failed.
    Unreachable,
    /// ssh refused the host's key (not known under `host_key_policy: strict`, or
    /// changed): nothing recorded.
    HostKeyRejected,
}

/// One address probed.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct Discovered {
    /// The address as recorded (`[user@]host[:port]`).
    pub address: String,
    pub status: DiscoverStatus,
    /// Reached and recorded as `discovered` (`status` is `discovered`).
    pub ok: bool,
    pub hostname: Option<String>,
    pub cpus: Option<u32>,
    pub memory_mib: Option<u64>,
    /// `PRETTY_NAME` of the host's `/etc/os-release`.
    pub os: Option<String>,
    /// `uname -sr`.
    pub kernel: Option<String>,
    /// `uname -m`.
    pub arch: Option<String>,
    /// The host key ssh checked or recorded (`type base64`, as in known_hosts).
    pub host_key: Option<String>,
    /// The inventory node at this address, if there is one.
    pub node: Option<String>,
    /// For a host not in the inventory: its line for `inventory.yml` (under `nodes:`),
    /// the way it becomes a node that `POST /nodes/commission` accepts.
    pub inventory_entry: Option<String>,
    /// Why it could not be reached (`status` is not `discovered`).
    pub error: Option<String>,
}

/// What discovery recorded about a host (`GET /nodes`).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct DiscoveredFacts {
    pub address: String,
    pub hostname: Option<String>,
    pub cpus: Option<u32>,
    pub memory_mib: Option<u64>,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub arch: Option<String>,
    pub host_key: Option<String>,
    /// The token that probed it.
    pub by: String,
    /// When, RFC 3339.
    pub since: String,
}
