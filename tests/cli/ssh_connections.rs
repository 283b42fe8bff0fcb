//! Connections that outlive their idle limit, a killed master, commands stopped when
//! drover gives up on them, and what a killed controller leaves behind: real sshds,
//! with the ssh idle limit (`control_persist`) shrunk to 2 s instead of long sleeps.

use std::time::{Duration, Instant};

use drover::exit_code;
use serde_json::json;

use super::bed::{Bed, node, processes, workflow};

/// Masters idle for 2 s exit; a dead peer is noticed within a few seconds.
const SHORT_IDLE: &str = "control_persist: 2s, server_alive_interval: 1s";

fn succeeded(out: &super::bed::Out) -> Vec<String> {
    let mut v: Vec<String> = out
        .events("node_finished")
        .iter()
        .filter(|e| e["ok"] == true)
        .map(|e| e["node"].as_str().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

/// How many connections each node's sshd accepted (its log at `INFO`).
fn connections(bed: &Bed, n: usize) -> Vec<usize> {
    (0..n)
        .map(|i| {
            let log = std::fs::read_to_string(bed.tb.sshd_log(i).expect("log")).expect("read log");
            log.matches("Accepted publickey").count()
        })
        .collect()
}

/// Commands (sessions that ran one) per node so far, from sshd's DEBUG1 log.
fn commands(bed: &Bed, n: usize) -> Vec<usize> {
    (0..n)
        .map(|i| {
            let log = std::fs::read_to_string(bed.tb.sshd_log(i).expect("log")).expect("read log");
            log.lines()
                .filter(|l| l.contains("session_input_channel_req:") && l.ends_with(" req exec"))
                .count()
        })
        .collect()
}

/// Three nodes whose sshds log every session (DEBUG1), and a site with `ssh` settings.
fn logged_bed(ssh: &str) -> Bed {
    let options = drover_testbed::TestbedOptions {
        log_level: Some("DEBUG1".into()),
        ..Default::default()
    };
    let bed = Bed::start_with(3, false, options);
    bed.site_with_config(ssh, "");
    bed
}

/// The run succeeded on all three nodes, every step done, each node connected once.
fn all_done_on_one_connection_each(bed: &Bed, out: &super::bed::Out) {
    out.expect(exit_code::OK);
    assert_eq!(succeeded(out), vec![node(0), node(1), node(2)], "{out}");
    assert!(
        (0..3).all(|i| bed.has(i, "done") && bed.has(i, "app.conf")),
        "{out}"
    );
    assert_eq!(connections(bed, 3), vec![1, 1, 1], "{out}");
}

/// A change in one batch: a checked `run` step and a file step (its own check).
fn one_batch_change(bed: &Bed) {
    bed.write("workflows/files/app.conf", "port = 80\n");
    bed.write(
        "workflows/w.yml",
        &workflow(
            "strategy: { batch: [\"100%\"] }\n",
            "- name: mark\n  run: touch {{ node.vars.state }}/done\n  check: test -e {{ node.vars.state }}/done\n  change: hot\n\
             - name: conf\n  copy: { src: files/app.conf, dest: \"{{ node.vars.state }}/app.conf\" }\n  change: hot\n",
        ),
    );
}

/// A node the run changes keeps the master of its check for its turn, and its steps
/// run in the check's session: one connection and one command per node (sshd's own
/// log says so), and every step done.
#[test]
fn a_one_batch_change_opens_one_connection_and_runs_one_command_per_node() {
    let bed = logged_bed("");
    one_batch_change(&bed);
    let out = bed.drover(&["run", "w", "--yes", "--json"]);
    all_done_on_one_connection_each(&bed, &out);
    assert_eq!(commands(&bed, 3), vec![1, 1, 1], "{out}");
    // Converged: the check alone, one connection and one command more per node.
    bed.drover(&["run", "w", "--yes", "--json"]).expect(exit_code::OK);
    assert_eq!(connections(&bed, 3), vec![2, 2, 2]);
    assert_eq!(commands(&bed, 3), vec![2, 2, 2]);
}

/// Files of every size still travel in the check's session: a small one and one of
/// 10 KB in the steps' script itself (the held shell then reads that script with
/// `head`, past what it reads line by line), one past the inline limit and a binary one
/// on its input after the script. Each arrives exact, and each node still has one
/// connection and one command.
#[test]
fn files_of_every_size_reach_the_held_shell_exact_in_one_command() {
    let bed = logged_bed("");
    let medium: String = (0..400)
        .map(|i| format!("line {i}: 'quoted' \\ $HOME `x`\n"))
        .collect();
    let large = "y".repeat(70 * 1024) + "\n";
    let binary: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    bed.write("workflows/files/small.conf", "port = 80\n");
    bed.write("workflows/files/medium.conf", &medium);
    bed.write("workflows/files/large.conf", &large);
    std::fs::write(bed.site.path().join("workflows/files/blob.bin"), &binary).expect("write blob");
    let copy = |name: &str, file: &str| {
        format!(
            "- name: {name}\n  copy: {{ src: files/{file}, dest: \"{{{{ node.vars.state }}}}/{file}\" }}\n  change: hot\n"
        )
    };
    bed.write(
        "workflows/w.yml",
        &workflow(
            "strategy: { batch: [\"100%\"] }\n",
            &format!(
                "- name: mark\n  run: touch {{{{ node.vars.state }}}}/done\n  check: test -e {{{{ node.vars.state }}}}/done\n  change: hot\n{}{}{}{}",
                copy("small", "small.conf"),
                copy("medium", "medium.conf"),
                copy("large", "large.conf"),
                copy("blob", "blob.bin"),
            ),
        ),
    );
    let out = bed.drover(&["run", "w", "--yes", "--json"]);
    out.expect(exit_code::OK);
    assert_eq!(succeeded(&out), vec![node(0), node(1), node(2)], "{out}");
    for i in 0..3 {
        let read = |f: &str| std::fs::read(bed.state(i).join(f)).expect("read");
        assert_eq!(read("small.conf"), b"port = 80\n");
        assert_eq!(read("medium.conf"), medium.as_bytes(), "node {i}");
        assert_eq!(read("large.conf"), large.as_bytes(), "node {i}");
        assert_eq!(read("blob.bin"), binary, "node {i}");
    }
    assert_eq!(connections(&bed, 3), vec![1, 1, 1], "{out}");
    assert_eq!(commands(&bed, 3), vec![1, 1, 1], "{out}");
}

/// `keep_masters: 0`: every master is closed after its check and each node connects
/// again at its turn (as before masters were kept).
#[test]
fn with_keep_masters_0_each_node_reconnects_for_its_turn() {
    let bed = logged_bed("keep_masters: 0");
    one_batch_change(&bed);
    let out = bed.drover(&["run", "w", "--yes", "--json"]);
    out.expect(exit_code::OK);
    assert_eq!(succeeded(&out), vec![node(0), node(1), node(2)], "{out}");
    assert_eq!(connections(&bed, 3), vec![2, 2, 2], "{out}");
    assert_eq!(
        commands(&bed, 3),
        vec![2, 2, 2],
        "the steps had a session of their own"
    );
}

#[test]
fn a_node_whose_turn_comes_after_a_soak_longer_than_the_idle_limit_succeeds() {
    let bed = Bed::start(3, false);
    bed.site_with_config(SHORT_IDLE, "");
    bed.write(
        "workflows/w.yml",
        &workflow(
            "canary: { nodes: [node001], soak: 4s }\nstrategy: { batch: [\"100%\"] }\n",
            "- name: mark\n  run: touch {{ node.vars.state }}/done\n  check: test -e {{ node.vars.state }}/done\n  change: hot\n",
        ),
    );
    let t = Instant::now();
    let out = bed.drover(&["run", "w", "--yes", "--json"]);
    out.expect(exit_code::OK);
    assert!(t.elapsed() >= Duration::from_secs(4), "no soak?\n{out}");
    assert_eq!(out.summary()["outcome"], json!({"outcome": "succeeded"}), "{out}");
    assert_eq!(succeeded(&out), vec![node(0), node(1), node(2)], "{out}");
    assert!((0..3).all(|i| bed.has(i, "done")), "{out}");
}

#[test]
fn a_step_after_a_drain_longer_than_the_idle_limit_succeeds() {
    let bed = Bed::start(1, true);
    bed.site_with_config(SHORT_IDLE, "");
    // The hot step opens the master; the drain then keeps it idle for 4 s.
    bed.write(
        "workflows/w.yml",
        &workflow(
            "strategy: { batch: [\"100%\"] }\n",
            "- name: before\n  run: touch {{ node.vars.state }}/before\n  check: test -e {{ node.vars.state }}/before\n  change: hot\n\
             - name: after\n  run: touch {{ node.vars.state }}/after\n  check: test -e {{ node.vars.state }}/after\n  change: drain\n",
        ),
    );
    let sched = bed.sched.as_ref().expect("scheduler");
    sched.set_job(&node(0), Duration::from_secs(4)).expect("job");
    let t = Instant::now();
    let out = bed.drover(&["run", "w", "--yes", "--json", "--tags", "hot,drain"]);
    out.expect(exit_code::OK);
    assert!(
        t.elapsed() >= Duration::from_secs(4),
        "the drain did not wait for the job\n{out}"
    );
    assert!(bed.has(0, "before") && bed.has(0, "after"), "{out}");
    assert_eq!(sched.state(&node(0)), "idle", "{out}");
}

#[test]
fn a_retry_after_the_master_was_killed_succeeds() {
    let bed = Bed::start(1, false);
    bed.site_with_config("", "");
    // The first attempt kills the master carrying it (the only ssh master of this drover:
    // its control dir is /tmp/drover-<pid>/), so the step loses its connection.
    let steps = "\
- name: flaky
  run: |
    echo x >> {{ node.vars.state }}/tries
    if [ ! -e {{ node.vars.state }}/killed ]; then
      touch {{ node.vars.state }}/killed
      pkill -KILL -f \"drover-$(cat {{ node.vars.state }}/drover-pid)/\"
      sleep 5
    fi
  change: hot
";
    bed.write(
        "workflows/w.yml",
        &workflow(
            "strategy:\n  batch: [\"100%\"]\n  retries: { count: 2, delay: 1s, backoff: 1.0 }\n",
            steps,
        ),
    );
    let mut run = bed.spawn(&["run", "w", "--yes", "--json"]);
    std::fs::write(bed.state(0).join("drover-pid"), run.pid().to_string()).expect("pid file");
    run.wait_for_file(&bed.state(0).join("killed"));
    let out = run.finish();
    out.expect(exit_code::OK);
    let tries = std::fs::read_to_string(bed.state(0).join("tries")).expect("tries");
    assert_eq!(tries.lines().count(), 2, "{out}");
    let failed: Vec<String> = out
        .events("step_finished")
        .iter()
        .map(|e| e["status"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(failed, vec!["failed", "ok"], "{out}");
}

#[test]
fn an_aborted_step_stops_its_remote_command() {
    let bed = Bed::start(1, false);
    bed.site_with_config("", "");
    let steps = "\
- name: long
  run: touch {{ node.vars.state }}/started; sleep 3171; echo never
  change: hot
";
    bed.write(
        "workflows/w.yml",
        &workflow("strategy: { batch: [\"100%\"] }\n", steps),
    );
    let mut run = bed.spawn(&["run", "w", "--yes", "--json"]);
    run.wait_for_file(&bed.state(0).join("started"));
    assert!(!processes("sleep 3171").is_empty(), "the step does not run");
    run.signal("INT");
    std::thread::sleep(Duration::from_millis(300));
    run.signal("INT");
    let out = run.finish();
    assert_eq!(out.code, exit_code::INTERRUPTED, "{out}");
    // drover waited for the kill before it exited: nothing is left to wait for.
    assert_eq!(processes("sleep 3171"), "", "{out}");
}

#[test]
fn an_aborted_local_step_stops_its_whole_process_group() {
    let bed = Bed::start(1, false);
    bed.site_with_config("", "");
    let steps = "\
- name: long
  run: touch {{ node.vars.state }}/started; sleep 3172; echo never
  change: hot
";
    bed.write(
        "workflows/w.yml",
        &workflow("strategy: { batch: [\"100%\"] }\n", steps),
    );
    let mut run = bed.spawn(&[
        "run",
        "w",
        "--yes",
        "--json",
        "--transport",
        "local",
        "--allow-local",
    ]);
    run.wait_for_file(&bed.state(0).join("started"));
    run.signal("INT");
    std::thread::sleep(Duration::from_millis(300));
    run.signal("INT");
    let out = run.finish();
    assert_eq!(out.code, exit_code::INTERRUPTED, "{out}");
    assert_eq!(processes("sleep 3172"), "", "{out}");
}

#[test]
fn a_killed_controllers_control_dir_and_masters_are_cleaned_up_by_the_next_start() {
    let bed = Bed::start(1, false);
    bed.site_with_config("", "");
    let steps = "\
- name: long
  run: touch {{ node.vars.state }}/started; sleep 20
  change: hot
";
    bed.write(
        "workflows/w.yml",
        &workflow("strategy: { batch: [\"100%\"] }\n", steps),
    );
    let mut run = bed.spawn(&["run", "w", "--yes", "--json"]);
    run.wait_for_file(&bed.state(0).join("started"));
    let dir = std::env::temp_dir().join(format!("drover-{}", run.pid()));
    let pattern = format!("{}/", dir.display());
    assert!(dir.is_dir());
    run.signal("KILL");
    let _ = run.finish();
    assert!(dir.is_dir(), "nothing left behind to clean up?");
    assert!(
        !processes(&pattern).is_empty(),
        "the master did not outlive its controller"
    );
    bed.drover(&["check", "w"]);
    assert!(!dir.exists(), "{} is still there", dir.display());
    let t = Instant::now();
    while !processes(&pattern).is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "masters left: {}",
            processes(&pattern)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Any command cleans up after a dead drover, also one that opens no connection
/// (`runs list` right after a crash was where a reviewer looked first).
#[test]
fn a_dead_controllers_control_dir_goes_at_the_next_start_of_any_command() {
    let tmp = tempfile::tempdir().expect("tmp");
    let site = tempfile::tempdir().expect("site");
    // A pid above the kernel's hard pid limit: never alive.
    let dead = tmp.path().join("drover-4194305");
    std::fs::create_dir(&dead).expect("mkdir");
    std::fs::write(dead.join("owner"), "4194305 1\n").expect("owner");
    let live = tmp.path().join(format!("drover-{}", std::process::id()));
    std::fs::create_dir(&live).expect("mkdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["runs", "list", "--site"])
        .arg(site.path())
        .env("TMPDIR", tmp.path())
        .output()
        .expect("run drover");
    assert!(!dead.exists(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(live.exists(), "a live controller's dir stays");
}

/// A canary that soaks 3 s, then the rest in one batch: the bulk nodes' checks wait,
/// held, through the soak.
fn held_through_a_soak(bed: &Bed, soak: &str) {
    bed.write("workflows/files/app.conf", "port = 80\n");
    bed.write(
        "workflows/w.yml",
        &workflow(
            &format!("canary: {{ nodes: [node001], soak: {soak} }}\nstrategy: {{ batch: [\"100%\"] }}\n"),
            "- name: mark\n  run: touch {{ node.vars.state }}/done\n  check: test -e {{ node.vars.state }}/done\n  change: hot\n\
             - name: conf\n  copy: { src: files/app.conf, dest: \"{{ node.vars.state }}/app.conf\" }\n  change: hot\n",
        ),
    );
}

/// The held shell of node `i` (its check script, waiting for its steps) and the ticker
/// it forked, which has the same command line.
fn held_shells(bed: &Bed, i: usize) -> String {
    processes(&format!("{}/done.*read -r _len _e", bed.state(i).display()))
}

/// A held shell that dies while its node waits for its turn (killed here; a reboot or
/// an OOM kill on a real node) costs nothing but a session: the node's steps run in one
/// of their own, and its stopped ticker goes with it.
#[test]
fn a_held_shell_that_dies_while_its_node_waits_is_replaced_by_a_session_of_its_own() {
    let bed = logged_bed("");
    held_through_a_soak(&bed, "3s");
    let mut run = bed.spawn(&["run", "w", "--yes", "--json"]);
    run.wait_for_file(&bed.state(0).join("done"));
    for i in [1, 2] {
        let shells = held_shells(&bed, i);
        assert!(!shells.is_empty(), "node {i} holds no shell");
        for line in shells.lines() {
            let pid = line.split_whitespace().next().expect("pid");
            let _ = std::process::Command::new("kill").args(["-KILL", pid]).status();
        }
    }
    let out = run.finish();
    all_done_on_one_connection_each(&bed, &out);
    assert_eq!(commands(&bed, 3), vec![1, 2, 2], "{out}");
    for i in [1, 2] {
        assert_eq!(held_shells(&bed, i), "", "node {i}: a shell or ticker is left");
    }
}

/// A controller killed while nodes wait, held, for their turn: each held shell's input
/// closes with the controller, and it exits at once with its ticker, running nothing.
#[test]
fn a_killed_controllers_held_shells_exit_and_run_nothing() {
    let bed = Bed::start(3, false);
    bed.site_with_config("", "");
    held_through_a_soak(&bed, "60s");
    let mut run = bed.spawn(&["run", "w", "--yes", "--json"]);
    run.wait_for_file(&bed.state(0).join("done"));
    let t = Instant::now();
    while held_shells(&bed, 1).is_empty() || held_shells(&bed, 2).is_empty() {
        assert!(t.elapsed() < Duration::from_secs(10), "no held shells");
        std::thread::sleep(Duration::from_millis(20));
    }
    run.signal("KILL");
    let _ = run.finish();
    let t = Instant::now();
    while !(held_shells(&bed, 1).is_empty() && held_shells(&bed, 2).is_empty()) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "held shells left: {} {}",
            held_shells(&bed, 1),
            held_shells(&bed, 2)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !bed.has(1, "done") && !bed.has(2, "done"),
        "a held node ran its steps"
    );
    // The next start cleans up the dead controller's masters, as ever.
    bed.drover(&["check", "w"]);
}

/// A step that leaves a process running (a daemon started by hand or by an init
/// script) neither keeps the node locked for later runs nor holds its own run until
/// that process ends: with its output redirected, and with the step's own output still
/// open (the process inherited it); a lone step (a command of its own) and a step in a
/// script of two. The processes live on.
#[test]
fn a_process_a_step_leaves_running_neither_locks_the_node_nor_holds_the_run() {
    let bed = logged_bed("");
    let lives = Duration::from_secs(40);
    let secs = lives.as_secs();
    let step = |name: &str, run: &str| {
        format!(
            "- name: {name}\n  run: \"{run} echo started; touch {{{{ node.vars.state }}}}/{name}\"\n  check: test -e {{{{ node.vars.state }}}}/{name}\n  change: hot\n"
        )
    };
    let strategy = "strategy: { batch: [\"100%\"] }\n";
    // Each left-behind process says where it is (`$!`, in a file of its node).
    let left = |name: &str, quiet: bool| {
        let out = if quiet { " >/dev/null 2>&1 </dev/null" } else { "" };
        format!("sleep {secs}{out} & echo $! > {{{{ node.vars.state }}}}/{name}.pid;")
    };
    let cases = [
        ("quiet", left("quiet", true), false),
        ("inherits", left("inherits", false), false),
        ("quiet_in_script", left("quiet_in_script", true), true),
        ("inherits_in_script", left("inherits_in_script", false), true),
    ];
    for (name, run, scripted) in &cases {
        let mut steps = step(name, run);
        if *scripted {
            steps.push_str(&step(&format!("{name}_after"), ""));
        }
        bed.write("workflows/w.yml", &workflow(strategy, &steps));
        let t = Instant::now();
        let out = bed.drover(&["run", "w", "--yes", "--json"]);
        out.expect(exit_code::OK);
        assert!((0..3).all(|i| bed.has(i, name)), "{name}: {out}");
        assert!(
            t.elapsed() < lives / 2,
            "{name}: the run waited for the process: {:?}",
            t.elapsed()
        );
        // What the step printed before it ended is its output, in the run log.
        let list = bed.drover(&["runs", "list", "--json"]);
        let listed: serde_json::Value = serde_json::from_str(list.stdout.trim()).expect("runs list JSON");
        let id = listed[0]["id"].as_str().expect("run id").to_string();
        let log = bed.drover(&["runs", "logs", &id]);
        for i in 0..3 {
            assert!(
                log.stdout.lines().any(|l| l == format!("{}: started", node(i))),
                "{name}: {}",
                log.stdout
            );
        }
        // A later run on the same nodes takes the lock at once.
        let again = format!("{name}_again");
        bed.write("workflows/w.yml", &workflow(strategy, &step(&again, "")));
        let t = Instant::now();
        bed.drover(&["run", "w", "--yes", "--json"]).expect(exit_code::OK);
        assert!((0..3).all(|i| bed.has(i, &again)), "{name}");
        assert!(
            t.elapsed() < lives / 2,
            "{name}: the next run waited for the lock: {:?}",
            t.elapsed()
        );
    }
    // Every left-behind process still runs; then it is stopped.
    for (name, _, _) in &cases {
        for i in 0..3 {
            let pid = std::fs::read_to_string(bed.state(i).join(format!("{name}.pid"))).expect("pid file");
            let pid = pid.trim();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            assert_eq!(
                cmdline,
                format!("sleep\0{secs}\0").into_bytes(),
                "{name} on {}",
                node(i)
            );
            let _ = std::process::Command::new("kill").arg(pid).status();
        }
    }
}
