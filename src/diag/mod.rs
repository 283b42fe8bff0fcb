//! Diagnostics: what went wrong, where (file, line, column), and how to fix it.

mod diagnostic;
mod problem;
mod suggest;

pub use diagnostic::{Diagnostic, Location};
pub use problem::{Problem, Target};
pub use suggest::did_you_mean;
