//! The handle the engine and the CLI use.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::Connection;

use super::columns::{duration_millis, millis};
use super::controller::Controller;
use super::lease::Lease;
use super::lease_conflict::LeaseConflict;
use super::run_detail::RunDetail;
use super::run_row::RunRow;
use super::run_status::RunStatus;
use super::schema;
use super::store_error::StoreError;
use super::write::Write;
use super::writer::{Reply, Request, Writer};

/// Durable run state in one SQLite file (`<state_dir>/drover.db`).
///
/// Writes go through a single writer thread that commits everything queued together
/// (group commit) and answer only once it is on disk. Reads and lease operations use a
/// second connection: they are synchronous and short, and in WAL mode they never wait
/// for the writer's transaction (lease operations wait for its lock, up to 10 s).
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
    writer: Writer,
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
    /// to date. A database written by a newer drover is refused untouched.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::CreateDir {
                path: parent.to_path_buf(),
                source: Arc::new(e),
            })?;
        }
        let mut writing = schema::connect(path)?;
        schema::migrate(&mut writing, path)?;
        let reader = schema::connect(path)?;
        let writer = Writer::spawn(writing, path)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                reader: Mutex::new(reader),
                writer,
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
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner.writer.submit(Request {
            writes,
            reply: Reply::Async(tx),
        })?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// [`Store::write`] for callers without a runtime; blocks the thread until the
    /// writes are on disk.
    pub fn write_blocking(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.inner.writer.submit(Request {
            writes,
            reply: Reply::Blocking(tx),
        })?;
        rx.recv().map_err(|_| StoreError::WriterGone)?
    }

    /// Transactions the writer has committed since this store was opened: with group
    /// commit, far fewer than the writes submitted under load.
    pub fn commits(&self) -> u64 {
        self.inner.writer.commits()
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<RunRow>, StoreError> {
        RunRow::query(&self.reader(), None, None).map_err(|e| self.error("read the runs", e))
    }

    /// The run with its plan, nodes (in plan order) and step attempts.
    pub fn run(&self, id: &str) -> Result<Option<RunDetail>, StoreError> {
        RunDetail::load(&mut self.reader(), id).map_err(|e| self.error(format!("read run `{id}`"), e))
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

    /// Leases: a node is in at most one active run. All-or-nothing in one IMMEDIATE
    /// transaction (safe across processes): nodes free, expired (`expires_at <= now`), or
    /// already held by `run` are taken or renewed to `now + ttl`; if any node is held by
    /// another run with an unexpired lease, nothing is taken and the conflicts are
    /// returned (empty: all taken).
    pub fn acquire_leases(
        &self,
        run: &str,
        nodes: &[String],
        now: Timestamp,
        ttl: Duration,
    ) -> Result<Vec<LeaseConflict>, StoreError> {
        let now = millis(now);
        Lease::acquire(
            &mut self.reader(),
            run,
            nodes,
            now,
            now.saturating_add(duration_millis(ttl)),
        )
        .map_err(|e| self.error(format!("take leases for run `{run}`"), e))
    }

    /// Extends every lease `run` holds to `now + ttl`; returns how many. Fewer than the
    /// run took means another run took over expired ones.
    pub fn renew_leases(&self, run: &str, now: Timestamp, ttl: Duration) -> Result<usize, StoreError> {
        let until = millis(now).saturating_add(duration_millis(ttl));
        Lease::renew(&self.reader(), run, until)
            .map_err(|e| self.error(format!("renew the leases of run `{run}`"), e))
    }

    /// Releases the run's leases on `nodes` (`None`: all of them); returns how many.
    pub fn release_leases(&self, run: &str, nodes: Option<&[String]>) -> Result<usize, StoreError> {
        Lease::release(&mut self.reader(), run, nodes)
            .map_err(|e| self.error(format!("release the leases of run `{run}`"), e))
    }

    /// Every lease, expired or not, by node name.
    pub fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        Lease::all(&self.reader()).map_err(|e| self.error("read the leases", e))
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

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    use serde_json::json;
    use tempfile::TempDir;

    use super::*;
    use crate::store::{NodeState, RunStatus};

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

    fn names(nodes: &[&str]) -> Vec<String> {
        nodes.iter().map(|n| n.to_string()).collect()
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

    #[test]
    fn leases_are_all_or_nothing() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let now = ts("2026-01-01T00:00:00Z");
        let ttl = Duration::from_secs(60);

        assert!(
            store
                .acquire_leases("r1", &names(&["a", "b"]), now, ttl)
                .unwrap()
                .is_empty()
        );
        let conflicts = store.acquire_leases("r2", &names(&["b", "c"]), now, ttl).unwrap();
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
            store
                .acquire_leases("r1", &names(&["b", "c"]), later, ttl)
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

        assert_eq!(store.renew_leases("r1", later, ttl).unwrap(), 3);
        assert!(
            store
                .leases()
                .unwrap()
                .iter()
                .all(|l| l.expires_at == ts("2026-01-01T00:01:30Z"))
        );
        assert_eq!(store.renew_leases("r2", later, ttl).unwrap(), 0);
    }

    #[test]
    fn expired_leases_are_taken_over() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let now = ts("2026-01-01T00:00:00Z");
        let ttl = Duration::from_secs(60);
        assert!(
            store
                .acquire_leases("r1", &names(&["a", "b"]), now, ttl)
                .unwrap()
                .is_empty()
        );

        // Just before expiry the lease holds; at `expires_at` it is free.
        let before = ts("2026-01-01T00:00:59.999Z");
        assert_eq!(
            store
                .acquire_leases("r2", &names(&["a"]), before, ttl)
                .unwrap()
                .len(),
            1
        );
        let at = ts("2026-01-01T00:01:00Z");
        assert!(
            store
                .acquire_leases("r2", &names(&["a"]), at, ttl)
                .unwrap()
                .is_empty()
        );

        // r1 renews what it still has, and cannot release what it lost.
        assert_eq!(store.renew_leases("r1", at, ttl).unwrap(), 1);
        assert_eq!(store.release_leases("r1", Some(&names(&["a"]))).unwrap(), 0);
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
            store
                .acquire_leases("r1", &names(&["a", "b", "c"]), now, ttl)
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .acquire_leases("r2", &names(&["d"]), now, ttl)
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.release_leases("r1", Some(&names(&["a", "x"]))).unwrap(), 1);
        assert!(
            store
                .acquire_leases("r3", &names(&["a"]), now, ttl)
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.release_leases("r1", None).unwrap(), 2);
        assert!(
            store
                .acquire_leases("r3", &names(&["b", "c"]), now, ttl)
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

        assert!(
            one.acquire_leases("r1", &nodes[..2], now, ttl)
                .unwrap()
                .is_empty()
        );
        let conflicts = two.acquire_leases("r2", &nodes[1..], now, ttl).unwrap();
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
                        store.acquire_leases(run, &nodes, now, ttl).unwrap().is_empty()
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
            one.release_leases("x1", None).unwrap();
            two.release_leases("x2", None).unwrap();
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
            conn.pragma_update(None, "user_version", 99).unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::TooNew {
                    found: 99,
                    known: 1,
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
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        assert!(err.to_string().contains("plain-file"), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a directory");
    }
}
