//! drover against a real Slurm cluster (`drover_testbed::SlurmCluster`: slurmctld and one
//! slurmd per testbed node on this host, each node reachable over its own sshd): jobs are
//! short sleeps submitted with `sbatch` while the rollout runs, job outcomes come from
//! `jobcomp/filetxt`, and an independent monitor samples `sinfo` for the budgets.
//!
//! Without Slurm (not installed, or not root) the tests skip, unless
//! `DROVER_REQUIRE_SLURM=1` (as `.ci/run` sets), which makes that a failure.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use drover_testbed::{RebootService, SlurmCluster, SlurmMonitor, Testbed, slurm_unavailable};
use serde_json::{Value, json};

/// Whether the Slurm tests can run; a skip is printed, a required cluster panics.
fn slurm_here() -> bool {
    match slurm_unavailable() {
        None => true,
        Some(why) if std::env::var("DROVER_REQUIRE_SLURM").is_ok_and(|v| v == "1") => {
            panic!("DROVER_REQUIRE_SLURM=1 but Slurm cannot run here: {why}")
        }
        Some(why) => {
            eprintln!("skipped: {why}");
            false
        }
    }
}

/// A testbed, a Slurm cluster over its nodes, a reboot service and a site directory.
struct SlurmBed {
    slurm: SlurmCluster,
    reboots: RebootService,
    tb: Testbed,
    site: tempfile::TempDir,
    _tmp: tempfile::TempDir,
}

impl SlurmBed {
    fn start(n: usize, partitions: &[(&str, Vec<usize>)]) -> SlurmBed {
        let tmp = tempfile::tempdir().expect("tempdir");
        let tb = Testbed::start(&tmp.path().join("tb"), n).expect("start testbed");
        let slurm = SlurmCluster::start(
            &tmp.path().join("slurm"),
            &tb,
            partitions,
            Duration::from_millis(1500),
        )
        .expect("start slurm");
        let reboots = tb
            .reboot_service(Duration::from_millis(1500))
            .expect("reboot service");
        SlurmBed {
            slurm,
            reboots,
            tb,
            site: tempfile::tempdir().expect("site dir"),
            _tmp: tmp,
        }
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.site.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write site file");
    }

    fn path(&self) -> PathBuf {
        self.site.path().to_path_buf()
    }

    /// A site with `scheduler: slurm` (poll every 200ms) reaching every node with its own
    /// identity file and known_hosts (no ssh_config file), and `workflow` as `w.yml`.
    fn site(&self, workflow: &str) {
        self.site_with(
            "drain: { scheduler: slurm, poll_interval: 200ms, timeout: 60s }\n",
            workflow,
        );
    }

    fn site_with(&self, drain: &str, workflow: &str) {
        self.write(
            "drover.yml",
            &format!(
                "inventory: inventory.yml\nworkflows: workflows\n\
                 env: {{ SLURM_CONF: {} }}\n{drain}",
                json!(self.slurm.conf().display().to_string())
            ),
        );
        self.write("inventory.yml", &self.tb.inventory_yaml_direct(true));
        self.write("workflows/w.yml", workflow);
    }

    /// `drover ARGS --site SITE` with `--json` and `--yes`.
    fn drover(&self, args: &[&str]) -> Out {
        let out = Command::new(env!("CARGO_BIN_EXE_drover"))
            .args(args)
            .arg("--site")
            .arg(self.site.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run drover");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Submits `secs`-long jobs every `every` until stopped; returns how many.
    fn job_stream(&self, secs: f64, every: Duration) -> JobStream {
        let stop = Arc::new(AtomicBool::new(false));
        let conf = self.slurm.conf();
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut n = 0;
            while !flag.load(Ordering::Relaxed) {
                let ok = Command::new("sbatch")
                    .env("SLURM_CONF", &conf)
                    .args([
                        "--parsable",
                        "-o",
                        "/dev/null",
                        "-t",
                        "1",
                        "--wrap",
                        &format!("sleep {secs}"),
                    ])
                    .stdin(Stdio::null())
                    .output()
                    .is_ok_and(|o| o.status.success());
                if ok {
                    n += 1;
                }
                std::thread::sleep(every);
            }
            n
        });
        JobStream { stop, thread }
    }

    /// Waits until no job is queued or running, then every job's outcome.
    fn all_jobs_done(&self, limit: Duration) -> Vec<drover_testbed::SlurmJob> {
        let t = Instant::now();
        while self.slurm.queued().unwrap_or(1) > 0 {
            assert!(t.elapsed() < limit, "jobs still queued after {limit:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
        self.slurm.finished_jobs()
    }
}

struct JobStream {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<usize>,
}

impl JobStream {
    fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("job stream")
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Out {
    fn events(&self, kind: &str) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["event"] == kind)
            .collect()
    }
}

/// A drain step that patches the node (fails where `fail` exists), and a reboot that
/// kills the node's jobs and restarts its slurmd (the fixture's reboot), with a health
/// check that slurmd answers again.
fn steps(slurm: &SlurmCluster) -> String {
    format!(
        r#"  - name: patch
    run: |
      if [ -e {{{{ node.vars.state }}}}/fail ]; then echo "disk full" >&2; exit 3; fi
      touch {{{{ node.vars.state }}}}/patched
    check: test -e {{{{ node.vars.state }}}}/patched
    change: drain
  - name: reboot
    reboot:
      command: {reboot} reboot {{{{ node.name }}}}
      boot_id: cat {{{{ node.vars.state }}}}/boot_id
      timeout: 60s
      health:
        - "SLURM_CONF={conf} sinfo -h -n {{{{ node.name }}}} -o %T | grep -qv '[*]'"
    check: test "$(cat {{{{ node.vars.state }}}}/boots)" -ge 1
    change: drain
"#,
        reboot = slurm.reboot_command().display(),
        conf = slurm.conf().display(),
    )
}

fn workflow(strategy: &str, extra: &str, steps: &str) -> String {
    format!(
        "name: w\nversion: 1\ntargets: {{ nodes: [\"@all\"] }}\ncanary: {{ size: 0 }}\nstrategy: {strategy}\n{extra}steps:\n{steps}"
    )
}

/// Every node in service and none drained.
fn all_back(s: &SlurmCluster) {
    s.wait_until(Duration::from_secs(20), |st| st.iter().all(|n| !n.unavailable()))
        .expect("every node back in service");
}

#[test]
fn the_fixture_runs_jobs_and_reboots_nodes() {
    if !slurm_here() {
        return;
    }
    let bed = SlurmBed::start(2, &[("batch", vec![0, 1])]);
    let s = &bed.slurm;
    let job = s.sbatch_sleep(1.0, "node001", 1).expect("sbatch");
    s.wait_until(Duration::from_secs(20), |_| {
        s.finished_jobs().iter().any(|j| j.id == job)
    })
    .expect("job ends");
    assert!(
        s.finished_jobs().iter().all(|j| j.succeeded()),
        "{:?}",
        s.finished_jobs()
    );
    let boots = bed.tb.boots(1).expect("boots");
    s.client(
        "scontrol",
        &["reboot", "ASAP", "nextstate=DOWN", "reason=fixture", "node002"],
    )
    .expect("scontrol reboot");
    bed.reboots
        .wait_for(1, Duration::from_secs(20))
        .expect("node rebooted");
    assert_eq!(bed.tb.boots(1).expect("boots"), boots + 1);
    let after = s
        .wait_until(Duration::from_secs(20), |st| {
            st.iter()
                .any(|n| n.node == "node002" && n.state.starts_with("down"))
        })
        .expect("down after the reboot");
    assert!(
        after.iter().any(|n| n.node == "node001" && n.state == "idle"),
        "{after:?}"
    );
    let _ = bed.path();
}

/// Processes whose environment names `conf` as their SLURM_CONF: every slurmd, job and
/// restart of one testbed cluster.
fn processes_of(conf: &std::path::Path) -> Vec<String> {
    let want = format!("SLURM_CONF={}", conf.display());
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == std::process::id().to_string() {
            continue;
        }
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|v| v == want.as_bytes()) {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            found.push(format!(
                "{pid}: {}",
                String::from_utf8_lossy(&cmd).replace('\0', " ")
            ));
        }
    }
    found
}

/// A cluster dropped while a node's reboot is pending (its slurmd restarts after the
/// node's down time) leaves nothing running: the restart that would have come later
/// must not start a slurmd for a cluster that is gone.
#[test]
fn nothing_outlives_a_slurm_cluster_dropped_mid_reboot() {
    if !slurm_here() {
        return;
    }
    let bed = SlurmBed::start(2, &[("batch", vec![0, 1])]);
    let conf = bed.slurm.conf();
    let reboot = bed
        .slurm
        .command(bed.slurm.reboot_command())
        .args(["reboot", "node002"])
        .status()
        .expect("run the reboot command");
    assert!(reboot.success());
    assert!(!processes_of(&conf).is_empty(), "the cluster runs");
    let SlurmBed {
        slurm, reboots, tb, ..
    } = bed;
    drop(slurm);
    // The pending restart was due 1.5 s after the reboot: give it that and more.
    std::thread::sleep(Duration::from_millis(3000));
    let left = processes_of(&conf);
    drop(reboots);
    drop(tb);
    assert_eq!(left, Vec::<String>::new(), "processes of the dropped cluster");
}

/// The rolling drain change with a reboot across every node while jobs stream in: no job
/// fails or is requeued, every node is back, and Slurm itself never shows more nodes of
/// a partition out than its budget (node001 and node002 are also in `short`, so each
/// counts in two partitions).
#[test]
fn a_rolling_reboot_under_a_job_stream_fails_no_job_and_keeps_the_partition_budget() {
    if !slurm_here() {
        return;
    }
    let bed = SlurmBed::start(3, &[("batch", vec![0, 1, 2]), ("short", vec![0, 1])]);
    bed.site(&workflow(
        "{ batch: [\"100%\"], max_unavailable: 3, max_unavailable_per_partition: 1 }",
        "",
        &steps(&bed.slurm),
    ));
    let monitor = SlurmMonitor::start(&bed.slurm, Duration::from_millis(50)).expect("monitor");
    let stream = bed.job_stream(1.5, Duration::from_millis(600));
    std::thread::sleep(Duration::from_secs(2));
    let out = bed.drover(&["run", "w", "--yes", "--json", "--tags", "drain"]);
    let submitted = stream.finish();
    let seen = monitor.finish();
    assert_eq!(out.code, 0, "{out}");
    let jobs = bed.all_jobs_done(Duration::from_secs(60));
    assert!(submitted >= 5, "only {submitted} jobs were submitted");
    assert_eq!(
        jobs.len(),
        submitted,
        "every job ran once (none requeued): {jobs:?}"
    );
    let bad: Vec<_> = jobs.iter().filter(|j| !j.succeeded()).collect();
    assert!(bad.is_empty(), "jobs failed: {bad:?}\n{out}");
    assert_eq!(bed.slurm.reboots().len(), 3, "{:?}", bed.slurm.reboots());
    all_back(&bed.slurm);
    assert!(seen.samples > 20, "{seen:?}");
    for (p, max) in &seen.max_per_partition {
        assert!(*max <= 1, "partition {p} had {max} nodes out at once: {seen:?}");
    }
    assert_eq!(seen.max_unavailable, 1, "{seen:?}");
}

/// The negative control: the same reboots without a drain kill running jobs, so the
/// test above can fail.
#[test]
fn the_same_reboots_without_a_drain_fail_jobs() {
    if !slurm_here() {
        return;
    }
    let bed = SlurmBed::start(2, &[("batch", vec![0, 1])]);
    // No drain anywhere: the site has none and the workflow says it needs none.
    bed.site_with(
        "",
        &workflow(
            "{ batch: [\"100%\"], max_unavailable: 2 }",
            "drain: { none: \"negative control\" }\n",
            &steps(&bed.slurm),
        ),
    );
    for n in ["node001", "node002"] {
        bed.slurm.sbatch_sleep(30.0, n, 1).expect("sbatch");
    }
    bed.slurm
        .wait_until(Duration::from_secs(20), |st| {
            st.iter().all(|n| n.state == "allocated")
        })
        .expect("both nodes busy");
    let out = bed.drover(&["run", "w", "--yes", "--json", "--tags", "drain"]);
    assert_eq!(out.code, 0, "{out}");
    let jobs = bed.all_jobs_done(Duration::from_secs(60));
    let failed: Vec<_> = jobs.iter().filter(|j| !j.succeeded()).collect();
    assert_eq!(bed.slurm.reboots().len(), 2, "{out}");
    assert_eq!(failed.len(), 2, "the reboots killed both jobs: {jobs:?}\n{out}");
}

/// `order: soonest_idle` is decided again each time a place frees, from the jobs
/// running then: at the plan node003's job ends last (time limit 2 minutes) and
/// node002's sooner (1 minute), but node003's job is cancelled while node001 is worked
/// on, so node003 — idle now — goes before node002.
#[test]
fn least_impact_order_is_decided_again_when_a_place_frees() {
    if !slurm_here() {
        return;
    }
    let bed = SlurmBed::start(3, &[("batch", vec![0, 1, 2])]);
    bed.site(&workflow(
        "{ batch: [\"100%\"], max_unavailable: 1, order: soonest_idle }",
        "",
        "  - name: patch\n    run: sleep 3; touch {{ node.vars.state }}/patched\n    check: test -e {{ node.vars.state }}/patched\n    change: drain\n",
    ));
    bed.slurm.sbatch_sleep(8.0, "node002", 1).expect("sbatch");
    let long = bed.slurm.sbatch_sleep(60.0, "node003", 2).expect("sbatch");
    bed.slurm
        .wait_until(Duration::from_secs(20), |st| {
            st.iter().filter(|n| n.state == "allocated").count() == 2
        })
        .expect("node002 and node003 busy");
    let plan = bed.drover(&["plan", "w"]);
    let at = |text: &str, n: &str| {
        text.find(&format!("    {n}: "))
            .unwrap_or_else(|| panic!("{n}: {text}"))
    };
    assert!(
        at(&plan.stdout, "node002") < at(&plan.stdout, "node003"),
        "{plan}"
    );
    let conf = bed.slurm.conf();
    let canceller = std::thread::spawn(move || {
        // node001 (idle) goes first and takes 3 s; its job ends during that.
        std::thread::sleep(Duration::from_millis(1500));
        Command::new("scancel")
            .env("SLURM_CONF", &conf)
            .arg(long.to_string())
            .status()
            .expect("scancel")
    });
    let out = bed.drover(&["run", "w", "--yes", "--json", "--tags", "drain"]);
    assert!(canceller.join().expect("scancel").success());
    assert_eq!(out.code, 0, "{out}");
    let order: Vec<String> = out
        .events("node_drain")
        .iter()
        .filter(|e| e["state"] == "draining")
        .map(|e| e["node"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(order, ["node001", "node003", "node002"], "{out}");
    all_back(&bed.slurm);
}

/// `order: soonest_idle` drains the idle node first, and `plan` says why.
#[test]
fn least_impact_order_takes_the_idle_node_first() {
    if !slurm_here() {
        return;
    }
    let bed = SlurmBed::start(2, &[("batch", vec![0, 1])]);
    bed.site(&workflow(
        "{ batch: [1], max_unavailable: 1, order: soonest_idle }",
        "",
        "  - name: patch\n    run: touch {{ node.vars.state }}/patched\n    check: test -e {{ node.vars.state }}/patched\n    change: drain\n",
    ));
    bed.slurm.sbatch_sleep(4.0, "node001", 1).expect("sbatch");
    bed.slurm
        .wait_until(Duration::from_secs(20), |st| {
            st.iter().any(|n| n.node == "node001" && n.state == "allocated")
        })
        .expect("node001 busy");
    let plan = bed.drover(&["plan", "w"]);
    assert_eq!(plan.code, 0, "{plan}");
    let order = plan
        .stdout
        .split("order: soonest_idle")
        .nth(1)
        .unwrap_or_else(|| panic!("{plan}"));
    let (first, second) = (
        order.find("node002: idle"),
        order.find("node001: 1 running job, idle by"),
    );
    assert!(first.is_some() && second.is_some() && first < second, "{plan}");
    let out = bed.drover(&["run", "w", "--yes", "--json", "--tags", "drain"]);
    assert_eq!(out.code, 0, "{out}");
    let drained: Vec<String> = out
        .events("node_drain")
        .iter()
        .filter(|e| e["state"] == "draining")
        .map(|e| e["node"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(drained, ["node002", "node001"], "{out}");
    all_back(&bed.slurm);
}

/// A step failing after the drain leaves the node drained, and `sinfo -R` names the
/// step and the run first.
#[test]
fn a_failed_step_leaves_the_node_drained_with_run_and_step_in_the_reason() {
    if !slurm_here() {
        return;
    }
    let bed = SlurmBed::start(2, &[("batch", vec![0, 1])]);
    bed.site(&workflow(
        "{ batch: [\"100%\"], max_unavailable: 1, failure_budget: { per_run: 1 } }",
        "",
        &steps(&bed.slurm),
    ));
    std::fs::write(bed.tb.nodes()[0].state_dir.join("fail"), "").expect("fail file");
    let out = bed.drover(&["run", "w", "--yes", "--json", "--tags", "drain"]);
    assert_ne!(out.code, 0, "{out}");
    let run = out.events("summary")[0]["run"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!run.is_empty(), "{out}");
    let s = bed.slurm.state("node001").expect("state");
    assert_eq!(s.state, "drained", "{s:?}");
    assert!(s.reason.starts_with("drover: patch failed (run "), "{s:?}");
    assert!(s.reason.contains(&run), "{s:?} does not name {run}");
    let short = bed.slurm.client("sinfo", &["-R", "-h"]).expect("sinfo -R");
    assert!(
        short.contains("drover: patch failed"),
        "the default 20 characters: {short}"
    );
    assert_eq!(bed.slurm.state("node002").expect("state").state, "idle");
}

/// The hook commands a site without `scheduler: slurm` would use (shown in the Slurm
/// guide; `scheduler: slurm` runs the same drain and resume commands) do what they say
/// against a real slurmctld: `drained` only once the job is over, `resumed` only once
/// the node takes jobs again.
#[test]
fn the_slurm_hook_commands_work_against_slurmctld() {
    if !slurm_here() {
        return;
    }
    let bed = SlurmBed::start(2, &[("batch", vec![0, 1]), ("short", vec![0])]);
    let hook = |name: &str| -> bool {
        let src = drover::site::SLURM_HOOKS
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .expect("hook");
        let cmd = src
            .replace("{{ node.name }}", "node001")
            .replace("{{ reason }}", "'drover: patch running (run r1, w v1)'");
        bed.slurm
            .command("sh")
            .arg("-c")
            .arg(&cmd)
            .status()
            .expect("sh")
            .success()
    };
    bed.slurm.sbatch_sleep(3.0, "node001", 1).expect("sbatch");
    bed.slurm
        .wait_until(Duration::from_secs(20), |st| {
            st.iter().any(|n| n.node == "node001" && n.state == "allocated")
        })
        .expect("node001 busy");
    assert!(hook("resumed"), "allocated takes jobs");
    assert!(hook("drain"));
    assert!(!hook("drained"), "its job still runs");
    assert!(!hook("resumed"), "draining is not in service");
    bed.slurm
        .wait_until(Duration::from_secs(20), |st| {
            st.iter().all(|n| n.node != "node001" || n.state == "drained")
        })
        .expect("drained");
    assert!(hook("drained"), "in both partitions");
    assert_eq!(
        bed.slurm.state("node001").expect("state").reason,
        "drover: patch running (run r1, w v1)"
    );
    assert!(hook("resume"));
    bed.slurm
        .wait_until(Duration::from_secs(20), |st| st.iter().all(|n| n.state == "idle"))
        .expect("idle");
    assert!(hook("resumed"));
    assert!(bed.slurm.finished_jobs().iter().all(|j| j.succeeded()));
}

/// `workflows/kernel-update.yml`'s last health check (slurmd of this boot has
/// registered: `SlurmdStartTime` not older than the boot), as shipped, against a real
/// slurmctld: it passes for a slurmd started after the boot and fails for one that
/// started before it.
#[test]
fn the_shipped_slurmd_registered_health_check_reads_real_scontrol() {
    if !slurm_here() {
        return;
    }
    let bed = SlurmBed::start(1, &[("batch", vec![0])]);
    let wf = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/kernel-update.yml"),
    )
    .expect("read the workflow");
    let start = wf
        .find("test \"$(date -d \"$(scontrol")
        .expect("the health check");
    let check: String = wf[start..]
        .lines()
        .take(2)
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
        .replace("{{ node.name }}", "node001");
    assert!(check.ends_with("+%s)\""), "{check}");
    let run = |cmd: &str| {
        bed.slurm
            .command("sh")
            .arg("-c")
            .arg(cmd)
            .status()
            .expect("sh")
            .success()
    };
    assert!(run(&check), "slurmd started after this host booted: {check}");
    // A boot after slurmd started: the check must wait.
    let later = check.replace("$(uptime -s)", "now + 1 hour");
    assert_ne!(later, check);
    assert!(!run(&later), "{later}");
}

/// A reboot step through Slurm (`via: slurm`) with `boot_id` and `timeout`, and a health
/// check that slurmd answers again.
fn slurm_reboot(slurm: &SlurmCluster, boot_id: &str, timeout: &str) -> String {
    format!(
        r#"  - name: reboot
    reboot:
      via: slurm
      boot_id: {boot_id}
      timeout: {timeout}
      health:
        - "SLURM_CONF={conf} sinfo -h -n {{{{ node.name }}}} -o %T | grep -qv '[*]'"
    check: test "$(cat {{{{ node.vars.state }}}}/boots)" -ge 1
    change: drain
"#,
        conf = slurm.conf().display()
    )
}

/// `reboot: { via: slurm }`: slurmctld reboots each node (`scontrol reboot ASAP
/// nextstate=DOWN`, the fixture's `RebootProgram`) once, drained first, while jobs stream
/// in; the run reports Slurm's `reboot issued`, each node comes back with a new boot id,
/// passes its health check over SSH and is resumed out of Slurm's `down`; no job fails.
#[test]
fn a_drain_change_rebooting_via_slurm_reboots_each_node_once_and_fails_no_job() {
    if !slurm_here() {
        return;
    }
    let bed = SlurmBed::start(2, &[("batch", vec![0, 1])]);
    bed.site(&workflow(
        "{ batch: [\"100%\"], max_unavailable: 1 }",
        "",
        &slurm_reboot(&bed.slurm, "cat {{ node.vars.state }}/boot_id", "60s"),
    ));
    let boots: Vec<u32> = (0..2).map(|i| bed.tb.boots(i).expect("boots")).collect();
    let stream = bed.job_stream(1.0, Duration::from_millis(700));
    std::thread::sleep(Duration::from_secs(2));
    let out = bed.drover(&["run", "w", "--yes", "--json", "--tags", "drain"]);
    let submitted = stream.finish();
    assert_eq!(out.code, 0, "{out}");
    let reboots = bed.slurm.reboots();
    assert_eq!(
        reboots,
        [("node001".to_string(), 1), ("node002".to_string(), 1)].into(),
        "{out}"
    );
    for (i, before) in boots.iter().enumerate() {
        assert_eq!(bed.tb.boots(i).expect("boots"), before + 1, "node {i}: {out}");
    }
    let states = |node: &str| -> Vec<String> {
        out.events("node_drain")
            .iter()
            .filter(|e| e["node"] == node)
            .map(|e| e["state"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    for n in ["node001", "node002"] {
        let s = states(n);
        let at = |st: &str| s.iter().position(|x| x == st);
        assert!(
            at("rebooting") < at("reboot issued")
                && at("reboot issued") < at("back")
                && at("back") < at("resumed")
                && at("rebooting").is_some(),
            "{n}: {s:?}\n{out}"
        );
    }
    let issued = out
        .events("node_drain")
        .into_iter()
        .find(|e| e["state"] == "reboot issued")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        issued["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("Slurm shows node00") && d.contains("(drover: rebooting (run ")),
        "Slurm's reason names the run: {issued}"
    );
    bed.slurm
        .wait_until(Duration::from_secs(20), |st| st.iter().all(|n| n.state == "idle"))
        .expect("every node idle");
    let jobs = bed.all_jobs_done(Duration::from_secs(60));
    assert!(submitted >= 3, "only {submitted} jobs were submitted");
    assert_eq!(
        jobs.len(),
        submitted,
        "every job ran once (none requeued): {jobs:?}"
    );
    let bad: Vec<_> = jobs.iter().filter(|j| !j.succeeded()).collect();
    assert!(bad.is_empty(), "jobs failed: {bad:?}\n{out}");
}

/// A Slurm reboot that drover cannot confirm (the boot id never changes) runs out at the
/// step's `timeout`: the run reports `reboot timed out` with the state Slurm last showed,
/// the node fails and stays out of service for a human, the other is not touched.
#[test]
fn a_reboot_via_slurm_that_never_shows_a_new_boot_id_reports_reboot_timed_out() {
    if !slurm_here() {
        return;
    }
    let bed = SlurmBed::start(2, &[("batch", vec![0, 1])]);
    bed.site(&workflow(
        "{ batch: [1], max_unavailable: 1, failure_budget: { per_run: 1 } }",
        "",
        &slurm_reboot(&bed.slurm, "echo same-boot", "6s"),
    ));
    let out = bed.drover(&["run", "w", "--yes", "--json", "--tags", "drain"]);
    assert_ne!(out.code, 0, "{out}");
    let timed_out: Vec<Value> = out
        .events("node_drain")
        .into_iter()
        .filter(|e| e["state"] == "reboot timed out")
        .collect();
    assert_eq!(timed_out.len(), 1, "{out}");
    assert_eq!(timed_out[0]["node"], "node001", "{out}");
    let detail = timed_out[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("not back within 6s; Slurm shows node001 "),
        "{detail}"
    );
    // Slurm did reboot it (the fixture's RebootProgram ran), once.
    assert_eq!(bed.slurm.reboots().get("node001"), Some(&1), "{out}");
    assert_eq!(bed.slurm.reboots().get("node002"), None, "{out}");
    let s = bed.slurm.state("node001").expect("state");
    assert!(s.unavailable(), "left out of service: {s:?}");
    assert!(s.reason.starts_with("drover: reboot failed (run "), "{s:?}");
    assert_eq!(bed.slurm.state("node002").expect("state").state, "idle");
}

/// The controller dies right after slurmctld took the reboot: `drover runs resume`
/// finds the node recorded `rebooting` with its old boot id, waits for the new one
/// instead of asking Slurm again, checks its health and resumes it out of `down`. Each
/// node reboots exactly once.
#[test]
fn a_controller_dying_after_scontrol_reboot_resumes_without_a_second_reboot() {
    if !slurm_here() {
        return;
    }
    let bed = SlurmBed::start(2, &[("batch", vec![0, 1])]);
    bed.site(&workflow(
        "{ batch: [\"100%\"], max_unavailable: 1 }",
        "",
        &slurm_reboot(&bed.slurm, "cat {{ node.vars.state }}/boot_id", "60s"),
    ));
    let crashed = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["run", "w", "--yes", "--json", "--tags", "drain", "--site"])
        .arg(bed.path())
        .env("DROVER_FAULT", "abort-after-slurm-reboot=node001")
        .stdin(Stdio::null())
        .output()
        .expect("run drover");
    assert_eq!(crashed.status.code(), None, "died by a signal: {crashed:?}");
    bed.reboots
        .wait_for(1, Duration::from_secs(20))
        .expect("Slurm rebooted node001 after the controller died");
    let list = bed.drover(&["runs", "list", "--json"]);
    let runs: Value = serde_json::from_str(list.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {list}"));
    let id = runs[0]["id"].as_str().expect("run id").to_string();
    let out = bed.drover(&["runs", "resume", &id, "--yes", "--json"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        bed.slurm.reboots(),
        [("node001".to_string(), 1), ("node002".to_string(), 1)].into(),
        "{out}"
    );
    for i in 0..2 {
        assert_eq!(bed.tb.boots(i).expect("boots"), 1, "node {i}: {out}");
    }
    bed.slurm
        .wait_until(Duration::from_secs(20), |st| st.iter().all(|n| n.state == "idle"))
        .expect("every node idle");
}

/// Samples `scontrol show reservation` every `every` until finished: when each drover
/// reservation was first seen, and the most there were at once.
struct ReservationMonitor {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<ReservationsSeen>,
}

#[derive(Debug, Default)]
struct ReservationsSeen {
    /// Name → local time (`%Y-%m-%dT%H:%M:%S`, as Slurm prints times) first seen.
    first_seen: std::collections::BTreeMap<String, String>,
    max_at_once: usize,
    samples: usize,
}

impl ReservationMonitor {
    fn start(slurm: &SlurmCluster, every: Duration) -> ReservationMonitor {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let conf = slurm.conf();
        let thread = std::thread::spawn(move || {
            let mut seen = ReservationsSeen::default();
            while !flag.load(Ordering::Relaxed) {
                let names = drover_reservations(&conf);
                seen.samples += 1;
                seen.max_at_once = seen.max_at_once.max(names.len());
                let now = local_now();
                for n in names {
                    seen.first_seen.entry(n).or_insert_with(|| now.clone());
                }
                std::thread::sleep(every);
            }
            seen
        });
        ReservationMonitor { stop, thread }
    }

    fn finish(self) -> ReservationsSeen {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("reservation monitor")
    }
}

/// The names of drover's reservations now.
fn drover_reservations(conf: &std::path::Path) -> Vec<String> {
    let out = Command::new("scontrol")
        .env("SLURM_CONF", conf)
        .args(["show", "reservation", "-o"])
        .output()
        .expect("scontrol show reservation");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|kv| kv.strip_prefix("ReservationName="))
        .filter(|n| n.starts_with("drover_"))
        .map(str::to_string)
        .collect()
}

fn local_now() -> String {
    let out = Command::new("date")
        .arg("+%Y-%m-%dT%H:%M:%S")
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn run_id(bed: &SlurmBed) -> String {
    let list = bed.drover(&["runs", "list", "--json"]);
    let runs: Value = serde_json::from_str(list.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {list}"));
    runs[0]["id"].as_str().expect("run id").to_string()
}

const RESERVATION_DRAIN: &str =
    "drain: { scheduler: slurm, mode: reservation, poll_interval: 200ms, timeout: 120s }\n";

/// `drain.mode: reservation` under a job stream: each node gets a maintenance
/// reservation from its running job's time limit (2 minutes away), keeps taking jobs
/// that end before it — node001 runs stream jobs after its reservation is made — and is
/// drained once idle (the stream stops), rebooted and resumed. No job fails, at most one
/// reservation exists at a time (the budget), and none is left.
#[test]
fn drain_by_reservation_keeps_the_node_working_and_leaves_no_reservation() {
    if !slurm_here() {
        return;
    }
    let bed = SlurmBed::start(2, &[("batch", vec![0, 1])]);
    bed.site_with(
        RESERVATION_DRAIN,
        &workflow("{ batch: [1], max_unavailable: 1 }", "", &steps(&bed.slurm)),
    );
    let plan = bed.drover(&["plan", "w"]);
    assert_eq!(plan.code, 0, "{plan}");
    assert!(plan.stdout.contains("drain: slurm, by reservation"), "{plan}");
    // A long time limit on each node: its reservation starts two minutes away, so
    // jobs of a one-minute limit still fit before it.
    for n in ["node001", "node002"] {
        bed.slurm.sbatch_sleep(3.0, n, 2).expect("sbatch");
    }
    bed.slurm
        .wait_until(Duration::from_secs(20), |st| {
            st.iter().all(|n| n.state == "allocated")
        })
        .expect("both nodes busy");
    let reservations = ReservationMonitor::start(&bed.slurm, Duration::from_millis(100));
    let monitor = SlurmMonitor::start(&bed.slurm, Duration::from_millis(50)).expect("monitor");
    let stream = bed.job_stream(1.0, Duration::from_millis(400));
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(9));
        stream.finish()
    });
    let out = bed.drover(&["run", "w", "--yes", "--json", "--tags", "drain"]);
    let submitted = stopper.join().expect("stream") + 2;
    let seen = monitor.finish();
    let res = reservations.finish();
    assert_eq!(out.code, 0, "{out}");
    let id = run_id(&bed);
    let jobs = bed.all_jobs_done(Duration::from_secs(60));
    assert_eq!(jobs.len(), submitted, "every job ran once: {jobs:?}");
    let bad: Vec<_> = jobs.iter().filter(|j| !j.succeeded()).collect();
    assert!(bad.is_empty(), "jobs failed: {bad:?}\n{out}");
    let name = |n: &str| format!("drover_{id}_{n}");
    assert_eq!(
        res.first_seen.keys().cloned().collect::<Vec<_>>(),
        [name("node001"), name("node002")],
        "{res:?}"
    );
    assert_eq!(res.max_at_once, 1, "{res:?}");
    // Jobs started on node001 after its reservation was made: the node kept working.
    let made = &res.first_seen[&name("node001")];
    let after: Vec<_> = jobs
        .iter()
        .filter(|j| j.nodes == "node001" && j.start.as_str() > made.as_str())
        .collect();
    assert!(
        !after.is_empty(),
        "no job ran on node001 after {made}: {jobs:?}\n{out}"
    );
    assert_eq!(drover_reservations(&bed.slurm.conf()), Vec::<String>::new());
    assert_eq!(bed.slurm.reboots().len(), 2, "{out}");
    all_back(&bed.slurm);
    assert_eq!(seen.max_unavailable, 1, "{seen:?}");
    let states: Vec<String> = out
        .events("node_drain")
        .iter()
        .filter(|e| e["node"] == "node001")
        .map(|e| e["state"].as_str().unwrap_or_default().to_string())
        .collect();
    let at = |s: &str| {
        states
            .iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("no {s}: {states:?}"))
    };
    assert!(at("reserved") < at("draining"), "{states:?}");
    assert!(at("drained") < at("unreserved"), "{states:?}");
    assert!(at("unreserved") < at("resumed"), "{states:?}");
}

/// Reservation mode, a step failing after the drain: the node stays drained with the
/// failure as its reason (held for a human), and its reservation is deleted with a
/// reason, so no maintenance reservation outlives the turn; the other node is untouched.
#[test]
fn a_failed_step_under_reservation_mode_holds_the_node_drained_and_deletes_its_reservation() {
    if !slurm_here() {
        return;
    }
    let bed = SlurmBed::start(2, &[("batch", vec![0, 1])]);
    bed.site_with(
        RESERVATION_DRAIN,
        &workflow(
            "{ batch: [\"100%\"], max_unavailable: 1, failure_budget: { per_run: 1 } }",
            "",
            &steps(&bed.slurm),
        ),
    );
    std::fs::write(bed.tb.nodes()[0].state_dir.join("fail"), "").expect("fail file");
    let out = run_reserving_node001(&bed);
    assert_ne!(out.code, 0, "{out}");
    let s = bed.slurm.state("node001").expect("state");
    assert_eq!(s.state, "drained", "{s:?}");
    assert!(s.reason.starts_with("drover: patch failed (run "), "{s:?}");
    assert_eq!(bed.slurm.state("node002").expect("state").state, "idle");
}

/// Runs the drain steps of `w` (reservation mode) and checks what every turn of
/// node001 that does not end in service must do: it was reserved, its reservation was
/// deleted at its turn (one `unreserved` event; the sweep at the run's end is only the
/// backstop), and no reservation outlives the run.
fn run_reserving_node001(bed: &SlurmBed) -> Out {
    let reservations = ReservationMonitor::start(&bed.slurm, Duration::from_millis(100));
    let out = bed.drover(&["run", "w", "--yes", "--json", "--tags", "drain"]);
    let res = reservations.finish();
    let id = run_id(bed);
    assert!(
        res.first_seen.contains_key(&format!("drover_{id}_node001")),
        "node001 was reserved: {res:?}\n{out}"
    );
    assert_eq!(
        drover_reservations(&bed.slurm.conf()),
        Vec::<String>::new(),
        "a reservation outlived the run\n{out}"
    );
    let unreserved = out
        .events("node_drain")
        .into_iter()
        .filter(|e| e["node"] == "node001" && e["state"] == "unreserved")
        .count();
    assert_eq!(unreserved, 1, "{out}");
    out
}

/// Reservation mode, a node whose job outlasts the drain timeout. `on_timeout: give_up`:
/// its reservation is deleted and it keeps working, never drained (skipped). `hold`: it
/// is drained for a human with the reason, and its reservation is deleted too (the
/// drain, not a reservation, keeps new jobs off it). Either way no reservation outlives
/// the run, and the node whose turn came after it is done.
#[test]
fn a_drain_timeout_under_reservation_mode_leaves_no_reservation_given_up_or_held() {
    if !slurm_here() {
        return;
    }
    let bed = SlurmBed::start(2, &[("batch", vec![0, 1])]);
    let wf = workflow(
        "{ batch: [\"100%\"], max_unavailable: 1, failure_budget: { per_run: 1 } }",
        "",
        &steps(&bed.slurm),
    );
    // Far longer than the drain timeout: its reservation would start in 10 minutes.
    bed.slurm.sbatch_sleep(600.0, "node001", 10).expect("sbatch");
    bed.slurm
        .wait_until(Duration::from_secs(20), |st| {
            st.iter().any(|n| n.node == "node001" && n.state == "allocated")
        })
        .expect("node001 busy");
    for on_timeout in ["give_up", "hold"] {
        bed.site_with(
            &format!(
                "drain: {{ scheduler: slurm, mode: reservation, poll_interval: 200ms, timeout: 3s, on_timeout: {on_timeout} }}\n"
            ),
            &wf,
        );
        let out = run_reserving_node001(&bed);
        assert_eq!(out.code, drover::exit_code::NODES_FAILED, "{on_timeout}: {out}");
        let ended: Vec<String> = out
            .events("node_finished")
            .iter()
            .filter(|e| e["node"] == "node001")
            .map(|e| e["state"].as_str().unwrap_or_default().to_string())
            .collect();
        let s = bed.slurm.state("node001").expect("state");
        if on_timeout == "give_up" {
            assert_eq!(ended, ["skipped"], "{out}");
            assert_eq!(s.state, "allocated", "given up, never drained: {s:?}");
            assert!(bed.tb.nodes()[1].state_dir.join("patched").exists(), "{out}");
        } else {
            assert_eq!(ended, ["held"], "{out}");
            assert!(s.state.starts_with("drain"), "held drained: {s:?}");
            assert!(
                s.reason.starts_with("drover: ") && s.reason.contains("drain timed out after 3s"),
                "{s:?}"
            );
        }
        assert!(!bed.tb.nodes()[0].state_dir.join("patched").exists(), "{out}");
    }
}

/// A controller killed (abort, like `kill -9`) right after slurmctld made a node's
/// reservation: `runs resume` finds that reservation and keeps it (no second one), the
/// run ends with every node done and no reservation left. `runs cancel` of such a run
/// deletes it instead.
#[test]
fn a_controller_dying_after_a_reservation_resumes_with_it_and_leaks_none() {
    if !slurm_here() {
        return;
    }
    let bed = SlurmBed::start(2, &[("batch", vec![0, 1])]);
    bed.site_with(
        RESERVATION_DRAIN,
        &workflow(
            "{ batch: [1], max_unavailable: 1 }",
            "",
            "  - name: patch\n    run: touch {{ node.vars.state }}/patched\n    check: test -e {{ node.vars.state }}/patched\n    change: drain\n",
        ),
    );
    let crash = |bed: &SlurmBed| {
        bed.slurm.sbatch_sleep(3.0, "node001", 2).expect("sbatch");
        bed.slurm
            .wait_until(Duration::from_secs(20), |st| {
                st.iter().any(|n| n.node == "node001" && n.state == "allocated")
            })
            .expect("node001 busy");
        let crashed = Command::new(env!("CARGO_BIN_EXE_drover"))
            .args(["run", "w", "--yes", "--json", "--tags", "drain", "--site"])
            .arg(bed.path())
            .env("DROVER_FAULT", "abort-after-reservation=node001")
            .stdin(Stdio::null())
            .output()
            .expect("run drover");
        assert_eq!(crashed.status.code(), None, "died by a signal: {crashed:?}");
        let id = run_id(bed);
        assert_eq!(
            drover_reservations(&bed.slurm.conf()),
            [format!("drover_{id}_node001")],
            "the dead controller's reservation"
        );
        id
    };
    let id = crash(&bed);
    let reservations = ReservationMonitor::start(&bed.slurm, Duration::from_millis(100));
    let out = bed.drover(&["runs", "resume", &id, "--yes", "--json"]);
    let res = reservations.finish();
    assert_eq!(out.code, 0, "{out}");
    let found: Vec<Value> = out
        .events("node_drain")
        .into_iter()
        .filter(|e| e["node"] == "node001" && e["state"] == "reserved")
        .collect();
    assert_eq!(found.len(), 1, "{out}");
    assert!(
        found[0]["detail"].as_str().is_some_and(|d| d.contains("found")),
        "{found:?}"
    );
    assert!(res.max_at_once <= 1, "{res:?}");
    assert_eq!(
        drover_reservations(&bed.slurm.conf()),
        Vec::<String>::new(),
        "{out}"
    );
    all_back(&bed.slurm);
    for i in 0..2 {
        assert!(
            bed.tb.nodes()[i].state_dir.join("patched").exists(),
            "node {i}: {out}"
        );
    }
    // The same crash, then `runs cancel`: the reservation goes with the run.
    for i in 0..2 {
        std::fs::remove_file(bed.tb.nodes()[i].state_dir.join("patched")).expect("unpatch");
    }
    let id = crash(&bed);
    let cancel = bed.drover(&["runs", "cancel", &id]);
    assert_eq!(cancel.code, 0, "{cancel}");
    assert!(cancel.stdout.contains("reservations deleted"), "{cancel}");
    assert_eq!(
        drover_reservations(&bed.slurm.conf()),
        Vec::<String>::new(),
        "{cancel}"
    );
}
