//! Maintenance windows: humans do not work at night, so a rollout only starts work on a node
//! while a window is open, and stops starting new nodes when too little of it is left.

mod opening;
mod raw_window;
mod weekday_set;
// The module is named after the concept it exports; clippy would have us rename either.
#[allow(clippy::module_inception)]
mod window;

pub use raw_window::RawWindow;
pub use window::Window;
