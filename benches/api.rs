//! The REST API under load: `drover serve` (its own process, so its RSS is its own) on a
//! generated 10,000-node site with `transport: local` and a rollout in flight (its
//! canary's step sleeps for the whole benchmark), driven by 50 concurrent HTTP clients
//! (tokio + reqwest, one keep-alive connection each) on loopback. Three phases of
//! `SECONDS` each: every client on `GET /api/v1/runs/{id}`, every client on `GET
//! /api/v1/nodes`, then half on each. Per route: requests, errors (anything but a 200,
//! or no answer), p50/p99/max latency; the daemon's RSS before the load, its highest
//! during it, and after the load stopped (at once and 10 s later), then after three
//! more bursts; the load average; the CPU time the daemon and the clients used.
//!
//! Every node's check is the effect-free built-in `false` (answered without a
//! process), so all 10,000 nodes need the change and are recorded in the run at once
//! (the canary in its step, the others pending): what is measured is the API, not `sh`.
//!
//! `nice -n 19 cargo bench --bench api -- [SECONDS] [CLIENTS]` (default 30 and 50).

#![expect(clippy::unwrap_used, reason = "a benchmark: any failure ends it")]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const NODES: usize = 10_000;
const TOKEN: &str = "bench-token-3c1f0e7a";

fn write_site(dir: &Path) {
    std::fs::create_dir_all(dir.join("workflows")).unwrap();
    std::fs::write(dir.join("token"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(
        dir.join("drover.yml"),
        format!(
            "transport: local\ninventory: inventory.yml\nworkflows: workflows\n\
             server:\n  listen: 127.0.0.1:0\n  tokens:\n    - {{ name: bench, role: admin, token: {{ file: {} }} }}\n",
            serde_json::json!(dir.join("token").display().to_string())
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("inventory.yml"),
        format!(
            "canary: [n00001]\nnodes:\n  n[00001-{NODES:05}]: {{}}\ngroups:\n  compute: [\"n[00001-{NODES:05}]\"]\n\
             \x20 rack1: [\"n[00001-05000]\"]\n  rack2: [\"n[05001-{NODES:05}]\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("workflows/a.yml"),
        "name: a\nversion: 1\ntargets:\n  nodes: [\"@compute\"]\nstrategy:\n  batch: [1, 10%, 50%]\n\
         steps:\n  - name: s\n    run: sleep 3600\n\
         \x20   check: \"false\"\n    change: hot\n",
    )
    .unwrap();
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) process `pid` has used ("self": this one).
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    f.iter().sum::<u64>() as f64 / 100.0
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Latencies (µs) and errors of one route.
#[derive(Default)]
struct Tally {
    micros: Vec<u64>,
    /// The slowest request: its latency (µs) and when it began (ms after the start).
    slowest: (u64, u64),
    errors: u64,
    bytes: u64,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.micros.extend(o.micros);
        self.slowest = self.slowest.max(o.slowest);
        self.errors += o.errors;
        self.bytes += o.bytes;
    }

    fn report(mut self, what: &str, secs: f64) {
        self.micros.sort_unstable();
        let n = self.micros.len();
        let at = |q: f64| {
            if n == 0 {
                0.0
            } else {
                self.micros[((n as f64 * q) as usize).min(n - 1)] as f64 / 1000.0
            }
        };
        println!(
            "  {what}: {n} requests ({:.0}/s), {} errors, p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms (a request begun {} ms into the phase), {:.0} KiB per answer",
            n as f64 / secs,
            self.errors,
            at(0.5),
            at(0.99),
            at(0.999),
            self.micros.last().copied().unwrap_or(0) as f64 / 1000.0,
            self.slowest.1,
            if n == 0 {
                0.0
            } else {
                self.bytes as f64 / n as f64 / 1024.0
            }
        );
    }
}

async fn client_loop(base: String, paths: Vec<String>, stop: Arc<AtomicBool>, start: Instant) -> Vec<Tally> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let mut tallies: Vec<Tally> = paths.iter().map(|_| Tally::default()).collect();
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let k = i % paths.len();
        i += 1;
        let t = Instant::now();
        let r = http
            .get(format!("{base}{}", paths[k]))
            .bearer_auth(TOKEN)
            .send()
            .await;
        // Every byte of the body is read, chunk by chunk as it arrives, and counted;
        // not gathered into one buffer, a copy that is the client's cost and would
        // compete with the daemon for the same cores.
        let ok = match r {
            Ok(mut resp) if resp.status() == 200 => loop {
                match resp.chunk().await {
                    Ok(Some(c)) => tallies[k].bytes += c.len() as u64,
                    Ok(None) => break true,
                    Err(_) => break false,
                }
            },
            _ => false,
        };
        let us = t.elapsed().as_micros() as u64;
        if ok {
            tallies[k].micros.push(us);
            let began = t.duration_since(start).as_millis() as u64;
            tallies[k].slowest = tallies[k].slowest.max((us, began));
        } else {
            tallies[k].errors += 1;
        }
    }
    tallies
}

/// `clients` clients for `secs`, client `c` on `mix[c % mix.len()]`; the daemon's
/// highest RSS meanwhile.
async fn phase(base: &str, pid: u32, mix: &[&str], clients: usize, secs: u64) -> (Vec<Tally>, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let path = mix[c % mix.len()].to_string();
        tasks.push(tokio::spawn(client_loop(
            base.to_string(),
            vec![path],
            Arc::clone(&stop),
            start,
        )));
    }
    let t = Instant::now();
    let mut peak = 0;
    while t.elapsed() < Duration::from_secs(secs) {
        peak = peak.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut per_route: Vec<Tally> = mix.iter().map(|_| Tally::default()).collect();
    for (c, task) in tasks.into_iter().enumerate() {
        let mut t = task.await.unwrap();
        per_route[c % mix.len()].merge(t.remove(0));
    }
    (per_route, peak)
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let secs = args.first().copied().unwrap_or(30);
    let clients = args.get(1).copied().unwrap_or(50) as usize;

    let site = tempfile::tempdir().unwrap();
    write_site(site.path());
    let log = site.path().join("serve.log");
    let mut daemon = std::process::Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["serve", "--site"])
        .arg(site.path())
        .args(["--log-format", "json"])
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pid = daemon.id();
    let t = Instant::now();
    let addr = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains("listening")) {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            break v["addr"].as_str().unwrap().to_string();
        }
        assert!(t.elapsed() < Duration::from_secs(120), "never listening: {text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let base = format!("http://{addr}/api/v1");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let started: serde_json::Value = http
            .post(format!("{base}/runs"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"workflow": "a"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = started["run_id"].as_str().unwrap_or_else(|| panic!("{started}")).to_string();
        // In flight and recorded: every node's row is there, the canary in its step.
        let t = Instant::now();
        loop {
            let v: serde_json::Value = http
                .get(format!("{base}/runs/{id}"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let nodes = v["nodes"].as_array().map_or(0, Vec::len);
            if v["run"]["status"] == "running" && nodes == NODES {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(300), "the run never got going: {}", v["run"]);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        println!(
            "{NODES} nodes, run {id} in flight; {clients} clients, {secs} s per phase; {} cores; load average {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            loadavg()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = rss_kib(pid);
        println!("daemon RSS before the load: {before} KiB");
        let run_path = format!("/runs/{id}");
        let phases: [(&str, Vec<&str>); 3] = [
            ("GET /runs/{id} only", vec![run_path.as_str()]),
            ("GET /nodes only", vec!["/nodes"]),
            ("both, half the clients each", vec![run_path.as_str(), "/nodes"]),
        ];
        let mut peak = 0;
        for (name, mix) in &phases {
            let (d0, c0) = (cpu_secs(&pid.to_string()), cpu_secs("self"));
            let (tallies, p) = phase(&base, pid, mix, clients, secs).await;
            peak = peak.max(p);
            println!(
                "{name}: daemon RSS at most {p} KiB, load average {}; CPU used: daemon {:.1} s, these clients {:.1} s",
                loadavg(),
                cpu_secs(&pid.to_string()) - d0,
                cpu_secs("self") - c0
            );
            for (path, t) in mix.iter().zip(tallies) {
                t.report(&format!("GET {path}"), secs as f64);
            }
        }
        let just_after = rss_kib(pid);
        tokio::time::sleep(Duration::from_secs(10)).await;
        let later = rss_kib(pid);
        println!(
            "daemon RSS: before {before} KiB, highest during the load {peak} KiB, at once after {just_after} KiB, 10 s after {later} KiB ({:+} KiB over before)",
            later as i64 - before as i64
        );
        // More bursts: RSS that grows with the number of requests would grow with
        // each; memory the allocator keeps for the next burst levels off.
        for burst in 2..=4 {
            let (_, p2) = phase(&base, pid, &[run_path.as_str(), "/nodes"], clients, secs.min(10)).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
            println!(
                "burst {burst} of {} s: RSS at most {p2} KiB, 5 s after {} KiB; load average {}",
                secs.min(10),
                rss_kib(pid),
                loadavg()
            );
        }
    });
    // The first TERM stops gracefully (the canary's step would be waited for), the
    // second at once.
    let term = || {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid as i32).unwrap(),
            rustix::process::Signal::TERM,
        );
    };
    term();
    std::thread::sleep(Duration::from_secs(2));
    term();
    let _ = daemon.wait();
}
