//! The step lock on a node: where it lives, what it is called, and the shell that takes
//! it.
//!
//! `run` steps hold a `flock` on the node while they run, so a resumed run can wait for
//! a step its dead controller left running instead of running it a second time
//! alongside. The lock lives in a directory of the login user (default
//! `${XDG_RUNTIME_DIR:-$HOME/.cache}/drover`, created with mode 0700), not in a
//! world-writable one, and its name carries a scope derived from the controller's host
//! name and the site directory, so unrelated controllers that use the same node names
//! never share a lock. While held, the file names the run that holds it.

use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::ShellLine;

/// Where step locks live on a node unless the site says otherwise.
pub const DEFAULT_LOCK_DIR: &str = "${XDG_RUNTIME_DIR:-$HOME/.cache}/drover";

/// A directory as the node's shell should expand it: an absolute path or one starting
/// with `$VAR` / `${VAR:-default}`, of characters that mean nothing else to a shell
/// inside double quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockDir(String);

impl LockDir {
    pub fn parse(dir: &str) -> Result<LockDir, String> {
        let bad = || {
            format!(
                "invalid lock_dir `{dir}`: expected an absolute path or one starting with `$HOME` or `${{VAR:-...}}`, of letters, digits, `/._-`"
            )
        };
        if !(dir.starts_with('/') || dir.starts_with('$')) || dir.len() > 256 {
            return Err(bad());
        }
        let b = dir.as_bytes();
        let mut i = 0;
        let mut depth = 0usize;
        while i < b.len() {
            match b[i] {
                b'$' => match b.get(i + 1) {
                    Some(b'{') => {
                        depth += 1;
                        i += 2;
                        let start = i;
                        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                            i += 1;
                        }
                        if i == start {
                            return Err(bad());
                        }
                        if b.get(i) == Some(&b':') && b.get(i + 1) == Some(&b'-') {
                            i += 2;
                        }
                        continue;
                    }
                    Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {}
                    _ => return Err(bad()),
                },
                b'}' if depth > 0 => depth -= 1,
                c if c.is_ascii_alphanumeric() || b"/._-".contains(&c) => {}
                _ => return Err(bad()),
            }
            i += 1;
        }
        if depth != 0 {
            return Err(bad());
        }
        Ok(LockDir(dir.to_string()))
    }

    /// Double-quoted for the node's shell: variables expand, nothing else does (the
    /// characters were checked).
    pub(super) fn shell(&self) -> String {
        format!("\"{}\"", self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for LockDir {
    fn default() -> Self {
        LockDir(DEFAULT_LOCK_DIR.to_string())
    }
}

/// The step locks of one run.
#[derive(Debug, Clone)]
pub struct NodeLocks {
    dir: LockDir,
    /// Tells this controller's site from others using the same node names.
    scope: String,
    /// Written into a lock while it is held.
    run: String,
}

impl Default for NodeLocks {
    fn default() -> Self {
        NodeLocks {
            dir: LockDir::default(),
            scope: "drover".into(),
            run: "none".into(),
        }
    }
}

impl NodeLocks {
    /// Locks in `dir`, scoped to this controller host and `site_root`, held by `run`.
    pub fn new(dir: LockDir, site_root: &Path, run: &str) -> NodeLocks {
        let root = std::fs::canonicalize(site_root).unwrap_or_else(|_| site_root.to_path_buf());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let mut h = Sha256::new();
        h.update(host.trim().as_bytes());
        h.update([0]);
        h.update(root.as_os_str().as_encoded_bytes());
        let scope = hex::encode(&h.finalize()[..6]);
        NodeLocks {
            dir,
            scope,
            run: run.to_string(),
        }
    }

    /// The lock's file name in the lock directory.
    pub fn file_name(&self, node: &str) -> String {
        format!("{}-{node}.lock", self.scope)
    }

    /// `_ld=DIR; _lf="$_ld/NAME";` (`_` names: a script's user commands never see them)
    fn paths(&self, node: &str) -> ShellLine {
        ShellLine::new()
            .code("_ld=")
            .expand(&self.dir)
            .code("; _lf=\"$_ld\"/")
            .value(self.file_name(node))
            .code("; ")
    }

    /// Takes the lock on fd 9 (waiting up to `wait`), records the run in it, then runs
    /// `then`. A single command (`remote_script`) is `exec`ed and holds fd 9 itself; in a
    /// [`super::Script`] the script's shell holds it and its commands run without it, so
    /// a process a step leaves running (`daemon &`) does not keep the node locked. A node
    /// without `flock`, or whose lock directory cannot be made, runs unlocked. The
    /// directory is made only when it is not there (no `mkdir` process per step).
    pub(super) fn wrap(&self, node: &str, wait: Duration, then: &ShellLine) -> ShellLine {
        let secs = wait.as_secs().max(1);
        self.paths(node)
            .code(
                "if command -v flock >/dev/null 2>&1 && { [ -d \"$_ld\" ] || mkdir -p -m 0700 \"$_ld\" 2>/dev/null; } && { [ -w \"$_lf\" ] || [ ! -e \"$_lf\" ]; }; then exec 9>>\"$_lf\"; flock -w ",
            )
            .number(secs)
            .code(" 9 || { echo \"drover: a step is still running on this node (lock $_lf)\" >&2; exit ")
            .number(super::LOCKED_EXIT.unsigned_abs())
            .code("; }; printf 'run %s pid %s\\n' ")
            .value(&self.run)
            .code(" \"$$\" > \"$_lf\"; fi; ")
            .line(then)
    }

    /// Waits (up to `timeout`) until no step holds `node`'s lock.
    pub fn settle(&self, node: &str, timeout: Duration) -> ShellLine {
        self.paths(node)
            .code("if command -v flock >/dev/null 2>&1 && [ -e \"$_lf\" ]; then flock -w ")
            .number(timeout.as_secs().max(1))
            .code(" \"$_lf\" true; fi")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_dirs_expand_variables_and_nothing_else() {
        for ok in [
            DEFAULT_LOCK_DIR,
            "/var/lib/drover/locks",
            "$HOME/.drover",
            "${DROVER_STATE}/locks",
        ] {
            assert!(LockDir::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "relative/dir",
            "/tmp/$(id)",
            "/tmp/`id`",
            "/tmp/a b",
            "/tmp/\"x",
            "${HOME",
            "/tmp/x;rm",
            "$",
            "",
        ] {
            assert!(LockDir::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unrelated_sites_get_different_lock_names() {
        let a = NodeLocks::new(LockDir::default(), Path::new("/sites/a"), "r1");
        let b = NodeLocks::new(LockDir::default(), Path::new("/sites/b"), "r2");
        let a2 = NodeLocks::new(LockDir::default(), Path::new("/sites/a"), "r3");
        assert_ne!(a.file_name("n1"), b.file_name("n1"));
        assert_eq!(
            a.file_name("n1"),
            a2.file_name("n1"),
            "a resumed run finds its lock"
        );
    }

    /// Takes a lock with the real shell: the directory is made 0700 and the file names
    /// the run.
    #[test]
    fn the_lock_is_made_private_and_names_its_run() {
        let home = tempfile::tempdir().unwrap();
        let dir = LockDir::parse("${LOCKS_HOME}/locks").unwrap();
        let locks = NodeLocks::new(dir, home.path(), "20260101T000000Z-w-abcd");
        let line = locks.wrap(
            "n 1",
            Duration::from_secs(5),
            &ShellLine::new().code("cat \"$_lf\""),
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(line.as_str())
            .env("LOCKS_HOME", home.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("run 20260101T000000Z-w-abcd pid "),
            "{text} {line}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.path().join("locks"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(home.path().join("locks").join(locks.file_name("n 1")).exists());
    }
}
