//! Sampling `sinfo` while a rollout runs on a [`SlurmCluster`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use super::slurm_cluster::{SlurmCluster, SlurmNodeState};
use super::testbed_error::TestbedError;

/// What the monitor saw: the most nodes unavailable at once per partition, as Slurm
/// itself reported them (`sinfo`), and the sample that had the most overall.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlurmMonitorReport {
    pub samples: u64,
    pub max_unavailable: usize,
    pub max_per_partition: BTreeMap<String, usize>,
    /// The unavailable nodes (with their state) of the first sample with
    /// `max_unavailable` of them.
    pub worst: Vec<String>,
}

/// A thread running `sinfo -h -N` every `interval` until stopped: the independent
/// witness of a rollout's budgets (it counts what Slurm says, not what drover thinks).
#[derive(Debug)]
pub struct SlurmMonitor {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<SlurmMonitorReport>>,
}

impl SlurmMonitor {
    pub fn start(cluster: &SlurmCluster, interval: Duration) -> Result<SlurmMonitor, TestbedError> {
        let conf = cluster.conf();
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("slurm-monitor".into())
            .spawn(move || sample(&conf, interval, &stopped))
            .map_err(|source| TestbedError::Thread {
                what: "slurm monitor",
                source,
            })?;
        Ok(SlurmMonitor {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops sampling and returns what was seen.
    pub fn finish(mut self) -> SlurmMonitorReport {
        self.stop.take();
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

impl Drop for SlurmMonitor {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn sample(conf: &PathBuf, interval: Duration, stopped: &Receiver<()>) -> SlurmMonitorReport {
    let mut r = SlurmMonitorReport::default();
    loop {
        if let Some(states) = sinfo(conf) {
            r.samples += 1;
            let mut per: BTreeMap<String, usize> = BTreeMap::new();
            let mut down: BTreeSet<String> = BTreeSet::new();
            for s in &states {
                let e = per.entry(s.partition.clone()).or_default();
                if s.unavailable() {
                    *e += 1;
                    down.insert(format!("{} {}", s.node, s.state));
                }
            }
            for (p, n) in per {
                let m = r.max_per_partition.entry(p).or_default();
                *m = (*m).max(n);
            }
            if down.len() > r.max_unavailable {
                r.max_unavailable = down.len();
                r.worst = down.into_iter().collect();
            }
        }
        match stopped.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return r,
        }
    }
}

fn sinfo(conf: &PathBuf) -> Option<Vec<SlurmNodeState>> {
    let out = Command::new("sinfo")
        .env("SLURM_CONF", conf)
        .args(["-h", "-N", "-o", "%N|%P|%T|%E"])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut f = l.splitn(4, '|');
                Some(SlurmNodeState {
                    node: f.next()?.to_string(),
                    partition: f.next()?.trim_end_matches('*').to_string(),
                    state: f.next()?.to_string(),
                    reason: f.next()?.to_string(),
                })
            })
            .collect(),
    )
}
