//! The `drover` command line.

mod args;
mod dispatch;
mod rollout;
mod run_logs;
mod run_state;
mod runs;
mod schema;
mod selection;
mod validate;

pub use args::{Cli, Color, Command};
pub use dispatch::main;
pub use selection::{Target, TransportKind};
