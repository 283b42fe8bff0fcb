//! Group commit: one thread owns the writing connection and turns every request queued
//! while it was busy into one transaction, so 200 node tasks recording at once cost one
//! fsync, not 200.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::op::{Answer, Op};
use super::store_error::StoreError;

/// The most requests one transaction takes. Bounds how long the first of them waits
/// for its acknowledgement when a flood is queued; the rest go into the next one.
const MAX_BATCH: usize = 1024;

/// Where a request's outcome goes: async callers await a oneshot, blocking callers wait
/// on a channel (a oneshot's `blocking_recv` would panic inside a runtime).
pub(super) enum Reply {
    Async(tokio::sync::oneshot::Sender<Result<Answer, StoreError>>),
    Blocking(mpsc::SyncSender<Result<Answer, StoreError>>),
}

impl Reply {
    fn send(self, result: Result<Answer, StoreError>) {
        // A caller that stopped waiting (a dropped future) does not want the answer; its
        // writes are applied all the same.
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(result);
            }
            Reply::Blocking(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

pub(super) struct Request {
    pub(super) op: Op,
    pub(super) reply: Reply,
}

/// The handle to the writer thread. Dropping it closes the queue; the thread applies
/// whatever is still queued, then exits, and the drop waits for that.
pub(super) struct Writer {
    queue: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    commits: Arc<AtomicU64>,
}

impl Writer {
    pub(super) fn spawn(conn: Connection, path: &Path) -> Result<Writer, StoreError> {
        let (queue, requests) = mpsc::channel();
        let commits = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&commits);
        let path = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("drover-store-writer".to_string())
            .spawn(move || run(conn, &path, &requests, &counter))
            .map_err(|e| StoreError::Thread { source: Arc::new(e) })?;
        Ok(Writer {
            queue: Some(queue),
            thread: Some(thread),
            commits,
        })
    }

    pub(super) fn submit(&self, request: Request) -> Result<(), StoreError> {
        self.queue
            .as_ref()
            .ok_or(StoreError::WriterGone)?
            .send(request)
            .map_err(|_| StoreError::WriterGone)
    }

    /// Transactions committed so far.
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            // A panicked writer has already failed its callers (their replies dropped).
            let _ = thread.join();
        }
    }
}

/// Until every sender is gone: wait for one request, take whatever else is queued, and
/// commit them together. Requests queued before the last sender went are still served
/// (an mpsc receiver yields buffered messages before reporting disconnection).
fn run(mut conn: Connection, path: &Path, requests: &mpsc::Receiver<Request>, commits: &AtomicU64) {
    while let Ok(first) = requests.recv() {
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        batch.extend(requests.try_iter().take(MAX_BATCH - 1));
        commit_batch(&mut conn, path, batch, commits);
    }
}

/// Applies the batch in one IMMEDIATE transaction and answers every request; returns
/// whether a transaction was committed.
///
/// Each request runs inside its own savepoint, so a request whose writes fail (an
/// unknown node, say) is rolled back alone and gets its error, while the others in the
/// batch are committed and acknowledged: one bad write never fails unrelated callers.
/// A request is all-or-nothing. If the transaction as a whole fails (cannot begin,
/// SQLite rolled it back after an I/O error, or the commit fails), every request gets
/// that error and none of them is applied.
/// `commits` counts before anyone is answered, so a caller that reads it after its write
/// returned sees its own commit.
pub(super) fn commit_batch(
    conn: &mut Connection,
    path: &Path,
    batch: Vec<Request>,
    commits: &AtomicU64,
) -> bool {
    let fail_all = |batch: Vec<Request>, err: StoreError| {
        for request in batch {
            request.reply.send(Err(err.clone()));
        }
        false
    };

    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(batch, StoreError::database(path, "begin a write transaction", e)),
    };
    let results = match apply_each(&mut tx, path, &batch) {
        Ok(results) => results,
        Err(err) => {
            drop(tx);
            return fail_all(batch, err);
        }
    };
    if let Err(e) = tx.commit() {
        return fail_all(batch, StoreError::database(path, "commit", e));
    }
    commits.fetch_add(1, Ordering::Relaxed);
    for (request, result) in batch.into_iter().zip(results) {
        request.reply.send(result);
    }
    true
}

/// Each request's own outcome, or the error that broke the whole transaction.
fn apply_each(
    tx: &mut Transaction<'_>,
    path: &Path,
    batch: &[Request],
) -> Result<Vec<Result<Answer, StoreError>>, StoreError> {
    let mut results = Vec::with_capacity(batch.len());
    for request in batch {
        let sp = tx
            .savepoint()
            .map_err(|e| StoreError::database(path, "begin a savepoint", e))?;
        let result = request.op.apply(&sp, path);
        match &result {
            Ok(_) => sp
                .commit()
                .map_err(|e| StoreError::database(path, "release a savepoint", e))?,
            // SQLite gave up the whole transaction (I/O error, disk full): nothing in it
            // stands, and going on would autocommit the rest one by one.
            Err(err) if sp.is_autocommit() => return Err(err.clone()),
            Err(_) => sp
                .finish()
                .map_err(|e| StoreError::database(path, "roll back a failed write", e))?,
        }
        results.push(result);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tempfile::TempDir;

    use super::*;
    use crate::store::{Controller, NodeState, Store, Write};

    fn node_write(node: &str) -> Write {
        Write::Node {
            run: "r1".to_string(),
            node: node.to_string(),
            state: NodeState::Succeeded,
            attempt: 1,
            step: 0,
            drained_by_us: false,
            boot_id: None,
            reason: None,
            at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    fn request(writes: Vec<Write>) -> (Request, mpsc::Receiver<Result<Answer, StoreError>>) {
        let (tx, rx) = mpsc::sync_channel(1);
        let reply = Reply::Blocking(tx);
        (
            Request {
                op: Op::Writes(writes),
                reply,
            },
            rx,
        )
    }

    #[test]
    fn a_failing_request_does_not_fail_the_others_in_its_batch() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("drover.db");
        drop(Store::open(&path).unwrap());
        let mut conn = crate::store::schema::connect(&path, crate::store::schema::Access::ReadWrite).unwrap();
        let (create, created) = request(vec![Write::RunCreated {
            id: "r1".to_string(),
            workflow: "w".to_string(),
            version: 1,
            commit: None,
            plan: json!({}),
            options: json!({}),
            controller: Controller::this(),
            at: jiff::Timestamp::UNIX_EPOCH,
            nodes: vec![("a".to_string(), 0), ("b".to_string(), 0), ("c".to_string(), 0)],
        }]);
        let (good, good_reply) = request(vec![node_write("a")]);
        let (bad, bad_reply) = request(vec![node_write("b"), node_write("nope")]);
        let (after, after_reply) = request(vec![node_write("c")]);

        assert!(
            commit_batch(
                &mut conn,
                &path,
                vec![create, good, bad, after],
                &AtomicU64::new(0)
            ),
            "one transaction"
        );
        created.recv().unwrap().unwrap();
        good_reply.recv().unwrap().unwrap();
        after_reply.recv().unwrap().unwrap();
        let err = bad_reply.recv().unwrap().unwrap_err();
        assert!(
            matches!(err, StoreError::UnknownNode { ref node, .. } if node == "nope"),
            "{err}"
        );
        drop(conn);

        let detail = Store::open(&path).unwrap().run("r1").unwrap().unwrap();
        let states: Vec<_> = detail.nodes.iter().map(|n| n.state).collect();
        assert_eq!(
            states,
            [NodeState::Succeeded, NodeState::Pending, NodeState::Succeeded],
            "b's request was rolled back whole; the requests around it were committed"
        );
    }
}
