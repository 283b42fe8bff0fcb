//! The `sshd_config` of one testbed node.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

use super::testbed_options::SshAlgorithms;

/// Rendered per node rather than shared, because address, port, host key, pid file and
/// the node's identity (`SetEnv`) all differ; everything else is pinned here so the host's
/// own `/etc/ssh/sshd_config` (which is never read) cannot change how tests behave.
#[derive(Debug, Clone)]
pub(crate) struct SshdConfig<'a> {
    pub(crate) node: &'a str,
    pub(crate) address: Ipv4Addr,
    pub(crate) port: u16,
    pub(crate) host_key: &'a Path,
    pub(crate) pid_file: &'a Path,
    pub(crate) authorized_keys: &'a Path,
    pub(crate) state_dir: &'a Path,
    /// OpenSSH 9.8 added `PerSourcePenalties`, on by default: it would lock loopback out
    /// after the readiness probes and the refused connections tests provoke on purpose.
    /// Older sshds reject the keyword, so it is only written when supported.
    pub(crate) disable_penalties: bool,
    /// The only algorithms offered, when a benchmark pins them; otherwise sshd's defaults.
    pub(crate) algorithms: Option<&'a SshAlgorithms>,
    /// `ERROR` unless asked otherwise (see `TestbedOptions::log_level`).
    pub(crate) log_level: &'a str,
}

impl SshdConfig<'_> {
    /// The file's text. Paths are written unquoted: the testbed only accepts directories
    /// whose paths need no quoting (see `Testbed::start`).
    pub(crate) fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# drover testbed {}: generated, do not edit.", self.node);
        let _ = writeln!(s, "ListenAddress {}:{}", self.address, self.port);
        let _ = writeln!(s, "Port {}", self.port);
        let _ = writeln!(s, "HostKey {}", self.host_key.display());
        let _ = writeln!(s, "PidFile {}", self.pid_file.display());
        let _ = writeln!(s, "AuthorizedKeysFile {}", self.authorized_keys.display());
        s.push_str(
            "PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\n\
             UsePAM no\n\
             StrictModes no\n\
             MaxSessions 100\n\
             MaxStartups 500:30:1000\n\
             PrintMotd no\n\
             PrintLastLog no\n\
             Subsystem sftp internal-sftp\n\
             AcceptEnv DROVER_*\n",
        );
        // SetEnv wins over anything the client sends (AcceptEnv), so a node's identity
        // cannot be spoofed by a test's own environment. HOME is the node's own
        // directory: bash sources ~/.bashrc for commands run by sshd, and the
        // controller's dotfiles (a pyenv rehash, say) would otherwise run in every
        // session of every node and dominate any measurement.
        let _ = writeln!(
            s,
            "SetEnv DROVER_NODE={node} DROVER_STATE={state} HOME={state}",
            node = self.node,
            state = self.state_dir.display()
        );
        let _ = writeln!(s, "LogLevel {}", self.log_level);
        if let Some(a) = self.algorithms {
            s.push_str(&a.sshd_config_lines());
        }
        if self.disable_penalties {
            s.push_str("PerSourcePenalties no\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_node_identity_and_listen_address() {
        let c = SshdConfig {
            node: "node007",
            address: Ipv4Addr::new(127, 0, 0, 8),
            port: 2222,
            host_key: Path::new("/t/sshd/node007/ssh_host_ed25519_key"),
            pid_file: Path::new("/t/sshd/node007/sshd.pid"),
            authorized_keys: Path::new("/t/authorized_keys"),
            state_dir: Path::new("/t/nodes/node007"),
            disable_penalties: false,
            algorithms: None,
            log_level: "ERROR",
        };
        let text = c.render();
        assert!(text.contains("ListenAddress 127.0.0.8:2222\n"), "{text}");
        assert!(
            text.contains("SetEnv DROVER_NODE=node007 DROVER_STATE=/t/nodes/node007 HOME=/t/nodes/node007\n"),
            "{text}"
        );
        assert!(text.contains("UsePAM no\n"), "{text}");
        assert!(!text.contains("PerSourcePenalties"), "{text}");
        assert!(text.contains("LogLevel ERROR\n"), "{text}");
        assert!(!text.contains("Ciphers"), "{text}");
    }

    #[test]
    fn pins_algorithms_and_log_level_when_asked() {
        let algorithms = SshAlgorithms::openssh_and_paramiko();
        let c = SshdConfig {
            node: "node001",
            address: Ipv4Addr::new(127, 0, 0, 2),
            port: 2222,
            host_key: Path::new("/t/sshd/node001/ssh_host_ed25519_key"),
            pid_file: Path::new("/t/sshd/node001/sshd.pid"),
            authorized_keys: Path::new("/t/authorized_keys"),
            state_dir: Path::new("/t/nodes/node001"),
            disable_penalties: false,
            algorithms: Some(&algorithms),
            log_level: "DEBUG1",
        };
        let text = c.render();
        assert!(text.contains("LogLevel DEBUG1\n"), "{text}");
        assert_eq!(text.matches("LogLevel").count(), 1, "{text}");
        assert!(
            text.contains("KexAlgorithms curve25519-sha256@libssh.org\n"),
            "{text}"
        );
        assert!(
            text.contains("Ciphers aes128-ctr\nMACs hmac-sha2-256\n"),
            "{text}"
        );
    }
}
