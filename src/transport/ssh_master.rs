//! One `ssh -M` master process per node, launched by drover itself so that every ssh
//! option (host key policy, kex, `-o`) is under the site's control, not a library's.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use openssh::Session;

use super::shell_line::ShellLine;
use super::ssh_options::{HostKeyPolicy, SshOptions};

/// Settings every master of a run is launched with; per-node parts are in
/// [`SshOptions`].
#[derive(Debug, Clone)]
pub struct SshSetup {
    /// An ssh_config file to use instead of `~/.ssh/config`.
    pub config_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// How long an idle master lives (`ControlPersist`). Masters are reopened when
    /// needed, so this only bounds what a killed controller leaves behind.
    pub control_persist: Duration,
    /// `ServerAliveInterval`: how soon a dead peer is noticed (three missed replies).
    pub server_alive_interval: Duration,
    pub host_keys: HostKeyPolicy,
    /// drover's own known_hosts (under the state dir): where `accept-new` records keys,
    /// and trusted with every policy.
    pub known_hosts: PathBuf,
    /// Relative paths in node settings are relative to this (the site directory).
    pub root: PathBuf,
    /// Site-level settings, under group and node ones.
    pub defaults: SshOptions,
    /// Settings of inventory groups, in the order given (a later group wins).
    pub groups: Vec<(String, SshOptions)>,
    /// Log the key exchange, so the negotiated algorithm can be shown (`check -v`).
    pub log_kex: bool,
}

impl SshSetup {
    pub fn new(connect_timeout: Duration, known_hosts: PathBuf) -> SshSetup {
        SshSetup {
            config_file: None,
            connect_timeout,
            control_persist: DEFAULT_CONTROL_PERSIST,
            server_alive_interval: DEFAULT_SERVER_ALIVE,
            host_keys: HostKeyPolicy::Strict,
            known_hosts,
            root: PathBuf::from("."),
            defaults: SshOptions::default(),
            groups: Vec::new(),
            log_kex: false,
        }
    }
}

pub const DEFAULT_CONTROL_PERSIST: Duration = Duration::from_secs(300);
pub const DEFAULT_SERVER_ALIVE: Duration = Duration::from_secs(15);

/// A live master: its control socket, and the ssh process serving it. Dropping it asks
/// the master to exit.
#[derive(Debug)]
pub(super) struct Master {
    pub(super) session: Session,
    ctl: PathBuf,
    log: PathBuf,
    /// The negotiated key exchange, when [`SshSetup::log_kex`] asked for it.
    pub(super) kex: Option<String>,
    /// The host key the node presented (`TYPE SHA256:…`), also with `log_kex`.
    pub(super) server_key: Option<String>,
}

/// Why a master could not be started: the last lines of ssh's own log.
pub(super) struct LaunchError {
    pub(super) host_key: bool,
    pub(super) message: String,
}

impl Master {
    /// Starts `ssh -M -f -N` for `host` with its control socket at `ctl` (and its log
    /// beside it) and waits until it is authenticated and serving.
    pub(super) async fn launch(
        setup: &SshSetup,
        host: &str,
        options: &SshOptions,
        ctl: PathBuf,
    ) -> Result<Master, LaunchError> {
        let log = ctl.with_extension("log");
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .args(master_args(setup, options, &ctl, &log))
            .arg("--")
            .arg(host);
        let status = tokio::time::timeout(setup.connect_timeout + Duration::from_secs(5), cmd.status()).await;
        let ok = matches!(status, Ok(Ok(s)) if s.success());
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let jumps = std::fs::read_to_string(jump_log(&log)).unwrap_or_default();
        let _ = std::fs::remove_file(jump_log(&log));
        if !ok {
            let _ = std::fs::remove_file(&log);
            let _ = std::fs::remove_file(&ctl);
            let message = match status {
                Err(_) => format!(
                    "ssh did not connect within {}",
                    humantime::format_duration(setup.connect_timeout)
                ),
                Ok(Err(e)) => format!("cannot run ssh: {e}"),
                Ok(Ok(_)) if jumps.trim().is_empty() => last_lines(&text),
                Ok(Ok(_)) => format!("{} (jump host: {})", last_lines(&text), last_lines(&jumps)),
            };
            let host_key = is_host_key_error(&message);
            return Err(LaunchError { host_key, message });
        }
        let kex = text.lines().find_map(|l| {
            l.split_once("kex: algorithm: ")
                .map(|(_, a)| a.trim().to_string())
        });
        Ok(Master {
            session: Session::resume_mux(ctl.clone().into_boxed_path(), None),
            ctl,
            log,
            kex,
            server_key: super::host_key::server_key_in_log(&text),
        })
    }

    pub(super) fn ctl(&self) -> &Path {
        &self.ctl
    }

    /// The master's log: other clients' jump hosts log beside it.
    pub(super) fn log(&self) -> &Path {
        &self.log
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        // A quick request on a local socket; a master that is gone already answers
        // nothing, which is as good.
        let _ = openssh_mux_client::shutdown_mux_master(&self.ctl);
        let _ = std::fs::remove_file(&self.ctl);
        let _ = std::fs::remove_file(&self.log);
        // Written only by a client's ProxyCommand (ansible's ssh) after the launch.
        let _ = std::fs::remove_file(jump_log(&self.log));
    }
}

/// Asks the master behind the control socket `ctl` to exit (for sockets a dead
/// controller left behind).
pub(super) fn stop_master(ctl: &Path) {
    let _ = openssh_mux_client::shutdown_mux_master(ctl);
}

fn opt(k: &str, v: impl std::fmt::Display) -> [OsString; 2] {
    ["-o".into(), format!("{k}={v}").into()]
}

/// File names in `-o` values are split at spaces unless double-quoted.
fn path_value(p: &Path) -> String {
    format!("\"{}\"", p.display())
}

/// The arguments of the master's `ssh`. ssh keeps the first value it gets for an
/// option, and command-line `-o` come before the ssh_config, so these win over it.
pub(super) fn master_args(setup: &SshSetup, o: &SshOptions, ctl: &Path, log: &Path) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["-M".into(), "-f".into(), "-N".into(), "-S".into(), ctl.into()];
    a.extend(["-E".into(), log.into()]);
    a.extend(opt(
        "ControlPersist",
        format!("{}s", setup.control_persist.as_secs().max(1)),
    ));
    if setup.log_kex {
        a.extend(opt("LogLevel", "DEBUG1"));
    }
    a.extend(common_args(setup, o, log));
    a
}

/// The arguments with which another ssh client on the controller (ansible-playbook's)
/// reaches the node as drover does: through the master's control socket
/// (`ControlMaster=no`, so it never becomes a master of its own), and, should it have
/// to connect anew, with the same identity, host key policy, known_hosts, user, port,
/// options, ssh_config and jump hosts (the same `ProxyCommand`) as the master.
pub(super) fn client_args(setup: &SshSetup, o: &SshOptions, ctl: &Path, log: &Path) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    a.extend(opt("ControlMaster", "no"));
    a.extend(opt("ControlPath", path_value(ctl)));
    a.extend(common_args(setup, o, log));
    a
}

/// The arguments with which `ssh -G` prints the configuration a master for a node with
/// these settings would use (no log: nothing connects).
pub(super) fn query_args(setup: &SshSetup, o: &SshOptions) -> Vec<OsString> {
    let mut a: Vec<OsString> = connection_args(setup, o)
        .into_iter()
        .map(OsString::from)
        .collect();
    if let Some(u) = &o.user {
        a.extend(["-l".into(), u.into()]);
    }
    if let Some(p) = o.port {
        a.extend(["-p".into(), p.to_string().into()]);
    }
    a
}

/// Everything but the master's own options: how to reach the node (jump hosts, user,
/// port) and the [`connection_args`].
fn common_args(setup: &SshSetup, o: &SshOptions, log: &Path) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    if let Some(jumps) = &o.proxy_jump {
        a.extend(opt(
            "ProxyCommand",
            proxy_command(setup, o, jumps, &jump_log(log)),
        ));
    }
    a.extend(connection_args(setup, o).into_iter().map(OsString::from));
    if let Some(u) = &o.user {
        a.extend(["-l".into(), u.into()]);
    }
    if let Some(p) = o.port {
        a.extend(["-p".into(), p.to_string().into()]);
    }
    a
}

/// Where the jump hosts' ssh processes log (their errors explain a failed master).
fn jump_log(log: &Path) -> PathBuf {
    log.with_extension("jump.log")
}

/// What every connection drover makes to reach a node takes: the node's own one and
/// those to its jump hosts. Host keys, identity, kex and `options` are the node's.
fn connection_args(setup: &SshSetup, o: &SshOptions) -> Vec<String> {
    let mut a = Vec::new();
    let mut opt = |k: &str, v: &dyn std::fmt::Display| {
        a.push("-o".to_string());
        a.push(format!("{k}={v}"));
    };
    opt("BatchMode", &"yes");
    opt("ConnectTimeout", &setup.connect_timeout.as_secs().max(1));
    opt(
        "ServerAliveInterval",
        &setup.server_alive_interval.as_secs().max(1),
    );
    match setup.host_keys {
        HostKeyPolicy::Strict => opt("StrictHostKeyChecking", &"yes"),
        HostKeyPolicy::AcceptNew => opt("StrictHostKeyChecking", &"accept-new"),
        HostKeyPolicy::Config => {}
    }
    // With `accept-new`, drover's own file comes first: that is where ssh records new
    // keys. Otherwise host keys are the ssh_config's business unless the site names
    // files; drover's file is trusted too then (keys it recorded earlier).
    let files: Vec<String> = match (setup.host_keys, o.known_hosts.is_empty()) {
        (HostKeyPolicy::AcceptNew, true) => {
            vec![path_value(&setup.known_hosts), "~/.ssh/known_hosts".into()]
        }
        (HostKeyPolicy::AcceptNew, false) => std::iter::once(path_value(&setup.known_hosts))
            .chain(o.known_hosts.iter().map(|p| path_value(p)))
            .collect(),
        (_, false) => o
            .known_hosts
            .iter()
            .map(|p| path_value(p))
            .chain(std::iter::once(path_value(&setup.known_hosts)))
            .collect(),
        (_, true) => Vec::new(),
    };
    if !files.is_empty() {
        opt("UserKnownHostsFile", &files.join(" "));
    }
    if let Some(k) = &o.kex_algorithms {
        opt("KexAlgorithms", k);
    }
    if o.identity_file.is_some() {
        opt("IdentitiesOnly", &"yes");
    }
    for (k, v) in &o.options {
        opt(k, v);
    }
    if let Some(i) = &o.identity_file {
        a.extend(["-i".into(), i.to_string_lossy().into_owned()]);
    }
    if let Some(c) = &setup.config_file {
        a.extend(["-F".into(), c.to_string_lossy().into_owned()]);
    }
    a
}

/// The `ProxyCommand` for `proxy_jump` (`[user@]host[:port]`, comma-separated, first
/// hop first). ssh's own `ProxyJump` would start the jump's ssh with none of the
/// command line's options (only `-F`): without the node's identity, known_hosts, host
/// key policy or batch mode, so it fails (or prompts) on every fleet that is not
/// described in an ssh_config. drover starts that ssh itself, with the same
/// [`connection_args`]; for a chain, each hop's ssh reaches its host through the hop
/// before it (a nested `ProxyCommand`).
fn proxy_command(setup: &SshSetup, o: &SshOptions, jumps: &str, log: &Path) -> String {
    let mut inner: Option<String> = None;
    for hop in jumps.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        let (user, rest) = hop.rsplit_once('@').map_or((None, hop), |(u, h)| (Some(u), h));
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => (h, Some(p)),
            _ => (rest, None),
        };
        let mut words: Vec<String> = vec!["-E".into(), log.to_string_lossy().into_owned()];
        // The jump's connection carries one forwarding; a site's `ControlMaster auto`
        // must not turn it into a master of its own.
        words.extend(["-o".into(), "ControlPath=none".into()]);
        if let Some(cmd) = inner.take() {
            words.extend(["-o".into(), format!("ProxyCommand={cmd}")]);
        }
        words.extend(connection_args(setup, o));
        if let Some(u) = user {
            words.extend(["-l".into(), u.into()]);
        }
        if let Some(p) = port {
            words.extend(["-p".into(), p.into()]);
        }
        // ssh expands `%` tokens in a ProxyCommand: every value is escaped, so only the
        // `-W` target below is expanded (and a nested command's tokens only by its own
        // ssh, one level down).
        let mut line = ShellLine::new().code("ssh");
        for w in &words {
            line = line.code(" ").value(w.replace('%', "%%"));
        }
        line = line.code(" -W '[%h]:%p' -- ").value(host.replace('%', "%%"));
        inner = Some(line.into_string());
    }
    inner.unwrap_or_default()
}

/// ssh's log ends with why it failed; debug lines (with `log_kex`) are noise here.
fn last_lines(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("debug"))
        .collect();
    let text = lines[lines.len().saturating_sub(4)..].join(" ");
    if text.is_empty() {
        "ssh exited without saying why".into()
    } else {
        text
    }
}

fn is_host_key_error(message: &str) -> bool {
    message.contains("Host key verification failed")
        || message.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || message.contains("No ED25519 host key is known")
        || message.contains("host key")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(setup: &SshSetup, o: &SshOptions) -> Vec<String> {
        master_args(setup, o, Path::new("/tmp/d/1"), Path::new("/tmp/d/1.log"))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn strict_by_default_leaving_known_hosts_files_to_the_ssh_config() {
        let mut s = SshSetup::new(Duration::from_secs(10), PathBuf::from("/s/.drover/known_hosts"));
        let a = args(&s, &SshOptions::default()).join(" ");
        assert!(a.contains("-o StrictHostKeyChecking=yes"), "{a}");
        assert!(!a.contains("UserKnownHostsFile"), "{a}");
        assert!(a.contains("-o ControlPersist=300s"), "{a}");
        s.host_keys = HostKeyPolicy::AcceptNew;
        let a = args(&s, &SshOptions::default()).join(" ");
        assert!(a.contains("-o StrictHostKeyChecking=accept-new"), "{a}");
        assert!(
            a.contains("-o UserKnownHostsFile=\"/s/.drover/known_hosts\" ~/.ssh/known_hosts"),
            "{a}"
        );
    }

    #[test]
    fn the_config_policy_leaves_host_keys_to_the_ssh_config() {
        let mut s = SshSetup::new(Duration::from_secs(10), PathBuf::from("/k"));
        s.host_keys = HostKeyPolicy::Config;
        let a = args(&s, &SshOptions::default()).join(" ");
        assert!(!a.contains("StrictHostKeyChecking"), "{a}");
        assert!(!a.contains("UserKnownHostsFile"), "{a}");
    }

    #[test]
    fn node_settings_become_options() {
        let s = SshSetup::new(Duration::from_secs(10), PathBuf::from("/k"));
        let o = SshOptions {
            identity_file: Some("/keys/id".into()),
            known_hosts: vec!["/kh/a b".into()],
            proxy_jump: Some("bastion".into()),
            kex_algorithms: Some("curve25519-sha256".into()),
            user: Some("deploy".into()),
            port: Some(2200),
            options: [("Compression".to_string(), "yes".to_string())]
                .into_iter()
                .collect(),
        };
        let a = args(&s, &o);
        let j = a.join(" ");
        assert!(j.contains("-o IdentitiesOnly=yes"), "{j}");
        assert!(j.contains(" -i /keys/id -l deploy"), "{j}");
        assert!(j.contains("-o UserKnownHostsFile=\"/kh/a b\" \"/k\""), "{j}");
        assert!(j.contains("-o KexAlgorithms=curve25519-sha256"), "{j}");
        assert!(!j.contains("ProxyJump"), "{j}");
        assert!(j.contains("-o ProxyCommand=ssh "), "{j}");
        assert!(j.contains("-l deploy -p 2200"), "{j}");
        assert!(j.contains("-o Compression=yes"), "{j}");
    }

    /// The words of the `ProxyCommand` in `args`, as ssh gets it (before it expands `%`).
    fn proxy_words(args: &[String]) -> Vec<String> {
        let cmd = args
            .iter()
            .find_map(|a| a.strip_prefix("ProxyCommand="))
            .expect("a ProxyCommand");
        shlex::split(cmd).expect("shell words")
    }

    #[test]
    fn a_jump_host_is_reached_with_the_nodes_identity_known_hosts_and_policy() {
        let mut s = SshSetup::new(Duration::from_secs(7), PathBuf::from("/k"));
        s.host_keys = HostKeyPolicy::AcceptNew;
        let o = SshOptions {
            identity_file: Some("/keys/100%/id".into()),
            known_hosts: vec!["/kh/a".into()],
            proxy_jump: Some("jo@bastion:2200".into()),
            user: Some("deploy".into()),
            port: Some(22),
            ..SshOptions::default()
        };
        let w = proxy_words(&args(&s, &o));
        let j = w.join(" ");
        assert_eq!(w[0], "ssh");
        assert!(j.contains("-o BatchMode=yes"), "{j}");
        assert!(j.contains("-o ConnectTimeout=7"), "{j}");
        assert!(j.contains("-o StrictHostKeyChecking=accept-new"), "{j}");
        assert!(j.contains("-o UserKnownHostsFile=\"/k\" \"/kh/a\""), "{j}");
        assert!(j.contains("-o ControlPath=none"), "{j}");
        assert!(j.contains("-E /tmp/d/1.jump.log"), "{j}");
        // `%` in a value is escaped so ssh does not expand it; the target is expanded.
        assert!(j.contains("-i /keys/100%%/id"), "{j}");
        assert!(j.ends_with("-l jo -p 2200 -W [%h]:%p -- bastion"), "{j}");
        // The node's own user and port are not the jump host's.
        assert!(!j.contains("deploy"), "{j}");
    }

    #[test]
    fn a_chain_of_jump_hosts_nests_each_hop_inside_the_next() {
        let s = SshSetup::new(Duration::from_secs(7), PathBuf::from("/k"));
        let o = SshOptions {
            proxy_jump: Some("first, u@second".into()),
            ..SshOptions::default()
        };
        let outer = proxy_words(&args(&s, &o));
        assert!(
            outer.ends_with(&["-l", "u", "-W", "[%h]:%p", "--", "second"].map(String::from)),
            "{outer:?}"
        );
        // One level down, ssh has turned `%%` back into `%`.
        let nested: Vec<String> = outer.iter().map(|w| w.replace("%%", "%")).collect();
        let inner = proxy_words(&nested);
        assert!(
            inner.ends_with(&["-W", "[%h]:%p", "--", "first"].map(String::from)),
            "{inner:?}"
        );
        assert!(!inner.iter().any(|w| w.starts_with("ProxyCommand=")), "{inner:?}");
    }

    /// ansible-playbook's ssh goes through the master's socket, but should it connect on
    /// its own it must reach the node the same way: the same jump hosts (the same
    /// `ProxyCommand`), user, port, identity and known_hosts.
    #[test]
    fn another_client_reaches_the_node_as_the_master_does() {
        let s = SshSetup::new(Duration::from_secs(7), PathBuf::from("/k"));
        let o = SshOptions {
            identity_file: Some("/keys/id".into()),
            proxy_jump: Some("jo@bastion:2200".into()),
            user: Some("deploy".into()),
            port: Some(2201),
            ..SshOptions::default()
        };
        let (ctl, log) = (Path::new("/tmp/d/1"), Path::new("/tmp/d/1.log"));
        let client: Vec<String> = client_args(&s, &o, ctl, log)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let master = args(&s, &o);
        let j = client.join(" ");
        assert!(
            j.starts_with("-o ControlMaster=no -o ControlPath=\"/tmp/d/1\""),
            "{j}"
        );
        assert_eq!(proxy_words(&client), proxy_words(&master));
        // Everything after the master's own options is the same.
        let shared = master
            .iter()
            .position(|a| a.starts_with("ProxyCommand="))
            .expect("a ProxyCommand")
            - 1;
        assert_eq!(client[4..], master[shared..], "{j}");
        assert!(j.contains("-l deploy -p 2201"), "{j}");
    }
}
