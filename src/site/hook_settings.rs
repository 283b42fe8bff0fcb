//! `slack:` and `hooks:` as checked.

use indexmap::IndexMap;

use super::raw_hooks::{RawHooks, RawSlackCommands};
use crate::units::SecretRef;

#[derive(Debug, Clone, Default)]
pub struct SlackCommandSettings {
    pub signing_secret: Option<SecretRef>,
    pub users: Vec<String>,
    pub channels: Vec<String>,
    /// Per user, node selectors (resolved against the inventory in force when used).
    pub scopes: IndexMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct HookSettings {
    pub git_secret: Option<SecretRef>,
}

impl SlackCommandSettings {
    pub fn from_raw(raw: &RawSlackCommands, server_secret: Option<&SecretRef>) -> SlackCommandSettings {
        SlackCommandSettings {
            signing_secret: raw.signing_secret.clone().or_else(|| server_secret.cloned()),
            users: raw.allowed.users.clone(),
            channels: raw.allowed.channels.clone(),
            scopes: raw.scopes.clone(),
        }
    }
}

impl HookSettings {
    pub fn from_raw(raw: &RawHooks) -> HookSettings {
        HookSettings {
            git_secret: raw.git.as_ref().map(|g| g.secret.clone()),
        }
    }
}
