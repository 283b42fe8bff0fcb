//! The `drover` command line.

mod args;
mod dispatch;
mod plural;
mod rollout;
mod run_state;
mod runs;
mod schema;
mod selection;
mod validate;

pub use args::{Cli, Color, Command};
pub use dispatch::main;
use plural::plural;
pub use selection::{Target, TransportKind};
