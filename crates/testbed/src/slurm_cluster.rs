//! A real Slurm cluster on one host, one slurmd per testbed node.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::safe_dir::check_dir;
use super::slurm_job::SlurmJob;
use super::testbed::Testbed;
use super::testbed_error::TestbedError;

/// The node-side script: reboots and slurmd starts.
const NODE_SCRIPT: &str = include_str!("slurm_node.sh");

/// The first port block tried; each cluster takes `PORTS_PER_CLUSTER` ports from its base
/// (slurmctld on the base, node `i`'s slurmd on base + 1 + i), below the ephemeral range.
const FIRST_BASE: u16 = 17000;
const LAST_BASE: u16 = 19000;
const PORTS_PER_CLUSTER: u16 = 64;
/// The most nodes one cluster has: one port each in its block.
pub const MAX_SLURM_NODES: usize = (PORTS_PER_CLUSTER - 1) as usize;
/// How long start-up waits for every node to be `idle` in `sinfo`.
const START_WAIT: Duration = Duration::from_secs(30);

/// Why Slurm tests cannot run here, if they cannot: the Debian packages `slurm-wlm` and
/// `munge` are missing, or the tests do not run as root (slurmd starts jobs as their
/// users, which only root can). Tests call this and skip, unless
/// `DROVER_REQUIRE_SLURM=1` (set by `.ci/run`) makes a missing cluster a failure.
pub fn slurm_unavailable() -> Option<String> {
    for program in ["/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged"] {
        if !Path::new(program).exists() {
            return Some(format!("{program} is missing (apt-get install slurm-wlm munge)"));
        }
    }
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("Slurm daemons need root".to_string());
    }
    None
}

/// What a node's `sinfo` line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmNodeState {
    pub node: String,
    pub partition: String,
    /// `%T`, with Slurm's suffixes (`*` not responding, `@` reboot pending, ...).
    pub state: String,
    /// `%E`: the reason, `none` without one.
    pub reason: String,
}

impl SlurmNodeState {
    /// In no state to take jobs: drained, draining, down, failing, in maintenance or
    /// rebooting, or not responding.
    pub fn unavailable(&self) -> bool {
        let base: String = self
            .state
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        self.state.contains('*')
            || matches!(
                base.as_str(),
                "down"
                    | "drained"
                    | "draining"
                    | "drain"
                    | "fail"
                    | "failing"
                    | "maint"
                    | "reboot"
                    | "reboot_issued"
                    | "reboot_requested"
                    | "unknown"
                    | "future"
                    | "powered_down"
                    | "powering_down"
                    | "powering_up"
            )
    }
}

/// One slurmctld and one slurmd per node of a [`Testbed`] (Debian builds Slurm with
/// multiple-slurmd support: `slurmd -N NODE`, each node with its own `Port=`), munge with
/// its own key and socket, job outcomes in `jobcomp/filetxt` (no accounting database),
/// `proctrack/linuxproc` (no cgroups needed), and a `RebootProgram` that simulates a
/// reboot of the node (see [`SlurmCluster::reboot_command`]). The node's slurmd and its
/// sshd share the node's loopback address, so drover reaches Slurm node `node001` over
/// ssh at the address slurmctld talks to it on.
///
/// Everything lives in the given directory: `etc/slurm.conf` (`SLURM_CONF` for every
/// client), `munge/`, `run/` (sockets and pid files), `spool/`, `log/` and
/// `jobcomp.txt`. Dropping the cluster kills its daemons and jobs.
#[derive(Debug)]
pub struct SlurmCluster {
    dir: PathBuf,
    nodes: Vec<String>,
    base_port: u16,
    /// Held while the cluster lives: the port block's cross-process lock.
    _lock: File,
}

impl SlurmCluster {
    /// Starts a cluster over `testbed`'s nodes with the given partitions (name → node
    /// indices; the first is the default), a reboot keeping a node down for `down_for`.
    /// Returns once every node is `idle`. Run a testbed reboot service
    /// ([`Testbed::reboot_service`]) for reboots to bring the node's sshd back.
    pub fn start(
        dir: &Path,
        testbed: &Testbed,
        partitions: &[(&str, Vec<usize>)],
        down_for: Duration,
    ) -> Result<SlurmCluster, TestbedError> {
        SlurmCluster::start_with_cpus(dir, testbed, partitions, down_for, 1)
    }

    /// As [`SlurmCluster::start`], with `cpus` CPUs per node (one job per CPU:
    /// `CR_Core`), so a node can run a long job and short ones side by side.
    pub fn start_with_cpus(
        dir: &Path,
        testbed: &Testbed,
        partitions: &[(&str, Vec<usize>)],
        down_for: Duration,
        cpus: u32,
    ) -> Result<SlurmCluster, TestbedError> {
        if let Some(why) = slurm_unavailable() {
            return Err(TestbedError::CommandFailed {
                command: "slurm".into(),
                status: "unavailable".into(),
                stderr: why,
            });
        }
        let n = testbed.nodes().len();
        if n > MAX_SLURM_NODES {
            return Err(TestbedError::NodeCount {
                requested: n,
                max: MAX_SLURM_NODES,
            });
        }
        std::fs::create_dir_all(dir).map_err(|e| TestbedError::io("create cluster dir", dir, e))?;
        let dir = std::fs::canonicalize(dir).map_err(|e| TestbedError::io("resolve cluster dir", dir, e))?;
        check_dir(&dir)?;
        // munged insists that everyone may reach its socket's directory.
        for d in dir.ancestors() {
            if d.starts_with(std::env::temp_dir()) && d != std::env::temp_dir() {
                chmod(d, 0o755)?;
            }
        }
        let (base_port, lock) = lease_ports()?;
        for sub in ["etc", "munge", "run", "spool/ctld", "log", "bin", "nodes"] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| TestbedError::io("create directory", &d, e))?;
        }
        chmod(&dir.join("munge"), 0o700)?;
        chmod(&dir.join("run"), 0o755)?;
        let key_path = dir.join("munge/munge.key");
        run(Command::new("dd")
            .arg("if=/dev/urandom")
            .arg(format!("of={}", key_path.display()))
            .args(["bs=1024", "count=1", "status=none"]))?;
        chmod(&key_path, 0o400)?;

        let nodes: Vec<String> = testbed.nodes().iter().map(|n| n.name.clone()).collect();
        for (i, node) in testbed.nodes().iter().enumerate() {
            let d = dir.join("nodes").join(&node.name);
            std::fs::create_dir_all(&d).map_err(|e| TestbedError::io("create directory", &d, e))?;
            write(&d.join("state_dir"), &node.state_dir.to_string_lossy())?;
            write(&d.join("port"), &(base_port + 1 + i as u16).to_string())?;
        }
        write(&dir.join("down_for_ms"), &down_for.as_millis().to_string())?;
        let script = dir.join("bin/slurm-node");
        write(&script, &NODE_SCRIPT.replace("@DIR@", &dir.to_string_lossy()))?;
        chmod(&script, 0o755)?;
        let reboot_program = dir.join("bin/reboot-program");
        write(
            &reboot_program,
            &format!(
                "#!/bin/sh\n# slurmd runs this (via sh -c) for `scontrol reboot`: find which node's\n\
                 # slurmd it is among the ancestors, and reboot that node.\n\
                 p=$PPID\nwhile [ \"$p\" -gt 1 ]; do\n\
                 \tnode=$(tr '\\0' '\\n' </proc/$p/cmdline 2>/dev/null | sed -n '/^-N$/{{n;p;q}}')\n\
                 \t[ -n \"$node\" ] && exec {} reboot \"$node\"\n\
                 \tp=$(awk '{{print $4}}' /proc/$p/stat)\ndone\nexit 1\n",
                script.display()
            ),
        )?;
        chmod(&reboot_program, 0o755)?;
        write(
            &dir.join("etc/slurm.conf"),
            &slurm_conf(&dir, testbed, partitions, base_port, cpus.max(1)),
        )?;

        let cluster = SlurmCluster {
            dir,
            nodes,
            base_port,
            _lock: lock,
        };
        let d = &cluster.dir;
        run(Command::new("/usr/sbin/munged")
            .arg(format!("--key-file={}", key_path.display()))
            .arg(format!("--socket={}", d.join("run/munge.sock").display()))
            .arg(format!("--pid-file={}", d.join("run/munged.pid").display()))
            .arg(format!("--log-file={}", d.join("log/munged.log").display()))
            .arg(format!("--seed-file={}", d.join("munge/munged.seed").display())))?;
        run(cluster.command("/usr/sbin/slurmctld").arg("-i"))?;
        for node in &cluster.nodes {
            run(cluster.command(&script).args(["start", node]))?;
        }
        cluster.wait_until(START_WAIT, |s| s.iter().all(|n| n.state == "idle"))?;
        Ok(cluster)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `SLURM_CONF` for every Slurm client.
    pub fn conf(&self) -> PathBuf {
        self.dir.join("etc/slurm.conf")
    }

    /// slurmctld's port.
    pub fn port(&self) -> u16 {
        self.base_port
    }

    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// A command with `SLURM_CONF` set.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.conf()).stdin(Stdio::null());
        c
    }

    /// The node-side reboot command for `NODE` (a workflow's reboot step runs it on the
    /// node): kills the node's jobs, takes its sshd down (through the testbed's reboot
    /// service) and restarts its slurmd as freshly booted after the down time.
    pub fn reboot_command(&self) -> PathBuf {
        self.dir.join("bin/slurm-node")
    }

    /// Runs a Slurm client with `SLURM_CONF`; its stdout.
    pub fn client(&self, program: &str, args: &[&str]) -> Result<String, TestbedError> {
        let out = self
            .command(program)
            .args(args)
            .output()
            .map_err(|e| TestbedError::spawn(program, "slurm-client", e))?;
        if !out.status.success() {
            return Err(TestbedError::CommandFailed {
                command: format!("{program} {}", args.join(" ")),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Submits `sleep SECS` to `nodes` (a host list, or every node when empty) with a
    /// time limit; returns the job id.
    pub fn sbatch_sleep(&self, secs: f64, nodes: &str, time_limit_min: u32) -> Result<u32, TestbedError> {
        let wrap = format!("sleep {secs}");
        let limit = time_limit_min.to_string();
        let mut args = vec!["--parsable", "-o", "/dev/null", "-t", &limit, "--wrap", &wrap];
        if !nodes.is_empty() {
            args.extend(["-w", nodes]);
        }
        let out = self.client("sbatch", &args)?;
        out.trim()
            .split(';')
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| TestbedError::CommandFailed {
                command: "sbatch".into(),
                status: "unparsable".into(),
                stderr: out.clone(),
            })
    }

    /// Every node's line of `sinfo -N` (one per partition it is in).
    pub fn sinfo(&self) -> Result<Vec<SlurmNodeState>, TestbedError> {
        let out = self.client("sinfo", &["-h", "-N", "-o", "%N|%P|%T|%E"])?;
        Ok(out
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
            .collect())
    }

    /// One node's state (its first partition's line).
    pub fn state(&self, node: &str) -> Result<SlurmNodeState, TestbedError> {
        self.sinfo()?
            .into_iter()
            .find(|s| s.node == node)
            .ok_or_else(|| TestbedError::UnknownSchedulerNode { node: node.into() })
    }

    /// Polls `sinfo` until `ok` holds, for at most `limit`.
    pub fn wait_until(
        &self,
        limit: Duration,
        ok: impl Fn(&[SlurmNodeState]) -> bool,
    ) -> Result<Vec<SlurmNodeState>, TestbedError> {
        let started = Instant::now();
        loop {
            let s = self.sinfo();
            if let Ok(s) = &s
                && ok(s)
            {
                return Ok(s.clone());
            }
            if started.elapsed() > limit {
                return Err(TestbedError::CommandFailed {
                    command: "sinfo (waiting)".into(),
                    status: format!("not as expected after {limit:?}"),
                    stderr: format!("{s:?}\nslurmctld log tail:\n{}", self.log_tail("slurmctld.log")),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Jobs pending or running now.
    pub fn queued(&self) -> Result<usize, TestbedError> {
        Ok(self.client("squeue", &["-h", "-o", "%i"])?.lines().count())
    }

    /// Every finished job, from `jobcomp/filetxt`.
    pub fn finished_jobs(&self) -> Vec<SlurmJob> {
        std::fs::read_to_string(self.dir.join("jobcomp.txt"))
            .unwrap_or_default()
            .lines()
            .filter_map(SlurmJob::parse)
            .collect()
    }

    /// `sdiag`'s total RPC count since the last reset.
    pub fn rpc_count(&self) -> Result<u64, TestbedError> {
        let out = self.client("sdiag", &[])?;
        Ok(rpc_total(&out))
    }

    /// The last lines of a log in `log/`.
    pub fn log_tail(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.join("log").join(name)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Times `bin/slurm-node reboot` was run, by node.
    pub fn reboots(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for l in std::fs::read_to_string(self.dir.join("log/reboots"))
            .unwrap_or_default()
            .lines()
        {
            if let Some(n) = l.split_whitespace().nth(2) {
                *out.entry(n.to_string()).or_default() += 1;
            }
        }
        out
    }
}

/// The sum of sdiag's "Remote Procedure Call statistics by message type" counts.
fn rpc_total(sdiag: &str) -> u64 {
    let mut total = 0;
    let mut in_types = false;
    for l in sdiag.lines() {
        if l.starts_with("Remote Procedure Call statistics by message type") {
            in_types = true;
            continue;
        }
        if l.starts_with("Remote Procedure Call statistics by user") {
            break;
        }
        if in_types
            && let Some(count) = l.split("count:").nth(1)
            && let Some(n) = count
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        {
            total += n;
        }
    }
    total
}

impl Drop for SlurmCluster {
    /// No daemon or job outlives its cluster.
    fn drop(&mut self) {
        // First stop what could start a slurmd later: pending reboot restarts see the
        // marker, and those already waiting are killed with their process group. Only
        // then are the daemons stopped and the last sweep made, so nothing starts after it.
        let run = self.dir.join("run");
        let _ = std::fs::write(run.join("shut-down"), "");
        if let Ok(entries) = std::fs::read_dir(&run) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("restart-")
                    && name.ends_with(".pid")
                    && let Ok(pid) = std::fs::read_to_string(e.path())
                    && let Ok(pid) = pid.trim().parse::<u32>()
                {
                    let _ = Command::new("kill")
                        .args(["-9", "--", &format!("-{pid}")])
                        .status();
                }
            }
        }
        let _ = self.client("scancel", &["--full", "-u", "root"]);
        for node in &self.nodes {
            let _ = self
                .command(self.reboot_command())
                .args(["stop-slurmd", node])
                .status();
        }
        for pid_file in ["slurmctld.pid", "munged.pid"] {
            if let Ok(pid) = std::fs::read_to_string(self.dir.join("run").join(pid_file)) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
        // Jobs of this cluster that outlived their slurmstepd.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "for e in /proc/[0-9]*/environ; do {{ tr '\\0' '\\n' <$e; }} 2>/dev/null | grep -qx 'SLURM_CONF={}' && kill -9 $(basename $(dirname $e)); done",
                self.conf().display()
            ))
            .status();
    }
}

fn slurm_conf(
    dir: &Path,
    testbed: &Testbed,
    partitions: &[(&str, Vec<usize>)],
    base: u16,
    cpus: u32,
) -> String {
    let host = hostname();
    let d = dir.display();
    let mut s = format!(
        "# drover testbed Slurm cluster: generated.\n\
         ClusterName=drover\n\
         SlurmctldHost={host}(127.0.0.1)\n\
         SlurmctldPort={base}\n\
         SlurmUser=root\n\
         SlurmdUser=root\n\
         AuthType=auth/munge\n\
         AuthInfo=socket={d}/run/munge.sock\n\
         CredType=cred/munge\n\
         StateSaveLocation={d}/spool/ctld\n\
         SlurmdSpoolDir={d}/spool/%n\n\
         SlurmctldPidFile={d}/run/slurmctld.pid\n\
         SlurmdPidFile={d}/run/slurmd-%n.pid\n\
         SlurmctldLogFile={d}/log/slurmctld.log\n\
         SlurmdLogFile={d}/log/slurmd-%n.log\n\
         ProctrackType=proctrack/linuxproc\n\
         TaskPlugin=task/none\n\
         JobCompType=jobcomp/filetxt\n\
         JobCompLoc={d}/jobcomp.txt\n\
         AccountingStorageType=accounting_storage/none\n\
         JobAcctGatherType=jobacct_gather/none\n\
         SchedulerType=sched/backfill\n\
         SchedulerParameters=sched_min_interval=100000,bf_interval=1\n\
         SelectType=select/cons_tres\n\
         SelectTypeParameters=CR_Core\n\
         SlurmdParameters=config_overrides\n\
         ReturnToService=2\n\
         MpiDefault=none\n\
         SwitchType=switch/none\n\
         SlurmdTimeout=30\n\
         ResumeTimeout=60\n\
         InactiveLimit=0\n\
         KillWait=2\n\
         MinJobAge=2\n\
         RebootProgram={d}/bin/reboot-program\n"
    );
    for (i, n) in testbed.nodes().iter().enumerate() {
        let _ = writeln!(
            s,
            "NodeName={} NodeHostname={host} NodeAddr={} Port={} CPUs={cpus} RealMemory=100 State=UNKNOWN",
            n.name,
            n.host,
            base + 1 + i as u16
        );
    }
    for (k, (name, members)) in partitions.iter().enumerate() {
        let list: Vec<&str> = members
            .iter()
            .filter_map(|i| testbed.nodes().get(*i).map(|n| n.name.as_str()))
            .collect();
        let _ = writeln!(
            s,
            "PartitionName={name} Nodes={} Default={} MaxTime=INFINITE State=UP",
            list.join(","),
            if k == 0 { "YES" } else { "NO" }
        );
    }
    s
}

fn hostname() -> String {
    Command::new("hostname")
        .arg("-s")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A block of ports no other cluster (in any process) uses, free right now.
fn lease_ports() -> Result<(u16, File), TestbedError> {
    let mut base = FIRST_BASE;
    while base <= LAST_BASE {
        let path = std::env::temp_dir().join(format!("drover-slurm-ports-{base}.lock"));
        if let Ok(file) = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            && file.try_lock().is_ok()
            && (base..base + PORTS_PER_CLUSTER).all(|p| std::net::TcpListener::bind(("0.0.0.0", p)).is_ok())
        {
            return Ok((base, file));
        }
        base += PORTS_PER_CLUSTER;
    }
    Err(TestbedError::NoFreePort {
        first: FIRST_BASE,
        last: LAST_BASE + PORTS_PER_CLUSTER,
    })
}

fn run(c: &mut Command) -> Result<(), TestbedError> {
    let program = c.get_program().to_string_lossy().into_owned();
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| TestbedError::spawn(&program, "slurm-wlm", e))?;
    if !out.status.success() {
        return Err(TestbedError::CommandFailed {
            command: program,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

fn chmod(path: &Path, mode: u32) -> Result<(), TestbedError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| TestbedError::io("set permissions of", path, e))
}

fn write(path: &Path, text: &str) -> Result<(), TestbedError> {
    std::fs::write(path, text).map_err(|e| TestbedError::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdiag_rpc_counts_are_summed_by_type_only() {
        let out = "Remote Procedure Call statistics by message type\n\
            \tREQUEST_PARTITION_INFO                  ( 2009) count:12     ave_time:100    total_time:1200\n\
            \tREQUEST_NODE_INFO                       ( 2007) count:30     ave_time:90     total_time:2700\n\
            \n\
            Remote Procedure Call statistics by user\n\
            \troot            (       0) count:42     ave_time:93     total_time:3900\n";
        assert_eq!(rpc_total(out), 42);
    }

    #[test]
    fn unavailable_states() {
        let s = |state: &str| SlurmNodeState {
            node: "n".into(),
            partition: "p".into(),
            state: state.into(),
            reason: "none".into(),
        };
        for state in [
            "drained", "draining", "down*", "idle*", "maint", "reboot^", "fail",
        ] {
            assert!(s(state).unavailable(), "{state}");
        }
        for state in ["idle", "mixed", "allocated", "completing"] {
            assert!(!s(state).unavailable(), "{state}");
        }
    }
}
