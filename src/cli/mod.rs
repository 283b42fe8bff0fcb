//! The `drover` command line.

mod args;
mod run;
mod schema;
mod validate;

pub use args::{Cli, Color, Command};
pub use run::main;
