//! The tools under comparison, each run once on a fixture.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drover_testbed::Testbed;

use crate::cpu::reaped_children;
use crate::fixture::Fixture;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Drover,
    /// Another drover binary (`DROVER_BEFORE`), for before/after comparisons.
    DroverBefore,
    /// drover on nodes that already have the change (all GOOD): a run of drover first,
    /// not measured, then the measured one.
    DroverConverged,
    Ssh,
    /// The five operations as one script per node: one connection, one command.
    Script,
    Ansible,
    Pyinfra,
}

impl Tool {
    pub const ALL: [Tool; 7] = [
        Tool::Drover,
        Tool::DroverBefore,
        Tool::DroverConverged,
        Tool::Ssh,
        Tool::Script,
        Tool::Ansible,
        Tool::Pyinfra,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tool::Drover => "drover",
            Tool::DroverBefore => "drover before",
            Tool::DroverConverged => "drover converged",
            Tool::Ssh => "ssh floor",
            Tool::Script => "ssh one script",
            Tool::Ansible => "ansible-playbook",
            Tool::Pyinfra => "pyinfra",
        }
    }

    pub fn parse(s: &str) -> Option<Tool> {
        match s {
            "drover" => Some(Tool::Drover),
            "before" | "drover-before" => Some(Tool::DroverBefore),
            "converged" | "drover-converged" => Some(Tool::DroverConverged),
            "ssh" | "floor" => Some(Tool::Ssh),
            "script" | "one-script" => Some(Tool::Script),
            "ansible" | "ansible-playbook" => Some(Tool::Ansible),
            "pyinfra" => Some(Tool::Pyinfra),
            _ => None,
        }
    }

    /// The program this tool needs on PATH, if it is not built here.
    pub fn program(self) -> Option<&'static str> {
        match self {
            Tool::Drover | Tool::DroverBefore | Tool::DroverConverged => None,
            Tool::Ssh | Tool::Script => Some("xargs"),
            Tool::Ansible => Some("ansible-playbook"),
            Tool::Pyinfra => Some("pyinfra"),
        }
    }

    /// Whether the tool can run here: a program on PATH, `DROVER_BEFORE` set.
    pub fn available(self) -> Result<(), String> {
        match self {
            Tool::DroverBefore => match std::env::var_os("DROVER_BEFORE") {
                Some(p) if Path::new(&p).is_file() => Ok(()),
                _ => Err("DROVER_BEFORE does not name a drover binary".into()),
            },
            t => match t.program() {
                Some(p) if which(p).is_none() => Err(format!(
                    "`{p}` is not on PATH (bench/run installs ansible-core and pyinfra)"
                )),
                _ => Ok(()),
            },
        }
    }

    /// What must happen, unmeasured, before the tool's run: for `drover converged`, the
    /// change itself (a drover run), so the measured run finds every node GOOD.
    pub fn prepare(self, drover: &Path, fx: &Fixture, bed: &Testbed, log: &Path) -> Result<(), String> {
        if self == Tool::DroverConverged {
            Tool::Drover.run(drover, fx, bed, log)?;
        }
        Ok(())
    }

    /// Runs the change on every node of `bed` once; returns the wall time of the tool's
    /// own process (for the floor: of `xargs` and every ssh it starts) and the CPU time
    /// of its reaped process tree. Masters a tool leaves behind are closed after the clock
    /// stops, so the next run starts cold.
    pub fn run(self, drover: &Path, fx: &Fixture, bed: &Testbed, log: &Path) -> Result<(f64, f64), String> {
        // Short, because control sockets are limited to 108 bytes.
        let cm = tempfile::Builder::new()
            .prefix("cm")
            .tempdir_in("/tmp")
            .map_err(|e| e.to_string())?;
        let mut cmd = match self {
            Tool::Drover | Tool::DroverBefore | Tool::DroverConverged => {
                let bin = match self {
                    Tool::DroverBefore => {
                        PathBuf::from(std::env::var_os("DROVER_BEFORE").unwrap_or_default())
                    }
                    _ => drover.to_path_buf(),
                };
                let mut c = Command::new(bin);
                c.args(["run", "bench", "--yes", "--site"]).arg(&fx.site);
                c
            }
            Tool::Ssh | Tool::Script => {
                let script = if self == Tool::Ssh {
                    "node.sh"
                } else {
                    "one-script.sh"
                };
                let mut c = Command::new("xargs");
                c.args(["-P", &fx.n.to_string(), "-L", "1", "sh"])
                    .arg(fx.floor.join(script))
                    .stdin(Stdio::piped())
                    .env("CFG", &fx.ssh_config)
                    .env("CM", cm.path())
                    .env("CONF", fx.floor.join("app.conf"));
                c
            }
            Tool::Ansible => {
                let mut c = Command::new("ansible-playbook");
                c.arg("playbook.yml")
                    .current_dir(&fx.ansible)
                    .env("ANSIBLE_CONFIG", fx.ansible.join("ansible.cfg"))
                    .env("ANSIBLE_HOME", fx.ansible.join("home"))
                    .env("ANSIBLE_SSH_CONTROL_PATH_DIR", cm.path())
                    .env("ANSIBLE_NOCOLOR", "1");
                c
            }
            Tool::Pyinfra => {
                let mut c = Command::new("pyinfra");
                c.args(["-y", "--parallel", &fx.n.to_string(), "inventory.py", "deploy.py"])
                    .current_dir(&fx.pyinfra);
                c
            }
        };
        let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        cmd.stdout(out).stderr(err);
        if !matches!(self, Tool::Ssh | Tool::Script) {
            cmd.stdin(Stdio::null());
        }
        let cpu = reaped_children();
        let t = Instant::now();
        let status = spawn_and_wait(cmd, self, bed)?;
        let secs = t.elapsed().as_secs_f64();
        let cpu = reaped_children() - cpu;
        if matches!(self, Tool::Ssh | Tool::Ansible) {
            close_masters(fx, bed, cm.path());
        }
        // Let the nodes' sshds reap the sessions that just ended.
        std::thread::sleep(Duration::from_millis(200));
        if status.success() {
            Ok((secs, cpu))
        } else {
            Err(format!(
                "{} exited with {status}; its output: {}",
                self.name(),
                log.display()
            ))
        }
    }
}

fn spawn_and_wait(mut cmd: Command, tool: Tool, bed: &Testbed) -> Result<std::process::ExitStatus, String> {
    let mut child = cmd.spawn().map_err(|e| format!("start {}: {e}", tool.name()))?;
    // The floor's `xargs` reads `NODE STATE_DIR` lines.
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let list: String = bed
            .nodes()
            .iter()
            .map(|node| format!("{} {}\n", node.name, node.state_dir.display()))
            .collect();
        let _ = stdin.write_all(list.as_bytes());
    }
    child.wait().map_err(|e| e.to_string())
}

/// `ssh -O exit` for every node's master under `dir`.
fn close_masters(fx: &Fixture, bed: &Testbed, dir: &Path) {
    for node in bed.nodes() {
        let _ = Command::new("ssh")
            .arg("-F")
            .arg(&fx.ssh_config)
            .args(["-o", &format!("ControlPath={}/%C", dir.display()), "-O", "exit"])
            .arg(&node.name)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Where `program` is on PATH, if anywhere.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}
