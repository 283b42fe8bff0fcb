//! Where CPU time went during one run: the whole machine, and the nodes' sshds.

use std::path::PathBuf;

use drover_testbed::Testbed;

/// Linux's `USER_HZ`, the unit of `/proc` CPU times (100 on every mainstream platform).
const TICKS_PER_SECOND: f64 = 100.0;

/// A snapshot of CPU time spent so far.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    /// Every CPU's non-idle time since boot (`/proc/stat`), in ticks.
    machine: u64,
    /// The nodes' sshd listeners, their own time plus that of every session process they
    /// reaped (a connection's sshd, the shells and commands it ran), in ticks.
    nodes: u64,
}

/// CPU seconds between two samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    /// All CPUs, everything on the machine (so also any unrelated load).
    pub machine: f64,
    /// The nodes' side: sshd and what ran in the sessions.
    pub nodes: f64,
    /// The tool's process tree as reaped ([`reaped_children`]); set by the caller.
    pub tool: f64,
}

impl CpuUse {
    /// What is neither the nodes nor the tool's reaped tree: ControlMasters that
    /// daemonized, the bench itself, and anything else running on the machine.
    pub fn rest(&self) -> f64 {
        (self.machine - self.nodes - self.tool).max(0.0)
    }
}

pub struct CpuMeter {
    pid_files: Vec<PathBuf>,
}

impl CpuMeter {
    pub fn new(bed: &Testbed) -> CpuMeter {
        let pid_files = bed
            .nodes()
            .iter()
            .map(|n| bed.dir().join("sshd").join(&n.name).join("sshd.pid"))
            .collect();
        CpuMeter { pid_files }
    }

    pub fn sample(&self) -> CpuSample {
        let nodes = self
            .pid_files
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .filter_map(|pid| process_ticks(pid.trim()))
            .sum();
        CpuSample {
            machine: machine_busy().unwrap_or(0),
            nodes,
        }
    }

    pub fn since(&self, start: CpuSample) -> CpuUse {
        let now = self.sample();
        let secs = |a: u64, b: u64| a.saturating_sub(b) as f64 / TICKS_PER_SECOND;
        CpuUse {
            machine: secs(now.machine, start.machine),
            nodes: secs(now.nodes, start.nodes),
            tool: 0.0,
        }
    }
}

/// CPU seconds of every child this process has waited for so far (`cutime + cstime`):
/// around one tool run, the tool and every descendant it reaped (not a daemonized
/// ControlMaster, which is reparented to init).
pub fn reaped_children() -> f64 {
    let ticks = std::fs::read_to_string("/proc/self/stat").ok().and_then(|stat| {
        let rest = stat.get(stat.rfind(')')? + 2..)?.to_string();
        let f: Vec<&str> = rest.split_whitespace().collect();
        // Index 0 is field 3 (state): cutime (field 16) is index 13, cstime index 14.
        let t = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        Some(t(13)? + t(14)?)
    });
    ticks.unwrap_or(0) as f64 / TICKS_PER_SECOND
}

/// `user + nice + system + irq + softirq + steal` of the `cpu` line of `/proc/stat`.
fn machine_busy() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    Some(v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7)?)
}

/// `utime + stime + cutime + cstime` of a process (`/proc/PID/stat`).
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces:
    // index 0 is field 3 (state), so utime (field 14) is index 11.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(t(11)? + t(12)? + t(13)? + t(14)?)
}
