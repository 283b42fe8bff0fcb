//! The testbed's `known_hosts` file.

use std::fmt::Write as _;

/// Written once at start from every node's host key, and deliberately not updated by
/// [`Testbed::replace_host_key`](super::Testbed::replace_host_key): tests rely on ssh
/// refusing a node whose key changed.
#[derive(Debug, Clone, Default)]
pub(crate) struct KnownHosts {
    text: String,
}

impl KnownHosts {
    /// Adds `host`:`port` with a public key given as `ssh-ed25519 AAAA...`. ssh looks keys
    /// up as `[host]:port` for any port but 22, so that is how they must be written.
    pub(crate) fn add(&mut self, host: &str, port: u16, public_key: &str) {
        if port == 22 {
            let _ = writeln!(self.text, "{host} {public_key}");
        } else {
            let _ = writeln!(self.text, "[{host}]:{port} {public_key}");
        }
    }

    pub(crate) fn render(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_only_for_non_default_ports() {
        let mut k = KnownHosts::default();
        k.add("127.0.0.2", 2222, "ssh-ed25519 AAAAC3Nz");
        k.add("127.0.0.3", 22, "ssh-ed25519 AAAAC3Nz");
        assert_eq!(
            k.render(),
            "[127.0.0.2]:2222 ssh-ed25519 AAAAC3Nz\n127.0.0.3 ssh-ed25519 AAAAC3Nz\n"
        );
    }
}
