//! Which OpenSSH release `sshd` is.

use std::process::{Command, Stdio};

use super::testbed_error::TestbedError;

/// Needed because sshd refuses to start on a config keyword it does not know, and newer
/// releases added defaults (`PerSourcePenalties`, 9.8) the testbed must switch off: the
/// config can only name them when the running sshd knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SshdVersion {
    pub(crate) major: u32,
    pub(crate) minor: u32,
}

impl SshdVersion {
    /// Asks the sshd at `program`. `sshd -V` prints `OpenSSH_9.2p1 ...` to stderr; releases
    /// without `-V` print the same line at the top of their usage message, so both work.
    pub(crate) fn detect(program: &str) -> Result<SshdVersion, TestbedError> {
        let out = Command::new(program)
            .arg("-V")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| TestbedError::spawn(program, "openssh-server", e))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        Self::parse(&text).ok_or_else(|| TestbedError::UnknownSshdVersion {
            command: format!("{program} -V"),
            output: text.trim().to_string(),
        })
    }

    /// Whether this release has per-source penalties (and the keyword to disable them).
    pub(crate) fn has_per_source_penalties(self) -> bool {
        self >= SshdVersion { major: 9, minor: 8 }
    }

    fn parse(text: &str) -> Option<SshdVersion> {
        let rest = &text[text.find("OpenSSH_")? + "OpenSSH_".len()..];
        let (major, rest) = rest.split_once('.')?;
        let minor: String = rest.chars().take_while(char::is_ascii_digit).collect();
        Some(SshdVersion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_lines() {
        let v = SshdVersion::parse("OpenSSH_9.2p1 Debian-2+deb12u6, OpenSSL 3.0.19 27 Jan 2026");
        assert_eq!(v, Some(SshdVersion { major: 9, minor: 2 }));
        assert!(!v.is_some_and(SshdVersion::has_per_source_penalties));
        let v = SshdVersion::parse("OpenSSH_10.0, OpenSSL 3.5.1");
        assert!(v.is_some_and(SshdVersion::has_per_source_penalties));
        assert_eq!(SshdVersion::parse("usage: sshd"), None);
    }
}
