//! YAML loading. Every YAML file drover reads goes through this module.

mod path;

pub use path::{Path, Seg};
