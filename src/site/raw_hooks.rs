//! The daemon's incoming hooks as written: Slack slash commands (`slack:`) and the git
//! push webhook (`hooks:`).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::units::SecretRef;

/// Slash commands at `POST /hooks/slack`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSlackCommands {
    /// The Slack app's signing secret (default: `server.slack_signing_secret`). Without
    /// one, `/hooks/slack` answers 404.
    pub signing_secret: Option<SecretRef>,
    /// Who may run the mutating commands (`run`, `pause`, `resume`, `abort`,
    /// `maintenance`); `status`, `nodes` and `help` are open to the workspace.
    #[serde(default)]
    pub allowed: RawSlackAllowed,
    /// Per Slack user id, the nodes they may act on (node names, host lists, `@group`);
    /// a user without an entry may act on every node. Acting on a node of an HA group
    /// needs every member of the group in scope.
    #[serde(default)]
    pub scopes: IndexMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSlackAllowed {
    /// Slack user ids (`U0123456`). Empty: nobody may mutate.
    #[serde(default)]
    pub users: Vec<String>,
    /// Channel ids the mutating commands are taken from (empty: any channel).
    #[serde(default)]
    pub channels: Vec<String>,
}

/// Webhooks other systems call.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHooks {
    /// `POST /hooks/git`: a push makes the git watcher fetch at once.
    pub git: Option<RawGitHook>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGitHook {
    /// The webhook's secret: GitHub, Gitea and Forgejo sign the body with it
    /// (`X-Hub-Signature-256`, `X-Gitea-Signature`); GitLab sends it as `X-Gitlab-Token`.
    pub secret: SecretRef,
}
