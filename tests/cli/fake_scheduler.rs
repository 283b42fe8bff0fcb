//! Fixtures for drain cycles: the fake scheduler's hooks, the availability monitor, and
//! fake reboots of testbed nodes through real ssh.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use drover::template::TemplateEngine;
use drover_testbed::{FakeScheduler, Monitor, Testbed};
use serde_json::json;

use crate::support::*;

fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("node{i:03}")).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn install(dir: &Path, n: usize) -> FakeScheduler {
    FakeScheduler::install(&dir.join("sched"), &names(n)).expect("install scheduler")
}

/// Runs one hook the way a shell would.
fn hook(s: &FakeScheduler, name: &str, args: &[&str]) -> Output {
    Command::new(s.bin(name))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run hook")
}

fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Polls `drained` until it exits 0; how long that took.
fn wait_drained(s: &FakeScheduler, node: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let out = hook(s, "drained", &[node]);
        if out.status.success() {
            return start.elapsed();
        }
        assert_exit(&out, 1, "drained while not drained");
        assert!(start.elapsed() < limit, "{node} not drained after {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn drain_waits_for_the_job_and_resume_clears_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = install(tmp.path(), 2);
    let job = Duration::from_millis(400);
    s.set_job("node001", job).expect("job");
    let started = Instant::now();

    assert_exit(&hook(&s, "drain", &["node001", "drover: w v1 run 1"]), 0, "drain");
    assert_eq!(s.state("node001"), "draining");
    assert_eq!(s.reason("node001").as_deref(), Some("drover: w v1 run 1"));
    let out = hook(&s, "drained", &["node001"]);
    assert_exit(&out, 1, "drained while the job runs");
    assert_eq!(text(&out.stdout), "draining\n");

    wait_drained(&s, "node001", Duration::from_secs(3));
    assert!(
        started.elapsed() >= job - Duration::from_millis(50),
        "drained before the job ended"
    );
    assert_eq!(s.state("node001"), "drained", "drained must record the state");
    assert_exit(&hook(&s, "drained", &["node001"]), 0, "drained stays drained");

    assert_exit(&hook(&s, "resume", &["node001"]), 0, "resume");
    assert_eq!(s.state("node001"), "idle");
    assert_eq!(s.reason("node001"), None);
    assert_eq!(s.calls("node001", "drain"), 1);
    assert!(s.calls("node001", "drained") >= 3);
    assert_eq!(s.calls("node001", "resume"), 1);
    assert_eq!(s.state("node002"), "idle");
    assert_eq!(s.calls("node002", "drain"), 0);

    let log = s.log();
    let first = log.first().expect("log lines");
    assert_eq!(
        (first.hook.as_str(), first.node.as_str(), first.reason.as_deref()),
        ("drain", "node001", Some("drover: w v1 run 1"))
    );
    let last = log.last().expect("log lines");
    assert_eq!((last.hook.as_str(), last.reason.as_deref()), ("resume", None));
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at), "{log:?}");
    assert_eq!(log.len(), 1 + s.calls("node001", "drained") as usize + 1);
}

#[test]
fn drain_of_a_drained_or_draining_node_only_updates_the_reason() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = install(tmp.path(), 3);
    // Drained by an admin before the run.
    s.set_state("node001", "drained", Some("admin: bad DIMM"))
        .expect("set state");
    assert_exit(
        &hook(&s, "drain", &["node001", "drover: run 2"]),
        0,
        "drain drained node",
    );
    assert_eq!(s.state("node001"), "drained");
    assert_eq!(s.reason("node001").as_deref(), Some("drover: run 2"));

    // Draining: a second drain keeps it draining, with the new reason.
    s.set_job("node002", Duration::from_secs(30)).expect("job");
    assert_exit(&hook(&s, "drain", &["node002", "first"]), 0, "drain");
    assert_exit(&hook(&s, "drain", &["node002", "second"]), 0, "drain again");
    assert_eq!(s.state("node002"), "draining");
    assert_eq!(s.reason("node002").as_deref(), Some("second"));
    assert_exit(&hook(&s, "drained", &["node002"]), 1, "job still runs");
    // Ending the job ends the drain.
    s.set_job("node002", Duration::ZERO).expect("end job");
    assert_exit(&hook(&s, "drained", &["node002"]), 0, "job ended");
    assert_eq!(s.state("node002"), "drained");

    // An idle node without a job is drained at once; `drained` is 1 for an idle node.
    assert_exit(&hook(&s, "drained", &["node003"]), 1, "idle is not drained");
    assert_exit(&hook(&s, "drain", &["node003", "r"]), 0, "drain idle node");
    assert_eq!(s.state("node003"), "drained");
    assert_exit(&hook(&s, "drained", &["node003"]), 0, "drained at once");
}

#[test]
fn bad_calls_exit_2_and_are_logged_but_not_counted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = install(tmp.path(), 1);
    let out = hook(&s, "drain", &["node009", "r"]);
    assert_exit(&out, 2, "unknown node");
    assert!(
        text(&out.stderr).contains("unknown node 'node009'"),
        "{}",
        text(&out.stderr)
    );
    assert_exit(&hook(&s, "drain", &["node001"]), 2, "drain without reason");
    assert_exit(&hook(&s, "resume", &["../node001"]), 2, "path as node");
    assert_eq!(s.calls("node001", "drain"), 0);
    assert_eq!(s.state("node001"), "idle");
    let logged: Vec<(String, String)> = s.log().into_iter().map(|l| (l.hook, l.node)).collect();
    assert_eq!(
        logged,
        [
            ("drain", "node009"),
            ("drain", "node001"),
            ("resume", "../node001")
        ]
        .map(|(h, n)| (h.into(), n.into()))
    );
}

/// The `drain:` block validates as drover config, and its commands, rendered the way
/// drover renders hooks (every value shell-quoted), work even with a hostile reason.
#[test]
fn hooks_yaml_validates_and_renders_like_drover() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = install(tmp.path(), 1);
    let hooks = s.hooks_yaml("20ms", "5s", "hold");
    let (head, rest) = SITE.split_once("drain:\n").expect("site has drain");
    let windows = &rest[rest.find("windows:").expect("site has windows")..];
    let site = Site::new().write("drover.yml", &format!("{head}{hooks}{windows}"));
    let out = site.run(&["validate", "."]);
    assert_eq!(
        out.code, 0,
        "{hooks}\nstdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );

    let template = |key: &str| -> String {
        let line = hooks
            .lines()
            .find_map(|l| l.strip_prefix(&format!("  {key}: ")))
            .unwrap_or_else(|| panic!("no {key} in\n{hooks}"));
        serde_json::from_str(line).expect("a JSON string is a YAML string")
    };
    let reason = "drover: w v1 run 1; touch pwned $(touch pwned2) 'q'";
    let ctx = json!({ "node": { "name": "node001" }, "reason": reason });
    let engine = TemplateEngine::new();
    let run = |key: &str| {
        let command = engine.render(&template(key), &ctx).expect("render");
        Command::new("sh")
            .args(["-c", &command])
            .current_dir(tmp.path())
            .output()
            .expect("sh")
    };
    assert_exit(&run("drain"), 0, "rendered drain");
    assert_eq!(s.reason("node001").as_deref(), Some(reason));
    assert_exit(&run("drained"), 0, "rendered drained");
    assert_exit(&run("resume"), 0, "rendered resume");
    assert_eq!(s.state("node001"), "idle");
    assert!(!tmp.path().join("pwned").exists() && !tmp.path().join("pwned2").exists());
}

#[test]
fn monitor_sees_the_most_nodes_out_at_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = install(tmp.path(), 4);
    let groups = vec![
        ("ha".to_string(), names(2)),
        (
            "rest".to_string(),
            vec!["node003".to_string(), "node004".to_string()],
        ),
    ];
    let monitor = Monitor::start(&s, groups, Duration::from_millis(2)).expect("monitor");
    // Until the monitor has surely seen the change: a sleep could pass unsampled on a busy
    // machine.
    let pause = || assert!(monitor.wait_samples(3, Duration::from_secs(2)), "monitor stalled");
    pause();
    // Three out at once, one of them draining (a job runs).
    s.set_job("node004", Duration::from_secs(30)).expect("job");
    for node in ["node001", "node003", "node004"] {
        assert_exit(&hook(&s, "drain", &[node, "r"]), 0, "drain");
    }
    assert_eq!(s.state("node004"), "draining");
    pause();
    for node in ["node001", "node003", "node004"] {
        assert_exit(&hook(&s, "resume", &[node]), 0, "resume");
    }
    pause();
    // Then both members of the HA pair: fewer overall, the most for the pair.
    for node in ["node001", "node002"] {
        assert_exit(&hook(&s, "drain", &[node, "r"]), 0, "drain");
    }
    pause();
    let samples = monitor.samples();
    let report = monitor.stop();
    assert_eq!(report.max_unavailable, 3, "{report:?}");
    assert_eq!(report.worst, ["node001", "node003", "node004"], "{report:?}");
    assert_eq!(report.max_per_group["ha"], 2, "{report:?}");
    assert_eq!(report.max_per_group["rest"], 2, "{report:?}");
    assert!(report.samples > samples, "stop takes a last sample: {report:?}");
}

#[test]
fn monitor_of_an_idle_fleet_sees_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = install(tmp.path(), 2);
    let monitor =
        Monitor::start(&s, vec![("all".to_string(), names(2))], Duration::from_millis(2)).expect("monitor");
    let report = monitor.stop();
    assert_eq!(report.max_unavailable, 0);
    assert!(report.worst.is_empty());
    assert_eq!(report.max_per_group["all"], 0);
    assert!(
        report.samples >= 2,
        "a sample at start and one at stop: {report:?}"
    );
}

/// `ssh -F <testbed config> NODE CMD`.
fn ssh_command(tb: &Testbed, node: &str, cmd: &str) -> Command {
    let mut c = Command::new("ssh");
    c.arg("-F")
        .arg(tb.ssh_config())
        .args(["-o", "ConnectTimeout=5", node, cmd])
        .stdin(Stdio::null());
    c
}

fn ssh(tb: &Testbed, node: &str, cmd: &str) -> Output {
    ssh_command(tb, node, cmd).output().expect("run ssh")
}

fn ssh_ok(tb: &Testbed, node: &str, cmd: &str) -> String {
    let out = ssh(tb, node, cmd);
    assert_exit(&out, 0, &format!("ssh {node} {cmd}"));
    text(&out.stdout).trim().to_string()
}

/// A session on `node` that has started (printed), to see a reboot cut it.
fn open_session(tb: &Testbed, node: &str, cmd: &str) -> Child {
    let mut child = ssh_command(tb, node, &format!("echo up; {cmd}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ssh");
    let mut first = [0u8; 3];
    std::io::Read::read_exact(child.stdout.as_mut().expect("stdout"), &mut first).expect("session output");
    assert_eq!(&first, b"up\n");
    child
}

fn wait_exit(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not after {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Processes whose command line names `dir` (the sshds: `sshd -f <dir>/sshd/...`).
fn processes_using(dir: &Path) -> String {
    let out = Command::new("pgrep")
        .arg("-af")
        .arg(dir.join("sshd"))
        .output()
        .expect("run pgrep");
    text(&out.stdout)
}

#[test]
fn reboot_through_ssh_cuts_sessions_and_changes_the_boot_id() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tb = Testbed::start(tmp.path(), 2).expect("start testbed");
    let dir = tb.dir().to_path_buf();
    let down_for = Duration::from_millis(300);
    let service = tb.reboot_service(down_for).expect("reboot service");
    // What drover's boot id command reads, and the boot count.
    let boot = "cat $DROVER_STATE/boot_id $DROVER_STATE/boots";
    let before = ssh_ok(&tb, "node001", boot);
    let boot_before = tb.boot_id(0).expect("boot id");
    assert_eq!(before, format!("{boot_before}\n0"));
    let other_boot = tb.boot_id(1).expect("node002 boot id");
    let mut session = open_session(&tb, "node001", "exec sleep 60");

    ssh_ok(&tb, "node001", "touch $DROVER_STATE/reboot-requested");
    wait_until(Duration::from_secs(2), "node001 goes down", || !tb.is_running(0));
    let out = ssh(&tb, "node001", "true");
    assert_exit(&out, 255, "ssh to a rebooting node");
    assert!(
        text(&out.stderr).contains("Connection refused"),
        "{}",
        text(&out.stderr)
    );
    assert!(!wait_exit(&mut session, Duration::from_secs(2), "session").success());

    let reboots = service.wait_for(1, Duration::from_secs(3)).expect("reboot done");
    assert_eq!(reboots.len(), 1, "{reboots:?}");
    let reboot = &reboots[0];
    assert_eq!(
        (reboot.index, reboot.node.as_str(), &reboot.error),
        (0, "node001", &None)
    );
    let up = reboot.up.expect("up");
    assert!(
        up.duration_since(reboot.down).expect("up after down") >= down_for,
        "{reboot:?}"
    );
    assert!(tb.is_running(0));

    let boot_after = reboot.boot_id.clone().expect("new boot id");
    assert_ne!(boot_after, boot_before);
    assert_eq!(ssh_ok(&tb, "node001", boot), format!("{boot_after}\n1"));
    assert_eq!(tb.boots(0).expect("boots"), 1);
    // The other node never noticed.
    assert_eq!(tb.boot_id(1).expect("node002 boot id"), other_boot);
    assert_eq!(tb.boots(1).expect("node002 boots"), 0);

    // The restarted sshd dies with the testbed like the others.
    assert_eq!(service.stop().len(), 1);
    drop(tb);
    let left = processes_using(&dir);
    assert!(left.is_empty(), "processes left behind:\n{left}");
}

/// `reboot --wait` is cut off like a real `reboot`, and nodes asking together are down
/// together.
#[test]
fn nodes_rebooting_together_are_down_together() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tb = Testbed::start(tmp.path(), 2).expect("start testbed");
    let service = tb
        .reboot_service(Duration::from_millis(300))
        .expect("reboot service");
    // Both sessions wait for `go` in their state dir, so both ask at the same moment.
    let wait_then_reboot =
        "while [ ! -e $DROVER_STATE/go ]; do sleep 0.01; done; exec $DROVER_STATE/reboot --wait";
    let mut sessions: Vec<Child> = ["node001", "node002"]
        .iter()
        .map(|node| open_session(&tb, node, wait_then_reboot))
        .collect();
    for node in tb.nodes() {
        std::fs::write(node.state_dir.join("go"), "").expect("write go");
    }
    for s in &mut sessions {
        let status = wait_exit(s, Duration::from_secs(3), "reboot --wait");
        assert_eq!(status.code(), Some(255), "cut off by the reboot: {status}");
    }
    let reboots = service.wait_for(2, Duration::from_secs(3)).expect("reboots done");
    assert_eq!(reboots.len(), 2, "{reboots:?}");
    let (a, b) = (&reboots[0], &reboots[1]);
    assert!(a.was_down_at(b.down) || b.was_down_at(a.down), "{reboots:?}");
    assert_eq!((tb.boots(0).expect("boots"), tb.boots(1).expect("boots")), (1, 1));
    assert_eq!(ssh_ok(&tb, "node002", "echo $DROVER_NODE"), "node002");
}

#[test]
fn nothing_outlives_a_testbed_dropped_mid_reboot() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tb = Testbed::start(tmp.path(), 2).expect("start testbed");
    let dir = tb.dir().to_path_buf();
    let down_for = Duration::from_millis(300);
    let service = tb.reboot_service(down_for).expect("reboot service");
    ssh_ok(&tb, "node001", "$DROVER_STATE/reboot");
    // A bound, not a wait: it ends as soon as the node is down, and a loaded CI machine
    // may take more than a second or two to get there.
    wait_until(Duration::from_secs(20), "node001 goes down", || !tb.is_running(0));

    drop(tb);
    std::thread::sleep(down_for + Duration::from_millis(200));
    let left = processes_using(&dir);
    assert!(left.is_empty(), "processes left behind:\n{left}");
    let reboots = service.stop();
    assert_eq!(reboots.len(), 1, "{reboots:?}");
    assert_eq!(reboots[0].up, None);
    let error = reboots[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("testbed was dropped"), "{reboots:?}");
    let left = processes_using(&dir);
    assert!(left.is_empty(), "processes left behind:\n{left}");
}
