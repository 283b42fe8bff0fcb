//! The engine's side of the state store: every node transition is written, and on disk,
//! before the engine acts on it, so a controller killed at any instant leaves a record
//! that says which nodes it may have drained.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::journal_error::JournalError;
use crate::store::{NodeState, NoticeKind, Store, StoreError, Write};

/// The most output a step record keeps (the store's documented limit).
const OUTPUT_TAIL_BYTES: usize = 4096;

/// Where a node stands, as recorded.
#[derive(Debug, Clone)]
pub struct Mark {
    pub state: NodeState,
    pub attempt: u32,
    /// The workflow step index the node is at (or about to run).
    pub step: usize,
    /// Whether this run has the node drained.
    pub drained: bool,
    /// Read before a reboot, to tell afterwards whether it happened.
    pub boot_id: Option<String>,
    pub reason: Option<String>,
}

/// One step attempt's result.
#[derive(Debug, Clone)]
pub struct StepRecord {
    pub step: String,
    pub position: usize,
    pub attempt: u32,
    pub status: String,
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    pub output_tail: String,
}

/// A run's journal; without a store (dry runs, `check`) it records nothing.
#[derive(Clone)]
pub struct Journal {
    store: Option<Store>,
    run: String,
    /// Test fault `journal-fail-after=N`: writes after the N-th fail, as a full disk
    /// would make them.
    fail_after: Option<(usize, Arc<AtomicUsize>)>,
}

impl Journal {
    pub fn new(store: Option<Store>, run: String) -> Journal {
        let fail_after = super::fault::get("journal-fail-after")
            .and_then(|n| n.parse().ok())
            .map(|n| (n, Arc::new(AtomicUsize::new(0))));
        Journal {
            store,
            run,
            fail_after,
        }
    }

    /// One write to the store, unless the injected fault says the disk is full.
    async fn write(&self, store: &Store, w: Write) -> Result<(), StoreError> {
        if let Some((n, count)) = &self.fail_after
            && count.fetch_add(1, Ordering::SeqCst) >= *n
        {
            return Err(StoreError::Database {
                path: store.path().to_path_buf(),
                action: "record a write (injected fault)".into(),
                source: Arc::new(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                    Some("database or disk is full".into()),
                )),
            });
        }
        store.write(vec![w]).await
    }

    pub fn run(&self) -> &str {
        &self.run
    }

    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// Records a node's transition; returns once it is durable.
    pub async fn node(&self, node: &str, m: Mark) -> Result<(), JournalError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        self.write(
            store,
            Write::Node {
                run: self.run.clone(),
                node: node.to_string(),
                state: m.state,
                attempt: m.attempt,
                step: m.step,
                drained_by_us: m.drained,
                boot_id: m.boot_id,
                reason: m.reason,
                at: jiff::Timestamp::now(),
            },
        )
        .await
        .map_err(JournalError::Node)
    }

    /// Records that the run waits for its window `window` (opening at `opens`), for
    /// the notifications; in the background, since nothing of the run depends on it.
    pub fn waiting_for_window(&self, window: &str, opens: Option<jiff::Timestamp>, text: &str) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let opens = opens.map(|t| t.to_string());
        let w = Write::Notice {
            key: format!(
                "waiting_for_window:{}:{}",
                self.run,
                opens.as_deref().unwrap_or("never")
            ),
            kind: NoticeKind::WaitingForWindow,
            run: Some(self.run.clone()),
            payload: serde_json::json!({ "window": window, "opens": opens, "text": text }),
            at: jiff::Timestamp::now(),
        };
        tokio::spawn(async move {
            if let Err(e) = store.write(vec![w]).await {
                tracing::warn!("cannot record the notification that the run waits for its window: {e}");
            }
        });
    }

    pub async fn step(&self, node: &str, r: StepRecord) -> Result<(), JournalError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        self.write(
            store,
            Write::Step {
                run: self.run.clone(),
                node: node.to_string(),
                step: r.step,
                position: r.position,
                attempt: r.attempt,
                status: r.status,
                exit_code: r.exit_code,
                duration_ms: r.duration_ms,
                output_tail: tail(&r.output_tail),
                at: jiff::Timestamp::now(),
            },
        )
        .await
        .map_err(JournalError::Step)
    }
}

/// The last [`OUTPUT_TAIL_BYTES`] of `s`, cut at a character boundary.
fn tail(s: &str) -> String {
    let mut start = s.len().saturating_sub(OUTPUT_TAIL_BYTES);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_string()
}
