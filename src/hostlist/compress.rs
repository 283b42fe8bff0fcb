//! Folding node names back into a short host list for display.

use std::collections::HashMap;

use super::numbered_name::NumberedName;

/// A name placed in a group: names fold together only when prefix, suffix and padding
/// width all agree, since a range prints every member with the same prefix, suffix and width.
type Member<'a> = (&'a str, &'a str, usize, u64);

/// Shows a node set the way operators write it, so a plan or a status line stays one line
/// for a thousand nodes. Duplicates are dropped because the output describes a set; callers
/// that care about duplicates check the names themselves. Empty names are skipped because
/// they cannot be written in a host list. Sorting once and folding in a single pass keeps
/// this fast on fleets of tens of thousands of nodes.
pub fn compress<S: AsRef<str>>(names: &[S]) -> String {
    let mut plain: Vec<&str> = Vec::new();
    let mut numbered: Vec<NumberedName<'_>> = Vec::with_capacity(names.len());
    for name in names {
        let name = name.as_ref();
        if name.is_empty() {
            continue;
        }
        match NumberedName::parse(name) {
            Some(numbered_name) => numbered.push(numbered_name),
            None => plain.push(name),
        }
    }

    let mut padded_widths: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for name in &numbered {
        if let Some(width) = name.padded_width() {
            padded_widths
                .entry((name.prefix, name.suffix))
                .or_default()
                .push(width);
        }
    }
    for widths in padded_widths.values_mut() {
        widths.sort_unstable();
        widths.dedup();
    }

    let mut members: Vec<Member<'_>> = numbered
        .iter()
        .map(|name| {
            (
                name.prefix,
                name.suffix,
                group_width(name, &padded_widths),
                name.value,
            )
        })
        .collect();
    members.sort_unstable();
    members.dedup();

    let mut entries: Vec<(&str, &str, usize, String)> = members
        .chunk_by(|a, b| (a.0, a.1, a.2) == (b.0, b.1, b.2))
        .filter_map(|group| {
            let &(prefix, suffix, width, _) = group.first()?;
            Some((prefix, suffix, width, render_group(group)))
        })
        .collect();
    plain.sort_unstable();
    plain.dedup();
    entries.extend(plain.into_iter().map(|name| (name, "", 0, name.to_owned())));
    entries.sort_unstable();

    let texts: Vec<String> = entries.into_iter().map(|entry| entry.3).collect();
    texts.join(",")
}

/// Picks the width a name is printed with. Unpadded names such as `n10` also print
/// correctly in any padded group no wider than their digits, so they join the widest such
/// group: that keeps `n[08-100]` in one piece instead of splitting it at `n10`. Width 0
/// means "as many digits as the number needs".
fn group_width(name: &NumberedName<'_>, padded_widths: &HashMap<(&str, &str), Vec<usize>>) -> usize {
    if let Some(width) = name.padded_width() {
        return width;
    }
    padded_widths
        .get(&(name.prefix, name.suffix))
        .and_then(|widths| {
            let fitting = widths.partition_point(|&width| width <= name.digits.len());
            fitting.checked_sub(1).and_then(|index| widths.get(index))
        })
        .copied()
        .unwrap_or(0)
}

/// Expects `group` sorted, deduplicated and sharing prefix, suffix and width.
fn render_group(group: &[Member<'_>]) -> String {
    let Some(&(prefix, suffix, width, value)) = group.first() else {
        return String::new();
    };
    if group.len() == 1 {
        return format!("{prefix}{value:0width$}{suffix}");
    }
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &(_, _, _, value) in group {
        match runs.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(value) => *end = value,
            _ => runs.push((value, value)),
        }
    }
    let items: Vec<String> = runs
        .iter()
        .map(|&(start, end)| {
            if start == end {
                format!("{start:0width$}")
            } else {
                format!("{start:0width$}-{end:0width$}")
            }
        })
        .collect();
    format!("{prefix}[{}]{suffix}", items.join(","))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::hostlist::expand;
    use proptest::prelude::*;
    use std::collections::BTreeSet;
    use std::time::{Duration, Instant};

    #[test]
    fn empty_input_gives_empty_text() {
        assert_eq!(compress::<&str>(&[]), "");
        assert_eq!(compress(&[""]), "");
    }

    #[test]
    fn padded_run_with_gap() {
        let mut names: Vec<String> = (1..=40).map(|i| format!("n{i:03}")).collect();
        names.push("n042".into());
        assert_eq!(compress(&names), "n[001-040,042]");
    }

    #[test]
    fn singleton_group_prints_plainly() {
        assert_eq!(compress(&["n005"]), "n005");
        assert_eq!(compress(&["n005", "gpu1", "gpu2"]), "gpu[1-2],n005");
    }

    #[test]
    fn mixed_prefixes_are_sorted_by_prefix() {
        assert_eq!(
            compress(&["n2", "gpu3", "n1", "gpu1", "gpu2", "login", "admin"]),
            "admin,gpu[1-3],login,n[1-2]"
        );
    }

    #[test]
    fn unpadded_numbers_grow_naturally() {
        assert_eq!(compress(&["n9", "n10"]), "n[9-10]");
    }

    #[test]
    fn padded_numbers_keep_their_width() {
        assert_eq!(compress(&["n09", "n10"]), "n[09-10]");
        assert_eq!(compress(&["n098", "n099", "n100", "n101"]), "n[098-101]");
    }

    #[test]
    fn different_widths_form_different_groups() {
        assert_eq!(
            compress(&["n1", "n2", "n01", "n02", "n001"]),
            "n[1-2],n[01-02],n001"
        );
    }

    #[test]
    fn unpadded_name_joins_widest_padded_group_it_fits() {
        assert_eq!(compress(&["n08", "n09", "n10", "n100"]), "n[08-10,100]");
        assert_eq!(compress(&["n9", "n10", "n05"]), "n9,n[05,10]");
    }

    #[test]
    fn unsorted_input_is_sorted_numerically() {
        assert_eq!(compress(&["n10", "n2", "n1", "n3", "n9"]), "n[1-3,9-10]");
    }

    #[test]
    fn duplicates_are_removed() {
        assert_eq!(
            compress(&["n1", "n2", "n1", "n2", "login", "login"]),
            "login,n[1-2]"
        );
        assert_eq!(compress(&["n5", "n5"]), "n5");
    }

    #[test]
    fn names_without_digits_are_kept() {
        assert_eq!(compress(&["login", "head"]), "head,login");
    }

    #[test]
    fn suffixes_are_part_of_the_group() {
        assert_eq!(
            compress(&["n1-ib", "n2-ib", "n1-eth", "n3-eth"]),
            "n[1,3]-eth,n[1-2]-ib"
        );
    }

    #[test]
    fn only_the_last_number_is_folded() {
        let names = expand("r[1-2]n[01-02]").unwrap();
        assert_eq!(compress(&names), "r1n[01-02],r2n[01-02]");
    }

    #[test]
    fn numbers_too_long_for_u64_are_kept_as_names() {
        assert_eq!(
            compress(&["n99999999999999999999999", "n1"]),
            "n1,n99999999999999999999999"
        );
    }

    #[test]
    fn non_ascii_names() {
        assert_eq!(compress(&["é6", "é5"]), "é[5-6]");
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let max = u64::MAX.to_string();
        let before = (u64::MAX - 1).to_string();
        assert_eq!(
            compress(&[format!("n{before}"), format!("n{max}"), "n0".into()]),
            format!("n[0,{before}-{max}]")
        );
    }

    #[test]
    fn canonical_patterns_round_trip() {
        for pattern in [
            "n[001-128]",
            "n[1-10]",
            "n[01-100]",
            "n[001-040,042]",
            "gpu[1-4,7]",
            "gpu[1-4,7,10-12]",
            "a1,b[1-2],c",
            "gpu[1-4],login,n[001-128]",
            "n[1-3],n[01-03]",
            "n[1-2]-eth,n[1-4]-ib",
            "r1n[01-02],r2n[01-02]",
            "n005",
            "login",
        ] {
            assert_eq!(compress(&expand(pattern).unwrap()), pattern);
        }
    }

    #[test]
    fn large_inputs_are_fast() {
        let mut names: Vec<String> = (1..=100_000).rev().map(|i| format!("n{i:06}")).collect();
        names.extend((1..=50_000).filter(|i| i % 3 != 0).map(|i| format!("gpu{i}")));
        let started = Instant::now();
        let text = compress(&names);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(text.ends_with(",n[000001-100000]"));
        assert!(text.starts_with("gpu[1-2,4-5,7-8,"));
        assert_eq!(super::super::count(&text).unwrap(), 100_000 + 50_000 - 16_666);
    }

    const PREFIXES: [&str; 3] = ["n", "gpu", "rack1-node"];

    fn sorted_unique(picks: &[(usize, u64)], width: impl Fn(usize) -> usize) -> Vec<String> {
        let set: BTreeSet<(&str, u64)> = picks.iter().map(|&(p, v)| (PREFIXES[p], v)).collect();
        set.into_iter()
            .map(|(prefix, value)| {
                let width = width(PREFIXES.iter().position(|p| *p == prefix).unwrap());
                format!("{prefix}{value:0width$}")
            })
            .collect()
    }

    proptest! {
        #[test]
        fn unpadded_round_trip(picks in prop::collection::vec((0..PREFIXES.len(), 0u64..3000), 0..300)) {
            let names: Vec<String> = picks
                .iter()
                .map(|&(p, v)| format!("{}{v}", PREFIXES[p]))
                .collect();
            let text = compress(&names);
            let back = if names.is_empty() { Vec::new() } else { expand(&text).unwrap() };
            prop_assert_eq!(back, sorted_unique(&picks, |_| 0));
        }

        #[test]
        fn padded_round_trip(picks in prop::collection::vec((0..PREFIXES.len(), 0u64..1000), 1..300)) {
            // One prefix padded to three digits, the others not.
            let width = |p: usize| if p == 0 { 3 } else { 0 };
            let names: Vec<String> = picks
                .iter()
                .map(|&(p, v)| format!("{}{v:0w$}", PREFIXES[p], w = width(p)))
                .collect();
            let back = expand(&compress(&names)).unwrap();
            prop_assert_eq!(back, sorted_unique(&picks, width));
        }

        #[test]
        fn mixed_widths_keep_the_same_set(
            picks in prop::collection::vec((0..PREFIXES.len(), 0u64..1500, 0usize..5), 1..300)
        ) {
            let names: Vec<String> = picks
                .iter()
                .map(|&(p, v, w)| format!("{}{v:0w$}", PREFIXES[p]))
                .collect();
            let back = expand(&compress(&names)).unwrap();
            let unique: BTreeSet<&String> = names.iter().collect();
            prop_assert_eq!(back.len(), unique.len());
            prop_assert_eq!(back.iter().collect::<BTreeSet<_>>(), unique);
        }

        #[test]
        fn compress_never_panics(names in prop::collection::vec(any::<String>(), 0..20)) {
            let _ = compress(&names);
        }

        #[test]
        fn expand_never_panics(pattern in "[a-c0-9\\[\\], -]{0,16}") {
            let _ = expand(&pattern);
        }

        #[test]
        fn expand_never_panics_on_any_text(pattern in any::<String>()) {
            let _ = expand(&pattern);
        }
    }
}
