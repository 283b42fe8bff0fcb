//! How a testbed's sshds differ from the defaults.

/// Settings for [`Testbed::start_with`](super::Testbed::start_with); the default is what
/// [`Testbed::start`](super::Testbed::start) does.
///
/// Benchmarks that compare SSH clients (OpenSSH, paramiko) pin the algorithms on the
/// server side, so every client negotiates the same ones whatever its own preferences, and
/// turn sshd's logging up once to see what was negotiated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestbedOptions {
    /// The only algorithms every sshd offers; `None` leaves OpenSSH's defaults.
    pub algorithms: Option<SshAlgorithms>,
    /// sshd's `LogLevel`; `None` is `ERROR`, which keeps logs to real problems. `DEBUG1`
    /// logs each connection's negotiated algorithms (`kex: algorithm: ...`,
    /// `kex: client->server cipher: ... MAC: ...`), at a cost in speed.
    pub log_level: Option<String>,
}

/// One algorithm of each kind, as OpenSSH names them. sshd offers exactly these, so a
/// client either negotiates them or cannot connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshAlgorithms {
    /// `KexAlgorithms`, e.g. `curve25519-sha256@libssh.org`.
    pub kex: String,
    /// `HostKeyAlgorithms`: must match the testbed's host keys, which are `ssh-ed25519`.
    pub host_key: String,
    /// `Ciphers`, e.g. `aes128-ctr`.
    pub cipher: String,
    /// `MACs`, e.g. `hmac-sha2-256` (unused with an AEAD cipher such as AES-GCM).
    pub mac: String,
}

impl SshAlgorithms {
    /// A set both OpenSSH (7.x and later) and paramiko (3.x and later) implement:
    /// `curve25519-sha256@libssh.org` (paramiko knows the curve25519 exchange only by this
    /// name), `ssh-ed25519`, `aes128-ctr` and `hmac-sha2-256`.
    pub fn openssh_and_paramiko() -> SshAlgorithms {
        SshAlgorithms {
            kex: "curve25519-sha256@libssh.org".into(),
            host_key: "ssh-ed25519".into(),
            cipher: "aes128-ctr".into(),
            mac: "hmac-sha2-256".into(),
        }
    }

    /// The `sshd_config` lines that pin these.
    pub(crate) fn sshd_config_lines(&self) -> String {
        format!(
            "KexAlgorithms {}\nHostKeyAlgorithms {}\nCiphers {}\nMACs {}\n",
            self.kex, self.host_key, self.cipher, self.mac
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_one_algorithm_of_each_kind() {
        let text = SshAlgorithms::openssh_and_paramiko().sshd_config_lines();
        assert_eq!(
            text,
            "KexAlgorithms curve25519-sha256@libssh.org\nHostKeyAlgorithms ssh-ed25519\n\
             Ciphers aes128-ctr\nMACs hmac-sha2-256\n"
        );
    }
}

#[cfg(test)]
mod on_real_sshd {
    use std::process::{Command, Stdio};

    use super::*;
    use crate::Testbed;

    /// The pinned set is what OpenSSH negotiates, sshd's debug log says so, and a client
    /// that insists on anything else is refused.
    #[test]
    fn sshd_offers_only_the_pinned_algorithms() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let options = TestbedOptions {
            algorithms: Some(SshAlgorithms::openssh_and_paramiko()),
            log_level: Some("DEBUG1".into()),
        };
        let tb = Testbed::start_with(tmp.path(), 1, options).expect("start testbed");
        let ssh = |extra: &[&str]| {
            Command::new("ssh")
                .arg("-F")
                .arg(tb.ssh_config())
                .args(extra)
                .args(["node001", "true"])
                .stdin(Stdio::null())
                .output()
                .expect("run ssh")
        };
        let out = ssh(&[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let log = std::fs::read_to_string(tb.sshd_log(0).expect("log")).expect("read log");
        for line in [
            "kex: algorithm: curve25519-sha256@libssh.org",
            "kex: host key algorithm: ssh-ed25519",
            "kex: client->server cipher: aes128-ctr MAC: hmac-sha2-256 compression: none",
            "kex: server->client cipher: aes128-ctr MAC: hmac-sha2-256 compression: none",
        ] {
            assert!(log.contains(line), "no {line:?} in\n{log}");
        }
        let refused = ssh(&["-o", "Ciphers=chacha20-poly1305@openssh.com"]);
        assert!(!refused.status.success());
        let refused = ssh(&["-o", "KexAlgorithms=sntrup761x25519-sha512@openssh.com"]);
        assert!(!refused.status.success());
    }
}
