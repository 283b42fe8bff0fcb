//! The rollout engine: checks, the rollout state machine, per-node executors and the
//! async runner that connects them.

mod rollout;

pub use rollout::{Action, Input, Outcome, Rollout, StopReason};
