//! The window as written in YAML, before any of it is checked.

use crate::units::HumanDuration;

/// A recurring maintenance window. Kept as plain strings so that a mistake in one field is
/// reported with its location by [`Window::from_raw`](super::Window::from_raw) together with
/// every other mistake, instead of stopping deserialization at the first one.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    /// IANA time zone the times and dates are read in, e.g. `Europe/Berlin` or `UTC`.
    /// Daylight saving time is followed: 08:00 stays 08:00 on the local clock all year.
    pub timezone: String,

    /// Weekdays on which the window opens: `mon` .. `sun` or full names like `monday`
    /// (case-insensitive), and ranges like `mon-fri`. A range may wrap over the weekend:
    /// `fri-mon` is fri, sat, sun, mon. For a window running over midnight, the weekday is
    /// the day it opens: `fri` with 22:00-06:00 runs Friday night into Saturday morning.
    pub days: Vec<String>,

    /// Local time the window opens, `HH:MM` (00:00 to 23:59). If this time does not exist
    /// because the clocks spring forward, the window opens when they have.
    pub start: String,

    /// Local time the window closes, `HH:MM` (00:00 to 23:59). Earlier than `start` means the
    /// window runs over midnight into the next day (22:00-06:00). Must differ from `start`.
    pub end: String,

    /// Dates `YYYY-MM-DD` on which the window does not open, e.g. public holidays. For a
    /// window running over midnight, this is the date it would have opened.
    #[serde(default)]
    pub exclude: Vec<String>,

    /// No new node is started when less than this remains before the window closes, so a
    /// slow node does not end up being worked on after hours (`30m`, `1h`). Nodes already
    /// started are not interrupted. Must be shorter than the window.
    #[serde(default)]
    pub cutoff: Option<HumanDuration>,
}
