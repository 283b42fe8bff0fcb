//! What drover adds around an `ansible:` step, per node: the same three-task playbook on
//! the same real sshd nodes, run by `ansible-playbook` alone (`serial`) and by drover
//! (an `ansible:` step, one `ansible-playbook --limit NODE` per node, through drover's
//! own ssh master).
//!
//! `nice -n 19 cargo bench --bench ansible_step -- [NODES] [ROUNDS]` (default 4 and 3).
//! ansible-core comes from `$DROVER_TEST_ANSIBLE_BIN` or `/opt/drover-ansible/bin`
//! (`.ci/run` installs it there); without it the bench says so and stops.
//!
//! Every run starts on fresh nodes (the playbook's files removed) with no ssh master
//! alive, so every run changes all three tasks on every node. Measured configurations,
//! each once per round, in an order that rotates from round to round:
//!
//! - `ansible serial 1`: `ansible-playbook` with `serial: 1`, one node after another in
//!   one process (ControlPersist masters, as Ansible's defaults).
//! - `drover batch 1, no check`: `strategy: { batch: 1 }` and `check_mode: false`: the
//!   step only runs the playbook, so the difference to the line above is drover's
//!   wrapping (its own start, plan, state database, ssh master, a Python start per node).
//! - `drover batch 1, check`: the default: before the run, every node's step runs in
//!   `--check --diff` mode to find what would change (drover's change detection), then
//!   the run applies it.
//! - `ansible all` and `drover all, no check`: every node at once (`serial` unset,
//!   `forks` = nodes; drover `batch: 100%`).
//!
//! Per-node overhead = (drover's time - ansible's time) / nodes, from the medians.

#![expect(clippy::unwrap_used, reason = "a benchmark: any failure ends it")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use drover_testbed::Testbed;

const TASKS: &str = "\
- name: make the conf dir
  ansible.builtin.file: { path: \"{{ state }}/ansible.d\", state: directory, mode: \"0755\" }
- name: write the motd
  ansible.builtin.copy: { dest: \"{{ state }}/ansible.d/motd\", content: \"managed by ansible via drover\\n\" }
- name: set a line
  ansible.builtin.lineinfile: { path: \"{{ state }}/ansible-conf\", line: \"mode=on\", create: true }
";

#[derive(Clone, Copy, PartialEq)]
enum Config {
    AnsibleSerial1,
    DroverBatch1,
    DroverBatch1Check,
    AnsibleAll,
    DroverAll,
}

impl Config {
    const ALL: [Config; 5] = [
        Config::AnsibleSerial1,
        Config::DroverBatch1,
        Config::DroverBatch1Check,
        Config::AnsibleAll,
        Config::DroverAll,
    ];

    fn name(self) -> &'static str {
        match self {
            Config::AnsibleSerial1 => "ansible serial 1",
            Config::DroverBatch1 => "drover batch 1, no check",
            Config::DroverBatch1Check => "drover batch 1, check",
            Config::AnsibleAll => "ansible all",
            Config::DroverAll => "drover all, no check",
        }
    }
}

struct Bench {
    bed: Testbed,
    dir: PathBuf,
    ansible: PathBuf,
    drover: PathBuf,
    n: usize,
}

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

impl Bench {
    fn setup(bed: Testbed, dir: PathBuf, ansible: PathBuf, drover: PathBuf) -> Bench {
        let n = bed.nodes().len();
        let b = Bench {
            bed,
            dir,
            ansible,
            drover,
            n,
        };
        let d = &b.dir;
        write(&d.join("site/playbooks/tasks.yml"), TASKS);
        for (file, serial) in [("site.yml", ""), ("serial1.yml", "  serial: 1\n")] {
            write(
                &d.join("site/playbooks").join(file),
                &format!(
                    "- hosts: all\n  gather_facts: false\n{serial}  tasks:\n    - ansible.builtin.import_tasks: tasks.yml\n"
                ),
            );
        }
        // Plain Ansible reaches each node as drover does: the node's key, its
        // known_hosts, strict host keys, batch mode; a ControlPersist master per node.
        let mut inv = String::from("all:\n  hosts:\n");
        for (i, node) in b.bed.nodes().iter().enumerate() {
            let args = format!(
                "-o ControlMaster=auto -o ControlPersist=60s -o BatchMode=yes -o StrictHostKeyChecking=yes \
                 -o IdentitiesOnly=yes -o UserKnownHostsFile={} -i {}",
                b.bed.node_known_hosts(i).display(),
                b.bed.identity().display()
            );
            inv += &format!(
                "    {}:\n      ansible_host: {}\n      ansible_port: {}\n      ansible_user: {}\n      \
                 ansible_ssh_args: {:?}\n      ansible_python_interpreter: auto_silent\n      state: {:?}\n",
                node.name,
                node.host,
                node.port,
                b.bed.user(),
                args,
                node.state_dir.display().to_string()
            );
        }
        write(&d.join("ansible/inventory.yml"), &inv);
        write(
            &d.join("site/drover.yml"),
            &format!(
                "inventory: inventory.yml\nworkflows: workflows\nssh: {{ connect_timeout: 15s, forks: {n} }}\n"
            ),
        );
        write(&d.join("site/inventory.yml"), &b.bed.inventory_yaml_direct(true));
        for (name, batch, check) in [
            ("batch1", "1", "false"),
            ("batch1check", "1", "true"),
            ("all", "\"100%\"", "false"),
        ] {
            write(
                &d.join(format!("site/workflows/{name}.yml")),
                &format!(
                    "name: {name}\nversion: 1\ntargets: {{ nodes: [\"@all\"] }}\ncanary: {{ size: 0 }}\n\
                     strategy: {{ batch: {batch} }}\nsteps:\n  - name: role\n    change: hot\n    \
                     ansible: {{ playbook: ../playbooks/site.yml, check_mode: {check} }}\n"
                ),
            );
        }
        b
    }

    /// Fresh nodes: the playbook's files gone.
    fn reset(&self) {
        for node in self.bed.nodes() {
            let _ = std::fs::remove_dir_all(node.state_dir.join("ansible.d"));
            let _ = std::fs::remove_file(node.state_dir.join("ansible-conf"));
        }
    }

    fn verify(&self, c: Config) {
        for node in self.bed.nodes() {
            let motd = std::fs::read_to_string(node.state_dir.join("ansible.d/motd"))
                .unwrap_or_else(|e| panic!("{}: {} left no motd: {e}", c.name(), node.name));
            assert_eq!(motd, "managed by ansible via drover\n");
        }
    }

    /// Runs `c` once on fresh nodes; its wall time in seconds.
    fn run(&self, c: Config, round: usize) -> f64 {
        self.reset();
        let cp = tempfile::tempdir().unwrap();
        let mut cmd = match c {
            Config::AnsibleSerial1 | Config::AnsibleAll => {
                let book = if c == Config::AnsibleSerial1 {
                    "serial1.yml"
                } else {
                    "site.yml"
                };
                let mut cmd = Command::new(self.ansible.join("ansible-playbook"));
                cmd.arg("-i")
                    .arg(self.dir.join("ansible/inventory.yml"))
                    .args(["--forks", &self.n.to_string()])
                    .arg(self.dir.join("site/playbooks").join(book))
                    .env("ANSIBLE_SSH_CONTROL_PATH_DIR", cp.path())
                    .env("ANSIBLE_NOCOLOR", "1")
                    .env("ANSIBLE_RETRY_FILES_ENABLED", "0");
                cmd
            }
            _ => {
                let wf = match c {
                    Config::DroverBatch1 => "batch1",
                    Config::DroverBatch1Check => "batch1check",
                    _ => "all",
                };
                let mut cmd = Command::new(&self.drover);
                cmd.args(["run", wf, "--yes", "--site"])
                    .arg(self.dir.join("site"))
                    .env("DROVER_ANSIBLE_PLAYBOOK", self.ansible.join("ansible-playbook"))
                    .env("NO_COLOR", "1");
                cmd
            }
        };
        let log = self
            .dir
            .join(format!("log-{round}-{}.txt", c.name().replace([' ', ','], "_")));
        let out = std::fs::File::create(&log).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let t = Instant::now();
        let status = cmd.status().unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert!(
            status.success(),
            "{} exited with {status}: see {}",
            c.name(),
            log.display()
        );
        self.verify(c);
        // Ansible's ControlPersist masters outlive the run: closed after the clock stops,
        // so the next run starts cold.
        for e in std::fs::read_dir(cp.path()).unwrap().flatten() {
            let _ = Command::new("ssh")
                .arg("-o")
                .arg(format!("ControlPath={}", e.path().display()))
                .args(["-O", "exit", "x"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        secs
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    }
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(4);
    let rounds = args.get(1).copied().unwrap_or(3);
    let ansible = std::env::var_os("DROVER_TEST_ANSIBLE_BIN")
        .map_or_else(|| PathBuf::from("/opt/drover-ansible/bin"), PathBuf::from);
    if !ansible.join("ansible-playbook").is_file() {
        eprintln!(
            "no ansible-playbook in {} (set DROVER_TEST_ANSIBLE_BIN, or run .ci/run): nothing measured",
            ansible.display()
        );
        return;
    }
    let drover = std::env::var_os("DROVER_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_drover")), PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    let bed = Testbed::start(&tmp.path().join("tb"), n).unwrap();
    let b = Bench::setup(bed, tmp.path().join("bench"), ansible, drover);
    let version = Command::new(b.ansible.join("ansible-playbook"))
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default();
    println!(
        "ansible_step: {n} sshd nodes, {rounds} rounds, {version}, drover {}",
        b.drover.display()
    );
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); Config::ALL.len()];
    for round in 0..rounds {
        for k in 0..Config::ALL.len() {
            let i = (k + round) % Config::ALL.len();
            let c = Config::ALL[i];
            let secs = b.run(c, round);
            println!("round {round}: {:<26} {secs:6.2} s", c.name());
            times[i].push(secs);
        }
    }
    let med: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
    println!("\nmedian wall time over {rounds} rounds, {n} nodes:");
    for (c, m) in Config::ALL.iter().zip(&med) {
        println!("  {:<26} {m:6.2} s  ({:.2} s per node)", c.name(), m / n as f64);
    }
    let per = |drover: usize, ansible: usize| (med[drover] - med[ansible]) / n as f64;
    println!("\nper-node overhead of drover's ansible: step:");
    println!(
        "  one node at a time, no check:  {:+.2} s per node (drover batch 1 vs ansible serial 1)",
        per(1, 0)
    );
    println!(
        "  one node at a time, with check: {:+.2} s per node (drover's --check round and the run vs ansible serial 1)",
        per(2, 0)
    );
    println!(
        "  all at once, no check:         {:+.2} s per node (drover batch 100% vs ansible forks {n})",
        per(4, 3)
    );
}
