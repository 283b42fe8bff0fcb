//! The inventory file as written (`inventory.yml`).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::site::RawSshOptions;

/// The nodes drover may act on, how they are grouped, and which ones are special.
///
/// Everywhere a list of nodes is accepted, each entry is a node name, a Slurm-style
/// host list (`n[001-128]`, `gpu[1-4,7]`) or `@group` for a group or named list.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "drover inventory")]
pub struct RawInventory {
    /// Connection settings and vars every node starts from.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// Nodes by name or host list. A host list entry defines every node it names, with
    /// the same settings; `host` may only be set on an entry that names one node (it
    /// defaults to the node name).
    pub nodes: IndexMap<String, Option<RawNode>>,
    /// Named groups of nodes. Entries are node names, host lists or `@other-group`.
    #[serde(default)]
    pub groups: IndexMap<String, Vec<String>>,
    /// Nodes a rollout does first, before any other node (`@canary`).
    #[serde(default)]
    pub canary: Vec<String>,
    /// Nodes no run may ever touch (management, database, scheduler controllers). A node
    /// here that is also on `whitelist` or `canary` is a configuration error.
    #[serde(default)]
    pub blacklist: Vec<String>,
    /// If given, the only nodes any run may touch.
    #[serde(default)]
    pub whitelist: Option<Vec<String>>,
    /// Groups of nodes that run the same service: a rollout never takes more than
    /// `max_unavailable` of them down at once. A node is in at most one HA group.
    #[serde(default)]
    pub ha_groups: IndexMap<String, RawHaGroup>,
}

/// Settings every node inherits unless it sets its own.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// SSH user (default: your ssh configuration decides).
    pub user: Option<String>,
    /// SSH port (default: 22, or your ssh configuration).
    pub port: Option<u16>,
    /// Vars available to templates as `node.vars`.
    #[serde(default)]
    pub vars: IndexMap<String, serde_json::Value>,
}

/// One node, or every node of a host list.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    /// Address to connect to (host name or IP); defaults to the node name. On a host
    /// list entry it is a pattern: `{{ name }}` is the node's name and `{{ index }}` its
    /// number (`n[001-128]: { host: "10.1.0.{{ index }}" }` gives n007 `10.1.0.7`).
    pub host: Option<String>,
    /// SSH port.
    pub port: Option<u16>,
    /// SSH user.
    pub user: Option<String>,
    /// Vars for templates (`node.vars.rack`); merged over `defaults.vars`.
    #[serde(default)]
    pub vars: IndexMap<String, serde_json::Value>,
    /// SSH settings of these nodes, over their groups' (`ssh.groups` in the site config)
    /// and the site's.
    pub ssh: Option<RawSshOptions>,
    /// The hypervisor this VM runs on: VMs are changed before their hypervisor.
    pub hosted_on: Option<String>,
    /// This node's HA group, declared on the node itself. Every member must declare the
    /// same group with the same members.
    pub ha_group: Option<RawNodeHa>,
}

/// An HA group membership declared on a node.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNodeHa {
    /// The group's name.
    pub name: String,
    /// All members of the group, this node included.
    pub members: Vec<String>,
}

/// An HA group declared at the top level.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHaGroup {
    /// The members: names, host lists or `@group`.
    pub members: Vec<String>,
    /// How many members may be unavailable at once (default 1).
    pub max_unavailable: Option<u32>,
}
