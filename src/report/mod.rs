//! Showing runs to people and programs.

mod check_report;
mod diff_report;
mod error_groups;
mod paint;
mod reporter;
mod unchecked;

pub use check_report::{check_json, of_class, render_check};
pub use diff_report::{diffs_json, render_diffs};
pub use error_groups::{NODE_PLACEHOLDER, group_errors};
pub use paint::{Paint, plural};
pub use reporter::{ControlReceiver, ReportControl, Style, control, report, report_with};
pub use unchecked::{check_failed, not_checked};
