//! SSH through the system `ssh` client with one multiplexed master per node.
//!
//! Using OpenSSH itself means the user's `~/.ssh/config`, agent, `known_hosts`, jump
//! hosts and key types all work as they do in a terminal. drover starts each master
//! itself ([`Master::launch`]) and talks to it through its control socket.
//!
//! A connection heals itself: before every command it asks its master whether it is
//! alive (a message on a local socket, no process) and starts a new one when it is not,
//! so a master that died while the node waited for its turn, sat through a long drain,
//! or was killed, is replaced before the next step, check or hook, and a retry always
//! runs on a live connection. [`Connection::release`] closes a master while keeping the
//! connection usable, so thousands of nodes waiting for their turn hold no ssh process.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use openssh::Stdio;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::connection::{Connection, Connector, ran_out_of_time, remote_held, remote_script};
use super::exec_output::{OutputSink, OutputTail, read_outputs};
use super::held_session::{self, HeldRun, HeldSession, PartOutput};
use super::remote_kill::{PID_MARKER, Pending, RemoteKill};
use super::script::{Script, ScriptOutput};
use super::ssh_master::{Master, SshSetup};
use super::ssh_options::SshOptions;
use super::{ExecOutput, NodeLocks, TransportError};
use crate::inventory::{Inventory, Node};

/// Opens [`SshConnection`]s; cheap to clone (clones share the control directory and
/// the count of remote kills in flight).
#[derive(Debug, Clone)]
pub struct SshConnector {
    setup: Arc<SshSetup>,
    /// Group settings of each node, by node name, already merged over the site's.
    by_node: Arc<HashMap<String, SshOptions>>,
    /// Where control sockets live (`/tmp/drover-<pid>`).
    pub control_dir: PathBuf,
    next_socket: Arc<AtomicU64>,
    kills: Pending,
}

impl SshConnector {
    /// A connector for the nodes of `inventory`. Cleans up control directories (and
    /// masters) that dead drover processes left in the temp dir first.
    pub fn new(setup: SshSetup, inventory: &Inventory) -> std::io::Result<Self> {
        let base = std::env::temp_dir();
        super::control_dir::clean_dead(&base);
        let control_dir = super::control_dir::create(&base)?;
        if setup.host_keys == super::HostKeyPolicy::AcceptNew
            && let Some(parent) = setup.known_hosts.parent()
        {
            std::fs::create_dir_all(parent)?;
        }
        let mut by_node = HashMap::new();
        for (group, options) in &setup.groups {
            let Some(ids) = inventory.groups().get(group) else {
                continue;
            };
            for id in ids {
                let name = &inventory.node(*id).name;
                let merged: &SshOptions = by_node.get(name).unwrap_or(&setup.defaults);
                let merged = merged.overlaid(options);
                by_node.insert(name.clone(), merged);
            }
        }
        Ok(SshConnector {
            setup: Arc::new(setup),
            by_node: Arc::new(by_node),
            control_dir,
            next_socket: Arc::new(AtomicU64::new(1)),
            kills: Pending::default(),
        })
    }

    /// The settings a node is reached with: site, then its groups, then its own.
    pub fn options_for(&self, node: &Node) -> SshOptions {
        let base = self.by_node.get(&node.name).unwrap_or(&self.setup.defaults);
        let mut own = node.address.ssh.clone();
        own.user = node.address.user.clone().or(own.user);
        own.port = node.address.port.or(own.port);
        let root = &self.setup.root;
        own.identity_file = own.identity_file.map(|f| root.join(f));
        own.known_hosts = own.known_hosts.iter().map(|f| root.join(f)).collect();
        base.overlaid(&own)
    }

    /// Waits (bounded) for the kills of commands whose futures were dropped, then
    /// removes the control directory. Call once every connection is closed or dropped.
    pub async fn shutdown(&self) {
        self.kills.settled(Duration::from_secs(20)).await;
        let _ = std::fs::remove_dir_all(&self.control_dir);
    }
}

/// A node's connection: its settings and, while it is open, its master.
pub struct SshConnection {
    node: String,
    host: String,
    options: SshOptions,
    connector: SshConnector,
    master: Mutex<Option<Arc<Master>>>,
    /// The key exchange the last master negotiated (kept across `release`).
    kex: std::sync::Mutex<Option<String>>,
    kills: Pending,
    /// The last held script's session, waiting to run the next script.
    held: std::sync::Mutex<Option<HeldSession>>,
}

impl Connector for SshConnector {
    type Conn = SshConnection;

    async fn connect(&self, node: &Node) -> Result<SshConnection, TransportError> {
        let conn = SshConnection {
            node: node.name.clone(),
            host: node.address.host.clone(),
            options: self.options_for(node),
            connector: self.clone(),
            master: Mutex::new(None),
            kex: std::sync::Mutex::new(None),
            kills: Pending::default(),
            held: std::sync::Mutex::new(None),
        };
        conn.live_master().await?;
        Ok(conn)
    }
}

impl SshConnection {
    /// The open master if it still answers, else a new one.
    async fn live_master(&self) -> Result<Arc<Master>, TransportError> {
        let mut slot = self.master.lock().await;
        if let Some(m) = slot.as_ref()
            && m.session.check().await.is_ok()
        {
            return Ok(Arc::clone(m));
        }
        // A dead master's socket is removed with it.
        *slot = None;
        let c = &self.connector;
        let n = c.next_socket.fetch_add(1, Ordering::Relaxed);
        let ctl = c.control_dir.join(n.to_string());
        match Master::launch(&c.setup, &self.host, &self.options, ctl).await {
            Ok(m) => {
                if let (Some(k), Ok(mut last)) = (&m.kex, self.kex.lock()) {
                    *last = Some(k.clone());
                }
                let m = Arc::new(m);
                *slot = Some(Arc::clone(&m));
                Ok(m)
            }
            Err(e) if e.host_key => Err(TransportError::HostKey {
                node: self.node.clone(),
                message: e.message,
            }),
            Err(e) => Err(TransportError::Connect {
                node: self.node.clone(),
                message: e.message,
            }),
        }
    }

    /// The host key the node presented to the open master, as the known_hosts file ssh
    /// checked it against (or, with `accept-new`, recorded it in) holds it: `type
    /// base64`. Needs a connector whose setup logs the key exchange
    /// ([`SshSetup::log_kex`]); `None` without it or when no file has the key.
    pub async fn host_key(&self) -> Option<String> {
        let presented = self.master.lock().await.as_ref()?.server_key.clone()?;
        let fp = presented.split_whitespace().nth(1)?.to_string();
        let files = super::host_key::files_for(&self.connector.setup, &self.options, &self.host).await;
        super::host_key::find_in(&files, &fp)
    }

    /// The key exchange the last master negotiated, when the connector logs it.
    pub async fn kex(&self) -> Option<String> {
        self.kex.lock().ok().and_then(|k| k.clone())
    }

    /// The pid of the open master's ssh process (tests kill it to see a retry heal).
    pub async fn master_pid(&self) -> Option<u32> {
        let ctl = self.master.lock().await.as_ref()?.ctl().to_path_buf();
        let mut c = openssh_mux_client::Connection::connect(&ctl).await.ok()?;
        c.send_alive_check().await.ok().map(std::num::NonZeroU32::get)
    }
}

impl Connection for SshConnection {
    async fn exec(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<ExecOutput, TransportError> {
        let remote = remote_script(command, timeout, None);
        self.run(remote, stdin, timeout, timeout).await
    }

    async fn exec_locked(
        &self,
        locks: &NodeLocks,
        command: &str,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<ExecOutput, TransportError> {
        let remote = remote_script(command, timeout, Some((locks, &self.node)));
        self.run(remote, stdin, timeout, timeout * 2).await
    }

    async fn client_ssh_args(&self) -> Result<Option<Vec<String>>, TransportError> {
        let master = self.live_master().await?;
        let args =
            super::ssh_master::client_args(&self.connector.setup, &self.options, master.ctl(), master.log());
        Ok(Some(
            args.into_iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
        ))
    }

    async fn exec_script(
        &self,
        script: &Script,
        stdin: Option<Vec<u8>>,
        locks: Option<&NodeLocks>,
    ) -> Result<ScriptOutput, TransportError> {
        let timeout = script.timeout();
        // Waiting for the lock may take up to the timeout on top, as for `exec_locked`.
        let limit = if locks.is_some() { timeout * 2 } else { timeout };
        if let Some(held) = self.take_held() {
            let master = self.live_master().await?;
            if held.usable(&master) {
                let input = script.continuation(
                    |body| match locks {
                        Some(l) => l.wrap(&self.node, timeout, body),
                        None => body.clone(),
                    },
                    stdin.as_deref().unwrap_or_default(),
                );
                let sent = held
                    .run(input, script.readers(), timeout, limit, script.holds())
                    .await?;
                // A session that had ended, or a shell that ended cleanly having started
                // none of the script's commands (it could not read it whole), never ran
                // it: a session of its own runs it instead.
                if let HeldRun::Ran(ran) = sent {
                    let untouched = ran.as_ref().is_some_and(|(p, _)| {
                        p.ran.code == Some(0)
                            && p.ran.lost.is_none()
                            && p.ran.stdout.frames.is_empty()
                            && p.ran.stderr.frames.is_empty()
                    });
                    if !untouched || script.is_empty() {
                        return Ok(self.keep(script, ran));
                    }
                }
            }
        }
        if script.holds() && stdin.is_none() && locks.is_none() {
            let ran = held_session::start(held_session::Start {
                node: self.node.clone(),
                master: self.live_master().await?,
                remote: remote_held(&script.held_text()),
                readers: script.readers(),
                timeout,
                limit,
                pending: [self.kills.clone(), self.connector.kills.clone()],
            })
            .await?;
            return Ok(self.keep(script, ran));
        }
        let remote = remote_script(&script.text(), timeout, locks.map(|l| (l, self.node.as_str())));
        let ran = self
            .run_into(remote, stdin, timeout, limit, script.readers())
            .await?;
        Ok(match ran {
            None => ScriptOutput::abandoned(script),
            Some(r) => ScriptOutput::new(r.stdout, r.stderr, r.code, r.timed_out, r.lost),
        })
    }

    async fn describe(&self) -> Option<String> {
        self.kex().await.map(|k| format!("kex {k}"))
    }

    async fn release(&self) {
        // Commands still running keep their master (they hold it) until they end; a
        // held shell's input closes, and it exits.
        if let Some(h) = self.take_held() {
            h.close().await;
        }
        self.master.lock().await.take();
    }

    async fn close(self) {
        if let Some(h) = self.take_held() {
            h.close().await;
        }
        self.kills.settled(Duration::from_secs(20)).await;
        self.master.lock().await.take();
    }
}

impl SshConnection {
    fn take_held(&self) -> Option<HeldSession> {
        self.held.lock().ok().and_then(|mut h| h.take())
    }

    /// A held session's part as the script's output, keeping the session when its
    /// shell waits for the next script.
    fn keep(&self, script: &Script, ran: Option<(PartOutput, Option<HeldSession>)>) -> ScriptOutput {
        let Some((part, again)) = ran else {
            return ScriptOutput::abandoned(script);
        };
        if let (Some(h), Ok(mut slot)) = (again, self.held.lock()) {
            *slot = Some(h);
        }
        let r = part.ran;
        ScriptOutput::new(r.stdout, r.stderr, r.code, r.timed_out, r.lost)
    }

    /// Runs `remote` on a new session of a live master; the controller waits up to
    /// `limit` (plus a grace for the node's own kill) before it gives up on the command.
    /// Starting the session, feeding stdin and reading output all happen inside that
    /// limit, and stdin is written while output is read.
    async fn run(
        &self,
        remote: String,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
        limit: Duration,
    ) -> Result<ExecOutput, TransportError> {
        let sinks = (OutputTail::default(), OutputTail::default());
        match self.run_into(remote, stdin, timeout, limit, sinks).await? {
            None => Ok(ExecOutput::abandoned()),
            Some(Ran { lost: Some(e), .. }) => Err(e),
            Some(r) => Ok(ExecOutput {
                code: r.code,
                stdout: r.stdout.into_text(),
                stderr: r.stderr.into_text(),
                timed_out: r.timed_out,
            }),
        }
    }

    /// [`Self::run`] with the output read into `sinks` (stdout, stderr). `None`: the
    /// controller gave up waiting. A connection that broke after the command started
    /// is `lost`, with what was read before.
    async fn run_into<S: OutputSink>(
        &self,
        remote: String,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
        limit: Duration,
        sinks: (S, S),
    ) -> Result<Option<Ran<S>>, TransportError> {
        let master = self.live_master().await?;
        let started = Instant::now();
        let mut kill = RemoteKill {
            master: Arc::clone(&master),
            pid: Arc::new(OnceLock::new()),
            pending: [self.kills.clone(), self.connector.kills.clone()],
            armed: true,
        };
        let pid = Arc::clone(&kill.pid);
        let work = async {
            let mut cmd = master.session.raw_command(remote);
            cmd.stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            let mut child = cmd.spawn().await.map_err(|e| self.lost(&e))?;
            let feed = child.stdin().take();
            let write = async move {
                if let (Some(data), Some(mut pipe)) = (stdin, feed) {
                    // A command that does not read its input closes the pipe early;
                    // its exit code tells.
                    let _ = pipe.write_all(&data).await;
                    let _ = pipe.shutdown().await;
                }
            };
            // Not `wait_with_output`: it turns two ordinary outcomes into errors (exit
            // code 127 becomes "remote command not found", death by a signal "the
            // remote process has terminated") and drops the output, which tells why.
            // Read until the pipes close, or shortly after the exit when a process the
            // command left running holds them (see `AFTER_EXIT`).
            let (stdout, stderr) = (child.stdout().take(), child.stderr().take());
            // stderr begins with the wrapper's `drover-pid N` line, taken into `pid`.
            let err = PidFirst::new(Arc::clone(&pid), sinks.1);
            let ((), (stdout, stderr, status)) =
                tokio::join!(write, read_outputs(stdout, sinks.0, stderr, err, child.wait()));
            Ok::<_, TransportError>((stdout, stderr.into_inner(), status))
        };
        let grace = limit + Duration::from_secs(15);
        let Ok(done) = tokio::time::timeout(grace, work).await else {
            // Still running past its own timeout: the kill guard stops it.
            return Ok(None);
        };
        kill.armed = false;
        let (stdout, stderr, status) = done?;
        let (code, lost) = exit_of(status, &master, |e| self.lost(e)).await;
        Ok(Some(Ran {
            code,
            stdout,
            stderr,
            timed_out: ran_out_of_time(code, started.elapsed(), timeout),
            lost,
        }))
    }

    fn lost(&self, e: &openssh::Error) -> TransportError {
        TransportError::Lost {
            node: self.node.clone(),
            message: error_text(e),
        }
    }
}

/// What a command did, its output read into sinks of type `S`.
pub(super) struct Ran<S> {
    pub(super) code: Option<i32>,
    pub(super) stdout: S,
    pub(super) stderr: S,
    pub(super) timed_out: bool,
    pub(super) lost: Option<TransportError>,
}

/// A remote command's exit code from its status, and whether the connection broke.
/// Not `wait_with_output`'s errors: exit code 127 is "remote command not found" there,
/// and death by a signal "the remote process has terminated".
pub(super) async fn exit_of(
    status: Result<std::process::ExitStatus, openssh::Error>,
    master: &Master,
    lost: impl Fn(&openssh::Error) -> TransportError,
) -> (Option<i32>, Option<TransportError>) {
    match status {
        Ok(status) => (status.code(), None),
        Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => (Some(127), None),
        // Killed by a signal, or the connection dropped: the master tells which.
        Err(openssh::Error::RemoteProcessTerminated) => match master.session.check().await {
            Ok(()) => (None, None),
            Err(e) => (None, Some(lost(&e))),
        },
        Err(e) => (None, Some(lost(&e))),
    }
}

/// A sink that takes the wrapper's `drover-pid N` line (the first line of stderr) into
/// `pid` and passes everything else on.
pub(super) struct PidFirst<S> {
    pid: Arc<OnceLock<u32>>,
    head: Vec<u8>,
    in_head: bool,
    inner: S,
}

impl<S: OutputSink> PidFirst<S> {
    pub(super) fn new(pid: Arc<OnceLock<u32>>, inner: S) -> PidFirst<S> {
        PidFirst {
            pid,
            head: Vec::new(),
            in_head: true,
            inner,
        }
    }

    /// A sink for a stream whose pid line has been read already.
    pub(super) fn passed(inner: S) -> PidFirst<S> {
        PidFirst {
            pid: Arc::new(OnceLock::new()),
            head: Vec::new(),
            in_head: false,
            inner,
        }
    }

    pub(super) fn inner(&self) -> &S {
        &self.inner
    }

    /// The sink, with a first line that never ended passed on to it.
    pub(super) fn into_inner(mut self) -> S {
        let head = std::mem::take(&mut self.head);
        self.inner.push(&head);
        self.inner
    }
}

impl<S: OutputSink> OutputSink for PidFirst<S> {
    fn push(&mut self, chunk: &[u8]) {
        if !self.in_head {
            self.inner.push(chunk);
            return;
        }
        self.head.extend_from_slice(chunk);
        if let Some(nl) = self.head.iter().position(|b| *b == b'\n') {
            self.in_head = false;
            let head = std::mem::take(&mut self.head);
            let line = String::from_utf8_lossy(&head[..nl]);
            match line.strip_prefix(PID_MARKER).and_then(|p| p.trim().parse().ok()) {
                Some(p) => {
                    let _ = self.pid.set(p);
                    self.inner.push(&head[nl + 1..]);
                }
                None => self.inner.push(&head),
            }
        } else if self.head.len() > 4096 {
            self.in_head = false;
            let head = std::mem::take(&mut self.head);
            self.inner.push(&head);
        }
    }
}

/// openssh's errors nest the ssh client's log; the last lines say what happened.
pub(super) fn error_text(e: &openssh::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    parts
        .join(": ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_testbed::Testbed;

    fn connector(tb: &Testbed) -> (SshConnector, Inventory) {
        let raw: crate::inventory::RawInventory =
            serde_json::from_value(serde_json::json!({ "nodes": { "node001": null } })).unwrap();
        let inv = Inventory::from_raw(&raw).unwrap();
        let mut setup = SshSetup::new(Duration::from_secs(15), tb.dir().join("drover_known_hosts"));
        setup.config_file = Some(tb.ssh_config());
        (SshConnector::new(setup, &inv).unwrap(), inv)
    }

    /// Input is written while output is read: a command that prints more than a pipe
    /// holds before it reads its input finishes (it used to wait for its timeout).
    #[tokio::test]
    async fn output_before_input_does_not_stall() {
        let tmp = tempfile::tempdir().unwrap();
        let tb = Testbed::start(tmp.path(), 1).unwrap();
        let (c, inv) = connector(&tb);
        let conn = c.connect(&inv.nodes()[0]).await.unwrap();
        let t = Instant::now();
        let out = conn
            .exec(
                "head -c 1000000 /dev/zero; wc -c",
                Some(vec![b'x'; 1 << 20]),
                Duration::from_secs(20),
            )
            .await
            .unwrap();
        assert!(out.success(), "{out:?}");
        assert!(out.stdout.trim_end().ends_with("1048576"), "{}", out.stdout.len());
        assert!(out.stdout.starts_with("[... "), "the tail is bounded");
        assert!(t.elapsed() < Duration::from_secs(10));
        conn.close().await;
        c.shutdown().await;
    }

    /// A killed master is replaced before the next command.
    #[tokio::test]
    async fn a_killed_master_is_replaced_before_the_next_command() {
        let tmp = tempfile::tempdir().unwrap();
        let tb = Testbed::start(tmp.path(), 1).unwrap();
        let (c, inv) = connector(&tb);
        let conn = c.connect(&inv.nodes()[0]).await.unwrap();
        let first = conn.master_pid().await.unwrap();
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(i32::try_from(first).unwrap()).unwrap(),
            rustix::process::Signal::KILL,
        )
        .unwrap();
        let out = conn.exec("echo ok", None, Duration::from_secs(10)).await.unwrap();
        assert_eq!(out.stdout, "ok\n");
        assert_ne!(conn.master_pid().await.unwrap(), first);
        // Released, then used again: reopened.
        conn.release().await;
        assert!(conn.master_pid().await.is_none());
        let out = conn
            .exec("echo again", None, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(out.stdout, "again\n");
        conn.close().await;
        c.shutdown().await;
    }
}
