//! The directory of a controller's ssh control sockets, `/tmp/drover-<pid>/`, and the
//! cleanup of the ones dead controllers left behind.
//!
//! Unix socket paths are limited to 108 bytes, so the directory must be short, not under
//! a deep state directory. A controller that is killed cannot remove its directory or
//! stop its masters; the next one does, telling a dead owner from a live one by the
//! `owner` file (pid and process start time, so a reused pid is not mistaken for it).

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::ssh_master::stop_master;

const PREFIX: &str = "drover-";
const OWNER_FILE: &str = "owner";

/// A control directory of this process, created with mode 0700 and its `owner` file:
/// `drover-<pid>` for the first connector, `drover-<pid>-<n>` for later ones (an
/// embedder or a test may run several, and each removes its own at the end).
pub(super) fn create(base: &Path) -> std::io::Result<PathBuf> {
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let pid = std::process::id();
    let dir = match MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
        0 => base.join(format!("{PREFIX}{pid}")),
        n => base.join(format!("{PREFIX}{pid}-{n}")),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let start = start_time(pid).unwrap_or_default();
    // Written aside and renamed into place: another drover starting now reads either no
    // `owner` file or the whole of it, never the empty file `write` first creates.
    let aside = dir.join(format!(".{OWNER_FILE}"));
    std::fs::write(&aside, format!("{pid} {start}\n"))?;
    std::fs::rename(&aside, dir.join(OWNER_FILE))?;
    Ok(dir)
}

/// Removes the control directories under `base` whose controller is dead, after asking
/// every master still listening there to exit. Directories of live controllers, and of
/// other users, are left alone. Returns the directories removed.
pub fn clean_dead(base: &Path) -> Vec<PathBuf> {
    let me = rustix::process::getuid().as_raw();
    let Ok(entries) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|p| p.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        // A directory with this process's pid is not spared for it: one a dead drover
        // left under the same pid (reused) has another start time, and its stale sockets
        // would be in the way of this process's masters.
        if !meta.is_dir() || meta.uid() != me || alive(&dir, pid) {
            continue;
        }
        if let Ok(files) = std::fs::read_dir(&dir) {
            for f in files.flatten() {
                if f.file_type().is_ok_and(|t| {
                    use std::os::unix::fs::FileTypeExt;
                    t.is_socket()
                }) {
                    stop_master(&f.path());
                }
            }
        }
        if std::fs::remove_dir_all(&dir).is_ok() {
            removed.push(dir);
        }
    }
    removed
}

/// Whether the controller that made `dir` still runs: its pid is alive with the start
/// time it recorded. A directory whose `owner` file is missing or says no pid (one
/// being made right now, or an older drover's) counts as alive while its pid is:
/// removing a live controller's directory cuts every connection it has.
fn alive(dir: &Path, pid: u32) -> bool {
    let Some(now) = start_time(pid) else {
        // No start time to compare (no /proc): only this process is known alive.
        return pid == std::process::id();
    };
    let Ok(text) = std::fs::read_to_string(dir.join(OWNER_FILE)) else {
        return true;
    };
    let mut parts = text.split_whitespace();
    let Some(owner) = parts.next() else {
        return true;
    };
    let recorded = parts.next().and_then(|s| s.parse::<u64>().ok());
    owner == pid.to_string() && recorded.is_none_or(|r| r == now)
}

/// Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks since boot.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses; it ends at the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_controllers_dir_goes_and_a_live_ones_stays() {
        let base = tempfile::tempdir().unwrap();
        let mine = create(base.path()).unwrap();
        // A pid that cannot be running (above pid_max's hard limit).
        let dead = base.path().join("drover-4194305");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join(OWNER_FILE), "4194305 1\n").unwrap();
        std::fs::write(dead.join("3.log"), "").unwrap();
        // A live pid whose start time does not match: a reused pid, so dead.
        let parent = std::os::unix::process::parent_id();
        let reused = base.path().join(format!("drover-{parent}"));
        std::fs::create_dir(&reused).unwrap();
        std::fs::write(reused.join(OWNER_FILE), format!("{parent} 1\n")).unwrap();
        // A live pid with its real start time: kept.
        let child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let live = base.path().join(format!("drover-{}", child.id()));
        std::fs::create_dir(&live).unwrap();
        let start = start_time(child.id()).unwrap();
        std::fs::write(live.join(OWNER_FILE), format!("{} {start}\n", child.id())).unwrap();
        // This process's own pid, left by a dead drover that had it before: removed.
        let me = std::process::id();
        let stale_mine = base.path().join(format!("drover-{me}-99"));
        std::fs::create_dir(&stale_mine).unwrap();
        std::fs::write(stale_mine.join(OWNER_FILE), format!("{me} 1\n")).unwrap();
        // A live pid whose `owner` file is still empty (being written): kept.
        let making = base.path().join(format!("drover-{}-7", child.id()));
        std::fs::create_dir(&making).unwrap();
        std::fs::write(making.join(OWNER_FILE), "").unwrap();
        let unrelated = base.path().join("drover-notapid");
        std::fs::create_dir(&unrelated).unwrap();

        let mut removed = clean_dead(base.path());
        removed.sort();
        let mut want = vec![dead.clone(), reused.clone(), stale_mine.clone()];
        want.sort();
        assert_eq!(removed, want);
        assert!(mine.exists() && live.exists() && making.exists() && unrelated.exists());
        assert!(!mine.join(format!(".{OWNER_FILE}")).exists());
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn start_times_are_read_past_odd_command_names() {
        assert!(start_time(std::process::id()).is_some());
        assert!(start_time(4_194_305).is_none());
    }
}
