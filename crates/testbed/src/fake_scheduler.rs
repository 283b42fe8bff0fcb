//! A fake workload scheduler (standing in for Slurm) whose state is files.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::atomic_write::write_atomic;
use super::log_line::LogLine;
use super::safe_dir::check_dir;
use super::testbed_error::TestbedError;
use super::yaml_quote::quote;

/// The scheduler's logic, one POSIX sh script for every hook.
const SCRIPT: &str = include_str!("fake_scheduler.sh");

/// The hooks drover calls, each a script in `bin/`.
pub const HOOKS: [&str; 4] = ["drain", "drained", "resume", "resumed"];

/// The states a node can be in: `idle` (in service, jobs or not), `draining` (asked to
/// drain, a job still runs), `drained` (asked to drain, no job runs) and `resuming`
/// (resumed, but not back in service yet: see [`FakeScheduler::set_resume_delay`]).
const STATES: [&str; 4] = ["idle", "draining", "drained", "resuming"];

/// Drain hooks for tests: `drain NODE REASON`, `drained NODE` and `resume NODE` scripts
/// that keep a scheduler's view of each node in files, with jobs that take time to end.
/// Shell scripts rather than anything in the test process, because drover runs hooks as
/// shell commands and a crash test kills drover between them: state must live outside
/// both.
///
/// The scheduler behaves like Slurm where drover can tell:
///
/// - `drain` on an idle node makes it `draining` while its job runs and `drained`
///   otherwise; on a draining or drained node it only replaces the reason (as `scontrol
///   update state=drain` does);
/// - `drained` prints the state and exits 0 once the node is drained, 1 while its job
///   runs (or the node is idle); the first call after the job's end writes `drained`
///   (any hook call settles a finished drain);
/// - `resume` makes the node `idle` and clears its reason; with a resume delay
///   ([`FakeScheduler::set_resume_delay`]) it is `resuming` (out of service, like Slurm's
///   `idle*` until slurmd answers) until the delay is over;
/// - `resumed` prints the state and exits 0 once the node is `idle`;
/// - a call for an unknown node, or with the wrong arguments, exits 2.
///
/// Files under the directory given to [`FakeScheduler::install`]:
///
/// - `bin/drain`, `bin/drained`, `bin/resume` (and `bin/fake-scheduler`, their logic);
/// - `state/NODE`: `idle`, `draining` or `drained`; `reason/NODE`: the last reason;
///   `jobs/NODE`: when the node's job ends (unix ms);
/// - `calls/NODE/HOOK`: one line per call; `log`: one line per call of any hook
///   (`<unix-ms> <hook> <node> <reason>`, see [`LogLine`]).
///
/// State files are replaced atomically, so a [`Monitor`](super::Monitor) may read them at
/// any time. Calls for one node are expected one at a time (drover runs a node's hooks in
/// sequence); calls for different nodes may run at once.
#[derive(Debug, Clone)]
pub struct FakeScheduler {
    dir: PathBuf,
    nodes: Vec<String>,
}

impl FakeScheduler {
    /// Writes the scripts into `dir` (created if missing; a fresh temp dir, whose path needs
    /// no shell quoting: see [`Testbed::start`](super::Testbed::start)) and makes every node
    /// `idle`, without reason, job or calls.
    pub fn install(dir: &Path, nodes: &[String]) -> Result<FakeScheduler, TestbedError> {
        std::fs::create_dir_all(dir).map_err(|e| TestbedError::io("create scheduler dir", dir, e))?;
        let dir =
            std::fs::canonicalize(dir).map_err(|e| TestbedError::io("resolve scheduler dir", dir, e))?;
        check_dir(&dir)?;
        if let Some(name) = nodes.iter().find(|n| !is_plain_name(n)) {
            return Err(TestbedError::UnsupportedNodeName { name: name.clone() });
        }
        for sub in ["bin", "state", "reason", "jobs", "calls", "back"] {
            create_dir(&dir.join(sub))?;
        }
        let main = dir.join("bin").join("fake-scheduler");
        write_script(&main, &SCRIPT.replace("@DIR@", &dir.to_string_lossy()))?;
        for hook in HOOKS {
            let wrapper = format!(
                "#!/bin/sh\n# drover testbed: the fake scheduler's `{hook}` hook; generated.\n\
                 exec '{}' {hook} \"$@\"\n",
                main.display()
            );
            write_script(&dir.join("bin").join(hook), &wrapper)?;
        }
        let scheduler = FakeScheduler {
            dir,
            nodes: nodes.to_vec(),
        };
        for node in nodes {
            scheduler.set_state(node, "idle", None)?;
            remove(&scheduler.dir.join("jobs").join(node))?;
            let calls = scheduler.dir.join("calls").join(node);
            create_dir(&calls)?;
            for hook in HOOKS {
                remove(&calls.join(hook))?;
            }
        }
        remove(&scheduler.dir.join("resume_delay"))?;
        let log = scheduler.dir.join("log");
        std::fs::write(&log, "").map_err(|e| TestbedError::io("write", &log, e))?;
        Ok(scheduler)
    }

    /// The directory given to `install` (canonical).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The nodes the scheduler knows, in the order given to `install`.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// The script for `hook` (`drain`, `drained` or `resume`).
    pub fn bin(&self, hook: &str) -> PathBuf {
        self.dir.join("bin").join(hook)
    }

    /// A `drain:` mapping for drover.yml (or a workflow) that runs these hooks on the
    /// controller, with the given `poll_interval`, `timeout` and `on_timeout` (`hold` or
    /// `give_up`), for example:
    ///
    /// ```yaml
    /// drain:
    ///   run_on: controller
    ///   drain: "/tmp/x/sched/bin/drain {{ node.name }} {{ reason }}"
    ///   drained: "/tmp/x/sched/bin/drained {{ node.name }}"
    ///   resume: "/tmp/x/sched/bin/resume {{ node.name }}"
    ///   poll_interval: "20ms"
    ///   timeout: "5s"
    ///   on_timeout: "hold"
    /// ```
    ///
    /// drover shell-quotes template values itself; the paths need no quoting.
    pub fn hooks_yaml(&self, poll_interval: &str, timeout: &str, on_timeout: &str) -> String {
        let bin = |hook: &str| self.bin(hook).display().to_string();
        let mut s = String::from("drain:\n  run_on: controller\n");
        let commands = [
            (
                "drain",
                format!("{} {{{{ node.name }}}} {{{{ reason }}}}", bin("drain")),
            ),
            ("drained", format!("{} {{{{ node.name }}}}", bin("drained"))),
            ("resume", format!("{} {{{{ node.name }}}}", bin("resume"))),
            ("poll_interval", poll_interval.to_string()),
            ("timeout", timeout.to_string()),
            ("on_timeout", on_timeout.to_string()),
        ];
        for (key, value) in commands {
            let _ = writeln!(s, "  {key}: {}", quote(&value));
        }
        s
    }

    /// From now on a resumed node stays `resuming` for `delay` before it is `idle` again
    /// (`Duration::ZERO`: at once).
    pub fn set_resume_delay(&self, delay: Duration) -> Result<(), TestbedError> {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        write_atomic(&self.dir.join("resume_delay"), &format!("{ms}\n"))
    }

    /// A `resumed:` line for [`FakeScheduler::hooks_yaml`]'s mapping.
    pub fn resumed_yaml(&self) -> String {
        format!(
            "  resumed: {}\n",
            quote(&format!("{} {{{{ node.name }}}}", self.bin("resumed").display()))
        )
    }

    /// Starts a job on `node` that runs for `runs_for` from now, replacing any job it had
    /// (so `Duration::ZERO` ends it). Only the job changes: a node drained meanwhile
    /// stays drained.
    pub fn set_job(&self, node: &str, runs_for: Duration) -> Result<(), TestbedError> {
        self.check_node(node)?;
        let end = unix_ms(SystemTime::now())
            .saturating_add(u64::try_from(runs_for.as_millis()).unwrap_or(u64::MAX));
        write_atomic(&self.dir.join("jobs").join(node), &format!("{end}\n"))
    }

    /// Puts `node` into `state` (`idle`, `draining` or `drained`) with `reason`, as if
    /// someone else had: a node drained by an admin before the run, say. Neither logged
    /// nor counted as a call. A `draining` node without a running job becomes `drained`
    /// at the next hook call.
    pub fn set_state(&self, node: &str, state: &str, reason: Option<&str>) -> Result<(), TestbedError> {
        self.check_node(node)?;
        if !STATES.contains(&state) {
            return Err(TestbedError::UnknownSchedulerState {
                state: state.to_string(),
            });
        }
        let reason_file = self.dir.join("reason").join(node);
        match reason {
            Some(r) => write_atomic(&reason_file, &format!("{r}\n"))?,
            None => remove(&reason_file)?,
        }
        write_atomic(&self.dir.join("state").join(node), &format!("{state}\n"))
    }

    /// `node`'s state as last written: `idle`, `draining` or `drained`. A draining node
    /// whose job has ended reads `draining` until a hook call settles it. A node the
    /// scheduler does not know reads `unknown`.
    pub fn state(&self, node: &str) -> String {
        if !self.nodes.iter().any(|n| n == node) {
            return "unknown".to_string();
        }
        let path = self.dir.join("state").join(node);
        match std::fs::read_to_string(&path) {
            Ok(s) => s.trim().to_string(),
            // Shown in the test's assertion message, which is where it is needed.
            Err(e) => format!("unreadable ({}: {e})", path.display()),
        }
    }

    /// The reason `node` was drained with, until it is resumed.
    pub fn reason(&self, node: &str) -> Option<String> {
        if !self.nodes.iter().any(|n| n == node) {
            return None;
        }
        let text = std::fs::read_to_string(self.dir.join("reason").join(node)).ok()?;
        Some(text.strip_suffix('\n').unwrap_or(&text).to_string())
    }

    /// How often `hook` was called for `node` (refused calls for unknown nodes and with
    /// wrong arguments aside: those are only in the [`log`](FakeScheduler::log)).
    pub fn calls(&self, node: &str, hook: &str) -> u32 {
        if !self.nodes.iter().any(|n| n == node) || !HOOKS.contains(&hook) {
            return 0;
        }
        std::fs::read_to_string(self.dir.join("calls").join(node).join(hook))
            .map_or(0, |s| u32::try_from(s.lines().count()).unwrap_or(u32::MAX))
    }

    /// Every hook call so far, in the order they started.
    pub fn log(&self) -> Vec<LogLine> {
        std::fs::read_to_string(self.dir.join("log"))
            .map(|text| text.lines().filter_map(LogLine::parse).collect())
            .unwrap_or_default()
    }

    fn check_node(&self, node: &str) -> Result<(), TestbedError> {
        if self.nodes.iter().any(|n| n == node) {
            Ok(())
        } else {
            Err(TestbedError::UnknownSchedulerNode {
                node: node.to_string(),
            })
        }
    }
}

/// Node names become file names and go unquoted into the scripts' paths.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn create_dir(path: &Path) -> Result<(), TestbedError> {
    std::fs::create_dir_all(path).map_err(|e| TestbedError::io("create directory", path, e))
}

fn remove(path: &Path) -> Result<(), TestbedError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(TestbedError::io("remove", path, e)),
    }
}

fn write_script(path: &Path, text: &str) -> Result<(), TestbedError> {
    write_atomic(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| TestbedError::io("make executable", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("node{i:03}")).collect()
    }

    #[test]
    fn hooks_yaml_runs_the_scripts_on_the_controller() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = FakeScheduler::install(tmp.path(), &names(1)).expect("install");
        let bin = s.dir().join("bin");
        let yaml = s.hooks_yaml("20ms", "5s", "hold");
        assert_eq!(
            yaml,
            format!(
                "drain:\n  run_on: controller\n  \
                 drain: \"{b}/drain {{{{ node.name }}}} {{{{ reason }}}}\"\n  \
                 drained: \"{b}/drained {{{{ node.name }}}}\"\n  \
                 resume: \"{b}/resume {{{{ node.name }}}}\"\n  \
                 poll_interval: \"20ms\"\n  timeout: \"5s\"\n  on_timeout: \"hold\"\n",
                b = bin.display()
            )
        );
    }

    #[test]
    fn refuses_names_and_states_it_cannot_keep() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for bad in ["", ".x", "a/b", "a b", "$x"] {
            let err = FakeScheduler::install(tmp.path(), &[bad.to_string()]).expect_err(bad);
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
        let s = FakeScheduler::install(tmp.path(), &names(1)).expect("install");
        let err = s.set_state("node001", "down", None).expect_err("bad state");
        assert!(err.to_string().contains("`down`"), "{err}");
        assert!(s.set_job("node002", Duration::ZERO).is_err());
        assert_eq!(s.state("node002"), "unknown");
        assert_eq!(s.calls("node002", "drain"), 0);
    }

    #[test]
    fn set_state_is_read_back() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = FakeScheduler::install(tmp.path(), &names(2)).expect("install");
        assert_eq!(s.state("node001"), "idle");
        assert_eq!(s.reason("node001"), None);
        s.set_state("node002", "drained", Some("bad DIMM")).expect("set");
        assert_eq!(s.state("node002"), "drained");
        assert_eq!(s.reason("node002").as_deref(), Some("bad DIMM"));
        assert!(s.log().is_empty());
    }
}
