//! Showing runs to people and programs.

mod check_report;
mod reporter;

pub use check_report::{check_json, of_class, render_check};
pub use reporter::{Style, report};
