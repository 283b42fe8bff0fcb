//! One item inside brackets: `7` or `1-4`.

use super::HostListError;

/// A range keeps the width of its start token because that is how people write padded
/// ranges (`[001-128]`); taking it from the end would make `[01-100]` lose its padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NumberRange {
    start: u64,
    end: u64,
    width: usize,
}

impl NumberRange {
    /// `entry` is only carried along so errors can quote the host list the user wrote.
    pub(super) fn parse(item: &str, entry: &str) -> Result<Self, HostListError> {
        let item = item.trim();
        if item.is_empty() {
            return Err(HostListError::EmptyRange {
                entry: entry.to_owned(),
            });
        }
        let (start_token, end_token) = match item.split_once('-') {
            Some((start, end)) => (start.trim(), end.trim()),
            None => (item, item),
        };
        if start_token.is_empty() || end_token.is_empty() {
            return Err(HostListError::IncompleteRange {
                entry: entry.to_owned(),
                range: item.to_owned(),
            });
        }
        let start = parse_bound(start_token, entry)?;
        let end = parse_bound(end_token, entry)?;
        if start > end {
            return Err(HostListError::ReversedRange {
                entry: entry.to_owned(),
                start: start_token.to_owned(),
                end: end_token.to_owned(),
            });
        }
        Ok(Self {
            start,
            end,
            width: start_token.len(),
        })
    }

    /// Saturates rather than overflowing so `[0-18446744073709551615]` is still counted (and
    /// refused by the expansion limit) instead of wrapping to zero.
    pub(super) fn count(&self) -> u64 {
        (self.end - self.start).saturating_add(1)
    }

    pub(super) fn tokens(&self) -> impl Iterator<Item = String> + '_ {
        (self.start..=self.end).map(move |n| format!("{n:0width$}", width = self.width))
    }
}

/// Only plain decimal digits are accepted: `+3` or `0x10` parse as numbers elsewhere but
/// would be a typo in a node name.
fn parse_bound(token: &str, entry: &str) -> Result<u64, HostListError> {
    if !token.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HostListError::NonNumericBound {
            entry: entry.to_owned(),
            bound: token.to_owned(),
        });
    }
    token.parse::<u64>().map_err(|_| HostListError::BoundTooLarge {
        entry: entry.to_owned(),
        bound: token.to_owned(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn tokens(item: &str) -> Vec<String> {
        NumberRange::parse(item, "n[x]").unwrap().tokens().collect()
    }

    #[test]
    fn single_number_is_a_range_of_one() {
        assert_eq!(tokens("7"), ["7"]);
        assert_eq!(tokens("07"), ["07"]);
    }

    #[test]
    fn width_comes_from_start_token() {
        assert_eq!(tokens("08-10"), ["08", "09", "10"]);
        assert_eq!(tokens("8-010"), ["8", "9", "10"]);
        assert_eq!(tokens("098-100"), ["098", "099", "100"]);
    }

    #[test]
    fn whitespace_around_bounds_is_ignored() {
        assert_eq!(tokens(" 1 - 3 "), ["1", "2", "3"]);
    }

    #[test]
    fn count_saturates_instead_of_overflowing() {
        let r = NumberRange::parse("0-18446744073709551615", "n[x]").unwrap();
        assert_eq!(r.count(), u64::MAX);
    }
}
