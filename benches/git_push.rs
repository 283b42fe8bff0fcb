//! The push webhook's latency: from `POST /hooks/git` (a signed GitHub-style push) to
//! the pushed commit in force in the daemon (`drover_commit_in_force`), on a daemon
//! following a local git repository with a poll of an hour, so only the push can bring
//! the commit in. Each push comes after a quiet spell longer than the gap between
//! push-driven fetches (`PUSH_FETCH_GAP`), as a push after a review does.
//!
//! `nice -n 19 cargo bench --bench git_push -- [PUSHES]` (default 20).

#![expect(clippy::unwrap_used, reason = "a benchmark: any failure ends it")]

use std::time::{Duration, Instant};

use drover::daemon::{ConvergeClock, Daemon, DaemonOptions};
use git2::Repository;

#[path = "common/git_commit.rs"]
mod git_commit;
use git_commit::commit;

const SECRET: &str = "bench-push-secret";

fn site_files(version: usize) -> Vec<(String, String)> {
    vec![
        (
            "drover.yml".into(),
            "transport: local\ninventory: inventory.yml\nworkflows: workflows\n".into(),
        ),
        (
            "inventory.yml".into(),
            "nodes:\n  n[01-10]: {}\ngroups:\n  compute: [\"n[01-10]\"]\n".into(),
        ),
        (
            "workflows/a.yml".into(),
            format!(
                "name: a\nversion: {version}\ntargets:\n  nodes: [\"@compute\"]\n\
                 steps:\n  - name: s\n    run: \"true\"\n    check: \"true\"\n    change: hot\n"
            ),
        ),
    ]
}

fn main() {
    let pushes: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20);
    let remote_dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(remote_dir.path()).unwrap();
    repo.set_head("refs/heads/main").unwrap();
    commit(&repo, &site_files(1), "site");
    let local = tempfile::tempdir().unwrap();
    let secret = local.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    std::fs::create_dir_all(local.path().join("workflows")).unwrap();
    std::fs::write(
        local.path().join("drover.yml"),
        format!(
            "inventory: inventory.yml\nworkflows: workflows\ntransport: local\n\
             git: {{ remote: {}, branch: main, poll_interval: 1h }}\n\
             hooks:\n  git: {{ secret: {{ file: {} }} }}\n",
            serde_json::json!(remote_dir.path().display().to_string()),
            serde_json::json!(secret.display().to_string())
        ),
    )
    .unwrap();
    std::fs::write(local.path().join("inventory.yml"), "nodes:\n  n01: {}\n").unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut opts = DaemonOptions::new(local.path().to_path_buf());
        opts.listen = Some("127.0.0.1:0".parse().unwrap());
        opts.converge = ConvergeClock::Manual;
        let d = Daemon::start(opts).await.unwrap();
        let client = reqwest::Client::new();
        let head = |repo: &Repository| repo.head().unwrap().target().unwrap().to_string();
        let in_force = |sha: &str| {
            d.metrics
                .render()
                .contains(&format!("drover_commit_in_force{{commit=\"{sha}\"}} 1"))
        };
        let first = head(&repo);
        let t = Instant::now();
        while !in_force(&first) {
            assert!(t.elapsed() < Duration::from_secs(60), "the first poll");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut took = Vec::new();
        for i in 0..pushes {
            tokio::time::sleep(drover::source::PUSH_FETCH_GAP + Duration::from_millis(200)).await;
            commit(&repo, &site_files(i + 2), "next");
            let sha = head(&repo);
            let body = format!("{{\"ref\":\"refs/heads/main\",\"after\":\"{sha}\"}}");
            let t = Instant::now();
            let r = client
                .post(format!("http://{}/hooks/git", d.addr))
                .header(
                    "x-hub-signature-256",
                    drover::notification::sign(SECRET.as_bytes(), body.as_bytes()),
                )
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 202);
            while !in_force(&sha) {
                assert!(t.elapsed() < Duration::from_secs(60), "push {i} never in force");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            took.push(t.elapsed());
        }
        took.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "push to commit in force, {} pushes: median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
            took.len(),
            ms(took[took.len() / 2]),
            ms(took[(took.len() * 9 / 10).min(took.len() - 1)]),
            ms(took[took.len() - 1])
        );
        d.shutdown().await.unwrap();
    });
}
