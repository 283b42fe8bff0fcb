//! One discovery probe: reach an address over SSH as the site reaches its nodes (the
//! site's `ssh:` settings, host key policy and known_hosts), and ask the host about
//! itself in one command, one round trip after the handshake.
//!
//! What is asked, each a line `key=value` and each allowed to be missing (a host
//! without `/proc` or `/etc/os-release` still counts as reached): the hostname
//! (`hostname`, else `uname -n`), online CPUs (`getconf _NPROCESSORS_ONLN`, else
//! `nproc`), memory (`MemTotal` of `/proc/meminfo`, in MiB), the OS (`PRETTY_NAME` of
//! `/etc/os-release`), the kernel (`uname -sr`) and the machine (`uname -m`).

use std::time::Duration;

use indexmap::IndexMap;

use super::discover_address::DiscoverAddress;
use crate::inventory::{Address, Node};
use crate::transport::{Connection, Connector, SshConnector, SshOptions, TransportError};

/// The one command of a probe. Values are read by key, so a line a login banner or a
/// shell profile adds is ignored.
const FACTS: &str = r#"printf 'hostname=%s\n' "$(hostname 2>/dev/null || uname -n 2>/dev/null)"
printf 'cpus=%s\n' "$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null)"
printf 'memory_kib=%s\n' "$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo 2>/dev/null)"
printf 'os=%s\n' "$(sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | tr -d '"')"
printf 'kernel=%s\n' "$(uname -sr 2>/dev/null)"
printf 'arch=%s\n' "$(uname -m 2>/dev/null)"
"#;

/// A value longer than this is cut: the store keeps what a host says, not what it
/// could be made to say.
const MAX_VALUE: usize = 256;

/// What a reached host said, and its key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    pub hostname: Option<String>,
    pub cpus: Option<u32>,
    pub memory_mib: Option<u64>,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub arch: Option<String>,
    pub host_key: Option<String>,
}

/// Why a probe did not reach its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// ssh refused the host's key (unknown under `strict`, or changed).
    HostKey(String),
    /// No connection, no login, the facts command failed, or the probe ran out of time.
    Unreachable(String),
}

/// Probes `addr`, giving up after `timeout` (connection and command together).
pub async fn probe(
    connector: &SshConnector,
    addr: &DiscoverAddress,
    timeout: Duration,
) -> Result<HostFacts, ProbeFailure> {
    match tokio::time::timeout(timeout, reach(connector, addr, timeout)).await {
        Ok(r) => r,
        Err(_) => Err(ProbeFailure::Unreachable(format!(
            "no answer within {} (server.discover.timeout)",
            humantime::format_duration(timeout)
        ))),
    }
}

async fn reach(
    connector: &SshConnector,
    addr: &DiscoverAddress,
    timeout: Duration,
) -> Result<HostFacts, ProbeFailure> {
    let node = Node {
        name: addr.canonical(),
        address: Address {
            host: addr.host.clone(),
            port: addr.port,
            user: addr.user.clone(),
            ssh: SshOptions::default(),
        },
        vars: IndexMap::new(),
        hosted_on: None,
        ha_group: None,
    };
    let conn = connector.connect(&node).await.map_err(|e| match e {
        TransportError::HostKey { message, .. } => ProbeFailure::HostKey(message),
        TransportError::Connect { message, .. }
        | TransportError::Lost { message, .. }
        | TransportError::Spawn { message, .. } => ProbeFailure::Unreachable(message),
    })?;
    let out = conn.exec(FACTS, None, timeout).await;
    let host_key = conn.host_key().await;
    conn.close().await;
    let out = out.map_err(|e| ProbeFailure::Unreachable(e.to_string()))?;
    if !out.success() {
        return Err(ProbeFailure::Unreachable(format!(
            "the facts command failed on the host (exit {}): {}",
            out.code.map_or("by a signal".to_string(), |c| c.to_string()),
            out.last_lines(3)
        )));
    }
    let mut facts = parse_facts(&out.stdout);
    facts.host_key = host_key;
    Ok(facts)
}

/// The facts of the command's output; unknown keys and empty or unparsable values are
/// left out.
pub fn parse_facts(stdout: &str) -> HostFacts {
    let mut f = HostFacts::default();
    for line in stdout.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        let text = || Some(v.chars().take(MAX_VALUE).collect::<String>());
        match k {
            "hostname" => f.hostname = text(),
            "cpus" => f.cpus = v.parse().ok().filter(|&n| n > 0),
            "memory_kib" => f.memory_mib = v.parse::<u64>().ok().map(|k| k / 1024),
            "os" => f.os = text(),
            "kernel" => f.kernel = text(),
            "arch" => f.arch = text(),
            _ => {}
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_read_by_key_and_junk_is_left_out() {
        let f = parse_facts(
            "Welcome to the cluster!\nhostname=gpu7\ncpus=64\nmemory_kib=263921456\n\
             os=Debian GNU/Linux 12 (bookworm)\nkernel=Linux 6.1.0-18-amd64\narch=x86_64\nother=1\n",
        );
        assert_eq!(f.hostname.as_deref(), Some("gpu7"));
        assert_eq!(f.cpus, Some(64));
        assert_eq!(f.memory_mib, Some(257_735));
        assert_eq!(f.os.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(f.kernel.as_deref(), Some("Linux 6.1.0-18-amd64"));
        assert_eq!(f.arch.as_deref(), Some("x86_64"));
        let none = parse_facts(&format!(
            "hostname=\ncpus=many\nmemory_kib=-1\nos={}\n",
            "x".repeat(999)
        ));
        assert_eq!((none.hostname, none.cpus, none.memory_mib), (None, None, None));
        assert_eq!(none.os.map(|o| o.len()), Some(MAX_VALUE));
    }

    /// The command itself, in this machine's `sh`: every fact a Linux host has.
    #[test]
    fn the_facts_command_answers_on_linux() {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(FACTS)
            .output()
            .unwrap();
        assert!(out.status.success());
        let f = parse_facts(&String::from_utf8_lossy(&out.stdout));
        assert!(f.hostname.is_some(), "{f:?}");
        assert_eq!(
            f.cpus,
            std::thread::available_parallelism().ok().map(|n| n.get() as u32)
        );
        assert!(f.memory_mib.is_some_and(|m| m > 0), "{f:?}");
        assert!(
            f.kernel.as_deref().is_some_and(|k| k.starts_with("Linux ")),
            "{f:?}"
        );
        assert!(f.arch.is_some(), "{f:?}");
    }
}
