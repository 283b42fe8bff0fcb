//! What holds a rollout besides its own rules, on the real binary with the local
//! transport (real `sh`): a pause set from another process, nodes in maintenance, and
//! the window applied mid-run (the time of day from a file, `DROVER_TEST_CLOCK`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// Three nodes worked one at a time (forks 1). Each node's step marks that it started,
/// waits until the test releases that node, and marks that it is done; the check marks
/// that the node was checked.
fn gated_site(window: &str) -> Site {
    let site = Site::new()
        .write(
            "drover.yml",
            "inventory: inventory.yml\nworkflows: workflows\ntransport: local\nssh: { forks: 1 }\n\
             pause: { poll_interval: 50ms }\n\
             windows:\n  day:\n    timezone: Europe/Berlin\n    days: [mon-fri]\n    start: \"08:00\"\n    end: \"17:00\"\n    cutoff: 1h\n",
        )
        .write(
            "workflows/update.yml",
            &format!(
                "name: update\nversion: 1\ntargets: {{ nodes: [\"n[01-03]\"] }}\nstrategy: {{ batch: [\"100%\"] }}\n{window}\
                 steps:\n  - name: mark\n    run: touch \"marks/started-$DROVER_NODE\"; while [ ! -e \"release-$DROVER_NODE\" ]; do sleep 0.02; done; touch \"marks/done-$DROVER_NODE\"\n\
                 \x20   check: touch \"checked/$DROVER_NODE\"; test -e \"marks/done-$DROVER_NODE\"\n    change: hot\n"
            ),
        );
    std::fs::create_dir_all(site.path().join("marks")).expect("gates test");
    std::fs::create_dir_all(site.path().join("checked")).expect("gates test");
    site
}

fn marks(site: &Site) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(site.path().join("marks"))
        .expect("gates test")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn release(site: &Site, node: &str) {
    std::fs::write(site.path().join(format!("release-{node}")), "").expect("gates test");
}

fn started(site: &Site, node: &str) -> bool {
    site.path().join(format!("marks/started-{node}")).exists()
}

/// `drover ARGS` in the background, output to files in `io`, with `env`.
fn spawn(site: &Site, args: &[&str], io: &Path, env: &[(&str, &Path)]) -> Child {
    let mut cmd = Command::new(drover_bin());
    cmd.args(args)
        .current_dir(site.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(io.join("out")).expect("gates test"))
        .stderr(std::fs::File::create(io.join("err")).expect("gates test"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn drover")
}

fn output(io: &Path) -> String {
    let read = |n: &str| std::fs::read_to_string(io.join(n)).unwrap_or_default();
    format!("--- stdout\n{}--- stderr\n{}", read("out"), read("err"))
}

fn wait_for(what: &str, io: &Path, cond: impl Fn() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}\n{}",
            output(io)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn finish(mut child: Child, io: &Path) -> (i32, String) {
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("gates test") {
            return (s.code().unwrap_or(-1), output(io));
        }
        if t.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("drover did not exit\n{}", output(io));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn run_ids(site: &Site) -> Vec<String> {
    let out = site.run(&["runs", "list", "--json"]);
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("runs list JSON");
    v.as_array()
        .expect("gates test")
        .iter()
        .map(|r| r["id"].as_str().expect("gates test").to_string())
        .collect()
}

/// Long enough for a run polling every 50ms to have seen a change, and acted on it.
const SETTLE: Duration = Duration::from_millis(600);

#[test]
fn a_pause_from_another_process_stops_new_nodes_lets_the_one_in_flight_finish_and_unpause_goes_on() {
    let site = gated_site("");
    let io = tempfile::tempdir().expect("gates test");
    let child = spawn(
        &site,
        &["run", "update", "--transport", "local", "--yes"],
        io.path(),
        &[],
    );
    wait_for("n01 to start", io.path(), || started(&site, "n01"));
    let p = site.run(&["pause", "--reason", "fixing the playbook", "--by", "alice"]);
    assert_eq!(p.code, 0, "{}{}", p.stdout, p.stderr);
    assert!(
        p.stdout.starts_with("paused all runs: no new node starts"),
        "{}",
        p.stdout
    );
    std::thread::sleep(SETTLE);
    release(&site, "n01");
    wait_for("n01 to finish", io.path(), || {
        site.path().join("marks/done-n01").exists()
    });
    std::thread::sleep(SETTLE);
    assert!(
        !started(&site, "n02"),
        "a node started while paused\n{}",
        output(io.path())
    );
    assert!(
        output(io.path()).contains("waiting for paused (all runs) by alice since "),
        "{}",
        output(io.path())
    );
    assert!(output(io.path()).contains(": fixing the playbook; nodes in flight go on"));
    // `runs list` and `runs show` say so.
    let id = run_ids(&site).remove(0);
    let list = site.run(&["runs", "list"]);
    assert!(
        list.stdout.contains("paused (all runs) by alice"),
        "{}",
        list.stdout
    );
    assert!(list.stdout.contains("running (paused)"), "{}", list.stdout);
    let show = site.run(&["runs", "show", &id]);
    assert!(
        show.stdout.contains("paused (all runs) by alice since ")
            && show.stdout.contains("no new node starts"),
        "{}",
        show.stdout
    );
    let json: Value =
        serde_json::from_str(site.run(&["runs", "show", &id, "--json"]).stdout.trim()).expect("gates test");
    assert_eq!(json["paused"]["scope"], "all");
    assert_eq!(json["paused"]["by"], "alice");
    release(&site, "n02");
    release(&site, "n03");
    let u = site.run(&["unpause"]);
    assert_eq!(u.code, 0, "{}", u.stderr);
    assert_eq!(u.stdout, "unpaused all runs\n");
    let (code, out) = finish(child, io.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("continuing: nodes start again"), "{out}");
    assert_eq!(
        marks(&site),
        [
            "done-n01",
            "done-n02",
            "done-n03",
            "started-n01",
            "started-n02",
            "started-n03"
        ]
    );
}

#[test]
fn a_paused_run_stays_paused_after_its_controller_is_killed_and_resumes_when_unpaused() {
    let site = gated_site("");
    let io = tempfile::tempdir().expect("gates test");
    let id_before = site.run(&["pause"]);
    assert_eq!(id_before.code, 0, "{}", id_before.stderr);
    let mut child = spawn(
        &site,
        &["run", "update", "--transport", "local", "--yes"],
        io.path(),
        &[],
    );
    wait_for("the run to wait", io.path(), || {
        output(io.path()).contains("waiting for paused (all runs)")
    });
    std::thread::sleep(SETTLE);
    assert_eq!(marks(&site), Vec::<String>::new(), "nothing starts while paused");
    child.kill().expect("kill -9");
    let _ = child.wait();
    let id = run_ids(&site).remove(0);
    // The pause is in the state database, not in the dead process.
    let list = site.run(&["runs", "list"]);
    assert!(list.stdout.contains("paused (all runs) by "), "{}", list.stdout);
    // Resumed, it is still held.
    let io2 = tempfile::tempdir().expect("gates test");
    let resumed = spawn(
        &site,
        &["runs", "resume", &id, "--transport", "local", "--yes"],
        io2.path(),
        &[],
    );
    wait_for("the resumed run to wait", io2.path(), || {
        output(io2.path()).contains("waiting for paused (all runs)")
    });
    std::thread::sleep(SETTLE);
    assert_eq!(marks(&site), Vec::<String>::new(), "nothing starts while paused");
    for n in ["n01", "n02", "n03"] {
        release(&site, n);
    }
    assert_eq!(site.run(&["unpause"]).code, 0);
    let (code, out) = finish(resumed, io2.path());
    assert_eq!(code, 0, "{out}");
    assert_eq!(marks(&site).len(), 6, "{:?}", marks(&site));
}

#[test]
fn a_run_of_its_own_is_paused_by_id_and_an_unknown_run_is_refused() {
    let site = gated_site("");
    let io = tempfile::tempdir().expect("gates test");
    let child = spawn(
        &site,
        &["run", "update", "--transport", "local", "--yes"],
        io.path(),
        &[],
    );
    wait_for("n01 to start", io.path(), || started(&site, "n01"));
    let id = run_ids(&site).remove(0);
    let p = site.run(&["runs", "pause", &id, "--reason", "look at n01 first"]);
    assert_eq!(p.code, 0, "{}", p.stderr);
    std::thread::sleep(SETTLE);
    release(&site, "n01");
    std::thread::sleep(SETTLE);
    assert!(!started(&site, "n02"));
    assert!(output(io.path()).contains(&format!("waiting for paused (run {id}) by ")));
    let list = site.run(&["runs", "list"]);
    assert!(list.stdout.contains("running (paused)"), "{}", list.stdout);
    let none = site.run(&["runs", "pause", "nope-1"]);
    assert_eq!(none.code, 2);
    assert_eq!(none.stderr, "error: no run `nope-1`\n");
    release(&site, "n02");
    release(&site, "n03");
    assert_eq!(site.run(&["runs", "unpause", &id]).code, 0);
    let (code, out) = finish(child, io.path());
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_node_in_maintenance_is_never_checked_or_run_and_plan_and_check_say_why() {
    let site = gated_site("");
    for n in ["n01", "n02", "n03"] {
        release(&site, n);
    }
    let on = site.run(&[
        "nodes",
        "maintenance",
        "on",
        "n02",
        "--reason",
        "replacing a DIMM",
        "--by",
        "bob",
    ]);
    assert_eq!(on.code, 0, "{}", on.stderr);
    assert!(
        on.stdout.starts_with("in maintenance: n02 (replacing a DIMM)"),
        "{}",
        on.stdout
    );
    let plan = site.run(&["plan", "update"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout.contains("plan for update v1: 2 nodes"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("  skipped (in maintenance): 1 n02\n    n02: maintenance by bob since "),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains(": replacing a DIMM\n"), "{}", plan.stdout);
    let json: Value =
        serde_json::from_str(site.run(&["plan", "update", "--json"]).stdout.trim()).expect("gates test");
    assert_eq!(json["excluded"][0]["node"], "n02");
    assert_eq!(json["excluded"][0]["reason"], "maintenance");
    assert!(
        json["excluded"][0]["detail"]
            .as_str()
            .expect("gates test")
            .ends_with(": replacing a DIMM")
    );
    let check = site.run(&["check", "update", "--transport", "local"]);
    assert!(
        check.stdout.contains("  not checked (in maintenance): 1 n02\n"),
        "{}",
        check.stdout
    );
    let run = site.run(&["run", "update", "--transport", "local", "--yes"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        marks(&site),
        ["done-n01", "done-n03", "started-n01", "started-n03"],
        "n02 was touched"
    );
    assert!(!site.path().join("checked/n02").exists(), "n02 was checked");
    let list = site.run(&["nodes", "maintenance", "list"]);
    assert!(
        list.stdout.starts_with("n02: maintenance by bob since "),
        "{}",
        list.stdout
    );
    // Out of maintenance, the next run brings it up to date.
    let off = site.run(&["nodes", "maintenance", "off", "n02"]);
    assert_eq!(off.stdout, "out of maintenance: n02\n");
    let run = site.run(&["run", "update", "--transport", "local", "--yes"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(marks(&site).contains(&"done-n02".to_string()));
    assert_eq!(
        site.run(&["nodes", "maintenance", "list"]).stdout,
        "no node is in maintenance\n"
    );
}

#[test]
fn maintenance_of_unknown_nodes_changes_nothing_and_names_every_one() {
    let site = gated_site("");
    let out = site.run(&[
        "nodes",
        "maintenance",
        "on",
        "n[01-02]",
        "n99",
        "gpu[1-2]",
        "--reason",
        "x",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "error: not in the inventory: gpu[1-2],n99; nothing was changed\n"
    );
    assert_eq!(
        site.run(&["nodes", "maintenance", "list"]).stdout,
        "no node is in maintenance\n"
    );
    let no_reason = site.run(&["nodes", "maintenance", "on", "n01"]);
    assert_eq!(no_reason.code, 2);
    assert!(
        no_reason.stderr.contains("pass --reason TEXT"),
        "{}",
        no_reason.stderr
    );
    // A group works, and names in the JSON.
    let out = site.run(&[
        "nodes",
        "maintenance",
        "on",
        "@compute",
        "--reason",
        "rack move",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("gates test");
    assert_eq!(v["maintenance"].as_array().expect("gates test").len(), 10);
}

#[test]
fn a_node_put_into_maintenance_during_a_run_is_skipped_before_its_turn() {
    let site = gated_site("");
    let io = tempfile::tempdir().expect("gates test");
    let child = spawn(
        &site,
        &["run", "update", "--transport", "local", "--yes"],
        io.path(),
        &[],
    );
    wait_for("n01 to start", io.path(), || started(&site, "n01"));
    let on = site.run(&["nodes", "maintenance", "on", "n02", "--reason", "fan noise"]);
    assert_eq!(on.code, 0, "{}", on.stderr);
    std::thread::sleep(SETTLE);
    release(&site, "n01");
    release(&site, "n03");
    let (code, out) = finish(child, io.path());
    assert!(!started(&site, "n02"), "n02 was touched\n{out}");
    assert!(started(&site, "n03"), "{out}");
    assert!(out.contains("  n02: skipped, in maintenance by "), "{out}");
    assert!(out.contains(": fan noise"), "{out}");
    // Its end says skipped, never FAILED: nothing was tried on it.
    assert!(out.lines().any(|l| l == "  n02: skipped"), "{out}");
    assert!(!out.contains("n02: FAILED"), "{out}");
    // Not a failure of the change: work remains.
    assert_eq!(code, 10, "{out}");
    assert!(
        out.contains(": work remains: succeeded on 2 nodes; 1 node went into maintenance during the run and was left alone"),
        "{out}"
    );
}

#[test]
fn drover_run_waits_at_the_cutoff_and_goes_on_when_the_window_reopens() {
    let site = gated_site("window: day\n");
    let io = tempfile::tempdir().expect("gates test");
    let clock = io.path().join("clock");
    // Saturday: the window is closed, and a run refuses at the start as before.
    std::fs::write(&clock, "2026-12-05T10:00:00Z").expect("gates test");
    let mut closed = Command::new(drover_bin());
    closed
        .args(["run", "update", "--transport", "local", "--yes"])
        .current_dir(site.path())
        .env("DROVER_TEST_CLOCK", &clock);
    let out = closed.output().expect("gates test");
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(marks(&site).is_empty());
    // Monday 10:00 in Berlin: open.
    std::fs::write(&clock, "2026-12-07T09:00:00Z").expect("gates test");
    let child = spawn(
        &site,
        &["run", "update", "--transport", "local", "--yes"],
        io.path(),
        &[("DROVER_TEST_CLOCK", &clock)],
    );
    wait_for("n01 to start", io.path(), || started(&site, "n01"));
    // 16:30: past the cutoff (1h before 17:00), n01 in flight.
    std::fs::write(&clock, "2026-12-07T15:30:00Z").expect("gates test");
    std::thread::sleep(SETTLE);
    release(&site, "n01");
    release(&site, "n02");
    release(&site, "n03");
    std::thread::sleep(SETTLE);
    assert!(
        site.path().join("marks/done-n01").exists(),
        "the node in flight finished"
    );
    assert!(
        !started(&site, "n02"),
        "a node started past the cutoff\n{}",
        output(io.path())
    );
    assert!(
        output(io.path()).contains(
            "waiting for window day, opens Tue 2026-12-08 08:00 Europe/Berlin; nodes in flight go on"
        ),
        "{}",
        output(io.path())
    );
    // Tuesday 08:00.
    std::fs::write(&clock, "2026-12-08T07:00:00Z").expect("gates test");
    let (code, out) = finish(child, io.path());
    assert_eq!(code, 0, "{out}");
    assert_eq!(marks(&site).len(), 6, "{out}");
}

#[test]
fn maintenance_on_with_drain_runs_the_sites_drain_hook_with_the_reason_and_without_hooks_changes_nothing() {
    let hooks = "drain:\n  drain: scontrol update nodename={{ node.name }} state=drain reason={{ reason }}\n  drained: test \"$(sinfo -h -n {{ node.name }} -o %T | tr -d '*')\" = drained\n  resume: scontrol update nodename={{ node.name }} state=resume\n";
    assert!(SITE.contains(hooks), "the shared site's drain hooks moved");
    let site = Site::new().write("drover.yml", &SITE.replace(hooks, ""));
    let out = site.run(&[
        "nodes",
        "maintenance",
        "on",
        "n02",
        "--reason",
        "bad DIMM",
        "--drain",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "error: --drain: the site has no drain hooks (`drain:` in drover.yml) to drain with; nothing was changed\n"
    );
    assert_eq!(
        site.run(&["nodes", "maintenance", "list"]).stdout,
        "no node is in maintenance\n"
    );

    // Hooks on the controller that note what they were asked; n04's drain fails.
    let site = site.write(
        "drover.yml",
        &SITE.replace(
            hooks,
            "drain:\n  run_on: controller\n  drain: test {{ node.name }} != n04 && echo {{ reason }} > drained/{{ node.name }}\n  drained: test -e drained/{{ node.name }}\n  resume: rm -f drained/{{ node.name }}\n",
        ),
    );
    std::fs::create_dir_all(site.path().join("drained")).expect("gates test");
    let out = site.run(&[
        "nodes",
        "maintenance",
        "on",
        "n[02-03]",
        "--reason",
        "bad DIMM",
        "--by",
        "bob",
        "--drain",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .ends_with("drain asked for: n[02-03] (the scheduler drains them as their jobs end)\n"),
        "{}",
        out.stdout
    );
    for n in ["n02", "n03"] {
        assert_eq!(
            std::fs::read_to_string(site.path().join("drained").join(n)).expect("drained"),
            "drover: maintenance by bob: bad DIMM\n"
        );
    }
    assert!(!site.path().join("drained/n01").exists(), "only the nodes named");
    let out = site.run(&["nodes", "maintenance", "on", "n04", "--reason", "fan", "--drain"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr
            .starts_with("error: n04: not drained: the drain hook failed (exit 1)"),
        "{}",
        out.stderr
    );
    // Still in maintenance: automation stays off for it.
    assert!(
        site.run(&["nodes", "maintenance", "list"])
            .stdout
            .contains("n04: maintenance by "),
    );
}
