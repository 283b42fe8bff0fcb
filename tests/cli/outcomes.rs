//! What a run says it did, and its exit code, when it could not do everything: nodes an
//! earlier run holds, drain steps not selected, nodes drained before the run, a
//! `--limit` that selects nothing, failed checks, resumed runs; and what Ctrl-C and
//! `runs cancel` leave behind. Local transport, with the fake scheduler's drain hooks.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use drover::exit_code;
use drover_testbed::FakeScheduler;
use serde_json::{Value, json};

use crate::support::{Output, Site, drover_bin};

/// A drain step that fails where `fail-NODE` exists and marks the node patched; it waits
/// `pause` seconds between `started-NODE` and `patched-NODE`.
fn patch_step(pause: &str, change: &str) -> String {
    format!(
        "  - name: patch\n    run: |\n      touch {{{{ vars.dir }}}}/started-$DROVER_NODE\n      \
         if [ -e {{{{ vars.dir }}}}/fail-$DROVER_NODE ]; then echo \"disk full\" >&2; exit 3; fi\n      \
         sleep {pause}\n      touch {{{{ vars.dir }}}}/patched-$DROVER_NODE\n    \
         check: test -e {{{{ vars.dir }}}}/patched-$DROVER_NODE\n    change: {change}\n"
    )
}

struct Fleet {
    site: Site,
    sched: FakeScheduler,
    marks: tempfile::TempDir,
    _sched_dir: tempfile::TempDir,
}

impl Fleet {
    /// node001..node004 (plus `other`, which no workflow targets, and the blacklisted
    /// `bad`), workflow `w` with `strategy` and `steps`.
    fn new(strategy: &str, steps: &str) -> Fleet {
        let sched_dir = tempfile::tempdir().expect("scheduler dir");
        let names: Vec<String> = (1..=4).map(|i| format!("node{i:03}")).collect();
        let sched = FakeScheduler::install(sched_dir.path(), &names).expect("scheduler");
        let marks = tempfile::tempdir().expect("marks dir");
        let site = Site::new()
            .write(
                "drover.yml",
                &format!(
                    "inventory: inventory.yml\nworkflows: workflows\ntransport: local\n{}",
                    sched.hooks_yaml("20ms", "10s", "hold")
                ),
            )
            .write(
                "inventory.yml",
                "nodes:\n  node[001-004]: {}\n  other: {}\n  bad: {}\nblacklist: [bad]\n",
            );
        std::fs::remove_file(site.path().join("workflows/update.yml")).expect("default workflow");
        let f = Fleet {
            site,
            sched,
            marks,
            _sched_dir: sched_dir,
        };
        f.workflow("w", "[\"node[001-004]\", bad]", strategy, steps);
        f
    }

    fn workflow(&self, name: &str, targets: &str, strategy: &str, steps: &str) {
        std::fs::write(
            self.site.path().join(format!("workflows/{name}.yml")),
            format!(
                "name: {name}\nversion: 1\ntargets: {{ nodes: {targets} }}\ncanary: {{ size: 0 }}\n\
                 strategy: {strategy}\nvars: {{ dir: {:?} }}\nsteps:\n{steps}",
                self.marks.path().display().to_string()
            ),
        )
        .expect("workflow");
    }

    fn mark(&self, name: &str) -> PathBuf {
        self.marks.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        if matches!(args.first(), Some(&"run" | &"check")) || args.get(1) == Some(&"resume") {
            all.extend(["--transport", "local"]);
        }
        self.site.run(&all)
    }

    /// `drover ARGS --transport local` in the background, output to files in `io`.
    fn spawn(&self, args: &[&str], io: &Path) -> Child {
        Command::new(drover_bin())
            .args(args)
            .args(["--transport", "local"])
            .current_dir(self.site.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(io.join("out")).expect("stdout file"))
            .stderr(std::fs::File::create(io.join("err")).expect("stderr file"))
            .spawn()
            .expect("spawn drover")
    }

    fn run_ids(&self) -> Vec<String> {
        let out = self.site.run(&["runs", "list", "--json"]);
        let v: Value = serde_json::from_str(out.stdout.trim()).expect("runs list JSON");
        v.as_array()
            .expect("runs")
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_string())
            .collect()
    }
}

fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn finish(mut child: Child, io: &Path, limit: Duration) -> (i32, String, String, Duration) {
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let read = |n: &str| std::fs::read_to_string(io.join(n)).unwrap_or_default();
            panic!(
                "drover did not exit within {limit:?}\n--- stdout\n{}--- stderr\n{}",
                read("out"),
                read("err")
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read = |n: &str| std::fs::read_to_string(io.join(n)).unwrap_or_default();
    (status.code().unwrap_or(-1), read("out"), read("err"), t.elapsed())
}

fn sigint(child: &Child) {
    let pid = libc_pid(child);
    let ok = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -INT {pid}");
}

fn libc_pid(child: &Child) -> String {
    child.id().to_string()
}

#[test]
fn a_rerun_blocked_by_a_node_an_earlier_run_holds_stops_with_exit_5_and_names_it() {
    let f = Fleet::new(
        "{ batch: [\"100%\"], max_unavailable: 1 }",
        &patch_step("0", "drain"),
    );
    std::fs::write(f.mark("fail-node001"), "").expect("fail marker");
    let first = f.run(&["run", "w", "--tags", "drain", "--yes"]);
    assert_eq!(
        first.code,
        exit_code::RUN_STOPPED,
        "{}\n{}",
        first.stdout,
        first.stderr
    );
    assert_eq!(
        f.sched.state("node001"),
        "drained",
        "the failed node is held drained"
    );
    let held_by = f.run_ids()[0].clone();

    let again = f.run(&["run", "w", "--tags", "drain", "--yes"]);
    assert_eq!(
        again.code,
        exit_code::RUN_STOPPED,
        "a run that can do nothing does not succeed\n{}\n{}",
        again.stdout,
        again.stderr
    );
    let text = &again.stdout;
    assert!(
        text.contains("skipped (held by an earlier run): 1 node001"),
        "{text}"
    );
    assert!(
        !text.contains("drained or down before the run"),
        "node001 was not drained by someone else: {text}"
    );
    assert!(
        text.contains(&format!("node001: held by run {held_by} (failed at step `patch`"))
            && text.contains("disk full"),
        "the plan names the holder, the step and the error: {text}"
    );
    assert!(
        text.contains(
            "STOPPED: node[002-004] cannot be taken down without breaking max_unavailable, at most 1 at once, and node001 fills it; nothing was done"
        ),
        "{text}"
    );
    for n in ["node002", "node003", "node004"] {
        assert!(!f.mark(&format!("started-{n}")).exists(), "{n} was not touched");
        assert_eq!(f.sched.state(n), "idle");
    }
}

#[test]
fn without_tags_drain_the_run_says_work_remains() {
    let f = Fleet::new(
        "{ batch: [\"100%\"], max_unavailable: 2 }",
        &patch_step("0", "drain"),
    );
    let out = f.run(&["run", "w", "--yes"]);
    assert_eq!(
        out.code,
        exit_code::WORK_REMAINS,
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout.contains(
            "work remains: drain steps not selected: 4 nodes still need them; run with --tags drain"
        ),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("succeeded"), "{}", out.stdout);
    let check = f.run(&["check", "w"]);
    assert!(check.stdout.contains("DRAIN"), "{}", check.stdout);
    let json = f.run(&["run", "w", "--yes", "--json"]);
    assert_eq!(json.code, exit_code::WORK_REMAINS);
    let summary: Value = json
        .stdout
        .lines()
        .filter(|l| l.contains("\"event\":\"summary\""))
        .map(|l| serde_json::from_str(l).expect("summary"))
        .next_back()
        .expect("a summary");
    assert_eq!(summary["needs_other_steps"].as_array().map(Vec::len), Some(4));
    assert_eq!(summary["exit_code"], exit_code::WORK_REMAINS);
}

#[test]
fn a_node_drained_before_the_run_is_in_the_summary_and_the_work_it_needs_remains() {
    let f = Fleet::new(
        "{ batch: [\"100%\"], max_unavailable: 2 }",
        &patch_step("0", "drain"),
    );
    f.sched
        .set_state("node002", "drained", Some("bad dimm"))
        .expect("drain by hand");
    let out = f.run(&["run", "w", "--tags", "drain", "--yes"]);
    assert_eq!(
        out.code,
        exit_code::WORK_REMAINS,
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout.contains(
            "work remains: succeeded on 3 nodes; 1 node needs the change but is out of service and left alone"
        ),
        "{}",
        out.stdout
    );
    let line = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("drained before"))
        .unwrap_or_else(|| panic!("no `drained before` line: {}", out.stdout));
    assert!(line.ends_with("1  node002"), "{line}");
    assert_eq!(f.sched.state("node002"), "drained", "left alone");
}

#[test]
fn a_limit_that_selects_no_target_names_the_limit() {
    let f = Fleet::new(
        "{ batch: [\"100%\"], max_unavailable: 2 }",
        &patch_step("0", "hot"),
    );
    let out = f.run(&["run", "w", "--limit", "other", "--yes"]);
    assert_eq!(
        out.code,
        exit_code::NOTHING_SELECTED,
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "nothing selected: --limit `other` selects none of the workflow's 5 targets (bad,node[001-004])"
        ),
        "{}",
        out.stderr
    );
    let out = f.run(&["run", "w", "--limit", "bad", "--yes"]);
    assert_eq!(out.code, exit_code::NOTHING_SELECTED, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("every target --limit `bad` selects is blacklisted, not whitelisted or excluded by the workflow (bad)"),
        "{}",
        out.stderr
    );
    let check = f.run(&["check", "w", "--limit", "bad"]);
    assert_eq!(check.code, exit_code::NOTHING_SELECTED, "{}", check.stderr);
    assert!(f.run_ids().is_empty(), "no run was recorded");
}

#[test]
fn a_run_whose_every_check_failed_says_nothing_was_done() {
    let f = Fleet::new(
        "{ batch: [\"100%\"] }",
        "  - name: s\n    run: \"true\"\n    check: exit 7\n    change: hot\n",
    );
    let out = f.run(&["run", "w", "--yes"]);
    assert_eq!(
        out.code,
        exit_code::NODES_FAILED,
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout
            .contains("nothing was done: 4 nodes failed their checks and were not touched"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("succeeded"), "{}", out.stdout);
    // The run's record, and the event `runs watch` reads its verdict from, say the same.
    let json = f.run(&["run", "w", "--yes", "--json"]);
    assert_eq!(json.code, exit_code::NODES_FAILED, "{}", json.stderr);
    let lines: Vec<Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let finished: Vec<&Value> = lines.iter().filter(|e| e["event"] == "run_finished").collect();
    let want = json!({"outcome": "completed_with_failures", "failed": 4, "check_failed": ["node001", "node002", "node003", "node004"]});
    assert_eq!(finished.len(), 1, "{}", json.stdout);
    assert_eq!(finished[0]["outcome"], want, "{}", json.stdout);
    let summary = lines.last().unwrap();
    assert_eq!(
        summary["outcome"]["outcome"], "completed_with_failures",
        "{}",
        json.stdout
    );
    let list = f.site.run(&["runs", "list", "--json"]);
    let runs: Value = serde_json::from_str(list.stdout.trim()).expect("runs list JSON");
    let statuses: Vec<&Value> = runs
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| &r["status"])
        .collect();
    assert_eq!(
        statuses,
        ["completed_with_failures", "completed_with_failures"],
        "{runs}"
    );
    // `runs show` names them, and `runs list` counts them as failed: they are not
    // among the run's nodes.
    let id = runs[0]["id"].as_str().expect("id");
    let human = f.site.run(&["runs", "list"]);
    let row: Vec<&str> = human
        .stdout
        .lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("{}", human.stdout))
        .split_whitespace()
        .collect();
    assert_eq!(
        row[row.len() - 4..],
        ["0", "4", "0", "0"],
        "OK FAIL HELD LEFT\n{}",
        human.stdout
    );
    let show = f.site.run(&["runs", "show", id]);
    assert!(
        show.stdout.contains("completed with failures")
            && show.stdout.contains("check failed, not touched: node[001-004]"),
        "{}",
        show.stdout
    );
}

#[test]
fn after_one_ctrl_c_finished_nodes_are_free_and_resume_lists_them_as_succeeded_earlier() {
    let f = Fleet::new("{ batch: [1] }", &patch_step("1", "hot"));
    f.workflow(
        "other",
        "[node003]",
        "{ batch: [1] }",
        "  - name: s\n    run: \"true\"\n    change: hot\n",
    );
    let io = tempfile::tempdir().expect("io");
    let child = f.spawn(&["run", "w", "--yes"], io.path());
    wait_for("node002 to start", || f.mark("started-node002").exists());
    sigint(&child);
    let (code, stdout, stderr, _) = finish(child, io.path(), Duration::from_secs(30));
    assert_eq!(code, exit_code::INTERRUPTED, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("stopping: no new node will start; 1 node in flight; Ctrl-C again to abort"),
        "{stderr}"
    );
    assert!(f.mark("patched-node002").exists(), "the node in flight finished");
    assert!(!f.mark("started-node003").exists());
    let run = f.run_ids()[0].clone();

    // The interrupted run holds no node now: node003 never started, the others finished.
    let other = f.run(&["run", "other", "--yes"]);
    assert_eq!(other.code, exit_code::OK, "{}\n{}", other.stdout, other.stderr);

    let resumed = f.run(&["runs", "resume", &run, "--yes"]);
    assert_eq!(
        resumed.code,
        exit_code::OK,
        "{}\n{}",
        resumed.stdout,
        resumed.stderr
    );
    let text = &resumed.stdout;
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("succeeded earlier"))
        .unwrap_or_else(|| panic!("no `succeeded earlier` line: {text}"));
    assert!(line.ends_with("2  node[001-002]"), "{line}");
    assert!(!text.contains("not started"), "{text}");
    assert!(f.mark("patched-node004").exists());
}

#[test]
fn an_aborted_run_keeps_only_the_unsure_node_leased_and_lists_it() {
    let f = Fleet::new("{ batch: [\"100%\"] }", &patch_step("3", "hot"));
    let mut w = std::fs::read_to_string(f.site.path().join("workflows/w.yml")).expect("wf");
    w = w.replace(
        "targets: { nodes: [\"node[001-004]\", bad] }",
        "targets: { nodes: [node001, node002] }",
    );
    w = w.replace("strategy: { batch: [\"100%\"] }", "strategy: { batch: [1] }");
    std::fs::write(f.site.path().join("workflows/w.yml"), w).expect("wf");
    f.workflow(
        "other",
        "[node001, node002]",
        "{ batch: [\"100%\"] }",
        "  - name: s\n    run: \"true\"\n    change: hot\n",
    );
    let io = tempfile::tempdir().expect("io");
    let child = f.spawn(&["run", "w", "--yes"], io.path());
    wait_for("node001 to start", || f.mark("started-node001").exists());
    sigint(&child);
    std::thread::sleep(Duration::from_millis(200));
    sigint(&child);
    let (code, stdout, stderr, _) = finish(child, io.path(), Duration::from_secs(30));
    assert_eq!(code, exit_code::INTERRUPTED, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("aborting:"),
        "the second press is acknowledged: {stderr}"
    );
    assert!(
        stdout.contains("in flight") && stdout.contains("node001 (running)"),
        "the summary lists the node in flight: {stdout}"
    );
    let run = f.run_ids()[0].clone();
    let show = f.run(&["runs", "show", &run]);
    assert!(
        show.stdout
            .contains("unsure: 1 node in flight when it ended, still leased: node001 (running)"),
        "{}",
        show.stdout
    );
    // node002 never started: free. node001 is unsure: still leased, with a help that
    // names both ways out.
    let free = f.run(&["run", "other", "--limit", "node002", "--yes"]);
    assert_eq!(free.code, exit_code::OK, "{}\n{}", free.stdout, free.stderr);
    let taken = f.run(&["run", "other", "--limit", "node001", "--yes"]);
    assert_eq!(
        taken.code,
        exit_code::NODES_LEASED,
        "{}\n{}",
        taken.stdout,
        taken.stderr
    );
    assert!(
        taken.stderr.contains(&format!("drover runs resume {run}"))
            && taken.stderr.contains(&format!("drover runs cancel {run}")),
        "{}",
        taken.stderr
    );
    assert!(
        taken.stderr.contains("1 node (node001) is in run"),
        "{}",
        taken.stderr
    );
    // Cancelling it frees node001.
    let cancel = f.run(&["runs", "cancel", &run]);
    assert_eq!(cancel.code, exit_code::OK, "{}\n{}", cancel.stdout, cancel.stderr);
    assert!(
        cancel.stdout.contains("released its 1 lease"),
        "{}",
        cancel.stdout
    );
    let now_free = f.run(&["run", "other", "--limit", "node001", "--yes"]);
    assert_eq!(
        now_free.code,
        exit_code::OK,
        "{}\n{}",
        now_free.stdout,
        now_free.stderr
    );
}

#[test]
fn a_third_ctrl_c_exits_at_once_and_names_the_nodes_that_may_be_drained() {
    let f = Fleet::new(
        "{ batch: [\"100%\"], max_unavailable: 1 }",
        &patch_step("0", "drain"),
    );
    // The drain hook that holds a failed node takes 30 s.
    let slow = f.marks.path().join("slow-drain");
    std::fs::write(
        &slow,
        format!(
            "#!/bin/sh\n{} \"$@\"\ncase \"$2\" in *\"disk full\"*) touch {}/holding; sleep 30;; esac\n",
            f.sched.bin("drain").display(),
            f.marks.path().display()
        ),
    )
    .expect("hook");
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let hooks = f.sched.hooks_yaml("20ms", "10s", "hold").replace(
        &format!("{} ", f.sched.bin("drain").display()),
        &format!("{} ", slow.display()),
    );
    std::fs::write(
        f.site.path().join("drover.yml"),
        format!("inventory: inventory.yml\nworkflows: workflows\ntransport: local\n{hooks}"),
    )
    .expect("site");
    std::fs::write(f.mark("fail-node001"), "").expect("fail marker");
    let io = tempfile::tempdir().expect("io");
    let child = f.spawn(&["run", "w", "--tags", "drain", "--yes"], io.path());
    wait_for("the slow hold hook", || f.mark("holding").exists());
    for _ in 0..3 {
        sigint(&child);
        std::thread::sleep(Duration::from_millis(150));
    }
    let (code, stdout, stderr, took) = finish(child, io.path(), Duration::from_secs(20));
    assert_eq!(code, exit_code::INTERRUPTED, "{stdout}\n{stderr}");
    assert!(
        took < Duration::from_secs(10),
        "exited at once, not after the hook: {took:?}"
    );
    assert!(
        stderr.contains("exiting now. These nodes may be left drained: node001"),
        "{stderr}"
    );
}

#[test]
fn runs_cancel_refuses_a_live_run_and_leaves_a_dead_runs_drained_node_drained() {
    let f = Fleet::new(
        "{ batch: [\"100%\"], max_unavailable: 1 }",
        &patch_step("2", "drain"),
    );
    let io = tempfile::tempdir().expect("io");
    let mut child = f.spawn(&["run", "w", "--tags", "drain", "--yes"], io.path());
    wait_for("node001 to start its step", || f.mark("started-node001").exists());
    let run = f.run_ids()[0].clone();
    let live = f.run(&["runs", "cancel", &run]);
    assert_eq!(
        live.code,
        exit_code::NODES_LEASED,
        "{}\n{}",
        live.stdout,
        live.stderr
    );
    assert!(live.stderr.contains("is still driven by"), "{}", live.stderr);
    child.kill().expect("kill -9"); // SIGKILL: the controller dies with node001 drained
    let _ = child.wait();

    let cancel = f.run(&["runs", "cancel", &run]);
    assert_eq!(cancel.code, exit_code::OK, "{}\n{}", cancel.stdout, cancel.stderr);
    assert!(
        cancel
            .stdout
            .contains(&format!("run {run} cancelled; released its 4 leases")),
        "{}",
        cancel.stdout
    );
    assert!(
        cancel
            .stdout
            .contains("left drained, for a human: 1 node node001"),
        "{}",
        cancel.stdout
    );
    assert!(
        cancel.stdout.contains(&format!(
            "node001: left drained: run {run} was cancelled while the node was"
        )),
        "{}",
        cancel.stdout
    );
    assert!(
        cancel
            .stdout
            .contains("not finished, given up: 3 nodes node[002-004]"),
        "{}",
        cancel.stdout
    );
    assert_eq!(f.sched.state("node001"), "drained", "cancel does not resume it");

    let show = f.run(&["runs", "show", &run, "--json"]);
    let detail: Value = serde_json::from_str(show.stdout.trim()).expect("show JSON");
    assert_eq!(detail["run"]["status"], "cancelled");
    assert_eq!(detail["nodes"][0]["state"], "held");
    let again = f.run(&["runs", "cancel", &run]);
    assert_eq!(again.code, exit_code::USAGE, "{}", again.stderr);
    let resume = f.run(&["runs", "resume", &run, "--yes"]);
    assert_eq!(resume.code, exit_code::USAGE, "{}", resume.stderr);

    // The next run is not refused by leases; it finds node001 held by the cancelled run.
    let next = f.run(&["run", "w", "--tags", "drain", "--yes"]);
    assert_eq!(
        next.code,
        exit_code::RUN_STOPPED,
        "{}\n{}",
        next.stdout,
        next.stderr
    );
    assert!(
        next.stdout.contains(&format!("node001: held by run {run} (held")),
        "{}",
        next.stdout
    );
}

#[test]
fn human_output_uses_no_internal_names_and_counts_right() {
    let f = Fleet::new(
        "{ batch: [\"100%\"], failure_budget: { per_run: 1 } }",
        &patch_step("0", "hot"),
    );
    std::fs::write(f.mark("fail-node001"), "").expect("fail marker");
    let out = f.run(&["run", "w", "--yes"]);
    assert_eq!(
        out.code,
        exit_code::NODES_FAILED,
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout
            .contains("completed with 1 failed node within the failure budget"),
        "{}",
        out.stdout
    );
    let list = f.run(&["runs", "list"]);
    assert!(list.stdout.contains("completed with failures"), "{}", list.stdout);
    let plan = f.run(&["plan", "w"]);
    assert!(plan.stdout.contains("(run, hot, checked)"), "{}", plan.stdout);
    for text in [&out.stdout, &list.stdout, &plan.stdout] {
        assert!(!text.contains("completed_with_failures"), "{text}");
        assert!(!text.contains("Hot"), "{text}");
        assert!(!text.contains("(s)"), "{text}");
    }
}

#[test]
fn a_dry_run_creates_no_state() {
    let f = Fleet::new("{ batch: [\"100%\"] }", &patch_step("0", "hot"));
    let out = f.run(&["run", "w", "--dry-run"]);
    assert_eq!(out.code, exit_code::OK, "{}\n{}", out.stdout, out.stderr);
    assert!(!f.site.path().join(".drover").exists(), "nothing was created");
}

#[test]
fn ctrl_c_while_waiting_for_another_runs_leases_gives_up_at_once() {
    let f = Fleet::new("{ batch: [\"100%\"] }", &patch_step("5", "hot"));
    let site = std::fs::read_to_string(f.site.path().join("drover.yml")).expect("site");
    std::fs::write(
        f.site.path().join("drover.yml"),
        format!("{site}leases: {{ on_conflict: wait, wait_timeout: 1h }}\n"),
    )
    .expect("site");
    f.workflow(
        "other",
        "[node001]",
        "{ batch: [\"100%\"] }",
        "  - name: s\n    run: touch {{ vars.dir }}/other-ran\n    change: hot\n",
    );
    let io_a = tempfile::tempdir().expect("io");
    let holder = f.spawn(&["run", "w", "--yes"], io_a.path());
    wait_for("the first run to start", || f.mark("started-node001").exists());
    let io_b = tempfile::tempdir().expect("io");
    let waiter = f.spawn(&["run", "other", "--yes"], io_b.path());
    wait_for("the second run to wait", || {
        std::fs::read_to_string(io_b.path().join("err")).is_ok_and(|e| e.contains("waiting:"))
    });
    sigint(&waiter);
    let (code, stdout, stderr, took) = finish(waiter, io_b.path(), Duration::from_secs(20));
    assert_eq!(code, exit_code::INTERRUPTED, "{stdout}\n{stderr}");
    assert!(took < Duration::from_secs(3), "it gave up at once: {took:?}");
    assert!(
        stderr.contains("interrupted while waiting for other runs' leases; nothing was run"),
        "{stderr}"
    );
    assert!(!f.mark("other-ran").exists());
    let (code, stdout, stderr, _) = finish(holder, io_a.path(), Duration::from_secs(60));
    assert_eq!(code, exit_code::OK, "{stdout}\n{stderr}");
}

#[test]
fn ctrl_c_while_a_resumed_run_waits_for_a_rebooting_node_gives_up_at_once() {
    let f = Fleet::new("{ batch: [\"100%\"] }", "");
    std::fs::write(f.mark("boot-node001"), "boot-1\n").expect("boot id");
    f.workflow(
        "w",
        "[node001]",
        "{ batch: [\"100%\"] }",
        "  - name: reboot\n    reboot:\n      command: touch {{ vars.dir }}/rebooted-$DROVER_NODE\n      \
         boot_id: cat {{ vars.dir }}/boot-$DROVER_NODE\n      timeout: 10m\n    \
         check: test -e {{ vars.dir }}/rebooted-$DROVER_NODE\n    change: drain\n",
    );
    let io = tempfile::tempdir().expect("io");
    let mut child = f.spawn(&["run", "w", "--tags", "drain", "--yes"], io.path());
    // The boot id never changes: the run waits for the reboot; kill it there.
    wait_for("the reboot command", || f.mark("rebooted-node001").exists());
    let run = f.run_ids()[0].clone();
    wait_for("the run to record the node rebooting", || {
        let show = f.run(&["runs", "show", &run]);
        show.stdout.contains("rebooting")
    });
    child.kill().expect("kill -9");
    let _ = child.wait();

    let io = tempfile::tempdir().expect("io");
    let resume = f.spawn(&["runs", "resume", &run, "--yes"], io.path());
    std::thread::sleep(Duration::from_millis(1500));
    sigint(&resume);
    let (code, stdout, stderr, took) = finish(resume, io.path(), Duration::from_secs(25));
    assert_eq!(code, exit_code::INTERRUPTED, "{stdout}\n{stderr}");
    assert!(took < Duration::from_secs(5), "it gave up at once: {took:?}");
    assert!(
        stderr.contains("interrupted while waiting for rebooting nodes; nothing was run"),
        "{stderr}"
    );
}
