//! The push webhook `POST /hooks/git` on a daemon following a real git repository
//! (git2) with a poll of an hour, so only a push can bring a commit in: a verified push
//! fetches, a storm of pushes is one fetch (and at most one more for the pushes that
//! came during it), a forged one fetches nothing. The fetches are counted by the
//! daemon's own `drover_fetches_total`.

#![expect(clippy::unwrap_used, reason = "test fixtures: a failure is the test failing")]

use std::time::{Duration, Instant};

use drover::daemon::{ConvergeClock, Daemon, DaemonOptions};
use drover::notification::sign;

use crate::daemon_git::Remote;

const SECRET: &str = "push-hook-secret-0123456789";

/// `drover_fetches_total` and whether `sha` is the commit in force, from `/metrics`.
async fn scrape(d: &Daemon, sha: &str) -> (u64, bool) {
    let text = reqwest::get(format!("http://{}/metrics", d.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let fetches = text
        .lines()
        .find_map(|l| l.strip_prefix("drover_fetches_total "))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no drover_fetches_total in\n{text}"));
    let in_force = text.contains(&format!("drover_commit_in_force{{commit=\"{sha}\"}} 1"));
    (fetches, in_force)
}

async fn until_scraped(d: &Daemon, sha: &str, what: &str, done: impl Fn(u64, bool) -> bool) -> u64 {
    let t = Instant::now();
    loop {
        let (n, in_force) = scrape(d, sha).await;
        if done(n, in_force) {
            return n;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what} ({n} fetches)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn site_files(tag: &str) -> [(&'static str, String); 3] {
    [
        (
            "drover.yml",
            "inventory: inventory.yml\nworkflows: workflows\ntransport: local\n".into(),
        ),
        ("inventory.yml", "nodes:\n  n01: {}\n".into()),
        (
            "workflows/a.yml",
            format!(
                "name: a\nversion: 1\ntargets: {{ nodes: [n01] }}\nsteps:\n  - name: s\n    run: echo {tag}\n    check: \"true\"\n    change: hot\n"
            ),
        ),
    ]
}

fn commit(remote: &Remote, tag: &str) -> String {
    let files = site_files(tag);
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    remote.commit(&refs, tag)
}

/// One push, as `style` sends it; `secret` is what it is signed (or authenticated) with.
async fn push(c: &reqwest::Client, d: &Daemon, style: &str, secret: &str, n: usize) -> u16 {
    let body = format!("{{\"ref\":\"refs/heads/main\",\"n\":{n}}}");
    let r = c
        .post(format!("http://{}/hooks/git", d.addr))
        .header("content-type", "application/json");
    let r = match style {
        "github" => r.header("x-hub-signature-256", sign(secret.as_bytes(), body.as_bytes())),
        "gitea" => r.header(
            "x-gitea-signature",
            sign(secret.as_bytes(), body.as_bytes()).trim_start_matches("sha256="),
        ),
        "gitlab" => r.header("x-gitlab-token", secret),
        _ => r,
    };
    r.body(body).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_signed_pushes_is_one_fetch_or_two_and_a_forged_push_fetches_nothing() {
    let remote = Remote::new();
    let c1 = commit(&remote, "one");
    let local = tempfile::tempdir().unwrap();
    let secret = local.path().join("push-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    std::fs::create_dir_all(local.path().join("workflows")).unwrap();
    std::fs::write(
        local.path().join("drover.yml"),
        format!(
            "inventory: inventory.yml\nworkflows: workflows\ntransport: local\n\
             git: {{ remote: {}, branch: main, poll_interval: 1h }}\n\
             hooks:\n  git: {{ secret: {{ file: {} }} }}\n",
            serde_json::json!(remote.dir.path().display().to_string()),
            serde_json::json!(secret.display().to_string())
        ),
    )
    .unwrap();
    std::fs::write(local.path().join("inventory.yml"), "nodes:\n  n01: {}\n").unwrap();
    let mut o = DaemonOptions::new(local.path().to_path_buf());
    o.listen = Some("127.0.0.1:0".parse().unwrap());
    o.converge = ConvergeClock::Manual;
    let d = Daemon::start(o).await.unwrap();
    // The poll at start, and nothing after it for an hour.
    let before = until_scraped(&d, &c1, "the first poll", |n, in_force| n >= 1 && in_force).await;
    assert_eq!(before, 1);

    let c2 = commit(&remote, "two");
    let c = reqwest::Client::new();
    // Forged or unauthenticated, in each style: refused, and nothing is fetched.
    for style in ["github", "gitea", "gitlab"] {
        assert_eq!(push(&c, &d, style, "not the secret", 0).await, 401, "{style}");
    }
    assert_eq!(push(&c, &d, "none", SECRET, 0).await, 400, "no signature header");
    // Longer than the gap a push-driven fetch waits for: a fetch would have come.
    tokio::time::sleep(drover::source::PUSH_FETCH_GAP + Duration::from_millis(500)).await;
    assert_eq!(
        scrape(&d, &c2).await,
        (before, false),
        "no fetch, the commit not in force"
    );

    // A storm of 50 genuine pushes in all three styles, one every 10 ms: longer than
    // a fetch takes, so fetching once per wake-up would fetch several times.
    let styles = ["github", "gitlab", "gitea"];
    let storm: Vec<_> = (0..50u64)
        .map(|i| {
            let (c, d) = (c.clone(), &d);
            async move {
                tokio::time::sleep(Duration::from_millis(10 * i)).await;
                push(
                    &c,
                    d,
                    styles[usize::try_from(i).unwrap() % 3],
                    SECRET,
                    usize::try_from(i).unwrap(),
                )
                .await
            }
        })
        .collect();
    let sent = Instant::now();
    let answers = futures_util::future::join_all(storm).await;
    // From the first push to the last answer: on a loaded machine it may stretch.
    let span = sent.elapsed();
    assert!(answers.iter().all(|a| *a == 202), "{answers:?}");
    until_scraped(&d, &c2, "the pushed commit in force", |_, in_force| in_force).await;
    // Time for a trailing fetch (the pushes that came during the first) to happen.
    tokio::time::sleep(drover::source::PUSH_FETCH_GAP + Duration::from_millis(500)).await;
    let (after, in_force) = scrape(&d, &c2).await;
    assert!(in_force);
    // Fetch k+1 needs a push after fetch k began, and begins a gap after fetch k
    // ended: pushes over `span` make fewer than 2 + span/gap fetches, so a storm
    // shorter than the gap makes 1 or 2 (fetching per push made 50 here).
    let fetches = after - before;
    let gap = drover::source::PUSH_FETCH_GAP;
    assert!(fetches >= 1, "the storm fetched");
    if span < gap {
        assert!(fetches <= 2, "50 pushes over {span:?} made {fetches} fetches");
    } else {
        assert!(
            (fetches as f64) < 2.0 + span.as_secs_f64() / gap.as_secs_f64(),
            "50 pushes over {span:?} (a loaded machine) made {fetches} fetches"
        );
    }
    d.shutdown().await.unwrap();
}
