//! The `drover` command line.

mod args;
mod dispatch;
mod nodes;
mod pause;
mod remote;
mod rollout;
mod run_logs;
mod run_state;
mod runs;
mod schema;
mod selection;
mod serve;
mod validate;

pub(crate) use rollout::plan_json;

use crate::report::plural;
pub use args::{Cli, Color, Command};
pub use dispatch::main;
pub use selection::{Target, TransportKind};

/// `--extra-vars` as the command line gives it, for the fuzz target: the variables or
/// the refusal's message.
pub fn parse_extra_vars(arg: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    selection::extra_vars(&[arg.to_string()]).map_err(|r| r.0)
}
