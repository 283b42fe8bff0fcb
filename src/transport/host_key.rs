//! The host key a node presented, as a known_hosts file holds it (`type base64`).
//!
//! ssh verifies the key (by the site's host key policy) and, with `accept-new`, records
//! it; it tells only the key's fingerprint (`Server host key: TYPE SHA256:…` in its
//! DEBUG1 log). The key itself is the line, in one of the known_hosts files ssh read,
//! whose fingerprint is that one: matched by fingerprint, so hashed host names
//! (`HashKnownHosts`) and `[host]:port` patterns need no parsing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use base64ct::{Base64, Base64Unpadded, Encoding};
use sha2::{Digest, Sha256};

use super::ssh_master::{SshSetup, query_args};
use super::ssh_options::SshOptions;

/// The `TYPE SHA256:…` of a DEBUG1 ssh log's `Server host key:` line.
pub(super) fn server_key_in_log(log: &str) -> Option<String> {
    log.lines().find_map(|l| {
        l.split_once("Server host key: ")
            .map(|(_, k)| k.trim().to_string())
    })
}

/// `SHA256:…` of a key's base64 blob, as ssh prints it.
pub(super) fn fingerprint(blob: &str) -> Option<String> {
    let raw = Base64::decode_vec(blob).ok()?;
    Some(format!(
        "SHA256:{}",
        Base64Unpadded::encode_string(&Sha256::digest(&raw))
    ))
}

/// The `type base64` whose fingerprint is `fp`, in the first of `files` that has it.
/// Revoked keys and CA lines are not a host's own key.
pub(super) fn find_in(files: &[PathBuf], fp: &str) -> Option<String> {
    files.iter().find_map(|f| {
        let text = std::fs::read_to_string(f).ok()?;
        text.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            let first = words.next()?;
            if first.starts_with('#') || first.starts_with('@') {
                return None;
            }
            let (kind, blob) = (words.next()?, words.next()?);
            (fingerprint(blob)? == fp).then(|| format!("{kind} {blob}"))
        })
    })
}

/// The known_hosts files ssh reads for `host` with these settings: drover's own and the
/// site's first, then what the ssh_config says (`ssh -G`; a file name with a space in
/// it is split there, which is why the site's own come first).
pub(super) async fn files_for(setup: &SshSetup, o: &SshOptions, host: &str) -> Vec<PathBuf> {
    let mut files = vec![setup.known_hosts.clone()];
    files.extend(o.known_hosts.iter().cloned());
    let mut cmd = tokio::process::Command::new("ssh");
    cmd.arg("-G")
        .args(query_args(setup, o))
        .arg("--")
        .arg(host)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Ok(Ok(out)) = tokio::time::timeout(std::time::Duration::from_secs(10), cmd.output()).await {
        let text = String::from_utf8_lossy(&out.stdout);
        let home = std::env::var_os("HOME").map(PathBuf::from);
        for line in text.lines() {
            let Some(v) = line
                .strip_prefix("userknownhostsfile ")
                .or_else(|| line.strip_prefix("globalknownhostsfile "))
            else {
                continue;
            };
            for f in v.split_whitespace() {
                files.push(expand_home(f, home.as_deref()));
            }
        }
    }
    files
}

fn expand_home(f: &str, home: Option<&Path>) -> PathBuf {
    match (f.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(OsString::from(f)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real ed25519 key and the fingerprint `ssh-keygen -lf` prints for it.
    const BLOB: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    #[test]
    fn the_key_is_found_by_the_fingerprint_ssh_logged() {
        let fp = fingerprint(BLOB).unwrap();
        assert_eq!(fp, "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU");
        let log = format!("debug1: Connecting to x\ndebug1: Server host key: ssh-ed25519 {fp}\n");
        assert_eq!(server_key_in_log(&log).unwrap(), format!("ssh-ed25519 {fp}"));
        let dir = tempfile::tempdir().unwrap();
        let kh = dir.path().join("known_hosts");
        std::fs::write(
            &kh,
            format!(
                "# comment\n@revoked * ssh-ed25519 {BLOB}\n|1|aGFzaA==|c2FsdA== ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ\n\
                 |1|aGFzaA==|c2FsdA== ssh-ed25519 {BLOB}\n"
            ),
        )
        .unwrap();
        let missing = dir.path().join("none");
        assert_eq!(
            find_in(&[missing, kh.clone()], &fp).unwrap(),
            format!("ssh-ed25519 {BLOB}")
        );
        assert_eq!(find_in(&[kh], "SHA256:other"), None);
    }
}
