//! SSH settings that may differ per node: given at site, group and node level, the most
//! specific one wins.

use std::path::PathBuf;

use indexmap::IndexMap;
use serde::Serialize;

/// How to reach one node over SSH, beyond its address. Unset fields are left to the
/// ssh_config (the site's `ssh.config`, else `~/.ssh/config`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SshOptions {
    pub user: Option<String>,
    pub port: Option<u16>,
    /// The only key offered (`IdentitiesOnly=yes`).
    pub identity_file: Option<PathBuf>,
    /// Files of trusted host keys (`UserKnownHostsFile`), besides drover's own.
    pub known_hosts: Vec<PathBuf>,
    /// `ProxyJump`: `host`, `user@host:port`, or a comma-separated chain.
    pub proxy_jump: Option<String>,
    /// `KexAlgorithms`, e.g. `curve25519-sha256` (cheap) or
    /// `sntrup761x25519-sha512@openssh.com` (post-quantum hybrid).
    pub kex_algorithms: Option<String>,
    /// Any other `ssh -o Key=Value`, by key.
    pub options: IndexMap<String, String>,
}

impl SshOptions {
    pub fn is_empty(&self) -> bool {
        *self == SshOptions::default()
    }

    /// `self` with every field `over` sets replaced by it; options merge by key
    /// (case-insensitively, as ssh reads them), `over`'s winning.
    pub fn overlaid(&self, over: &SshOptions) -> SshOptions {
        let mut options = self.options.clone();
        for (k, v) in &over.options {
            options.retain(|old, _| !old.eq_ignore_ascii_case(k));
            options.insert(k.clone(), v.clone());
        }
        SshOptions {
            user: over.user.clone().or_else(|| self.user.clone()),
            port: over.port.or(self.port),
            identity_file: over.identity_file.clone().or_else(|| self.identity_file.clone()),
            known_hosts: if over.known_hosts.is_empty() {
                self.known_hosts.clone()
            } else {
                over.known_hosts.clone()
            },
            proxy_jump: over.proxy_jump.clone().or_else(|| self.proxy_jump.clone()),
            kex_algorithms: over
                .kex_algorithms
                .clone()
                .or_else(|| self.kex_algorithms.clone()),
            options,
        }
    }
}

/// What drover does with a node's host key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum HostKeyPolicy {
    /// The key must already be known (`StrictHostKeyChecking=yes`).
    #[default]
    Strict,
    /// A node seen for the first time has its key recorded in drover's own known_hosts
    /// (under the state dir); from then on it is strict, so a changed key is refused.
    AcceptNew,
    /// Whatever the ssh_config says (`StrictHostKeyChecking` is not passed).
    Config,
}

/// Options an ssh_config or `-o` may not set, because drover relies on its own values.
pub const RESERVED_OPTIONS: &[&str] = &[
    "ControlMaster",
    "ControlPath",
    "ControlPersist",
    "BatchMode",
    "StrictHostKeyChecking",
    "UserKnownHostsFile",
    "KexAlgorithms",
    "ProxyJump",
    "IdentityFile",
    "User",
    "Port",
    "ConnectTimeout",
    "ServerAliveInterval",
    "LogLevel",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_more_specific_settings_win_field_by_field() {
        let site = SshOptions {
            user: Some("root".into()),
            kex_algorithms: Some("curve25519-sha256".into()),
            options: [("Compression".to_string(), "no".to_string())]
                .into_iter()
                .collect(),
            ..SshOptions::default()
        };
        let node = SshOptions {
            user: Some("deploy".into()),
            options: [("compression".to_string(), "yes".to_string())]
                .into_iter()
                .collect(),
            ..SshOptions::default()
        };
        let o = site.overlaid(&node);
        assert_eq!(o.user.as_deref(), Some("deploy"));
        assert_eq!(o.kex_algorithms.as_deref(), Some("curve25519-sha256"));
        assert_eq!(o.options.len(), 1);
        assert_eq!(o.options["compression"], "yes");
    }
}
