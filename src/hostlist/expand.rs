//! Turning a host list pattern into node names.

use super::HostListError;
use super::host_pattern::HostPattern;

/// A typo such as `n[1-1000000000]` must fail with a message rather than exhaust memory on
/// the machine driving the rollout. No list can usefully name more nodes than an inventory
/// may hold ([`MAX_NODES`](crate::units::limits::MAX_NODES)).
pub const MAX_EXPANSION: usize = crate::units::limits::MAX_NODES as usize;

/// How many names `pattern` expands to (duplicates counted), without expanding it: for
/// limits on the sum of several lists, checked before any of them is allocated.
pub fn count(pattern: &str) -> Result<u64, HostListError> {
    if pattern.trim().is_empty() {
        return Err(HostListError::Empty);
    }
    let mut total: u64 = 0;
    for entry in split_top_level(pattern) {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err(HostListError::EmptyEntry {
                pattern: pattern.to_owned(),
            });
        }
        total = total.saturating_add(HostPattern::parse(entry)?.count());
    }
    Ok(total)
}

/// Duplicates are kept on purpose: a node listed twice is usually a mistake, and only the
/// caller knows whether to reject it, so it has to be able to see it.
pub fn expand(pattern: &str) -> Result<Vec<String>, HostListError> {
    if pattern.trim().is_empty() {
        return Err(HostListError::Empty);
    }
    let mut parsed = Vec::new();
    let mut count: u64 = 0;
    for entry in split_top_level(pattern) {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err(HostListError::EmptyEntry {
                pattern: pattern.to_owned(),
            });
        }
        let host_pattern = HostPattern::parse(entry)?;
        count = count.saturating_add(host_pattern.count());
        parsed.push(host_pattern);
    }
    let total = match usize::try_from(count) {
        Ok(total) if total <= MAX_EXPANSION => total,
        _ => {
            return Err(HostListError::TooLarge {
                pattern: pattern.to_owned(),
                count,
                limit: MAX_EXPANSION,
            });
        }
    };
    let mut names = Vec::with_capacity(total);
    for host_pattern in &parsed {
        host_pattern.expand_into(&mut names);
    }
    Ok(names)
}

/// Lets callers decide whether text is a single node name to look up directly or a list to
/// expand, without parsing it.
pub fn is_pattern(s: &str) -> bool {
    s.contains(['[', ','])
}

/// Commas inside brackets separate numbers, not entries, so only depth-zero commas split.
/// A stray `]` does not drive the depth negative, so the entries after it still split and
/// the error names only the broken entry.
fn split_top_level(pattern: &str) -> impl Iterator<Item = &str> {
    let mut depth = 0usize;
    pattern.split(move |c: char| {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' => return depth == 0,
            _ => {}
        }
        false
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn names(pattern: &str) -> Vec<String> {
        expand(pattern).unwrap()
    }

    fn error(pattern: &str) -> String {
        expand(pattern).unwrap_err().to_string()
    }

    #[test]
    fn plain_name() {
        assert_eq!(names("login1"), ["login1"]);
    }

    #[test]
    fn zero_padded_range_keeps_padding() {
        let n = names("n[001-128]");
        assert_eq!(n.len(), 128);
        assert_eq!(n[0], "n001");
        assert_eq!(n[9], "n010");
        assert_eq!(n[99], "n100");
        assert_eq!(n[127], "n128");
    }

    #[test]
    fn unpadded_range_grows_naturally() {
        let n = names("n[1-10]");
        let expected: Vec<String> = (1..=10).map(|i| format!("n{i}")).collect();
        assert_eq!(n, expected);
    }

    #[test]
    fn padding_width_comes_from_start_even_past_it() {
        let n = names("n[01-100]");
        assert_eq!(n.len(), 100);
        assert_eq!(n[0], "n01");
        assert_eq!(n[98], "n99");
        assert_eq!(n[99], "n100");
    }

    #[test]
    fn single_padded_number_in_brackets() {
        assert_eq!(names("n[07]"), ["n07"]);
    }

    #[test]
    fn range_and_single() {
        assert_eq!(names("gpu[1-4,7]"), ["gpu1", "gpu2", "gpu3", "gpu4", "gpu7"]);
    }

    #[test]
    fn range_single_range() {
        assert_eq!(
            names("gpu[1-4,7,10-12]"),
            ["gpu1", "gpu2", "gpu3", "gpu4", "gpu7", "gpu10", "gpu11", "gpu12"]
        );
    }

    #[test]
    fn several_groups_give_cartesian_product() {
        assert_eq!(names("r[1-2]n[01-02]"), ["r1n01", "r1n02", "r2n01", "r2n02"]);
        assert_eq!(names("r[1-3]n[1-4]").len(), 12);
    }

    #[test]
    fn top_level_commas_separate_entries() {
        assert_eq!(names("a1,b[1-2],c"), ["a1", "b1", "b2", "c"]);
    }

    #[test]
    fn commas_inside_brackets_belong_to_bracket() {
        assert_eq!(names("a[1,3],b"), ["a1", "a3", "b"]);
    }

    #[test]
    fn whitespace_around_entries_is_trimmed() {
        assert_eq!(names("  a1 , b[1-2] ,c\n"), ["a1", "b1", "b2", "c"]);
    }

    #[test]
    fn whitespace_inside_brackets_is_tolerated() {
        assert_eq!(names("gpu[1 - 2, 4]"), ["gpu1", "gpu2", "gpu4"]);
    }

    #[test]
    fn suffix_after_group() {
        assert_eq!(names("n[1-2]-ib"), ["n1-ib", "n2-ib"]);
    }

    #[test]
    fn order_of_appearance_is_kept() {
        assert_eq!(names("z1,a1,m[3,1]"), ["z1", "a1", "m3", "m1"]);
    }

    #[test]
    fn duplicates_are_not_removed() {
        assert_eq!(names("n[1-2],n2,n[2]"), ["n1", "n2", "n2", "n2"]);
    }

    #[test]
    fn exactly_the_limit_is_allowed() {
        assert_eq!(names("n[1-100000]").len(), MAX_EXPANSION);
    }

    #[test]
    fn empty_pattern() {
        let message = "empty host list: expected one or more host names, as in `n[001-004]`";
        assert_eq!(error(""), message);
        assert_eq!(error("  \t"), message);
        assert_eq!(expand(""), Err(HostListError::Empty));
    }

    #[test]
    fn empty_entry() {
        assert_eq!(
            error("a,,b"),
            "empty entry in host list `a,,b`: expected a host name between commas"
        );
        assert_eq!(
            error("a, ,b"),
            "empty entry in host list `a, ,b`: expected a host name between commas"
        );
        assert!(matches!(expand("a,"), Err(HostListError::EmptyEntry { .. })));
        assert!(matches!(expand(",a"), Err(HostListError::EmptyEntry { .. })));
    }

    #[test]
    fn unclosed_bracket() {
        assert_eq!(
            error("n[1-3"),
            "unclosed `[` in host list `n[1-3`: expected a `]` to end the range list"
        );
        assert_eq!(
            error("a,n[1-3,b"),
            "unclosed `[` in host list `n[1-3,b`: expected a `]` to end the range list"
        );
    }

    #[test]
    fn stray_closing_bracket() {
        assert_eq!(
            error("n1-3]"),
            "stray `]` in host list `n1-3]`: expected it to close an earlier `[`"
        );
        assert_eq!(
            error("a],b"),
            "stray `]` in host list `a]`: expected it to close an earlier `[`"
        );
        assert_eq!(
            error("n[1]]"),
            "stray `]` in host list `n[1]]`: expected it to close an earlier `[`"
        );
    }

    #[test]
    fn nested_brackets() {
        assert_eq!(
            error("n[1[2]]"),
            "nested `[` in host list `n[1[2]]`: expected each `[` to be closed before the next \
             one opens, as in `r[1-2]n[1-4]`"
        );
    }

    #[test]
    fn empty_brackets() {
        assert_eq!(
            error("n[]"),
            "empty brackets in host list `n[]`: expected numbers or ranges inside, as in `n[1-4]`"
        );
        assert!(matches!(expand("n[ ]"), Err(HostListError::EmptyBrackets { .. })));
    }

    #[test]
    fn empty_range_item() {
        assert_eq!(
            error("n[1,,3]"),
            "empty range item in host list `n[1,,3]`: expected a number or range between \
             commas, as in `n[1-4,7]`"
        );
        assert!(matches!(expand("n[1,]"), Err(HostListError::EmptyRange { .. })));
    }

    #[test]
    fn incomplete_range() {
        assert_eq!(
            error("n[1-]"),
            "incomplete range `1-` in host list `n[1-]`: expected a number on each side of `-`, \
             as in `1-4`"
        );
        assert_eq!(
            expand("n[-3]"),
            Err(HostListError::IncompleteRange {
                entry: "n[-3]".into(),
                range: "-3".into()
            })
        );
    }

    #[test]
    fn non_numeric_bound() {
        assert_eq!(
            error("n[a-c]"),
            "non-numeric range bound `a` in host list `n[a-c]`: expected decimal digits, as in \
             `n[1-4]`"
        );
        assert_eq!(
            expand("n[1-c]"),
            Err(HostListError::NonNumericBound {
                entry: "n[1-c]".into(),
                bound: "c".into()
            })
        );
        assert_eq!(
            expand("n[1-2-3]"),
            Err(HostListError::NonNumericBound {
                entry: "n[1-2-3]".into(),
                bound: "2-3".into()
            })
        );
        assert!(matches!(
            expand("n[+3]"),
            Err(HostListError::NonNumericBound { .. })
        ));
    }

    #[test]
    fn bound_too_large() {
        assert_eq!(
            error("n[99999999999999999999]"),
            "range bound `99999999999999999999` in host list `n[99999999999999999999]` is too \
             large: expected at most 18446744073709551615"
        );
    }

    #[test]
    fn reversed_range() {
        assert_eq!(
            error("n[5-1]"),
            "reversed range `5-1` in host list `n[5-1]`: expected the start to be no greater \
             than the end, as in `1-5`"
        );
        assert_eq!(
            expand("n[010-009]"),
            Err(HostListError::ReversedRange {
                entry: "n[010-009]".into(),
                start: "010".into(),
                end: "009".into()
            })
        );
    }

    #[test]
    fn too_large() {
        assert_eq!(
            error("n[1-99999999]"),
            "host list `n[1-99999999]` expands to 99999999 names: expected at most 100000"
        );
        assert_eq!(
            expand("n[0-100000]"),
            Err(HostListError::TooLarge {
                pattern: "n[0-100000]".into(),
                count: 100_001,
                limit: MAX_EXPANSION
            })
        );
    }

    #[test]
    fn limit_applies_to_the_product_and_the_sum() {
        assert!(matches!(
            expand("a[1-1000]b[1-1001]"),
            Err(HostListError::TooLarge { count: 1_001_000, .. })
        ));
        assert!(matches!(
            expand("a[1-600000],b[1-400001]"),
            Err(HostListError::TooLarge { count: 1_000_001, .. })
        ));
    }

    #[test]
    fn huge_ranges_fail_fast_without_allocating() {
        // Expanding any of these would take gigabytes (or abort on allocation failure), so
        // finishing at all shows the limit is checked before names are built.
        let started = Instant::now();
        for pattern in [
            "n[1-99999999]",
            "n[0-18446744073709551615]",
            "a[1-1000000]b[1-1000000]c[1-1000000]",
            "n[1-1000000],m[1-1000000]",
        ] {
            assert!(matches!(expand(pattern), Err(HostListError::TooLarge { .. })));
        }
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn syntax_errors_are_reported_before_size() {
        assert!(matches!(
            expand("n[1-99999999],m[5-1]"),
            Err(HostListError::ReversedRange { .. })
        ));
    }

    #[test]
    fn is_pattern_spots_lists() {
        assert!(is_pattern("n[1-4]"));
        assert!(is_pattern("a,b"));
        assert!(is_pattern("n[1"));
        assert!(!is_pattern("n001"));
        assert!(!is_pattern("login-1.example"));
        assert!(!is_pattern(""));
    }
}
