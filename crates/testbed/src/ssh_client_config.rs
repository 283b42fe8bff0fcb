//! The testbed's client-side `ssh_config`.

use std::fmt::Write as _;
use std::path::Path;

use super::test_node::TestNode;

/// Lets `ssh -F <dir>/ssh_config node001 ...` reach a node with nothing from the user's
/// own `~/.ssh` involved: only the testbed's key is offered, only its `known_hosts` is
/// trusted, and nothing prompts. Connection multiplexing (`ControlMaster`,
/// `ControlPersist`) is left unset on purpose: managing it is the caller's business, and
/// the thing drover itself must get right.
#[derive(Debug, Clone)]
pub(crate) struct SshClientConfig<'a> {
    pub(crate) nodes: &'a [TestNode],
    pub(crate) identity: &'a Path,
    pub(crate) known_hosts: &'a Path,
    pub(crate) user: &'a str,
}

impl SshClientConfig<'_> {
    /// The file's text. Node blocks come first because ssh keeps the first value it finds
    /// for each option.
    pub(crate) fn render(&self) -> String {
        let mut s = String::from("# drover testbed: generated, do not edit.\n");
        for n in self.nodes {
            let _ = writeln!(s, "Host {}\n  HostName {}\n  Port {}\n", n.name, n.host, n.port);
        }
        let _ = writeln!(s, "Host *");
        let _ = writeln!(s, "  IdentityFile {}", self.identity.display());
        let _ = writeln!(s, "  IdentitiesOnly yes");
        let _ = writeln!(s, "  UserKnownHostsFile {}", self.known_hosts.display());
        let _ = writeln!(s, "  GlobalKnownHostsFile /dev/null");
        let _ = writeln!(s, "  StrictHostKeyChecking yes");
        let _ = writeln!(s, "  UpdateHostKeys no");
        let _ = writeln!(s, "  User {}", self.user);
        let _ = writeln!(s, "  BatchMode yes");
        let _ = writeln!(s, "  LogLevel ERROR");
        s
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn node_blocks_then_defaults_without_multiplexing() {
        let nodes = [TestNode {
            name: "node001".into(),
            host: "127.0.0.2".into(),
            port: 2222,
            state_dir: PathBuf::from("/t/nodes/node001"),
        }];
        let text = SshClientConfig {
            nodes: &nodes,
            identity: Path::new("/t/id_ed25519"),
            known_hosts: Path::new("/t/known_hosts"),
            user: "root",
        }
        .render();
        assert!(
            text.contains("Host node001\n  HostName 127.0.0.2\n  Port 2222\n"),
            "{text}"
        );
        assert!(text.find("Host node001") < text.find("Host *"), "{text}");
        assert!(text.contains("  StrictHostKeyChecking yes\n"), "{text}");
        assert!(!text.contains("Control"), "{text}");
    }
}
