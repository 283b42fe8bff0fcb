//! The daemon's git source on a generated 10,000-node site: time from `git commit` to
//! the rollout request (the commit fetched, its tree written out, the whole site
//! validated, the changed workflow found) with a 1 s poll, and memory over 1,000
//! commits each changing a workflow.
//!
//! `nice -n 19 cargo bench --bench git_source -- [LATENCY_COMMITS] [MEMORY_COMMITS]`
//! (default 20 and 1000).

#![expect(clippy::unwrap_used, reason = "a benchmark: any failure ends it")]

use std::path::Path;
use std::time::{Duration, Instant};

use drover::site::GitSettings;
use drover::source::{GitSource, GitWatcher, SourceEvent, TreePins};
use drover::store::Store;
use git2::Repository;

#[path = "common/git_commit.rs"]
mod git_commit;
use git_commit::commit;

const NODES: usize = 10_000;

fn site_files(version: usize) -> Vec<(String, String)> {
    vec![
        ("drover.yml".into(), "transport: local\n".into()),
        (
            "inventory.yml".into(),
            format!("canary: [n00001]\nnodes:\n  n[00001-{NODES:05}]: {{}}\ngroups:\n  compute: [\"n[00001-{NODES:05}]\"]\n"),
        ),
        (
            "workflows/a.yml".into(),
            format!(
                "name: a\nversion: {version}\ntargets:\n  nodes: [\"@compute\"]\nstrategy:\n  batch: [1, 10%, 50%]\nsteps:\n  - name: s\n    run: echo {version}\n    change: hot\n"
            ),
        ),
        (
            "workflows/b.yml".into(),
            "name: b\nversion: 1\ntargets:\n  nodes: [\"@compute\"]\nsteps:\n  - name: s\n    run: 'true'\n    change: hot\n".into(),
        ),
    ]
}

fn settings(remote: &Path, poll: Duration) -> GitSettings {
    GitSettings {
        remote: remote.to_string_lossy().into_owned(),
        branch: "main".into(),
        poll_interval: poll,
        site_path: "".into(),
        allow_force_push: false,
        require_signed: None,
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let latency_commits = args.first().copied().unwrap_or(20);
    let memory_commits = args.get(1).copied().unwrap_or(1000);

    let remote_dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(remote_dir.path()).unwrap();
    repo.set_head("refs/heads/main").unwrap();
    commit(&repo, &site_files(1), "site");

    // Latency, 1 s poll: commits at random points of the interval.
    let state = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut times = rt.block_on(async {
        let store = Store::open(&state.path().join("drover.db")).unwrap();
        let w = GitWatcher::open(
            settings(remote_dir.path(), Duration::from_secs(1)),
            state.path(),
            store,
        )
        .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let source = GitSource::spawn(w, TreePins::default(), tx, std::future::pending());
        let next_rollout = async |rx: &mut tokio::sync::mpsc::UnboundedReceiver<SourceEvent>| loop {
            if let Some(SourceEvent::Accepted { rollouts, .. }) = rx.recv().await
                && !rollouts.is_empty()
            {
                return;
            }
        };
        next_rollout(&mut rx).await;
        let mut times = Vec::new();
        for i in 0..latency_commits {
            // Spread the commits over the poll interval.
            tokio::time::sleep(Duration::from_millis(137 * (i as u64 % 7) + 50)).await;
            let t = Instant::now();
            commit(&repo, &site_files(i + 2), "change a");
            next_rollout(&mut rx).await;
            times.push(t.elapsed());
        }
        source.task.abort();
        times
    });
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "commit -> rollout request, {NODES} nodes, 1s poll, {} commits: median {:.0} ms, max {:.0} ms, min {:.0} ms",
        times.len(),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
        ms(times[0])
    );

    // Memory over many commits, each polled (validated, compared, recorded) on its own.
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(&state.path().join("drover.db")).unwrap();
    let mut w = GitWatcher::open(
        settings(remote_dir.path(), Duration::from_secs(1)),
        state.path(),
        store,
    )
    .unwrap();
    w.poll().unwrap();
    let start = Instant::now();
    let mut samples = Vec::new();
    for i in 0..memory_commits {
        commit(&repo, &site_files(10_000 + i), "change a");
        let events = w.poll().unwrap();
        assert!(
            matches!(&events[..], [SourceEvent::Accepted { rollouts, .. }] if rollouts.len() == 1),
            "{events:?}"
        );
        drop(events);
        w.prune_trees(&[]).unwrap();
        if (i + 1) % (memory_commits / 10).max(1) == 0 {
            samples.push((i + 1, rss_kib()));
        }
    }
    let per = start.elapsed() / memory_commits.max(1) as u32;
    let db = std::fs::metadata(state.path().join("drover.db"))
        .map(|m| m.len())
        .unwrap_or(0)
        + std::fs::metadata(state.path().join("drover.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!(
        "{memory_commits} commits, {:.0} ms per commit (fetch, export, validate, record)",
        ms(per)
    );
    println!("RSS KiB after N commits: {samples:?}");
    println!("state database: {} KiB", db / 1024);
}
