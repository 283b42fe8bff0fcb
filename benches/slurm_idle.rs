//! Idle node time during a rolling drain, `drain.mode: drain` against
//! `drain.mode: reservation`, on a real one-host Slurm cluster
//! (`drover_testbed::SlurmCluster`) under a mixed job stream.
//!
//! `nice -n 19 cargo bench --profile dev --bench slurm_idle -- [--nodes N] [--cpus C]
//! [--warmup S] [--work S]` (root, Debian's `slurm-wlm` and `munge`).
//!
//! Time is scaled down: seconds stand for hours. The stream mixes short jobs (`sleep 2`,
//! time limit 1 minute, one every 0.7 s) and long ones (`sleep 30`, time limit 2
//! minutes, one every 10 s), about the cluster's capacity, so jobs are nearly always
//! pending. After a warm-up, drover drains every node in turn (`max_unavailable: 1`) for
//! a drain step of `--work` seconds. A sampler reads `sinfo %C` (CPUs allocated, idle,
//! other) and the number of pending jobs every 200 ms; a CPU that is not allocated while
//! a job is pending is capacity lost. The figures are those CPU-seconds from drover's
//! start to its end, divided by the CPUs per node (node-seconds), with the run's length
//! and its job outcomes: every job must complete with exit 0.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use drover_testbed::{SlurmCluster, Testbed, slurm_unavailable};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Submits the mixed stream until stopped; how many jobs it submitted.
fn stream(slurm: &SlurmCluster, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    let conf = slurm.conf();
    std::thread::spawn(move || {
        let mut n = 0;
        let started = Instant::now();
        let mut next_long = Duration::ZERO;
        while !stop.load(Ordering::Relaxed) {
            let mut submit = |secs: u32, limit: &str| {
                let ok = Command::new("sbatch")
                    .env("SLURM_CONF", &conf)
                    .args(["--parsable", "-o", "/dev/null", "-t", limit, "--wrap"])
                    .arg(format!("sleep {secs}"))
                    .stdin(Stdio::null())
                    .output()
                    .is_ok_and(|o| o.status.success());
                n += usize::from(ok);
            };
            if started.elapsed() >= next_long {
                submit(30, "2");
                next_long += Duration::from_secs(10);
            }
            submit(2, "1");
            std::thread::sleep(Duration::from_millis(700));
        }
        n
    })
}

#[derive(Debug, Default, Clone, Copy)]
struct Sampled {
    /// CPU-seconds not allocated while jobs were pending.
    lost_cpu_s: f64,
    /// CPU-seconds not allocated at all.
    idle_cpu_s: f64,
    samples: u64,
}

/// Samples `sinfo %C` and the pending jobs every 200 ms until stopped.
fn sampler(slurm: &SlurmCluster, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Sampled> {
    let conf = slurm.conf();
    std::thread::spawn(move || {
        let mut s = Sampled::default();
        let mut last = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let out = |prog: &str, args: &[&str]| {
                Command::new(prog)
                    .env("SLURM_CONF", &conf)
                    .args(args)
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default()
            };
            // `%C`: allocated/idle/other/total over the partition's nodes.
            let cpus = out("sinfo", &["-h", "-o", "%C"]);
            let f: Vec<f64> = cpus.trim().split('/').filter_map(|x| x.parse().ok()).collect();
            let pending = out("squeue", &["-h", "-t", "PD", "-o", "%i"]).lines().count();
            let dt = last.elapsed().as_secs_f64();
            last = Instant::now();
            if let [_, idle, other, _] = f[..] {
                s.samples += 1;
                s.idle_cpu_s += (idle + other) * dt;
                if pending > 0 {
                    s.lost_cpu_s += (idle + other) * dt;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        s
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = arg(&args, "--nodes", 3) as usize;
    let cpus = arg(&args, "--cpus", 2) as u32;
    let warmup = arg(&args, "--warmup", 25);
    let work = arg(&args, "--work", 3);
    if let Some(why) = slurm_unavailable() {
        eprintln!("slurm_idle: {why}");
        return;
    }
    println!(
        "nodes {n} x {cpus} CPUs; stream: sleep 2 (limit 1 min) every 0.7 s + sleep 30 (limit 2 min) every 10 s; \
         warm-up {warmup} s; drain step {work} s; max_unavailable 1"
    );
    for mode in ["drain", "reservation"] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let tb = Testbed::start(&tmp.path().join("tb"), n).expect("testbed");
        let all: Vec<usize> = (0..n).collect();
        let slurm = SlurmCluster::start_with_cpus(
            &tmp.path().join("slurm"),
            &tb,
            &[("batch", all)],
            Duration::from_secs(1),
            cpus,
        )
        .expect("slurm");
        let site = tempfile::tempdir().expect("site");
        let write = |rel: &str, text: &str| {
            let p = site.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        };
        write(
            "drover.yml",
            &format!(
                "inventory: inventory.yml\nworkflows: workflows\nenv: {{ SLURM_CONF: {} }}\n\
                 drain: {{ scheduler: slurm, mode: {mode}, poll_interval: 500ms, timeout: 10m }}\n",
                serde_json::json!(slurm.conf().display().to_string())
            ),
        );
        write("inventory.yml", &tb.inventory_yaml_direct(true));
        write(
            "workflows/w.yml",
            &format!(
                "name: w\nversion: 1\ntargets: {{ nodes: [\"@all\"] }}\ncanary: {{ size: 0 }}\n\
                 strategy: {{ batch: [\"100%\"], max_unavailable: 1 }}\nsteps:\n  - name: patch\n    run: \"sleep {work}\"\n    change: drain\n"
            ),
        );
        let stop_stream = Arc::new(AtomicBool::new(false));
        let submitter = stream(&slurm, Arc::clone(&stop_stream));
        std::thread::sleep(Duration::from_secs(warmup));
        let stop_sampler = Arc::new(AtomicBool::new(false));
        let sampling = sampler(&slurm, Arc::clone(&stop_sampler));
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_drover"))
            .args(["run", "w", "--yes", "--json", "--tags", "drain", "--site"])
            .arg(site.path())
            .stdin(Stdio::null())
            .output()
            .expect("drover");
        let wall = t.elapsed().as_secs_f64();
        stop_sampler.store(true, Ordering::Relaxed);
        let s = sampling.join().expect("sampler");
        stop_stream.store(true, Ordering::Relaxed);
        let submitted = submitter.join().expect("stream");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{mode}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let limit = Instant::now();
        while slurm.queued().unwrap_or(1) > 0 {
            assert!(limit.elapsed() < Duration::from_secs(600), "jobs still queued");
            std::thread::sleep(Duration::from_millis(500));
        }
        let jobs = slurm.finished_jobs();
        let failed = jobs.iter().filter(|j| !j.succeeded()).count();
        let left = slurm
            .client("scontrol", &["show", "reservation", "-o"])
            .unwrap_or_default();
        let leaked = left
            .lines()
            .filter(|l| l.contains("ReservationName=drover_"))
            .count();
        println!(
            "{mode:>11}: rollout {wall:.1} s; CPUs unallocated while jobs pending {:.1} CPU-s = {:.1} node-s \
             ({:.1} node-s per node drained); unallocated in all {:.1} CPU-s; {} samples; jobs {submitted} submitted, \
             {} finished, {failed} failed; reservations left {leaked}",
            s.lost_cpu_s,
            s.lost_cpu_s / f64::from(cpus),
            s.lost_cpu_s / f64::from(cpus) / n as f64,
            s.idle_cpu_s,
            s.samples,
            jobs.len(),
        );
        assert_eq!(failed, 0, "{mode}: jobs failed: {jobs:?}");
        assert_eq!(jobs.len(), submitted, "{mode}: every job ran once");
        assert_eq!(leaked, 0, "{mode}: {left}");
    }
}
