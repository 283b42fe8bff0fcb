//! `drover serve`: the daemon in process (converge passes driven by hand, a real HTTP
//! listener on 127.0.0.1:0) and as a process (SIGTERM and kill -9 mid-run, then a
//! restart that finishes the run).

#![expect(clippy::unwrap_used, reason = "test fixtures: a failure is the test failing")]

use std::path::Path;
use std::time::{Duration, Instant};

use drover::daemon::{Action, ConvergeClock, Daemon, DaemonOptions};
use drover::store::{RunStatus, Store};

use crate::support::*;

/// A local site of `nodes` simulated nodes whose workflow marks each node, counting
/// how often it ran there (`count/NODE` gets a line per run); a node is GOOD once it
/// has its mark.
fn marking_site(nodes: &str, extra_step: &str) -> Site {
    let site = Site::new();
    let _ = std::fs::remove_file(site.path().join("workflows/update.yml"));
    for d in ["marks", "count"] {
        std::fs::create_dir_all(site.path().join(d)).unwrap();
    }
    site.write("drover.yml", "inventory: inventory.yml\nworkflows: workflows\ntransport: local\nleases: { ttl: 30s }\n")
        .write("inventory.yml", &inventory(nodes))
        .write(
            "workflows/mark.yml",
            &format!(
                "name: mark\nversion: 1\ntargets: {{ nodes: [\"@compute\"] }}\n\
                 strategy: {{ batch: 1, failure_budget: {{ per_batch: 0, per_run: 0 }} }}\n\
                 steps:\n{extra_step}  - name: mark\n    run: echo x >> {{{{ site.root }}}}/count/$DROVER_NODE && touch {{{{ site.root }}}}/marks/$DROVER_NODE\n\
                 \x20   check: test -e {{{{ site.root }}}}/marks/$DROVER_NODE\n    change: hot\n"
            ),
        )
}

fn inventory(nodes: &str) -> String {
    format!("nodes:\n  {nodes}: {{}}\ngroups:\n  compute: [\"{nodes}\"]\ncanary: [n01]\n")
}

fn runs_of(site: &Path) -> Vec<drover::store::RunRow> {
    Store::open_read_only(&site.join(".drover/drover.db"))
        .and_then(|s| s.runs())
        .unwrap_or_default()
}

fn count(site: &Path, node: &str) -> usize {
    std::fs::read_to_string(site.join("count").join(node))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Sends converge passes of `workflow` every 100 ms until `done` holds (at most `limit`).
/// A run's end is in the store a moment before the daemon's loop hears of it, and a pass
/// sent in between is skipped on purpose ("a rollout is active"): in production the
/// converge timer sends the next one, here this loop does. For checks that a pass starts
/// nothing, `done` may be a fixed time, so that some passes surely come after the end.
async fn converge_until(
    d: &Daemon,
    workflow: &str,
    limit: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) {
    let t = Instant::now();
    loop {
        d.actions()
            .send(Action::Converge {
                workflow: workflow.into(),
            })
            .unwrap();
        if done() {
            return;
        }
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (polling, at most `limit`) until `done` holds.
async fn until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn options(site: &Path) -> DaemonOptions {
    let mut o = DaemonOptions::new(site.to_path_buf());
    o.listen = Some("127.0.0.1:0".parse().unwrap());
    o.converge = ConvergeClock::Manual;
    o
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converge_fixes_a_drifted_node_and_picks_up_a_node_added_to_the_inventory() {
    let site = marking_site("n[01-03]", "");
    let d = Daemon::start(options(site.path())).await.unwrap();
    let converge = || Action::Converge {
        workflow: "mark".into(),
    };
    d.actions().send(converge()).unwrap();
    until(Duration::from_secs(60), "the first pass", || {
        runs_of(site.path())
            .first()
            .is_some_and(|r| r.status == RunStatus::Succeeded)
    })
    .await;
    for n in ["n01", "n02", "n03"] {
        assert_eq!(count(site.path(), n), 1, "{n}");
    }
    // By hand: n02's change undone; n04 joins the inventory.
    std::fs::remove_file(site.path().join("marks/n02")).unwrap();
    std::fs::write(site.path().join("inventory.yml"), inventory("n[01-04]")).unwrap();
    converge_until(&d, "mark", Duration::from_secs(60), "the second pass", || {
        let runs = runs_of(site.path());
        runs.len() == 2 && runs[0].status == RunStatus::Succeeded
    })
    .await;
    assert_eq!(count(site.path(), "n02"), 2, "the drifted node was fixed");
    assert_eq!(
        count(site.path(), "n04"),
        1,
        "the new node was brought to the version"
    );
    assert_eq!(count(site.path(), "n01"), 1, "a GOOD node is not touched");
    assert_eq!(count(site.path(), "n03"), 1, "a GOOD node is not touched");
    let store = Store::open_read_only(&site.path().join(".drover/drover.db")).unwrap();
    let last = &store.runs().unwrap()[0];
    assert_eq!(last.counts.succeeded, 2, "only the drifted and the new node ran");
    assert_eq!(
        store.trigger(&last.id).unwrap(),
        Some(serde_json::json!({"kind": "converge"}))
    );
    // Everything GOOD: a pass records no run.
    let t = Instant::now();
    converge_until(&d, "mark", Duration::from_secs(60), "passes", || {
        t.elapsed() > Duration::from_millis(1500)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    d.shutdown().await.unwrap();
    assert_eq!(runs_of(site.path()).len(), 2, "a converged fleet records no run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_stopped_by_its_budget_waits_for_a_human_until_a_new_version() {
    // n02 fails its step: the canary n01 passes, the first batch (n02) stops the run.
    let fail = "  - name: fail-on-n02\n    run: test \"$DROVER_NODE\" != n02\n    change: hot\n";
    let site = marking_site("n[01-03]", fail);
    let d = Daemon::start(options(site.path())).await.unwrap();
    let converge = || Action::Converge {
        workflow: "mark".into(),
    };
    d.actions().send(converge()).unwrap();
    until(Duration::from_secs(60), "the stopped run", || {
        runs_of(site.path())
            .first()
            .is_some_and(|r| r.status == RunStatus::Stopped)
    })
    .await;
    let t = Instant::now();
    converge_until(&d, "mark", Duration::from_secs(60), "passes", || {
        t.elapsed() > Duration::from_millis(1500)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(runs_of(site.path()).len(), 1, "not retried by converge");
    assert_eq!(count(site.path(), "n03"), 0);
    // A new version (the failing step fixed) continues.
    let wf = std::fs::read_to_string(site.path().join("workflows/mark.yml"))
        .unwrap()
        .replace("version: 1", "version: 2")
        .replace("!= n02", "!= nobody");
    std::fs::write(site.path().join("workflows/mark.yml"), wf).unwrap();
    converge_until(
        &d,
        "mark",
        Duration::from_secs(60),
        "the new version's run",
        || {
            let runs = runs_of(site.path());
            runs.len() == 2 && runs[0].status == RunStatus::Succeeded
        },
    )
    .await;
    assert_eq!(runs_of(site.path())[0].version, 2);
    assert_eq!(count(site.path(), "n03"), 1);
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_healthz_answers() {
    let site = marking_site("n[01-02]", "");
    let d = Daemon::start(options(site.path())).await.unwrap();
    let (head, body) = get(d.addr, "/healthz").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, "ok\n");
    d.actions()
        .send(Action::Converge {
            workflow: "mark".into(),
        })
        .unwrap();
    until(Duration::from_secs(60), "the run", || {
        runs_of(site.path())
            .first()
            .is_some_and(|r| r.status == RunStatus::Succeeded)
    })
    .await;
    d.metrics.set_commit("0123abcd");
    d.metrics
        .fetched(jiff::Timestamp::from_second(1_700_000_000).unwrap(), true);
    let (head, body) = get(d.addr, "/metrics").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let scrape =
        prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text");
    let gauge = |name: &str, label: Option<(&str, &str)>| -> f64 {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no {name} {label:?} in\n{body}"));
        match s.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{name}: {other:?}"),
        }
    };
    assert_eq!(gauge("drover_runs", Some(("state", "succeeded"))), 1.0);
    assert_eq!(gauge("drover_runs", Some(("state", "running"))), 0.0);
    assert_eq!(gauge("drover_nodes", Some(("state", "running"))), 0.0);
    assert_eq!(gauge("drover_commit_in_force", Some(("commit", "0123abcd"))), 1.0);
    assert_eq!(
        gauge("drover_last_fetch_timestamp_seconds", None),
        1_700_000_000.0
    );
    assert_eq!(gauge("drover_last_fetch_success", None), 1.0);
    let steps = scrape
        .samples
        .iter()
        .find(|s| s.metric == "drover_step_duration_seconds")
        .unwrap_or_else(|| panic!("no step histogram in\n{body}"));
    let prometheus_parse::Value::Histogram(buckets) = &steps.value else {
        panic!("{:?}", steps.value);
    };
    let inf = buckets.iter().map(|b| b.count).fold(0.0, f64::max);
    assert_eq!(inf, 2.0, "one step on each of two nodes: {buckets:?}");
    d.shutdown().await.unwrap();
}

/// A local site whose one workflow drains each node (hooks keep `drained/NODE` while
/// it is out), takes a second per node, one node at a time, and converges every
/// second: the first pass starts the rollout a second after the daemon starts.
fn draining_site(nodes: &str) -> Site {
    let site = Site::new();
    let _ = std::fs::remove_file(site.path().join("workflows/update.yml"));
    for d in ["marks", "count", "drained"] {
        std::fs::create_dir_all(site.path().join(d)).unwrap();
    }
    site.write(
        "drover.yml",
        "inventory: inventory.yml\nworkflows: workflows\ntransport: local\nleases: { ttl: 30s }\n\
         drain:\n  run_on: controller\n\
         \x20 drain: touch {{ site.root }}/drained/{{ node.name }}\n\
         \x20 drained: test -e {{ site.root }}/drained/{{ node.name }}\n\
         \x20 resume: rm -f {{ site.root }}/drained/{{ node.name }}\n\
         \x20 poll_interval: 100ms\n  timeout: 1m\n",
    )
    .write("inventory.yml", &inventory(nodes))
    .write(
        "workflows/mark.yml",
        "name: mark\nversion: 1\ntargets: { nodes: [\"@compute\"] }\nconverge: { every: 1s }\n\
         strategy: { batch: 1 }\n\
         steps:\n  - name: mark\n\
         \x20   run: sleep 1 && echo x >> {{ site.root }}/count/$DROVER_NODE && touch {{ site.root }}/marks/$DROVER_NODE\n\
         \x20   check: test -e {{ site.root }}/marks/$DROVER_NODE\n    change: drain\n",
    )
}

fn serve(site: &Path, log: &str) -> std::process::Child {
    let err = std::fs::File::create(site.join(log)).unwrap();
    std::process::Command::new(drover_bin())
        .args(["serve", "--site"])
        .arg(site)
        .args(["--listen", "127.0.0.1:0", "--shutdown-deadline", "30s"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(err)
        .spawn()
        .expect("drover serve")
}

fn wait_for(limit: Duration, what: &str, site: &Path, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(
            t.elapsed() < limit,
            "timed out waiting for {what}\n{}\n{}",
            std::fs::read_to_string(site.join("serve1.log")).unwrap_or_default(),
            std::fs::read_to_string(site.join("serve2.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn drained(site: &Path) -> Vec<String> {
    std::fs::read_dir(site.join("drained"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Stops the first daemon mid-run (`sig`: SIGTERM, or kill -9), then starts a second
/// one, which resumes the run: it completes, no node ran twice, none is left drained.
fn stop_mid_run_then_restart(sig: rustix::process::Signal) {
    let site = draining_site("n[01-05]");
    let root = site.path();
    let mut first = serve(root, "serve1.log");
    // n03 is out of service (drained, its step running or about to): mid-run.
    wait_for(Duration::from_secs(60), "n03 drained", root, || {
        root.join("drained/n03").exists()
    });
    let pid = rustix::process::Pid::from_raw(i32::try_from(first.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = first.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(40), "the daemon did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    let runs = runs_of(root);
    assert_eq!(runs.len(), 1);
    let id = runs[0].id.clone();
    if sig == rustix::process::Signal::TERM {
        assert!(status.success(), "SIGTERM exits 0: {status:?}");
        assert_eq!(runs[0].status, RunStatus::Interrupted, "stopped, resumable");
        assert_eq!(
            drained(root),
            Vec::<String>::new(),
            "the node in flight finished its cycle"
        );
        assert_eq!(count(root, "n03"), 1, "n03 finished its cycle before the exit");
        assert_eq!(count(root, "n05"), 0, "no new node was started");
    } else {
        assert_eq!(
            runs[0].status,
            RunStatus::Running,
            "a killed daemon's run is left running"
        );
    }
    let mut second = serve(root, "serve2.log");
    wait_for(
        Duration::from_secs(90),
        "the resumed run to succeed",
        root,
        || {
            runs_of(root)
                .iter()
                .any(|r| r.id == id && r.status == RunStatus::Succeeded)
        },
    );
    for n in ["n01", "n02", "n03", "n04", "n05"] {
        assert_eq!(count(root, n), 1, "{n} ran exactly once");
    }
    assert_eq!(drained(root), Vec::<String>::new(), "no node is left drained");
    // Converge passes after it find every node GOOD: no second run.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(runs_of(root).len(), 1, "{:?}", runs_of(root));
    let pid = rustix::process::Pid::from_raw(i32::try_from(second.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(second.wait().unwrap().success());
    let log = std::fs::read_to_string(root.join("serve2.log")).unwrap();
    assert!(log.contains("resuming a run left unfinished"), "{log}");
}

#[test]
fn sigterm_mid_run_then_restart_completes_the_run() {
    stop_mid_run_then_restart(rustix::process::Signal::TERM);
}

#[test]
fn kill_9_mid_run_then_restart_completes_the_run() {
    stop_mid_run_then_restart(rustix::process::Signal::KILL);
}

/// Under systemd (`Type=notify`): `READY=1` only once the daemon listens (its
/// `/healthz` answers at that moment), `WATCHDOG=1` at half of `WATCHDOG_USEC` while it
/// runs, `STOPPING=1` when SIGTERM starts the stop; all to the real datagram socket
/// named in `NOTIFY_SOCKET`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_systemd_it_says_ready_once_listening_feeds_the_watchdog_and_says_stopping() {
    let site = marking_site("n[01-02]", "");
    let root = site.path();
    let sock_dir = tempfile::tempdir().unwrap();
    let sock_path = sock_dir.path().join("notify");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Other tests in this process install signal handlers, and a signal arriving during
    // `recv` makes it fail with EINTR (std does not retry it): try again then.
    let recv_once = |sock: &std::os::unix::net::UnixDatagram| -> std::io::Result<String> {
        let mut buf = [0u8; 512];
        loop {
            match sock.recv(&mut buf) {
                Ok(n) => return Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    };
    let recv =
        |sock: &std::os::unix::net::UnixDatagram| -> String { recv_once(sock).expect("a notification") };
    let err = std::fs::File::create(root.join("serve.log")).unwrap();
    let mut child = std::process::Command::new(drover_bin())
        .args(["serve", "--site"])
        .arg(root)
        .args(["--listen", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(err)
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(root.join("serve.log")).unwrap_or_default();
    let first = match recv_once(&sock) {
        Ok(m) => m,
        Err(e) => panic!("no READY=1: {e}\n{}", log()),
    };
    assert!(first.starts_with("READY=1\n"), "{first:?}");
    let addr: std::net::SocketAddr = log()
        .lines()
        .find_map(|l| {
            l.split("drover serve: listening addr=")
                .nth(1)
                .map(|a| a.trim().to_string())
        })
        .unwrap_or_else(|| panic!("READY=1 before the listener\n{}", log()))
        .parse()
        .unwrap();
    let (head, _) = get(addr, "/healthz").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // 400 ms: fed every 200 ms.
    let t = Instant::now();
    for _ in 0..4 {
        assert_eq!(recv(&sock), "WATCHDOG=1\n");
    }
    let took = t.elapsed();
    assert!(
        // Not sooner than the interval allows (no ping storm); the upper bound only
        // guards against a stopped loop, since a loaded CI machine delays timers.
        took >= Duration::from_millis(500) && took < Duration::from_secs(30),
        "four watchdog pings in {took:?}"
    );
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let stopping = loop {
        let m = recv(&sock);
        if m != "WATCHDOG=1\n" {
            break m;
        }
    };
    assert!(stopping.starts_with("STOPPING=1\n"), "{stopping:?}");
    assert!(child.wait().unwrap().success(), "{}", log());
}
