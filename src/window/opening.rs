//! One occurrence of a window: the instants it opens and closes on a given date.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};

/// Queries work on instants, not on local times, so that a window running over midnight or
/// over a daylight saving change is one unbroken interval that opens and closes once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Opening {
    /// First instant inside the window.
    pub(super) open: Timestamp,
    /// First instant after the window.
    pub(super) close: Timestamp,
}

impl Opening {
    /// The occurrence opening on `date`; it closes on the next day if `end` is not after
    /// `start`. `None` when the clock change swallows it whole (a 02:00-02:30 window on a
    /// spring-forward night), or at the ends of the representable calendar.
    pub(super) fn on(tz: &TimeZone, date: Date, start: Time, end: Time) -> Option<Opening> {
        let end_date = if end > start { date } else { date.tomorrow().ok()? };
        let open = wall_clock_reaches(tz, date.to_datetime(start))?;
        let close = wall_clock_reaches(tz, end_date.to_datetime(end))?;
        (open < close).then_some(Opening { open, close })
    }

    pub(super) fn contains(&self, at: Timestamp) -> bool {
        self.open <= at && at < self.close
    }
}

/// The first instant at which the local clock shows `dt` or later.
///
/// This is the "compatible" disambiguation except inside a gap: when the clocks jump from
/// 02:00 to 03:00, a window starting at 02:30 opens at 03:00 (the clock has passed 02:30),
/// not at 03:30 as "compatible" would have it, which would keep the window shut for half an
/// hour while the clock on the wall says it is open. When a time occurs twice because the
/// clocks fall back, the first occurrence is used, as "compatible" does.
fn wall_clock_reaches(tz: &TimeZone, dt: DateTime) -> Option<Timestamp> {
    let ambiguous = tz.to_ambiguous_timestamp(dt);
    match ambiguous.offset() {
        AmbiguousOffset::Gap { after, .. } => {
            // Read with the later offset, `dt` falls before the jump; the jump is the next
            // transition from there.
            let before_jump = after.to_timestamp(dt).ok()?;
            let jump = tz.following(before_jump).next()?;
            Some(jump.timestamp())
        }
        AmbiguousOffset::Unambiguous { .. } | AmbiguousOffset::Fold { .. } => ambiguous.compatible().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").expect("Europe/Berlin is in the bundled database")
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    #[test]
    fn time_inside_spring_forward_gap_is_when_the_clock_jumps() {
        // 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
        let at = wall_clock_reaches(&berlin(), date(2026, 3, 29).at(2, 30, 0, 0));
        assert_eq!(at, Some(ts("2026-03-29T01:00:00Z")));
    }

    #[test]
    fn repeated_time_on_fall_back_is_its_first_occurrence() {
        // 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC; 02:30 CEST is 00:30 UTC.
        let at = wall_clock_reaches(&berlin(), date(2026, 10, 25).at(2, 30, 0, 0));
        assert_eq!(at, Some(ts("2026-10-25T00:30:00Z")));
    }

    #[test]
    fn window_inside_the_gap_does_not_open() {
        let o = Opening::on(&berlin(), date(2026, 3, 29), time(2, 0, 0, 0), time(2, 30, 0, 0));
        assert_eq!(o, None);
    }

    #[test]
    fn overnight_window_closes_next_day_and_excludes_its_close() {
        let o = Opening::on(&berlin(), date(2026, 1, 5), time(22, 0, 0, 0), time(6, 0, 0, 0));
        let expected = Opening {
            open: ts("2026-01-05T21:00:00Z"),
            close: ts("2026-01-06T05:00:00Z"),
        };
        assert_eq!(o, Some(expected));
        assert!(expected.contains(expected.open));
        assert!(!expected.contains(expected.close));
    }
}
