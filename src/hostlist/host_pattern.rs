//! One comma-separated entry of a host list, such as `r[1-2]n[01-04]-ib`.

use super::HostListError;
use super::number_range::NumberRange;

/// Parsed before anything is expanded so the total size can be checked against the limit
/// while the pattern is still only as big as the text the user typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HostPattern {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Group(Vec<NumberRange>),
}

impl HostPattern {
    /// Expects `entry` already trimmed and free of top-level commas.
    pub(super) fn parse(entry: &str) -> Result<Self, HostListError> {
        let mut segments = Vec::new();
        let mut text = String::new();
        let mut in_group = false;
        for c in entry.chars() {
            match c {
                '[' if in_group => {
                    return Err(HostListError::NestedBracket {
                        entry: entry.to_owned(),
                    });
                }
                '[' => {
                    if !text.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut text)));
                    }
                    in_group = true;
                }
                ']' if !in_group => {
                    return Err(HostListError::StrayBracket {
                        entry: entry.to_owned(),
                    });
                }
                ']' => {
                    segments.push(Segment::Group(parse_group(&text, entry)?));
                    text.clear();
                    in_group = false;
                }
                _ => text.push(c),
            }
        }
        if in_group {
            return Err(HostListError::UnclosedBracket {
                entry: entry.to_owned(),
            });
        }
        if !text.is_empty() {
            segments.push(Segment::Literal(text));
        }
        Ok(Self { segments })
    }

    /// Saturating, so a product of huge groups compares as "too many" instead of wrapping
    /// around to something small enough to try.
    pub(super) fn count(&self) -> u64 {
        self.segments
            .iter()
            .filter_map(|segment| match segment {
                Segment::Literal(_) => None,
                Segment::Group(ranges) => Some(
                    ranges
                        .iter()
                        .fold(0u64, |sum, range| sum.saturating_add(range.count())),
                ),
            })
            .fold(1u64, u64::saturating_mul)
    }

    /// The leftmost group varies slowest, matching Slurm, so `r[1-2]n[1-2]` lists a rack's
    /// nodes together.
    pub(super) fn expand_into(&self, out: &mut Vec<String>) {
        let mut names = vec![String::new()];
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => names.iter_mut().for_each(|name| name.push_str(text)),
                Segment::Group(ranges) => {
                    let tokens: Vec<String> = ranges.iter().flat_map(NumberRange::tokens).collect();
                    names = names
                        .iter()
                        .flat_map(|name| tokens.iter().map(move |token| format!("{name}{token}")))
                        .collect();
                }
            }
        }
        out.extend(names);
    }
}

fn parse_group(body: &str, entry: &str) -> Result<Vec<NumberRange>, HostListError> {
    if body.trim().is_empty() {
        return Err(HostListError::EmptyBrackets {
            entry: entry.to_owned(),
        });
    }
    body.split(',')
        .map(|item| NumberRange::parse(item, entry))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn expand(entry: &str) -> Vec<String> {
        let mut out = Vec::new();
        HostPattern::parse(entry).unwrap().expand_into(&mut out);
        out
    }

    #[test]
    fn plain_name_is_one_literal() {
        assert_eq!(expand("login1"), ["login1"]);
        assert_eq!(HostPattern::parse("login1").unwrap().count(), 1);
    }

    #[test]
    fn text_after_a_group_is_kept() {
        assert_eq!(expand("n[1-2]-ib"), ["n1-ib", "n2-ib"]);
    }

    #[test]
    fn leading_group_needs_no_prefix() {
        assert_eq!(expand("[1-3]"), ["1", "2", "3"]);
    }

    #[test]
    fn adjacent_groups_multiply() {
        assert_eq!(expand("n[1-2][7-8]"), ["n17", "n18", "n27", "n28"]);
        assert_eq!(HostPattern::parse("n[1-2][7-8]").unwrap().count(), 4);
    }

    #[test]
    fn non_ascii_literals_survive() {
        assert_eq!(expand("ñ[1-2]é"), ["ñ1é", "ñ2é"]);
    }

    #[test]
    fn count_of_huge_product_saturates() {
        let p = HostPattern::parse("a[0-18446744073709551615]b[0-9]").unwrap();
        assert_eq!(p.count(), u64::MAX);
    }
}
