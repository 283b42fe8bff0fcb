//! Notifications: real HTTP listeners on 127.0.0.1 stand in for Slack and for a JSON
//! webhook receiver, recording what they get; the daemon runs in process (converge
//! passes by hand) and as a process killed with -9 right after a state change.

#![expect(clippy::unwrap_used, reason = "test fixtures: a failure is the test failing")]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use drover::daemon::{Action, ConvergeClock, Daemon, DaemonOptions};
use drover::store::{RunStatus, Store};

use crate::support::*;

/// One request a listener got.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    headers: HeaderMap,
    body: serde_json::Value,
    raw: Vec<u8>,
}

#[derive(Clone, Default)]
struct Recorder {
    got: Arc<Mutex<Vec<Got>>>,
    /// Requests still to answer 429 with `Retry-After: 1`.
    throttle: Arc<Mutex<usize>>,
    /// Requests still to answer 503 (before any 429).
    unavailable: Arc<Mutex<usize>>,
}

impl Recorder {
    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// The requests that were answered 2xx (not throttled).
    fn taken(&self) -> Vec<Got> {
        self.got().into_iter().filter(|g| g.path != "throttled").collect()
    }
}

async fn record(State(r): State<Recorder>, uri: axum::http::Uri, headers: HeaderMap, raw: Bytes) -> Response {
    let body = serde_json::from_slice(&raw).unwrap_or(serde_json::Value::Null);
    let down = {
        let mut u = r.unavailable.lock().unwrap();
        let down = *u > 0;
        *u = u.saturating_sub(1);
        down
    };
    if down {
        r.got.lock().unwrap().push(Got {
            path: "throttled".into(),
            headers,
            body,
            raw: raw.to_vec(),
        });
        return (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response();
    }
    let throttled = {
        let mut t = r.throttle.lock().unwrap();
        if *t > 0 {
            *t -= 1;
            true
        } else {
            false
        }
    };
    let mut got = r.got.lock().unwrap();
    got.push(Got {
        path: if throttled {
            "throttled".into()
        } else {
            uri.path().to_string()
        },
        headers,
        body,
        raw: raw.to_vec(),
    });
    if throttled {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "slow down").into_response();
    }
    let ts = format!("1000.{}", got.len());
    (
        [("content-type", "application/json")],
        serde_json::json!({"ok": true, "ts": ts}).to_string(),
    )
        .into_response()
}

/// A listener on `addr` (port 0: any) recording every request.
async fn listen(addr: SocketAddr, r: Recorder) -> SocketAddr {
    let app = axum::Router::new().fallback(record).with_state(r);
    let l = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

/// A local site of five nodes (n01 the canary) whose workflow marks each node once;
/// `fail_on` fails there with output; `notifications` is appended to drover.yml.
fn site(notifications: &str, fail_on: &str) -> Site {
    let site = Site::new();
    let _ = std::fs::remove_file(site.path().join("workflows/update.yml"));
    std::fs::create_dir_all(site.path().join("marks")).unwrap();
    site.write(
        "drover.yml",
        &format!("inventory: inventory.yml\nworkflows: workflows\ntransport: local\nleases: {{ ttl: 30s }}\n{notifications}"),
    )
    .write(
        "inventory.yml",
        "nodes:\n  n[01-05]: {}\ngroups:\n  compute: [\"n[01-05]\"]\ncanary: [n01]\n",
    )
    .write(
        "workflows/mark.yml",
        &format!(
            "name: mark\nversion: 1\ntargets: {{ nodes: [\"@compute\"] }}\n\
             strategy: {{ batch: 2, failure_budget: {{ per_batch: 0, per_run: 0 }} }}\n\
             steps:\n  - name: mark\n\
             \x20   run: if [ $DROVER_NODE = \"{fail_on}\" ]; then echo first; echo no space left, disk full; exit 3; fi; touch {{{{ site.root }}}}/marks/$DROVER_NODE\n\
             \x20   check: test -e {{{{ site.root }}}}/marks/$DROVER_NODE\n    change: hot\n"
        ),
    )
}

fn options(site: &Path) -> DaemonOptions {
    let mut o = DaemonOptions::new(site.to_path_buf());
    o.listen = Some("127.0.0.1:0".parse().unwrap());
    o.converge = ConvergeClock::Manual;
    o
}

async fn until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn runs_of(site: &Path) -> Vec<drover::store::RunRow> {
    Store::open_read_only(&site.join(".drover/drover.db"))
        .and_then(|s| s.runs())
        .unwrap_or_default()
}

fn text_of(g: &Got) -> String {
    g.body["text"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_gets_each_event_once_threaded_per_run_after_a_429() {
    let slack = Recorder::default();
    *slack.throttle.lock().unwrap() = 1;
    let addr = listen("127.0.0.1:0".parse().unwrap(), slack.clone()).await;
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "xoxb-test-token\n").unwrap();
    let site = site(
        &format!(
            "notifications:\n  poll_interval: 50ms\n  slack:\n    bot_token: {{ file: {} }}\n    channel: C0DROVER\n    api_url: http://{addr}/api\n",
            token.path().display()
        ),
        "none",
    );
    let d = Daemon::start(options(site.path())).await.unwrap();
    let t = Instant::now();
    d.actions()
        .send(Action::Converge {
            workflow: "mark".into(),
        })
        .unwrap();
    until(Duration::from_secs(30), "the run to succeed", || {
        runs_of(site.path())
            .iter()
            .any(|r| r.status == RunStatus::Succeeded)
    })
    .await;
    let rollout = t.elapsed();
    let paused = site.run(&["pause", "--by", "alice", "--reason", "fixing the playbook"]);
    assert_eq!(paused.code, 0, "{}", paused.stderr);
    until(Duration::from_secs(10), "four messages", || {
        slack.taken().len() >= 4
    })
    .await;
    // Give a duplicate the time to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    d.shutdown().await.unwrap();

    let got = slack.got();
    assert_eq!(got[0].path, "throttled", "the first try was answered 429");
    let taken = slack.taken();
    let texts: Vec<String> = taken.iter().map(text_of).collect();
    assert_eq!(
        texts,
        [
            "mark v1 started",
            "mark v1: canary passed",
            "mark v1 succeeded",
            "all runs paused by alice"
        ],
        "each event once, in order"
    );
    for g in &taken {
        assert_eq!(g.path, "/api/chat.postMessage");
        assert_eq!(g.headers["authorization"], "Bearer xoxb-test-token");
        assert_eq!(g.body["channel"], "C0DROVER");
        assert!(g.body["blocks"].is_array(), "Block Kit: {}", g.body);
    }
    // The 429 came first, so the start's answer is the second request: ts 1000.2.
    assert_eq!(taken[0].body.get("thread_ts"), None, "the start opens the thread");
    assert_eq!(taken[1].body["thread_ts"], "1000.2", "the canary replies in it");
    assert_eq!(taken[2].body["thread_ts"], "1000.2", "the end replies in it");
    assert_eq!(taken[3].body.get("thread_ts"), None, "a global pause is no run's");
    let started = taken[0].body.to_string();
    assert!(started.contains("5 (1 canary, 0 drain, 5 hot)"), "{started}");
    assert!(started.contains("converge"), "the trigger: {started}");
    assert!(
        rollout < Duration::from_secs(10),
        "the rollout did not wait for Slack's Retry-After: {rollout:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_is_posted_signed_with_the_node_step_output_and_how_to_resume() {
    let hook = Recorder::default();
    let addr = listen("127.0.0.1:0".parse().unwrap(), hook.clone()).await;
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "s3cret\n").unwrap();
    let site = site(
        &format!(
            "notifications:\n  poll_interval: 50ms\n  webhooks:\n    - url: http://{addr}/hook\n      events: [run_stopped, node_held]\n      secret: {{ file: {} }}\n",
            secret.path().display()
        ),
        "n02",
    );
    let d = Daemon::start(options(site.path())).await.unwrap();
    d.actions()
        .send(Action::Converge {
            workflow: "mark".into(),
        })
        .unwrap();
    until(Duration::from_secs(30), "the stop to be posted", || {
        !hook.taken().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.shutdown().await.unwrap();

    let got = hook.taken();
    assert_eq!(got.len(), 1, "only the events asked for: {got:?}");
    let g = &got[0];
    assert_eq!(g.headers["x-drover-event"], "run_stopped");
    let want = drover::notification::sign(b"s3cret", &g.raw);
    assert_eq!(
        g.headers["x-drover-signature"],
        want.as_str(),
        "HMAC-SHA256 of the body"
    );
    assert_eq!(g.body["event"], "run_stopped");
    let data = &g.body["data"];
    assert_eq!(data["status"], "stopped");
    assert_eq!(data["nodes_failed"]["first"][0]["node"], "n02");
    assert_eq!(data["nodes_failed"]["first"][0]["last_step"]["step"], "mark");
    assert_eq!(data["nodes_failed"]["first"][0]["last_step"]["exit_code"], 3);
    let text = g.body["text"].as_str().unwrap();
    for want in [
        "mark v1 stopped",
        "n02 (failed) at mark",
        "no space left, disk full",
        "drover runs resume 2",
    ] {
        assert!(text.contains(want), "{want} in:\n{text}");
    }
    assert!(
        text.contains("failure budget"),
        "the budget that stopped it:\n{text}"
    );
}

fn serve(site: &Path, log: &str) -> std::process::Child {
    serve_with(site, log, &[])
}

fn serve_with(site: &Path, log: &str, env: &[(&str, &Path)]) -> std::process::Child {
    let err = std::fs::File::create(site.join(log)).unwrap();
    std::process::Command::new(drover_bin())
        .args(["serve", "--site"])
        .arg(site)
        .args(["--listen", "127.0.0.1:0", "--shutdown-deadline", "30s"])
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(err)
        .spawn()
        .expect("drover serve")
}

/// The daemon is killed with -9 right after a state change (n03's drain is recorded and
/// done) while the receiver refuses connections; a second daemon resumes the run and,
/// once the receiver is up, every event arrives exactly once.
#[test]
fn kill_9_right_after_a_state_change_loses_no_notification_and_sends_none_twice() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // A port nothing listens on yet: the receiver is down until the restart.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let site = Site::new();
    let root = site.path().to_path_buf();
    let _ = std::fs::remove_file(root.join("workflows/update.yml"));
    for d in ["marks", "drained"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let site = site
        .write(
            "drover.yml",
            &format!(
                "inventory: inventory.yml\nworkflows: workflows\ntransport: local\nleases: {{ ttl: 30s }}\n\
                 drain:\n  run_on: controller\n\
                 \x20 drain: touch {{{{ site.root }}}}/drained/{{{{ node.name }}}}\n\
                 \x20 drained: test -e {{{{ site.root }}}}/drained/{{{{ node.name }}}}\n\
                 \x20 resume: rm -f {{{{ site.root }}}}/drained/{{{{ node.name }}}}\n\
                 \x20 poll_interval: 100ms\n  timeout: 1m\n\
                 notifications:\n  poll_interval: 50ms\n  max_retry_delay: 1s\n  webhooks:\n    - url: http://{addr}/hook\n"
            ),
        )
        .write(
            "inventory.yml",
            "nodes:\n  n[01-05]: {}\ngroups:\n  compute: [\"n[01-05]\"]\ncanary: [n01]\n",
        )
        .write(
            "workflows/mark.yml",
            "name: mark\nversion: 1\ntargets: { nodes: [\"@compute\"] }\nconverge: { every: 1s }\n\
             strategy: { batch: 1 }\n\
             steps:\n  - name: mark\n\
             \x20   run: sleep 1 && touch {{ site.root }}/marks/$DROVER_NODE\n\
             \x20   check: test -e {{ site.root }}/marks/$DROVER_NODE\n    change: drain\n",
        );
    let root = site.path();
    let mut first = serve(root, "serve1.log");
    let t = Instant::now();
    while !root.join("drained/n03").exists() {
        assert!(t.elapsed() < Duration::from_secs(60), "n03 was never drained");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = rustix::process::Pid::from_raw(i32::try_from(first.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    first.wait().unwrap();
    let recorded = Store::open_read_only(&root.join(".drover/drover.db"))
        .unwrap()
        .outbox()
        .unwrap();
    let kinds: Vec<&str> = recorded.iter().map(|n| n.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["run_started", "canary_passed"],
        "recorded before the kill"
    );

    let hook = Recorder::default();
    let mut second = serve(root, "serve2.log");
    // Down a while longer after the restart: the sender retries.
    std::thread::sleep(Duration::from_secs(2));
    rt.block_on(listen(addr, hook.clone()));
    let t = Instant::now();
    loop {
        let done = runs_of(root).iter().any(|r| r.status == RunStatus::Succeeded);
        let keys: Vec<String> = hook
            .taken()
            .iter()
            .map(|g| g.body["event"].as_str().unwrap_or("").to_string())
            .collect();
        if done && keys.iter().any(|k| k == "run_finished") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "timed out: got {keys:?}\n{}",
            std::fs::read_to_string(root.join("serve2.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = rustix::process::Pid::from_raw(i32::try_from(second.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(second.wait().unwrap().success());

    let got = hook.taken();
    let events: Vec<&str> = got.iter().map(|g| g.body["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        ["run_started", "canary_passed", "run_resumed", "run_finished"],
        "each event exactly once, in order"
    );
    let mut keys: Vec<&str> = got
        .iter()
        .map(|g| g.headers["x-drover-delivery"].to_str().unwrap())
        .collect();
    keys.dedup();
    assert_eq!(keys.len(), 4, "no key twice");
    assert_eq!(got[3].body["data"]["status"], "succeeded");
    let log = std::fs::read_to_string(root.join("serve2.log")).unwrap();
    assert!(
        log.contains("notification not delivered: unreachable"),
        "retried: {log}"
    );
    assert!(
        !log.contains(&format!("127.0.0.1:{port}")),
        "the sink's URL is never logged: {log}"
    );
}

/// `drover_notifications_pending{sink="slack"}` from the daemon's `/metrics`.
async fn slack_backlog(d: &Daemon) -> u64 {
    let text = reqwest::get(format!("http://{}/metrics", d.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("drover_notifications_pending{sink=\"slack\"} "))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no slack backlog in\n{text}"))
}

/// Slack refuses connections for several times the longest retry delay (1 s here, so
/// the backoff schedule is spent within the first seconds), then answers 503 and 429:
/// the rollout runs to its end meanwhile, the outbox keeps every event (the backlog
/// shows in `/metrics`), and once Slack takes messages again each arrives exactly once,
/// in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_down_longer_than_the_retry_schedule_loses_nothing_and_slows_nothing() {
    // A port nothing listens on yet: connections are refused until the listener binds it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "xoxb-test-token\n").unwrap();
    let site = site(
        &format!(
            "notifications:\n  poll_interval: 50ms\n  max_retry_delay: 1s\n  slack:\n    bot_token: {{ file: {} }}\n    channel: C0DROVER\n    api_url: http://{addr}/api\n",
            token.path().display()
        ),
        "none",
    );
    let d = Daemon::start(options(site.path())).await.unwrap();
    let t = Instant::now();
    d.actions()
        .send(Action::Converge {
            workflow: "mark".into(),
        })
        .unwrap();
    until(Duration::from_secs(30), "the run to succeed", || {
        runs_of(site.path())
            .iter()
            .any(|r| r.status == RunStatus::Succeeded)
    })
    .await;
    let rollout = t.elapsed();
    let paused = site.run(&["pause", "--by", "alice", "--reason", "after the outage"]);
    assert_eq!(paused.code, 0, "{}", paused.stderr);
    // Down for 4 s past the rollout: four times the longest retry delay.
    until(Duration::from_secs(10), "the backlog of four", || {
        Store::open_read_only(&site.path().join(".drover/drover.db"))
            .and_then(|s| s.outbox_backlog("slack"))
            .unwrap_or(0)
            == 4
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(slack_backlog(&d).await, 4, "nothing dropped while Slack is down");

    let slack = Recorder::default();
    *slack.unavailable.lock().unwrap() = 2;
    *slack.throttle.lock().unwrap() = 1;
    listen(addr, slack.clone()).await;
    until(Duration::from_secs(30), "four messages", || {
        slack.taken().len() >= 4
    })
    .await;
    // Give a duplicate the time to show.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let texts: Vec<String> = slack.taken().iter().map(text_of).collect();
    assert_eq!(
        texts,
        [
            "mark v1 started",
            "mark v1: canary passed",
            "mark v1 succeeded",
            "all runs paused by alice"
        ],
        "each event once, in order, after the outage"
    );
    assert_eq!(slack.got().len(), 7, "two 503s and a 429 came first");
    let taken = slack.taken();
    // The start was the fourth request (after 503, 503, 429): its ts is 1000.4.
    assert_eq!(
        taken[1].body["thread_ts"], "1000.4",
        "still threaded after the outage"
    );
    assert_eq!(taken[2].body["thread_ts"], "1000.4");
    assert_eq!(slack_backlog(&d).await, 0);
    d.shutdown().await.unwrap();
    assert!(
        rollout < Duration::from_secs(10),
        "the rollout did not wait for Slack: {rollout:?}"
    );
}

/// Through `drover serve` with its test clock (`DROVER_TEST_CLOCK`) on a Saturday: the
/// converge pass's run waits for its Mon-Fri window, and Slack hears that, with when the
/// window opens, in the run's thread; on Monday the run goes on and Slack hears the rest.
#[test]
fn waiting_for_a_window_is_posted_to_slack_with_its_opening_time() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let slack = Recorder::default();
    let addr = rt.block_on(listen("127.0.0.1:0".parse().unwrap(), slack.clone()));
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "xoxb-test-token\n").unwrap();
    let clock = tempfile::NamedTempFile::new().unwrap();
    // Saturday 11:00 in Berlin: the window `day` (Mon-Fri 08-17) is closed.
    std::fs::write(clock.path(), "2026-12-05T10:00:00Z").unwrap();
    let site = site(
        &format!(
            "windows:\n  day: {{ timezone: Europe/Berlin, days: [mon-fri], start: \"08:00\", end: \"17:00\" }}\n\
             notifications:\n  poll_interval: 50ms\n  slack:\n    bot_token: {{ file: {} }}\n    channel: C0DROVER\n    api_url: http://{addr}/api\n",
            token.path().display()
        ),
        "none",
    );
    let wf = std::fs::read_to_string(site.path().join("workflows/mark.yml")).unwrap();
    let site = site.write(
        "workflows/mark.yml",
        &wf.replace("strategy:", "window: day\nconverge: { every: 1s }\nstrategy:"),
    );
    let root = site.path();
    let mut d = serve_with(root, "serve.log", &[("DROVER_TEST_CLOCK", clock.path())]);
    let log = || std::fs::read_to_string(root.join("serve.log")).unwrap_or_default();
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let t = Instant::now();
        while !done() {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}\n{}",
                log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    };
    wait("the wait posted to Slack", &|| {
        slack
            .taken()
            .iter()
            .any(|g| text_of(g).contains("waits for window"))
    });
    assert_eq!(
        std::fs::read_dir(root.join("marks")).unwrap().count(),
        0,
        "nothing ran on Saturday"
    );
    // Monday 10:00 in Berlin.
    std::fs::write(clock.path(), "2026-12-07T09:00:00Z").unwrap();
    wait("the run's end posted", &|| {
        slack.taken().iter().any(|g| text_of(g).contains("succeeded"))
    });
    std::thread::sleep(Duration::from_millis(500));
    let pid = rustix::process::Pid::from_raw(i32::try_from(d.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(d.wait().unwrap().success());

    let taken = slack.taken();
    let texts: Vec<String> = taken.iter().map(text_of).collect();
    assert_eq!(
        texts,
        [
            "mark v1 started",
            "mark v1 waits for window day",
            "mark v1: canary passed",
            "mark v1 succeeded"
        ],
        "each once, in order"
    );
    let waits = taken[1].body.to_string();
    assert!(
        waits.contains(r#"*Opens*\nMon 2026-12-07 08:00 Europe/Berlin"#),
        "the opening time, in the window's zone: {waits}"
    );
    assert_eq!(taken[1].body["thread_ts"], "1000.1", "in the run's thread");
}
