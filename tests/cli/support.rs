//! A small builder for running `drover` against files written into a temp dir.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the compiled binary is (cargo builds it for integration tests).
pub fn drover_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_drover"))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A site in a temp dir: a valid drover.yml, inventory.yml and one workflow by default,
/// which a test overrides file by file.
pub struct Site {
    dir: tempfile::TempDir,
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub const SITE: &str = "\
inventory: inventory.yml
workflows: workflows
drain:
  drain: scontrol update nodename={{ node.name }} state=drain reason={{ reason }}
  drained: test \"$(sinfo -h -n {{ node.name }} -o %T | tr -d '*')\" = drained
  resume: scontrol update nodename={{ node.name }} state=resume
windows:
  day:
    timezone: Europe/Berlin
    days: [mon-fri]
    start: \"08:00\"
    end: \"17:00\"
";

pub const INVENTORY: &str = "\
nodes:
  n[01-10]: {}
  login[1-2]: {}
  mgmt01: {}
groups:
  compute: [\"n[01-10]\"]
canary: [n01]
blacklist: [mgmt01]
ha_groups:
  login:
    members: [\"login[1-2]\"]
";

// Local-transport tests run this step on the machine running the tests: it must be harmless.
pub const WORKFLOW: &str = "\
name: update
version: 1
targets:
  nodes: [\"@compute\"]
window: day
steps:
  - name: upgrade
    run: echo upgraded
    change: hot
";

impl Site {
    pub fn new() -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = Site { dir };
        // Its nodes are not real: runs use the local transport.
        s.write("drover.yml", &format!("{SITE}transport: local\n"))
            .write("inventory.yml", INVENTORY)
            .write("workflows/update.yml", WORKFLOW)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes (or replaces) a file relative to the site directory.
    pub fn write(self, rel: &str, text: &str) -> Site {
        let p = self.dir.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        self
    }

    pub fn write_bytes(self, rel: &str, bytes: &[u8]) -> Site {
        std::fs::write(self.dir.path().join(rel), bytes).expect("write");
        self
    }

    /// Runs `drover ARGS` with the site directory as the working directory, so paths in
    /// messages are short and stable.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(drover_bin())
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .output()
            .expect("run drover");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `drover validate .`, asserting it fails with exit code 3; returns stderr.
    pub fn invalid(&self) -> String {
        let out = self.run(&["validate", "."]);
        assert_eq!(
            out.code, 3,
            "expected exit 3 (invalid config)\nstdout:\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        out.stderr
    }
}
