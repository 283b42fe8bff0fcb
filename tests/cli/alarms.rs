//! Alarm triggers at `POST /hooks/{name}` against the daemon in process on 127.0.0.1:0
//! with the local transport: a monitoring system's signed alarm runs the trigger's
//! workflow on the node it names, quiesced around it (`before`, then the drain, the
//! steps, `after`, the resume; `on_failure` and a hold when a step fails); unknown
//! nodes run nothing; a storm starts one run; the cooldown outlives a restart.

#![expect(clippy::unwrap_used, reason = "test fixtures: a failure is the test failing")]

use std::path::Path;
use std::time::{Duration, Instant};

use drover::daemon::{ConvergeClock, Daemon, DaemonOptions};
use drover::hooks::slack_signature;
use drover::store::{RunStatus, Store};

use crate::support::*;

const SECRET: &str = "alarm-secret-0123456789";

/// Four local nodes; workflow `fix` targets n[01-03], its drain step fails on a node
/// with a `fail-NODE` file. Controller drain hooks; every command appends to `log`.
fn site(cooldown: &str) -> Site {
    let site = Site::new();
    let _ = std::fs::remove_file(site.path().join("workflows/update.yml"));
    std::fs::create_dir_all(site.path().join("drained")).unwrap();
    let secret = site.path().join("alarm-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let log = site.path().join("log");
    let log = log.display();
    site.write(
        "drover.yml",
        &format!(
            "inventory: inventory.yml\nworkflows: workflows\ntransport: local\nleases: {{ ttl: 30s }}\n\
             drain:\n  run_on: controller\n  poll_interval: 1s\n\
             \x20 drain: echo \"drain {{{{ node.name }}}}\" >> {log} && touch {{{{ site.root }}}}/drained/{{{{ node.name }}}}\n\
             \x20 drained: test -e {{{{ site.root }}}}/drained/{{{{ node.name }}}}\n\
             \x20 resume: echo \"resume {{{{ node.name }}}}\" >> {log} && rm -f {{{{ site.root }}}}/drained/{{{{ node.name }}}}\n\
             triggers:\n  disk-alarm:\n    workflow: fix\n    secret: {{ file: {secret} }}\n\
             \x20   nodes_from: /alert/host\n    cooldown: {cooldown}\n    quiesce:\n\
             \x20     before:\n        - name: quiesce\n          run: echo \"before $DROVER_NODE\" >> {log}\n          change: hot\n\
             \x20     after:\n        - name: activate\n          run: echo \"after $DROVER_NODE\" >> {log}\n          change: hot\n\
             \x20     on_failure:\n        - name: detach\n          run: echo \"on_failure $DROVER_NODE\" >> {log}\n          change: hot\n",
            secret = secret.display(),
        ),
    )
    .write(
        "inventory.yml",
        "nodes:\n  n[01-04]: {}\ngroups:\n  compute: [\"n[01-03]\"]\n",
    )
    .write(
        "workflows/fix.yml",
        &format!(
            "name: fix\nversion: 1\ntargets: {{ nodes: [\"@compute\"] }}\nstrategy: {{ batch: 1 }}\n\
             steps:\n  - name: repair\n\
             \x20   run: echo \"repair $DROVER_NODE\" >> {log} && test ! -e {{{{ site.root }}}}/fail-$DROVER_NODE\n\
             \x20   change: drain\n"
        ),
    )
}

async fn daemon(site: &Path) -> Daemon {
    let mut o = DaemonOptions::new(site.to_path_buf());
    o.listen = Some("127.0.0.1:0".parse().unwrap());
    o.converge = ConvergeClock::Manual;
    Daemon::start(o).await.unwrap()
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn alarm_body(host: &str, seq: u32) -> String {
    serde_json::json!({ "alert": { "name": "disk full", "host": host, "seq": seq } }).to_string()
}

fn signed(body: &str, ts: i64) -> Vec<(&'static str, String)> {
    let ts = ts.to_string();
    vec![
        (
            "x-drover-signature",
            slack_signature(SECRET.as_bytes(), &ts, body.as_bytes()),
        ),
        ("x-drover-timestamp", ts),
    ]
}

/// Posts `body` to `/hooks/{hook}`; status and the JSON answer.
async fn post(
    c: &reqwest::Client,
    d: &Daemon,
    hook: &str,
    body: &str,
    headers: &[(&str, String)],
) -> (u16, serde_json::Value) {
    let mut r = c
        .post(format!("http://{}/hooks/{hook}", d.addr))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

async fn alarm(d: &Daemon, host: &str, seq: u32) -> (u16, serde_json::Value) {
    let body = alarm_body(host, seq);
    post(
        &reqwest::Client::new(),
        d,
        "disk-alarm",
        &body,
        &signed(&body, now()),
    )
    .await
}

fn store(site: &Path) -> Store {
    Store::open_read_only(&site.join(".drover/drover.db")).unwrap()
}

/// Waits until `n` runs are recorded and none is running. The bound only guards against
/// a hang: a loaded CI machine running the whole suite is slow.
async fn runs_done(site: &Path, n: usize) -> Vec<drover::store::RunRow> {
    let t = Instant::now();
    loop {
        if site.join(".drover/drover.db").exists() {
            let runs = store(site).runs().unwrap();
            if runs.len() >= n && runs.iter().all(|r| r.status != RunStatus::Running) {
                return runs;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "timed out waiting for {n} finished runs"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn log(site: &Path) -> Vec<String> {
    std::fs::read_to_string(site.join("log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_quiesces_drains_runs_and_activates_and_a_failure_runs_on_failure_and_holds() {
    let site = site("10m");
    let root = site.path();
    let d = daemon(root).await;

    let (status, v) = alarm(&d, "n01", 1).await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["accepted"], serde_json::json!(["n01"]));
    let runs = runs_done(root, 1).await;
    assert_eq!(runs[0].workflow, "disk-alarm");
    assert_eq!(runs[0].status, RunStatus::Succeeded, "{runs:?}");
    assert_eq!(
        log(root),
        ["before n01", "drain n01", "repair n01", "after n01", "resume n01"],
        "before runs before the drain, after before the resume"
    );
    let trigger = store(root).trigger(&runs[0].id).unwrap().unwrap();
    assert_eq!(trigger["name"], "disk-alarm", "{trigger}");

    // n02's repair fails: on_failure runs, `after` does not, the node is held.
    std::fs::write(root.join("fail-n02"), "").unwrap();
    std::fs::write(root.join("log"), "").unwrap();
    let (status, v) = alarm(&d, "n02", 2).await;
    assert_eq!(status, 202, "{v}");
    let runs = runs_done(root, 2).await;
    assert_eq!(runs[0].status, RunStatus::Stopped, "{runs:?}");
    assert_eq!(
        log(root),
        [
            "before n02",
            "drain n02",
            "repair n02",
            "on_failure n02",
            "drain n02"
        ],
        "on_failure runs before the hold (which drains again, with the failure as reason)"
    );
    assert!(root.join("drained/n02").exists(), "held drained");
    let held = store(root).in_maintenance().unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].node, "n02");
    assert_eq!(held[0].by, "hook:disk-alarm");
    let reason = held[0].reason.clone().unwrap();
    assert!(
        reason.contains("alarm `disk-alarm`")
            && reason.contains("repair")
            && reason.contains("on_failure steps ran"),
        "{reason}"
    );
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_naming_unknown_or_untargeted_nodes_or_badly_signed_runs_nothing() {
    let site = site("10m");
    let root = site.path();
    let d = daemon(root).await;
    let c = reqwest::Client::new();

    let (status, v) = alarm(&d, "n01,n09,x[1-2]", 1).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["unknown"], serde_json::json!(["n09", "x1", "x2"]));
    assert!(v["error"].as_str().unwrap().ends_with("nothing runs"), "{v}");
    let (status, v) = alarm(&d, "n04", 2).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["not_targets"], serde_json::json!(["n04"]));
    let body = r#"{"alert": {"host": 7}}"#;
    let (status, v) = post(&c, &d, "disk-alarm", body, &signed(body, now())).await;
    assert_eq!(status, 422, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("`/alert/host` is a number"),
        "{v}"
    );
    let body = r#"{"other": 1}"#;
    let (status, _) = post(&c, &d, "disk-alarm", body, &signed(body, now())).await;
    assert_eq!(status, 422);

    let body = alarm_body("n01", 3);
    let mut forged = signed(&body, now());
    forged[0].1 = slack_signature(b"wrong", &forged[1].1, body.as_bytes());
    assert_eq!(post(&c, &d, "disk-alarm", &body, &forged).await.0, 401);
    assert_eq!(post(&c, &d, "disk-alarm", &body, &[]).await.0, 400, "unsigned");
    assert_eq!(
        post(&c, &d, "disk-alarm", &body, &signed(&body, now() - 600))
            .await
            .0,
        401,
        "stale"
    );
    let wrong_token = [("authorization", "Bearer nope".to_string())];
    assert_eq!(post(&c, &d, "disk-alarm", &body, &wrong_token).await.0, 401);
    let (status, v) = post(&c, &d, "no-such", &body, &signed(&body, now())).await;
    assert_eq!(status, 404);
    assert!(
        v["error"].as_str().unwrap().contains("triggers: disk-alarm"),
        "{v}"
    );

    // None of them started anything.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(log(root).is_empty(), "{:?}", log(root));
    assert!(!root.join(".drover/drover.db").exists() || store(root).runs().unwrap().is_empty());

    // The same alarm, signed, runs; replayed, it is refused; by token it is taken.
    let headers = signed(&body, now());
    assert_eq!(post(&c, &d, "disk-alarm", &body, &headers).await.0, 202);
    assert_eq!(
        post(&c, &d, "disk-alarm", &body, &headers).await.0,
        401,
        "replayed"
    );
    // Its run ends before the next alarm: one that came while n01 still waited for its
    // run would join that run (the queue takes every waiting node at once), and this
    // test counts runs.
    runs_done(root, 1).await;
    let token = [("authorization", format!("Bearer {SECRET}"))];
    let (status, v) = post(&c, &d, "disk-alarm", &alarm_body("n03", 4), &token).await;
    assert_eq!(status, 202, "{v}");
    let runs = runs_done(root, 2).await;
    assert_eq!(runs.len(), 2);
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_alarms_starts_one_run_and_the_cooldown_survives_a_restart() {
    let site = site("10m");
    let root = site.path();
    let d = daemon(root).await;

    let started = Instant::now();
    let mut storm = tokio::task::JoinSet::new();
    let addr = d.addr;
    // One client (making one loads the system's certificates: slow).
    let client = reqwest::Client::new();
    for seq in 0..100 {
        let client = client.clone();
        storm.spawn(async move {
            let body = alarm_body("n01", seq);
            let mut r = client
                .post(format!("http://{addr}/hooks/disk-alarm"))
                .body(body.clone());
            for (k, v) in signed(&body, now()) {
                r = r.header(k, v);
            }
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        });
    }
    let mut answers = Vec::new();
    while let Some(a) = storm.join_next().await {
        answers.push(a.unwrap());
    }
    // A hang guard only: how fast alarms are answered belongs in a benchmark.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "100 alarms took {:?}",
        started.elapsed()
    );
    let accepted = answers.iter().filter(|(s, _)| *s == 202).count();
    assert_eq!(accepted, 1, "{answers:?}");
    assert!(
        answers.iter().all(|(s, v)| *s == 202
            || (*s == 200
                && (v["coalesced"] == serde_json::json!(["n01"]) || v["cooling_down"][0]["node"] == "n01"))),
        "{answers:?}"
    );
    let runs = runs_done(root, 1).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(log(root).iter().filter(|l| *l == "repair n01").count(), 1);
    d.shutdown().await.unwrap();

    // Restarted, the daemon still knows n01 is cooling down; n03 is not.
    let d = daemon(root).await;
    let (status, v) = alarm(&d, "n01", 1000).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["cooling_down"][0]["node"], "n01", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("n01: cooling down until"),
        "{v}"
    );
    let (status, _) = alarm(&d, "n03", 1001).await;
    assert_eq!(status, 202);
    let runs = runs_done(root, 2).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(log(root).iter().filter(|l| *l == "repair n01").count(), 1);
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cooldown_alarms_for_a_node_in_a_run_are_coalesced_and_later_ones_run_again() {
    let site = site("0s");
    let root = site.path();
    // A repair that takes a moment, so alarms come while it runs.
    let wf = std::fs::read_to_string(root.join("workflows/fix.yml"))
        .unwrap()
        .replace("run: echo", "run: sleep 1 && echo");
    let site = site.write("workflows/fix.yml", &wf);
    let root = site.path();
    let d = daemon(root).await;
    assert_eq!(alarm(&d, "n01", 1).await.0, 202);
    let (status, v) = alarm(&d, "n01", 2).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["coalesced"], serde_json::json!(["n01"]));
    runs_done(root, 1).await;
    // The run is over and there is no cooldown: the next alarm runs again.
    let (status, v) = alarm(&d, "n01", 3).await;
    assert_eq!(status, 202, "{v}");
    let runs = runs_done(root, 2).await;
    assert_eq!(runs.len(), 2);
    d.shutdown().await.unwrap();
}

#[test]
fn bad_trigger_config_is_refused_at_its_line() {
    let site = site("10m");
    let yml = std::fs::read_to_string(site.path().join("drover.yml")).unwrap();
    let broken = yml
        .replace("workflow: fix", "workflow: fixx")
        .replace("nodes_from: /alert/host", "nodes_from: alert.host");
    let site = site.write("drover.yml", &broken);
    let err = site.invalid();
    assert!(
        err.contains("no workflow named `fixx` for trigger `disk-alarm`")
            && err.contains("did you mean `fix`?"),
        "{err}"
    );
    assert!(err.contains("`alert.host` is not a JSON Pointer"), "{err}");
    let line = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert!(
        err.contains(&format!("drover.yml:{}:", line("workflow: fixx"))),
        "{err}"
    );
    assert!(
        err.contains(&format!("drover.yml:{}:", line("nodes_from:"))),
        "{err}"
    );

    // The on_failure step is the last `change: hot` of the file.
    let i = yml.rfind("change: hot").unwrap();
    let renamed = format!("{}change: drain{}", &yml[..i], &yml[i + "change: hot".len()..])
        .replace("disk-alarm:", "git:");
    let site = site.write("drover.yml", &renamed);
    let err = site.invalid();
    assert!(
        err.contains("`git` is taken by the built-in `/hooks/git`"),
        "{err}"
    );
    assert!(
        err.contains("on_failure step `detach` is `change: drain`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_alarm_example_replaces_a_node_and_marks_a_failed_one_for_a_human() {
    let ex = repo_root().join("examples/alarm");
    let read = |rel: &str| std::fs::read_to_string(ex.join(rel)).unwrap();
    let site = Site::new();
    let _ = std::fs::remove_file(site.path().join("workflows/update.yml"));
    let secret = site.path().join("alarm-secret");
    std::fs::write(&secret, SECRET).unwrap();
    let yml = read("drover.yml");
    assert!(yml.contains("secret: { env: DROVER_ALARM_SECRET }"));
    let site = site
        .write(
            "drover.yml",
            &yml.replace(
                "secret: { env: DROVER_ALARM_SECRET }",
                &format!("secret: {{ file: {} }}", secret.display()),
            )
            .replace("listen: 127.0.0.1:8472", "listen: 127.0.0.1:0"),
        )
        .write("inventory.yml", &read("inventory.yml"))
        .write("workflows/replace.yml", &read("workflows/replace.yml"));
    let root = site.path();
    let state = root.join("state");
    std::fs::create_dir_all(state.join("lb")).unwrap();
    for n in ["web01", "web02", "web03"] {
        std::fs::write(state.join("lb").join(n), "").unwrap();
    }
    std::fs::write(state.join("vip"), "web02\n").unwrap();
    let d = daemon(root).await;
    let c = reqwest::Client::new();
    let token = [("authorization", format!("Bearer {SECRET}"))];

    let body = r#"{"alert": {"name": "disk full", "host": "web02"}}"#;
    let (status, v) = post(&c, &d, "disk-alarm", body, &token).await;
    assert_eq!(status, 202, "{v}");
    let wait = |n: usize| {
        let state = state.clone();
        async move {
            let t = Instant::now();
            loop {
                let runs = Store::open_read_only(&state.join("drover.db"))
                    .and_then(|s| s.runs())
                    .unwrap_or_default();
                if runs.len() >= n && runs.iter().all(|r| r.status != RunStatus::Running) {
                    return runs;
                }
                assert!(t.elapsed() < Duration::from_secs(120), "timed out");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let runs = wait(1).await;
    assert_eq!(runs[0].status, RunStatus::Succeeded, "{runs:?}");
    assert!(state.join("nodes/web02/built").exists(), "rebuilt");
    assert!(state.join("lb/web02").exists(), "back in the load balancer");
    assert_eq!(
        std::fs::read_to_string(state.join("vip")).unwrap().trim(),
        "web01",
        "the VIP moved away before the drain"
    );

    // A replacement whose health check fails: marked for a human, held.
    std::fs::write(state.join("broken-web03"), "").unwrap();
    let body = r#"{"alert": {"name": "disk full", "host": "web03"}}"#;
    assert_eq!(post(&c, &d, "disk-alarm", body, &token).await.0, 202);
    let runs = wait(2).await;
    assert_eq!(runs[0].status, RunStatus::Stopped, "{runs:?}");
    assert!(state.join("nodes/web03/replace-by-hand").exists());
    assert!(!state.join("lb/web03").exists(), "held out of the load balancer");
    let held = Store::open_read_only(&state.join("drover.db"))
        .unwrap()
        .in_maintenance()
        .unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].node, "web03");
    d.shutdown().await.unwrap();
}

/// A `drover serve` process on `site`, its log in `log`; its listening address.
fn serve(site: &Path, log: &str) -> (std::process::Child, std::net::SocketAddr) {
    let path = site.join(log);
    let child = spawn_serve(site, &path);
    listening(child, &path)
}

fn spawn_serve(site: &Path, path: &Path) -> std::process::Child {
    let err = std::fs::File::create(path).unwrap();
    std::process::Command::new(drover_bin())
        .args(["serve", "--site"])
        .arg(site)
        .args(["--listen", "127.0.0.1:0", "--shutdown-deadline", "30s"])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(err)
        .spawn()
        .unwrap()
}

/// Waits until the daemon says where it listens (killing it when it never does).
fn listening(mut child: std::process::Child, path: &Path) -> (std::process::Child, std::net::SocketAddr) {
    let t = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let addr = text
            .lines()
            .find_map(|l| l.split("drover serve: listening addr=").nth(1))
            .and_then(|a| a.trim().parse().ok());
        if let Some(addr) = addr {
            return (child, addr);
        }
        if t.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the daemon never listened\n{text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The daemon is killed with -9 while an alarm's node waits to be drained (after its
/// `before` step and the drain request); the next daemon resumes that run: the node's
/// cycle starts again (the quiesce and the drain request are redone, not trusted across
/// the outage), then it is repaired, activated and resumed once each, in the one run the
/// alarm started, recorded as the trigger's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_run_left_by_a_kill_9_is_resumed_by_the_next_daemon() {
    let site = site("10m");
    let root = site.path();
    // The drain is not done until `go` exists: the node waits in it, nothing running.
    let yml = std::fs::read_to_string(root.join("drover.yml")).unwrap();
    let gated = yml.replace(
        "drained: test -e {{ site.root }}/drained/{{ node.name }}",
        "drained: test -e {{ site.root }}/drained/{{ node.name }} && test -e {{ site.root }}/go",
    );
    assert_ne!(gated, yml);
    std::fs::write(root.join("drover.yml"), gated).unwrap();

    let (mut first, addr) = serve(root, "serve1.log");
    let body = alarm_body("n01", 1);
    let mut r = reqwest::Client::new()
        .post(format!("http://{addr}/hooks/disk-alarm"))
        .body(body.clone());
    for (k, v) in signed(&body, now()) {
        r = r.header(k, v);
    }
    assert_eq!(r.send().await.unwrap().status().as_u16(), 202);
    let t = Instant::now();
    while !log(root).iter().any(|l| l == "drain n01") {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "n01 was never drained: {:?}",
            log(root)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A drained check or two: the drain is recorded.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = rustix::process::Pid::from_raw(i32::try_from(first.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    first.wait().unwrap();
    let left = store(root).runs().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].status, RunStatus::Running, "left unfinished by the kill");
    let run = left[0].id.clone();

    std::fs::write(root.join("go"), "").unwrap();
    let (mut second, _) = serve(root, "serve2.log");
    let runs = runs_done(root, 1).await;
    let pid = rustix::process::Pid::from_raw(i32::try_from(second.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(second.wait().unwrap().success());

    assert_eq!(runs.len(), 1, "resumed, not started again: {runs:?}");
    assert_eq!(runs[0].id, run);
    assert_eq!(runs[0].status, RunStatus::Succeeded, "{runs:?}");
    let lines = log(root);
    let once = |l: &str| lines.iter().filter(|x| *x == l).count();
    for l in ["repair n01", "after n01", "resume n01"] {
        assert_eq!(once(l), 1, "{l} once: {lines:?}");
    }
    assert_eq!(once("before n01"), 2, "quiesced again by the resume: {lines:?}");
    assert_eq!(
        lines[..4],
        ["before n01", "drain n01", "before n01", "drain n01"],
        "the first daemon got as far as the drain, the second began the cycle again"
    );
    let at = |l: &str| lines.iter().position(|x| x == l).unwrap();
    assert!(
        at("drain n01") < at("repair n01")
            && at("repair n01") < at("after n01")
            && at("after n01") < at("resume n01"),
        "{lines:?}"
    );
    let trigger = store(root).trigger(&run).unwrap().unwrap();
    assert_eq!(trigger["kind"], "webhook", "{trigger}");
    assert!(!root.join("drained/n01").exists(), "n01 back in service");
}

/// On real sshd nodes with a scheduler's drain hooks (the testbed's fake scheduler): one
/// alarm naming two nodes quiesces each on the node itself before the drain (`before`
/// sees it idle), repairs it drained, activates it before it is resumed; the node whose
/// repair fails runs `on_failure` on the node, stays drained and goes into maintenance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_on_ssh_nodes_quiesces_before_the_drain_and_runs_on_failure_on_the_node() {
    use crate::bed::{Bed, node};
    let b = Bed::start(2, true);
    let sched = b.sched.as_ref().unwrap().dir().join("state");
    let secret = b.site.path().join("alarm-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    // Each step notes, on the node, the scheduler's state of the node when it ran.
    let note = |what: &str| {
        format!(
            "echo \"{what} $(cat {}/{{{{ node.name }}}})\" >> {{{{ node.vars.state }}}}/log",
            sched.display()
        )
    };
    b.site_with_config(
        "",
        &format!(
            "leases: {{ ttl: 30s }}\n\
             triggers:\n  disk-alarm:\n    workflow: fix\n    secret: {{ file: {} }}\n\
             \x20   nodes_from: /alert/hosts\n    cooldown: 10m\n    quiesce:\n\
             \x20     before:\n        - name: quiesce\n          run: {}\n          change: hot\n\
             \x20     after:\n        - name: activate\n          run: {}\n          change: hot\n\
             \x20     on_failure:\n        - name: detach\n          run: {}\n          change: hot\n",
            secret.display(),
            serde_json::json!(note("before")),
            serde_json::json!(note("after")),
            serde_json::json!(note("on_failure")),
        ),
    );
    b.write(
        "workflows/fix.yml",
        &format!(
            "name: fix\nversion: 1\ntargets: {{ nodes: [\"@all\"] }}\nstrategy: {{ batch: 1 }}\n\
             steps:\n  - name: repair\n    run: {}\n    change: drain\n",
            serde_json::json!(format!(
                "{} && test ! -e {{{{ node.vars.state }}}}/fail",
                note("repair")
            ))
        ),
    );
    std::fs::write(b.state(1).join("fail"), "").unwrap();
    let root = b.site.path();
    let d = daemon(root).await;
    let body = serde_json::json!({ "alert": { "hosts": [node(0), node(1)] } }).to_string();
    let (status, v) = post(
        &reqwest::Client::new(),
        &d,
        "disk-alarm",
        &body,
        &signed(&body, now()),
    )
    .await;
    assert_eq!(status, 202, "{v}");
    let runs = runs_done(root, 1).await;
    d.shutdown().await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let on_node = |i: usize| {
        std::fs::read_to_string(b.state(i).join("log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        on_node(0),
        ["before idle", "repair drained", "after drained"],
        "quiesced while in service, repaired and activated drained"
    );
    assert_eq!(
        on_node(1),
        ["before idle", "repair drained", "on_failure drained"],
        "the failed node's on_failure ran on it, drained"
    );
    let s = b.sched.as_ref().unwrap();
    assert_eq!(s.state(&node(0)), "idle", "resumed");
    assert_eq!(s.state(&node(1)), "drained", "held for a human");
    let maint = store(root).in_maintenance().unwrap();
    assert_eq!(maint.len(), 1, "{maint:?}");
    assert_eq!(maint[0].node, node(1));
}
