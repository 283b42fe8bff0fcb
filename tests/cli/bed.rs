//! A small fixture for transport tests: a testbed of real sshds (optionally with a fake
//! scheduler), a site written around it, and drover runs with their output.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use drover_testbed::{FakeScheduler, Testbed};
use serde_json::Value;

/// How long one drover command may take before the test calls it hung.
const HANG: Duration = Duration::from_secs(90);

pub struct Bed {
    pub tb: Testbed,
    pub sched: Option<FakeScheduler>,
    pub site: tempfile::TempDir,
    _tmp: tempfile::TempDir,
}

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
    /// `run --json` events of one kind.
    pub fn events(&self, kind: &str) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with('{'))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["event"] == kind)
            .collect()
    }

    pub fn summary(&self) -> Value {
        self.events("summary")
            .pop()
            .unwrap_or_else(|| panic!("no summary\n{self}"))
    }

    pub fn expect(&self, code: i32) -> &Out {
        assert_eq!(self.code, code, "unexpected exit code\n{self}");
        assert!(!self.stderr.contains("panicked"), "{self}");
        self
    }
}

pub fn node(i: usize) -> String {
    format!("node{:03}", i + 1)
}

impl Bed {
    /// `n` sshds; `scheduler` adds a fake scheduler for drain steps.
    pub fn start(n: usize, scheduler: bool) -> Bed {
        Bed::start_with(n, scheduler, drover_testbed::TestbedOptions::default())
    }

    /// [`Bed::start`] with sshds started with `options` (a log level, say).
    pub fn start_with(n: usize, scheduler: bool, options: drover_testbed::TestbedOptions) -> Bed {
        let tmp = tempfile::tempdir().expect("tempdir");
        let tb = Testbed::start_with(&tmp.path().join("tb"), n, options).expect("start testbed");
        let sched = scheduler.then(|| {
            let names: Vec<String> = (0..n).map(node).collect();
            FakeScheduler::install(&tmp.path().join("sched"), &names).expect("scheduler")
        });
        Bed {
            tb,
            sched,
            site: tempfile::tempdir().expect("site dir"),
            _tmp: tmp,
        }
    }

    /// `drover.yml` with `ssh:` settings `ssh` (YAML flow mapping entries, without the
    /// braces) on top of the testbed's ssh_config, and the drain hooks if there is a
    /// scheduler.
    pub fn site_with_config(&self, ssh: &str, extra: &str) {
        let config = serde_json::json!(self.tb.ssh_config().display().to_string());
        let sep = if ssh.is_empty() { "" } else { ", " };
        self.site_yaml(
            &format!("config: {config}, connect_timeout: 15s{sep}{ssh}"),
            extra,
        );
        self.write("inventory.yml", &self.tb.inventory_yaml());
    }

    /// `drover.yml` with only `ssh` as its `ssh:` settings: no ssh_config file.
    pub fn site_yaml(&self, ssh: &str, extra: &str) {
        let hooks = self
            .sched
            .as_ref()
            .map(|s| s.hooks_yaml("50ms", "60s", "hold"))
            .unwrap_or_default();
        self.write(
            "drover.yml",
            &format!("inventory: inventory.yml\nworkflows: workflows\nssh: {{ {ssh} }}\n{hooks}{extra}"),
        );
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.site.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write site file");
    }

    pub fn state(&self, i: usize) -> PathBuf {
        self.tb.nodes()[i].state_dir.clone()
    }

    pub fn has(&self, i: usize, file: &str) -> bool {
        self.state(i).join(file).exists()
    }

    pub fn spawn(&self, args: &[&str]) -> Running {
        let io = tempfile::tempdir().expect("io dir");
        let child = Command::new(env!("CARGO_BIN_EXE_drover"))
            .args(args)
            .arg("--site")
            .arg(self.site.path())
            .current_dir(self.site.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(io.path().join("out")).expect("stdout file"))
            .stderr(std::fs::File::create(io.path().join("err")).expect("stderr file"))
            .spawn()
            .expect("spawn drover");
        Running { child, io }
    }

    pub fn drover(&self, args: &[&str]) -> Out {
        self.spawn(args).finish()
    }
}

pub struct Running {
    pub child: Child,
    io: tempfile::TempDir,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (up to 30 s) for `path` to appear, failing if drover ends first.
    pub fn wait_for_file(&mut self, path: &Path) {
        let t = Instant::now();
        while !path.exists() {
            if self.child.try_wait().expect("wait").is_some() {
                panic!(
                    "drover ended before {} appeared\n{}",
                    path.display(),
                    self.output(None)
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

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    fn output(&self, code: Option<i32>) -> Out {
        let read = |name: &str| std::fs::read_to_string(self.io.path().join(name)).unwrap_or_default();
        Out {
            code: code.unwrap_or(-1),
            stdout: read("out"),
            stderr: read("err"),
        }
    }

    /// Waits for drover to exit (killing it after [`HANG`]).
    pub fn finish(mut self) -> Out {
        let t = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return self.output(Some(s.code().unwrap_or(-1)));
            }
            if t.elapsed() > HANG {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("drover hung\n{}", self.output(None));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Lines of `pgrep -af PATTERN`.
pub fn processes(pattern: &str) -> String {
    let out = Command::new("pgrep")
        .args(["-af", pattern])
        .output()
        .expect("run pgrep");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A workflow `w` on `@all` with `extra` top-level keys and `steps`.
pub fn workflow(extra: &str, steps: &str) -> String {
    format!("name: w\nversion: 1\ntargets:\n  nodes: [\"@all\"]\n{extra}steps:\n{steps}")
}
