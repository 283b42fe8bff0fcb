//! One ordered stream of a run's events for every consumer: the engine's events and
//! the service's own, in the order they happened.
//!
//! The engine sends into its bounded [`crate::engine::EventSender`] (which drops
//! progress, never milestones, when a consumer is behind); the service's own events
//! go through the hub, which first forwards every engine event already sent, so a
//! consumer sees the check's last event before the plan built from it.

use tokio::sync::{broadcast, mpsc};

use super::event::RunEvent;
use crate::engine::EventReceiver;

/// Room in the broadcast channel: the consumers read at once (the CLI forwards to its
/// reporter without waiting), so this only absorbs a busy runtime's scheduling.
pub const BROADCAST_CAPACITY: usize = 8192;

/// The service's side of the hub; dropping it (and the engine's last sender) ends the
/// stream.
pub struct EventHub {
    tx: mpsc::UnboundedSender<RunEvent>,
}

impl EventHub {
    /// Starts forwarding `engine` into `out`; the task ends when both sides are done.
    pub fn spawn(mut engine: EventReceiver, out: broadcast::Sender<RunEvent>) -> EventHub {
        let (tx, mut own) = mpsc::unbounded_channel::<RunEvent>();
        tokio::spawn(async move {
            let send = |ev: RunEvent| {
                // No subscriber left is not an error: the run goes on unobserved.
                let _ = out.send(ev);
            };
            let mut engine_open = true;
            loop {
                tokio::select! {
                    biased;
                    ev = own.recv() => match ev {
                        Some(ev) => {
                            while let Some(e) = engine.try_recv() {
                                send(RunEvent::Engine(e));
                            }
                            send(ev);
                        }
                        None => {
                            while engine_open && let Some(e) = engine.recv().await {
                                send(RunEvent::Engine(e));
                            }
                            break;
                        }
                    },
                    ev = engine.recv(), if engine_open => match ev {
                        Some(e) => send(RunEvent::Engine(e)),
                        None => engine_open = false,
                    },
                }
            }
        });
        EventHub { tx }
    }

    pub fn emit(&self, ev: RunEvent) {
        let _ = self.tx.send(ev);
    }
}
