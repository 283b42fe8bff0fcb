//! `drover check|plan|run` against real sshds (the loopback testbed): what the engine
//! decides and does on nodes it reaches over SSH.
//!
//! Commands in the workflows write marker and counter files into each node's state dir
//! (`{{ node.vars.state }}`), so a test counts what ran where by reading files.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drover::exit_code;
use drover_testbed::Testbed;
use serde_json::{Value, json};

/// How long one drover command may take before the test calls it hung.
const HANG: Duration = Duration::from_secs(60);

/// A testbed of `n` sshds and a site whose inventory lists them.
struct Fleet {
    tb: Testbed,
    site: tempfile::TempDir,
    /// Holds the testbed's files; dropped after it (fields drop in order).
    _tmp: tempfile::TempDir,
}

/// One finished drover command.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    /// Every stdout line that is a JSON object (`--json` prints one per line).
    fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
            .collect()
    }

    /// The one JSON document (`check --json`, `plan --json`) or the last line (`run`'s
    /// summary).
    fn json(&self) -> Value {
        self.json_lines()
            .pop()
            .unwrap_or_else(|| panic!("no JSON output\n{self}"))
    }

    /// `run --json` events of one kind.
    fn events(&self, kind: &str) -> Vec<Value> {
        self.json_lines()
            .into_iter()
            .filter(|e| e["event"] == kind)
            .collect()
    }

    /// `(node, status)` of every `step_finished` event of `step`, sorted.
    fn step_statuses(&self, step: &str) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .events("step_finished")
            .iter()
            .filter(|e| e["step"] == step)
            .map(|e| (str_of(&e["node"]), str_of(&e["status"])))
            .collect();
        v.sort();
        v
    }

    fn expect(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "unexpected exit code\n{self}");
        assert!(!self.stderr.contains("panicked"), "{self}");
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {} after {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

fn str_of(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(str_of)
        .collect()
}

fn node(i: usize) -> String {
    format!("node{:03}", i + 1)
}

fn nodes(idx: &[usize]) -> Vec<String> {
    idx.iter().map(|i| node(*i)).collect()
}

/// Lines of `pgrep -af PATTERN`: running processes whose command line matches.
fn processes(pattern: &str) -> String {
    let out = Command::new("pgrep")
        .args(["-af", pattern])
        .output()
        .expect("run pgrep");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until no process matches `pattern`; the matches left after `limit` otherwise.
fn gone(pattern: &str, limit: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let left = processes(pattern);
        if left.is_empty() {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(left);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Fleet {
    /// `n` nodes, all in the group `all`; `lists` is appended to the inventory (top-level
    /// `canary:`, `blacklist:`...); `workflow` becomes `workflows/w.yml`.
    fn start(n: usize, lists: &str, workflow: &str) -> Fleet {
        Fleet::with_forks(n, None, lists, workflow)
    }

    fn with_forks(n: usize, forks: Option<u32>, lists: &str, workflow: &str) -> Fleet {
        let tmp = tempfile::tempdir().expect("tempdir");
        let tb = Testbed::start(tmp.path(), n).expect("start testbed");
        let site = tempfile::tempdir().expect("site dir");
        let f = Fleet { tb, site, _tmp: tmp };
        let forks = forks.map(|n| format!(", forks: {n}")).unwrap_or_default();
        f.write(
            "drover.yml",
            &format!(
                "inventory: inventory.yml\nworkflows: workflows\nssh: {{ config: {}, connect_timeout: 15s{forks} }}\n",
                json!(f.tb.ssh_config().display().to_string())
            ),
        );
        f.write("inventory.yml", &format!("{}{lists}", f.tb.inventory_yaml()));
        f.write("workflows/w.yml", workflow);
        f
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.site.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write site file");
    }

    fn state(&self, i: usize) -> PathBuf {
        self.tb.nodes()[i].state_dir.clone()
    }

    fn touch(&self, i: usize, file: &str) {
        std::fs::write(self.state(i).join(file), "").expect("touch");
    }

    fn has(&self, i: usize, file: &str) -> bool {
        self.state(i).join(file).exists()
    }

    /// Lines in a counter file on node `i` (0 when missing).
    fn count(&self, i: usize, file: &str) -> usize {
        std::fs::read_to_string(self.state(i).join(file)).map_or(0, |s| s.lines().count())
    }

    /// The node indices whose state dir has `file`.
    fn with_file(&self, file: &str) -> Vec<usize> {
        (0..self.tb.nodes().len())
            .filter(|i| self.has(*i, file))
            .collect()
    }

    fn command(&self, args: &[&str], out: &Path, err: &Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_drover"));
        c.args(args)
            .arg("--site")
            .arg(self.site.path())
            .current_dir(self.site.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(out).expect("stdout file"))
            .stderr(std::fs::File::create(err).expect("stderr file"));
        c
    }

    /// Runs `drover ARGS --site SITE` to the end (see [`Running::finish`]).
    fn drover(&self, args: &[&str]) -> Run {
        self.spawn(args).finish()
    }

    /// Starts `drover ARGS --site SITE`.
    fn spawn(&self, args: &[&str]) -> Running {
        let io = tempfile::tempdir().expect("io dir");
        let (out, err) = (io.path().join("out"), io.path().join("err"));
        let started = Instant::now();
        let child = self.command(args, &out, &err).spawn().expect("spawn drover");
        Running {
            child,
            args: args.iter().map(ToString::to_string).collect(),
            io,
            started,
        }
    }
}

/// A drover command still running.
struct Running {
    child: std::process::Child,
    args: Vec<String>,
    /// Holds its stdout and stderr files.
    io: tempfile::TempDir,
    started: Instant,
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (up to 30 s) until a command on a node created `path`, failing the test
    /// with drover's output if drover ends first.
    fn wait_for_file(&mut self, path: &Path) {
        let t = Instant::now();
        while !path.exists() {
            if let Some(status) = self.child.try_wait().expect("wait") {
                let read =
                    |name: &str| std::fs::read_to_string(self.io.path().join(name)).unwrap_or_default();
                panic!(
                    "drover {:?} ended ({status}) before {} appeared\nstdout:\n{}\nstderr:\n{}",
                    self.args,
                    path.display(),
                    read("out"),
                    read("err")
                );
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "{} never appeared",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGINT, as Ctrl-C at a terminal does.
    fn interrupt(&self) {
        let kill = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(kill.success(), "kill -INT {}", self.pid());
    }

    /// Waits for the command (failing the test after [`HANG`]), then asserts that it
    /// left no ssh master and no control directory behind.
    fn finish(mut self) -> Run {
        let read = |name: &str| std::fs::read_to_string(self.io.path().join(name)).unwrap_or_default();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if self.started.elapsed() > HANG {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "drover {:?} hung for {HANG:?}\nstdout:\n{}\nstderr:\n{}",
                    self.args,
                    read("out"),
                    read("err")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let run = Run {
            code: status.code().unwrap_or(-1),
            stdout: read("out"),
            stderr: read("err"),
            elapsed: self.started.elapsed(),
        };
        // Masters are closed before drover exits; give a closing one a moment to go.
        let control = std::env::temp_dir().join(format!("drover-{}", self.pid()));
        if let Err(left) = gone(&format!("{}/", control.display()), Duration::from_secs(3)) {
            panic!(
                "ssh masters left behind by drover {:?}:\n{left}\n{run}",
                self.args
            );
        }
        assert!(
            !control.exists(),
            "control directory {} left behind by drover {:?}",
            control.display(),
            self.args
        );
        run
    }
}

/// A workflow over every node; `strategy` and `steps` are YAML blocks at top level (`steps`
/// a list starting at column 0).
fn workflow(strategy: &str, steps: &str) -> String {
    format!("name: w\nversion: 1\ntargets:\n  nodes: [\"@all\"]\n{strategy}steps:\n{steps}")
}

// ------------------------------------------------------------------------------------

/// GOOD, HOT, DRAIN and ERROR nodes in one fleet, each found by running the real checks.
#[test]
fn check_classifies_a_mixed_fleet() {
    let steps = "\
- name: hot fix
  run: touch {{ node.vars.state }}/hot_done
  check: \"[ ! -f {{ node.vars.state }}/broken ] || exit 3; test -f {{ node.vars.state }}/hot_done\"
  change: hot
- name: drain fix
  run: touch {{ node.vars.state }}/drain_done
  check: test -f {{ node.vars.state }}/drain_done
  change: drain
";
    // `check` only classifies; the drain step never runs here.
    let f = Fleet::start(6, "", &workflow("drain: { none: \"only checked\" }\n", steps));
    // node001, node006: GOOD. node002: HOT. node003, node005: DRAIN. node004: ERROR.
    for i in [0, 5] {
        f.touch(i, "hot_done");
        f.touch(i, "drain_done");
    }
    f.touch(1, "drain_done");
    f.touch(2, "hot_done");
    f.touch(3, "broken");

    let run = f.drover(&["check", "w", "--json"]);
    run.expect(exit_code::NODES_FAILED);
    let v = run.json();
    assert_eq!(names(&v["GOOD"]), nodes(&[0, 5]), "{v}");
    assert_eq!(names(&v["HOT"]), nodes(&[1]), "{v}");
    assert_eq!(names(&v["DRAIN"]), nodes(&[2, 4]), "{v}");
    assert_eq!(names(&v["ERROR"]), nodes(&[3]), "{v}");
    let errors = v["errors"].as_object().expect("errors");
    assert_eq!(errors.len(), 1, "{v}");
    let e = str_of(&errors["node004"]);
    assert!(e.contains("hot fix") && e.contains("exited with code 3"), "{e}");
    // A check changes nothing.
    assert_eq!(f.with_file("hot_done"), vec![0, 2, 5], "check ran a step");

    // `run` (hot steps by default) works on the HOT node and on the DRAIN node that also
    // needs the hot step; the one needing only the drain step is not "up to date".
    let run = f.drover(&["run", "w", "--yes", "--json"]);
    run.expect(exit_code::NODES_FAILED);
    let s = summary(&run);
    // The node whose check failed was never worked on: the run did not succeed on it.
    assert_eq!(
        s["outcome"],
        json!({"outcome": "completed_with_failures", "failed": 1}),
        "{run}"
    );
    assert_eq!(
        s["verdict"], "succeeded on 2 nodes; 1 node failed its check and was not touched",
        "{run}"
    );
    assert_eq!(names(&s["succeeded"]), nodes(&[1, 4]), "{run}");
    assert_eq!(names(&s["up_to_date"]), nodes(&[0, 5]), "{run}");
    assert_eq!(names(&s["needs_other_steps"]), nodes(&[2]), "{run}");
    assert_eq!(names(&s["check_failed"]), nodes(&[3]), "{run}");
    assert_eq!(f.with_file("hot_done"), vec![0, 1, 2, 4, 5], "{run}");
    assert_eq!(
        f.with_file("drain_done"),
        vec![0, 1, 5],
        "a drain step ran\n{run}"
    );

    // Without the ERROR node, check succeeds; the human report lists the same classes.
    std::fs::remove_file(f.state(3).join("broken")).expect("rm");
    let run = f.drover(&["check", "w"]);
    run.expect(exit_code::OK);
    assert!(run.stdout.contains("GOOD       3  node[001-002,006]"), "{run}");
    assert!(run.stdout.contains("HOT        0  -"), "{run}");
    assert!(run.stdout.contains("DRAIN      3  node[003-005]"), "{run}");
    assert!(run.stdout.contains("ERROR      0  -"), "{run}");
}

/// A step that appends to `ran` and fails on nodes whose state dir has `fail`.
const MARK_OR_FAIL: &str = "\
- name: mark
  run: echo ran >> {{ node.vars.state }}/ran; test ! -f {{ node.vars.state }}/fail
  change: hot
";

/// The summary line of `run --json`.
fn summary(run: &Run) -> Value {
    let v = run.json();
    assert_eq!(v["event"], "summary", "{run}");
    v
}

fn failed_nodes(summary: &Value) -> Vec<String> {
    summary["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .map(|f| str_of(&f["node"]))
        .collect()
}

#[test]
fn a_failed_canary_stops_the_run_before_any_bulk_node() {
    let strategy = "\
strategy:
  batch: [\"100%\"]
  failure_budget: { per_batch: \"100%\", per_run: \"100%\" }
";
    let f = Fleet::start(4, "canary: [node001]\n", &workflow(strategy, MARK_OR_FAIL));
    f.touch(0, "fail");
    let run = f.drover(&["run", "w", "--yes", "--json"]);
    run.expect(exit_code::RUN_STOPPED);
    assert_eq!(f.with_file("ran"), vec![0], "a bulk node ran the step\n{run}");
    let s = summary(&run);
    assert_eq!(
        s["outcome"],
        json!({"outcome": "stopped", "stop": {"reason": "canary_failed", "node": "node001"}}),
        "{run}"
    );
    assert_eq!(failed_nodes(&s), nodes(&[0]), "{run}");
    assert!(
        str_of(&s["failed"][0]["error"]).contains("exited with code 1"),
        "{run}"
    );
    assert_eq!(names(&s["not_started"]), nodes(&[1, 2, 3]), "{run}");
    assert!(names(&s["succeeded"]).is_empty(), "{run}");
    let phases: Vec<String> = run
        .events("phase_started")
        .iter()
        .map(|e| str_of(&e["phase"]))
        .collect();
    assert_eq!(phases, vec!["canary"], "{run}");
}

#[test]
fn the_failure_budget_allows_exactly_n_failures() {
    let strategy = "\
strategy:
  batch: 2
  failure_budget: { per_run: 1 }
";
    let f = Fleet::start(6, "", &workflow(strategy, MARK_OR_FAIL));

    // Exactly one failure (the budget): every node is attempted.
    f.touch(1, "fail");
    let run = f.drover(&["run", "w", "--yes", "--json"]);
    run.expect(exit_code::NODES_FAILED);
    let s = summary(&run);
    assert_eq!(
        s["outcome"],
        json!({"outcome": "completed_with_failures", "failed": 1}),
        "{run}"
    );
    assert_eq!(failed_nodes(&s), nodes(&[1]), "{run}");
    assert_eq!(names(&s["succeeded"]).len(), 5, "{run}");
    assert_eq!(f.with_file("ran"), vec![0, 1, 2, 3, 4, 5]);

    // One more (node003, in batch 2): the run stops; node004 was already in flight in
    // batch 2 and finishes, batch 3 never starts.
    for i in 0..6 {
        std::fs::remove_file(f.state(i).join("ran")).expect("rm ran");
    }
    f.touch(2, "fail");
    let run = f.drover(&["run", "w", "--yes", "--json"]);
    run.expect(exit_code::RUN_STOPPED);
    let s = summary(&run);
    assert_eq!(
        s["outcome"],
        json!({"outcome": "stopped", "stop": {"reason": "run_budget", "failed": 2, "budget": 1}}),
        "{run}"
    );
    assert_eq!(failed_nodes(&s), nodes(&[1, 2]), "{run}");
    assert_eq!(names(&s["not_started"]), nodes(&[4, 5]), "{run}");
    assert_eq!(f.with_file("ran"), vec![0, 1, 2, 3], "{run}");
}

#[test]
fn a_flaky_step_succeeds_on_its_third_attempt() {
    let strategy = "\
strategy:
  batch: [\"100%\"]
  retries: { count: 2, delay: 1s, backoff: 1.0 }
";
    let steps = "\
- name: flaky
  run: echo x >> {{ node.vars.state }}/tries; test -f {{ node.vars.state }}/stable || test $(wc -l < {{ node.vars.state }}/tries) -ge 3
  change: hot
";
    let f = Fleet::start(2, "", &workflow(strategy, steps));
    f.touch(1, "stable");
    let run = f.drover(&["run", "w", "--yes", "--json"]);
    run.expect(exit_code::OK);
    assert_eq!(summary(&run)["outcome"], json!({"outcome": "succeeded"}), "{run}");
    assert_eq!(f.count(0, "tries"), 3, "{run}");
    assert_eq!(f.count(1, "tries"), 1, "{run}");
    let retries: Vec<(String, u64)> = run
        .events("node_retry")
        .iter()
        .map(|e| (str_of(&e["node"]), e["attempt"].as_u64().expect("attempt")))
        .collect();
    assert_eq!(retries, vec![(node(0), 2), (node(0), 3)], "{run}");
    let statuses: Vec<String> = run
        .events("step_finished")
        .iter()
        .filter(|e| e["node"] == "node001")
        .map(|e| str_of(&e["status"]))
        .collect();
    assert_eq!(statuses, vec!["failed", "failed", "ok"], "{run}");
}

#[test]
fn a_hung_command_is_killed_on_the_node_at_its_timeout() {
    let strategy = "\
strategy:
  all_at_once: true
  failure_budget: { per_run: \"100%\" }
";
    let steps = "\
- name: hang
  run: echo started >> {{ node.vars.state }}/ran; sleep 3607
  timeout: 2s
  change: hot
";
    let f = Fleet::start(2, "", &workflow(strategy, steps));
    let run = f.drover(&["run", "w", "--yes", "--json"]);
    run.expect(exit_code::NODES_FAILED);
    assert!(run.elapsed < Duration::from_secs(20), "{run}");
    assert_eq!(f.with_file("ran"), vec![0, 1]);
    let s = summary(&run);
    assert_eq!(failed_nodes(&s), nodes(&[0, 1]), "{run}");
    for f in s["failed"].as_array().expect("failed") {
        assert!(str_of(&f["error"]).contains("timed out after 2s"), "{run}");
    }
    // A duration no other test sleeps for: the process table is the whole machine's.
    if let Err(left) = gone("sleep 3607", Duration::from_secs(3)) {
        panic!("the hung command still runs on the node:\n{left}");
    }
}

#[test]
fn an_unreachable_node_is_an_error_naming_it() {
    let steps = "\
- name: mark
  run: touch {{ node.vars.state }}/ran
  check: test -f {{ node.vars.state }}/ran
  change: hot
";
    let mut f = Fleet::start(3, "", &workflow("", steps));
    f.tb.stop_node(1).expect("stop node002");
    let run = f.drover(&["check", "w", "--json"]);
    run.expect(exit_code::NODES_FAILED);
    let v = run.json();
    assert_eq!(names(&v["HOT"]), nodes(&[0, 2]), "{v}");
    assert_eq!(names(&v["ERROR"]), nodes(&[1]), "{v}");
    let e = str_of(&v["errors"]["node002"]);
    assert!(e.starts_with("cannot connect to node002: "), "{e}");
    assert!(e.contains("Connection refused"), "{e}");

    let run = f.drover(&["check", "w"]);
    run.expect(exit_code::NODES_FAILED);
    assert!(run.stdout.contains("ERROR      1  node002"), "{run}");
    assert!(
        run.stdout.contains("  node002: cannot connect to node002: "),
        "{run}"
    );
}

/// `unreachable: run` (seed 004, replace a dead server): a node whose sshd is down is
/// not ERROR but needs every step. Its turn starts without a connection: the `local:`
/// "rebuild" runs on the controller (here it asks the test to start the node's sshd
/// again), the `wait_for` first waits for the node to answer, and the step on the node
/// then runs. Without the key the same node is ERROR and nothing runs for it.
#[test]
fn a_dead_node_gets_its_turn_under_unreachable_run_and_is_connected_once_it_answers() {
    let marks = tempfile::tempdir().expect("marks dir");
    let steps = "\
- name: rebuild
  local: touch MARKS/rebuild-{{ node.name }}
  change: hot
- name: back
  wait_for:
    command: \"true\"
    interval: 200ms
    timeout: 60s
  change: hot
- name: configure
  run: touch {{ node.vars.state }}/configured
  check: test -e {{ node.vars.state }}/configured
  change: hot
- name: elsewhere
  run: touch {{ node.vars.state }}/elsewhere
  when: node.name != \"node002\"
  change: hot
"
    .replace("MARKS", &marks.path().display().to_string());
    let strategy = "strategy:\n  batch: [\"100%\"]\n";
    let mut f = Fleet::start(2, "", &workflow(strategy, &steps));
    f.tb.stop_node(1).expect("stop node002");

    let run = f.drover(&["run", "w", "--yes", "--json"]);
    run.expect(exit_code::NODES_FAILED);
    let s = summary(&run);
    assert_eq!(names(&s["check_failed"]), nodes(&[1]), "{run}");
    assert_eq!(f.with_file("configured"), vec![0], "{run}");
    assert!(!marks.path().join("rebuild-node002").exists(), "{run}");

    f.write(
        "workflows/w.yml",
        &workflow(&format!("unreachable: run\n{strategy}"), &steps),
    );
    let check = f.drover(&["check", "w", "--json"]);
    check.expect(exit_code::OK);
    let v = check.json();
    assert_eq!(names(&v["HOT"]), nodes(&[1]), "{check}");
    assert_eq!(names(&v["ERROR"]), Vec::<String>::new(), "{check}");
    let why = str_of(&v["errors"]["node002"]);
    assert!(
        why.contains("every step taken as needed (`unreachable: run`)"),
        "{why}"
    );

    let mut running = f.spawn(&["run", "w", "--yes", "--json"]);
    running.wait_for_file(&marks.path().join("rebuild-node002"));
    // Let the `wait_for` find it down a few times before it is back.
    std::thread::sleep(Duration::from_millis(700));
    f.tb.start_node(1).expect("start node002");
    let run = running.finish();
    run.expect(exit_code::OK);
    assert_eq!(f.with_file("configured"), vec![0, 1], "{run}");
    // Every step that applies, and only those: `when` still decides.
    assert_eq!(f.with_file("elsewhere"), vec![0], "{run}");
    let log = std::fs::read_to_string(str_of(&summary(&run)["log"])).expect("run log");
    let waited = log.find("not connected yet").unwrap_or_else(|| panic!("{log}"));
    let answered = log
        .find("connected: the node answers now")
        .unwrap_or_else(|| panic!("{log}"));
    assert!(waited < answered, "{log}");
    for step in ["rebuild", "back", "configure"] {
        assert_eq!(
            run.step_statuses(step)
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>(),
            ["node002"],
            "{step}\n{run}"
        );
    }

    // Down again, and it never answers within the `wait_for`'s timeout (shrunk for the
    // test): the node fails there, saying so, and nothing runs on it.
    f.tb.stop_node(1).expect("stop node002 again");
    std::fs::remove_file(f.state(1).join("configured")).expect("rm configured");
    let short = steps.replace("timeout: 60s", "timeout: 2s");
    f.write(
        "workflows/w.yml",
        &workflow(&format!("unreachable: run\n{strategy}"), &short),
    );
    let run = f.drover(&["run", "w", "--yes", "--json"]);
    run.expect(exit_code::RUN_STOPPED);
    let s = summary(&run);
    assert_eq!(failed_nodes(&s), nodes(&[1]), "{run}");
    let e = str_of(&s["failed"][0]["error"]);
    assert!(
        e.contains("still failing after 2s") && e.contains("the node never answered"),
        "{e}"
    );
    assert!(!f.has(1, "configured"), "{run}");
}

#[test]
fn a_changed_host_key_is_refused_and_the_node_never_touched() {
    let steps = "\
- name: mark
  run: echo ran >> {{ node.vars.state }}/ran
  check: test -f {{ node.vars.state }}/ran
  change: hot
";
    let mut f = Fleet::start(3, "", &workflow("strategy:\n  batch: [\"100%\"]\n", steps));
    f.tb.replace_host_key(2).expect("new host key for node003");
    let run = f.drover(&["check", "w", "--json"]);
    run.expect(exit_code::NODES_FAILED);
    let v = run.json();
    assert_eq!(names(&v["ERROR"]), nodes(&[2]), "{v}");
    let e = str_of(&v["errors"]["node003"]);
    assert!(e.starts_with("host key of node003 is not trusted: "), "{e}");

    let run = f.drover(&["run", "w", "--yes", "--json"]);
    assert_eq!(f.with_file("ran"), vec![0, 1], "{run}");
    run.expect(exit_code::NODES_FAILED);
    let s = summary(&run);
    assert_eq!(names(&s["succeeded"]), nodes(&[0, 1]), "{run}");
    assert_eq!(names(&s["check_failed"]), nodes(&[2]), "{run}");
    assert!(
        run.events("node_started").iter().all(|e| e["node"] != "node003"),
        "{run}"
    );
}

#[test]
fn file_steps_report_changed_only_when_the_file_differs() {
    let f = Fleet::start(2, "", &workflow("", MARK_OR_FAIL));
    // Destinations must be absolute as written (validation cannot know what
    // `{{ node.vars.state }}` holds), so they name the state dirs' common parent.
    let nodes_dir = f.tb.dir().join("nodes");
    let steps = format!(
        "\
- name: static file
  copy:
    src: files/static.conf
    dest: \"{0}/{{{{ node.name }}}}/static.conf\"
    mode: \"0600\"
  change: hot
- name: app config
  template:
    src: templates/app.conf.j2
    dest: \"{0}/{{{{ node.name }}}}/app.conf\"
    mode: \"0640\"
  change: hot
",
        nodes_dir.display()
    );
    f.write(
        "workflows/w.yml",
        &workflow(
            "strategy:\n  batch: [\"100%\"]\nvars:\n  greeting: hello\n",
            &steps,
        ),
    );
    f.write("workflows/files/static.conf", "static\n");
    f.write(
        "workflows/templates/app.conf.j2",
        "greeting={{ vars.greeting }}\nnode={{ node.name }}\n",
    );
    let both = |status: &str| vec![(node(0), status.to_string()), (node(1), status.to_string())];
    let mode = |i: usize, file: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(f.state(i).join(file))
            .expect("file")
            .permissions()
            .mode()
            & 0o7777
    };
    let read = |i: usize, file: &str| std::fs::read_to_string(f.state(i).join(file)).expect("file");

    let run = f.drover(&["run", "w", "--yes", "--json"]);
    run.expect(exit_code::OK);
    assert_eq!(run.step_statuses("static file"), both("changed"), "{run}");
    assert_eq!(run.step_statuses("app config"), both("changed"), "{run}");
    for i in 0..2 {
        assert_eq!(read(i, "static.conf"), "static\n");
        assert_eq!(mode(i, "static.conf"), 0o600);
        assert_eq!(read(i, "app.conf"), format!("greeting=hello\nnode={}\n", node(i)));
        assert_eq!(mode(i, "app.conf"), 0o640);
    }

    // Every file is what its step would write: a file step is its own check, so no node
    // needs anything (before file steps checked themselves, they ran again to report
    // `unchanged`; they still do alongside a step a node needs, below).
    let run = f.drover(&["run", "w", "--yes", "--json"]);
    run.expect(exit_code::OK);
    assert!(run.events("step_finished").is_empty(), "{run}");
    assert_eq!(names(&summary(&run)["up_to_date"]), nodes(&[0, 1]), "{run}");

    // A new value for the template's var changes the rendered file; a wrong mode on one
    // node changes only that node's copy.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            f.state(1).join("static.conf"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
    }
    let run = f.drover(&[
        "run",
        "w",
        "--yes",
        "--json",
        "--extra-vars",
        r#"{"greeting": "bonjour"}"#,
    ]);
    run.expect(exit_code::OK);
    assert_eq!(run.step_statuses("app config"), both("changed"), "{run}");
    assert_eq!(
        run.step_statuses("static file"),
        vec![(node(0), "unchanged".into()), (node(1), "changed".into())],
        "{run}"
    );
    assert_eq!(read(0, "app.conf"), "greeting=bonjour\nnode=node001\n");
    assert_eq!(mode(1, "static.conf"), 0o600);
}

/// `check --diff` and `run --dry-run --diff` on real sshds: what each file step would
/// change on each node (text, a file over the diff limit, binary content, a file a
/// step's own check found needing it), read in the check's round trip; a node whose
/// files are right shows no diff; a `secret: true` file's content, old or new, appears
/// nowhere: not in the output, the run log or the store.
#[test]
fn diff_shows_what_file_steps_would_change_and_never_a_secret() {
    let f = Fleet::start(3, "", &workflow("", MARK_OR_FAIL));
    let nodes_dir = f.tb.dir().join("nodes");
    let steps = "\
- name: app config
  template: { src: files/app.conf.j2, dest: \"NODES/{{ node.name }}/app.conf\" }
  change: hot
- name: big
  copy: { src: files/big.txt, dest: \"NODES/{{ node.name }}/big.txt\" }
  change: hot
- name: blob
  copy: { src: files/blob.bin, dest: \"NODES/{{ node.name }}/blob.bin\" }
  change: hot
- name: db password
  copy: { src: files/db.pw, dest: \"NODES/{{ node.name }}/db.pw\", mode: \"0600\", secret: true }
  change: hot
- name: motd
  copy: { src: files/motd, dest: \"NODES/{{ node.name }}/motd\" }
  check: \"grep -q welcome NODES/{{ node.name }}/motd 2>/dev/null || exit 1\"
  change: hot
"
    .replace("NODES", &nodes_dir.display().to_string());
    f.write(
        "workflows/w.yml",
        &workflow("strategy:\n  batch: [\"100%\"]\n", &steps),
    );
    f.write(
        "workflows/files/app.conf.j2",
        "greeting=hello\nnode={{ node.name }}\nport=80\n",
    );
    let big: String = (0..400)
        .map(|i| format!("line {i:03} of a file over the diff limit, padded out\n"))
        .collect();
    assert!(big.len() > 2 * drover::engine::DIFF_BYTES);
    f.write("workflows/files/big.txt", &big);
    std::fs::write(
        f.site.path().join("workflows/files/blob.bin"),
        [0u8, 1, 2, 255, 0, 7],
    )
    .expect("blob");
    const SECRET: &str = "s3cr3t-VALUE-123";
    const OLD_SECRET: &str = "old-PASSWORD-987";
    f.write("workflows/files/db.pw", &format!("{SECRET}\n"));
    f.write("workflows/files/motd", "welcome\n");
    let mut outputs = String::new();
    let mut keep = |run: &Run| outputs.push_str(&format!("{}{}", run.stdout, run.stderr));

    // Nothing on the nodes yet: every file is new.
    let fresh = f.drover(&["check", "w", "--diff"]);
    fresh.expect(exit_code::OK);
    keep(&fresh);
    let dest = |file: &str| format!("{}/{{{{ node.name }}}}/{file}", nodes_dir.display());
    let path = |i: usize, file: &str| f.state(i).join(file).display().to_string();
    for want in [
        format!(
            "node001: `app config` would change {}:\n--- /dev/null\n+++ {} (new)\n@@ -0,0 +1,3 @@\n+greeting=hello\n+node=node001\n+port=80\n",
            path(0, "app.conf"),
            path(0, "app.conf")
        ),
        format!(
            "node[001-003]: `blob` would change {}: binary content differs (not on the node, 6 bytes new)\n",
            dest("blob.bin")
        ),
        format!(
            "node[001-003]: `db password` would change {}: content differs (secret; the file is not on the node)\n",
            dest("db.pw")
        ),
        format!(
            "node[001-003]: `motd` would change {}:\n--- /dev/null\n",
            dest("motd")
        ),
    ] {
        assert!(fresh.stdout.contains(&want), "missing:\n{want}\n{fresh}");
    }
    assert!(
        fresh.stdout.contains(&format!(
            "node[001-003]: `big` would change {} (truncated: only the first 8 KiB compared; {} bytes new):\n",
            dest("big.txt"),
            big.len()
        )),
        "{fresh}"
    );

    let run = f.drover(&["run", "w", "--yes"]);
    run.expect(exit_code::OK);
    keep(&run);

    // By hand: node002's config and the start of its big file; node003's binary, its
    // secret (to an old one) and its motd. node001 is left as drover wrote it.
    let edit = |i: usize, file: &str, from: &str, to: &str| {
        let p = f.state(i).join(file);
        let text = std::fs::read_to_string(&p).expect("read");
        assert!(text.contains(from), "{text}");
        std::fs::write(&p, text.replacen(from, to, 1)).expect("edit");
    };
    edit(1, "app.conf", "port=80", "port=8080");
    edit(1, "big.txt", "line 000 of", "LINE ZERO of");
    std::fs::write(f.state(2).join("blob.bin"), [9u8, 0, 9]).expect("blob");
    std::fs::write(f.state(2).join("db.pw"), format!("{OLD_SECRET}\n")).expect("pw");
    std::fs::write(f.state(2).join("motd"), "bye\n").expect("motd");
    let before: Vec<Vec<u8>> = ["app.conf", "big.txt", "blob.bin", "db.pw", "motd"]
        .iter()
        .map(|file| std::fs::read(f.state(2).join(file)).expect("read"))
        .collect();

    for args in [
        &["check", "w", "--diff"][..],
        &["run", "w", "--dry-run", "--diff"][..],
    ] {
        let out = f.drover(args);
        out.expect(exit_code::OK);
        keep(&out);
        assert!(
            out.stdout
                .contains("GOOD       1  node001\nHOT        2  node[002-003]\n"),
            "{out}"
        );
        // The node whose files are right has no diff.
        assert!(!out.stdout.contains("node001:"), "{out}");
        for want in [
            format!("node002: `app config` would change {}:\n--- {} (on the node)\n+++ {} (new)\n@@ -1,3 +1,3 @@\n greeting=hello\n node=node002\n-port=8080\n+port=80\n", path(1, "app.conf"), path(1, "app.conf"), path(1, "app.conf")),
            format!("node002: `big` would change {} (truncated: only the first 8 KiB compared; {} bytes on the node, {} bytes new):\n", path(1, "big.txt"), big.len() + 1, big.len()),
            "-LINE ZERO of a file over the diff limit, padded out\n+line 000 of a file over the diff limit, padded out\n".to_string(),
            format!("node003: `blob` would change {}: binary content differs (3 bytes on the node, 6 bytes new)\n", path(2, "blob.bin")),
            format!("node003: `db password` would change {}: content differs (secret)\n", path(2, "db.pw")),
            format!("node003: `motd` would change {}:\n--- {} (on the node)\n+++ {} (new)\n@@ -1 +1 @@\n-bye\n+welcome\n", path(2, "motd"), path(2, "motd"), path(2, "motd")),
        ] {
            assert!(out.stdout.contains(&want), "missing:\n{want}\n{out}");
        }
        // Nothing but the diff's own text from the edited lines: the rest of the big
        // file is not shown.
        assert!(!out.stdout.contains("line 010 of"), "{out}");
    }
    // The dry run changed nothing.
    let after: Vec<Vec<u8>> = ["app.conf", "big.txt", "blob.bin", "db.pw", "motd"]
        .iter()
        .map(|file| std::fs::read(f.state(2).join(file)).expect("read"))
        .collect();
    assert_eq!(before, after);
    assert!(
        std::fs::read_to_string(f.state(1).join("app.conf"))
            .expect("read")
            .contains("port=8080")
    );

    // `--json`: one object per node and file.
    let json = f.drover(&["check", "w", "--diff", "--json"]);
    json.expect(exit_code::OK);
    keep(&json);
    let diffs = json.json()["diffs"].as_array().expect("diffs").clone();
    let of = |node: &str, step: &str| {
        diffs
            .iter()
            .find(|d| d["node"] == node && d["step"] == step)
            .unwrap_or_else(|| panic!("no diff of {step} on {node}: {diffs:?}"))
            .clone()
    };
    assert_eq!(
        of("node003", "db password")["content"],
        json!({"kind": "secret", "missing": false})
    );
    assert_eq!(of("node002", "app config")["content"]["kind"], "text");
    assert!(diffs.iter().all(|d| d["node"] != "node001"), "{diffs:?}");

    // The secret, old or new, and its hash appear nowhere drover wrote.
    let hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(format!("{SECRET}\n")))
    };
    let mut written = vec![("output".to_string(), outputs.into_bytes())];
    for e in walk(&f.site.path().join(".drover")) {
        written.push((e.display().to_string(), std::fs::read(&e).expect("read")));
    }
    assert!(
        written.iter().any(|(p, _)| p.ends_with(".log")),
        "no run log: {:?}",
        written.iter().map(|w| &w.0).collect::<Vec<_>>()
    );
    // The log does hold the hashes of files that are not secret: the search finds them.
    let motd_hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest("welcome\n"))
    };
    assert!(
        written
            .iter()
            .any(|(p, b)| p.ends_with(".log") && b.windows(64).any(|w| w == motd_hash.as_bytes())),
        "the run log has no hash of motd"
    );
    for (what, bytes) in &written {
        for needle in [SECRET, OLD_SECRET, &hash] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "`{needle}` is in {what}"
            );
        }
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}

#[test]
fn extra_vars_cannot_inject_shell_code() {
    let steps = "\
- name: echo
  run: echo {{ vars.pkg }} > {{ node.vars.state }}/out
  change: hot
";
    let f = Fleet::start(1, "", &workflow("vars:\n  pkg: vim\n", steps));
    let unique = format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    );
    let pwned: Vec<PathBuf> = (1..=3)
        .map(|i| PathBuf::from(format!("/tmp/PWNED_{unique}_{i}")))
        .collect();
    let pkg = format!(
        "x; touch {} $(touch {}) `touch {}`",
        pwned[0].display(),
        pwned[1].display(),
        pwned[2].display()
    );
    let extra = json!({ "pkg": pkg }).to_string();
    let run = f.drover(&["run", "w", "--yes", "--json", "--extra-vars", &extra]);
    run.expect(exit_code::OK);
    assert_eq!(
        std::fs::read_to_string(f.state(0).join("out")).expect("out"),
        format!("{pkg}\n")
    );
    for p in &pwned {
        assert!(!p.exists(), "{} was created: injection", p.display());
    }
}

#[test]
fn limit_narrows_the_run_and_blacklisted_nodes_are_never_touched() {
    let steps = "\
- name: mark
  run: echo ran >> {{ node.vars.state }}/ran
  check: echo >> {{ node.vars.state }}/checked; test -f {{ node.vars.state }}/ran
  change: hot
";
    let mut f = Fleet::start(
        5,
        "blacklist: [node004]\n",
        &workflow("strategy:\n  batch: [\"100%\"]\n", steps),
    );

    // Its sshd is even down: a connection attempt would make it an ERROR (exit 6).
    f.tb.stop_node(3).expect("stop node004");
    // The blacklisted node is targeted by the workflow (@all) and named in --limit.
    let run = f.drover(&["run", "w", "--yes", "--json", "--limit", "node002,node004"]);
    run.expect(exit_code::OK);
    assert_eq!(f.with_file("checked"), vec![1], "{run}");
    assert_eq!(f.with_file("ran"), vec![1], "{run}");
    assert_eq!(names(&summary(&run)["succeeded"]), nodes(&[1]), "{run}");

    // A limit that selects only the blacklisted node selects nothing, and says so.
    let run = f.drover(&["check", "w", "--json", "--limit", "node004"]);
    run.expect(exit_code::NOTHING_SELECTED);
    assert!(
        run.stderr
            .contains("every target --limit `node004` selects is blacklisted"),
        "{run}"
    );
    assert_eq!(f.with_file("checked"), vec![1], "{run}");

    let run = f.drover(&["run", "w", "--yes", "--json"]);
    run.expect(exit_code::OK);
    assert_eq!(f.with_file("ran"), vec![0, 1, 2, 4], "{run}");
    assert_eq!(f.with_file("checked"), vec![0, 1, 2, 4], "{run}");
    let s = summary(&run);
    assert_eq!(names(&s["succeeded"]), nodes(&[0, 2, 4]), "{run}");
    assert_eq!(names(&s["up_to_date"]), nodes(&[1]), "{run}");
    assert_eq!(f.count(1, "ran"), 1, "{run}");
}

#[test]
fn plan_touches_no_node() {
    let strategy = "\
strategy:
  batch: [1, \"100%\"]
";
    let mut f = Fleet::start(
        5,
        "canary: [node001]\nblacklist: [node005]\n",
        &workflow(strategy, MARK_OR_FAIL),
    );
    f.tb.stop_all().expect("stop every sshd");
    let run = f.drover(&["plan", "w"]);
    run.expect(exit_code::OK);
    for line in [
        "plan for w v1: 4 nodes",
        "  skipped (blacklisted): 1 node005",
        "  canary: 1 node001 (no soak; any failure stops the run)",
        "  batch 1: 1 node002",
        "  batch 2: 2 node[003-004]",
    ] {
        assert!(run.stdout.contains(line), "missing {line:?}\n{run}");
    }
    let run = f.drover(&["plan", "w", "--json"]);
    run.expect(exit_code::OK);
    let v = run.json();
    assert_eq!(names(&v["canary"]), nodes(&[0]), "{v}");
    assert_eq!(v["batches"], json!([["node002"], ["node003", "node004"]]), "{v}");
    assert_eq!(
        v["excluded"],
        json!([{"node": "node005", "reason": "blacklisted"}]),
        "{v}"
    );
    assert!(f.with_file("ran").is_empty());
}

#[test]
fn a_second_run_leaves_good_nodes_alone() {
    let steps = "\
- name: helper
  run: echo x >> {{ node.vars.state }}/helper
  change: hot
- name: main
  run: echo x >> {{ node.vars.state }}/runs; touch {{ node.vars.state }}/done
  check: test -f {{ node.vars.state }}/done
  change: hot
";
    let f = Fleet::start(4, "", &workflow("strategy:\n  batch: [\"100%\"]\n", steps));
    f.touch(2, "done");
    let run = f.drover(&["run", "w", "--yes", "--json"]);
    run.expect(exit_code::OK);
    let s = summary(&run);
    assert_eq!(names(&s["succeeded"]), nodes(&[0, 1, 3]), "{run}");
    assert_eq!(names(&s["up_to_date"]), nodes(&[2]), "{run}");
    let counts = |file: &str| (0..4).map(|i| f.count(i, file)).collect::<Vec<_>>();
    assert_eq!(counts("runs"), vec![1, 1, 0, 1], "{run}");
    assert_eq!(counts("helper"), vec![1, 1, 0, 1], "{run}");

    let run = f.drover(&["run", "w", "--yes", "--json"]);
    run.expect(exit_code::OK);
    let s = summary(&run);
    assert!(names(&s["succeeded"]).is_empty(), "{run}");
    assert_eq!(names(&s["up_to_date"]), nodes(&[0, 1, 2, 3]), "{run}");
    assert!(run.events("node_started").is_empty(), "{run}");
    assert_eq!(counts("runs"), vec![1, 1, 0, 1], "{run}");
    assert_eq!(counts("helper"), vec![1, 1, 0, 1], "{run}");
}

/// The first Ctrl-C lets the node in flight finish its step, starts no other, and exits
/// 130. `forks: 1` makes the nodes run one after another.
#[test]
fn ctrl_c_finishes_the_node_in_flight_and_starts_no_other() {
    let steps = "\
- name: slow
  run: echo x >> {{ node.vars.state }}/started; sleep 2; echo x >> {{ node.vars.state }}/finished
  change: hot
";
    let f = Fleet::with_forks(
        4,
        Some(1),
        "",
        &workflow("strategy:\n  batch: [\"100%\"]\n", steps),
    );
    let mut running = f.spawn(&["run", "w", "--yes", "--json"]);
    running.wait_for_file(&f.state(0).join("started"));
    std::thread::sleep(Duration::from_millis(500));
    running.interrupt();
    let run = running.finish();
    run.expect(exit_code::INTERRUPTED);
    assert_eq!(f.with_file("started"), vec![0], "{run}");
    assert_eq!(
        f.with_file("finished"),
        vec![0],
        "the node in flight was cut\n{run}"
    );
    let s = summary(&run);
    assert_eq!(
        s["outcome"],
        json!({"outcome": "stopped", "stop": {"reason": "interrupted"}}),
        "{run}"
    );
    assert_eq!(names(&s["succeeded"]), nodes(&[0]), "{run}");
    assert_eq!(names(&s["not_started"]), nodes(&[1, 2, 3]), "{run}");
}

/// Ctrl-C while the checks run: no step runs, every master opened so far is closed (the
/// helper checks), and drover exits 130 without waiting for the checks.
#[test]
fn ctrl_c_during_the_check_runs_nothing_and_closes_every_connection() {
    let steps = "\
- name: mark
  run: echo ran >> {{ node.vars.state }}/ran
  check: echo x >> {{ node.vars.state }}/checking; sleep 20; false
  change: hot
";
    let f = Fleet::start(3, "", &workflow("", steps));
    let mut running = f.spawn(&["run", "w", "--yes", "--json"]);
    running.wait_for_file(&f.state(0).join("checking"));
    let pressed = Instant::now();
    running.interrupt();
    let run = running.finish();
    run.expect(exit_code::INTERRUPTED);
    assert!(pressed.elapsed() < Duration::from_secs(10), "{run}");
    assert!(
        run.stderr.contains("interrupted while checking; nothing was run"),
        "{run}"
    );
    assert!(f.with_file("ran").is_empty(), "{run}");
}

/// A command that is not found (127) or dies by a signal is the command's failure, with
/// its output, not a lost connection.
#[test]
fn exit_codes_and_signals_are_reported_as_the_commands_own() {
    let odd = "case $DROVER_NODE in node001) no-such-command-drover;; node002) kill -KILL $$;; *) echo bye >&2; exit 7;; esac";
    let strategy = "strategy:\n  all_at_once: true\n  failure_budget: { per_run: \"100%\" }\n";
    let f = Fleet::start(
        3,
        "",
        &workflow(strategy, &format!("- name: odd\n  run: {odd}\n  change: hot\n")),
    );
    f.write(
        "workflows/c.yml",
        &workflow(
            "",
            &format!("- name: odd\n  run: \"true\"\n  check: {odd}\n  change: hot\n"),
        )
        .replace("name: w\n", "name: c\n"),
    );

    let run = f.drover(&["check", "c", "--json"]);
    run.expect(exit_code::NODES_FAILED);
    let errors = &run.json()["errors"];
    let e = |n: &str| str_of(&errors[n]);
    assert!(
        e("node001").contains("exited with code 127") && e("node001").contains("not found"),
        "{run}"
    );
    assert!(e("node002").contains("exited with a signal"), "{run}");
    assert!(
        e("node003").contains("exited with code 7") && e("node003").ends_with("bye"),
        "{run}"
    );

    let run = f.drover(&["run", "w", "--yes", "--json"]);
    run.expect(exit_code::NODES_FAILED);
    let s = summary(&run);
    let errors: Vec<String> = s["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .map(|f| str_of(&f["error"]))
        .collect();
    assert_eq!(errors.len(), 3, "{run}");
    assert!(
        errors[0].contains("exited with code 127: ")
            && errors[0].contains("no-such-command-drover: not found"),
        "{run}"
    );
    assert_eq!(errors[1], "step `odd`: killed by a signal", "{run}");
    assert_eq!(errors[2], "step `odd`: exited with code 7: bye", "{run}");
}

/// A node that goes down in the middle of a step fails with a lost connection; the other
/// nodes finish, and nothing is left of the dead node's master.
#[test]
fn a_node_lost_mid_step_fails_and_the_others_finish() {
    let steps = "\
- name: slow
  run: echo x >> {{ node.vars.state }}/started; sleep 2; echo x >> {{ node.vars.state }}/finished
  change: hot
";
    let strategy = "strategy:\n  all_at_once: true\n  failure_budget: { per_run: 1 }\n";
    let mut f = Fleet::start(3, "", &workflow(strategy, steps));
    let mut running = f.spawn(&["run", "w", "--yes", "--json"]);
    running.wait_for_file(&f.state(1).join("started"));
    f.tb.stop_node(1).expect("stop node002");
    let run = running.finish();
    run.expect(exit_code::NODES_FAILED);
    let s = summary(&run);
    assert_eq!(names(&s["succeeded"]), nodes(&[0, 2]), "{run}");
    assert_eq!(failed_nodes(&s), nodes(&[1]), "{run}");
    let e = str_of(&s["failed"][0]["error"]);
    assert!(
        e.contains("lost connection to node002 while running a command"),
        "{e}"
    );
    assert_eq!(f.with_file("finished"), vec![0, 2], "{run}");
}

// ------------------------------------------------------------------------------------
// One round trip per node: file steps check themselves, checks and steps run as scripts.

/// Each command below records its script's shell: the parent of the `timeout` that
/// runs it. Commands of one script share it; commands run alone (one session each)
/// do not.
const SCRIPT_SHELL: &str = "ps -o ppid= -p $PPID | tr -d ' '";

/// A file changed by hand is found by its step's own check: that node is HOT, the
/// others (whose files are as the steps write them) GOOD, and the run puts it back.
#[test]
fn a_hand_edited_file_makes_its_node_hot_and_the_others_good() {
    let f = Fleet::start(4, "", &workflow("", MARK_OR_FAIL));
    let nodes_dir = f.tb.dir().join("nodes");
    let steps = format!(
        "\
- name: app dir
  run: mkdir -p {{{{ node.vars.state }}}}/app
  check: test -d {{{{ node.vars.state }}}}/app
  change: hot
- name: config
  copy:
    src: files/app.conf
    dest: \"{0}/{{{{ node.name }}}}/app/app.conf\"
    mode: \"0644\"
  change: hot
- name: motd
  template:
    src: templates/motd.j2
    dest: \"{0}/{{{{ node.name }}}}/app/motd\"
  change: hot
",
        nodes_dir.display()
    );
    f.write(
        "workflows/w.yml",
        &workflow("strategy:\n  batch: [\"100%\"]\n", &steps),
    );
    f.write("workflows/files/app.conf", "port = 80\n");
    f.write("workflows/templates/motd.j2", "node {{ node.name }}\n");
    f.drover(&["run", "w", "--yes", "--json"]).expect(exit_code::OK);
    let check = f.drover(&["check", "w", "--json"]);
    check.expect(exit_code::OK);
    assert_eq!(names(&check.json()["GOOD"]), nodes(&[0, 1, 2, 3]), "{check}");

    // node002's config edited by hand, node003's motd given another mode.
    std::fs::write(f.state(1).join("app/app.conf"), "port = 8080\n").expect("edit");
    {
        use std::os::unix::fs::PermissionsExt;
        let motd = f.state(2).join("app/motd");
        let mode = std::fs::metadata(&motd).expect("motd").permissions().mode();
        // The template step names no mode: only the content counts there.
        std::fs::set_permissions(&motd, std::fs::Permissions::from_mode(mode ^ 0o004)).expect("chmod");
        std::fs::write(f.state(2).join("app/app.conf"), "port = 80\n").expect("same content");
        std::fs::set_permissions(
            f.state(3).join("app/app.conf"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
    }
    let check = f.drover(&["check", "w", "--json"]);
    check.expect(exit_code::OK);
    let v = check.json();
    assert_eq!(names(&v["HOT"]), nodes(&[1, 3]), "{check}");
    assert_eq!(names(&v["GOOD"]), nodes(&[0, 2]), "{check}");

    let run = f.drover(&["run", "w", "--yes", "--json"]);
    run.expect(exit_code::OK);
    assert_eq!(
        run.step_statuses("config"),
        vec![(node(1), "changed".into()), (node(3), "changed".into())],
        "{run}"
    );
    assert_eq!(
        run.step_statuses("motd"),
        vec![(node(1), "unchanged".into()), (node(3), "unchanged".into())],
        "a current file runs along with the node's needed step\n{run}"
    );
    assert_eq!(
        std::fs::read_to_string(f.state(1).join("app/app.conf")).expect("conf"),
        "port = 80\n"
    );
    let check = f.drover(&["check", "w", "--json"]);
    assert_eq!(names(&check.json()["GOOD"]), nodes(&[0, 1, 2, 3]), "{check}");
}

/// A node's checks run as one script; one that hangs is killed at its own limit and
/// makes its node ERROR, while the checks after it still run and the other nodes
/// classify.
#[test]
fn a_hung_check_in_the_batched_script_is_timed_out_alone() {
    let steps = format!(
        "\
- name: first
  run: touch {{{{ node.vars.state }}}}/first_done
  check: \"{SCRIPT_SHELL} > {{{{ node.vars.state }}}}/first_shell; test -f {{{{ node.vars.state }}}}/first_done\"
  change: hot
- name: slow
  run: \"true\"
  check: \"[ ! -f {{{{ node.vars.state }}}}/hang ] || sleep 60; exit 0\"
  timeout: 2s
  change: hot
- name: last
  run: touch {{{{ node.vars.state }}}}/last_done
  check: \"{SCRIPT_SHELL} > {{{{ node.vars.state }}}}/last_shell; test -f {{{{ node.vars.state }}}}/last_done\"
  change: hot
"
    );
    let f = Fleet::start(3, "", &workflow("", &steps));
    f.touch(1, "hang");
    f.touch(2, "first_done");
    f.touch(2, "last_done");
    let run = f.drover(&["check", "w", "--json"]);
    run.expect(exit_code::NODES_FAILED);
    assert!(
        run.elapsed < Duration::from_secs(30),
        "waited for the hung check: {run}"
    );
    let v = run.json();
    assert_eq!(names(&v["HOT"]), nodes(&[0]), "{run}");
    assert_eq!(names(&v["GOOD"]), nodes(&[2]), "{run}");
    assert_eq!(names(&v["ERROR"]), nodes(&[1]), "{run}");
    assert_eq!(
        str_of(&v["errors"]["node002"]),
        "check of step `slow` timed out",
        "{run}"
    );
    let shell = |i: usize, file: &str| std::fs::read_to_string(f.state(i).join(file)).expect(file);
    for i in 0..3 {
        // The check after the hung one ran too, in the same script (the same shell).
        assert_eq!(shell(i, "first_shell"), shell(i, "last_shell"), "node {i}");
    }
}

/// A node's needed steps run as one script; a failure in its third step stops it
/// there, and the retry runs from the third step on (again as one script).
#[test]
fn a_failure_in_step_3_of_a_batched_script_stops_there_and_the_retry_starts_at_step_3() {
    let f = Fleet::start(2, "", &workflow("", MARK_OR_FAIL));
    let nodes_dir = f.tb.dir().join("nodes");
    let st = "{{ node.vars.state }}";
    let steps = format!(
        "\
- name: one
  run: \"echo x >> {st}/one; {SCRIPT_SHELL} >> {st}/shells\"
  change: hot
- name: two
  copy:
    src: files/app.conf
    dest: \"{0}/{{{{ node.name }}}}/app.conf\"
  change: hot
- name: three
  run: \"{SCRIPT_SHELL} >> {st}/shells; echo x >> {st}/three; [ $(wc -l < {st}/three) -ge 2 ] || {{ echo first try fails >&2; exit 7; }}\"
  change: hot
- name: four
  run: \"echo x >> {st}/four; {SCRIPT_SHELL} >> {st}/shells\"
  change: hot
",
        nodes_dir.display()
    );
    f.write(
        "workflows/w.yml",
        &workflow(
            "strategy:\n  batch: [\"100%\"]\n  retries: { count: 1, delay: 1s }\n",
            &steps,
        ),
    );
    f.write("workflows/files/app.conf", "port = 80\n");
    let run = f.drover(&["run", "w", "--yes", "--json"]);
    run.expect(exit_code::OK);
    let both = |status: &str| vec![(node(0), status.to_string()), (node(1), status.to_string())];
    assert_eq!(run.step_statuses("one"), both("ok"), "step one ran once\n{run}");
    assert_eq!(run.step_statuses("two"), both("changed"), "{run}");
    let mut three = both("failed");
    three.extend(both("ok"));
    three.sort();
    assert_eq!(run.step_statuses("three"), three, "{run}");
    assert_eq!(run.step_statuses("four"), both("ok"), "step four ran once\n{run}");
    let failed: Vec<Value> = run
        .events("step_finished")
        .into_iter()
        .filter(|e| e["status"] == "failed")
        .collect();
    assert!(
        failed
            .iter()
            .all(|e| str_of(&e["error"]).contains("exited with code 7: first try fails")),
        "{run}"
    );
    let retries: Vec<String> = run
        .events("node_retry")
        .iter()
        .map(|e| str_of(&e["node"]))
        .collect();
    assert_eq!(retries.len(), 2, "{run}");
    for i in 0..2 {
        assert_eq!(
            (f.count(i, "one"), f.count(i, "three"), f.count(i, "four")),
            (1, 2, 1)
        );
        assert_eq!(
            std::fs::read_to_string(f.state(i).join("app.conf")).expect("conf"),
            "port = 80\n"
        );
        // Steps one to three ran in one script, the retry's three and four in another.
        let shells = std::fs::read_to_string(f.state(i).join("shells")).expect("shells");
        let shells: Vec<&str> = shells.lines().collect();
        assert_eq!(shells.len(), 4, "{shells:?}");
        assert_eq!(shells[0], shells[1], "{shells:?}");
        assert_eq!(shells[2], shells[3], "{shells:?}");
        assert_ne!(shells[1], shells[2], "{shells:?}");
    }
    // Every step is recorded as if it had run alone: the failed attempt's exit code and
    // output, the retry's attempt number.
    let id = str_of(&summary(&run)["run"]);
    let show = f.drover(&["runs", "show", &id, "--json"]);
    let detail: Value = serde_json::from_str(show.stdout.trim()).expect("runs show JSON");
    let rows: Vec<(String, u64, u64, String, Value)> = detail["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|r| r["node"] == node(0))
        .map(|r| {
            (
                str_of(&r["step"]),
                r["position"].as_u64().expect("position"),
                r["attempt"].as_u64().expect("attempt"),
                str_of(&r["status"]),
                r["exit_code"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("one".into(), 0, 1, "ok".into(), json!(0)),
            ("two".into(), 1, 1, "changed".into(), json!(0)),
            ("three".into(), 2, 1, "failed".into(), json!(7)),
            ("three".into(), 2, 2, "ok".into(), json!(0)),
            ("four".into(), 3, 2, "ok".into(), json!(0)),
        ],
        "{show}"
    );
    let failed = detail["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|r| r["node"] == node(0) && r["status"] == "failed")
        .expect("the failed attempt");
    assert!(
        str_of(&failed["output_tail"]).contains("first try fails"),
        "{failed}"
    );
}
