//! Runs as a library service: [`start`] a [`RunRequest`] and get a [`RunHandle`] with
//! the run's id, a broadcast stream of [`RunEvent`]s and its final [`Outcome`].
//!
//! The whole orchestration of a run lives here (plan, leases and record, heartbeat,
//! runner, resume, wind-down); nothing here prints. The CLI is one consumer (its
//! reporter renders the events, its verdict reads the outcome), the daemon another.

mod event;
mod event_hub;
mod failed_hold;
mod give_up;
mod maintenance_drain;
mod outcome;
mod refusal;
mod run_handle;
mod run_request;
mod run_state;
mod session;
mod skipped;
mod step_tags;
mod transport_kind;
mod trigger;

pub use event::{Planned, RunEvent};
pub use event_hub::BROADCAST_CAPACITY;
pub use failed_hold::FailedHold;
pub use give_up::{GiveUp, GiveUpReason};
pub use maintenance_drain::drain_for_maintenance;
pub use outcome::{Finished, Interruption, Outcome};
pub use refusal::{Refusal, RefusalKind};
pub use run_handle::RunHandle;
pub use run_request::{Answer, Mode, RunRequest, Selection};
pub use run_state::{
    Resume, abandoned_notices, begin, heartbeat, in_flight, in_maintenance, new_run_id, open_store,
    status_of, store_error_text,
};
pub use session::start;
pub use skipped::Skipped;
pub use step_tags::{selected_steps, split_list};
pub use transport_kind::TransportKind;
pub use trigger::Trigger;
