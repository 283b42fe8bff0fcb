//! An alarm trigger as written (`triggers:` in drover.yml): a named webhook that starts
//! a workflow on the nodes an alarm names, quiescing them around it.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::units::{HumanDuration, SecretRef};
use crate::workflow::RawStep;

/// `POST /hooks/{name}` from a monitoring system.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTrigger {
    /// The workflow to run on the alarm's nodes (with the site in force); the nodes
    /// must be among its targets.
    pub workflow: String,
    /// The shared secret. The request carries `X-Drover-Timestamp` (unix seconds) and
    /// `X-Drover-Signature: v0=HEX`, the HMAC-SHA256 of `v0:{timestamp}:{body}` (Slack's
    /// scheme), or, for senders that cannot sign, `Authorization: Bearer SECRET`.
    pub secret: SecretRef,
    /// Where the alarm's JSON body names its nodes: a JSON Pointer (RFC 6901, such as
    /// `/alert/host`) to a string (node names or host lists, separated by commas or
    /// spaces) or an array of them.
    pub nodes_from: String,
    /// After an alarm started a run on a node, further alarms of this trigger for that
    /// node within this time start nothing (default 10m; `0s`: only coalescing).
    pub cooldown: Option<HumanDuration>,
    /// Steps around the workflow's, on each node.
    #[serde(default)]
    pub quiesce: RawQuiesce,
}

/// Per-node steps around the workflow's, written like workflow steps.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawQuiesce {
    /// Run first, before the workflow's steps; `change: hot` ones run before the node is
    /// drained: move a virtual IP away, stop taking work.
    #[serde(default)]
    pub before: Vec<RawStep>,
    /// Run after the workflow's steps succeeded (before the node is resumed, when it was
    /// drained): activate it again.
    #[serde(default)]
    pub after: Vec<RawStep>,
    /// Run on a node whose steps failed for good (after retries), before it is held:
    /// detach it, notify, mark it for replacement. The node is then put into
    /// maintenance with the reason, so nothing automatic touches it until a human does.
    #[serde(default)]
    pub on_failure: Vec<RawStep>,
}
