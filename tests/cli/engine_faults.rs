//! The engine when something other than the change goes wrong: a node task or a check
//! that panics (a drover bug), a state store that stops writing, a lease another run
//! takes over, health checks that take a while, a step's exit code and output in the
//! record. Faults are injected through `DROVER_FAULT`, which only debug builds read.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drover::exit_code;
use serde_json::Value;

use crate::support::*;

/// Drain hooks on the controller whose state is files in the site directory:
/// `drained/NODE` holds the reason while NODE is drained.
const SITE: &str = "\
inventory: inventory.yml
workflows: workflows
transport: local
leases: { ttl: 10s }
ssh: { forks: 1 }
drain:
  drain: mkdir -p drained && echo {{ reason }} > drained/{{ node.name }}
  drained: test -e drained/{{ node.name }}
  resume: rm -f drained/{{ node.name }}
  poll_interval: 100ms
  timeout: 5s
";

const INVENTORY: &str = "nodes:\n  n[01-04]: {}\n";

/// Four nodes, one at a time, every failure within budget, two retries.
fn workflow(steps: &str) -> String {
    format!(
        "name: update\nversion: 1\ntargets: {{ nodes: [\"n[01-04]\"] }}\n\
         strategy: {{ batch: [\"100%\"], max_unavailable: 2, failure_budget: {{ per_run: \"100%\" }}, retries: {{ count: 2, delay: 1s }} }}\n\
         steps:\n{steps}"
    )
}

/// A drain step that counts its runs per node in `marks/NODE`.
const PATCH: &str =
    "  - name: patch\n    run: mkdir -p marks && echo x >> marks/$DROVER_NODE\n    change: drain\n";

fn site(steps: &str) -> Site {
    Site::new()
        .write("drover.yml", SITE)
        .write("inventory.yml", INVENTORY)
        .write("workflows/update.yml", &workflow(steps))
}

/// `drover ARGS` in the site with `DROVER_FAULT=fault`, killed (and the test failed)
/// if it does not exit within 60 s.
fn run_with(site: &Site, fault: &str, args: &[&str]) -> Output {
    let io = tempfile::tempdir().expect("io dir");
    let mut child = Command::new(drover_bin())
        .args(args)
        .current_dir(site.path())
        .env("NO_COLOR", "1")
        .env("DROVER_FAULT", fault)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(io.path().join("out")).expect("out"))
        .stderr(std::fs::File::create(io.path().join("err")).expect("err"))
        .spawn()
        .expect("spawn drover");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "drover hung\n{}",
                std::fs::read_to_string(io.path().join("err")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(io.path().join("out")).expect("out"),
        stderr: std::fs::read_to_string(io.path().join("err")).expect("err"),
    }
}

fn summary(out: &Output) -> Value {
    out.stdout
        .lines()
        .filter(|l| l.contains("\"event\":\"summary\""))
        .map(|l| serde_json::from_str(l).expect("summary JSON"))
        .next_back()
        .unwrap_or_else(|| panic!("no summary\n{}\n{}", out.stdout, out.stderr))
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| {
            x.as_str()
                .map_or_else(|| x["node"].as_str().expect("node").to_string(), String::from)
        })
        .collect()
}

fn marks(site: &Site, node: &str) -> usize {
    std::fs::read_to_string(site.path().join("marks").join(node)).map_or(0, |s| s.lines().count())
}

fn run_detail(site: &Site, run: &str) -> Value {
    let out = site.run(&["runs", "show", run, "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).expect("runs show JSON")
}

fn node_row<'a>(detail: &'a Value, node: &str) -> &'a Value {
    detail["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["node"] == node)
        .unwrap_or_else(|| panic!("no {node} in {detail}"))
}

const RUN: [&str; 8] = [
    "run",
    "update",
    "--transport",
    "local",
    "--yes",
    "--json",
    "--tags",
    "hot,drain",
];

#[test]
fn a_panicking_node_task_fails_its_node_held_with_a_reason_and_the_run_ends() {
    let site = site(PATCH);
    let out = run_with(&site, "panic-node=n02", &RUN);
    assert_eq!(
        out.code,
        exit_code::NODES_FAILED,
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let s = summary(&out);
    assert_eq!(names(&s["succeeded"]), ["n01", "n03", "n04"], "{s}");
    let failed = s["failed"].as_array().expect("failed");
    assert_eq!(failed.len(), 1, "{s}");
    assert_eq!(failed[0]["node"], "n02");
    let error = failed[0]["error"].as_str().expect("error");
    assert!(
        error.contains("panicked") && error.contains("injected fault"),
        "{error}"
    );
    // Not retried: a panic is a bug, not a flaky node.
    assert_eq!(marks(&site, "n02"), 0);
    // Held: drained with a reason naming the run and the panic.
    let reason = std::fs::read_to_string(site.path().join("drained/n02")).expect("n02 is held drained");
    assert!(
        reason.starts_with("drover: failed (run ")
            && reason.contains(", update v1): ")
            && reason.contains("panicked"),
        "{reason}"
    );
    for n in ["n01", "n03", "n04"] {
        assert!(!site.path().join("drained").join(n).exists(), "{n} was resumed");
    }
    let run = s["run"].as_str().expect("run id");
    let detail = run_detail(&site, run);
    let n02 = node_row(&detail, "n02");
    assert_eq!(n02["state"], "failed", "{n02}");
    assert_eq!(n02["drained_by_us"], true, "{n02}");
    // The run let go of its leases: the next run takes the nodes at once.
    let again = run_with(&site, "", &RUN);
    assert_ne!(again.code, exit_code::NODES_LEASED, "{}", again.stderr);
}

#[test]
fn a_panicking_check_makes_its_node_an_error_not_a_missing_node() {
    let site = site("  - name: patch\n    run: \"true\"\n    check: \"false\"\n    change: hot\n");
    let out = run_with(
        &site,
        "panic-check=n03",
        &["check", "update", "--transport", "local", "--json"],
    );
    assert_eq!(
        out.code,
        exit_code::NODES_FAILED,
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.contains("n03"), "{}", out.stdout);
    assert!(out.stdout.contains("panicked"), "{}", out.stdout);
}

#[test]
fn a_state_store_that_cannot_write_stops_the_run_without_failing_a_node() {
    let site =
        site("  - name: patch\n    run: mkdir -p marks && echo x >> marks/$DROVER_NODE\n    change: hot\n");
    // A hot node writes three records (running, the step, succeeded): the fifth write,
    // n02's step record, fails.
    let out = run_with(&site, "journal-fail-after=4", &RUN);
    assert_eq!(
        out.code,
        exit_code::STATE_STORE_FAILED,
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let s = summary(&out);
    assert_eq!(s["outcome"]["stop"]["reason"], "state_store", "{s}");
    assert!(
        s["outcome"]["stop"]["error"]
            .as_str()
            .expect("error")
            .contains("disk is full"),
        "{s}"
    );
    assert_eq!(names(&s["succeeded"]), ["n01"], "{s}");
    assert!(
        s["failed"].as_array().expect("failed").is_empty(),
        "no node failed: {s}"
    );
    assert_eq!(names(&s["skipped"]), ["n02"], "{s}");
    assert_eq!(names(&s["not_started"]), ["n03", "n04"], "{s}");
    // Neither retried nor counted: it ran once.
    assert_eq!(marks(&site, "n02"), 1);
    assert_eq!(marks(&site, "n03"), 0);
}

#[test]
fn a_step_record_keeps_exit_code_duration_and_output() {
    let site = Site::new()
        .write("drover.yml", SITE)
        .write("inventory.yml", INVENTORY)
        .write(
            "workflows/update.yml",
            "name: update\nversion: 1\ntargets: { nodes: [n01] }\n\
             steps:\n  - name: boom\n    run: \"echo first line; sleep 0.2; echo it broke >&2; exit 3\"\n    change: hot\n",
        );
    let out = run_with(&site, "", &RUN);
    assert_eq!(out.code, exit_code::RUN_STOPPED, "{}\n{}", out.stdout, out.stderr);
    let run = summary(&out)["run"].as_str().expect("run").to_string();
    let detail = run_detail(&site, &run);
    let step = &detail["steps"][0];
    assert_eq!(step["exit_code"], 3, "{step}");
    assert!(step["duration_ms"].as_u64().expect("duration") >= 200, "{step}");
    assert!(
        step["output_tail"].as_str().expect("tail").contains("it broke"),
        "{step}"
    );
}

/// A node that "reboots" on the controller: the boot id is a file the reboot command
/// rewrites; the health check counts its tries in `tries/NODE`.
fn reboot_site(health: &str, timeout: &str) -> Site {
    site(&format!(
        "  - name: reboot\n    reboot:\n      command: mkdir -p boot && date +%s%N > boot/$DROVER_NODE\n      \
         boot_id: \"mkdir -p boot; test -s boot/$DROVER_NODE || echo first > boot/$DROVER_NODE; cat boot/$DROVER_NODE\"\n      \
         timeout: {timeout}\n      health_interval: 100ms\n      health:\n        - {health}\n    check: \"false\"\n    change: drain\n"
    ))
}

const COUNT_TRY: &str = "mkdir -p tries && echo x >> tries/$DROVER_NODE";

#[test]
fn health_checks_are_retried_until_they_pass() {
    let site = reboot_site(
        &format!("\"{COUNT_TRY}; test $(wc -l < tries/$DROVER_NODE) -ge 3\""),
        "20s",
    );
    let out = run_with(&site, "", &RUN);
    assert_eq!(out.code, exit_code::OK, "{}\n{}", out.stdout, out.stderr);
    let tries = std::fs::read_to_string(site.path().join("tries/n01")).expect("tries");
    assert_eq!(tries.lines().count(), 3, "passed on the third try");
}

#[test]
fn health_checks_that_never_pass_fail_the_node_at_the_reboot_timeout() {
    let site = reboot_site(
        &format!("\"{COUNT_TRY}; echo slurmd not registered; exit 1\""),
        "2s",
    );
    let started = Instant::now();
    let out = run_with(&site, "", &RUN);
    let took = started.elapsed();
    let s = summary(&out);
    let failed = s["failed"].as_array().expect("failed");
    assert!(!failed.is_empty(), "{s}");
    let error = failed[0]["error"].as_str().expect("error");
    assert!(error.contains("slurmd not registered"), "{error}");
    let tries = std::fs::read_to_string(site.path().join("tries/n01")).expect("tries");
    assert!(tries.lines().count() >= 5, "tried until the timeout: {tries:?}");
    // Three attempts of 2 s (two retries), with 1 s delays: not a minute.
    assert!(took < Duration::from_secs(30), "{took:?}");
}

/// The state database of a site.
fn store(site: &Site) -> drover::store::Store {
    drover::store::Store::open(&site.path().join(".drover/drover.db")).expect("open store")
}

#[test]
fn a_run_whose_leases_another_run_took_over_stops() {
    let site = site(
        "  - name: slow\n    run: mkdir -p marks && echo x >> marks/$DROVER_NODE && sleep 2\n    change: hot\n",
    );
    let io = tempfile::tempdir().expect("io");
    let mut child = Command::new(drover_bin())
        .args(RUN)
        .current_dir(site.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(io.path().join("out")).expect("out"))
        .stderr(std::fs::File::create(io.path().join("err")).expect("err"))
        .spawn()
        .expect("spawn drover");
    // Once it has leased the nodes, another run takes them over as if they had expired
    // (an hour from now).
    let all: Vec<String> = ["n01", "n02", "n03", "n04"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let t = Instant::now();
    loop {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the run never leased its nodes"
        );
        if site.path().join(".drover/drover.db").exists() && store(&site).leases().is_ok_and(|l| l.len() == 4)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    // The intruder is a recorded run: a lease binds only while its run exists.
    let intruder = drover::store::Write::RunCreated {
        id: "intruder".to_string(),
        workflow: "update".to_string(),
        version: 1,
        commit: None,
        plan: serde_json::json!({}),
        options: serde_json::json!({}),
        controller: drover::store::Controller::this(),
        at: later,
        nodes: all.iter().map(|n| (n.clone(), 0)).collect(),
    };
    let conflicts = store(&site)
        .begin_run_blocking("intruder", &all, later, Duration::from_secs(3600), vec![intruder])
        .expect("take over");
    assert!(conflicts.is_empty(), "{conflicts:?}");
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the run did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = Output {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(io.path().join("out")).expect("out"),
        stderr: std::fs::read_to_string(io.path().join("err")).expect("err"),
    };
    assert_eq!(out.code, exit_code::LEASE_LOST, "{}\n{}", out.stdout, out.stderr);
    let s = summary(&out);
    assert_eq!(s["outcome"]["stop"]["reason"], "lease_lost", "{s}");
    // The heartbeat runs every ttl/3 (3.3 s); each node takes 2 s: the run stopped
    // before it worked every node.
    let worked = ["n01", "n02", "n03", "n04"]
        .iter()
        .filter(|n| marks(&site, n) > 0)
        .count();
    assert!(worked < 4, "{s}");
    assert!(!names(&s["not_started"]).is_empty(), "{s}");
}

#[test]
fn a_retry_after_a_drain_timeout_resumes_at_the_step_that_drains() {
    // The drain never completes; giving up resumes the node, which fails the first
    // time: the retry must not run the hot step before the drain again.
    let site = Site::new()
        .write(
            "drover.yml",
            "inventory: inventory.yml\nworkflows: workflows\ntransport: local\n\
             drain:\n  drain: \"true\"\n  drained: \"false\"\n  \
             resume: \"test -e resumed-once || { touch resumed-once; echo scheduler busy >&2; exit 1; }\"\n  \
             poll_interval: 100ms\n  timeout: 1s\n  on_timeout: give_up\n",
        )
        .write("inventory.yml", INVENTORY)
        .write(
            "workflows/update.yml",
            "name: update\nversion: 1\ntargets: { nodes: [n01] }\n\
             strategy: { retries: { count: 1, delay: 1s } }\n\
             steps:\n  - name: hot\n    run: mkdir -p marks && echo x >> marks/$DROVER_NODE\n    change: hot\n\
             \x20 - name: patch\n    run: \"true\"\n    change: drain\n",
        );
    let out = run_with(&site, "", &RUN);
    let s = summary(&out);
    assert_eq!(names(&s["skipped"]), ["n01"], "{s}\n{}", out.stderr);
    assert_eq!(marks(&site, "n01"), 1, "the hot step ran once: {s}");
}
