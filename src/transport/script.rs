//! Several commands in one round trip: one session, one lock, one outer time limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::frame_reader::FrameReader;
use super::{ExecOutput, ShellLine, SimpleCommand, TransportError, ran_out_of_time};

/// What `timeout` gives a command that ignores TERM before it KILLs it.
const KILL_AFTER: Duration = Duration::from_secs(5);
/// Time the script itself may take besides its commands (markers, `read`s).
const SCRIPT_SLACK: Duration = Duration::from_secs(5);
/// How late the script's watchdog may notice a limit: it looks once a second.
const TICK: Duration = Duration::from_secs(2);

/// The script's own timeout, defined once at its top (names start with `_`; the
/// commands run in shells of their own and see none of them).
///
/// - `trap '_t=1' USR1`: the ticker's signal interrupts `wait` (POSIX: a trapped
///   signal makes `wait` return > 128 at once); a caught signal is reset in the
///   commands, so they are not affected.
/// - fd 3 is the script's input, for commands that read their share of it (a command
///   run in the background would otherwise get `/dev/null`).
/// - the ticker (`_tick`): a subshell, detached from the session's pipes and the step
///   lock (fd 9), that signals the shell every second and ends when the shell is gone
///   or at its exit (`trap ... EXIT`, KILL: a held script's ticker may be stopped).
/// - `_now`: `/proc/uptime` in centiseconds (counting ticks where it cannot be read).
/// - `_tree`: adds to `_l` every process whose parent is in it, from `/proc/*/stat`
///   (builtins only; run only when a command is past its limit).
/// - `_w SECS`: waits for the command just started (`$!`) up to SECS, then TERMs its
///   tree, waits up to 5 s for all of it to go, then KILLs what is left; sets `_c` to
///   its exit code, or 124 / 137 as `timeout --kill-after=5` would. A `wait` the ticker
///   interrupted (`_t=1`, status > 128) is never taken as the command's status, even
///   when the command is gone by then: the shell may have collected it meanwhile, and
///   the next `wait` gives its real status (asking `kill -0` whether it still ran made a
///   command that exited 0 as the tick came report 138, the ticker's USR1).
/// - `_B i` / `_E i SECS`: the frame around command `i` (its begin markers and start
///   time; `_w SECS`, then its end markers with exit code and times), defined once so
///   each command adds a few bytes to the script's text, not the whole frame: a script
///   of hundreds of commands stays far below the kernel's limit on one argument.
const WATCHDOG: &str = "_n=0; _t=0; trap '_t=1' USR1; exec 3<&0; _P=$$; \
_tick() { ( trap - USR1 EXIT; exec </dev/null >/dev/null 2>&1 3<&- 9>&-; while sleep ";
/// The ticker's interval, in seconds: what [`TICK`] allows for.
const TICK_SECS: &str = "1";
/// [`WATCHDOG`] after the ticker's interval.
const WATCHDOG_REST: &str = "; do kill -USR1 $_P || exit 0; done ) & _tk=$!; }; _tick; \
trap 'kill -KILL $_tk 2>/dev/null' EXIT; \
_now() { if { read _u _x </proc/uptime; } 2>/dev/null; then _n=${_u%.*}${_u#*.}; _n=${_n#\"${_n%%[!0]*}\"}; _n=${_n:-0}; else _n=$((_n + 100)); fi; }; \
_tree() { _m=1; while [ -n \"$_m\" ]; do _m=; for _s in /proc/[0-9]*/stat; do { read -r _x <\"$_s\"; } 2>/dev/null || continue; _q=${_x%% *}; \
case $_l in *\" $_q \"*) continue;; esac; _x=${_x##*) }; set -- $_x; case $_l in *\" $2 \"*) _l=\"$_l$_q \"; _m=1;; esac; done; done; }; \
_alive() { for _q in $_l; do kill -0 $_q 2>/dev/null && return 0; done; return 1; }; \
_w() { _p=$!; _now; _d=$((_n + $1 * 100)); _k=; _c=; while :; do _t=0; \
if [ -z \"$_c\" ]; then wait $_p 2>/dev/null; _r=$?; if [ \"$_t\" = 1 ] && [ \"$_r\" -gt 128 ]; then :; else _c=$_r; fi; \
else { [ -n \"$_k\" ] && _alive && kill -0 $_tk 2>/dev/null; } || break; wait $_tk 2>/dev/null; fi; _now; \
if [ -z \"$_k\" ] && [ -z \"$_c\" ] && [ \"$_n\" -ge \"$_d\" ]; then _l=\" $_p \"; _tree; kill -TERM $_l 2>/dev/null; _k=T; _d=$((_n + 500)); \
elif [ \"$_k\" = T ] && [ \"$_n\" -ge \"$_d\" ]; then _tree; kill -KILL $_l 2>/dev/null; _k=K; fi; done; \
case $_k in T) _c=124;; K) _c=137;; esac; }; \
_B() { m B $1; m B $1 >&2; _t0=-; { read _t0 _x </proc/uptime; } 2>/dev/null; }; \
_E() { _w $2; _o=$_c; _t1=-; { read _t1 _x </proc/uptime; } 2>/dev/null; m E $1 \"$_o\" \"$_t0\" \"$_t1\"; m E $1 >&2; }; ";

/// The end of a held script ([`Script::hold`]): it says it waits (`W` on both streams),
/// stops its ticker (a signal breaks the `read`; a read a last tick broke is read
/// again), and reads one line, `HOW MARK`, then the next script, which runs only when
/// it arrived whole: a cut one never reaches its `# MARK`, and nothing of it runs. The
/// script comes one of two ways ([`Script::continuation`]), whichever costs the node
/// less:
/// - `HOW` is `-`: the script's lines up to the line `# MARK`, read with the shell's own
///   `read`, no process. `read` takes one byte per system call (it must stop at the
///   newline, so what follows on the input, the steps' files, stays there): cheaper than
///   a `head` up to about 5 KB, dearer beyond ([`READ_BY_LINE`]).
/// - `HOW` is a byte count: that many bytes, the script ending in `# MARK`, read by one
///   `head -c` (which never reads past them).
///
/// Its input closed instead (the controller has nothing for the node, or is gone): it
/// exits. Stopped, not killed, the ticker costs no new process when the next script
/// continues it ([`RESUME`]).
const WAIT: &str = "m W; m W >&2; kill -STOP $_tk 2>/dev/null; _t=0; \
until IFS=' ' read -r _len _e; do [ \"$_t\" = 1 ] || exit 0; _t=0; done; \
case $_e in drover-*) ;; *) exit 0;; esac; \
case $_len in -) _s=; _ok=; \
while IFS= read -r _x; do if [ \"$_x\" = \"# $_e\" ]; then _ok=1; break; fi; _s=\"$_s$_x
\"; done; [ -n \"$_ok\" ] || exit 0;; \
''|*[!0-9]*) exit 0;; \
*) _s=$(head -c \"$_len\"); case $_s in *\"# $_e\") ;; *) exit 0;; esac;; esac; \
eval \"$_s\"; exit 0";

/// The longest next script a held shell reads line by line rather than with `head`
/// ([`WAIT`]): measured on the bench VM, `read` costs about 0.2 µs a byte and a `head`
/// about 0.8 ms, so they break even near 4–5 KB.
const READ_BY_LINE: usize = 4096;

/// How a next script begins in a held shell, after its boundary: the ticker goes on
/// (or, if it is gone, a new one starts); the rest of [`WATCHDOG`] is defined already.
const RESUME: &str = "kill -CONT $_tk 2>/dev/null || _tick; ";

/// What a user command's subshell forgets first ([`Script::push`], `eval "$_Z"`): the
/// script's own functions and variables (every name the script sets in its shell starts
/// with `_`), and the positional parameters. What is left is what a `sh -c` started
/// there sees. Defined once in [`WATCHDOG`]'s place, so each command adds a few bytes
/// to the script, not this list.
const SUBSHELL_RESET: &str = "_Z='unset -f m _tick _now _tree _alive _w _B _E; \
unset _b _o _t0 _t1 _n _t _P _tk _u _x _m _s _q _l _p _d _k _c _r _e _ok _len _ld _lf _Z; set --'; ";

/// Whether `command` asks what a subshell of the script's shell answers otherwise than
/// a shell of its own: its process ids (`$$`, `$PPID`, `$!`), its options (`$-`), line
/// numbers, and the traps `trap` lists. Found in the text, so a mention that would not
/// run (a comment, a quoted word) also gets a shell of its own: slower, never different.
fn needs_own_shell(command: &str) -> bool {
    ["$$", "${$", "PPID", "$!", "${!", "$-", "${-", "LINENO", "trap"]
        .iter()
        .any(|w| command.contains(w))
}

/// Commands run one after another by one shell on the node, each one's output framed so
/// the controller gets every command's exit code, output and timing as if it had run
/// alone (see [`FrameReader`]). Checks run all of theirs; steps stop at the first
/// command that fails.
///
/// Each command runs as `sh -c` would run it alone (its own `exit`, variables, traps;
/// see [`Self::push`] for the cheaper forms that keep this), started in the background
/// of the script's shell, which waits for it
/// and is its timeout: a ticker (one subshell and one `sleep 1` a second, for the whole
/// script) signals the shell every second, and a command past its limit gets TERM with
/// every process below it (found in `/proc`), KILL 5 s later if any is left, and the
/// exit codes `timeout` gives (124, 137). So a hung command is stopped at its own limit
/// with no `timeout` process per command; the one `timeout` around the whole script
/// ([`super::connection::remote_script`]) bounds the script.
#[derive(Debug, Clone)]
pub struct Script {
    boundary: String,
    /// `b=...; m() {...}`: the boundary and the marker function.
    head: ShellLine,
    /// [`WATCHDOG`] with the ticker's interval.
    watchdog: ShellLine,
    /// The commands.
    body: ShellLine,
    /// The commands as a held shell runs them next ([`Self::continuation`]): file steps
    /// with their content in their text, so they read nothing from the input (no `head`
    /// per file). `None` once a command reads a share of the input of unknown length.
    inline_body: Option<ShellLine>,
    /// The length of each file step's share of the input, in order, and whether its
    /// command in [`Self::inline_body`] carries it in its text instead.
    shares: Vec<(usize, bool)>,
    items: usize,
    budget: Duration,
    stop_on_failure: bool,
    held: bool,
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
        Script::ticking(stop_on_failure, TICK_SECS)
    }

    /// A script whose ticker signals every `tick` seconds (tests make it race).
    #[cfg(test)]
    fn with_tick(stop_on_failure: bool, tick: &str) -> Script {
        Script::ticking(stop_on_failure, tick)
    }

    fn ticking(stop_on_failure: bool, tick: &str) -> Script {
        let boundary = random_boundary();
        let (a, b) = boundary.split_at(boundary.len() / 2);
        // Built from two halves at run time, so the script's text (which `ps` shows)
        // never contains the boundary a command's output could repeat.
        let head = ShellLine::new()
            .code("_b=")
            .value(a)
            .code("; _b=\"$_b\"")
            .value(b)
            .code("; m() { printf '\\n%s %s\\n' \"$_b\" \"$*\"; }; ");
        let watchdog = ShellLine::new()
            .code(WATCHDOG)
            .value(tick)
            .code(WATCHDOG_REST)
            .code(SUBSHELL_RESET);
        Script {
            boundary,
            head,
            watchdog,
            body: ShellLine::new(),
            inline_body: Some(ShellLine::new()),
            shares: Vec::new(),
            items: 0,
            budget: SCRIPT_SLACK,
            stop_on_failure,
            held: false,
        }
    }

    /// Asks for the script's session to be kept open after its commands, so that the
    /// node's next script runs in the same shell: no new session, login shell, `sh` or
    /// ticker (a node's check, then its steps at its turn). A transport that cannot keep
    /// it runs the script as usual.
    pub fn hold(mut self) -> Script {
        self.held = true;
        self
    }

    pub fn holds(&self) -> bool {
        self.held
    }

    /// Adds `command`, killed after `timeout`. It runs as `sh -c` would run it, in the
    /// cheapest form that keeps what it sees the same:
    /// - one program with plain words ([`SimpleCommand`]) is started by the script's
    ///   shell itself (`sh -c` would only `exec` it);
    /// - other shell code runs with `eval` in a subshell of the script's shell that
    ///   first forgets the script's own functions and variables (all named `_...`, and
    ///   `m`; [`SUBSHELL_RESET`]), so it sees the variables, positional parameters and
    ///   traps a `sh -c` sees, without a new `sh` process;
    /// - code that asks what only a shell of its own answers the same (`$$`, `$PPID`,
    ///   `$!`, `$-`, `LINENO`, `trap` with its listing) keeps its own `sh -c`.
    pub fn push(&mut self, command: &str, timeout: Duration, input: ItemInput) {
        let run = match SimpleCommand::parse(command) {
            Some(c) => ShellLine::new().simple(&c),
            None if needs_own_shell(command) => ShellLine::new().code("sh -c ").script(command),
            None => ShellLine::new()
                .code("( eval \"$_Z\"; eval ")
                .script(command)
                .code(" )"),
        };
        self.push_item(&run, None, timeout, input);
        self.unknown_share(input);
    }

    /// Adds drover's own shell code (a file step, the files' check), run in a subshell
    /// of the script's shell rather than a `sh -c` of its own: one process fewer per
    /// command, the same isolation for what drover writes (its variables, `exit`, and
    /// the traps, which a subshell resets).
    pub fn push_own(&mut self, code: &ShellLine, timeout: Duration, input: ItemInput) {
        self.push_item(&Self::own(code), None, timeout, input);
        self.unknown_share(input);
    }

    /// Adds a file step's code ([`Self::push_own`]) that reads `share` bytes of the
    /// script's input, and the same step with the content in its text (`inline`, which
    /// reads nothing) for when a held shell runs the script ([`Self::continuation`]):
    /// its text then travels on that shell's input, never in a command line `ps` shows.
    pub fn push_own_file(
        &mut self,
        framed: &ShellLine,
        inline: Option<&ShellLine>,
        share: usize,
        timeout: Duration,
    ) {
        let inline = inline.map(Self::own);
        self.shares.push((share, inline.is_some()));
        self.push_item(&Self::own(framed), inline.as_ref(), timeout, ItemInput::Script);
    }

    fn own(code: &ShellLine) -> ShellLine {
        ShellLine::new().code("( ").line(code).code(" )")
    }

    /// Adds one command: `run` reading `input`; in [`Self::inline_body`], `inline` (which
    /// reads nothing) when given, else `run` too.
    fn push_item(
        &mut self,
        run: &ShellLine,
        inline: Option<&ShellLine>,
        timeout: Duration,
        input: ItemInput,
    ) {
        let i = u64::try_from(self.items).unwrap_or(u64::MAX);
        let secs = timeout.as_secs().max(1);
        let body = std::mem::take(&mut self.body);
        self.body = self.item(body, i, run, secs, input);
        if let Some(body) = self.inline_body.take() {
            self.inline_body = Some(match inline {
                Some(run) => self.item(body, i, run, secs, ItemInput::Null),
                None => self.item(body, i, run, secs, input),
            });
        }
        self.items += 1;
        self.budget += Duration::from_secs(secs) + KILL_AFTER + TICK;
    }

    /// A share of the input whose length the script does not know was added: the shares
    /// after it could not be told apart, so a held shell runs the script as it is.
    fn unknown_share(&mut self, input: ItemInput) {
        if input == ItemInput::Script {
            self.inline_body = None;
        }
    }

    /// `body` followed by command `i`, `run`, framed (`_B`, `_E` in [`WATCHDOG`]).
    fn item(&self, body: ShellLine, i: u64, run: &ShellLine, secs: u64, input: ItemInput) -> ShellLine {
        let line = body.code("_B ").number(i).code("; ").line(run);
        let line = match input {
            ItemInput::Null => line.code(" </dev/null"),
            ItemInput::Script => line.code(" <&3"),
        };
        let line = line
            .code(" 3<&- 9>&- & _E ")
            .number(i)
            .code(" ")
            .number(secs)
            .code("; ");
        if self.stop_on_failure {
            line.code("[ \"$_o\" = 0 ] || exit 0; ")
        } else {
            line
        }
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
        self.whole().code("exit 0").into_string()
    }

    fn whole(&self) -> ShellLine {
        self.head.clone().line(&self.watchdog).line(&self.body)
    }

    /// The text of the script as held ([`Self::hold`]): it waits for its next script.
    pub(super) fn held_text(&self) -> String {
        self.whole().code(WAIT).into_string()
    }

    /// What a held script's shell reads to run this script next (see [`WAIT`]): the
    /// script inside `wrap` (the step lock), followed by what of `stdin` its commands
    /// still read (the file steps that carry their content in their text read none).
    /// Held itself, it waits for the one after it.
    pub(super) fn continuation(&self, wrap: impl FnOnce(&ShellLine) -> ShellLine, stdin: &[u8]) -> Vec<u8> {
        let mark = random_boundary();
        let end = if self.held { WAIT } else { "exit 0" };
        let whole: usize = self.shares.iter().map(|(n, _)| n).sum();
        let (body, rest) = match &self.inline_body {
            Some(inline) if whole == stdin.len() => {
                let mut rest = Vec::new();
                let mut at = 0;
                for (n, inlined) in &self.shares {
                    if !inlined {
                        rest.extend_from_slice(&stdin[at..at + n]);
                    }
                    at += n;
                }
                (inline, rest)
            }
            _ => (&self.body, stdin.to_vec()),
        };
        let text = wrap(&self.head.clone().code(RESUME).line(body).code(end));
        let text = text.as_str();
        let mut input = if text.len() <= READ_BY_LINE {
            format!("- {mark}\n{text}\n# {mark}\n")
        } else {
            let whole = format!("{text}\n# {mark}");
            format!("{} {mark}\n{whole}", whole.len())
        }
        .into_bytes();
        input.extend_from_slice(&rest);
        input
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

    /// The real `sh` running `text`, its three streams piped.
    fn sh(text: String) -> std::process::Child {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(text)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs a script with the real `sh` (and coreutils' `timeout`), as a node would.
    fn run(script: &Script, stdin: &[u8]) -> ScriptOutput {
        use std::io::Write;
        let mut child = sh(script.text());
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

    /// Whether a process whose command line contains `needle` is alive, and runs the
    /// program `needle` names (a fork of a script's shell that has not yet `exec`d its
    /// program, e.g. the ticker's next `sleep 1`, has the script's text, `needle` and
    /// all, as its command line).
    fn running(needle: &str) -> bool {
        let program = needle.split(' ').next().unwrap_or_default();
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim_end() == program)
                && std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(needle))
        })
    }

    /// The script's own watchdog, not a `timeout` per command: a command past its limit
    /// is stopped with everything it started, also what ignores TERM (KILLed 5 s
    /// later), and the commands after it run.
    #[test]
    fn a_command_past_its_limit_is_stopped_with_all_it_started() {
        let mut s = Script::new(false);
        // A shell that ignores TERM, and its child (which inherits that).
        s.push(
            "trap '' TERM; sleep 41.5 & sleep 41.25; echo never",
            Duration::from_secs(1),
            ItemInput::Null,
        );
        // A child that does not ignore TERM, in the background of its shell.
        s.push("sleep 42.5 & wait", Duration::from_secs(1), ItemInput::Null);
        s.push("echo after", Duration::from_secs(5), ItemInput::Null);
        assert!(!s.text().contains("timeout"), "{}", s.text());
        let started = std::time::Instant::now();
        let mut out = run(&s, b"");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(15), "{took:?}");
        let a = out.item(0, Duration::from_secs(1)).unwrap();
        assert_eq!(a.output.code, Some(137), "{a:?}");
        assert!(a.output.timed_out);
        assert_eq!(a.output.stdout, "");
        let b = out.item(1, Duration::from_secs(1)).unwrap();
        assert_eq!(b.output.code, Some(124), "{b:?}");
        assert!(b.output.timed_out);
        assert!(b.elapsed.unwrap() >= Duration::from_millis(900), "{b:?}");
        let c = out.item(2, Duration::from_secs(5)).unwrap();
        assert_eq!((c.output.code, c.output.stdout.as_str()), (Some(0), "after\n"));
        for p in ["sleep 41.5", "sleep 41.25", "sleep 42.5"] {
            assert!(!running(p), "{p} is still running");
        }
    }

    /// The ticker's signal interrupts the script's `wait` at random moments; one that
    /// came as a command ended must not become that command's status. With a tick of
    /// 0.3 ms and 600 short pipelines, the old check (`kill -0`) reported 138 for about
    /// one command in 200.
    #[test]
    fn a_tick_as_a_command_ends_is_not_taken_for_its_status() {
        let mut s = Script::with_tick(false, "0.0003");
        for _ in 0..600 {
            s.push("true | true", Duration::from_secs(30), ItemInput::Null);
        }
        let mut out = run(&s, b"");
        let wrong: Vec<String> = (0..600)
            .filter_map(|i| {
                let o = out.item(i, Duration::from_secs(30)).unwrap();
                (o.output.code != Some(0)).then(|| format!("{i}: {:?}", o.output.code))
            })
            .collect();
        assert!(
            wrong.is_empty(),
            "commands that exited 0 reported otherwise: {wrong:?}"
        );
    }

    /// drover's own code runs in a subshell: its `exit` and variables stay inside, it
    /// reads its share of the input like a `sh -c` does, and its limit holds.
    #[test]
    fn own_code_runs_in_a_subshell_with_its_own_exit_input_and_limit() {
        let mut s = Script::new(false);
        s.push_own(
            &ShellLine::new().code("x=inside; head -c 2; exit 3"),
            Duration::from_secs(5),
            ItemInput::Script,
        );
        s.push_own(
            &ShellLine::new().code("echo \"x=${x:-unset}\"; sleep 43.5"),
            Duration::from_secs(1),
            ItemInput::Null,
        );
        s.push("head -c 1", Duration::from_secs(5), ItemInput::Script);
        let mut out = run(&s, b"abc");
        let a = out.item(0, Duration::from_secs(5)).unwrap();
        assert_eq!((a.output.code, a.output.stdout.as_str()), (Some(3), "ab"));
        let b = out.item(1, Duration::from_secs(1)).unwrap();
        assert_eq!(
            b.output.stdout, "x=unset\n",
            "the first one's variable stayed inside"
        );
        assert!(b.output.timed_out, "{b:?}");
        assert!(!running("sleep 43.5"));
        let c = out.item(2, Duration::from_secs(5)).unwrap();
        assert_eq!((c.output.code, c.output.stdout.as_str()), (Some(0), "c"));
        assert!(!s.text().contains("sh -c 'x=inside"), "{}", s.text());
    }

    /// Runs `script` held, then `next` in its shell as the controller would send it:
    /// after `delay` (longer than the ticker's second, whose signal must not break the
    /// wait), and cut to `cut` bytes when given. Returns each script's output.
    fn run_held(
        script: &Script,
        next: &Script,
        files: &[u8],
        delay: Duration,
        cut: Option<usize>,
    ) -> (ScriptOutput, ScriptOutput, bool) {
        use std::io::Write;
        let mut child = sh(script.held_text());
        let mut input = next.continuation(|l| l.clone(), files);
        if let Some(n) = cut {
            input.truncate(n);
        }
        let mut stdin = child.stdin.take().unwrap();
        std::thread::sleep(delay);
        stdin.write_all(&input).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let (mut o, mut e) = script.readers();
        o.push(&out.stdout);
        e.push(&out.stderr);
        let waited = o.waiting && e.waiting;
        let first = ScriptOutput::new(o, e, Some(0), false, None);
        let (mut o, mut e) = next.readers();
        o.push(&out.stdout);
        e.push(&out.stderr);
        (
            first,
            ScriptOutput::new(o, e, out.status.code(), false, None),
            waited,
        )
    }

    /// A held check's shell runs the steps sent later: each script's commands get their
    /// own outputs and codes, the steps read their files after the script on the same
    /// input, and the second script's watchdog holds (the first one's ticker is gone).
    #[test]
    fn a_held_script_runs_the_next_one_in_its_shell() {
        let mut check = Script::new(false);
        check.push("echo checked; exit 1", Duration::from_secs(5), ItemInput::Null);
        let check = check.hold();
        let mut steps = Script::new(true);
        steps.push("echo \"pid $PPID\"", Duration::from_secs(5), ItemInput::Null);
        steps.push("head -c 4", Duration::from_secs(5), ItemInput::Script);
        steps.push("sleep 44.5", Duration::from_secs(1), ItemInput::Null);
        let started = std::time::Instant::now();
        let (mut first, mut next, waited) =
            run_held(&check, &steps, b"file", Duration::from_millis(2500), None);
        assert!(started.elapsed() < Duration::from_secs(12));
        assert!(waited, "the check said it waits");
        let c = first.item(0, Duration::from_secs(5)).unwrap();
        assert_eq!((c.output.code, c.output.stdout.as_str()), (Some(1), "checked\n"));
        let a = next.item(0, Duration::from_secs(5)).unwrap();
        assert_eq!(a.output.code, Some(0), "{a:?}");
        let b = next.item(1, Duration::from_secs(5)).unwrap();
        assert_eq!((b.output.code, b.output.stdout.as_str()), (Some(0), "file"));
        let t = next.item(2, Duration::from_secs(1)).unwrap();
        assert!(t.output.timed_out, "{t:?}");
        assert!(!running("sleep 44.5"));
    }

    /// Input closed instead of a next script: the held shell ends at once; a next
    /// script cut short (the controller died while sending it) runs not at all.
    #[test]
    fn a_held_script_without_a_whole_next_one_runs_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let mut check = Script::new(false);
        check.push("true", Duration::from_secs(5), ItemInput::Null);
        let check = check.hold();
        // A short next script is read line by line, a long one by `head`: both ways.
        for (padding, how) in [(0, "- "), (READ_BY_LINE, "")] {
            let mut steps = Script::new(true);
            steps.push(
                &format!("touch {}; : {}", marker.display(), "x".repeat(padding)),
                Duration::from_secs(5),
                ItemInput::Null,
            );
            let input = steps.continuation(|l| l.clone(), b"");
            let first_line =
                String::from_utf8_lossy(&input[..input.iter().position(|b| *b == b'\n').unwrap()])
                    .into_owned();
            assert_eq!(first_line.starts_with("- "), how == "- ", "{first_line}");
            let whole = input.len();
            for cut in [0, 3, 40, whole / 2, whole - 2, whole - 1] {
                let started = std::time::Instant::now();
                let (mut first, next, waited) = run_held(&check, &steps, b"", Duration::ZERO, Some(cut));
                assert!(started.elapsed() < Duration::from_secs(5), "cut {cut}");
                assert!(waited);
                assert_eq!(
                    first.item(0, Duration::from_secs(5)).unwrap().output.code,
                    Some(0)
                );
                assert_eq!(next.code, Some(0), "cut {cut}");
                assert!(!marker.exists(), "a script cut to {cut} of {whole} bytes ran");
            }
            let (_, mut next, _) = run_held(&check, &steps, b"", Duration::ZERO, None);
            assert_eq!(next.item(0, Duration::from_secs(5)).unwrap().output.code, Some(0));
            assert!(marker.exists(), "the whole script of {whole} bytes ran");
            std::fs::remove_file(&marker).unwrap();
        }
    }

    /// A plain program is started by the script's shell, not through `sh -c`: the
    /// script's text says so, and the program gets its words, exit code, input and
    /// "not found" as under `sh -c`.
    #[test]
    fn a_plain_program_runs_without_a_shell_of_its_own() {
        let mut s = Script::new(false);
        s.push(
            "env printf %s 'a b; $(id)'",
            Duration::from_secs(5),
            ItemInput::Null,
        );
        s.push(
            "no-such-program-drover x",
            Duration::from_secs(5),
            ItemInput::Null,
        );
        s.push("head -c 2", Duration::from_secs(5), ItemInput::Script);
        s.push(
            "grep -q nothing-here /dev/null",
            Duration::from_secs(5),
            ItemInput::Null,
        );
        let text = s.text();
        assert!(!text.contains("sh -c"), "{text}");
        let mut out = run(&s, b"xyz");
        let a = out.item(0, Duration::from_secs(5)).unwrap();
        assert_eq!((a.output.code, a.output.stdout.as_str()), (Some(0), "a b; $(id)"));
        let b = out.item(1, Duration::from_secs(5)).unwrap();
        assert_eq!(b.output.code, Some(127), "{b:?}");
        assert!(
            b.output.stderr.contains("no-such-program-drover: not found"),
            "{b:?}"
        );
        let c = out.item(2, Duration::from_secs(5)).unwrap();
        assert_eq!(c.output.stdout, "xy");
        assert_eq!(out.item(3, Duration::from_secs(5)).unwrap().output.code, Some(1));
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
            "tr '\\0' ' ' < /proc/$PPID/cmdline",
            Duration::from_secs(5),
            ItemInput::Null,
        );
        s.push("exit 1", Duration::from_secs(5), ItemInput::Null);
        let mut out = run(&s, b"");
        let a = out.item(0, Duration::from_secs(5)).unwrap();
        assert_eq!(a.output.code, Some(0));
        assert!(a.output.stdout.contains("_B 0"), "{}", a.output.stdout);
        assert_eq!(out.item(1, Duration::from_secs(5)).unwrap().output.code, Some(1));
    }

    /// `set`'s listing without the lines that differ between any two shells (`PPID`).
    fn listing(out: &str) -> Vec<&str> {
        out.lines().filter(|l| !l.starts_with("PPID=")).collect()
    }

    /// Shell code runs in a subshell of the script's shell, not a `sh -c` of its own,
    /// and sees what a `sh -c` sees: no variable or function of the script (also in a
    /// held shell's next script, which has more of them), no positional parameters; its
    /// `exit` and syntax errors are its own. Code that asks for its shell's pid keeps a
    /// shell of its own.
    #[test]
    fn shell_code_runs_in_a_subshell_that_sees_what_sh_c_sees() {
        let probe = "set; echo \"args $#\"; type m _w _B 2>&1 | grep -c function; true";
        let mut check = Script::new(false);
        check.push(probe, Duration::from_secs(5), ItemInput::Null);
        check.push(
            &format!("exec sh -c '{}'", probe.replace('\'', "'\\''")),
            Duration::from_secs(5),
            ItemInput::Null,
        );
        let check = check.hold();
        assert_eq!(check.text().matches("sh -c").count(), 1, "{}", check.text());
        let mut steps = Script::new(false);
        steps.push(probe, Duration::from_secs(5), ItemInput::Null);
        steps.push("exit 3", Duration::from_secs(5), ItemInput::Null);
        steps.push("if then fi", Duration::from_secs(5), ItemInput::Null);
        steps.push("echo \"$$ $PPID\"", Duration::from_secs(5), ItemInput::Null);
        steps.push("echo after", Duration::from_secs(5), ItemInput::Null);
        // A plain program, started by the held shell itself: its parent is that shell.
        steps.push("sh -c 'echo $PPID'", Duration::from_secs(5), ItemInput::Null);
        let (mut first, mut next, _) = run_held(&check, &steps, b"", Duration::ZERO, None);
        let sub = first.item(0, Duration::from_secs(5)).unwrap().output;
        let own = first.item(1, Duration::from_secs(5)).unwrap().output;
        assert_eq!((sub.code, own.code), (Some(0), Some(0)), "{sub:?} {own:?}");
        assert!(sub.stdout.contains("args 0\n0\n"), "{}", sub.stdout);
        assert_eq!(listing(&sub.stdout), listing(&own.stdout));
        let held = next.item(0, Duration::from_secs(5)).unwrap().output;
        assert_eq!(listing(&held.stdout), listing(&own.stdout));
        assert_eq!(next.item(1, Duration::from_secs(5)).unwrap().output.code, Some(3));
        let syntax = next.item(2, Duration::from_secs(5)).unwrap().output;
        assert_eq!(syntax.code, Some(2), "{syntax:?}");
        assert!(syntax.stderr.contains("Syntax error"), "{syntax:?}");
        let pids = next.item(3, Duration::from_secs(5)).unwrap().output;
        let (pid, ppid) = pids.stdout.trim_end().split_once(' ').unwrap();
        assert_ne!(pid, ppid, "`$$` is a shell of its own: {pids:?}");
        let after = next.item(4, Duration::from_secs(5)).unwrap().output;
        assert_eq!(after.stdout, "after\n");
        // Code that asks for `$PPID` is a child of the held shell, as under `sh -c`; in a
        // subshell it would get the held shell's own parent.
        let held_shell = next.item(5, Duration::from_secs(5)).unwrap().output;
        assert_eq!(ppid, held_shell.stdout.trim_end(), "{pids:?} {held_shell:?}");
    }

    /// Each thing a subshell answers otherwise sends its command to a `sh -c` of its
    /// own; ordinary shell code does not.
    #[test]
    fn only_code_that_asks_for_its_own_shell_gets_one() {
        for own in [
            "echo $$",
            "echo ${$}",
            "echo $PPID",
            "sleep 9 & echo $!",
            "echo ${!}",
            "echo $-",
            "echo ${-}",
            "echo $LINENO",
            "trap",
            "trap 'rm -f x' EXIT; work",
        ] {
            assert!(needs_own_shell(own), "{own}");
            let mut s = Script::new(false);
            s.push(own, Duration::from_secs(5), ItemInput::Null);
            assert!(s.text().contains("sh -c "), "{own}");
        }
        for sub in [
            "uname -r | grep -q .",
            "test -d /x && exit 0 || exit 1",
            "cd /tmp; ls $HOME",
        ] {
            assert!(!needs_own_shell(sub), "{sub}");
            let mut s = Script::new(false);
            s.push(sub, Duration::from_secs(5), ItemInput::Null);
            assert!(!s.text().contains("sh -c "), "{sub}");
        }
    }

    /// File steps whose content a held shell gets in their text: the continuation
    /// carries only the shares of the others, each command still reads what it should,
    /// and a fresh session's script reads every share from its input as before.
    #[test]
    fn a_held_shell_gets_inlined_contents_in_the_text_and_only_the_rest_on_its_input() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let framed = |p: &std::path::Path, n: usize| {
            ShellLine::new()
                .code("head -c ")
                .number(u64::try_from(n).unwrap())
                .code(" > ")
                .value(p.to_str().unwrap())
        };
        let inline = |content: &str| {
            ShellLine::new()
                .code("printf %s ")
                .value(content)
                .code(" > ")
                .value(a.to_str().unwrap())
        };
        let stdin = b"FRAMED\nsecond";
        let mut check = Script::new(false);
        check.push("true", Duration::from_secs(5), ItemInput::Null);
        let check = check.hold();
        // Read by the held shell line by line, and (past READ_BY_LINE) with `head`.
        for content in ["INLINE".to_string(), "I".repeat(READ_BY_LINE)] {
            let mut steps = Script::new(true);
            steps.push_own_file(&framed(&a, 7), Some(&inline(&content)), 7, Duration::from_secs(5));
            steps.push_own_file(&framed(&b, 6), None, 6, Duration::from_secs(5));
            let input = steps.continuation(|l| l.clone(), stdin);
            assert!(input.ends_with(b"second"), "only the second share follows");
            assert!(!input.windows(6).any(|w| w == b"FRAMED"));
            let (_, mut next, _) = run_held(&check, &steps, stdin, Duration::ZERO, None);
            for i in 0..2 {
                assert_eq!(next.item(i, Duration::from_secs(5)).unwrap().output.code, Some(0));
            }
            assert_eq!(std::fs::read(&a).unwrap(), content.as_bytes());
            assert_eq!(std::fs::read(&b).unwrap(), b"second");
            std::fs::remove_file(&b).unwrap();
        }
        let mut steps = Script::new(true);
        steps.push_own_file(&framed(&a, 7), Some(&inline("INLINE")), 7, Duration::from_secs(5));
        steps.push_own_file(&framed(&b, 6), None, 6, Duration::from_secs(5));
        let mut out = run(&steps, b"FRAMED\nsecond");
        for i in 0..2 {
            assert_eq!(out.item(i, Duration::from_secs(5)).unwrap().output.code, Some(0));
        }
        assert_eq!(std::fs::read(&a).unwrap(), b"FRAMED\n");
        assert_eq!(std::fs::read(&b).unwrap(), b"second");
        // A share of unknown length (a command reading the input) before: no inlining.
        let mut mixed = Script::new(true);
        mixed.push("head -c 1", Duration::from_secs(5), ItemInput::Script);
        mixed.push_own_file(&framed(&a, 7), Some(&inline("INLINE")), 7, Duration::from_secs(5));
        let input = mixed.continuation(|l| l.clone(), b"xFRAMED");
        assert!(input.ends_with(b"\nxFRAMED"));
    }

    /// A next script with lines (a user command of several) arrives whole through the
    /// held shell's line-by-line `read`: backslashes, blanks and empty lines intact.
    #[test]
    fn a_next_script_of_several_lines_reaches_the_held_shell_intact() {
        let mut check = Script::new(false);
        check.push("true", Duration::from_secs(5), ItemInput::Null);
        let text = "printf '%s|' \"  lead\" 'back\\slash' \\\n  'x'\n\nprintf '[%s]\\n' \"\n  two\n\"";
        let long = format!("{text}\n: '{}\n\n'", "y\n".repeat(READ_BY_LINE));
        let check = check.hold();
        for text in [text, long.as_str()] {
            let mut steps = Script::new(true);
            steps.push(text, Duration::from_secs(5), ItemInput::Null);
            let alone = std::process::Command::new("sh")
                .arg("-c")
                .arg(text)
                .output()
                .unwrap();
            let (_, mut next, _) = run_held(&check, &steps, b"", Duration::ZERO, None);
            let o = next.item(0, Duration::from_secs(5)).unwrap().output;
            assert_eq!(o.code, Some(0), "{o:?}");
            assert_eq!(o.stdout.as_bytes(), alone.stdout.as_slice());
        }
    }
}
