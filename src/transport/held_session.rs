//! A script's session kept open after its commands, so that the node's next script runs
//! in the same shell ([`super::Script::hold`]): a node's check, and at its turn its steps,
//! are one session, one login shell and one `sh` on the node.
//!
//! The session lives in a task of its own (the remote child borrows the master it was
//! started on, which the task owns). The task runs the held script until its shell says
//! it waits, hands that part's output back, then waits for one [`Continuation`] or for
//! being dropped (which closes the shell's input: it exits). A shell that goes away
//! meanwhile (the node rebooted, the connection broke) is seen as its output closing,
//! and the session is not used again: the next script gets a session of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use openssh::Stdio;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

use super::exec_output::{OutputSink, read_outputs};
use super::frame_reader::FrameReader;
use super::remote_kill::{Pending, RemoteKill};
use super::ssh::{PidFirst, Ran, exit_of};
use super::ssh_master::Master;
use super::{TransportError, ran_out_of_time};

/// How long a held shell whose input was closed may take to exit before it is killed.
const CLOSE_LIMIT: Duration = Duration::from_secs(15);

/// A held session: what the connection keeps to run the node's next script on it.
pub(super) struct HeldSession {
    node: String,
    master: Arc<Master>,
    next: mpsc::Sender<Part>,
    alive: Arc<AtomicBool>,
    /// Becomes true when the session's task has ended (and let go of the master).
    done: watch::Receiver<bool>,
}

/// Tells the session's handles that its task ended, however it ended.
struct Done(watch::Sender<bool>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

/// What became of a next script sent to a held session.
// A return value, moved once: its size costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub(super) enum HeldRun {
    /// It ran (see [`start`] for the outcome).
    Ran(Option<(PartOutput, Option<HeldSession>)>),
    /// The session had ended before it could be handed over: nothing of it ran.
    Unsent,
}

/// One script for the session's shell: its input (none for the first, which is the
/// command itself; else [`super::Script::continuation`]), the readers of its frames,
/// whether it holds the shell again, and where its outcome goes.
struct Part {
    input: Option<Vec<u8>>,
    readers: (FrameReader, FrameReader),
    timeout: Duration,
    holds: bool,
    reply: oneshot::Sender<Result<PartOutput, TransportError>>,
}

/// A part as it ended: `waiting` when the shell waits for the next one.
pub(super) struct PartOutput {
    pub(super) ran: Ran<FrameReader>,
    pub(super) waiting: bool,
}

/// What [`start`] needs: the node (for errors), the master, the held script's command
/// and its frames' readers, its limit, and the kill counts.
pub(super) struct Start {
    pub(super) node: String,
    pub(super) master: Arc<Master>,
    pub(super) remote: String,
    pub(super) readers: (FrameReader, FrameReader),
    pub(super) timeout: Duration,
    pub(super) limit: Duration,
    pub(super) pending: [Pending; 2],
}

/// Runs `remote` (a held script) on a new session. `None`: the controller gave up
/// after the limit (plus a grace for the node's own kill), and the command is killed on
/// the node. With its output, the session when its shell waits for the next script.
pub(super) async fn start(s: Start) -> Result<Option<(PartOutput, Option<HeldSession>)>, TransportError> {
    let (next, rx) = mpsc::channel(1);
    let alive = Arc::new(AtomicBool::new(false));
    let (done_tx, done) = watch::channel(false);
    let held = HeldSession {
        node: s.node.clone(),
        master: Arc::clone(&s.master),
        next,
        alive: Arc::clone(&alive),
        done,
    };
    let (reply, answer) = oneshot::channel();
    let first = Part {
        input: None,
        readers: s.readers,
        timeout: s.timeout,
        holds: true,
        reply,
    };
    let limit = s.limit;
    let links = Links {
        next: rx,
        alive,
        done: Done(done_tx),
    };
    tokio::spawn(session(s.node, s.master, s.remote, s.pending, first, links));
    held.answer(answer, limit).await
}

impl HeldSession {
    /// Whether the next script can run here: the shell still waits, on `master`.
    pub(super) fn usable(&self, master: &Arc<Master>) -> bool {
        self.alive.load(Ordering::Acquire) && Arc::ptr_eq(&self.master, master) && !self.next.is_closed()
    }

    /// Closes the waiting shell's input and waits (bounded) until it has exited and the
    /// task has let go of the master, so that closing the master after this closes it.
    pub(super) async fn close(self) {
        let HeldSession { next, mut done, .. } = self;
        drop(next);
        let _ = tokio::time::timeout(CLOSE_LIMIT + Duration::from_secs(1), done.wait_for(|d| *d)).await;
    }

    /// Runs the next script (its `input` made by [`super::Script::continuation`]) in the
    /// held shell; see [`start`] for the outcome. `Unsent`: the session had ended (its
    /// shell gone) before the script could be handed to it, so nothing of it ran.
    pub(super) async fn run(
        self,
        input: Vec<u8>,
        readers: (FrameReader, FrameReader),
        timeout: Duration,
        limit: Duration,
        holds: bool,
    ) -> Result<HeldRun, TransportError> {
        let (reply, answer) = oneshot::channel();
        self.alive.store(false, Ordering::Release);
        let part = Part {
            input: Some(input),
            readers,
            timeout,
            holds,
            reply,
        };
        if self.next.send(part).await.is_err() {
            return Ok(HeldRun::Unsent);
        }
        self.answer(answer, limit).await.map(HeldRun::Ran)
    }

    async fn answer(
        self,
        answer: oneshot::Receiver<Result<PartOutput, TransportError>>,
        limit: Duration,
    ) -> Result<Option<(PartOutput, Option<HeldSession>)>, TransportError> {
        match tokio::time::timeout(limit + Duration::from_secs(15), answer).await {
            // Dropping the answer's receiver makes the session kill the command.
            Err(_) => Ok(None),
            Ok(Err(_)) => Err(self.lost("the session's task ended without an outcome")),
            Ok(Ok(r)) => {
                let out = r?;
                let again = out.waiting.then_some(self);
                Ok(Some((out, again)))
            }
        }
    }

    fn lost(&self, message: &str) -> TransportError {
        TransportError::Lost {
            node: self.node.clone(),
            message: message.into(),
        }
    }
}

/// Reads `pipe` into `sink` until `done` says so (`true`) or the pipe closes (`false`).
async fn read_until<R: AsyncRead + Unpin, S: OutputSink>(
    pipe: &mut Option<R>,
    sink: &mut S,
    done: impl Fn(&S) -> bool,
) -> bool {
    let Some(p) = pipe.as_mut() else {
        return false;
    };
    let mut buf = vec![0u8; 8192];
    while !done(sink) {
        match p.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => sink.push(&buf[..n]),
        }
    }
    true
}

/// What ties the session's task to its [`HeldSession`]s: the next parts, whether the
/// shell waits, and the task's end.
struct Links {
    next: mpsc::Receiver<Part>,
    alive: Arc<AtomicBool>,
    done: Done,
}

/// The session's task: runs `first`, then each next part while the shell waits. A part
/// whose reply is dropped (its controller gave up) has its command killed on the node;
/// a session dropped while its shell waits has its input closed, and the shell exits.
async fn session(
    node: String,
    master: Arc<Master>,
    remote: String,
    pending: [Pending; 2],
    first: Part,
    links: Links,
) {
    let Links {
        mut next,
        alive,
        done,
    } = links;
    // Dropped last (after the master, moved in below): its signal means the master is
    // let go.
    let _done = done;
    let master = master;
    let lost = |e: &openssh::Error| TransportError::Lost {
        node: node.clone(),
        message: super::ssh::error_text(e),
    };
    let pid = Arc::new(OnceLock::new());
    let mut kill = RemoteKill {
        master: Arc::clone(&master),
        pid: Arc::clone(&pid),
        pending,
        armed: true,
    };
    let mut cmd = master.session.raw_command(remote.as_str());
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn().await {
        Ok(c) => c,
        Err(e) => {
            let _ = first.reply.send(Err(lost(&e)));
            return;
        }
    };
    let mut stdin = child.stdin().take();
    let mut stdout = child.stdout().take();
    let mut stderr = child.stderr().take();
    let mut part = first;
    let mut pid_line = Some(pid);
    loop {
        let Part {
            mut input,
            readers: (mut out, err),
            timeout,
            holds,
            mut reply,
        } = part;
        kill.armed = true;
        let started = Instant::now();
        // The first part's stderr begins with the wrapper's pid line.
        let mut err = match pid_line.take() {
            Some(p) => PidFirst::new(p, err),
            None => PidFirst::passed(err),
        };
        let waiting = holds && {
            let data = input.take();
            let write = async {
                if let (Some(data), Some(pipe)) = (data, stdin.as_mut()) {
                    // A shell that is gone closes the pipe early; its exit tells.
                    let _ = pipe.write_all(&data).await;
                    let _ = pipe.flush().await;
                }
            };
            let reading = async {
                let ((), a, b) = tokio::join!(
                    write,
                    read_until(&mut stdout, &mut out, |r| r.waiting),
                    read_until(&mut stderr, &mut err, |r| r.inner().waiting),
                );
                a && b
            };
            tokio::select! {
                w = reading => w,
                () = reply.closed() => return,
            }
        };
        if !waiting {
            // The part ends the session (its shell exits after it), or the shell ended
            // (or broke): the script's outcome is that. Its input (a last part's) is
            // written and closed while the output is read, until the pipes close or
            // shortly after the exit when a process one of its commands left running
            // holds them (see `AFTER_EXIT`).
            let mut pipe = stdin.take();
            let write = async move {
                if let (Some(data), Some(p)) = (input, pipe.as_mut()) {
                    let _ = p.write_all(&data).await;
                    let _ = p.flush().await;
                }
                if let Some(mut p) = pipe {
                    let _ = p.shutdown().await;
                }
            };
            let work = async {
                tokio::join!(
                    write,
                    read_outputs(stdout.take(), out, stderr.take(), err, child.wait())
                )
            };
            let ((), (out, err, status)) = tokio::select! {
                r = work => r,
                () = reply.closed() => return,
            };
            kill.armed = false;
            let (code, gone) = exit_of(status, &master, lost).await;
            let _ = reply.send(Ok(PartOutput {
                ran: Ran {
                    code,
                    stdout: out,
                    stderr: err.into_inner(),
                    timed_out: ran_out_of_time(code, started.elapsed(), timeout),
                    lost: gone,
                },
                waiting: false,
            }));
            return;
        }
        // Waiting for the next script runs nothing: no kill is owed if the task goes.
        kill.armed = false;
        alive.store(true, Ordering::Release);
        let output = PartOutput {
            ran: Ran {
                code: Some(0),
                stdout: out,
                stderr: err.into_inner(),
                timed_out: false,
                lost: None,
            },
            waiting: true,
        };
        if reply.send(Ok(output)).is_err() {
            break;
        }
        let mut probe = [0u8; 512];
        let got = tokio::select! {
            p = next.recv() => p,
            // Output while waiting, or its end: the shell is gone or not ours to trust.
            _ = async { stdout.as_mut()?.read(&mut probe).await.ok() } => None,
        };
        match got {
            Some(p) => part = p,
            None => break,
        }
    }
    alive.store(false, Ordering::Release);
    drop(stdin);
    let _ = tokio::time::timeout(CLOSE_LIMIT, child.wait()).await;
}
