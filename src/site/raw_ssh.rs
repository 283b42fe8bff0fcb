//! SSH settings as written: the site's `ssh:` block, its `groups:`, and a node's own
//! `ssh:` in the inventory.

use std::path::PathBuf;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::diag::Problem;
use crate::inventory::{check_host, check_user};
use crate::transport::{HostKeyPolicy, RESERVED_OPTIONS, SshOptions};
use crate::units::HumanDuration;
use crate::yaml::Path;

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSsh {
    /// Most nodes worked on at once (default 200).
    pub forks: Option<u32>,
    /// Most ssh masters kept open from a node's check to its turn, for nodes the run
    /// will change (default: `forks`), so such a node connects once. The first nodes in
    /// the plan's order keep theirs; the others reconnect at their turn. `0`: every
    /// master is closed after its check.
    pub keep_masters: Option<u32>,
    /// Time to establish a connection (default 10s).
    pub connect_timeout: Option<HumanDuration>,
    /// An ssh_config file to use instead of `~/.ssh/config` (optional: every setting
    /// below can be given here instead).
    pub config: Option<String>,
    /// How long an idle ssh master stays open (`ControlPersist`, default 5m). drover
    /// reopens a master that has gone, so this only bounds what a killed controller
    /// leaves running.
    pub control_persist: Option<HumanDuration>,
    /// `ServerAliveInterval` (default 15s): a dead node is noticed after three missed
    /// replies.
    pub server_alive_interval: Option<HumanDuration>,
    /// `strict` (default): a node's host key must be known. `accept-new`: a node seen
    /// for the first time has its key recorded in drover's own known_hosts
    /// (`<state_dir>/known_hosts`), strict from then on. `config`: the ssh_config's
    /// `StrictHostKeyChecking` decides.
    #[serde(default)]
    pub host_key_policy: RawHostKeyPolicy,
    /// Login user of every node (groups and nodes may override this and what follows).
    pub user: Option<String>,
    /// Port of every node.
    pub port: Option<u16>,
    /// The private key to offer, the only one (`IdentitiesOnly=yes`).
    pub identity_file: Option<String>,
    /// known_hosts files to trust (one file or a list), besides drover's own.
    pub known_hosts: Option<OneOrMany>,
    /// Jump host(s): `bastion`, `user@bastion:2222`, `a,b` (first hop first). Each hop
    /// is reached with the node's own identity_file, known_hosts, host key policy,
    /// kex_algorithms and options.
    pub proxy_jump: Option<String>,
    /// Key exchange algorithms, as ssh's `KexAlgorithms` (see the groups' setting).
    pub kex_algorithms: Option<String>,
    /// Any other ssh option, as for `ssh -o Key=Value`.
    #[serde(default)]
    pub options: IndexMap<String, String>,
    /// Settings for the nodes of inventory groups, by group name; a group later in this
    /// map wins over an earlier one, a node's own `ssh:` over both.
    #[serde(default)]
    pub groups: IndexMap<String, RawSshOptions>,
}

impl RawSsh {
    /// The site-level node settings.
    pub fn defaults(&self) -> RawSshOptions {
        RawSshOptions {
            user: self.user.clone(),
            port: self.port,
            identity_file: self.identity_file.clone(),
            known_hosts: self.known_hosts.clone(),
            proxy_jump: self.proxy_jump.clone(),
            kex_algorithms: self.kex_algorithms.clone(),
            options: self.options.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RawHostKeyPolicy {
    #[default]
    Strict,
    AcceptNew,
    Config,
}

impl From<RawHostKeyPolicy> for HostKeyPolicy {
    fn from(p: RawHostKeyPolicy) -> Self {
        match p {
            RawHostKeyPolicy::Strict => HostKeyPolicy::Strict,
            RawHostKeyPolicy::AcceptNew => HostKeyPolicy::AcceptNew,
            RawHostKeyPolicy::Config => HostKeyPolicy::Config,
        }
    }
}

/// How to reach nodes: at site level, for a group, or for one node. Relative paths are
/// relative to the site directory.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSshOptions {
    /// Login user.
    pub user: Option<String>,
    /// Port.
    pub port: Option<u16>,
    /// The private key to offer, the only one (`IdentitiesOnly=yes`).
    pub identity_file: Option<String>,
    /// known_hosts files to trust (one file or a list), besides drover's own.
    pub known_hosts: Option<OneOrMany>,
    /// Jump host(s): `bastion`, `user@bastion:2222`, `a,b` (first hop first). Each hop
    /// is reached with the node's own identity_file, known_hosts, host key policy,
    /// kex_algorithms and options.
    pub proxy_jump: Option<String>,
    /// Key exchange algorithms, as ssh's `KexAlgorithms`: `curve25519-sha256` costs the
    /// controller about a fifth of the CPU per connection (16 ms against 80 ms, measured
    /// on OpenSSH 9.2) of the post-quantum hybrid `sntrup761x25519-sha512@openssh.com`
    /// that OpenSSH 9 prefers, and gives up the hybrid's protection of recorded sessions.
    pub kex_algorithms: Option<String>,
    /// Any other ssh option, as for `ssh -o Key=Value`.
    #[serde(default)]
    pub options: IndexMap<String, String>,
}

/// One path or a list of them.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl RawSshOptions {
    /// The checked settings; `root` resolves relative paths.
    pub fn check(&self, path: &Path, root: &std::path::Path) -> Result<SshOptions, Vec<Problem>> {
        let mut p = Vec::new();
        if let Some(u) = &self.user
            && let Err(m) = check_user(u)
        {
            p.push(Problem::value(path.key("user"), m));
        }
        if self.port == Some(0) {
            p.push(Problem::value(path.key("port"), "port 0 is not a port"));
        }
        if let Some(j) = &self.proxy_jump {
            let bad = j.split(',').find(|hop| {
                let hop = hop
                    .rsplit_once('@')
                    .map_or(*hop, |(u, h)| if check_user(u).is_err() { "-" } else { h });
                let host = hop
                    .rsplit_once(':')
                    .map_or(hop, |(h, port)| if port.parse::<u16>().is_ok() { h } else { "-" });
                check_host(host).is_err()
            });
            if let Some(bad) = bad {
                p.push(Problem::value(
                    path.key("proxy_jump"),
                    format!("invalid jump host `{bad}`: expected `host`, `user@host` or `user@host:port`, comma-separated"),
                ));
            }
        }
        if let Some(k) = &self.kex_algorithms
            && (k.is_empty()
                || !k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-@.,+^".contains(c)))
        {
            p.push(Problem::value(
                path.key("kex_algorithms"),
                format!("invalid kex_algorithms `{k}`: expected algorithm names separated by commas, like `curve25519-sha256`"),
            ));
        }
        for (k, v) in &self.options {
            let at = path.key("options").key(k.clone());
            if let Some(r) = RESERVED_OPTIONS.iter().find(|r| r.eq_ignore_ascii_case(k)) {
                p.push(
                    Problem::key(at, format!("`{k}` cannot be set in `options`")).with_help(reserved_help(r)),
                );
            } else if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
                p.push(Problem::key(at, format!("invalid ssh option name `{k}`")));
            } else if v.contains(['\n', '\0']) {
                p.push(Problem::value(at, "an ssh option value is one line"));
            }
        }
        for (key, file) in self.identity_file.iter().map(|f| ("identity_file", f)).chain(
            self.known_hosts
                .iter()
                .flat_map(|k| k.iter().map(|f| ("known_hosts", f))),
        ) {
            if file.is_empty() || file.contains(['\n', '\0', '"']) {
                p.push(Problem::value(
                    path.key(key),
                    format!("invalid file name `{file}`"),
                ));
            }
        }
        if !p.is_empty() {
            return Err(p);
        }
        let resolve = |f: &String| -> PathBuf { root.join(f) };
        Ok(SshOptions {
            user: self.user.clone(),
            port: self.port,
            identity_file: self.identity_file.as_ref().map(resolve),
            known_hosts: self
                .known_hosts
                .iter()
                .flat_map(|k| k.iter().map(resolve))
                .collect(),
            proxy_jump: self.proxy_jump.clone(),
            kex_algorithms: self.kex_algorithms.clone(),
            options: self.options.clone(),
        })
    }
}

impl OneOrMany {
    fn iter(&self) -> impl Iterator<Item = &String> {
        match self {
            OneOrMany::One(s) => std::slice::from_ref(s).iter(),
            OneOrMany::Many(v) => v.iter(),
        }
    }
}

fn reserved_help(option: &str) -> String {
    match option {
        "StrictHostKeyChecking" | "UserKnownHostsFile" => "use `host_key_policy` and `known_hosts`".into(),
        "KexAlgorithms" => "use `kex_algorithms`".into(),
        "ProxyJump" => "use `proxy_jump`".into(),
        "IdentityFile" => "use `identity_file`".into(),
        "User" => "use `user`".into(),
        "Port" => "use `port`".into(),
        "ConnectTimeout" => "use `connect_timeout`".into(),
        "ServerAliveInterval" => "use `server_alive_interval`".into(),
        "ControlPersist" => "use `control_persist`".into(),
        _ => format!("drover manages `{option}` itself"),
    }
}
