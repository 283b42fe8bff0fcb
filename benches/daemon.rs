//! `drover serve` as a whole on a generated 10,000-node site with `transport: local`,
//! following a git repository with a 1 s poll: CPU and RSS at rest between polls, the
//! time from `git commit` to the first canary node starting, and memory over many
//! commits each changing the workflow (each one a rollout: the whole site validated,
//! every node checked, the canary run, recorded).
//!
//! Every node's check is an effect-free built-in (`true` for nodes up to date, `false`
//! for the canary), answered without a process, so what is measured is drover, not
//! `sh`; the canary's step touches a file, which is how the benchmark sees it start.
//!
//! `nice -n 19 cargo bench --bench daemon -- [IDLE_SECONDS] [LATENCY_COMMITS] [MEMORY_COMMITS]`
//! (default 30, 10 and 200).

#![expect(clippy::unwrap_used, reason = "a benchmark: any failure ends it")]

use std::path::Path;
use std::time::{Duration, Instant};

use drover::daemon::{ConvergeClock, Daemon, DaemonOptions};
use drover::store::{RunStatus, Store};
use git2::Repository;

#[path = "common/git_commit.rs"]
mod git_commit;
use git_commit::commit;

const NODES: usize = 10_000;

fn site_files(version: usize, marks: &Path) -> Vec<(String, String)> {
    vec![
        (
            "drover.yml".into(),
            "transport: local\ninventory: inventory.yml\nworkflows: workflows\n".into(),
        ),
        (
            "inventory.yml".into(),
            format!(
                "canary: [n00001]\nnodes:\n  n[00001-{NODES:05}]: {{}}\ngroups:\n  compute: [\"n[00001-{NODES:05}]\"]\n"
            ),
        ),
        (
            "workflows/a.yml".into(),
            format!(
                "name: a\nversion: {version}\ntargets:\n  nodes: [\"@compute\"]\nstrategy:\n  batch: [1, 10%, 50%]\n\
                 steps:\n  - name: s\n    run: touch {}/started-{version}\n\
                 \x20   check: \"{{{{ 'false' if node.name == 'n00001' else 'true' }}}}\"\n    change: hot\n",
                marks.display()
            ),
        ),
    ]
}

fn status_field(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// User + system CPU of this process (every thread), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which may hold spaces) end with ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    // USER_HZ is 100 on Linux.
    ticks / 100.0
}

async fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn last_run_done(db: &Path, version: u32) -> bool {
    Store::open_read_only(db)
        .and_then(|s| s.runs())
        .ok()
        .and_then(|r| r.into_iter().next())
        .is_some_and(|r| r.version == version && r.status != RunStatus::Running)
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let idle = args.first().copied().unwrap_or(30);
    let latency_commits = args.get(1).copied().unwrap_or(10) as usize;
    let memory_commits = args.get(2).copied().unwrap_or(200) as usize;

    let remote_dir = tempfile::tempdir().unwrap();
    let marks = tempfile::tempdir().unwrap();
    let repo = Repository::init(remote_dir.path()).unwrap();
    repo.set_head("refs/heads/main").unwrap();
    commit(&repo, &site_files(1, marks.path()), "site");

    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(local.path().join("workflows")).unwrap();
    std::fs::write(
        local.path().join("drover.yml"),
        format!(
            "inventory: inventory.yml\nworkflows: workflows\ntransport: local\n\
             git: {{ remote: {}, branch: main, poll_interval: 1s }}\n",
            serde_json::json!(remote_dir.path().display().to_string())
        ),
    )
    .unwrap();
    std::fs::write(local.path().join("inventory.yml"), "nodes:\n  n00001: {}\n").unwrap();
    let db = local.path().join(".drover/drover.db");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut opts = DaemonOptions::new(local.path().to_path_buf());
        opts.listen = Some("127.0.0.1:0".parse().unwrap());
        opts.converge = ConvergeClock::Manual;
        let rss_start = status_field("VmRSS:");
        let d = Daemon::start(opts).await.unwrap();
        let started = marks.path().join("started-1");
        wait_for(Duration::from_secs(120), "the first rollout", || {
            started.exists() && last_run_done(&db, 1)
        })
        .await;
        println!(
            "{NODES} nodes: RSS before the daemon {} KiB, after its first rollout {} KiB (peak {} KiB)",
            rss_start,
            status_field("VmRSS:"),
            status_field("VmHWM:")
        );

        // At rest: polls only (each a fetch of an unchanged branch).
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (c0, t0) = (cpu_seconds(), Instant::now());
        tokio::time::sleep(Duration::from_secs(idle)).await;
        let (cpu, wall) = (cpu_seconds() - c0, t0.elapsed().as_secs_f64());
        println!(
            "at rest, 1s poll, {wall:.0} s measured: {cpu:.2} s CPU = {:.0} s CPU per hour ({:.3}% of one core); RSS {} KiB",
            cpu / wall * 3600.0,
            cpu / wall * 100.0,
            status_field("VmRSS:")
        );

        // Commit → the canary node starting, with the 1 s poll (no fetch asked for).
        let mut times = Vec::new();
        let mut version = 1usize;
        for i in 0..latency_commits {
            tokio::time::sleep(Duration::from_millis(137 * (i as u64 % 7) + 50)).await;
            version += 1;
            let t = Instant::now();
            commit(&repo, &site_files(version, marks.path()), "change a");
            let mark = marks.path().join(format!("started-{version}"));
            wait_for(Duration::from_secs(60), "the canary", || mark.exists()).await;
            times.push(t.elapsed());
            wait_for(Duration::from_secs(60), "the rollout's end", || {
                last_run_done(&db, version as u32)
            })
            .await;
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "git commit -> first canary node started, 1s poll, {} commits: median {:.0} ms, max {:.0} ms, min {:.0} ms",
            times.len(),
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1]),
            ms(times[0])
        );

        // Many commits, each a whole rollout (fetch asked for at once, as a push would).
        let fetch = d.fetch_trigger().unwrap();
        let t = Instant::now();
        let mut samples = Vec::new();
        for i in 0..memory_commits {
            version += 1;
            commit(&repo, &site_files(version, marks.path()), "change a");
            fetch.fetch_now();
            let mark = marks.path().join(format!("started-{version}"));
            wait_for(Duration::from_secs(60), "the rollout's end", || {
                mark.exists() && last_run_done(&db, version as u32)
            })
            .await;
            if (i + 1) % (memory_commits / 10).max(1) == 0 {
                samples.push((i + 1, status_field("VmRSS:")));
            }
        }
        let per = t.elapsed() / memory_commits.max(1) as u32;
        d.shutdown().await.unwrap();
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let trees = std::fs::read_dir(local.path().join(".drover/git/trees"))
            .map(|d| d.count())
            .unwrap_or(0);
        println!(
            "{memory_commits} commits, each a rollout: {:.0} ms per commit; RSS KiB after N commits: {samples:?}",
            ms(per)
        );
        println!(
            "state database {} KiB (runs recorded: {}); exported trees left: {trees}",
            (size(&db) + size(&db.with_extension("db-wal"))) / 1024,
            Store::open_read_only(&db).unwrap().runs().unwrap().len()
        );
    });
}
