//! What each key exchange costs drover's controller and the nodes: the same `drover run`
//! on N nodes whose sshds offer OpenSSH's defaults, with `ssh.kex_algorithms` set to each
//! candidate in turn, measured in CPU time (the machine is shared, so wall time says
//! little).
//!
//! `cargo bench --bench fleet -- --kex [N ...] [--rounds R]`
//!
//! Per run:
//! - **drover**: drover's own user+sys time, read from `/proc/PID/stat` while it is a zombie
//!   (after it exited, before it is reaped);
//! - **ssh clients**: every ssh process drover started. The part before `-f` detaches (the
//!   connection and the key exchange) is reaped by drover (its `cutime + cstime`); the
//!   detached masters are reparented to this bench, which is a child subreaper for that
//!   reason, and reaps them once drover has stopped them;
//! - **nodes**: every node's sshd listener with everything it reaped (a connection's sshd
//!   processes, the shells and commands);
//! - **connections**: sshd's `Accepted publickey` lines (LogLevel INFO), so the per
//!   connection figures divide by what really happened.
//!
//! Before measuring, a one-node run per candidate with sshd at DEBUG1 checks that the
//! candidate is what sshd says was negotiated.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drover_testbed::{Testbed, TestbedOptions};

use crate::cpu::{CpuMeter, reaped_children};
use crate::fixture::{Fixture, reset, verify};
use crate::negotiation;

/// Linux's `USER_HZ`.
const TICKS_PER_SECOND: f64 = 100.0;

/// The candidates, as `kex_algorithms` values; `None` is ssh's own preference.
fn candidates() -> Vec<Option<String>> {
    let offered = Command::new("ssh")
        .args(["-Q", "kex"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut v = vec![None];
    for k in [
        "sntrup761x25519-sha512@openssh.com",
        "mlkem768x25519-sha256",
        "curve25519-sha256",
    ] {
        if offered.lines().any(|l| l.trim() == k) {
            v.push(Some(k.to_string()));
        } else {
            println!("  {k}: not offered by this OpenSSH (`ssh -Q kex`), skipped");
        }
    }
    v
}

fn label(kex: &Option<String>) -> String {
    kex.clone().unwrap_or_else(|| "(ssh's default)".into())
}

/// One run's figures.
#[derive(Debug, Clone, Copy, Default)]
struct KexRun {
    wall: f64,
    drover: f64,
    ssh: f64,
    nodes: f64,
    connections: usize,
}

pub fn run(drover: &Path, sizes: &[usize], rounds: usize) {
    // Masters that `ssh -f` detaches become this process's children, so their CPU time
    // is counted when they are reaped.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).expect("become a child subreaper");
    println!(
        "key exchange CPU: `drover run bench` (5 operations) on N nodes, sshd offering OpenSSH's defaults"
    );
    let kexes = candidates();
    println!("\nnegotiated (sshd DEBUG1 log of a one-node run per setting):");
    for kex in &kexes {
        let got = negotiated(drover, kex.as_deref());
        if let Some(want) = kex
            && got != *want
        {
            panic!("kex_algorithms {want} negotiated {got}");
        }
        println!("  {:<38} -> {got}", label(kex));
    }
    for &n in sizes {
        let dir = tempfile::Builder::new()
            .prefix("drover-bench-kex")
            .tempdir()
            .expect("temp dir");
        let options = TestbedOptions {
            algorithms: None,
            log_level: Some("INFO".into()),
        };
        let bed = Testbed::start_with(&dir.path().join("bed"), n, options).expect("start sshd nodes");
        let fx = Fixture::write(dir.path(), &bed);
        let meter = CpuMeter::new(&bed);
        let mut runs: Vec<Vec<KexRun>> = kexes.iter().map(|_| Vec::new()).collect();
        println!("\n{n} nodes:");
        for round in 0..rounds {
            let mut line = format!("  round {}:", round + 1);
            for k in 0..kexes.len() {
                let i = (round + k) % kexes.len();
                fx.set_kex(&bed, kexes[i].as_deref());
                reset(&bed);
                let r = measure(drover, &fx, &bed, &meter, &dir.path().join("run.log"));
                if let Err(e) = verify(&bed) {
                    panic!("drover left the nodes unchanged: {e}");
                }
                line.push_str(&format!(
                    "  {} {:.2}+{:.2} CPU-s/{}",
                    short(&kexes[i]),
                    r.drover + r.ssh,
                    r.nodes,
                    r.connections
                ));
                runs[i].push(r);
            }
            println!("{line}  (load {})", crate::load_average());
        }
        print_table(n, rounds, &kexes, &runs);
    }
}

fn short(kex: &Option<String>) -> String {
    kex.as_deref()
        .map_or("default", |k| k.split(['-', '@']).next().unwrap_or(k))
        .to_string()
}

fn print_table(n: usize, rounds: usize, kexes: &[Option<String>], runs: &[Vec<KexRun>]) {
    println!(
        "\n{n} nodes, medians of {rounds} rounds (CPU-s per run; ms per connection):\n  \
         {:<38} {:>5} {:>7} {:>7} {:>7} {:>9} {:>7} {:>9} {:>9}",
        "kex", "conns", "wall s", "drover", "ssh", "ssh ms/c", "nodes", "node ms/c", "total ms/c"
    );
    for (kex, rs) in kexes.iter().zip(runs) {
        let m = |f: fn(&KexRun) -> f64| crate::median(&rs.iter().map(f).collect::<Vec<_>>());
        let conns = m(|r| r.connections as f64);
        let per = |cpu: f64| {
            if conns > 0.0 {
                cpu * 1000.0 / conns
            } else {
                f64::NAN
            }
        };
        let (ssh, nodes) = (m(|r| r.ssh), m(|r| r.nodes));
        println!(
            "  {:<38} {conns:>5.0} {:>7.2} {:>7.2} {ssh:>7.2} {:>9.1} {nodes:>7.2} {:>9.1} {:>9.1}",
            label(kex),
            m(|r| r.wall),
            m(|r| r.drover),
            per(ssh),
            per(nodes),
            per(m(|r| r.ssh + r.nodes)),
        );
    }
}

/// One `drover run bench` with the figures the module doc lists.
fn measure(drover: &Path, fx: &Fixture, bed: &Testbed, meter: &CpuMeter, log: &Path) -> KexRun {
    let logs: Vec<_> = (0..bed.nodes().len())
        .map(|i| bed.sshd_log(i).expect("sshd log"))
        .collect();
    let accepted = || -> usize {
        logs.iter()
            .map(|l| {
                std::fs::read_to_string(l)
                    .unwrap_or_default()
                    .matches("Accepted publickey")
                    .count()
            })
            .sum()
    };
    let (conns0, reaped0, nodes0) = (accepted(), reaped_children(), meter.sample());
    let out = std::fs::File::create(log).expect("log file");
    let t = Instant::now();
    let mut child = Command::new(drover)
        .args(["run", "bench", "--yes", "--site"])
        .arg(&fx.site)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .spawn()
        .expect("start drover");
    let pid = rustix::process::Pid::from_child(&child);
    // Exited but not reaped: its own times are still readable.
    rustix::process::waitid(
        rustix::process::WaitId::Pid(pid),
        rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOWAIT,
    )
    .expect("waitid");
    let wall = t.elapsed().as_secs_f64();
    let own = own_ticks(child.id()).expect("drover's /proc stat");
    let status = child.wait().expect("wait");
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        panic!(
            "drover exited with {status}; the end of its output:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    reap_masters(bed);
    // Let the sshds reap the sessions that just ended.
    std::thread::sleep(Duration::from_millis(300));
    let nodes = meter.since(nodes0).nodes;
    let all_reaped = reaped_children() - reaped0;
    let drover_own = own as f64 / TICKS_PER_SECOND;
    KexRun {
        wall,
        drover: drover_own,
        // drover's reaped tree (the ssh launches) plus the detached masters reaped here.
        ssh: (all_reaped - drover_own).max(0.0),
        nodes,
        connections: accepted() - conns0,
    }
}

/// Reaps the detached masters drover stopped (they exit just after it), leaving the
/// testbed's sshds, which are this process's children too.
fn reap_masters(bed: &Testbed) {
    let sshds: Vec<u32> = (0..bed.nodes().len())
        .filter_map(|i| {
            let pid_file = bed.sshd_log(i).ok()?.with_file_name("sshd.pid");
            std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        while let Ok(Some(_)) = rustix::process::wait(rustix::process::WaitOptions::NOHANG) {}
        let others = children().into_iter().filter(|p| !sshds.contains(p)).count();
        if others == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{others} ssh masters outlived drover by 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// This process's children, from every thread's `children` list.
fn children() -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// A process's own `utime + stime` (not its children's).
fn own_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(t(11)? + t(12)?)
}

/// The kex sshd logged for a one-node `drover run` with `kex_algorithms: kex`.
fn negotiated(drover: &Path, kex: Option<&str>) -> String {
    let dir = tempfile::Builder::new()
        .prefix("drover-bench-kex1")
        .tempdir()
        .expect("temp dir");
    let options = TestbedOptions {
        algorithms: None,
        log_level: Some("DEBUG1".into()),
    };
    let bed = Testbed::start_with(&dir.path().join("bed"), 1, options).expect("start testbed");
    let fx = Fixture::write(dir.path(), &bed);
    fx.set_kex(&bed, kex);
    let out = Command::new(drover)
        .args(["run", "bench", "--yes", "--site"])
        .arg(&fx.site)
        .stdin(Stdio::null())
        .output()
        .expect("drover");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    reap_masters(&bed);
    let log = std::fs::read_to_string(bed.sshd_log(0).expect("log")).expect("read sshd log");
    let kexes = negotiation::kex_algorithms(&log);
    let first = kexes.first().cloned().unwrap_or_default();
    assert!(
        !kexes.is_empty() && kexes.iter().all(|k| *k == first),
        "connections negotiated {kexes:?}"
    );
    first
}
