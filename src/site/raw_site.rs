//! The site config as written (`drover.yml` at the root of the repository).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::raw_git::RawGit;
use super::raw_hooks::{RawHooks, RawSlackCommands};
use super::raw_ssh::RawSsh;
use crate::store::NoticeKind;
use crate::units::{HumanDuration, SecretRef};
use crate::window::RawWindow;

/// Site-wide settings: where workflows and inventory live, how to drain a node, when
/// work may happen, where state is kept, and how to notify and be reached.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "drover site config (drover.yml)")]
pub struct RawSite {
    /// The inventory file, relative to this file (default `inventory.yml`).
    pub inventory: Option<String>,
    /// Directory of workflow files, relative to this file (default `workflows`).
    pub workflows: Option<String>,
    /// Directory for the run database and per-node logs (default `.drover`).
    pub state_dir: Option<String>,
    /// How nodes are reached (default `ssh`). `local` declares a site whose "nodes" are
    /// simulated on the controller (a demo, a test bed): every command runs on this
    /// machine. Only such a site runs with the local transport without `--allow-local`.
    #[serde(default)]
    pub transport: SiteTransport,
    /// How to take a node out of its scheduler and put it back. Without it, drain steps
    /// cannot run.
    pub drain: Option<RawDrain>,
    /// Maintenance windows by name; workflows refer to them with `window:`.
    #[serde(default)]
    pub windows: IndexMap<String, RawWindow>,
    /// SSH settings.
    #[serde(default)]
    pub ssh: RawSsh,
    /// Environment variables for commands run on the controller (drain hooks with
    /// `run_on: controller`, `local:` steps), like `SLURM_CONF`. A workflow's `env:`
    /// wins over these.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// Directory on each node for drover's step locks (default
    /// `${XDG_RUNTIME_DIR:-$HOME/.cache}/drover`, created with mode 0700). Expanded by
    /// the node's shell: `$VAR` and `${VAR:-default}` may be used.
    pub lock_dir: Option<String>,
    /// How runs claim their nodes, so two runs never work on one node.
    #[serde(default)]
    pub leases: RawLeases,
    /// How a running rollout learns that it was paused or that a node went into
    /// maintenance.
    #[serde(default)]
    pub pause: RawPause,
    /// Where `copy` and `template` steps may read their sources.
    #[serde(default)]
    pub files: RawFiles,
    /// The Ansible Vault password, for vault files (`vars_files:`) and inline `!vault |`
    /// values of workflows, and for `ansible:` steps whose playbooks read vault data.
    #[serde(default)]
    pub vault: Option<RawVault>,
    /// Where to send notifications.
    #[serde(default)]
    pub notifications: RawNotifications,
    /// The daemon's REST API and Slack endpoint.
    pub server: Option<RawServer>,
    /// Slack slash commands (`POST /hooks/slack`): who may do what.
    #[serde(default)]
    pub slack: RawSlackCommands,
    /// Webhooks other systems call (`POST /hooks/git`).
    #[serde(default)]
    pub hooks: RawHooks,
    /// Alarm triggers (`POST /hooks/{name}`): a monitoring system's alarm starts a
    /// workflow on the nodes it names, quiesced around it, at most once per node per
    /// `cooldown`.
    #[serde(default)]
    pub triggers: indexmap::IndexMap<String, super::raw_trigger::RawTrigger>,
    /// Where `drover serve` takes the site from: a git repository it follows.
    pub git: Option<RawGit>,
    /// The workflows the API's node lifecycle operations run (`POST
    /// /api/v1/nodes/commission` and the others), by name.
    #[serde(default)]
    pub lifecycle: RawLifecycle,
}

/// The site's node lifecycle workflows, by workflow name. An operation without one
/// only records the node's new state.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLifecycle {
    /// Brings new nodes into service; on failure the decommission workflow cleans up
    /// every node of the request.
    pub commission: Option<String>,
    /// Takes nodes out of service, best effort.
    pub decommission: Option<String>,
    /// Runs when nodes go into maintenance (a restart or a replacement).
    pub maintenance: Option<String>,
}

/// One API token.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApiToken {
    /// Who the token is, in the audit log and on the runs it starts.
    pub name: String,
    /// `read`: GET only; `operate`: runs, pauses, node lifecycle; `admin`: everything.
    pub role: ApiRole,
    /// The secret, from the environment or a file.
    pub token: SecretRef,
    /// The nodes the token may act on (names, host lists, `@group`); none: every node.
    pub nodes: Option<Vec<String>>,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiRole {
    Read,
    Operate,
    Admin,
}

/// How a site's nodes are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SiteTransport {
    /// Over SSH, one multiplexed connection per node.
    #[default]
    Ssh,
    /// On the controller itself, once per node (`DROVER_NODE` names the node).
    Local,
}

/// Where a hook command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HookHost {
    /// On the machine running drover (for `scontrol`, which talks to slurmctld).
    #[default]
    Controller,
    /// On the node being drained, over SSH.
    Node,
}

/// What to do when a node does not drain in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnDrainTimeout {
    /// Leave the node drained for a human, with a reason.
    #[default]
    Hold,
    /// Resume the node and mark it skipped.
    GiveUp,
}

/// Which scheduler the drain cycle talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DrainScheduler {
    /// Any scheduler, through the `drain`, `drained`, `resume` (and `resumed`) hooks.
    #[default]
    Hooks,
    /// Slurm, through its own commands on the controller (`scontrol`, `sinfo`,
    /// `squeue`): one `sinfo` per poll interval for every waiting node, budgets per
    /// partition that count what Slurm already has down, `order: soonest_idle`. The
    /// hooks are built in; none may be given.
    Slurm,
}

/// How a node is taken out of service for its drain steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DrainMode {
    /// Drain the node at its turn: no new job starts there from then on.
    #[default]
    Drain,
    /// With `scheduler: slurm`: a maintenance reservation for the node from the time
    /// limit of its last running job, so the backfill scheduler keeps it busy with jobs
    /// that end before then; the node is drained once it is idle or the reservation
    /// starts, whichever comes first. The reservation is deleted when the node's turn
    /// ends.
    Reservation,
}

/// Drain hooks: templates with `node`, `workflow`, `run` and `reason` in scope.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDrain {
    /// `hooks` (default): the commands below; `slurm`: Slurm's own commands, no hooks.
    #[serde(default)]
    pub scheduler: DrainScheduler,
    /// `drain` (default) or, with `scheduler: slurm`, `reservation`.
    #[serde(default)]
    pub mode: DrainMode,
    /// Where the hooks run (default `controller`).
    #[serde(default)]
    pub run_on: HookHost,
    /// Asks the scheduler to drain the node (no new jobs; running jobs finish).
    /// Required with `scheduler: hooks`.
    pub drain: Option<String>,
    /// Exits 0 once the node is drained (its jobs have finished); polled. Required with
    /// `scheduler: hooks`.
    pub drained: Option<String>,
    /// Puts the node back into service. Required with `scheduler: hooks`.
    pub resume: Option<String>,
    /// Exits 0 once the scheduler has the node back in service (for Slurm: its state
    /// shows neither `drain` nor `*`, not responding); polled after `resume` like
    /// `drained`, and the node keeps its place in the budgets until it passes. Without
    /// it, the node counts as back once `resume` exits 0.
    pub resumed: Option<String>,
    /// Time between `drained` polls (default 30s). With `scheduler: slurm`, the time
    /// between the one `sinfo` that serves every waiting node.
    pub poll_interval: Option<HumanDuration>,
    /// How long to wait for a node to drain (default 4h).
    pub timeout: Option<HumanDuration>,
    /// What to do when that time runs out (default `hold`).
    #[serde(default)]
    pub on_timeout: OnDrainTimeout,
}

/// What a run does when another run holds one of its nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnLeaseConflict {
    /// Stop with an error naming the other run.
    #[default]
    Refuse,
    /// Wait (up to `wait_timeout`) for the other run to release the nodes.
    Wait,
}

/// Every node a run works on is leased to it in the state database; the run renews its
/// leases while it lives, so a controller that dies frees its nodes after `ttl`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLeases {
    /// How long a lease lasts without renewal (default 5m).
    pub ttl: Option<HumanDuration>,
    /// `refuse` (default) or `wait`.
    #[serde(default)]
    pub on_conflict: OnLeaseConflict,
    /// With `wait`: how long to wait before giving up (default 1h).
    pub wait_timeout: Option<HumanDuration>,
}

/// A pause (`drover pause`, `drover runs pause`) and maintenance (`drover nodes
/// maintenance on`) are kept in the state database; every running rollout reads them
/// this often and starts no new node while paused.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPause {
    /// Time between looks at the state database (default 5s): the longest a rollout
    /// may take to notice a pause, or that it was lifted.
    pub poll_interval: Option<HumanDuration>,
}

/// Files shipped to nodes come from the site directory (after symlinks), so a workflow
/// cannot send `/etc/shadow` of the controller by accident or by review oversight.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFiles {
    /// More directories, relative to this file, that `copy`/`template` sources may come
    /// from (default: none; only the site directory).
    #[serde(default)]
    pub extra_roots: Vec<String>,
}

/// Where `drover serve` sends notifications: every event is recorded in the state
/// database with the state change it reports, then delivered (retried until the sink
/// takes it), so none is lost or sent twice across a restart.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotifications {
    pub slack: Option<RawSlack>,
    /// Generic JSON webhooks, for other chat tools and scripts.
    #[serde(default)]
    pub webhooks: Vec<RawWebhook>,
    /// How often the sender looks for new events (default 1s).
    pub poll_interval: Option<HumanDuration>,
    /// The longest wait between two tries of a sink that fails (default 5m); the first
    /// retry comes after 1s, each next one waits twice as long, and a `Retry-After`
    /// answer is honoured.
    pub max_retry_delay: Option<HumanDuration>,
}

/// Slack: an incoming webhook (one channel, no threads), or a bot token with
/// `chat.postMessage` (a thread per run: the start is posted, the rest reply in it).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSlack {
    /// Incoming-webhook URL: a secret, from the environment or a file.
    pub webhook_url: Option<SecretRef>,
    /// A bot token (`xoxb-...`, scope `chat:write`), from the environment or a file:
    /// with `channel`, messages go through `chat.postMessage`, threaded per run.
    pub bot_token: Option<SecretRef>,
    /// The channel to post to (required with `bot_token`; with a webhook, only if the
    /// webhook allows overriding it).
    pub channel: Option<String>,
    /// Slack's Web API base (default `https://slack.com/api`).
    pub api_url: Option<String>,
    /// The events to post (default: all).
    pub events: Option<Vec<NoticeKind>>,
}

/// A JSON webhook: each event is POSTed as `{id, key, event, run, at, text, data}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    /// Where to POST (http or https).
    pub url: String,
    /// The events to send (default: all).
    pub events: Option<Vec<NoticeKind>>,
    /// With a secret, each request carries `X-Drover-Signature: sha256=HEX`, the
    /// HMAC-SHA256 of the body with it.
    pub secret: Option<SecretRef>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Address to listen on, like `127.0.0.1:8080`.
    pub listen: String,
    /// An admin token named `admin` (the API's tokens with names, roles and scopes are
    /// under `tokens`).
    pub token: Option<SecretRef>,
    /// The API's bearer tokens: each with a name (logged, and recorded on the runs it
    /// starts), a role and an optional node scope. The secret itself is read from the
    /// environment or a file, never written here.
    #[serde(default)]
    pub tokens: Vec<RawApiToken>,
    /// Slack signing secret, to verify slash-command requests.
    pub slack_signing_secret: Option<SecretRef>,
    /// How `POST /api/v1/nodes/discover` probes addresses.
    #[serde(default)]
    pub discover: RawDiscover,
}

/// `server.discover`: the probes of `POST /api/v1/nodes/discover`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDiscover {
    /// Addresses probed at once (default 16).
    pub concurrency: Option<u32>,
    /// How long one probe may take, connection and facts (default 30s); an address
    /// that takes longer is reported unreachable.
    pub timeout: Option<HumanDuration>,
}

/// Exactly one of `password_file`, `env` or `password_script`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVault {
    /// A file holding the password (relative to the site directory).
    pub password_file: Option<String>,
    /// An environment variable holding the password.
    pub env: Option<String>,
    /// A program (relative to the site directory) that prints the password, run
    /// without a shell, like Ansible's executable `--vault-password-file`.
    pub password_script: Option<String>,
}
