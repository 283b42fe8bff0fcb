//! Several commands in one round trip: one session, one lock, one outer time limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::frame_reader::FrameReader;
use super::{ExecOutput, ShellLine, TransportError, ran_out_of_time};

/// What `timeout` gives a command that ignores TERM before it KILLs it.
const KILL_AFTER: Duration = Duration::from_secs(5);
/// Time the script itself may take besides its commands (markers, `read`s).
const SCRIPT_SLACK: Duration = Duration::from_secs(5);

/// Commands run one after another by one shell on the node, each under its own
/// `timeout`, each one's output framed so the controller gets every command's exit code,
/// output and timing as if it had run alone (see [`FrameReader`]). Checks run all of
/// theirs; steps stop at the first command that fails.
#[derive(Debug, Clone)]
pub struct Script {
    boundary: String,
    body: ShellLine,
    items: usize,
    budget: Duration,
    stop_on_failure: bool,
}

/// Where a command of a [`Script`] reads its input from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemInput {
    /// Nothing (`/dev/null`), like a command run alone without input.
    Null,
    /// The script's own input: the command reads exactly its share of it (a file
    /// step's content, length-framed by the command itself).
    Script,
}

impl Script {
    pub fn new(stop_on_failure: bool) -> Script {
        let boundary = random_boundary();
        let (a, b) = boundary.split_at(boundary.len() / 2);
        // Built from two halves at run time, so the script's text (which `ps` shows)
        // never contains the boundary a command's output could repeat.
        let body = ShellLine::new()
            .code("b=")
            .value(a)
            .code("; b=\"$b\"")
            .value(b)
            .code("; m() { printf '\\n%s %s\\n' \"$b\" \"$*\"; }; ");
        Script {
            boundary,
            body,
            items: 0,
            budget: SCRIPT_SLACK,
            stop_on_failure,
        }
    }

    /// Adds `command` (run with `sh -c`, killed after `timeout`).
    pub fn push(&mut self, command: &str, timeout: Duration, input: ItemInput) {
        let i = u64::try_from(self.items).unwrap_or(u64::MAX);
        let secs = timeout.as_secs().max(1);
        let mut line = std::mem::take(&mut self.body)
            .code("m B ")
            .number(i)
            .code("; m B ")
            .number(i)
            .code(" >&2; t0=-; { read t0 _ </proc/uptime; } 2>/dev/null; timeout --kill-after=5 ")
            .number(secs)
            .code(" sh -c ")
            .script(command);
        if input == ItemInput::Null {
            line = line.code(" </dev/null");
        }
        line = line
            .code("; c=$?; t1=-; { read t1 _ </proc/uptime; } 2>/dev/null; m E ")
            .number(i)
            .code(" \"$c\" \"$t0\" \"$t1\"; m E ")
            .number(i)
            .code(" >&2; ");
        if self.stop_on_failure {
            line = line.code("[ \"$c\" = 0 ] || exit 0; ");
        }
        self.body = line;
        self.items += 1;
        self.budget += Duration::from_secs(secs) + KILL_AFTER;
    }

    pub fn len(&self) -> usize {
        self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// How long the whole script may take: every command's limit, one after another.
    pub fn timeout(&self) -> Duration {
        self.budget
    }

    pub fn text(&self) -> String {
        self.body.clone().code("exit 0").into_string()
    }

    pub(super) fn readers(&self) -> (FrameReader, FrameReader) {
        (FrameReader::new(&self.boundary), FrameReader::new(&self.boundary))
    }
}

/// What one command of a script did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemOutput {
    pub output: ExecOutput,
    /// How long it ran, where the node could tell (`/proc/uptime`).
    pub elapsed: Option<Duration>,
}

/// What a script produced, command by command.
#[derive(Debug)]
pub struct ScriptOutput {
    stdout: FrameReader,
    stderr: FrameReader,
    /// The script's own exit: its code and whether its outer limit ran out.
    code: Option<i32>,
    timed_out: bool,
    /// The connection broke; what was read before is kept.
    lost: Option<TransportError>,
}

impl ScriptOutput {
    pub(super) fn new(
        mut stdout: FrameReader,
        mut stderr: FrameReader,
        code: Option<i32>,
        timed_out: bool,
        lost: Option<TransportError>,
    ) -> ScriptOutput {
        stdout.finish();
        stderr.finish();
        ScriptOutput {
            stdout,
            stderr,
            code,
            timed_out,
            lost,
        }
    }

    /// The script never ran to its end and nothing of it came back.
    pub(super) fn abandoned(script: &Script) -> ScriptOutput {
        let (stdout, stderr) = script.readers();
        ScriptOutput::new(stdout, stderr, None, true, None)
    }

    /// Command `i`'s outcome, as [`super::Connection::exec`] would have given it had
    /// it run alone with `timeout`: a command that ended has its own code, output and
    /// timeout; one that did not end (the script's limit ran out, the lock was never
    /// taken, the connection broke) gets the script's outcome and whatever it printed.
    pub fn item(&mut self, i: usize, timeout: Duration) -> Result<ItemOutput, TransportError> {
        let out = take_frame(&mut self.stdout, i);
        let err = take_frame(&mut self.stderr, i);
        if let Some(end) = out.end {
            let code = end.first().and_then(|c| c.parse::<i32>().ok());
            let elapsed = match (end.get(1), end.get(2)) {
                (Some(a), Some(b)) => uptime_span(a, b),
                _ => None,
            };
            let timed_out = match elapsed {
                Some(e) => ran_out_of_time(code, e, timeout),
                None => code == Some(super::TIMEOUT_EXIT),
            };
            return Ok(ItemOutput {
                output: ExecOutput {
                    code,
                    stdout: out.tail.into_text(),
                    stderr: err.tail.into_text(),
                    timed_out,
                },
                elapsed,
            });
        }
        if let Some(e) = self.lost.clone() {
            return Err(e);
        }
        let (stdout, stderr) = if out.started || err.started {
            (out.tail, err.tail)
        } else {
            (
                std::mem::take(&mut self.stdout.outside),
                std::mem::take(&mut self.stderr.outside),
            )
        };
        Ok(ItemOutput {
            output: ExecOutput {
                // A script that ended normally without running this command: the
                // command was never reached (a wrapper refused), which is a failure.
                code: match self.code {
                    Some(0) => None,
                    c => c,
                },
                stdout: stdout.into_text(),
                stderr: stderr.into_text(),
                timed_out: self.timed_out,
            },
            elapsed: None,
        })
    }
}

fn take_frame(r: &mut FrameReader, i: usize) -> super::frame_reader::Frame {
    r.frames.get_mut(i).map(std::mem::take).unwrap_or_default()
}

/// The time between two `/proc/uptime` readings (seconds with two decimals).
fn uptime_span(a: &str, b: &str) -> Option<Duration> {
    let a: f64 = a.parse().ok()?;
    let b: f64 = b.parse().ok()?;
    (b >= a).then(|| Duration::from_secs_f64(b - a))
}

/// 128 bits no command's output contains by chance.
fn random_boundary() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = Sha256::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    h.update(now.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    format!("drover-{}", hex::encode(&h.finalize()[..16]))
}

#[cfg(test)]
mod tests {
    use super::super::exec_output::OutputSink;
    use super::*;

    /// Runs a script with the real `sh` (and coreutils' `timeout`), as a node would.
    fn run(script: &Script, stdin: &[u8]) -> ScriptOutput {
        use std::io::Write;
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(script.text())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        let (mut o, mut e) = script.readers();
        o.push(&out.stdout);
        e.push(&out.stderr);
        ScriptOutput::new(o, e, out.status.code(), false, None)
    }

    #[test]
    fn every_command_gets_its_own_code_output_and_timeout() {
        let mut s = Script::new(false);
        s.push(
            "printf 'a\\n'; printf err >&2; exit 1",
            Duration::from_secs(5),
            ItemInput::Null,
        );
        s.push("sleep 30", Duration::from_secs(1), ItemInput::Null);
        s.push("printf '%s' \"$(cat)\"", Duration::from_secs(5), ItemInput::Null);
        s.push("head -c 3; echo", Duration::from_secs(5), ItemInput::Script);
        s.push("head -c 2", Duration::from_secs(5), ItemInput::Script);
        let started = std::time::Instant::now();
        let mut out = run(&s, b"abcde");
        assert!(started.elapsed() < Duration::from_secs(10));
        let a = out.item(0, Duration::from_secs(5)).unwrap();
        assert_eq!(
            (a.output.code, a.output.stdout.as_str(), a.output.stderr.as_str()),
            (Some(1), "a\n", "err")
        );
        let b = out.item(1, Duration::from_secs(1)).unwrap();
        assert!(b.output.timed_out, "{b:?}");
        assert!(b.elapsed.unwrap() >= Duration::from_millis(900), "{b:?}");
        let c = out.item(2, Duration::from_secs(5)).unwrap();
        assert_eq!(
            (c.output.code, c.output.stdout.as_str()),
            (Some(0), ""),
            "no input"
        );
        let d = out.item(3, Duration::from_secs(5)).unwrap();
        assert_eq!(d.output.stdout, "abc\n");
        let e = out.item(4, Duration::from_secs(5)).unwrap();
        assert_eq!(e.output.stdout, "de");
        assert!(!s.text().contains(&s.boundary), "the boundary is not in the text");
    }

    #[test]
    fn a_failure_stops_a_step_script_there() {
        let mut s = Script::new(true);
        s.push("echo one", Duration::from_secs(5), ItemInput::Null);
        s.push("echo two; exit 4", Duration::from_secs(5), ItemInput::Null);
        s.push("echo three", Duration::from_secs(5), ItemInput::Null);
        let mut out = run(&s, b"");
        assert_eq!(out.item(0, Duration::from_secs(5)).unwrap().output.code, Some(0));
        let two = out.item(1, Duration::from_secs(5)).unwrap();
        assert_eq!((two.output.code, two.output.stdout.as_str()), (Some(4), "two\n"));
        let three = out.item(2, Duration::from_secs(5)).unwrap();
        assert_eq!(three.output.code, None, "never reached: {three:?}");
        assert_eq!(three.output.stdout, "");
    }

    #[test]
    fn output_that_prints_the_script_itself_does_not_confuse_the_frames() {
        let mut s = Script::new(false);
        // The command prints its parent's command line: the whole script text.
        s.push(
            "gp=$(ps -o ppid= -p $PPID | tr -d ' '); tr '\\0' ' ' < /proc/$gp/cmdline",
            Duration::from_secs(5),
            ItemInput::Null,
        );
        s.push("exit 1", Duration::from_secs(5), ItemInput::Null);
        let mut out = run(&s, b"");
        let a = out.item(0, Duration::from_secs(5)).unwrap();
        assert_eq!(a.output.code, Some(0));
        assert!(a.output.stdout.contains("m B 0"), "{}", a.output.stdout);
        assert_eq!(out.item(1, Duration::from_secs(5)).unwrap().output.code, Some(1));
    }
}
