//! `ansible:` steps with the real `ansible-playbook` (pinned ansible-core, installed by
//! `.ci/run` into `/opt/drover-ansible`) against real sshd nodes (the loopback testbed).
//!
//! Where ansible-playbook is looked for: `$DROVER_TEST_ANSIBLE_BIN` (a directory), else
//! `/opt/drover-ansible/bin`. Without it these tests say so on stderr and pass, so a
//! developer's `cargo test` works without Ansible; with `DROVER_REQUIRE_ANSIBLE=1` (which
//! `.ci/run` sets) they fail instead.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drover_testbed::{FakeScheduler, Testbed};
use serde_json::{Value, json};

/// The directory holding `ansible-playbook` and `ansible-vault`, or None (test skipped)
/// when it is missing and CI does not require it.
pub fn ansible_bin() -> Option<PathBuf> {
    let dir = std::env::var_os("DROVER_TEST_ANSIBLE_BIN")
        .map_or_else(|| PathBuf::from("/opt/drover-ansible/bin"), PathBuf::from);
    if dir.join("ansible-playbook").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var("DROVER_REQUIRE_ANSIBLE").as_deref() != Ok("1"),
        "DROVER_REQUIRE_ANSIBLE=1 but {} has no ansible-playbook (see .ci/run)",
        dir.display()
    );
    eprintln!(
        "skipped: no ansible-playbook in {} (set DROVER_TEST_ANSIBLE_BIN, or run .ci/run)",
        dir.display()
    );
    None
}

pub struct Fleet {
    pub tb: Testbed,
    pub site: tempfile::TempDir,
    pub bin: PathBuf,
    pub sched: Option<FakeScheduler>,
    _tmp: tempfile::TempDir,
}

#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
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
    pub fn json(&self) -> Value {
        let last = self
            .stdout
            .lines()
            .rfind(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON\n{self}"));
        serde_json::from_str(last).expect("a JSON line")
    }

    pub fn events(&self, kind: &str) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
            .filter(|e| e["event"] == kind)
            .collect()
    }
}

pub fn node(i: usize) -> String {
    format!("node{:03}", i + 1)
}

impl Fleet {
    /// `n` sshd nodes reached with per-node identity and known_hosts (no ssh_config),
    /// `site_extra` appended to drover.yml; with `drain`, a fake scheduler's hooks.
    pub fn start(bin: PathBuf, n: usize, drain: bool, site_extra: &str) -> Fleet {
        let tmp = tempfile::tempdir().expect("tempdir");
        let tb = Testbed::start(&tmp.path().join("tb"), n).expect("start testbed");
        let names: Vec<String> = (0..n).map(node).collect();
        let sched =
            drain.then(|| FakeScheduler::install(&tmp.path().join("sched"), &names).expect("scheduler"));
        let site = tempfile::tempdir().expect("site dir");
        let f = Fleet {
            tb,
            site,
            bin,
            sched,
            _tmp: tmp,
        };
        let hooks = f
            .sched
            .as_ref()
            .map(|s| s.hooks_yaml("50ms", "30s", "hold"))
            .unwrap_or_default();
        f.write(
            "drover.yml",
            &format!("inventory: inventory.yml\nworkflows: workflows\nssh: {{ connect_timeout: 15s }}\n{hooks}{site_extra}"),
        );
        f.write("inventory.yml", &f.tb.inventory_yaml_direct(true));
        f
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.site.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write site file");
    }

    pub fn state(&self, i: usize) -> PathBuf {
        self.tb.nodes()[i].state_dir.clone()
    }

    pub fn drover(&self, args: &[&str]) -> Out {
        self.drover_env(args, &[])
    }

    pub fn drover_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let io = tempfile::tempdir().expect("io");
        let mut c = Command::new(env!("CARGO_BIN_EXE_drover"));
        c.args(args)
            .arg("--site")
            .arg(self.site.path())
            .env("NO_COLOR", "1")
            .env("DROVER_ANSIBLE_PLAYBOOK", self.bin.join("ansible-playbook"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(io.path().join("out")).expect("out"))
            .stderr(std::fs::File::create(io.path().join("err")).expect("err"));
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("spawn drover");
        let t = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            if t.elapsed() > Duration::from_secs(240) {
                let _ = child.kill();
                panic!("drover {args:?} hung");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let read = |n: &str| std::fs::read_to_string(io.path().join(n)).unwrap_or_default();
        let out = Out {
            code: status.code().unwrap_or(-1),
            stdout: read("out"),
            stderr: read("err"),
        };
        assert!(!out.stderr.contains("panicked"), "{out}");
        out
    }

    /// The text of every run log of the site.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        if let Ok(rd) = std::fs::read_dir(self.site.path().join(".drover/logs")) {
            for e in rd.flatten() {
                s.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        s
    }
}

/// A role of three tasks that writes into the node's state dir.
const ROLE: &str = "\
- name: make the conf dir
  ansible.builtin.file: { path: \"{{ state }}/ansible.d\", state: directory, mode: \"0755\" }
- name: write the motd
  ansible.builtin.copy: { dest: \"{{ state }}/ansible.d/motd\", content: \"managed by ansible via drover\\n\" }
- name: set a line
  ansible.builtin.lineinfile: { path: \"{{ state }}/ansible-conf\", line: \"mode=on\", create: true }
";

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
        .collect()
}

#[test]
fn a_role_runs_as_a_hot_step_and_check_mode_tells_fresh_from_converged() {
    let Some(bin) = ansible_bin() else { return };
    let f = Fleet::start(bin, 2, false, "");
    f.write("roles/motd/tasks/main.yml", ROLE);
    f.write(
        "workflows/w.yml",
        "name: w\nversion: 1\ntargets: { nodes: [\"@all\"] }\ncanary: { size: 0 }\nstrategy: { batch: 2 }\n\
         steps:\n  - name: motd\n    change: hot\n    ansible: { role: ../roles/motd }\n",
    );
    // Fresh nodes: check mode finds all three tasks would change.
    let out = f.drover(&["check", "w", "--json"]);
    assert_eq!(out.code, 0, "{out}");
    let j = out.json();
    assert_eq!(names(&j["HOT"]), vec![node(0), node(1)], "{out}");
    let changes = names(&j["changes"][node(0)]);
    assert_eq!(
        changes,
        vec![
            "step `motd`: task `motd : make the conf dir`",
            "step `motd`: task `motd : write the motd`",
            "step `motd`: task `motd : set a line`"
        ],
        "{out}"
    );
    let human = f.drover(&["check", "w"]);
    assert!(
        human
            .stdout
            .contains("would change step `motd`: task `motd : make the conf dir`"),
        "{human}"
    );
    assert!(
        !f.state(0).join("ansible.d").exists(),
        "check mode changed nothing"
    );

    // The run applies it on both nodes, as a hot step.
    let out = f.drover(&["run", "w", "--yes", "--json"]);
    assert_eq!(out.code, 0, "{out}");
    let finished = out.events("step_finished");
    assert_eq!(finished.len(), 2, "{out}");
    assert!(finished.iter().all(|e| e["status"] == "changed"), "{out}");
    for i in 0..2 {
        assert_eq!(
            std::fs::read_to_string(f.state(i).join("ansible.d/motd")).unwrap(),
            "managed by ansible via drover\n"
        );
        assert_eq!(
            std::fs::read_to_string(f.state(i).join("ansible-conf")).unwrap(),
            "mode=on\n"
        );
    }
    // Ansible's output is in the run log, each line with its node.
    let log = f.logs();
    assert!(
        log.contains(&format!(
            "{}: changed: [{}] motd : write the motd",
            node(0),
            node(0)
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("{}: RECAP [{}] ok=4 changed=3", node(1), node(1))),
        "{log}"
    );

    // Converged: GOOD. A node that drifted is HOT again, the other stays GOOD.
    let out = f.drover(&["check", "w", "--json"]);
    assert_eq!(names(&out.json()["GOOD"]), vec![node(0), node(1)], "{out}");
    std::fs::remove_file(f.state(1).join("ansible-conf")).unwrap();
    let out = f.drover(&["check", "w", "--json"]);
    let j = out.json();
    assert_eq!(names(&j["GOOD"]), vec![node(0)], "{out}");
    assert_eq!(names(&j["HOT"]), vec![node(1)], "{out}");
    assert_eq!(
        names(&j["changes"][node(1)]),
        vec!["step `motd`: task `motd : set a line`"],
        "{out}"
    );
}

#[test]
fn a_failing_task_fails_the_node_with_the_task_name() {
    let Some(bin) = ansible_bin() else { return };
    let f = Fleet::start(bin, 1, false, "");
    f.write(
        "playbooks/site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: first is fine\n      ansible.builtin.command: \"true\"\n    \
         - name: this one breaks\n      ansible.builtin.command: \"sh -c 'echo broken pipe >&2; exit 3'\"\n",
    );
    f.write(
        "workflows/w.yml",
        "name: w\nversion: 1\ntargets: { nodes: [\"@all\"] }\ncanary: { size: 0 }\n\
         steps:\n  - name: play\n    change: hot\n    ansible: { playbook: ../playbooks/site.yml, check_mode: false }\n",
    );
    let out = f.drover(&["run", "w", "--yes", "--json"]);
    assert_eq!(out.code, drover::exit_code::RUN_STOPPED, "{out}");
    let finished = out.events("step_finished");
    assert_eq!(finished.len(), 1, "{out}");
    assert_eq!(finished[0]["status"], "failed");
    let error = finished[0]["error"].as_str().unwrap();
    assert!(error.contains("task `this one breaks` failed"), "{error}");
    assert!(error.contains("broken pipe"), "{error}");
}

#[test]
fn a_drain_tagged_playbook_runs_inside_the_drain_cycle() {
    let Some(bin) = ansible_bin() else { return };
    let f = Fleet::start(bin, 2, true, "");
    let sched = f.sched.as_ref().unwrap().dir().display().to_string();
    // The task records the scheduler's view of its node while it runs; `creates` lets
    // check mode tell (a shell task without it would always report a change).
    f.write(
        "playbooks/firmware.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: flash firmware\n      ansible.builtin.shell:\n        \
         cmd: \"cat {{ sched }}/state/{{ inventory_hostname }} > {{ state }}/state-during\"\n        creates: \"{{ state }}/state-during\"\n",
    );
    f.write(
        "workflows/w.yml",
        &format!(
            "name: w\nversion: 1\ntargets: {{ nodes: [\"@all\"] }}\ncanary: {{ size: 0 }}\nstrategy: {{ batch: 2, max_unavailable: 1 }}\n\
             steps:\n  - name: firmware\n    change: drain\n    ansible: {{ playbook: ../playbooks/firmware.yml, extra_vars: {{ sched: {} }} }}\n",
            json!(sched)
        ),
    );
    let out = f.drover(&["check", "w", "--json"]);
    assert_eq!(names(&out.json()["DRAIN"]), vec![node(0), node(1)], "{out}");
    let out = f.drover(&["run", "w", "--yes", "--tags", "drain", "--json"]);
    assert_eq!(out.code, 0, "{out}");
    let s = f.sched.as_ref().unwrap();
    for i in 0..2 {
        assert_eq!(
            std::fs::read_to_string(f.state(i).join("state-during"))
                .unwrap()
                .trim(),
            "drained",
            "node {i} ran the playbook while drained"
        );
        assert_eq!(s.state(&node(i)), "idle", "resumed after");
        assert_eq!(s.calls(&node(i), "drain"), 1);
        assert_eq!(s.calls(&node(i), "resume"), 1);
    }
    let out = f.drover(&["check", "w", "--json"]);
    assert_eq!(names(&out.json()["GOOD"]), vec![node(0), node(1)], "{out}");
}

#[test]
fn without_ansible_playbook_validation_names_the_step_and_how_to_install() {
    // Needs no Ansible: the point is its absence.
    let site = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| {
        let p = site.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w("drover.yml", "inventory: inventory.yml\n");
    w("inventory.yml", "nodes:\n  n1: { host: 10.0.0.1 }\n");
    w("workflows/site.yml", "- hosts: all\n  tasks: []\n");
    w(
        "workflows/w.yml",
        "name: w\nversion: 1\ntargets: { nodes: [n1] }\nsteps:\n  - name: converge\n    change: hot\n    ansible: { playbook: site.yml }\n",
    );
    let run = |env: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_drover"));
        c.arg("validate")
            .arg(site.path())
            .env("NO_COLOR", "1")
            .env_remove("DROVER_ANSIBLE_PLAYBOOK");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let out = run(&[("PATH", "/nonexistent")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(drover::exit_code::INVALID_CONFIG),
        "{err}"
    );
    assert!(
        err.contains("step `converge` runs Ansible, but `ansible-playbook` is not on PATH"),
        "{err}"
    );
    assert!(err.contains("pip install ansible-core==2.19.14"), "{err}");
    assert!(err.contains("w.yml:7:"), "{err}");
    let out = run(&[("DROVER_ANSIBLE_PLAYBOOK", "/nonexistent/ansible-playbook")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "DROVER_ANSIBLE_PLAYBOOK is `/nonexistent/ansible-playbook`, which is not an executable file"
        ),
        "{err}"
    );
    // Outside the site: refused like a copy source.
    w(
        "workflows/w.yml",
        "name: w\nversion: 1\ntargets: { nodes: [n1] }\nsteps:\n  - name: converge\n    change: hot\n    ansible: { playbook: /etc/hostname }\n",
    );
    let out = run(&[("DROVER_ANSIBLE_PLAYBOOK", "/bin/true")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("outside the site"), "{err}");
}

/// `run` steps on both sides of an `ansible:` step: the runs before it may go to the node
/// as one script, but the playbook runs on the controller in between, so it sees what the
/// steps before it did and the steps after it see what it did.
#[test]
fn an_ansible_step_between_run_steps_runs_in_its_place() {
    let Some(bin) = ansible_bin() else { return };
    let f = Fleet::start(bin, 1, false, "");
    let state = f.state(0).display().to_string();
    f.write(
        "playbooks/middle.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: needs the runs before\n      \
         ansible.builtin.shell: \"cat {{ state }}/one {{ state }}/two > {{ state }}/middle\"\n",
    );
    f.write(
        "workflows/w.yml",
        &format!(
            "name: w\nversion: 1\ntargets: {{ nodes: [\"@all\"] }}\ncanary: {{ size: 0 }}\nsteps:\n  \
             - {{ name: one, change: hot, run: \"echo one > {s}/one\" }}\n  \
             - {{ name: two, change: hot, run: \"echo two > {s}/two\" }}\n  \
             - name: middle\n    change: hot\n    ansible: {{ playbook: ../playbooks/middle.yml, check_mode: false }}\n  \
             - {{ name: three, change: hot, run: \"cp {s}/middle {s}/three\" }}\n  \
             - {{ name: four, change: hot, run: \"cat {s}/three > {s}/four\" }}\n",
            s = json!(state).as_str().unwrap()
        ),
    );
    let out = f.drover(&["run", "w", "--yes", "--json"]);
    assert_eq!(out.code, 0, "{out}");
    let steps: Vec<String> = out
        .events("step_finished")
        .iter()
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(steps, ["one", "two", "middle", "three", "four"], "{out}");
    assert_eq!(
        std::fs::read_to_string(f.state(0).join("four")).unwrap(),
        "one\ntwo\n"
    );
}

/// The inventory drover writes for the node carries its vars and its groups (a play for
/// `hosts: compute` finds it), the step's `inventory_vars`, and rendered `extra_vars`;
/// `tags` and `skip_tags` reach ansible-playbook.
#[test]
fn the_nodes_vars_groups_and_the_steps_tags_reach_the_playbook() {
    let Some(bin) = ansible_bin() else { return };
    let f = Fleet::start(bin, 1, false, "");
    let inv =
        f.tb.inventory_yaml_direct(true)
            .replace("vars: { state:", "vars: { rack: r7, state:")
            .replace("groups:\n", "groups:\n  compute: [node001]\n");
    f.write("inventory.yml", &inv);
    f.write(
        "playbooks/site.yml",
        "- hosts: compute\n  gather_facts: false\n  tasks:\n    \
         - name: record\n      tags: [conf]\n      \
         ansible.builtin.copy: { dest: \"{{ state }}/seen\", content: \"{{ group_names | join(',') }} {{ rack }} {{ iv }} {{ ev }}\\n\" }\n    \
         - name: skipped by skip_tags\n      tags: [conf, slow]\n      \
         ansible.builtin.file: { path: \"{{ state }}/slow\", state: touch }\n    \
         - name: not tagged\n      \
         ansible.builtin.file: { path: \"{{ state }}/untagged\", state: touch }\n",
    );
    f.write(
        "workflows/w.yml",
        "name: w\nversion: 1\ntargets: { nodes: [\"@all\"] }\ncanary: { size: 0 }\nsteps:\n  - name: conf\n    change: hot\n    \
         ansible: { playbook: ../playbooks/site.yml, check_mode: false, tags: [conf], skip_tags: [slow], \
         inventory_vars: { iv: from-step }, extra_vars: { ev: \"{{ node.name }}-{{ node.vars.rack }}\" } }\n",
    );
    let out = f.drover(&["run", "w", "--yes", "--json"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        std::fs::read_to_string(f.state(0).join("seen")).unwrap(),
        "compute r7 from-step node001-r7\n"
    );
    assert!(!f.state(0).join("slow").exists(), "skip_tags: {out}");
    assert!(!f.state(0).join("untagged").exists(), "tags: {out}");
}

/// A task that fails in check mode makes the node ERROR (named in `drover check`); a
/// playbook that outlives the step's `timeout` is stopped and fails the step.
#[test]
fn a_failing_check_is_an_error_and_a_slow_playbook_times_out() {
    let Some(bin) = ansible_bin() else { return };
    let f = Fleet::start(bin, 1, false, "");
    f.write(
        "playbooks/broken.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: refuse\n      ansible.builtin.fail: { msg: disk full }\n",
    );
    f.write(
        "playbooks/slow.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: take long\n      ansible.builtin.command: sleep 60\n",
    );
    let wf = |book: &str, extra: &str| {
        format!(
            "name: w\nversion: 1\ntargets: {{ nodes: [\"@all\"] }}\ncanary: {{ size: 0 }}\nsteps:\n  - name: play\n    change: hot\n{extra}    \
             ansible: {{ playbook: ../playbooks/{book}, check_mode: {} }}\n",
            extra.is_empty()
        )
    };
    f.write("workflows/w.yml", &wf("broken.yml", ""));
    let out = f.drover(&["check", "w", "--json"]);
    let j = out.json();
    assert_eq!(names(&j["ERROR"]), vec![node(0)], "{out}");
    let error = j["errors"][node(0)].as_str().unwrap_or_default();
    assert!(
        error.contains("check of step `play` (ansible --check): task `refuse` failed: disk full"),
        "{out}"
    );

    f.write("workflows/w.yml", &wf("slow.yml", "    timeout: 3s\n"));
    let t = Instant::now();
    let out = f.drover(&["run", "w", "--yes", "--json"]);
    assert_eq!(out.code, drover::exit_code::RUN_STOPPED, "{out}");
    assert!(t.elapsed() < Duration::from_secs(40), "{out}");
    let finished = out.events("step_finished");
    assert_eq!(finished[0]["status"], "failed", "{out}");
    assert!(
        finished[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out"),
        "{out}"
    );
}
