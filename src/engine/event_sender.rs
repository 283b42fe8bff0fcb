//! The run's event channel, bounded: a reporter that falls behind (a terminal paused
//! with Ctrl-S, `| less` not being read) must neither block the run nor let queued
//! events grow without bound.
//!
//! Sending never waits. When the channel is full, progress events (a step finished, a
//! drain moved on, a node started or waits for a retry) are dropped and counted;
//! milestones (a node checked or finished, a phase, the soak, the run's end) are kept
//! in an overflow queue, at most a few per node, so consumers that rely on them (the
//! JSON lines) still see every one, in order.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, mpsc};

use super::event::RunEvent;

/// Events queued before progress events are dropped.
pub const EVENT_CAPACITY: usize = 4096;

#[derive(Default)]
struct Shared {
    overflow: Mutex<VecDeque<RunEvent>>,
    dropped: AtomicU64,
    notify: Notify,
}

#[derive(Clone)]
pub struct EventSender {
    tx: mpsc::Sender<RunEvent>,
    shared: Arc<Shared>,
}

pub struct EventReceiver {
    rx: mpsc::Receiver<RunEvent>,
    shared: Arc<Shared>,
}

/// A channel holding `capacity` events before it drops progress events.
pub fn event_channel(capacity: usize) -> (EventSender, EventReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let shared = Arc::new(Shared::default());
    (
        EventSender {
            tx,
            shared: Arc::clone(&shared),
        },
        EventReceiver { rx, shared },
    )
}

fn is_milestone(ev: &RunEvent) -> bool {
    !matches!(
        ev,
        RunEvent::StepFinished { .. }
            | RunEvent::NodeDrain { .. }
            | RunEvent::NodeStarted { .. }
            | RunEvent::NodeRetry { .. }
    )
}

impl EventSender {
    /// Queues `ev` without waiting; nobody listening is not an error.
    pub fn send(&self, ev: RunEvent) {
        let mut overflow = self
            .shared
            .overflow
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Once anything overflowed, later events queue behind it, so order is kept.
        let ev = if overflow.is_empty() {
            match self.tx.try_send(ev) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(ev)) => ev,
            }
        } else {
            ev
        };
        if is_milestone(&ev) {
            overflow.push_back(ev);
            drop(overflow);
            self.shared.notify.notify_one();
        } else {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Progress events dropped so far because the consumer was behind.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl EventReceiver {
    /// The next event; `None` once every sender is gone and everything was received.
    pub async fn recv(&mut self) -> Option<RunEvent> {
        loop {
            if let Ok(ev) = self.rx.try_recv() {
                return Some(ev);
            }
            if let Some(ev) = self.pop_overflow() {
                return Some(ev);
            }
            tokio::select! {
                ev = self.rx.recv() => match ev {
                    Some(ev) => return Some(ev),
                    None => return self.pop_overflow(),
                },
                () = self.shared.notify.notified() => {}
            }
        }
    }

    /// The next event if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<RunEvent> {
        self.rx.try_recv().ok().or_else(|| self.pop_overflow())
    }

    fn pop_overflow(&self) -> Option<RunEvent> {
        self.shared
            .overflow
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }

    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stalled_consumer_loses_progress_not_milestones() {
        let (tx, mut rx) = event_channel(4);
        for i in 0..1000 {
            tx.send(RunEvent::NodeStarted {
                node: format!("n{i}"),
                attempt: 1,
            });
            tx.send(RunEvent::NodeFinished {
                node: format!("n{i}"),
                ok: true,
                state: crate::engine::NodeFinal::Succeeded,
                error: None,
            });
        }
        drop(tx);
        let mut finished = Vec::new();
        let mut total = 0;
        while let Some(ev) = rx.recv().await {
            total += 1;
            if let RunEvent::NodeFinished { node, .. } = ev {
                finished.push(node);
            }
        }
        let want: Vec<String> = (0..1000).map(|i| format!("n{i}")).collect();
        assert_eq!(finished, want, "every milestone, in order");
        assert!(total < 1100, "progress was dropped: {total} events");
        assert!(rx.dropped() >= 900);
    }
}
