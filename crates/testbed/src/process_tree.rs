//! The processes below a set of sshds, read from `/proc`, and how to kill them all.

use std::collections::{BTreeSet, HashMap};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::testbed_error::TestbedError;

/// Stopping a node must drop its established sessions too, like a reboot: killing only
/// the listening sshd leaves every open connection (and a multiplexing master's) working.
/// Those sessions are not in sshd's process group (sshd calls `setsid` for each
/// connection) and re-title themselves (`sshd: root@notty`), so neither a process group
/// nor `pkill -f <config>` finds them all; parentage does.
#[derive(Debug, Default)]
pub(crate) struct ProcessTree {
    children: HashMap<u32, Vec<u32>>,
    state: HashMap<u32, char>,
}

/// How long to wait for frozen processes to actually stop before killing them anyway.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);

impl ProcessTree {
    /// A snapshot of every process's parent and state. Processes that exit while being
    /// read are skipped: they are not there to kill.
    pub(crate) fn read() -> Result<ProcessTree, TestbedError> {
        let proc = std::path::Path::new("/proc");
        let entries = std::fs::read_dir(proc).map_err(|e| TestbedError::io("list processes in", proc, e))?;
        let mut tree = ProcessTree::default();
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ppid ...`, where comm may itself contain `)` and spaces.
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            let mut fields = after.split_whitespace();
            let state = fields.next().and_then(|s| s.chars().next());
            let ppid = fields.next().and_then(|s| s.parse::<u32>().ok());
            if let (Some(state), Some(ppid)) = (state, ppid) {
                tree.children.entry(ppid).or_default().push(pid);
                tree.state.insert(pid, state);
            }
        }
        Ok(tree)
    }

    /// Every process below `roots` (not the roots themselves).
    pub(crate) fn descendants(&self, roots: &[u32]) -> BTreeSet<u32> {
        let mut found = BTreeSet::new();
        let mut todo: Vec<u32> = roots.to_vec();
        while let Some(pid) = todo.pop() {
            for &child in self.children.get(&pid).into_iter().flatten() {
                if found.insert(child) {
                    todo.push(child);
                }
            }
        }
        found
    }

    /// Whether `pid` can no longer fork: stopped, dead, or gone.
    fn is_inert(&self, pid: u32) -> bool {
        self.state
            .get(&pid)
            .is_none_or(|s| matches!(s, 'T' | 't' | 'Z' | 'X' | 'x'))
    }

    /// SIGKILLs `roots` and everything below them. Everything is frozen with SIGSTOP
    /// first, top down, until a snapshot shows no new descendants and all of them
    /// stopped: otherwise a process could fork between being found and being killed, and
    /// its child would survive, reparented out of reach.
    pub(crate) fn kill_all(roots: &[u32]) -> Result<(), TestbedError> {
        if roots.is_empty() {
            return Ok(());
        }
        signal("STOP", roots.iter().copied())?;
        let mut frozen: BTreeSet<u32> = roots.iter().copied().collect();
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        loop {
            let tree = ProcessTree::read()?;
            let new: Vec<u32> = tree
                .descendants(roots)
                .into_iter()
                .filter(|p| !frozen.contains(p))
                .collect();
            if new.is_empty() {
                if frozen.iter().all(|&p| tree.is_inert(p)) || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            signal("STOP", new.iter().copied())?;
            frozen.extend(new);
        }
        signal("KILL", frozen.into_iter())
    }
}

/// Sends `SIG<name>` to `pids` with `kill(1)` (the crate forbids `unsafe`, so no direct
/// `kill(2)`). Its exit status is ignored: it fails for processes that already exited,
/// which is the outcome wanted anyway.
fn signal(name: &str, pids: impl Iterator<Item = u32>) -> Result<(), TestbedError> {
    let pids: Vec<String> = pids.map(|p| p.to_string()).collect();
    if pids.is_empty() {
        return Ok(());
    }
    Command::new("kill")
        .arg(format!("-{name}"))
        .arg("--")
        .args(&pids)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| TestbedError::spawn("kill", "procps", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_kills_grandchildren() {
        let mut sh = Command::new("sh")
            .args(["-c", "sleep 60 & sleep 60 & wait"])
            .spawn()
            .expect("spawn sh");
        let root = sh.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        while ProcessTree::read().expect("read").descendants(&[root]).len() < 2 {
            assert!(Instant::now() < deadline, "sleeps never appeared");
            std::thread::sleep(Duration::from_millis(5));
        }
        let below = ProcessTree::read().expect("read").descendants(&[root]);
        ProcessTree::kill_all(&[root]).expect("kill");
        sh.wait().expect("reap sh");
        let deadline = Instant::now() + Duration::from_secs(5);
        for pid in below {
            let stat = format!("/proc/{pid}/stat");
            while std::fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") Z")) {
                assert!(Instant::now() < deadline, "{pid} survived");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}
