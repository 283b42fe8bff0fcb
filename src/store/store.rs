//! The handle the engine and the CLI use.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::Connection;

use super::columns::{duration_millis, millis};
use super::controller::Controller;
use super::discovered_host::DiscoveredHost;
use super::generation::Generation;
use super::held_node::HeldNode;
use super::lease::Lease;
use super::lease_conflict::LeaseConflict;
use super::node_lifecycle::NodeLifecycle;
use super::node_row::NodeRow;
use super::node_state::NodeState;
use super::node_version::NodeVersion;
use super::op::{Answer, Op};
use super::outbox::Notice;
use super::pause::Pause;
use super::run_detail::RunDetail;
use super::run_row::RunRow;
use super::run_status::RunStatus;
use super::schema::{self, Access};
use super::source_commit::{SourceCommitRow, SourceHead};
use super::store_error::StoreError;
use super::wanted_rollout::WantedRollout;
use super::write::Write;
use super::writer::{Reply, Request, Writer};

/// Durable run state in one SQLite file (`<state_dir>/drover.db`).
///
/// Writes and every lease operation go through a single writer thread that commits
/// everything queued together (group commit) and answers only once it is on disk; the
/// async forms never block a runtime thread. Reads use a second connection: they are
/// short, and in WAL mode they never wait for the writer's transaction.
///
/// Cheap to clone; the writer stops when the last clone is dropped, after applying what
/// is still queued (the drop waits for that commit).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    reader: Mutex<Connection>,
    /// Only asks `PRAGMA data_version` ([`Store::generation`]): a connection of its own,
    /// so the question never waits behind a long read on `reader`, and never writes, so
    /// every commit (this process's writer's or another process's) changes the answer.
    probe: Mutex<Connection>,
    /// None for a store opened read-only.
    writer: Option<Writer>,
    /// Whether the file has the pause and lifecycle tables: a read-only open of an
    /// older drover's file (never migrated) has none, so nothing is paused there.
    gates: bool,
    /// Whether the file has `discovered_hosts` (schema 7).
    discovery: bool,
    /// Whether the file has `rollouts_wanted` (schema 8).
    wanted: bool,
    /// Whether `discovered_hosts` has the memory, OS, kernel and machine (schema 9).
    discovery_facts: bool,
    /// Whether the file has `alarm_cooldowns` (schema 10).
    cooldowns: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens or creates the database (and its parent directories), bringing the schema up
    /// to date. A file that is not drover's (another application's database, an empty
    /// file, not SQLite at all), or a database written by a newer drover, is refused
    /// untouched.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::CreateDir {
                path: parent.to_path_buf(),
                source: Arc::new(e),
            })?;
        }
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                schema::create(path)?;
            }
            Ok(m) if m.is_file() && m.len() == 0 => return Err(empty(path)),
            _ => {}
        }
        let mut writing = schema::connect(path, Access::ReadWrite)?;
        schema::prepare(&mut writing, path)?;
        let reader = schema::connect(path, Access::ReadWrite)?;
        let probe = schema::connect(path, Access::ReadOnly)?;
        let writer = Writer::spawn(writing, path)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                reader: Mutex::new(reader),
                probe: Mutex::new(probe),
                writer: Some(writer),
                gates: true,
                discovery: true,
                wanted: true,
                discovery_facts: true,
                cooldowns: true,
            }),
        })
    }

    /// Opens an existing database for reading only (`runs list`, `runs show`): creates,
    /// migrates and writes nothing, so it works on a file or directory this user may only
    /// read. A missing file is [`StoreError::Missing`].
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Missing {
                    path: path.to_path_buf(),
                });
            }
            Ok(m) if m.is_file() && m.len() == 0 => return Err(empty(path)),
            _ => {}
        }
        let plain = schema::connect(path, Access::ReadOnly)
            .and_then(|c| schema::identify(&c, path).map(|found| (c, found)));
        let mut immutable = false;
        let (conn, found) = match plain {
            Ok(found) => found,
            // A WAL database in a directory this user cannot write: SQLite cannot make
            // the shared-memory file it reads through. Read the file as it is on disk
            // (a controller that closed cleanly left everything in it).
            Err(e) if e.is_unwritable() => {
                immutable = true;
                let conn = schema::connect_immutable(path)?;
                let found = schema::identify(&conn, path)?;
                (conn, found)
            }
            Err(e) => return Err(e),
        };
        let probe = if immutable {
            schema::connect_immutable(path)?
        } else {
            schema::connect(path, Access::ReadOnly)?
        };
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                reader: Mutex::new(conn),
                probe: Mutex::new(probe),
                writer: None,
                gates: found.version >= schema::GATES_VERSION,
                discovery: found.version >= schema::DISCOVERY_VERSION,
                wanted: found.version >= schema::WANTED_VERSION,
                discovery_facts: found.version >= schema::DISCOVERY_FACTS_VERSION,
                cooldowns: found.version >= schema::COOLDOWN_VERSION,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Records `writes` all-or-nothing; returns once they are on disk. Concurrent calls
    /// share one transaction and one fsync. If the future is dropped after the call
    /// began, the writes may still be applied.
    pub async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.submit(Op::Writes(writes)).await.map(drop)
    }

    /// [`Store::write`] for callers without a runtime; blocks the thread until the
    /// writes are on disk.
    pub fn write_blocking(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.submit_blocking(Op::Writes(writes)).map(drop)
    }

    /// Starts (or resumes) a run: leases `nodes` to `run` until `now + ttl` and applies
    /// `record` (`RunCreated`, `RunResumed`), in one transaction. All-or-nothing: if any
    /// node is held by another live run (see [`Store::leases`] for what binds), nothing is
    /// taken or recorded and the conflicts are returned (empty: the run is started).
    /// Nodes that are free, whose lease expired (`expires_at <= now`), or already held by
    /// `run` are taken or renewed.
    pub async fn begin_run(
        &self,
        run: &str,
        nodes: &[String],
        now: Timestamp,
        ttl: Duration,
        record: Vec<Write>,
    ) -> Result<Vec<LeaseConflict>, StoreError> {
        conflicts(self.submit(begin(run, nodes, now, ttl, record)).await?)
    }

    /// [`Store::begin_run`] for callers without a runtime.
    pub fn begin_run_blocking(
        &self,
        run: &str,
        nodes: &[String],
        now: Timestamp,
        ttl: Duration,
        record: Vec<Write>,
    ) -> Result<Vec<LeaseConflict>, StoreError> {
        conflicts(self.submit_blocking(begin(run, nodes, now, ttl, record))?)
    }

    /// Extends every lease `run` holds to `now + ttl`; returns how many. Fewer than the
    /// run took means another run took over expired ones.
    pub async fn renew_leases(&self, run: &str, now: Timestamp, ttl: Duration) -> Result<usize, StoreError> {
        let until = millis(now).saturating_add(duration_millis(ttl));
        count(
            self.submit(Op::Renew {
                run: run.to_string(),
                until,
            })
            .await?,
        )
    }

    /// Releases the run's leases on `nodes` (`None`: all of them); returns how many.
    pub async fn release_leases(&self, run: &str, nodes: Option<&[String]>) -> Result<usize, StoreError> {
        count(self.submit(release(run, nodes)).await?)
    }

    /// [`Store::release_leases`] for callers without a runtime.
    pub fn release_leases_blocking(&self, run: &str, nodes: Option<&[String]>) -> Result<usize, StoreError> {
        count(self.submit_blocking(release(run, nodes))?)
    }

    /// Ends a run: applies `writes` (its `RunFinished`, say) and releases its leases in
    /// one transaction. With `keep_in_flight` (an interrupted run) the leases of nodes
    /// caught mid-cycle (running, draining, drained, rebooting, resuming) are kept, so
    /// nothing else takes them before `runs resume` or `runs cancel`; every other node is
    /// free at once. Returns those in-flight nodes with their state, in plan order.
    pub async fn finish_run(
        &self,
        run: &str,
        writes: Vec<Write>,
        keep_in_flight: bool,
    ) -> Result<Vec<(String, NodeState)>, StoreError> {
        in_flight(self.submit(finish(run, writes, keep_in_flight)).await?)
    }

    /// [`Store::finish_run`] for callers without a runtime.
    pub fn finish_run_blocking(
        &self,
        run: &str,
        writes: Vec<Write>,
        keep_in_flight: bool,
    ) -> Result<Vec<(String, NodeState)>, StoreError> {
        in_flight(self.submit_blocking(finish(run, writes, keep_in_flight))?)
    }

    /// Transactions the writer has committed since this store was opened: with group
    /// commit, far fewer than the writes submitted under load.
    pub fn commits(&self) -> u64 {
        self.inner.writer.as_ref().map_or(0, Writer::commits)
    }

    /// The database's [`Generation`] now: equal to an earlier one exactly when nothing
    /// was committed in between. Cheap (an atomic and one pragma on an idle connection),
    /// and never waits for another read.
    pub fn generation(&self) -> Result<Generation, StoreError> {
        let probe = self.inner.probe.lock().unwrap_or_else(PoisonError::into_inner);
        let data_version = probe
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| self.error("read the data version", e))?;
        Ok(Generation {
            commits: self.commits(),
            data_version,
        })
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<RunRow>, StoreError> {
        RunRow::query(&self.reader(), None, None).map_err(|e| self.error("read the runs", e))
    }

    /// The run with its plan, nodes (in plan order) and step attempts.
    pub fn run(&self, id: &str) -> Result<Option<RunDetail>, StoreError> {
        RunDetail::load(&mut self.reader(), id).map_err(|e| self.error(format!("read run `{id}`"), e))
    }

    /// The run's nodes as last recorded, in plan order, without its plan or step
    /// results (which can be large): for a quick look during a run.
    /// Who or what started `run` (the service's `Trigger` as JSON); `None` for a run
    /// recorded without one, or in a file older than schema version 5 opened read-only
    /// (not migrated, so without the column).
    pub fn trigger(&self, run: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let conn = self.reader();
        let text: Option<String> = match conn
            .prepare_cached("SELECT trigger FROM runs WHERE id = ?1")
            .and_then(|mut s| s.query_row([run], |r| r.get(0)))
        {
            Ok(t) => t,
            Err(rusqlite::Error::QueryReturnedNoRows) => None,
            Err(e) if e.to_string().contains("no such column") => None,
            Err(e) => return Err(self.error(format!("read the trigger of run `{run}`"), e)),
        };
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    pub fn nodes(&self, run: &str) -> Result<Vec<NodeRow>, StoreError> {
        NodeRow::of_run(&self.reader(), run)
            .map_err(|e| self.error(format!("read the nodes of run `{run}`"), e))
    }

    /// Runs still marked Running whose controller is gone: same host and the pid is not
    /// alive (no `/proc/<pid>`), or the last heartbeat is older than `ttl`.
    pub fn abandoned(&self, now: Timestamp, ttl: Duration) -> Result<Vec<RunRow>, StoreError> {
        let running = RunRow::query(&self.reader(), None, Some(RunStatus::Running))
            .map_err(|e| self.error("read the running runs", e))?;
        let here = Controller::this().host;
        let (now, ttl) = (millis(now), duration_millis(ttl));
        Ok(running
            .into_iter()
            .filter(|r| r.controller.is_known_dead(&here) || now.saturating_sub(millis(r.heartbeat_at)) > ttl)
            .collect())
    }

    /// For each of `nodes`, the last run other than `except` that left it failed while
    /// drained, or held: such a node is out of service because of drover, not of someone
    /// else, and a new run should say which run holds it and why.
    pub fn held_by_earlier_runs(&self, nodes: &[String], except: &str) -> Result<Vec<HeldNode>, StoreError> {
        HeldNode::query(&self.reader(), nodes, except)
            .map_err(|e| self.error("read where nodes were left", e))
    }

    /// Every lease row, by node name: expired ones, and ones whose run is finished or was
    /// never recorded, which bind nothing, included.
    pub fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        Lease::all(&self.reader()).map_err(|e| self.error("read the leases", e))
    }

    /// Every pause in force: the global one first, then per run.
    pub fn pauses(&self) -> Result<Vec<Pause>, StoreError> {
        if !self.inner.gates {
            return Ok(Vec::new());
        }
        Pause::all(&self.reader()).map_err(|e| self.error("read the pauses", e))
    }

    /// The pause that keeps `run` from starting nodes: the global one, else its own.
    pub fn pause_holding(&self, run: &str) -> Result<Option<Pause>, StoreError> {
        if !self.inner.gates {
            return Ok(None);
        }
        Pause::holding(&self.reader(), run).map_err(|e| self.error("read the pauses", e))
    }

    /// Every node out of automation, by name: in maintenance, or decommissioned (the
    /// plans and runs that leave maintenance alone leave a decommissioned node alone too).
    pub fn in_maintenance(&self) -> Result<Vec<NodeLifecycle>, StoreError> {
        if !self.inner.gates {
            return Ok(Vec::new());
        }
        NodeLifecycle::out_of_automation(&self.reader())
            .map_err(|e| self.error("read the nodes in maintenance", e))
    }

    /// Every node with a lifecycle state, by name.
    pub fn lifecycle(&self) -> Result<Vec<NodeLifecycle>, StoreError> {
        if !self.inner.gates {
            return Ok(Vec::new());
        }
        NodeLifecycle::all(&self.reader()).map_err(|e| self.error("read the nodes' lifecycle", e))
    }

    /// Per node and workflow, the last run that succeeded on the node.
    pub fn node_versions(&self) -> Result<Vec<NodeVersion>, StoreError> {
        NodeVersion::all(&self.reader()).map_err(|e| self.error("read the nodes' versions", e))
    }

    /// The cooldowns of alarm trigger `trigger` in force at `now`, by node.
    pub fn alarm_cooldowns(
        &self,
        trigger: &str,
        now: jiff::Timestamp,
    ) -> Result<Vec<super::AlarmCooldown>, StoreError> {
        if !self.inner.cooldowns {
            return Ok(Vec::new());
        }
        super::AlarmCooldown::of(&self.reader(), trigger, now)
            .map_err(|e| self.error("read the alarm cooldowns", e))
    }

    /// Every host discovery reached, by address.
    pub fn discovered(&self) -> Result<Vec<DiscoveredHost>, StoreError> {
        if !self.inner.discovery {
            return Ok(Vec::new());
        }
        DiscoveredHost::all(&self.reader(), self.inner.discovery_facts)
            .map_err(|e| self.error("read the discovered hosts", e))
    }

    /// Where the daemon's git watcher stands (none before its first commit).
    pub fn source_head(&self) -> Result<Option<SourceHead>, StoreError> {
        SourceHead::load(&self.reader()).map_err(|e| self.error("read the commit in force", e))
    }

    /// The versions the git source accepted whose rollout no run records yet: what a
    /// restarted daemon still owes the fleet.
    pub fn unstarted_rollouts(&self) -> Result<Vec<WantedRollout>, StoreError> {
        if !self.inner.wanted {
            return Ok(Vec::new());
        }
        WantedRollout::unstarted(&self.reader()).map_err(|e| self.error("read the wanted rollouts", e))
    }

    /// The watcher's verdict on one commit.
    pub fn source_commit(&self, sha: &str) -> Result<Option<SourceCommitRow>, StoreError> {
        SourceCommitRow::one(&self.reader(), sha).map_err(|e| self.error(format!("read commit {sha}"), e))
    }

    /// Every commit the watcher looked at, newest first.
    pub fn source_commits(&self) -> Result<Vec<SourceCommitRow>, StoreError> {
        SourceCommitRow::all(&self.reader()).map_err(|e| self.error("read the commits", e))
    }

    /// The oldest notification events `sink` has not taken yet, at most `limit`.
    pub fn outbox_pending(&self, sink: &str, limit: usize) -> Result<Vec<Notice>, StoreError> {
        Notice::pending(&self.reader(), sink, limit)
            .map_err(|e| self.error("read the notification outbox", e))
    }

    /// How many notification events `sink` has not taken yet (its backlog).
    pub fn outbox_backlog(&self, sink: &str) -> Result<usize, StoreError> {
        Notice::backlog(&self.reader(), sink).map_err(|e| self.error("read the notification outbox", e))
    }

    /// What `sink` answered for the run's first event (the Slack thread to reply in).
    pub fn outbox_thread(&self, run: &str, sink: &str) -> Result<Option<String>, StoreError> {
        Notice::thread(&self.reader(), run, sink).map_err(|e| self.error("read the notification outbox", e))
    }

    /// Every notification event recorded, oldest first.
    pub fn outbox(&self) -> Result<Vec<Notice>, StoreError> {
        Notice::all(&self.reader()).map_err(|e| self.error("read the notification outbox", e))
    }

    async fn submit(&self, op: Op) -> Result<Answer, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer()?.submit(Request {
            op,
            reply: Reply::Async(tx),
        })?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    fn submit_blocking(&self, op: Op) -> Result<Answer, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.writer()?.submit(Request {
            op,
            reply: Reply::Blocking(tx),
        })?;
        rx.recv().map_err(|_| StoreError::WriterGone)?
    }

    fn writer(&self) -> Result<&Writer, StoreError> {
        self.inner.writer.as_ref().ok_or_else(|| StoreError::ReadOnly {
            path: self.inner.path.clone(),
        })
    }

    /// The reading connection. A panic while it was held leaves nothing half-done
    /// (rusqlite rolls back an open transaction on drop), so a poisoned lock is reused.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        self.inner.reader.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn error(&self, action: impl Into<String>, e: rusqlite::Error) -> StoreError {
        StoreError::database(&self.inner.path, action, e)
    }
}

fn empty(path: &Path) -> StoreError {
    StoreError::NotDrover {
        path: path.to_path_buf(),
        why: "it is empty (0 bytes)".into(),
    }
}

fn begin(run: &str, nodes: &[String], now: Timestamp, ttl: Duration, writes: Vec<Write>) -> Op {
    let now = millis(now);
    Op::Begin {
        run: run.to_string(),
        nodes: nodes.to_vec(),
        now,
        until: now.saturating_add(duration_millis(ttl)),
        writes,
    }
}

fn release(run: &str, nodes: Option<&[String]>) -> Op {
    Op::Release {
        run: run.to_string(),
        nodes: nodes.map(<[String]>::to_vec),
    }
}

fn finish(run: &str, writes: Vec<Write>, keep_in_flight: bool) -> Op {
    Op::Finish {
        run: run.to_string(),
        writes,
        keep_in_flight,
    }
}

fn conflicts(a: Answer) -> Result<Vec<LeaseConflict>, StoreError> {
    match a {
        Answer::Conflicts(c) => Ok(c),
        other => Err(unexpected(&other)),
    }
}

fn count(a: Answer) -> Result<usize, StoreError> {
    match a {
        Answer::Count(n) => Ok(n),
        other => Err(unexpected(&other)),
    }
}

fn in_flight(a: Answer) -> Result<Vec<(String, NodeState)>, StoreError> {
    match a {
        Answer::InFlight(v) => Ok(v),
        other => Err(unexpected(&other)),
    }
}

/// An answer of the wrong kind: a bug in the store, reported rather than panicking.
fn unexpected(a: &Answer) -> StoreError {
    StoreError::Internal {
        what: format!("the writer answered {a:?}"),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    use serde_json::json;
    use tempfile::TempDir;

    use super::*;
    use crate::store::{NodeState, RunStatus, SourceVerdict};

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    fn created(id: &str, nodes: &[&str], controller: Controller, at: Timestamp) -> Write {
        Write::RunCreated {
            id: id.to_string(),
            workflow: "kernel".to_string(),
            version: 3,
            commit: Some("abc123".to_string()),
            plan: json!({"phases": [{"name": "canary"}, {"name": "bulk"}]}),
            options: json!({"forks": 2}),
            controller,
            at,
            nodes: nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), usize::from(i > 0)))
                .collect(),
        }
    }

    fn node(run: &str, node: &str, state: NodeState, at: Timestamp) -> Write {
        Write::Node {
            run: run.to_string(),
            node: node.to_string(),
            state,
            attempt: 1,
            step: 2,
            drained_by_us: true,
            boot_id: Some("boot-1".to_string()),
            reason: None,
            at,
        }
    }

    fn step(run: &str, node: &str, position: usize, attempt: u32, output: &str, at: Timestamp) -> Write {
        Write::Step {
            run: run.to_string(),
            node: node.to_string(),
            step: format!("step-{position}"),
            position,
            attempt,
            status: "ok".to_string(),
            exit_code: Some(0),
            duration_ms: 1234,
            output_tail: output.to_string(),
            at,
        }
    }

    fn open(dir: &TempDir) -> Store {
        Store::open(&dir.path().join("state/drover.db")).unwrap()
    }

    /// Leases `nodes` to `run` as a run start does, recording the run first if it is not.
    fn acquire(
        store: &Store,
        run: &str,
        nodes: &[String],
        now: Timestamp,
        ttl: Duration,
    ) -> Result<Vec<LeaseConflict>, StoreError> {
        let record = if store.run(run).unwrap().is_some() {
            Vec::new()
        } else {
            let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
            vec![created(run, &refs, Controller::this(), now)]
        };
        store.begin_run_blocking(run, nodes, now, ttl, record)
    }

    fn names(nodes: &[&str]) -> Vec<String> {
        nodes.iter().map(|n| n.to_string()).collect()
    }

    /// A node held while draining for its third step names no step: the last step row
    /// is the second, which succeeded. A node that failed at its step names that step.
    #[test]
    fn a_held_node_names_the_step_it_stands_at_not_the_last_that_ran() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let t0 = ts("2026-01-02T03:04:05Z");
        let t1 = ts("2026-01-02T03:05:00Z");
        store
            .write_blocking(vec![created("r1", &["n1", "n2"], Controller::this(), t0)])
            .unwrap();
        // Both stand at position 2 (`node` writes `step: 2`).
        let held = |n: &str| match node("r1", n, NodeState::Held, t1) {
            Write::Node {
                run,
                node,
                state,
                attempt,
                step,
                drained_by_us,
                boot_id,
                at,
                ..
            } => Write::Node {
                run,
                node,
                state,
                attempt,
                step,
                drained_by_us,
                boot_id,
                reason: Some("why".to_string()),
                at,
            },
            other => other,
        };
        store
            .write_blocking(vec![
                step("r1", "n1", 0, 1, "", t0),
                step("r1", "n1", 1, 1, "", t0),
                held("n1"),
                step("r1", "n2", 1, 1, "", t0),
                step("r1", "n2", 2, 1, "", t1),
                held("n2"),
            ])
            .unwrap();
        let found = store.held_by_earlier_runs(&names(&["n1", "n2"]), "r2").unwrap();
        let by = |n: &str| found.iter().find(|h| h.node == n).unwrap();
        assert_eq!(by("n1").step, None, "{:?}", by("n1"));
        assert_eq!(by("n1").describe(), "held by run r1 (held: why)");
        assert_eq!(by("n2").step.as_deref(), Some("step-2"));
    }

    #[test]
    fn store_is_shareable() {
        fn check<T: Clone + Send + Sync + 'static>() {}
        check::<Store>();
    }

    #[test]
    fn round_trip() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        assert!(
            dir.path().join("state").is_dir(),
            "parent directories are created"
        );
        let t0 = ts("2026-01-02T03:04:05.678Z");
        let t1 = ts("2026-01-02T03:05:00Z");
        let me = Controller::this();
        // Not in name order, to show plan order is kept.
        store
            .write_blocking(vec![created("r1", &["n3", "n1", "n2"], me.clone(), t0)])
            .unwrap();
        store
            .write_blocking(vec![
                node("r1", "n1", NodeState::Drained, t1),
                step("r1", "n1", 0, 1, "hello\n", t1),
                step("r1", "n1", 1, 1, "first try", t1),
                step("r1", "n1", 1, 2, "second try", t1),
                step("r1", "n3", 0, 1, &"x".repeat(10_000), t1),
            ])
            .unwrap();
        store
            .write_blocking(vec![Write::Node {
                run: "r1".to_string(),
                node: "n2".to_string(),
                state: NodeState::Held,
                attempt: 0,
                step: 0,
                drained_by_us: false,
                boot_id: None,
                reason: Some("hook refused".to_string()),
                at: t1,
            }])
            .unwrap();

        let runs = store.runs().unwrap();
        assert_eq!(runs.len(), 1);
        let run = &runs[0];
        assert_eq!(run.id, "r1");
        assert_eq!(run.workflow, "kernel");
        assert_eq!(run.version, 3);
        assert_eq!(run.commit.as_deref(), Some("abc123"));
        assert_eq!(run.status, RunStatus::Running);
        assert_eq!(run.controller, me);
        assert_eq!(run.started_at, t0, "milliseconds are kept");
        assert_eq!(run.heartbeat_at, t0);
        assert_eq!(run.finished_at, None);
        assert_eq!(run.outcome, None);
        assert_eq!(run.counts.pending, 1);
        assert_eq!(run.counts.drained, 1);
        assert_eq!(run.counts.held, 1);
        assert_eq!(run.counts.total(), 3);

        let t2 = ts("2026-01-02T04:00:00Z");
        store
            .write_blocking(vec![Write::RunFinished {
                id: "r1".to_string(),
                status: RunStatus::CompletedWithFailures,
                outcome: json!({"failed": 1}),
                at: t2,
            }])
            .unwrap();

        let detail = store.run("r1").unwrap().unwrap();
        assert_eq!(detail.run.status, RunStatus::CompletedWithFailures);
        assert_eq!(detail.run.finished_at, Some(t2));
        assert_eq!(detail.run.outcome, Some(json!({"failed": 1})));
        assert_eq!(
            detail.plan,
            json!({"phases": [{"name": "canary"}, {"name": "bulk"}]})
        );
        assert_eq!(detail.options, json!({"forks": 2}));
        let order: Vec<_> = detail.nodes.iter().map(|n| (n.node.as_str(), n.phase)).collect();
        assert_eq!(order, [("n3", 0), ("n1", 1), ("n2", 1)]);
        let n1 = &detail.nodes[1];
        assert_eq!(n1.state, NodeState::Drained);
        assert_eq!((n1.attempt, n1.step, n1.drained_by_us), (1, 2, true));
        assert_eq!(n1.boot_id.as_deref(), Some("boot-1"));
        assert_eq!(n1.updated_at, t1);
        assert_eq!(detail.nodes[2].reason.as_deref(), Some("hook refused"));
        assert_eq!(detail.nodes[0].state, NodeState::Pending);

        let steps: Vec<_> = detail
            .steps
            .iter()
            .map(|s| (s.node.as_str(), s.position, s.attempt))
            .collect();
        assert_eq!(steps, [("n3", 0, 1), ("n1", 0, 1), ("n1", 1, 1), ("n1", 1, 2)]);
        assert_eq!(detail.steps[0].output_tail.len(), 4096, "output is cut to 4 KiB");
        assert_eq!(detail.steps[3].output_tail, "second try");
        assert_eq!(detail.steps[3].exit_code, Some(0));
        assert_eq!(detail.steps[3].duration_ms, 1234);

        assert!(store.run("nope").unwrap().is_none());

        let json = serde_json::to_value(&detail).unwrap();
        assert_eq!(json["run"]["status"], "completed_with_failures");
        assert_eq!(json["run"]["started_at"], "2026-01-02T03:04:05.678Z");
        assert_eq!(json["run"]["finished_at"], "2026-01-02T04:00:00Z");
        assert_eq!(json["run"]["counts"]["held"], 1);
        assert_eq!(json["nodes"][2]["state"], "held");
    }

    #[test]
    fn runs_are_listed_newest_first() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let me = Controller::this();
        store
            .write_blocking(vec![
                created("old", &["a"], me.clone(), ts("2026-01-01T00:00:00Z")),
                created("new", &["a"], me.clone(), ts("2026-01-03T00:00:00Z")),
                created("mid", &["a"], me, ts("2026-01-02T00:00:00Z")),
            ])
            .unwrap();
        let ids: Vec<_> = store.runs().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["new", "mid", "old"]);
    }

    #[test]
    fn writes_about_unknown_runs_or_nodes_fail_whole() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let t = ts("2026-01-01T00:00:00Z");
        store
            .write_blocking(vec![created("r1", &["a"], Controller::this(), t)])
            .unwrap();

        let err = store
            .write_blocking(vec![
                node("r1", "a", NodeState::Running, t),
                node("r1", "zz", NodeState::Running, t),
            ])
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::UnknownNode { run, node } if run == "r1" && node == "zz"),
            "{err}"
        );
        assert_eq!(err.to_string(), "run `r1` has no node `zz` in its plan");
        let detail = store.run("r1").unwrap().unwrap();
        assert_eq!(
            detail.nodes[0].state,
            NodeState::Pending,
            "the request is all-or-nothing"
        );

        let err = store
            .write_blocking(vec![step("r1", "zz", 0, 1, "", t)])
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownNode { .. }), "{err}");
        let err = store
            .write_blocking(vec![step("r9", "a", 0, 1, "", t)])
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownNode { .. }), "{err}");

        let err = store
            .write_blocking(vec![Write::Heartbeat {
                id: "r9".to_string(),
                controller: Controller::this(),
                at: t,
            }])
            .unwrap_err();
        assert_eq!(err.to_string(), "no run `r9` is recorded");

        let err = store
            .write_blocking(vec![created("r1", &["b"], Controller::this(), t)])
            .unwrap_err();
        assert_eq!(err.to_string(), "run `r1` is already recorded");
        assert_eq!(store.run("r1").unwrap().unwrap().nodes.len(), 1);
    }

    #[test]
    fn heartbeat_and_resume_change_the_controller() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let t0 = ts("2026-01-01T00:00:00Z");
        let old = Controller {
            host: "old-host".to_string(),
            pid: 7,
        };
        store
            .write_blocking(vec![created("r1", &["a"], old, t0)])
            .unwrap();
        store
            .write_blocking(vec![Write::RunFinished {
                id: "r1".to_string(),
                status: RunStatus::Interrupted,
                outcome: json!(null),
                at: t0,
            }])
            .unwrap();
        let t1 = ts("2026-01-01T01:00:00Z");
        let me = Controller::this();
        store
            .write_blocking(vec![Write::RunResumed {
                id: "r1".to_string(),
                controller: me.clone(),
                at: t1,
            }])
            .unwrap();
        let run = store.run("r1").unwrap().unwrap().run;
        assert_eq!(
            (run.status, run.finished_at, run.outcome),
            (RunStatus::Running, None, None)
        );
        assert_eq!((run.controller, run.heartbeat_at), (me.clone(), t1));

        let t2 = ts("2026-01-01T01:00:30Z");
        store
            .write_blocking(vec![Write::Heartbeat {
                id: "r1".to_string(),
                controller: me,
                at: t2,
            }])
            .unwrap();
        assert_eq!(store.runs().unwrap()[0].heartbeat_at, t2);
    }

    #[test]
    fn data_survives_reopening() {
        let dir = TempDir::new().unwrap();
        let t = ts("2026-01-01T00:00:00Z");
        {
            let store = open(&dir);
            let clone = store.clone();
            store
                .write_blocking(vec![created("r1", &["a", "b"], Controller::this(), t)])
                .unwrap();
            clone
                .write_blocking(vec![node("r1", "b", NodeState::Succeeded, t)])
                .unwrap();
        }
        let store = open(&dir);
        let detail = store.run("r1").unwrap().unwrap();
        assert_eq!(detail.nodes[1].state, NodeState::Succeeded);
        assert_eq!(store.runs().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn dropping_the_last_handle_flushes_queued_writes() {
        let dir = TempDir::new().unwrap();
        let t = ts("2026-01-01T00:00:00Z");
        let store = open(&dir);
        store
            .write(vec![created("r1", &["a"], Controller::this(), t)])
            .await
            .unwrap();
        // Queue a write and drop its future without awaiting the answer, then drop the store.
        {
            let pending = std::pin::pin!(store.write(vec![node("r1", "a", NodeState::Failed, t)]));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let _ = pending.poll(&mut cx);
        }
        drop(store);
        let store = open(&dir);
        assert_eq!(
            store.run("r1").unwrap().unwrap().nodes[0].state,
            NodeState::Failed
        );
    }

    /// The env var that makes [`sigkill_child_writer`] act as the child of
    /// [`data_survives_sigkill_after_write`]; it holds the database path.
    const CHILD_ENV: &str = "DROVER_STORE_CHILD";

    /// The child's half of `data_survives_sigkill_after_write`; a no-op in a normal run.
    #[test]
    fn sigkill_child_writer() {
        let Some(path) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        let store = Store::open(Path::new(&path)).unwrap();
        let t = ts("2026-01-01T00:00:00Z");
        store
            .write_blocking(vec![created("r1", &["a", "b"], Controller::this(), t)])
            .unwrap();
        store
            .write_blocking(vec![node("r1", "b", NodeState::Rebooting, t)])
            .unwrap();
        println!("written");
        std::thread::sleep(Duration::from_secs(120));
    }

    #[test]
    fn data_survives_sigkill_after_write() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("drover.db");
        let module = module_path!().split_once("::").map_or(module_path!(), |(_, m)| m);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                &format!("{module}::sigkill_child_writer"),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let written = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("written"));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(written, "the child never reported its write ({status})");
        assert!(!status.success(), "the child was killed, not finished");

        let store = Store::open(&path).unwrap();
        let detail = store.run("r1").unwrap().expect("the run survives the kill");
        assert_eq!(detail.nodes[1].state, NodeState::Rebooting);
        assert_eq!(detail.run.controller.pid, child.id());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_commits() {
        const TASKS: usize = 500;
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let t = ts("2026-01-01T00:00:00Z");
        let nodes: Vec<String> = (0..TASKS).map(|i| format!("n{i:03}")).collect();
        let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
        store
            .write(vec![created("r1", &refs, Controller::this(), t)])
            .await
            .unwrap();
        let before = store.commits();
        assert_eq!(before, 1);

        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let mut tasks = tokio::task::JoinSet::new();
        for n in nodes {
            let (store, barrier) = (store.clone(), Arc::clone(&barrier));
            tasks.spawn(async move {
                barrier.wait().await;
                store
                    .write(vec![
                        node("r1", &n, NodeState::Succeeded, t),
                        step("r1", &n, 0, 1, "ok", t),
                    ])
                    .await
            });
        }
        while let Some(result) = tasks.join_next().await {
            result.unwrap().unwrap();
        }
        let commits = store.commits() - before;
        assert!(commits < 50, "{TASKS} concurrent writes took {commits} commits");
        let run = &store.runs().unwrap()[0];
        assert_eq!(run.counts.succeeded, TASKS);
        assert_eq!(store.run("r1").unwrap().unwrap().steps.len(), TASKS);
    }

    #[tokio::test]
    async fn leases_are_all_or_nothing() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let now = ts("2026-01-01T00:00:00Z");
        let ttl = Duration::from_secs(60);

        assert!(
            acquire(&store, "r1", &names(&["a", "b"]), now, ttl)
                .unwrap()
                .is_empty()
        );
        let conflicts = acquire(&store, "r2", &names(&["b", "c"]), now, ttl).unwrap();
        assert_eq!(
            conflicts,
            [LeaseConflict {
                node: "b".to_string(),
                run: "r1".to_string(),
                expires_at: ts("2026-01-01T00:01:00Z"),
            }]
        );
        let held: Vec<_> = store
            .leases()
            .unwrap()
            .into_iter()
            .map(|l| (l.node, l.run))
            .collect();
        assert_eq!(
            held,
            [
                ("a".to_string(), "r1".to_string()),
                ("b".to_string(), "r1".to_string())
            ],
            "c was not taken"
        );

        // Our own leases are renewed by acquiring again, with new nodes added.
        let later = ts("2026-01-01T00:00:30Z");
        assert!(
            acquire(&store, "r1", &names(&["b", "c"]), later, ttl)
                .unwrap()
                .is_empty()
        );
        let leases = store.leases().unwrap();
        assert_eq!(leases.len(), 3);
        assert_eq!(leases[1].expires_at, ts("2026-01-01T00:01:30Z"));
        assert_eq!(
            leases[0].expires_at,
            ts("2026-01-01T00:01:00Z"),
            "a was not asked for"
        );

        assert_eq!(store.renew_leases("r1", later, ttl).await.unwrap(), 3);
        assert!(
            store
                .leases()
                .unwrap()
                .iter()
                .all(|l| l.expires_at == ts("2026-01-01T00:01:30Z"))
        );
        assert_eq!(store.renew_leases("r2", later, ttl).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn expired_leases_are_taken_over() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let now = ts("2026-01-01T00:00:00Z");
        let ttl = Duration::from_secs(60);
        assert!(
            acquire(&store, "r1", &names(&["a", "b"]), now, ttl)
                .unwrap()
                .is_empty()
        );

        // Just before expiry the lease holds; at `expires_at` it is free.
        let before = ts("2026-01-01T00:00:59.999Z");
        assert_eq!(
            acquire(&store, "r2", &names(&["a"]), before, ttl).unwrap().len(),
            1
        );
        let at = ts("2026-01-01T00:01:00Z");
        assert!(acquire(&store, "r2", &names(&["a"]), at, ttl).unwrap().is_empty());

        // r1 renews what it still has, and cannot release what it lost.
        assert_eq!(store.renew_leases("r1", at, ttl).await.unwrap(), 1);
        assert_eq!(
            store.release_leases_blocking("r1", Some(&names(&["a"]))).unwrap(),
            0
        );
        let held: Vec<_> = store
            .leases()
            .unwrap()
            .into_iter()
            .map(|l| (l.node, l.run))
            .collect();
        assert_eq!(
            held,
            [
                ("a".to_string(), "r2".to_string()),
                ("b".to_string(), "r1".to_string())
            ]
        );
    }

    #[test]
    fn leases_are_released() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let now = ts("2026-01-01T00:00:00Z");
        let ttl = Duration::from_secs(60);
        assert!(
            acquire(&store, "r1", &names(&["a", "b", "c"]), now, ttl)
                .unwrap()
                .is_empty()
        );
        assert!(
            acquire(&store, "r2", &names(&["d"]), now, ttl)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store
                .release_leases_blocking("r1", Some(&names(&["a", "x"])))
                .unwrap(),
            1
        );
        assert!(
            acquire(&store, "r3", &names(&["a"]), now, ttl)
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.release_leases_blocking("r1", None).unwrap(), 2);
        assert!(
            acquire(&store, "r3", &names(&["b", "c"]), now, ttl)
                .unwrap()
                .is_empty()
        );
        let held: Vec<_> = store.leases().unwrap().into_iter().map(|l| l.run).collect();
        assert_eq!(held, ["r3", "r3", "r3", "r2"]);
    }

    #[test]
    fn two_stores_on_one_file_contend_for_leases() {
        let dir = TempDir::new().unwrap();
        let one = open(&dir);
        let two = open(&dir);
        let now = ts("2026-01-01T00:00:00Z");
        let ttl = Duration::from_secs(60);
        let nodes = names(&["a", "b", "c", "d"]);

        assert!(acquire(&one, "r1", &nodes[..2], now, ttl).unwrap().is_empty());
        let conflicts = acquire(&two, "r2", &nodes[1..], now, ttl).unwrap();
        assert_eq!(
            conflicts.iter().map(|c| c.node.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(one.leases().unwrap().len(), 2, "the other store took nothing");

        // Both race for the same nodes, many times: exactly one wins each round.
        for round in 0..20 {
            let barrier = Arc::new(std::sync::Barrier::new(2));
            let racers: Vec<_> = [(one.clone(), "x1"), (two.clone(), "x2")]
                .into_iter()
                .map(|(store, run)| {
                    let (barrier, nodes) = (Arc::clone(&barrier), nodes[2..].to_vec());
                    std::thread::spawn(move || {
                        barrier.wait();
                        acquire(&store, run, &nodes, now, ttl).unwrap().is_empty()
                    })
                })
                .collect();
            let wins = racers
                .into_iter()
                .map(|r| r.join().unwrap())
                .filter(|won| *won)
                .count();
            assert_eq!(wins, 1, "round {round}");
            let holders: std::collections::BTreeSet<_> = one
                .leases()
                .unwrap()
                .into_iter()
                .filter(|l| l.node == "c" || l.node == "d")
                .map(|l| l.run)
                .collect();
            assert_eq!(holders.len(), 1, "one run holds both nodes");
            one.release_leases_blocking("x1", None).unwrap();
            two.release_leases_blocking("x2", None).unwrap();
        }
    }

    #[test]
    fn abandoned_runs() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let now = ts("2026-01-01T12:00:00Z");
        let fresh = ts("2026-01-01T11:59:50Z");
        let stale = ts("2026-01-01T11:50:00Z");
        let ttl = Duration::from_secs(60);
        let me = Controller::this();
        let mut child = Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        let dead_here = Controller {
            host: me.host.clone(),
            pid: child.id(),
        };
        let elsewhere = Controller {
            host: "another-host.invalid".to_string(),
            pid: 1,
        };
        store
            .write_blocking(vec![
                created("dead-pid", &["a"], dead_here.clone(), fresh),
                created("alive", &["a"], me.clone(), fresh),
                created("stale-elsewhere", &["a"], elsewhere.clone(), stale),
                created("fresh-elsewhere", &["a"], elsewhere, fresh),
                created("stale-but-alive", &["a"], me, stale),
                created("finished", &["a"], dead_here, stale),
                Write::RunFinished {
                    id: "finished".to_string(),
                    status: RunStatus::Succeeded,
                    outcome: json!({}),
                    at: fresh,
                },
            ])
            .unwrap();
        let mut ids: Vec<_> = store
            .abandoned(now, ttl)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        ids.sort();
        // A live pid with a stale heartbeat is a hung controller: the heartbeat decides.
        assert_eq!(ids, ["dead-pid", "stale-but-alive", "stale-elsewhere"]);
    }

    #[test]
    fn a_newer_schema_is_refused_untouched() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("drover.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "application_id", schema::APPLICATION_ID)
                .unwrap();
            conn.pragma_update(None, "user_version", 99).unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::TooNew {
                    found: 99,
                    known: schema::SCHEMA_VERSION,
                    ..
                }
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("schema version 99"), "{message}");
        assert!(message.contains("newer drover"), "{message}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "the file is unchanged");
        assert!(!dir.path().join("drover.db-wal").exists(), "not switched to WAL");
    }

    #[test]
    fn reopening_keeps_the_schema_version() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("drover.db");
        drop(Store::open(&path).unwrap());
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::SCHEMA_VERSION);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn bad_paths_are_named() {
        let dir = TempDir::new().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "not a directory").unwrap();

        let err = Store::open(&file.join("drover.db")).unwrap_err();
        assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");
        assert!(err.to_string().contains(&file.display().to_string()), "{err}");

        // A directory where the database should be.
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&dir.path().display().to_string()),
            "{err}"
        );

        // A file that is not a database.
        let err = Store::open(&file).unwrap_err();
        assert!(matches!(err, StoreError::NotDrover { .. }), "{err:?}");
        assert!(err.to_string().contains("plain-file"), "{err}");
        assert!(err.to_string().contains("not an SQLite database"), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a directory");
    }

    /// The child's half of `a_kill_between_leases_and_record_leaves_no_stale_lease`: it
    /// dies at the fault point, after its leases are written and before its run record.
    #[test]
    fn begin_run_child() {
        let Some(path) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        let store = Store::open(Path::new(&path)).unwrap();
        let t = ts("2026-01-01T00:00:00Z");
        let _ = store.begin_run_blocking(
            "r1",
            &names(&["a", "b"]),
            t,
            Duration::from_secs(600),
            vec![created("r1", &["a", "b"], Controller::this(), t)],
        );
        println!("survived the fault point");
    }

    #[test]
    fn a_kill_between_leases_and_record_leaves_no_stale_lease() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("drover.db");
        drop(Store::open(&path).unwrap());
        let module = module_path!().split_once("::").map_or(module_path!(), |(_, m)| m);
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                &format!("{module}::begin_run_child"),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .env(super::super::fault::ENV, "after-leases")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "the child died at the fault point");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("survived"),
            "the fault point was reached: {out:?}"
        );

        let store = Store::open(&path).unwrap();
        assert!(store.run("r1").unwrap().is_none(), "no run was recorded");
        assert_eq!(store.leases().unwrap(), [], "and no lease outlived the kill");
        // Another run takes the nodes at once, without waiting for any expiry.
        let t = ts("2026-01-01T00:00:01Z");
        assert_eq!(
            acquire(&store, "r2", &names(&["a", "b"]), t, Duration::from_secs(60)).unwrap(),
            []
        );
    }

    #[test]
    fn a_lease_whose_run_is_not_recorded_or_finished_is_free() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("drover.db");
        let store = Store::open(&path).unwrap();
        let now = ts("2026-01-01T00:00:00Z");
        let ttl = Duration::from_secs(600);
        // Rows as an older drover killed between its lease and record steps left them.
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute(
                "INSERT INTO leases (node, run, expires_at) VALUES ('a', 'ghost', ?1)",
                [millis(now) + 600_000],
            )
            .unwrap();
        }
        assert_eq!(acquire(&store, "r1", &names(&["a"]), now, ttl).unwrap(), []);
        assert_eq!(store.leases().unwrap()[0].run, "r1");

        // A run that finished without releasing (killed after its record) binds nothing.
        store
            .write_blocking(vec![Write::RunFinished {
                id: "r1".to_string(),
                status: RunStatus::Succeeded,
                outcome: json!({}),
                at: now,
            }])
            .unwrap();
        assert_eq!(acquire(&store, "r2", &names(&["a"]), now, ttl).unwrap(), []);
        // An interrupted one still does: `runs resume` needs its nodes.
        store
            .write_blocking(vec![Write::RunFinished {
                id: "r2".to_string(),
                status: RunStatus::Interrupted,
                outcome: json!({}),
                at: now,
            }])
            .unwrap();
        let conflicts = acquire(&store, "r3", &names(&["a"]), now, ttl).unwrap();
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].run, "r2");
        assert!(
            store.run("r3").unwrap().is_none(),
            "a refused start records nothing"
        );
    }

    #[test]
    fn a_failed_record_takes_no_lease() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let now = ts("2026-01-01T00:00:00Z");
        let ttl = Duration::from_secs(600);
        store
            .write_blocking(vec![created("r1", &["x"], Controller::this(), now)])
            .unwrap();
        // Recording r1 again fails: the leases of the same transaction are rolled back.
        let err = store
            .begin_run_blocking(
                "r1",
                &names(&["a"]),
                now,
                ttl,
                vec![created("r1", &["a"], Controller::this(), now)],
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::RunExists { .. }), "{err}");
        assert_eq!(store.leases().unwrap(), []);
    }

    #[test]
    fn finished_nodes_free_their_lease_and_an_interrupted_run_keeps_only_the_unsure() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let now = ts("2026-01-01T00:00:00Z");
        let all = names(&["a", "b", "c", "d", "e"]);
        assert_eq!(
            acquire(&store, "r1", &all, now, Duration::from_secs(600)).unwrap(),
            []
        );
        let mut n = node("r1", "a", NodeState::Succeeded, now);
        if let Write::Node { drained_by_us, .. } = &mut n {
            *drained_by_us = false;
        }
        store
            .write_blocking(vec![
                n,
                node("r1", "b", NodeState::Failed, now),
                node("r1", "c", NodeState::Drained, now),
                node("r1", "d", NodeState::Running, now),
            ])
            .unwrap();
        let held: Vec<String> = store.leases().unwrap().into_iter().map(|l| l.node).collect();
        assert_eq!(held, ["c", "d", "e"], "finished nodes are free at once");

        let unsure = store
            .finish_run_blocking(
                "r1",
                vec![Write::RunFinished {
                    id: "r1".to_string(),
                    status: RunStatus::Interrupted,
                    outcome: json!({}),
                    at: now,
                }],
                true,
            )
            .unwrap();
        assert_eq!(
            unsure,
            [
                ("c".to_string(), NodeState::Drained),
                ("d".to_string(), NodeState::Running)
            ]
        );
        let held: Vec<String> = store.leases().unwrap().into_iter().map(|l| l.node).collect();
        assert_eq!(held, ["c", "d"], "the never-started e is free, the unsure kept");
        store.finish_run_blocking("r1", Vec::new(), false).unwrap();
        assert_eq!(store.leases().unwrap(), []);
    }

    fn foreign(path: &Path, sql: &str) -> Vec<u8> {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(sql).unwrap();
        drop(conn);
        std::fs::read(path).unwrap()
    }

    #[test]
    fn files_that_are_not_drovers_are_refused_untouched() {
        let dir = TempDir::new().unwrap();
        let cases = [
            (
                "clash.db",
                "CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT); CREATE TABLE jobs (x);",
                "another application's tables (jobs, runs)",
            ),
            (
                "appid.db",
                "PRAGMA application_id = 1234; CREATE TABLE t (x);",
                "another application (application id 0x000004d2)",
            ),
            (
                "plain.db",
                "PRAGMA user_version = 0; VACUUM;",
                "without drover's tables",
            ),
            (
                "partial.db",
                "PRAGMA user_version = 1; CREATE TABLE runs (id);",
                "another application's tables (runs)",
            ),
        ];
        for (name, sql, why) in cases {
            let path = dir.path().join(name);
            let before = foreign(&path, sql);
            for err in [
                Store::open(&path).unwrap_err(),
                Store::open_read_only(&path).unwrap_err(),
            ] {
                assert!(matches!(err, StoreError::NotDrover { .. }), "{name}: {err:?}");
                let text = err.to_string();
                assert!(text.contains(why), "{name}: {text}");
                assert!(text.contains(&path.display().to_string()), "{text}");
                assert!(!text.contains("CREATE"), "no SQL in the message: {text}");
                assert_eq!(text.lines().count(), 2, "one line and a help: {text}");
            }
            assert_eq!(std::fs::read(&path).unwrap(), before, "{name} is unchanged");
        }

        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, "").unwrap();
        let err = Store::open(&empty).unwrap_err();
        assert!(err.to_string().contains("it is empty (0 bytes)"), "{err}");
        assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0, "still empty");
    }

    #[test]
    fn a_database_of_an_older_drover_without_application_id_is_adopted() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("drover.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(schema::V1_FOR_TESTS).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
        }
        // Readable as it is, without being written.
        let before = std::fs::read(&path).unwrap();
        assert_eq!(Store::open_read_only(&path).unwrap().runs().unwrap(), []);
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // A writable open stamps it as drover's.
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let id: i32 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .unwrap();
        assert_eq!(id, schema::APPLICATION_ID);
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::SCHEMA_VERSION, "and migrated");
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT run FROM nodes WHERE node = 'a' ORDER BY updated_at DESC LIMIT 1",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("nodes_by_node"), "{plan}");
    }

    /// A drover store file as version 2 wrote it (before pauses and triggers).
    fn version_2_file(path: &std::path::Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(&schema::v2_for_tests()).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.pragma_update(None, "application_id", schema::APPLICATION_ID)
            .unwrap();
        conn
    }

    /// A version-2 file (before triggers) with a run: read-only it opens as it is and
    /// its run has no trigger; a writable open migrates it, and a new run's trigger is
    /// recorded with its creation and read back.
    #[test]
    fn a_version_2_store_opens_and_migrates_to_triggers() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("drover.db");
        {
            let conn = version_2_file(&path);
            conn.execute(
                "INSERT INTO runs (id, workflow, version, status, plan, options, controller_host,
                                   controller_pid, started_at, heartbeat_at)
                 VALUES ('old', 'kernel', 1, 'succeeded', '{}', '{}', 'h', 1, 0, 0)",
                [],
            )
            .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let ro = Store::open_read_only(&path).unwrap();
        assert_eq!(
            ro.trigger("old").unwrap(),
            None,
            "no column, no trigger, no error"
        );
        assert_eq!(ro.runs().unwrap().len(), 1);
        drop(ro);
        assert_eq!(std::fs::read(&path).unwrap(), before, "read-only wrote nothing");

        let store = Store::open(&path).unwrap();
        assert_eq!(store.trigger("old").unwrap(), None);
        let t = json!({"kind": "git_commit", "sha": "abc", "author": "a", "subject": "s"});
        store
            .begin_run_blocking(
                "new",
                &["n1".to_string()],
                ts("2026-12-01T10:00:00Z"),
                Duration::from_secs(60),
                vec![
                    created("new", &["n1"], Controller::this(), ts("2026-12-01T10:00:00Z")),
                    Write::RunTriggered {
                        id: "new".into(),
                        trigger: t.clone(),
                    },
                ],
            )
            .unwrap();
        assert_eq!(store.trigger("new").unwrap(), Some(t));
        assert_eq!(store.trigger("missing").unwrap(), None);
        drop(store);
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::SCHEMA_VERSION);
    }

    #[test]
    fn a_new_database_carries_the_application_id_and_leaves_no_temporary_file() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("drover.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let id: i32 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .unwrap();
        assert_eq!(id, schema::APPLICATION_ID);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert_eq!(names, Vec::<String>::new());
    }

    #[test]
    fn stores_opening_a_fresh_file_at_once_all_get_the_same_database() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("drover.db");
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let stores: Vec<Store> = (0..8)
            .map(|_| {
                let (barrier, path) = (Arc::clone(&barrier), path.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    Store::open(&path)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap().expect("every open succeeds"))
            .collect();
        stores[3]
            .write_blocking(vec![created(
                "r1",
                &["a"],
                Controller::this(),
                ts("2026-01-01T00:00:00Z"),
            )])
            .unwrap();
        for s in &stores {
            assert_eq!(s.runs().unwrap().len(), 1, "one database for all");
        }
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".new")
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn read_only_opens_write_nothing() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("drover.db");
        let missing = Store::open_read_only(&path).unwrap_err();
        assert!(matches!(missing, StoreError::Missing { .. }), "{missing:?}");
        assert!(!path.exists(), "nothing is created");
        {
            let store = Store::open(&path).unwrap();
            store
                .write_blocking(vec![created(
                    "r1",
                    &["a"],
                    Controller::this(),
                    ts("2026-01-01T00:00:00Z"),
                )])
                .unwrap();
        }
        let store = Store::open_read_only(&path).unwrap();
        assert_eq!(store.runs().unwrap().len(), 1);
        let err = store.write_blocking(vec![]).unwrap_err();
        assert!(matches!(err, StoreError::ReadOnly { .. }), "{err:?}");
    }

    #[test]
    fn an_up_to_date_database_opens_while_another_process_holds_its_write_lock() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("drover.db");
        drop(Store::open(&path).unwrap());
        let locker = Connection::open(&path).unwrap();
        locker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = std::time::Instant::now();
        let store = Store::open(&path).expect("nothing to migrate, so no lock is needed");
        assert!(started.elapsed() < Duration::from_secs(5), "it did not wait");
        assert_eq!(store.runs().unwrap(), [], "reads do not wait for the writer");
        // A write does wait, and then says who is in the way.
        let err = store
            .write_blocking(vec![created(
                "r1",
                &["a"],
                Controller::this(),
                ts("2026-01-01T00:00:00Z"),
            )])
            .unwrap_err();
        assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("is locked by another process"), "{text}");
        assert!(text.contains("after waiting 10s"), "{text}");
        assert!(!text.contains("migrate"), "{text}");
        locker.execute_batch("ROLLBACK").unwrap();
    }

    #[test]
    fn pauses_are_kept_and_lifted_by_scope_and_the_global_one_holds_first() {
        use crate::store::PauseScope;
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("drover.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.pause_holding("r1").unwrap(), None);
        let pause = |scope: PauseScope, by: &str, at: &str| Write::Paused {
            scope,
            reason: Some(format!("{by}'s reason")),
            by: by.into(),
            at: ts(at),
        };
        store
            .write_blocking(vec![pause(
                PauseScope::Run("r1".into()),
                "bob",
                "2026-01-01T10:00:00Z",
            )])
            .unwrap();
        assert_eq!(store.pause_holding("r1").unwrap().unwrap().by, "bob");
        assert_eq!(store.pause_holding("r2").unwrap(), None, "only r1 is paused");
        store
            .write_blocking(vec![pause(PauseScope::All, "alice", "2026-01-01T11:00:00Z")])
            .unwrap();
        // Pausing again keeps since and takes the new setter.
        store
            .write_blocking(vec![pause(PauseScope::All, "carol", "2026-01-01T12:00:00Z")])
            .unwrap();
        let held = store.pause_holding("r1").unwrap().unwrap();
        assert_eq!(held.scope, PauseScope::All, "the global pause is named first");
        assert_eq!(held.by, "carol");
        assert_eq!(held.since, ts("2026-01-01T11:00:00Z"));
        assert_eq!(
            held.to_string(),
            "paused (all runs) by carol since 2026-01-01 11:00 UTC: carol's reason"
        );
        assert_eq!(store.pause_holding("r2").unwrap().unwrap().scope, PauseScope::All);
        assert_eq!(store.pauses().unwrap().len(), 2);
        drop(store);
        // It is on disk: another process (a read-only one, say) sees it.
        let reader = Store::open_read_only(&path).unwrap();
        assert_eq!(reader.pauses().unwrap().len(), 2);
        let store = Store::open(&path).unwrap();
        store
            .write_blocking(vec![Write::Unpaused {
                scope: PauseScope::All,
                by: "carol".into(),
                at: Timestamp::UNIX_EPOCH,
            }])
            .unwrap();
        assert_eq!(store.pause_holding("r1").unwrap().unwrap().by, "bob");
        assert_eq!(store.pause_holding("r2").unwrap(), None);
        // Lifting what is not set is no error.
        store
            .write_blocking(vec![Write::Unpaused {
                scope: PauseScope::All,
                by: "carol".into(),
                at: Timestamp::UNIX_EPOCH,
            }])
            .unwrap();
    }

    #[test]
    fn hold_failed_puts_exactly_the_runs_failed_nodes_into_maintenance_with_their_reason() {
        let dir = TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("drover.db")).unwrap();
        let t = ts("2026-01-01T10:00:00Z");
        let failed = |run: &str, n: &str, why: Option<&str>| {
            let mut w = node(run, n, NodeState::Failed, t);
            if let Write::Node { reason, .. } = &mut w {
                *reason = why.map(String::from);
            }
            w
        };
        store
            .write_blocking(vec![
                created("r1", &["a", "b", "c", "d"], Controller::this(), t),
                created("r2", &["e"], Controller::this(), t),
                failed("r1", "a", Some("repair failed (on_failure steps ran)")),
                node("r1", "b", NodeState::Succeeded, t),
                failed("r1", "c", None),
                failed("r2", "e", Some("other run")),
                Write::MaintenanceOn {
                    node: "c".into(),
                    reason: Some("dimm".into()),
                    by: "alice".into(),
                    at: ts("2026-01-01T09:00:00Z"),
                },
            ])
            .unwrap();
        store
            .write_blocking(vec![Write::HoldFailed {
                run: "r1".into(),
                by: "hook:disk".into(),
                what: "alarm `disk`".into(),
                at: ts("2026-01-01T11:00:00Z"),
            }])
            .unwrap();
        let m = store.in_maintenance().unwrap();
        assert_eq!(m.iter().map(|n| n.node.as_str()).collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(m[0].by, "hook:disk");
        assert_eq!(
            m[0].reason.as_deref(),
            Some("alarm `disk`: run r1 failed on it: repair failed (on_failure steps ran)")
        );
        assert_eq!(m[0].since, ts("2026-01-01T11:00:00Z"));
        assert_eq!(
            m[1].reason.as_deref(),
            Some("alarm `disk`: run r1 failed on it: see the run")
        );
        assert_eq!(
            m[1].since,
            ts("2026-01-01T09:00:00Z"),
            "already in maintenance: keeps its since"
        );
        // A run with no failed node holds nothing, and that is no error.
        store
            .write_blocking(vec![Write::HoldFailed {
                run: "r2x".into(),
                by: "hook:disk".into(),
                what: "alarm `disk`".into(),
                at: t,
            }])
            .unwrap();
        assert_eq!(store.in_maintenance().unwrap().len(), 2);
    }

    #[test]
    fn maintenance_is_kept_per_node_and_ends_in_the_state_before() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("drover.db");
        let store = Store::open(&path).unwrap();
        let on = |node: &str, by: &str, at: &str| Write::MaintenanceOn {
            node: node.into(),
            reason: Some("dimm".into()),
            by: by.into(),
            at: ts(at),
        };
        store
            .write_blocking(vec![
                on("n1", "alice", "2026-01-01T10:00:00Z"),
                on("n2", "alice", "2026-01-01T10:00:00Z"),
                on("n1", "bob", "2026-01-01T11:00:00Z"),
            ])
            .unwrap();
        let m = store.in_maintenance().unwrap();
        assert_eq!(
            m.iter().map(|n| n.node.as_str()).collect::<Vec<_>>(),
            ["n1", "n2"]
        );
        assert_eq!(m[0].by, "bob");
        assert_eq!(m[0].since, ts("2026-01-01T10:00:00Z"), "still in since the first");
        assert_eq!(
            m[0].to_string(),
            "maintenance by bob since 2026-01-01 10:00 UTC: dimm"
        );
        store
            .write_blocking(vec![
                Write::MaintenanceOff { node: "n1".into() },
                Write::MaintenanceOff { node: "n9".into() },
            ])
            .unwrap();
        let m = store.in_maintenance().unwrap();
        assert_eq!(m.iter().map(|n| n.node.as_str()).collect::<Vec<_>>(), ["n2"]);
        // A state other than maintenance (node lifecycle adds them) comes back after it.
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO node_lifecycle (node, state, set_by, since) VALUES ('n3', 'commissioned', 'x', 0)",
            [],
        )
        .unwrap();
        store
            .write_blocking(vec![on("n3", "alice", "2026-01-01T10:00:00Z")])
            .unwrap();
        assert_eq!(store.in_maintenance().unwrap().len(), 2);
        store
            .write_blocking(vec![Write::MaintenanceOff { node: "n3".into() }])
            .unwrap();
        let state: String = conn
            .query_row("SELECT state FROM node_lifecycle WHERE node = 'n3'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(state, "commissioned");
    }

    #[test]
    fn a_version_2_database_is_read_without_pauses_and_migrated_on_a_writable_open() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("drover.db");
        drop(version_2_file(&path));
        let before = std::fs::read(&path).unwrap();
        let reader = Store::open_read_only(&path).unwrap();
        assert_eq!(reader.pauses().unwrap(), []);
        assert_eq!(reader.pause_holding("r1").unwrap(), None);
        assert_eq!(reader.in_maintenance().unwrap(), []);
        drop(reader);
        assert_eq!(std::fs::read(&path).unwrap(), before, "read-only wrote nothing");
        let store = Store::open(&path).unwrap();
        store
            .write_blocking(vec![Write::Paused {
                scope: crate::store::PauseScope::All,
                reason: None,
                by: "alice".into(),
                at: ts("2026-01-01T10:00:00Z"),
            }])
            .unwrap();
        assert_eq!(store.pauses().unwrap().len(), 1);
        let version: i64 = Connection::open(&path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::SCHEMA_VERSION);
    }

    fn accepted(sha: &str, wanted: &[&str], at: Timestamp) -> Write {
        Write::SourceCommit {
            sha: sha.to_string(),
            verdict: SourceVerdict::Accepted,
            author: "ada".to_string(),
            subject: format!("commit {sha}"),
            detail: String::new(),
            fingerprints: Some(json!({})),
            wanted: wanted
                .iter()
                .map(|w| WantedRollout {
                    workflow: w.to_string(),
                    version: 1,
                    sha: sha.to_string(),
                    author: "ada".to_string(),
                    subject: format!("commit {sha}"),
                    commit_time: at,
                })
                .collect(),
            at,
        }
    }

    #[test]
    fn an_accepted_commits_wanted_versions_are_owed_until_a_run_records_their_commit() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let at = ts("2026-01-01T12:00:00Z");
        store
            .write_blocking(vec![accepted("abc123", &["kernel", "motd"], at)])
            .unwrap();
        let owed = |s: &Store| -> Vec<(String, String)> {
            s.unstarted_rollouts()
                .unwrap()
                .into_iter()
                .map(|w| (w.workflow, w.sha))
                .collect()
        };
        assert_eq!(
            owed(&store),
            [
                ("kernel".into(), "abc123".into()),
                ("motd".into(), "abc123".into())
            ]
        );
        // A run of kernel at abc123 (`created` records that commit): kernel is rolled.
        store
            .write_blocking(vec![created("r1", &["a"], Controller::this(), at)])
            .unwrap();
        assert_eq!(owed(&store), [("motd".into(), "abc123".into())]);
        // A newer commit replaces a workflow's wanted version; a rejected one does not.
        let later = ts("2026-01-01T12:05:00Z");
        store
            .write_blocking(vec![accepted("def456", &["kernel"], later)])
            .unwrap();
        store
            .write_blocking(vec![Write::SourceCommit {
                sha: "bad".into(),
                verdict: SourceVerdict::Rejected,
                author: "eve".into(),
                subject: "typo".into(),
                detail: "unknown key".into(),
                fingerprints: None,
                wanted: Vec::new(),
                at: later,
            }])
            .unwrap();
        assert_eq!(
            owed(&store),
            [
                ("motd".into(), "abc123".into()),
                ("kernel".into(), "def456".into())
            ]
        );
        let w = &store.unstarted_rollouts().unwrap()[1];
        assert_eq!((w.version, w.author.as_str(), w.commit_time), (1, "ada", later));
        drop(store);

        // A file from before version 8 reads as owing nothing, and migrates on a
        // writable open (version 9's table goes too: it is a version 7 file).
        let path = dir.path().join("state/drover.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "DROP TABLE rollouts_wanted; DROP INDEX runs_by_commit; DROP TABLE alarm_cooldowns;
                 ALTER TABLE discovered_hosts DROP COLUMN memory_mib;
                 ALTER TABLE discovered_hosts DROP COLUMN os;
                 ALTER TABLE discovered_hosts DROP COLUMN kernel;
                 ALTER TABLE discovered_hosts DROP COLUMN arch;",
            )
            .unwrap();
            conn.pragma_update(None, "user_version", 7).unwrap();
        }
        assert_eq!(
            Store::open_read_only(&path)
                .unwrap()
                .unstarted_rollouts()
                .unwrap(),
            []
        );
        let store = Store::open(&path).unwrap();
        assert_eq!(owed(&store), []);
        store
            .write_blocking(vec![accepted("0a0b", &["motd"], later)])
            .unwrap();
        assert_eq!(owed(&store), [("motd".into(), "0a0b".into())]);
    }

    /// The read cache's premise: the generation stays put while nothing is committed,
    /// and changes with every commit, whether this store's own writer made it (the
    /// probe is another connection, so its `data_version` moves too, not only the commit
    /// counter) or another connection to the file did (as another drover process would).
    #[test]
    fn the_generation_changes_with_every_commit_and_only_then() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let t = ts("2026-01-02T03:04:05Z");
        let g0 = store.generation().unwrap();
        store.runs().unwrap();
        assert_eq!(store.generation().unwrap(), g0, "a read changes nothing");

        store
            .write_blocking(vec![created("r1", &["n1"], Controller::this(), t)])
            .unwrap();
        let g1 = store.generation().unwrap();
        assert_ne!(g1, g0);
        assert_ne!(
            g1.data_version, g0.data_version,
            "the probe sees the writer connection's commit"
        );
        assert_eq!(store.generation().unwrap(), g1);

        // Another connection with its own writer: this store's counter does not move,
        // the data version does.
        let other = Store::open(&dir.path().join("state/drover.db")).unwrap();
        other
            .write_blocking(vec![node("r1", "n1", NodeState::Running, t)])
            .unwrap();
        let g2 = store.generation().unwrap();
        assert_eq!(g2.commits, g1.commits);
        assert_ne!(g2, g1, "a commit by another connection changes the generation");
        assert_eq!(store.generation().unwrap(), g2);
    }
}
