//! The checked site config.

use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;

use super::drain_hooks::DrainHooks;
use super::git_settings::GitSettings;
use super::hook_settings::{HookSettings, SlackCommandSettings};
use super::notification_settings::NotificationSettings;
use super::raw_site::{ApiRole, OnLeaseConflict, RawSite, SiteTransport};
use crate::diag::Problem;
use crate::template::TemplateEngine;
use crate::transport::{
    DEFAULT_CONTROL_PERSIST, DEFAULT_SERVER_ALIVE, HostKeyPolicy, LockDir, SshOptions, SshSetup,
};
use crate::units::{SecretRef, limits};
use crate::window::Window;
use crate::yaml::Path;

#[derive(Debug, Clone)]
pub struct Site {
    /// The directory holding drover.yml; relative paths are resolved against it.
    pub root: PathBuf,
    pub inventory: PathBuf,
    pub workflows: PathBuf,
    pub state_dir: PathBuf,
    /// How nodes are reached by default; `local` also permits the local transport.
    pub transport: SiteTransport,
    pub drain: Option<DrainHooks>,
    pub windows: IndexMap<String, Window>,
    pub ssh: SshSettings,
    /// Where step locks live on the nodes.
    pub lock_dir: LockDir,
    /// Environment of controller-side commands.
    pub env: IndexMap<String, String>,
    pub leases: LeaseSettings,
    /// How often a running rollout reads the pauses and the nodes in maintenance.
    pub pause_poll: Duration,
    /// Where `drover serve` sends the outbox's events.
    pub notifications: NotificationSettings,
    /// Slack slash commands: the signing secret, who may mutate, node scopes.
    pub slack_commands: SlackCommandSettings,
    /// Webhooks other systems call.
    pub hooks: HookSettings,
    pub server: Option<ServerSettings>,
    /// Where `drover serve` takes the site from.
    pub git: Option<GitSettings>,
    /// The workflows of the API's node lifecycle operations.
    pub lifecycle: LifecycleWorkflows,
    /// Canonical directories `copy`/`template` sources must be inside: the site
    /// directory, then `files.extra_roots`.
    pub file_roots: Vec<PathBuf>,
    /// Where the Ansible Vault password comes from.
    pub vault: Option<crate::vault::VaultPassword>,
}

#[derive(Debug, Clone)]
pub struct SshSettings {
    pub forks: u32,
    /// Masters kept from the check to the node's turn (`ssh.keep_masters`).
    pub keep_masters: u32,
    pub connect_timeout: Duration,
    pub config: Option<PathBuf>,
    pub control_persist: Duration,
    pub server_alive_interval: Duration,
    pub host_keys: HostKeyPolicy,
    /// Site-level node settings.
    pub defaults: SshOptions,
    /// Settings of inventory groups, in file order (a later one wins).
    pub groups: Vec<(String, SshOptions)>,
}

#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub ttl: Duration,
    pub on_conflict: OnLeaseConflict,
    pub wait_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// Every API token: `server.token` (as `admin`, role admin) and `server.tokens`.
    pub tokens: Vec<ApiTokenSettings>,
    pub slack_signing_secret: Option<SecretRef>,
    pub discover: DiscoverSettings,
}

/// `server.discover`: how many addresses `POST /nodes/discover` probes at once, and how
/// long one probe (connection and facts) may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscoverSettings {
    pub concurrency: u32,
    pub timeout: Duration,
}

impl Default for DiscoverSettings {
    fn default() -> Self {
        DiscoverSettings {
            concurrency: 16,
            timeout: Duration::from_secs(30),
        }
    }
}

/// One API token as configured: the secret is read when the daemon starts.
#[derive(Debug, Clone)]
pub struct ApiTokenSettings {
    pub name: String,
    pub role: ApiRole,
    pub secret: SecretRef,
    /// Node selectors (names, host lists, `@group`); `None`: every node.
    pub nodes: Option<Vec<String>>,
}

/// `lifecycle:`: which workflow each node lifecycle operation runs.
#[derive(Debug, Clone, Default)]
pub struct LifecycleWorkflows {
    pub commission: Option<String>,
    pub decommission: Option<String>,
    pub maintenance: Option<String>,
}

impl Site {
    /// How the ssh transport reaches this site's nodes. `log_kex` records the negotiated
    /// key exchange (`check -v`).
    pub fn ssh_setup(&self, log_kex: bool) -> SshSetup {
        let s = &self.ssh;
        SshSetup {
            config_file: s.config.clone(),
            connect_timeout: s.connect_timeout,
            control_persist: s.control_persist,
            server_alive_interval: s.server_alive_interval,
            host_keys: s.host_keys,
            known_hosts: self.state_dir.join("known_hosts"),
            root: self.root.clone(),
            defaults: s.defaults.clone(),
            groups: s.groups.clone(),
            log_kex,
        }
    }

    pub fn from_raw(raw: &RawSite, root: &FsPath, templates: &TemplateEngine) -> Result<Site, Vec<Problem>> {
        let mut p = Vec::new();
        let top = Path::root();
        let inventory = root.join(raw.inventory.as_deref().unwrap_or("inventory.yml"));

        let drain = raw.drain.as_ref().and_then(|d| {
            DrainHooks::from_raw(d, templates)
                .map_err(|e| p.extend(e.into_iter().map(|x| x.under(&top.key("drain")))))
                .ok()
        });

        let mut windows = IndexMap::new();
        for (name, w) in &raw.windows {
            match Window::from_raw(w) {
                Ok(w) => {
                    windows.insert(name.clone(), w);
                }
                Err(e) => p.extend(
                    e.into_iter()
                        .map(|x| x.under(&top.key("windows").key(name.clone()))),
                ),
            }
        }

        let forks = raw.ssh.forks.unwrap_or(200);
        limits::FORKS.check_count(top.key("ssh").key("forks"), forks.into(), &mut p);
        let keep_masters = raw.ssh.keep_masters.unwrap_or(forks);
        limits::KEEP_MASTERS.check_count(top.key("ssh").key("keep_masters"), keep_masters.into(), &mut p);
        if let Some(d) = raw.ssh.connect_timeout {
            limits::SSH_CONNECT_TIMEOUT.check_duration(
                top.key("ssh").key("connect_timeout"),
                d.get(),
                &mut p,
            );
        }
        if let Some(d) = raw.leases.wait_timeout {
            limits::LEASE_WAIT_TIMEOUT.check_duration(top.key("leases").key("wait_timeout"), d.get(), &mut p);
        }
        if forks == 0 {
            p.push(Problem::value(
                top.key("ssh").key("forks"),
                "`forks: 0` would never start a node",
            ));
        }

        let ssh_path = top.key("ssh");
        let defaults = raw
            .ssh
            .defaults()
            .check(&ssh_path, root)
            .map_err(|e| p.extend(e))
            .unwrap_or_default();
        let mut groups = Vec::new();
        for (name, g) in &raw.ssh.groups {
            match g.check(&ssh_path.key("groups").key(name.clone()), root) {
                Ok(o) => groups.push((name.clone(), o)),
                Err(e) => p.extend(e),
            }
        }
        let control_persist = raw
            .ssh
            .control_persist
            .map_or(DEFAULT_CONTROL_PERSIST, |d| d.get());
        let server_alive_interval = raw
            .ssh
            .server_alive_interval
            .map_or(DEFAULT_SERVER_ALIVE, |d| d.get());
        for (key, d, limit) in [
            ("control_persist", control_persist, limits::SSH_CONTROL_PERSIST),
            (
                "server_alive_interval",
                server_alive_interval,
                limits::SSH_SERVER_ALIVE_INTERVAL,
            ),
        ] {
            if d < Duration::from_secs(1) {
                p.push(Problem::value(
                    ssh_path.key(key),
                    format!(
                        "`{key}: {}` is out of range: expected 1s to 24h",
                        humantime::format_duration(d)
                    ),
                ));
            }
            limit.check_duration(ssh_path.key(key), d, &mut p);
        }

        let env = super::check_env(&raw.env, &top.key("env"))
            .map_err(|e| p.extend(e))
            .unwrap_or_default();
        let lock_dir = match raw.lock_dir.as_deref().map(LockDir::parse).transpose() {
            Ok(d) => d.unwrap_or_default(),
            Err(m) => {
                p.push(Problem::value(top.key("lock_dir"), m));
                LockDir::default()
            }
        };

        let server = raw.server.as_ref().and_then(|s| match s.listen.parse::<SocketAddr>() {
            Ok(listen) => Some(ServerSettings {
                listen,
                tokens: s
                    .token
                    .iter()
                    .map(|t| ApiTokenSettings {
                        name: "admin".to_string(),
                        role: ApiRole::Admin,
                        secret: t.clone(),
                        nodes: None,
                    })
                    .chain(s.tokens.iter().map(|t| ApiTokenSettings {
                        name: t.name.clone(),
                        role: t.role,
                        secret: t.token.clone(),
                        nodes: t.nodes.clone(),
                    }))
                    .collect(),
                slack_signing_secret: s.slack_signing_secret.clone(),
                discover: discover_settings(&s.discover, &top.key("server").key("discover"), &mut p),
            }),
            Err(_) => {
                p.push(Problem::value(
                    top.key("server").key("listen"),
                    format!("invalid listen address `{}`: expected an IP address and port, like `127.0.0.1:8080`", s.listen),
                ));
                None
            }
        });

        let git = raw
            .git
            .as_ref()
            .and_then(|g| GitSettings::from_raw(g, root).map_err(|e| p.extend(e)).ok());

        let ttl = raw.leases.ttl.map_or(Duration::from_secs(300), |d| d.get());
        limits::LEASE_TTL.check_duration(top.key("leases").key("ttl"), ttl, &mut p);
        if ttl < Duration::from_secs(10) {
            p.push(
                Problem::value(
                    top.key("leases").key("ttl"),
                    format!(
                        "a lease ttl of {} is shorter than 10s",
                        humantime::format_duration(ttl)
                    ),
                )
                .with_help(
                    "a run renews its leases every ttl/3; a short ttl lets a slow controller lose its nodes",
                ),
            );
        }

        let pause_poll = raw
            .pause
            .poll_interval
            .map_or(Duration::from_secs(5), |d| d.get());
        limits::PAUSE_POLL_INTERVAL.check_duration(top.key("pause").key("poll_interval"), pause_poll, &mut p);
        if pause_poll.is_zero() {
            p.push(Problem::value(
                top.key("pause").key("poll_interval"),
                "a poll interval of zero would busy-loop the state database",
            ));
        }

        // The site directory and the workflow directory it names (which may lie outside
        // it, as in the shipped example) are roots; anything else must be listed.
        let workflows = root.join(raw.workflows.as_deref().unwrap_or("workflows"));
        let mut file_roots: Vec<PathBuf> = Vec::new();
        for dir in [root, workflows.as_path()] {
            if let Ok(dir) = std::fs::canonicalize(dir)
                && !file_roots.iter().any(|r| dir.starts_with(r))
            {
                file_roots.push(dir);
            }
        }
        for (i, r) in raw.files.extra_roots.iter().enumerate() {
            match std::fs::canonicalize(root.join(r)) {
                Ok(dir) if dir.is_dir() => file_roots.push(dir),
                Ok(dir) => p.push(Problem::value(
                    top.key("files").key("extra_roots").index(i),
                    format!("`{r}` ({}) is not a directory", dir.display()),
                )),
                Err(e) => p.push(Problem::value(
                    top.key("files").key("extra_roots").index(i),
                    format!("cannot use `{r}` as a file root: {e}"),
                )),
            }
        }

        let notifications =
            NotificationSettings::from_raw(&raw.notifications, &top.key("notifications"), &mut p);
        let vault = raw.vault.as_ref().and_then(|v| {
            let at = top.key("vault");
            match (&v.password_file, &v.env, &v.password_script) {
                (Some(f), None, None) => Some(crate::vault::VaultPassword::File(root.join(f))),
                (None, Some(e), None) => Some(crate::vault::VaultPassword::Env(e.clone())),
                (None, None, Some(s)) => Some(crate::vault::VaultPassword::Script(root.join(s))),
                _ => {
                    p.push(
                        Problem::value(at, "`vault` takes exactly one of `password_file`, `env`, `password_script`")
                            .with_help("`vault: { password_file: .vault-pass }` or `vault: { env: DROVER_VAULT_PASSWORD }`"),
                    );
                    None
                }
            }
        });

        if !p.is_empty() {
            return Err(p);
        }
        Ok(Site {
            vault,
            file_roots,
            root: root.to_path_buf(),
            inventory,
            workflows,
            state_dir: root.join(raw.state_dir.as_deref().unwrap_or(".drover")),
            transport: raw.transport,
            drain,
            windows,
            ssh: SshSettings {
                forks,
                keep_masters,
                connect_timeout: raw
                    .ssh
                    .connect_timeout
                    .map_or(Duration::from_secs(10), |d| d.get()),
                config: raw.ssh.config.as_ref().map(|c| root.join(c)),
                control_persist,
                server_alive_interval,
                host_keys: raw.ssh.host_key_policy.into(),
                defaults,
                groups,
            },
            lock_dir,
            env,
            leases: LeaseSettings {
                ttl,
                on_conflict: raw.leases.on_conflict,
                wait_timeout: raw
                    .leases
                    .wait_timeout
                    .map_or(Duration::from_secs(3600), |d| d.get()),
            },
            pause_poll,
            notifications,
            slack_commands: SlackCommandSettings::from_raw(
                &raw.slack,
                raw.server.as_ref().and_then(|s| s.slack_signing_secret.as_ref()),
            ),
            hooks: HookSettings::from_raw(&raw.hooks),
            server,
            git,
            lifecycle: LifecycleWorkflows {
                commission: raw.lifecycle.commission.clone(),
                decommission: raw.lifecycle.decommission.clone(),
                maintenance: raw.lifecycle.maintenance.clone(),
            },
        })
    }
}

fn discover_settings(
    raw: &super::raw_site::RawDiscover,
    here: &Path,
    p: &mut Vec<Problem>,
) -> DiscoverSettings {
    let d = DiscoverSettings::default();
    let concurrency = raw.concurrency.unwrap_or(d.concurrency);
    limits::DISCOVER_CONCURRENCY.check_count(here.key("concurrency"), concurrency.into(), p);
    if concurrency == 0 {
        p.push(Problem::value(
            here.key("concurrency"),
            "`concurrency: 0` would never probe an address",
        ));
    }
    let timeout = raw.timeout.map_or(d.timeout, |t| t.get());
    limits::DISCOVER_TIMEOUT.check_duration(here.key("timeout"), timeout, p);
    if timeout < Duration::from_secs(1) {
        p.push(Problem::value(
            here.key("timeout"),
            format!(
                "`timeout: {}` is out of range: expected 1s to 10m",
                humantime::format_duration(timeout)
            ),
        ));
    }
    DiscoverSettings { concurrency, timeout }
}
