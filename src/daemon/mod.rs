//! `drover serve`: the daemon that owns a site's rollouts, on tokio.
//!
//! [`Daemon::start`] resumes what a previous daemon left running, then serves
//! `/healthz` and `/metrics` ([`router`]: the API comes next, on the same router) and
//! takes [`Action`]s: rollouts (the git watcher's) and converge passes (its timers).
//! `rollout_queue` is the pure decision which rollouts start, wait or are superseded.

mod action;
#[expect(clippy::module_inception, reason = "the type is named after the concept")]
mod daemon;
mod daemon_error;
mod http;
mod log_format;
mod metrics;
mod rollout_queue;
mod run_now;
mod run_order;
mod sd_notify;

pub use action::Action;
pub use daemon::{
    ConvergeClock, DEFAULT_LISTEN, DEFAULT_SHUTDOWN_DEADLINE, Daemon, DaemonOptions, SLACK_ANSWER_WITHIN,
};
pub use daemon_error::DaemonError;
pub use http::{AppState, router};
pub use log_format::LogFormat;
pub use metrics::Metrics;
pub use rollout_queue::{ActiveRollout, QueueAction, RolloutPhase, RolloutQueue, RunEnd};
pub use run_now::{RunNowAnswer, outside_scope};
pub use run_order::{NotStarted, RunOrder, StartedRun};
pub use sd_notify::SdNotify;
