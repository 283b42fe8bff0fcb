//! `drover serve`: the daemon's decisions (which rollout starts, waits or is superseded).

mod rollout_queue;

pub use rollout_queue::{ActiveRollout, QueueAction, RolloutPhase, RolloutQueue, RunEnd};
