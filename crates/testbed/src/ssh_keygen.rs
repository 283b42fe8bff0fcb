//! Key generation with the real `ssh-keygen`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::testbed_error::TestbedError;

/// ssh-keygen rather than a Rust crate, so keys are exactly what OpenSSH writes and
/// accepts. Keys are ed25519 because generating one takes microseconds: a 500-node
/// testbed needs 500 host keys.
pub(crate) struct SshKeygen;

/// How many ssh-keygen processes run at once: enough to hide process start-up latency,
/// few enough not to exhaust process limits for thousands of nodes.
const PARALLEL: usize = 32;

impl SshKeygen {
    /// Generates an ed25519 key pair without passphrase at each `(path, comment)`,
    /// replacing any existing one (ssh-keygen would otherwise stop to ask).
    pub(crate) fn generate(keys: &[(PathBuf, String)]) -> Result<(), TestbedError> {
        for chunk in keys.chunks(PARALLEL) {
            let mut running: Vec<(&Path, Child)> = Vec::with_capacity(chunk.len());
            let mut first_error = None;
            for (path, comment) in chunk {
                match Self::spawn(path, comment) {
                    Ok(child) => running.push((path, child)),
                    Err(e) => {
                        first_error = Some(e);
                        break;
                    }
                }
            }
            // Wait for every started process, even after a failure, so none is left behind.
            for (path, child) in running {
                let result = Self::finish(path, child);
                if first_error.is_none() {
                    first_error = result.err();
                }
            }
            if let Some(e) = first_error {
                return Err(e);
            }
        }
        Ok(())
    }

    /// The public half of the key at `private` as `<type> <base64>`, the comment dropped:
    /// the form `known_hosts` and `authorized_keys` lines are built from.
    pub(crate) fn public_key(private: &Path) -> Result<String, TestbedError> {
        let path = Self::public_path(private);
        let text =
            std::fs::read_to_string(&path).map_err(|e| TestbedError::io("read public key", &path, e))?;
        let mut fields = text.split_whitespace();
        match (fields.next(), fields.next()) {
            (Some(kind), Some(key)) => Ok(format!("{kind} {key}")),
            _ => Err(TestbedError::io(
                "parse public key",
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, "expected `<type> <base64>`"),
            )),
        }
    }

    pub(crate) fn public_path(private: &Path) -> PathBuf {
        let mut p = private.as_os_str().to_owned();
        p.push(".pub");
        PathBuf::from(p)
    }

    fn spawn(path: &Path, comment: &str) -> Result<Child, TestbedError> {
        for p in [path.to_path_buf(), Self::public_path(path)] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(TestbedError::io("remove old key", &p, e)),
            }
        }
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| TestbedError::spawn("ssh-keygen", "openssh-client", e))
    }

    fn finish(path: &Path, child: Child) -> Result<(), TestbedError> {
        let out = child
            .wait_with_output()
            .map_err(|e| TestbedError::spawn("ssh-keygen", "openssh-client", e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(TestbedError::CommandFailed {
                command: format!("ssh-keygen -t ed25519 -f {}", path.display()),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }
}
