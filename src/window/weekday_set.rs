//! The weekdays a window opens on.

use std::fmt;

use jiff::civil::Weekday;

const SHORT_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const LONG_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A set rather than the list as written, so that overlapping entries (`mon-fri`, `wed`) are
/// harmless and the summary can be printed in one canonical form.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct WeekdaySet {
    /// Bit `i` is set when the weekday `i` days after Monday is in the set.
    bits: u8,
}

impl WeekdaySet {
    /// Parses one entry of `days`: a single day or a range. A range walks forward through the
    /// week from its first day to its last, so `fri-mon` wraps over the weekend (a maintenance
    /// weekend is the likeliest reason to write it), and `mon-mon` is just Monday.
    pub(super) fn parse_entry(entry: &str) -> Result<WeekdaySet, String> {
        let invalid = || {
            format!(
                "invalid day `{entry}`: expected a weekday (`mon`..`sun` or `monday`..`sunday`) \
                 or a range like `mon-fri`"
            )
        };
        match entry.split_once('-') {
            None => day_index(entry).map(WeekdaySet::single).ok_or_else(invalid),
            Some((first, last)) => {
                let (Some(first), Some(last)) = (day_index(first), day_index(last)) else {
                    return Err(invalid());
                };
                let mut set = WeekdaySet::default();
                let mut day = first;
                loop {
                    set = set.union(WeekdaySet::single(day));
                    if day == last {
                        break;
                    }
                    day = (day + 1) % 7;
                }
                Ok(set)
            }
        }
    }

    pub(super) fn union(self, other: WeekdaySet) -> WeekdaySet {
        WeekdaySet {
            bits: self.bits | other.bits,
        }
    }

    pub(super) fn contains(self, day: Weekday) -> bool {
        self.has(day.to_monday_zero_offset().unsigned_abs())
    }

    fn single(index: u8) -> WeekdaySet {
        WeekdaySet { bits: 1 << index }
    }

    fn has(self, index: u8) -> bool {
        self.bits & (1 << (index % 7)) != 0
    }
}

/// The index of a day name (Monday is 0), ignoring case and surrounding blanks.
fn day_index(name: &str) -> Option<u8> {
    let name = name.trim().to_ascii_lowercase();
    (0u8..7).find(|&i| {
        let i = usize::from(i);
        SHORT_NAMES[i] == name || LONG_NAMES[i] == name
    })
}

/// Prints runs of consecutive days as ranges (`mon-fri`, `fri-mon`) so the one-line summary
/// stays short whatever mix of entries the set was written with.
impl fmt::Display for WeekdaySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.bits == 0 {
            return f.write_str("no days");
        }
        if self.bits == 0x7f {
            return f.write_str("mon-sun");
        }
        let mut first = true;
        for start in 0u8..7 {
            // A run starts on a day in the set whose previous day is not.
            if !self.has(start) || self.has(start + 6) {
                continue;
            }
            let mut last = start;
            while self.has(last + 1) {
                last = (last + 1) % 7;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(SHORT_NAMES[usize::from(start)])?;
            if last != start {
                write!(f, "-{}", SHORT_NAMES[usize::from(last)])?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(entries: &[&str]) -> Result<WeekdaySet, String> {
        entries.iter().try_fold(WeekdaySet::default(), |acc, e| {
            WeekdaySet::parse_entry(e).map(|s| acc.union(s))
        })
    }

    fn shown(entries: &[&str]) -> String {
        match set(entries) {
            Ok(s) => s.to_string(),
            Err(e) => e,
        }
    }

    #[test]
    fn names_are_case_insensitive_short_or_long() {
        assert_eq!(shown(&["MON"]), "mon");
        assert_eq!(shown(&["Tuesday"]), "tue");
        assert_eq!(shown(&["WEDNESDAY-friday"]), "wed-fri");
        assert_eq!(shown(&["sat - Sun"]), "sat-sun");
    }

    #[test]
    fn wrapping_range_walks_forward_over_the_weekend() {
        let s = set(&["fri-mon"]);
        assert_eq!(s.map(|s| s.to_string()).as_deref(), Ok("fri-mon"));
        let s = set(&["fri-mon"]).unwrap_or_default();
        assert!(s.contains(Weekday::Friday));
        assert!(s.contains(Weekday::Saturday));
        assert!(s.contains(Weekday::Sunday));
        assert!(s.contains(Weekday::Monday));
        assert!(!s.contains(Weekday::Tuesday));
        assert!(!s.contains(Weekday::Thursday));
    }

    #[test]
    fn range_from_a_day_to_itself_is_that_day() {
        assert_eq!(shown(&["mon-mon"]), "mon");
    }

    #[test]
    fn summary_merges_entries_into_runs() {
        assert_eq!(shown(&["mon", "tue", "wed-fri"]), "mon-fri");
        assert_eq!(shown(&["mon-fri", "wed"]), "mon-fri");
        assert_eq!(shown(&["mon", "wed", "fri"]), "mon,wed,fri");
        assert_eq!(shown(&["wed", "sat-mon"]), "wed,sat-mon");
        assert_eq!(shown(&["tue", "sat-mon"]), "sat-tue");
        assert_eq!(shown(&["mon-sun"]), "mon-sun");
        assert_eq!(shown(&["thu-wed"]), "mon-sun");
        assert_eq!(shown(&[]), "no days");
    }

    #[test]
    fn rejects_what_is_not_a_day_or_range() {
        let expected = |e: &str| {
            format!(
                "invalid day `{e}`: expected a weekday (`mon`..`sun` or `monday`..`sunday`) \
                 or a range like `mon-fri`"
            )
        };
        for bad in ["funday", "mo", "", "mon-", "-fri", "mon-fri-sat", "mon,fri", "1"] {
            assert_eq!(WeekdaySet::parse_entry(bad), Err(expected(bad)), "{bad:?}");
        }
    }
}
