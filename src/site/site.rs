//! The checked site config.

use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;

use super::raw_site::{HookHost, OnDrainTimeout, RawSite};
use crate::diag::Problem;
use crate::template::TemplateEngine;
use crate::units::SecretRef;
use crate::window::Window;
use crate::yaml::Path;

/// Names a drain hook template may use.
pub const HOOK_SCOPE: [&str; 4] = ["node", "workflow", "run", "reason"];

#[derive(Debug, Clone)]
pub struct Site {
    /// The directory holding drover.yml; relative paths are resolved against it.
    pub root: PathBuf,
    pub inventory: Vec<PathBuf>,
    pub workflows: PathBuf,
    pub state_dir: PathBuf,
    pub drain: Option<DrainHooks>,
    pub windows: IndexMap<String, Window>,
    pub ssh: SshSettings,
    pub slack: Option<SlackSettings>,
    pub server: Option<ServerSettings>,
}

#[derive(Debug, Clone)]
pub struct DrainHooks {
    pub run_on: HookHost,
    pub drain: String,
    pub drained: String,
    pub resume: String,
    pub poll_interval: Duration,
    pub timeout: Duration,
    pub on_timeout: OnDrainTimeout,
}

#[derive(Debug, Clone)]
pub struct SshSettings {
    pub forks: u32,
    pub connect_timeout: Duration,
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct SlackSettings {
    pub webhook_url: SecretRef,
    pub channel: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub token: SecretRef,
    pub slack_signing_secret: Option<SecretRef>,
}

impl Site {
    pub fn from_raw(raw: &RawSite, root: &FsPath, templates: &TemplateEngine) -> Result<Site, Vec<Problem>> {
        let mut p = Vec::new();
        let top = Path::root();
        let inventory = if raw.inventory.is_empty() {
            vec![root.join("inventory.yml")]
        } else {
            raw.inventory.iter().map(|f| root.join(f)).collect()
        };

        let drain = raw.drain.as_ref().map(|d| {
            let dp = top.key("drain");
            for (key, src) in [("drain", &d.drain), ("drained", &d.drained), ("resume", &d.resume)] {
                if let Err(e) = templates.check_names(src, &HOOK_SCOPE) {
                    p.push(Problem::value(dp.key(key), format!("invalid template: {}", e.message())));
                }
            }
            let poll_interval = d.poll_interval.map_or(Duration::from_secs(30), |x| x.get());
            let timeout = d.timeout.map_or(Duration::from_secs(4 * 3600), |x| x.get());
            if poll_interval.is_zero() {
                p.push(Problem::value(dp.key("poll_interval"), "a poll interval of zero would busy-loop the scheduler"));
            }
            if timeout < poll_interval {
                p.push(Problem::value(
                    dp.key("timeout"),
                    format!("drain timeout {} is shorter than the poll interval {}", humantime::format_duration(timeout), humantime::format_duration(poll_interval)),
                ));
            }
            DrainHooks {
                run_on: d.run_on,
                drain: d.drain.clone(),
                drained: d.drained.clone(),
                resume: d.resume.clone(),
                poll_interval,
                timeout,
                on_timeout: d.on_timeout,
            }
        });

        let mut windows = IndexMap::new();
        for (name, w) in &raw.windows {
            match Window::from_raw(w) {
                Ok(w) => {
                    windows.insert(name.clone(), w);
                }
                Err(e) => p.extend(e.into_iter().map(|x| x.under(&top.key("windows").key(name.clone())))),
            }
        }

        let forks = raw.ssh.forks.unwrap_or(200);
        if forks == 0 {
            p.push(Problem::value(top.key("ssh").key("forks"), "`forks: 0` would never start a node"));
        }

        let server = raw.server.as_ref().and_then(|s| match s.listen.parse::<SocketAddr>() {
            Ok(listen) => Some(ServerSettings {
                listen,
                token: s.token.clone(),
                slack_signing_secret: s.slack_signing_secret.clone(),
            }),
            Err(_) => {
                p.push(Problem::value(
                    top.key("server").key("listen"),
                    format!("invalid listen address `{}`: expected an IP address and port, like `127.0.0.1:8080`", s.listen),
                ));
                None
            }
        });

        if !p.is_empty() {
            return Err(p);
        }
        Ok(Site {
            root: root.to_path_buf(),
            inventory,
            workflows: root.join(raw.workflows.as_deref().unwrap_or("workflows")),
            state_dir: root.join(raw.state_dir.as_deref().unwrap_or(".drover")),
            drain,
            windows,
            ssh: SshSettings {
                forks,
                connect_timeout: raw.ssh.connect_timeout.map_or(Duration::from_secs(10), |d| d.get()),
                config: raw.ssh.config.as_ref().map(|c| root.join(c)),
            },
            slack: raw.notifications.slack.as_ref().map(|s| SlackSettings {
                webhook_url: s.webhook_url.clone(),
                channel: s.channel.clone(),
            }),
            server,
        })
    }
}
