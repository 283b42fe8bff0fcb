//! The sender: one task per sink takes the outbox's events in order, delivers each and
//! marks it sent. A failing sink waits (backoff, `Retry-After`) and holds back only its
//! own later events, so the order in a channel stays the order things happened; the
//! rollouts never wait for it.
//!
//! Exactly once as far as a sender can make it: an event is recorded with its state
//! change (so a crash loses none) and marked sent right after the sink took it (so a
//! restart does not send it again). A crash between the sink's answer and the mark — a
//! few milliseconds — sends that one event again; webhook requests carry its unique key
//! (`X-Drover-Delivery`) for a receiver to drop the repeat.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::retry::retry_delay;
use super::sink::Sink;
use crate::site::NotificationSettings;
use crate::store::{Notice, Store, Write};

/// Events taken per look at the outbox.
const BATCH: usize = 50;
/// How long one delivery may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// An event older than this when a sink first sees it (a sink added later, a daemon
/// that was down for days) is marked without being sent: news that old misleads.
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error("cannot send notifications: {0}")]
    Secret(String),
    #[error("cannot send notifications: {0}")]
    Client(String),
}

pub struct Notifier {
    tasks: JoinSet<()>,
    sinks: Vec<String>,
}

impl Notifier {
    /// Starts a task per sink of `settings` (none: no task). They stop when `stop` turns
    /// true.
    pub fn spawn(
        store: Store,
        settings: &NotificationSettings,
        stop: watch::Receiver<bool>,
    ) -> Result<Notifier, NotifierError> {
        let sinks = Sink::from_settings(settings).map_err(NotifierError::Secret)?;
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| NotifierError::Client(e.without_url().to_string()))?;
        let mut tasks = JoinSet::new();
        let ids = sinks.iter().map(|s| s.id.clone()).collect();
        for sink in sinks {
            info!(sink = %sink.id, "sending notifications");
            let worker = Worker {
                store: store.clone(),
                sink,
                client: client.clone(),
                poll: settings.poll_interval,
                max_delay: settings.max_retry_delay,
                stop: stop.clone(),
            };
            tasks.spawn(worker.run());
        }
        Ok(Notifier { tasks, sinks: ids })
    }

    /// The sinks' ids, as the outbox names them.
    pub fn sink_ids(&self) -> &[String] {
        &self.sinks
    }

    /// Waits for every sink's task to stop.
    pub async fn join(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

struct Worker {
    store: Store,
    sink: Sink,
    client: reqwest::Client,
    poll: Duration,
    max_delay: Duration,
    stop: watch::Receiver<bool>,
}

impl Worker {
    async fn run(mut self) {
        while !*self.stop.borrow() {
            let pending = {
                let store = self.store.clone();
                let id = self.sink.id.clone();
                tokio::task::spawn_blocking(move || store.outbox_pending(&id, BATCH)).await
            };
            let pending = match pending {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    warn!(sink = %self.sink.id, "cannot read the notification outbox: {e}");
                    Vec::new()
                }
                Err(_) => Vec::new(),
            };
            if pending.is_empty() {
                if self.pause(self.poll).await {
                    return;
                }
                continue;
            }
            let batch = pending.len();
            for (i, n) in pending.iter().enumerate() {
                // At least this many wait behind a failing delivery (this one included).
                let waiting = batch - i;
                if !self.deliver(n, waiting).await {
                    return;
                }
            }
        }
    }

    /// Delivers `n` until the sink takes it, then marks it. False: stopped meanwhile.
    async fn deliver(&mut self, n: &Notice, waiting: usize) -> bool {
        let age = jiff::Timestamp::now().duration_since(n.at);
        let stale = age.as_secs() > i64::try_from(STALE_AFTER.as_secs()).unwrap_or(i64::MAX);
        if !self.sink.wants(n.kind) || stale {
            if stale {
                info!(sink = %self.sink.id, key = %n.key, "notification not sent: older than a day");
            }
            return self.mark(n, None).await;
        }
        let thread = match (&n.run, self.sink.threads()) {
            (Some(run), true) if n.kind != crate::store::NoticeKind::RunStarted => {
                let store = self.store.clone();
                let (run, id) = (run.clone(), self.sink.id.clone());
                tokio::task::spawn_blocking(move || store.outbox_thread(&run, &id))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .flatten()
            }
            _ => None,
        };
        let mut failures = 0u32;
        loop {
            match self.sink.deliver(&self.client, n, thread.as_deref()).await {
                Ok(reply) => {
                    debug!(sink = %self.sink.id, key = %n.key, "notification sent");
                    return self.mark(n, reply).await;
                }
                Err(e) => {
                    failures += 1;
                    let delay = e
                        .retry_after()
                        .unwrap_or_else(|| retry_delay(failures, self.max_delay));
                    warn!(
                        sink = %self.sink.id,
                        key = %n.key,
                        failures,
                        waiting = %if waiting >= BATCH { format!("{BATCH}+") } else { waiting.to_string() },
                        retry_in = %humantime::format_duration(delay),
                        "notification not delivered: {e}"
                    );
                    if self.pause(delay).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Records that the sink has `n`. False: stopped before it could be recorded.
    async fn mark(&mut self, n: &Notice, reply: Option<String>) -> bool {
        let mut failures = 0u32;
        loop {
            let w = Write::Delivered {
                outbox: n.id,
                sink: self.sink.id.clone(),
                reply: reply.clone(),
                at: jiff::Timestamp::now(),
            };
            match self.store.write(vec![w]).await {
                Ok(()) => return true,
                Err(e) => {
                    failures += 1;
                    warn!(sink = %self.sink.id, key = %n.key, "cannot record a notification as sent: {e}");
                    if self.pause(retry_delay(failures, self.max_delay)).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Sleeps `d` unless stopped first; true when stopped.
    async fn pause(&mut self, d: Duration) -> bool {
        let stopped = tokio::select! {
            () = tokio::time::sleep(d) => false,
            _ = self.stop.wait_for(|s| *s) => true,
        };
        stopped || *self.stop.borrow()
    }
}
